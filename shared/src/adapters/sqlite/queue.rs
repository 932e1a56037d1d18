//! The job queue on SQLite, with SQS's semantics: delayed visibility, a visibility timeout
//! while a message is being processed, delete on acknowledge, and a dead-letter table. Jobs
//! are rows of the same database as the deliveries, so they survive a restart.

use super::Database;
use crate::clock::now_ms;
use crate::consumer::{JobSource, ReceivedMessage};
use crate::ports::{JobQueue, QueueError, QueueMessage, StoreError};
use crate::recovery::Task;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub struct SqliteQueue {
    db: Arc<Database>,
    ready: Notify,
    visibility: Duration,
    max_receives: u32,
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
        })
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
        self.db.write_soon(|tx| self.take_due(tx, now, max))
    }

    fn take_due(
        &self,
        tx: &rusqlite::Connection,
        now: i64,
        max: usize,
    ) -> Result<Look, StoreError> {
        let due: Vec<(i64, u32, String)> = tx
            .prepare_cached(
                "SELECT id, receives, body FROM jobs WHERE visible_at <= ?1 \
                 ORDER BY visible_at, id LIMIT ?2",
            )?
            .query_map(params![now, max as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        if due.is_empty() {
            let next: Option<i64> = tx
                .query_row("SELECT min(visible_at) FROM jobs", [], |r| r.get(0))
                .optional()?
                .flatten();
            let wait = next.map_or(1000, |at| (at - now).clamp(1, 1000));
            return Ok(Look::WaitFor(Duration::from_millis(wait as u64)));
        }
        let hidden_until = now + self.visibility.as_millis() as i64;
        let mut out = Vec::with_capacity(due.len());
        for (id, receives, body) in due {
            if receives >= self.max_receives {
                tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                    .execute([id])?;
                tx.prepare_cached("INSERT INTO dead_jobs (failed_at, body) VALUES (?1, ?2)")?
                    .execute(params![now, body])?;
                tracing::error!(message_id = id, "job moved to the dead-letter table");
                continue;
            }
            tx.prepare_cached(
                "UPDATE jobs SET visible_at = ?2, receives = receives + 1 WHERE id = ?1",
            )?
            .execute([id, hidden_until])?;
            out.push(QueueMessage {
                id: id.to_string(),
                body,
            });
        }
        Ok(if out.is_empty() {
            Look::WaitFor(Duration::from_millis(1))
        } else {
            Look::Messages(out)
        })
    }

    /// Deletes processed messages.
    pub fn acknowledge<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        self.db.write_soon(|tx| {
            let mut delete = tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?;
            for id in ids {
                if let Ok(id) = id.parse::<i64>() {
                    delete.execute([id])?;
                }
            }
            Ok(())
        })
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
    use crate::delivery::{DeliveryId, Job};
    use crate::hook::HookId;

    fn job(due_at: i64) -> Job {
        Job {
            hook_id: HookId::parse("hook_q").unwrap(),
            delivery_id: DeliveryId::generate(),
            attempt: 1,
            due_at,
            reopen: false,
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
