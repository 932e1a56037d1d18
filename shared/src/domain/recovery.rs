//! Recovery at any volume: `POST /api/hooks/{id}/recover` records a recovery and queues its
//! first step; each step re-queues one page of failed deliveries and then the next step with
//! its cursor, so an outage of any size is re-sent without a long request.

use crate::domain::delivery::DeliveryId;
use crate::domain::hook::HookId;
use crate::domain::ids::typed_id;
use serde::{Deserialize, Serialize};

typed_id!(
    /// A ULID prefixed with `rcv_`.
    ulid RecoveryId, "rcv_", "recoveryId", "is not a recovery id"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryStatus {
    Running,
    Done,
}

/// A recovery as stored: which deliveries it re-sends, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub id: RecoveryId,
    pub hook_id: HookId,
    /// Deliveries created in `[since, until]` (unix ms) that failed or were dropped.
    pub since: i64,
    pub until: i64,
    pub status: RecoveryStatus,
    /// Deliveries queued again so far.
    pub resent: u64,
    /// Steps (pages) done so far.
    pub steps: u64,
    /// Where the next step goes on from (`None` before the first one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DeliveryId>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One step of a recovery, as a queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStep {
    pub hook_id: HookId,
    pub recovery_id: RecoveryId,
    /// The recovery's cursor this step starts from; a copy of a step already done no longer
    /// matches it and is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DeliveryId>,
    pub due_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_ids_round_trip() {
        let id = RecoveryId::generate();
        assert_eq!(RecoveryId::parse(&id.to_string()).unwrap(), id);
        assert!(RecoveryId::parse("rcv_nope").is_err());
    }
}
