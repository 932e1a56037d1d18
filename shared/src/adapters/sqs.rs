//! The SQS job queue: SendMessageBatch in tens, several at a time, failed entries retried,
//! delays capped at SQS's 900 s (the sender re-enqueues jobs that arrive before their due time).

use crate::domain::clock::now_ms;
use crate::domain::task::Task;
use crate::ports::{JobQueue, JobSource, QueueError, QueueMessage};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use futures::StreamExt;
use std::time::Duration;

/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY_SECS: i64 = 900;
const SEND_ROUNDS: u32 = 4;
/// `SendMessageBatch` requests one enqueue keeps in flight (a 100-event request at fan-out 10
/// is 100 of them).
const SENDS_AT_ONCE: usize = 10;

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

pub use crate::ports::ReceivedMessage;

impl SqsQueue {
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Long-polls for up to `max` messages (what Lambda's event source mapping does).
    pub async fn receive(
        &self,
        max: i32,
        wait_secs: i32,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| not_accepted(0, 0, e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Some(ReceivedMessage {
                    message: QueueMessage {
                        id: m.message_id?,
                        body: m.body.unwrap_or_default(),
                        receive_count,
                    },
                    receipt_handle: m.receipt_handle?,
                })
            })
            .collect())
    }

    /// Deletes (acknowledges) messages by receipt handle.
    pub async fn delete(&self, receipt_handles: &[String]) -> Result<(), QueueError> {
        for chunk in receipt_handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| not_accepted(chunk.len(), receipt_handles.len(), e))?;
            if !out.failed.is_empty() {
                return Err(QueueError::NotAccepted {
                    failed: out.failed.len(),
                    total: receipt_handles.len(),
                    reason: "delete failed".into(),
                });
            }
        }
        Ok(())
    }
}

fn not_accepted(failed: usize, total: usize, e: impl std::error::Error) -> QueueError {
    QueueError::NotAccepted {
        failed,
        total,
        reason: DisplayErrorContext(e).to_string(),
    }
}

/// Seconds to hide a job for so it arrives at (or, past the cap, before) its due time.
pub fn delay_secs(due_at_ms: i64, now_ms: i64) -> i32 {
    let ms = (due_at_ms - now_ms).max(0);
    ((ms + 999) / 1000).min(MAX_DELAY_SECS) as i32
}

#[async_trait]
impl JobSource for SqsQueue {
    async fn receive_batch(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.receive(max.min(10) as i32, 1).await
    }

    async fn acknowledge(&self, receipt_handles: &[String]) -> Result<(), QueueError> {
        self.delete(receipt_handles).await
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    fn carries_deliveries(&self) -> bool {
        true
    }

    /// Sends ten tasks a request, up to [`SENDS_AT_ONCE`] requests at a time, each retried for
    /// its refused entries. On failure, says how many tasks were not accepted.
    async fn enqueue_tasks(&self, jobs: &[Task]) -> Result<(), QueueError> {
        let sends: Vec<_> = jobs
            .chunks(10)
            .map(|chunk| self.send_chunk(chunk))
            .collect();
        let results: Vec<Result<(), (usize, String)>> = futures::stream::iter(sends)
            .buffered(SENDS_AT_ONCE)
            .collect()
            .await;
        let mut failed = 0;
        let mut reason = String::new();
        for result in results {
            if let Err((refused, why)) = result {
                failed += refused;
                reason = why;
            }
        }
        if failed > 0 {
            return Err(QueueError::NotAccepted {
                failed,
                total: jobs.len(),
                reason,
            });
        }
        Ok(())
    }
}

impl SqsQueue {
    /// Sends up to ten tasks in one request, retrying refused entries; the number still
    /// refused, and why, when some are.
    async fn send_chunk(&self, chunk: &[Task]) -> Result<(), (usize, String)> {
        let now = now_ms();
        let mut pending: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, job)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(job).expect("tasks serialize"))
                    .delay_seconds(delay_secs(job.due_at(), now))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let mut last_error = String::new();
        for round in 0..SEND_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(50 << (2 * round))).await;
            }
            match self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(pending.clone()))
                .send()
                .await
            {
                Ok(out) => {
                    if out.failed.is_empty() {
                        return Ok(());
                    }
                    last_error = out
                        .failed
                        .first()
                        .map(|f| format!("{}: {}", f.code, f.message.clone().unwrap_or_default()))
                        .unwrap_or_default();
                    let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
                    pending.retain(|e| failed.contains(&e.id()));
                }
                Err(e) => last_error = DisplayErrorContext(e).to_string(),
            }
        }
        Err((pending.len(), last_error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_cap_at_fifteen_minutes() {
        assert_eq!(delay_secs(1_000, 1_000), 0);
        assert_eq!(delay_secs(500, 1_000), 0);
        assert_eq!(delay_secs(1_001, 0), 2);
        assert_eq!(delay_secs(3_600_000, 0), 900);
    }
}
