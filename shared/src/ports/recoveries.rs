//! Recoveries: re-sends of a hook's failed deliveries over a time range, step by step.

use super::StoreError;
use crate::domain::delivery::DeliveryId;
use crate::domain::hook::HookId;
use crate::domain::recovery::{Recovery, RecoveryId};
use async_trait::async_trait;

#[async_trait]
pub trait RecoveryStore: Send + Sync {
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
}
