//! The embedded job queue, with SQS's semantics: delayed visibility, a visibility timeout
//! while a message is being processed, delete on acknowledge, and a dead-letter list.

use crate::clock::now_ms;
use crate::consumer::{JobSource, ReceivedMessage};
use crate::ports::{JobQueue, QueueError, QueueMessage};
use crate::recovery::Task;
use async_trait::async_trait;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

struct Entry {
    body: String,
    receives: u32,
    /// Messages are visible from this time (unix ms); stale heap entries are skipped.
    visible_at: i64,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    entries: HashMap<u64, Entry>,
    dead: Vec<String>,
}

pub struct MemoryQueue {
    inner: Mutex<Inner>,
    ready: Notify,
    visibility: Duration,
    max_receives: u32,
}

impl MemoryQueue {
    pub fn new(visibility: Duration, max_receives: u32) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
            visibility,
            max_receives,
        })
    }

    /// Waits until at least one message is visible, then takes up to `max` of them and hides
    /// them for the visibility timeout.
    pub async fn receive(&self, max: usize) -> Vec<QueueMessage> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut inner = self.lock();
                let now = now_ms();
                let mut out = Vec::new();
                while out.len() < max {
                    let Some(&Reverse((at, id))) = inner.heap.peek() else {
                        break;
                    };
                    if at > now {
                        break;
                    }
                    inner.heap.pop();
                    let hidden_until = now + self.visibility.as_millis() as i64;
                    let max_receives = self.max_receives;
                    let Some(entry) = inner.entries.get_mut(&id) else {
                        continue;
                    };
                    if entry.visible_at != at {
                        continue;
                    }
                    if entry.receives >= max_receives {
                        let entry = inner.entries.remove(&id).expect("entry was just found");
                        tracing::error!(message_id = id, "job moved to the dead-letter list");
                        inner.dead.push(entry.body);
                        continue;
                    }
                    entry.receives += 1;
                    entry.visible_at = hidden_until;
                    let body = entry.body.clone();
                    inner.heap.push(Reverse((hidden_until, id)));
                    out.push(QueueMessage {
                        id: id.to_string(),
                        body,
                    });
                }
                if !out.is_empty() {
                    return out;
                }
                inner
                    .heap
                    .peek()
                    .map(|Reverse((at, _))| Duration::from_millis((at - now).clamp(1, 1000) as u64))
                    .unwrap_or(Duration::from_secs(1))
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Deletes processed messages.
    pub fn acknowledge<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        for id in ids {
            if let Ok(id) = id.parse::<u64>() {
                inner.entries.remove(&id);
            }
        }
    }

    /// Messages still queued or in flight.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bodies of messages that were received too often without success.
    pub fn dead_letters(&self) -> Vec<String> {
        self.lock().dead.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl JobSource for MemoryQueue {
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
        MemoryQueue::acknowledge(self, receipt_handles.iter().map(String::as_str));
        Ok(())
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue_tasks(&self, jobs: &[Task]) -> Result<(), QueueError> {
        {
            let mut inner = self.lock();
            for job in jobs {
                let body = serde_json::to_string(job).expect("tasks serialize");
                let id = inner.next_id;
                inner.next_id += 1;
                inner.heap.push(Reverse((job.due_at(), id)));
                inner.entries.insert(
                    id,
                    Entry {
                        body,
                        receives: 0,
                        visible_at: job.due_at(),
                    },
                );
            }
        }
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
        let q = MemoryQueue::new(Duration::from_millis(300), 2);
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
        q.acknowledge([delayed[0].id.as_str()]);
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
