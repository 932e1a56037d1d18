//! Event claims: an event id is fanned out once within its idempotency window.

use super::StoreError;
use crate::domain::event::EventId;
use async_trait::async_trait;

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

#[async_trait]
pub trait EventClaims: Send + Sync {
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
}
