//! The job queue on SQLite, with SQS's semantics: delayed visibility, a visibility timeout
//! while a message is being processed, delete on acknowledge, and a dead-letter table. A
//! delivery's next attempt is queued on its own row (`due_at`); other tasks are `jobs` rows.
//! Both survive a restart; their order and what is in flight live in memory, so a receive
//! reads and writes nothing.

use super::Database;
use super::ready::{Key, Payload};
use crate::domain::clock::now_ms;
use crate::domain::delivery::{DeliveryStatus, Job};
use crate::domain::task::Task;
use crate::ports::{JobQueue, JobSource, QueueError, QueueMessage, ReceivedMessage, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::time::Duration;

pub struct SqliteQueue {
    db: Arc<Database>,
    visibility: Duration,
    max_receives: u32,
}

/// Where a task is queued.
enum Placed {
    /// Nowhere: its attempt is on record, or its delivery finished; the copy that made the
    /// attempt is still queued until acknowledged.
    Done,
    /// On its delivery's row, whose `due_at` already says so.
    Queued(i64, Job),
    /// On its delivery's row, once `due_at` is written.
    Row(i64, Job),
    /// As a `jobs` row.
    Job(String),
}

/// What a delivery row says of a job for it (neither a re-send nor deferred to a rate-limit
/// slot): the row and where it is queued now, when the job is its next attempt.
enum Row {
    Next(i64, Option<i64>),
    Done,
    Other,
}

fn carried_by_row(conn: &Connection, job: &Job) -> rusqlite::Result<Row> {
    if job.reopen || job.rate_slot.is_some() {
        return Ok(Row::Other);
    }
    let row: Option<(i64, String, u32, Option<i64>)> = conn
        .prepare_cached(
            "SELECT seq, status, attempts, due_at FROM deliveries WHERE hook_id = ?1 AND id = ?2",
        )?
        .query_row([job.hook_id.as_str(), &job.delivery_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(match row {
        Some((seq, status, attempts, due))
            if status == DeliveryStatus::Pending.as_str() && attempts + 1 == job.attempt =>
        {
            Row::Next(seq, due)
        }
        Some((_, status, attempts, _))
            if status != DeliveryStatus::Pending.as_str() || attempts >= job.attempt =>
        {
            Row::Done
        }
        _ => Row::Other,
    })
}

fn place(conn: &Connection, task: &Task) -> rusqlite::Result<Placed> {
    if let Task::Delivery(job) = task {
        match carried_by_row(conn, job)? {
            Row::Next(seq, due) if due == Some(job.due_at) => {
                return Ok(Placed::Queued(seq, job.clone()));
            }
            Row::Next(seq, _) => return Ok(Placed::Row(seq, job.clone())),
            Row::Done => return Ok(Placed::Done),
            Row::Other => {}
        }
    }
    Ok(Placed::Job(
        serde_json::to_string(task).expect("tasks serialize"),
    ))
}

impl SqliteQueue {
    pub fn new(db: Arc<Database>, visibility: Duration, max_receives: u32) -> Arc<Self> {
        Arc::new(Self {
            db,
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
            let notified = self.db.queued.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.look(max) {
                Ok(Ok(messages)) => return messages,
                Ok(Err(wait)) => wait,
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

    /// The messages due now, or how long until the next one is.
    fn look(&self, max: usize) -> Result<Result<Vec<QueueMessage>, Duration>, StoreError> {
        let now = now_ms();
        let hidden_until = now + self.visibility.as_millis() as i64;
        let (taken, dead, next) = {
            let mut ready = self.db.ready();
            let (taken, dead) = ready.take(now, max, hidden_until, self.max_receives);
            (taken, dead, ready.next_visible())
        };
        if !dead.is_empty() {
            self.db.write_soon(|tx| {
                for (key, body, held) in &dead {
                    if *held {
                        unqueue(tx, *key)?;
                    }
                    tx.prepare_cached("INSERT INTO dead_jobs (failed_at, body) VALUES (?1, ?2)")?
                        .execute(params![now, body])?;
                    tracing::error!(message_id = ?key, "job moved to the dead-letter table");
                }
                Ok(())
            })?;
        }
        if !taken.is_empty() {
            return Ok(Ok(taken
                .into_iter()
                .map(|t| QueueMessage {
                    id: t.receipt,
                    body: t.body,
                    receive_count: t.receives,
                })
                .collect()));
        }
        let wait = next.map_or(1000, |at| (at - now).clamp(1, 1000));
        Ok(Err(Duration::from_millis(wait as u64)))
    }

    /// Deletes processed messages. A delivery whose attempt was recorded has left the queue
    /// (or been queued again) with the record already: its receipt then writes nothing.
    pub fn acknowledge<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let keys: Vec<Key> = {
            let mut ready = self.db.ready();
            ids.into_iter()
                .filter_map(|id| ready.acknowledge(id))
                .collect()
        };
        if keys.is_empty() {
            return Ok(());
        }
        self.db.write_soon(|tx| {
            for key in &keys {
                unqueue(tx, *key)?;
            }
            Ok(())
        })
    }

    /// Messages still queued or in flight.
    pub fn len(&self) -> usize {
        self.db.ready().len()
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

/// Removes an entry from the file.
fn unqueue(conn: &Connection, key: Key) -> Result<(), StoreError> {
    match key {
        Key::Delivery(seq) => conn
            .prepare_cached("UPDATE deliveries SET due_at = NULL WHERE seq = ?1")?
            .execute([seq])?,
        Key::Job(id) => conn
            .prepare_cached("DELETE FROM jobs WHERE id = ?1")?
            .execute([id])?,
    };
    Ok(())
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
    /// Tasks whose delivery rows are queued for them already (a fresh delivery's first
    /// attempt, a recorded attempt's next one) write nothing.
    async fn enqueue_tasks(&self, tasks: &[Task]) -> Result<(), QueueError> {
        let placed = {
            let conn = self.db.lock();
            tasks
                .iter()
                .map(|t| place(&conn, t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| not_accepted(tasks.len(), e.into()))?
        };
        let placed: Vec<Option<(Key, Payload)>> = if placed
            .iter()
            .all(|p| matches!(p, Placed::Queued(..) | Placed::Done))
        {
            placed
                .into_iter()
                .map(|p| match p {
                    Placed::Queued(seq, job) => Some((Key::Delivery(seq), Payload::Delivery(job))),
                    _ => None,
                })
                .collect()
        } else {
            self.db
                .write(|tx| {
                    let mut keys = Vec::with_capacity(tasks.len());
                    for task in tasks {
                        keys.push(match place(tx, task)? {
                            Placed::Done => None,
                            Placed::Queued(seq, job) => {
                                Some((Key::Delivery(seq), Payload::Delivery(job)))
                            }
                            Placed::Row(seq, job) => {
                                tx.prepare_cached(
                                    "UPDATE deliveries SET due_at = ?2 WHERE seq = ?1",
                                )?
                                .execute(params![seq, job.due_at])?;
                                Some((Key::Delivery(seq), Payload::Delivery(job)))
                            }
                            Placed::Job(body) => {
                                tx.prepare_cached(
                                    "INSERT INTO jobs (visible_at, body) VALUES (?1, ?2)",
                                )?
                                .execute(params![task.due_at(), body])?;
                                Some((Key::Job(tx.last_insert_rowid()), Payload::Job(body)))
                            }
                        });
                    }
                    Ok(keys)
                })
                .await
                .map_err(|e| not_accepted(tasks.len(), e))?
        };
        self.db.queued(|ready| {
            for (placed, task) in placed.into_iter().zip(tasks) {
                let Some((key, payload)) = placed else {
                    continue;
                };
                match (key, payload) {
                    (Key::Delivery(seq), Payload::Delivery(job)) => ready.put_delivery(seq, job),
                    (key, payload) => ready.put(key, task.due_at(), payload),
                }
            }
        });
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
