//! The job queue on SQLite, with SQS's semantics: delayed visibility, a visibility timeout
//! while a message is being processed, delete on acknowledge, and a dead-letter table. Jobs
//! are rows of the same database as the deliveries, so they survive a restart; which ones are
//! being processed is kept in memory (after a restart nothing is), so a receive writes nothing.

use super::Database;
use crate::domain::clock::now_ms;
use crate::domain::task::Task;
use crate::ports::{JobQueue, JobSource, QueueError, QueueMessage, ReceivedMessage, StoreError};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

pub struct SqliteQueue {
    db: Arc<Database>,
    ready: Notify,
    visibility: Duration,
    max_receives: u32,
    in_flight: Mutex<HashMap<i64, Flight>>,
}

/// A received job: hidden until then, and how often it was received.
struct Flight {
    hidden_until: i64,
    receives: u32,
}

/// What one look at the queue found: messages, or how long until the next one is due.
enum Look {
    Messages(Vec<QueueMessage>),
    WaitFor(Duration),
}

impl SqliteQueue {
    pub fn new(db: Arc<Database>, visibility: Duration, max_receives: u32) -> Arc<Self> {
        Arc::new(Self {
            db,
            ready: Notify::new(),
            visibility,
            max_receives,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<i64, Flight>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A queue on its own in-memory database.
    pub fn in_memory(visibility: Duration, max_receives: u32) -> Arc<Self> {
        Self::new(Database::in_memory(), visibility, max_receives)
    }

    /// Waits until at least one message is visible, then takes up to `max` of them and hides
    /// them for the visibility timeout.
    pub async fn receive(&self, max: usize) -> Vec<QueueMessage> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.look(max) {
                Ok(Look::Messages(messages)) => return messages,
                Ok(Look::WaitFor(wait)) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the job queue");
                    Duration::from_millis(200)
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn look(&self, max: usize) -> Result<Look, StoreError> {
        let now = now_ms();
        let mut flights = self.flights();
        let hidden = flights.values().filter(|f| f.hidden_until > now).count();
        let due: Vec<(i64, String)> = self
            .db
            .lock()
            .prepare_cached(
                "SELECT id, body FROM jobs WHERE visible_at <= ?1 \
                 ORDER BY visible_at, id LIMIT ?2",
            )?
            .query_map(params![now, (max + hidden) as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let hidden_until = now + self.visibility.as_millis() as i64;
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (id, body) in due {
            if out.len() == max {
                break;
            }
            let receives = match flights.get(&id) {
                Some(f) if f.hidden_until > now => continue,
                Some(f) => f.receives,
                None => 0,
            };
            if receives >= self.max_receives {
                flights.remove(&id);
                dead.push((id, body));
                continue;
            }
            flights.insert(
                id,
                Flight {
                    hidden_until,
                    receives: receives + 1,
                },
            );
            out.push(QueueMessage {
                receive_count: 1,
                id: id.to_string(),
                body,
            });
        }
        drop(flights);
        if !dead.is_empty() {
            self.db.write_soon(|tx| {
                for (id, body) in &dead {
                    tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                        .execute([id])?;
                    tx.prepare_cached("INSERT INTO dead_jobs (failed_at, body) VALUES (?1, ?2)")?
                        .execute(params![now, body])?;
                    tracing::error!(message_id = id, "job moved to the dead-letter table");
                }
                Ok(())
            })?;
        }
        if !out.is_empty() {
            return Ok(Look::Messages(out));
        }
        let next_due: Option<i64> = self
            .db
            .lock()
            .prepare_cached(
                "SELECT visible_at FROM jobs WHERE visible_at > ?1 ORDER BY visible_at LIMIT 1",
            )?
            .query_row([now], |r| r.get(0))
            .optional()?;
        let next_visible = self.flights().values().map(|f| f.hidden_until).min();
        let next = [next_due, next_visible].into_iter().flatten().min();
        let wait = next.map_or(1000, |at| (at - now).clamp(1, 1000));
        Ok(Look::WaitFor(Duration::from_millis(wait as u64)))
    }

    /// Deletes processed messages.
    pub fn acknowledge<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let ids: Vec<i64> = ids.into_iter().filter_map(|id| id.parse().ok()).collect();
        // Deleted before they stop being in flight, so no receive can see them in between.
        self.db.write_soon(|tx| {
            let mut delete = tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?;
            for id in &ids {
                delete.execute([id])?;
            }
            Ok(())
        })?;
        let mut flights = self.flights();
        for id in &ids {
            flights.remove(id);
        }
        Ok(())
    }

    /// Messages still queued or in flight.
    pub fn len(&self) -> usize {
        self.db
            .lock()
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bodies of messages that were received too often without success.
    pub fn dead_letters(&self) -> Vec<String> {
        let conn = self.db.lock();
        let Ok(mut stmt) = conn.prepare("SELECT body FROM dead_jobs ORDER BY id") else {
            return Vec::new();
        };
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .unwrap_or_default()
    }
}

fn not_accepted(total: usize, e: StoreError) -> QueueError {
    QueueError::NotAccepted {
        failed: total,
        total,
        reason: e.to_string(),
    }
}

#[async_trait]
impl JobSource for SqliteQueue {
    async fn receive_batch(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        let received = tokio::time::timeout(Duration::from_secs(1), self.receive(max))
            .await
            .unwrap_or_default();
        Ok(received
            .into_iter()
            .map(|message| ReceivedMessage {
                receipt_handle: message.id.clone(),
                message,
            })
            .collect())
    }

    async fn acknowledge(&self, receipt_handles: &[String]) -> Result<(), QueueError> {
        SqliteQueue::acknowledge(self, receipt_handles.iter().map(String::as_str))
            .map_err(|e| not_accepted(receipt_handles.len(), e))
    }
}

#[async_trait]
impl JobQueue for SqliteQueue {
    async fn enqueue_tasks(&self, tasks: &[Task]) -> Result<(), QueueError> {
        self.db
            .write(|tx| {
                let mut insert =
                    tx.prepare_cached("INSERT INTO jobs (visible_at, body) VALUES (?1, ?2)")?;
                for task in tasks {
                    let body = serde_json::to_string(task).expect("tasks serialize");
                    insert.execute(params![task.due_at(), body])?;
                }
                Ok(())
            })
            .await
            .map_err(|e| not_accepted(tasks.len(), e))?;
        self.ready.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::{DeliveryId, Job};
    use crate::domain::hook::HookId;

    fn job(due_at: i64) -> Job {
        Job {
            hook_id: HookId::parse("hook_q").unwrap(),
            delivery_id: DeliveryId::generate(),
            attempt: 1,
            due_at,
            reopen: false,
            rate_slot: None,
        }
    }

    #[tokio::test]
    async fn delayed_jobs_wait_and_unacknowledged_ones_come_back() {
        let q = SqliteQueue::in_memory(Duration::from_millis(300), 2);
        let start = now_ms();
        q.enqueue(&[job(start + 150), job(start)]).await.unwrap();
        let first = q.receive(10).await;
        assert_eq!(first.len(), 1);
        assert!(now_ms() - start < 150, "a due job is visible at once");
        let delayed = q.receive(10).await;
        assert_eq!(delayed.len(), 1);
        assert!(
            now_ms() - start >= 150,
            "a delayed job waits for its due time"
        );
        q.acknowledge([delayed[0].id.as_str()]).unwrap();
        let again = q.receive(10).await;
        assert_eq!(again[0].id, first[0].id, "an unacknowledged job comes back");
        assert!(now_ms() - start >= 300);
        let waited = tokio::time::timeout(Duration::from_millis(800), q.receive(10)).await;
        assert!(
            waited.is_err(),
            "a job past its receive limit is not delivered"
        );
        assert_eq!(q.dead_letters().len(), 1);
        assert!(q.is_empty());
    }
}
