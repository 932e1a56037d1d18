//! The use cases, one file each: what the product does for a caller, an operator or a queued
//! task — accept events ([`ingest`]), relay a Logto instance's events ([`relay`]), call the
//! synchronous hooks ([`sync_call`]), deliver one job ([`deliver`]), keep a hook's health
//! ([`health`]), run a recovery ([`recovery`]), send the test button's samples ([`samples`]).
//!
//! A use case takes input already parsed (events, a job, a recovery step, a hook), works
//! through the ports (the store, the queue and the delivery client) by the domain's rules, and
//! returns a result or an error of its own for its caller to present. It knows nothing of
//! HTTP requests or queue messages: the API handlers only parse a request and map the result
//! to an answer, and the [`sender`] only drives a batch of queue messages through the use
//! cases ([`consumer`] feeds it from a queue in process; Lambda does on AWS). Every request to a hook endpoint is signed and posted in one place,
//! [`attempt::perform`].

pub mod attempt;
pub mod consumer;
pub mod deliver;
pub mod health;
pub mod ingest;
pub mod receiver_check;
pub mod recovery;
pub mod relay;
pub mod samples;
pub mod sender;
pub mod sync_call;
#[cfg(test)]
mod testing;

use crate::domain::hook::{Hook, HookId};
use crate::ports::{QueueError, StoreError};
use async_trait::async_trait;

/// Our own infrastructure failed, the store or the queue: the use case could not finish. Its
/// caller retries (the queue hands the job out again) or answers that the service is
/// unavailable. An endpoint's failure is never one: it is an outcome to record.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Where a use case reads hooks: the store, or a sender batch that reads each hook once.
#[async_trait]
pub trait HookReader: Send + Sync {
    async fn hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError>;
}
