//! The delivery log: one record per (hook, event), its attempts, and listings of a hook's log.

use super::{Page, StoreError};
use crate::domain::catalog::EventName;
use crate::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus};
use crate::domain::event::EventId;
use crate::domain::hook::HookId;
use async_trait::async_trait;

/// The outcome of one attempt (or of dropping the delivery) to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub hook_id: HookId,
    pub delivery_id: DeliveryId,
    /// The delivery's own expiry (unix seconds): what this write stores beside it goes then too.
    pub expires_at: i64,
    /// Attempts already recorded; the write succeeds only if this still holds and the
    /// delivery is pending, so the same attempt is never recorded twice.
    pub expected_attempts: u32,
    pub attempt: Option<Attempt>,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub reason: Option<String>,
}

/// An event's delivered fields (without `hookId`), kept once for the jobs of its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields {
    pub event_id: EventId,
    /// When it was fanned out (its deliveries' `createdAt`).
    pub created_at: i64,
    pub fields: String,
    /// Unix seconds after which it may be deleted.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Recorded,
    /// Someone else recorded this attempt first, or the delivery is no longer pending.
    AlreadyRecorded,
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

/// How many deliveries a listing holds: exact, or a lower bound when there were more than
/// the count's cap, or more than [`MAX_COUNT_READ`] entries to read to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub counted: u64,
    pub exact: bool,
}

/// Most entries one count reads: a count costs what reading its entries costs.
pub const MAX_COUNT_READ: u64 = 20_000;

#[async_trait]
pub trait DeliveryLog: Send + Sync {
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
    /// The hook's deliveries the filter matches, counted up to `cap` by reading at most
    /// [`MAX_COUNT_READ`] entries.
    async fn count_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        cap: u64,
    ) -> Result<Count, StoreError>;
    /// Records the first attempt (or end) of a delivery no record holds yet: `pending` as it
    /// stood before, `record` what became of it. `AlreadyRecorded` when a record exists (another
    /// copy of the job wrote it).
    async fn record_first_attempt(
        &self,
        pending: &Delivery,
        record: &AttemptRecord,
    ) -> Result<RecordOutcome, StoreError> {
        let (stored, created) = self
            .insert_missing_deliveries(std::slice::from_ref(pending))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("an insert answered nothing".into()))?;
        if !created && (stored.status != DeliveryStatus::Pending || !stored.attempts.is_empty()) {
            return Ok(RecordOutcome::AlreadyRecorded);
        }
        self.record_attempt(record).await
    }
    /// Keeps the delivered fields of events too large to travel in each of their jobs.
    async fn put_event_fields(&self, events: &[EventFields]) -> Result<(), StoreError> {
        let _ = events;
        Err(StoreError::Unavailable(
            "this store keeps bodies with their deliveries".into(),
        ))
    }
    /// The fields [`DeliveryLog::put_event_fields`] kept for the event `event` fanned out at
    /// `created_at`.
    async fn event_fields(
        &self,
        event: &EventId,
        created_at: i64,
    ) -> Result<Option<String>, StoreError> {
        let _ = (event, created_at);
        Ok(None)
    }
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
}
