//! The one queue consumer loop for every in-process drain (the dev server, the worker binary,
//! the tests): receive a batch, hand it to the sender, acknowledge what did not fail. On AWS,
//! Lambda's SQS event source mapping plays this part around the same `process_batch`.

use crate::app::sender::Sender;

use crate::ports::{JobSource, QueueError, QueueMessage};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Jobs per batch, as the sender Lambda's event source mapping delivers them.
pub const BATCH: usize = 10;

/// One round: receive, process, acknowledge the messages the sender did not report failed.
/// Returns how many messages were received.
pub async fn consume_once(
    source: &dyn JobSource,
    sender: &Arc<Sender>,
) -> Result<usize, QueueError> {
    let received = source.receive_batch(BATCH).await?;
    if received.is_empty() {
        return Ok(0);
    }
    let messages: Vec<QueueMessage> = received.iter().map(|r| r.message.clone()).collect();
    let failed = sender.process_batch(&messages).await;
    let done: Vec<String> = received
        .iter()
        .filter(|r| !failed.contains(&r.message.id))
        .map(|r| r.receipt_handle.clone())
        .collect();
    if !done.is_empty() {
        source.acknowledge(&done).await?;
    }
    Ok(received.len())
}

/// Rounds until `stop` turns true; a queue error is logged and retried after a short pause
/// (the messages stay on the queue and come back).
pub async fn consume(
    source: Arc<dyn JobSource>,
    sender: Arc<Sender>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let round = tokio::select! {
            r = consume_once(source.as_ref(), &sender) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        if let Err(e) = round {
            tracing::warn!(error = %e, "queue round failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
