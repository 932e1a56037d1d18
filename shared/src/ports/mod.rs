//! The ports the handlers need: a store, one trait per resource it keeps, and a job queue.
//! DynamoDB/SQS adapters serve AWS; embedded adapters serve the local dev server and tests.
//!
//! Each resource is a port of its own ([`HookStore`], [`DeliveryLog`], [`EventClaims`],
//! [`HealthStore`], [`RecoveryStore`], [`CheckStore`]); [`Store`] is every one of them at once, what the
//! handlers hold as `Arc<dyn Store>`. On `dyn Store` (or a type bound by a port) every port
//! method resolves as it is; on a concrete adapter, the port's trait must be in scope.

mod checks;
mod claims;
mod deliveries;
pub mod forward;
mod health;
mod hooks;
mod queue;
mod recoveries;

pub use checks::CheckStore;
pub use claims::{EventClaim, EventClaims};
pub use deliveries::{
    AttemptRecord, Count, DeliveryFilter, DeliveryLog, EventFields, MAX_COUNT_READ, RecordOutcome,
};
pub use health::{HealthStore, HourlyCount};
pub use hooks::{HookStore, Subscriber};
pub use queue::{JobQueue, JobSource, MAX_RECEIVES, QueueError, QueueMessage, ReceivedMessage};
pub use recoveries::RecoveryStore;

use crate::domain::delivery::DeliveryId;

/// The namespace every store key carries. One value today; it lets several tenants share one
/// deployment later without migrating the data already stored.
pub const NAMESPACE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item changed since it was read.
    #[error("the item was changed concurrently")]
    Conflict,
    #[error("the item already exists")]
    AlreadyExists,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

/// The whole store: every resource port at once. Implemented for every type that implements
/// them all, so an adapter (or a fake) implements the resource ports and is a `Store`.
pub trait Store:
    HookStore + DeliveryLog + EventClaims + HealthStore + RecoveryStore + CheckStore
{
}

impl<T> Store for T where
    T: HookStore + DeliveryLog + EventClaims + HealthStore + RecoveryStore + CheckStore + ?Sized
{
}

/// One page of a listing, and the position after its last item while there may be more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C = DeliveryId> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Default for Page<T, C> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }
}
