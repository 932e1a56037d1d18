//! The two ports the handlers need: a store for hooks and deliveries, and a job queue.
//! DynamoDB/SQS adapters serve AWS; embedded adapters serve the local dev server and tests.

use crate::domain::catalog::EventName;
use crate::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus, Job};
use crate::domain::event::EventId;
use crate::domain::health::{BatchHealth, HealthCounts, HookHealth};
use crate::domain::hook::{Hook, HookId, HookMode, HookPosition};
use crate::domain::recovery::{Recovery, RecoveryId};
use crate::domain::task::Task;
use async_trait::async_trait;

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

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue did not accept {failed} of {total} jobs: {reason}")]
    NotAccepted {
        failed: usize,
        total: usize,
        reason: String,
    },
}

/// The outcome of one attempt (or of dropping the delivery) to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub hook_id: HookId,
    pub delivery_id: DeliveryId,
    /// Attempts already recorded; the write succeeds only if this still holds and the
    /// delivery is pending, so the same attempt is never recorded twice.
    pub expected_attempts: u32,
    pub attempt: Option<Attempt>,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Recorded,
    /// Someone else recorded this attempt first, or the delivery is no longer pending.
    AlreadyRecorded,
}

/// What an idempotent ingest finds for an event id.
#[derive(Debug, Clone, PartialEq)]
pub enum EventClaim {
    /// This caller owns the id now: fan out, then complete or release the claim.
    /// `first_claimed_at` is when the id was first claimed in this window (kept when an
    /// abandoned or released claim is taken over, so the retried fan-out derives the same
    /// delivery ids); `resumed` says an earlier fan-out of it may have left records.
    Claimed {
        first_claimed_at: i64,
        resumed: bool,
    },
    /// The event was accepted before, within the window: repeat this answer.
    Accepted(serde_json::Value),
    /// Another request is fanning this event out right now.
    InProgress,
}

/// A hook subscribed to an event, as the subscription index holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subscriber {
    pub hook_id: HookId,
    pub mode: HookMode,
}

/// Attempts to add to one hook's counters of one hour (unix hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyCount {
    pub hook_id: HookId,
    pub hour: i64,
    pub counts: HealthCounts,
}

/// Which deliveries a listing wants: created in `[from_ms, to_ms]`, of one event, in some
/// statuses (all when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub event: Option<EventName>,
    pub statuses: Option<Vec<DeliveryStatus>>,
}

impl DeliveryFilter {
    pub fn between(from_ms: i64, to_ms: i64) -> Self {
        Self {
            from_ms,
            to_ms,
            event: None,
            statuses: None,
        }
    }

    /// The ids a page may hold, highest first: the filter's time range, below `after` when
    /// paging on; `None` when nothing is left.
    pub fn id_range(&self, after: Option<&DeliveryId>) -> Option<(DeliveryId, DeliveryId)> {
        let low = DeliveryId::lowest_at(self.from_ms);
        let mut high = DeliveryId::highest_at(self.to_ms);
        if let Some(after) = after {
            high = high.min(after.predecessor()?);
        }
        (low <= high).then_some((low, high))
    }

    pub fn matches(&self, d: &Delivery) -> bool {
        self.event.is_none_or(|e| d.event == e)
            && self.statuses.as_ref().is_none_or(|s| s.contains(&d.status))
    }
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

#[async_trait]
pub trait Store: Send + Sync {
    /// Creates the hook and its subscriptions.
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError>;
    async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError>;
    /// One page of hooks, oldest first, after `after` (exclusive).
    async fn page_hooks(
        &self,
        after: Option<&HookPosition>,
        limit: usize,
    ) -> Result<Page<Hook, HookPosition>, StoreError>;
    async fn count_hooks(&self) -> Result<u64, StoreError>;
    /// Replaces `previous` (as read) by `next`, subscriptions included; `Conflict` if it changed.
    async fn update_hook(&self, previous: &Hook, next: &Hook) -> Result<(), StoreError>;
    /// Deletes the hook and its subscriptions; false when it did not exist.
    async fn delete_hook(&self, hook: &Hook) -> Result<bool, StoreError>;
    /// Enabled hooks subscribed to `event`, with their mode, from the subscription index.
    async fn subscribers(&self, event: EventName) -> Result<Vec<Subscriber>, StoreError>;

    /// Writes new delivery records (their ids were never used).
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError>;
    /// Writes the records that do not exist yet and leaves existing ones untouched; returns,
    /// in order, each record as stored and whether this call created it.
    async fn insert_missing_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<(Delivery, bool)>, StoreError>;
    /// Removes delivery records whose jobs could not be queued (the event was refused).
    async fn delete_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError>;
    async fn get_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError>;
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError>;
    /// One page of `hook`'s deliveries matching `filter`, newest first, after the position
    /// `after` (exclusive; `None` starts from the newest). A page reads O(`limit`) items
    /// however many the hook has: with a selective filter it may hold fewer than `limit`
    /// while `next` still says where to go on.
    async fn page_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        after: Option<&DeliveryId>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError>;
    /// Makes a finished delivery pending again for a re-send; `None` when it does not exist,
    /// `Conflict` when it is still pending or (with `expected_attempts`) has another number
    /// of attempts on record than the re-send expects.
    async fn reopen_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
        now_ms: i64,
        expected_attempts: Option<u32>,
    ) -> Result<Option<Delivery>, StoreError>;

    async fn create_recovery(&self, recovery: &Recovery) -> Result<(), StoreError>;
    async fn get_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError>;
    /// Records one step of a running recovery: its cursor moves from `from` to `to` (the
    /// recovery is done when `to` is `None`) and `resent` is added. False when the recovery is
    /// not at `from` any more (a copy of the step was recorded first) or is done.
    async fn advance_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
        from: Option<&DeliveryId>,
        to: Option<&DeliveryId>,
        resent: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Claims an event id for fan-out; a claim lasts `window_ms`, an unfinished one `stale_ms`.
    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError>;
    /// Stores the answer of a claimed event, repeated to later posts of the same id.
    async fn complete_event(
        &self,
        id: &EventId,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Frees a claim whose fan-out failed, so the caller can retry at once; the retry is
    /// `resumed` with the same `first_claimed_at`.
    async fn release_event(&self, id: &EventId) -> Result<(), StoreError>;

    /// Adds attempts to hourly counters: one write per (hook, hour), however many attempts a
    /// sender batch made.
    async fn count_attempts(&self, counts: &[HourlyCount]) -> Result<(), StoreError>;
    /// Takes the hook's next delivery slot, `interval_ms` after the previous one, shared by
    /// every sender: returns when this delivery may go (`now_ms` when the hook is idle).
    async fn reserve_slot(
        &self,
        hook: &HookId,
        interval_ms: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    /// Applies one batch's attempts of a hook to its failure state in one write; returns the
    /// state before and after (equal when a later success is already on record).
    async fn record_health(
        &self,
        hook: &HookId,
        batch: &BatchHealth,
    ) -> Result<(HookHealth, HookHealth), StoreError>;
    /// The hook's failure state (healthy when none is on record).
    async fn hook_health(&self, hook: &HookId) -> Result<HookHealth, StoreError>;
    /// Takes the right to send the hook's `Hook.FailingSince` notice: true, and the time
    /// recorded as its `noticedAt`, unless a notice was sent within `window_ms` before `now_ms`.
    async fn claim_notice(
        &self,
        hook: &HookId,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Forgets the hook's failure state (re-enabled or deleted).
    async fn reset_health(&self, hook: &HookId) -> Result<(), StoreError>;
    /// The hourly counters of the hours `[from_hour, to_hour]` (unix hours) that hold any
    /// attempt, oldest first; at most [`crate::domain::health::MAX_HOURS`] + 1 hours are asked for.
    async fn hourly_health(
        &self,
        hook: &HookId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, HealthCounts)>, StoreError>;
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues every task, each visible at its due time (or within the queue's longest
    /// delay). Succeeds only when every task was accepted.
    async fn enqueue_tasks(&self, tasks: &[Task]) -> Result<(), QueueError>;

    /// Enqueues delivery jobs.
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let tasks: Vec<Task> = jobs.iter().cloned().map(Task::Delivery).collect();
        self.enqueue_tasks(&tasks).await
    }
}

/// A received queue message: its receipt id (SQS message id) and the job JSON.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub body: String,
}
