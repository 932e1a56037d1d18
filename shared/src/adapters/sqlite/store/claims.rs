//! Event claims on SQLite: an `events` row per event id in the namespace. Neither a request's
//! claims nor its answers wait for their commit: its deliveries, written after the claims on
//! the same connection, wait for theirs, which commits the claims too; a claim lost with the
//! process is claimed again, and a lost answer is found again by resuming the claim.

use super::{SqliteStore, namespaced};
use crate::domain::event::EventId;
use crate::domain::json::RawJson;
use crate::ports::{EventClaim, EventClaims, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

#[async_trait]
impl EventClaims for SqliteStore {
    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError> {
        self.db
            .write_soon(|conn| claim(conn, id, now_ms, window_ms, stale_ms))
    }

    async fn claim_events(
        &self,
        ids: &[EventId],
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<Vec<EventClaim>, StoreError> {
        self.db.write_soon(|conn| {
            ids.iter()
                .map(|id| claim(conn, id, now_ms, window_ms, stale_ms))
                .collect()
        })
    }

    async fn complete_event(&self, id: &EventId, answer: &RawJson) -> Result<(), StoreError> {
        self.db
            .write(|conn| {
                conn.prepare_cached("UPDATE events SET answer = ?2 WHERE id = ?1")?
                    .execute(params![namespaced(id.as_str()), answer.get()])?;
                Ok(())
            })
            .await
    }

    async fn complete_events(&self, answers: &[(EventId, RawJson)]) -> Result<(), StoreError> {
        self.db.write_soon(|conn| {
            let mut update = conn.prepare_cached("UPDATE events SET answer = ?2 WHERE id = ?1")?;
            for (id, answer) in answers {
                update.execute(params![namespaced(id.as_str()), answer.get()])?;
            }
            Ok(())
        })
    }

    async fn answered(&self, id: &EventId) -> Result<bool, StoreError> {
        let conn = self.db.lock();
        let answered: Option<bool> = conn
            .prepare_cached("SELECT answer IS NOT NULL FROM events WHERE id = ?1")?
            .query_row([namespaced(id.as_str())], |r| r.get(0))
            .optional()?;
        Ok(answered.unwrap_or(false))
    }

    async fn release_event(&self, id: &EventId) -> Result<(), StoreError> {
        self.db
            .write(|conn| {
                conn.execute(
                    "UPDATE events SET claimed_at = 0 WHERE id = ?1 AND answer IS NULL",
                    [namespaced(id.as_str())],
                )?;
                Ok(())
            })
            .await
    }
}

/// Claims `id` on the open write: see [`EventClaims::claim_event`].
fn claim(
    conn: &Connection,
    id: &EventId,
    now_ms: i64,
    window_ms: i64,
    stale_ms: i64,
) -> Result<EventClaim, StoreError> {
    let existing: Option<(i64, i64, i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT claimed_at, first_claimed_at, window_ends_at, answer FROM events \
                         WHERE id = ?1",
        )?
        .query_row([namespaced(id.as_str())], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    match existing {
        Some((claimed_at, first, window_ends_at, answer)) if window_ends_at > now_ms => {
            if let Some(answer) = answer {
                let answer = RawJson::parse(&answer)
                    .ok_or_else(|| StoreError::Corrupt("an event's answer is not JSON".into()))?;
                return Ok(EventClaim::Accepted(answer));
            }
            if claimed_at + stale_ms > now_ms {
                return Ok(EventClaim::InProgress);
            }
            conn.prepare_cached("UPDATE events SET claimed_at = ?2 WHERE id = ?1")?
                .execute(params![namespaced(id.as_str()), now_ms])?;
            Ok(EventClaim::Claimed {
                first_claimed_at: first,
                resumed: true,
            })
        }
        _ => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO events \
                             (id, claimed_at, first_claimed_at, window_ends_at, answer) \
                             VALUES (?1, ?2, ?2, ?3, NULL)",
            )?
            .execute(params![namespaced(id.as_str()), now_ms, now_ms + window_ms])?;
            Ok(EventClaim::Claimed {
                first_claimed_at: now_ms,
                resumed: false,
            })
        }
    }
}
