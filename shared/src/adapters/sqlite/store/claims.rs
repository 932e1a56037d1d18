//! Event claims on SQLite: an `events` row per event id in the namespace. A claim does not
//! wait for its commit: the ingest's deliveries, written after it on the same connection, wait
//! for theirs, which commits the claim too (a claim lost with the process is claimed again).

use super::{SqliteStore, from_json, namespaced, to_json};
use crate::domain::event::EventId;
use crate::ports::{EventClaim, EventClaims, StoreError};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl EventClaims for SqliteStore {
    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError> {
        self.db.write_soon(|conn| {
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
                        return Ok(EventClaim::Accepted(from_json(&answer)?));
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
                    .execute(params![
                        namespaced(id.as_str()),
                        now_ms,
                        now_ms + window_ms
                    ])?;
                    Ok(EventClaim::Claimed {
                        first_claimed_at: now_ms,
                        resumed: false,
                    })
                }
            }
        })
    }

    async fn complete_event(
        &self,
        id: &EventId,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.db
            .write(|conn| {
                conn.prepare_cached("UPDATE events SET answer = ?2 WHERE id = ?1")?
                    .execute(params![namespaced(id.as_str()), to_json(answer)])?;
                Ok(())
            })
            .await
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
