//! What the senders keep per hook besides its deliveries: hourly attempt counters, the
//! failure state behind `Hook.FailingSince`, and the rate limit's next free slot.

use super::StoreError;
use crate::domain::health::{BatchHealth, HealthCounts, HookHealth};
use crate::domain::hook::HookId;
use async_trait::async_trait;

/// Attempts to add to one hook's counters of one hour (unix hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyCount {
    pub hook_id: HookId,
    pub hour: i64,
    pub counts: HealthCounts,
}

#[async_trait]
pub trait HealthStore: Send + Sync {
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
