//! Event claims: an event id is fanned out once within its idempotency window.

use super::StoreError;
use crate::domain::event::EventId;
use crate::domain::json::RawJson;
use async_trait::async_trait;
use futures::future::join_all;

/// How many claims or answers the default batch methods write at once.
const AT_ONCE: usize = 16;

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
    Accepted(RawJson),
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
    /// Claims several event ids, answering in order. On an error none of them stays claimed.
    /// By default one [`EventClaims::claim_event`] each, a few at a time.
    async fn claim_events(
        &self,
        ids: &[EventId],
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<Vec<EventClaim>, StoreError> {
        let mut claims = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(AT_ONCE) {
            let calls = chunk
                .iter()
                .map(|id| self.claim_event(id, now_ms, window_ms, stale_ms));
            claims.extend(join_all(calls).await);
        }
        if claims.iter().all(Result::is_ok) {
            return Ok(claims.into_iter().flatten().collect());
        }
        let mut first_error = None;
        for (id, claim) in ids.iter().zip(claims) {
            match claim {
                Ok(EventClaim::Claimed { .. }) => {
                    if let Err(e) = self.release_event(id).await {
                        tracing::warn!(event_id = %id, error = %e, "could not release the event's claim");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(StoreError::Unavailable("no claim".into())))
    }
    /// Stores the answer of a claimed event, repeated to later posts of the same id; it is
    /// durable when this returns.
    async fn complete_event(&self, id: &EventId, answer: &RawJson) -> Result<(), StoreError>;
    /// Stores the answers of several claimed events. They may become durable after this
    /// returns (the embedded store commits them with its next group): an answer lost with the
    /// process leaves its claim unfinished, and a repeat resumes it once it is abandoned,
    /// finding the fan-out's records. By default one [`EventClaims::complete_event`] each.
    async fn complete_events(&self, answers: &[(EventId, RawJson)]) -> Result<(), StoreError> {
        for chunk in answers.chunks(AT_ONCE) {
            let calls = chunk
                .iter()
                .map(|(id, answer)| self.complete_event(id, answer));
            join_all(calls)
                .await
                .into_iter()
                .collect::<Result<(), _>>()?;
        }
        Ok(())
    }
    /// Whether the event's claim holds an answer (its fan-out finished), read without writing.
    async fn answered(&self, id: &EventId) -> Result<bool, StoreError>;
    /// Frees a claim whose fan-out failed, so the caller can retry at once; the retry is
    /// `resumed` with the same `first_claimed_at`.
    async fn release_event(&self, id: &EventId) -> Result<(), StoreError>;
}
