//! The job queue: the handlers enqueue delivery jobs and other tasks, and the in-process
//! consumer drains them as a job source (on AWS, Lambda's SQS event source does).

use crate::domain::delivery::Job;
use crate::domain::task::Task;
use async_trait::async_trait;

/// Receives of one message after which the queue moves it to its dead-letter queue (the
/// template's `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue did not accept {failed} of {total} jobs: {reason}")]
    NotAccepted {
        failed: usize,
        total: usize,
        reason: String,
    },
}

impl QueueError {
    /// True when none of the jobs may have been queued.
    pub fn queued_none(&self) -> bool {
        match self {
            QueueError::NotAccepted { failed, total, .. } => failed >= total,
        }
    }
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues every task, each visible at its due time (or within the queue's longest
    /// delay). Succeeds only when every task was accepted.
    async fn enqueue_tasks(&self, tasks: &[Task]) -> Result<(), QueueError>;

    /// True when a message of this queue may stand for a delivery no record holds yet (the
    /// queue is durable on its own): new deliveries then travel in their first jobs and their
    /// first attempts write their records.
    fn carries_deliveries(&self) -> bool {
        false
    }

    /// Enqueues delivery jobs.
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let tasks: Vec<Task> = jobs.iter().cloned().map(Task::Delivery).collect();
        self.enqueue_tasks(&tasks).await
    }
}

/// A received queue message: its receipt id (SQS message id), the job JSON, and how many times
/// it was received (SQS `ApproximateReceiveCount`; more than 1 when an earlier receive may
/// have processed it).
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
}

/// A received message with what it takes to acknowledge it.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message: QueueMessage,
    pub receipt_handle: String,
}

/// A queue the consumer can drain.
#[async_trait]
pub trait JobSource: Send + Sync {
    /// Up to `max` messages, waiting about a second for the first; an empty batch is normal.
    async fn receive_batch(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Deletes processed messages.
    async fn acknowledge(&self, receipt_handles: &[String]) -> Result<(), QueueError>;
}
