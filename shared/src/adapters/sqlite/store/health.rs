//! Per-hook counters and failure state on SQLite: `hourly_stats`, `hook_health` and
//! `rate_slots` rows. Hourly counts and failure states are kept in memory until the group commit
//! writes them, so the batches of one commit cost one row per hook (and hour).

use super::super::database::Pending;
use super::{SqliteStore, from_json, to_json};
use crate::domain::health::{BatchHealth, HealthCounts, HookHealth};
use crate::domain::hook::HookId;
use crate::ports::{HealthStore, HourlyCount, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

#[async_trait]
impl HealthStore for SqliteStore {
    /// Summed in memory and written by the next group commit, one row per hook and hour.
    async fn count_attempts(&self, counts: &[HourlyCount]) -> Result<(), StoreError> {
        self.db
            .at_commit(|_, pending| {
                for c in counts {
                    pending
                        .counts
                        .entry((c.hook_id.clone(), c.hour))
                        .or_default()
                        .merge(&c.counts);
                }
                Ok(())
            })
            .await
    }

    async fn reserve_slot(
        &self,
        hook: &HookId,
        interval_ms: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let hook = hook.as_str().to_string();
        self.db
            .write(move |tx| {
                let next: Option<i64> = tx
                    .prepare_cached("SELECT next_at FROM rate_slots WHERE hook_id = ?1")?
                    .query_row([&hook], |r| r.get(0))
                    .optional()?;
                let slot = next.map_or(now_ms, |n| n.max(now_ms));
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO rate_slots (hook_id, next_at) VALUES (?1, ?2)",
                )?
                .execute(params![hook, slot + interval_ms])?;
                Ok(slot)
            })
            .await
    }

    /// Kept in memory and written by the next group commit, one row per hook.
    async fn record_health(
        &self,
        hook: &HookId,
        batch: &BatchHealth,
    ) -> Result<(HookHealth, HookHealth), StoreError> {
        self.db
            .at_commit(|conn, pending| {
                let before = read_health(conn, pending, hook.as_str())?;
                let after = before.apply(batch);
                if after != before {
                    pending
                        .health
                        .insert(hook.as_str().to_string(), Some(after.clone()));
                }
                Ok((before, after))
            })
            .await
    }

    async fn hook_health(&self, hook: &HookId) -> Result<HookHealth, StoreError> {
        let session = self.db.lock();
        read_health(&session.conn, &session.pending, hook.as_str())
    }

    async fn claim_notice(
        &self,
        hook: &HookId,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .at_commit(|conn, pending| {
                let mut health = read_health(conn, pending, hook.as_str())?;
                if health.noticed_at.is_some_and(|at| at > now_ms - window_ms) {
                    return Ok(false);
                }
                health.noticed_at = Some(now_ms);
                pending
                    .health
                    .insert(hook.as_str().to_string(), Some(health));
                Ok(true)
            })
            .await
    }

    async fn reset_health(&self, hook: &HookId) -> Result<(), StoreError> {
        self.db
            .at_commit(|_, pending| {
                pending.health.insert(hook.as_str().to_string(), None);
                Ok(())
            })
            .await
    }

    async fn hourly_health(
        &self,
        hook: &HookId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, HealthCounts)>, StoreError> {
        let db = self.db.lock();
        let mut read = db.prepare_cached(
            "SELECT requests, successes, detail, hour FROM hourly_stats \
             WHERE hook_id = ?1 AND hour >= ?2 AND hour <= ?3 ORDER BY hour",
        )?;
        let rows = read.query_map(params![hook.as_str(), from_hour, to_hour], |r| {
            Ok((r.get::<_, i64>(3)?, hour_counts(r)?))
        })?;
        let mut hours: BTreeMap<i64, HealthCounts> = rows.collect::<Result<_, _>>()?;
        // Counts not yet committed.
        for ((pending, hour), counts) in &db.pending.counts {
            if pending == hook && (from_hour..=to_hour).contains(hour) {
                hours.entry(*hour).or_default().merge(counts);
            }
        }
        Ok(hours.into_iter().collect())
    }
}

/// Writes what the group kept in memory: hourly counts added to their rows, failure states.
pub(crate) fn write_pending(conn: &Connection, pending: &Pending) -> Result<(), StoreError> {
    let mut read = conn.prepare_cached(
        "SELECT requests, successes, detail FROM hourly_stats WHERE hook_id = ?1 AND hour = ?2",
    )?;
    let mut write = conn.prepare_cached(
        "INSERT OR REPLACE INTO hourly_stats (hook_id, hour, requests, successes, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for ((hook, hour), counts) in &pending.counts {
        let mut total = read
            .query_row(params![hook.as_str(), hour], hour_counts)
            .optional()?
            .unwrap_or_default();
        total.merge(counts);
        write.execute(params![
            hook.as_str(),
            hour,
            total.attempts as i64,
            total.successes as i64,
            to_json(&total)
        ])?;
    }
    for (hook, health) in &pending.health {
        match health {
            Some(health) => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO hook_health (hook_id, record) VALUES (?1, ?2)",
                )?
                .execute(params![hook, to_json(health)])?,
            None => conn
                .prepare_cached("DELETE FROM hook_health WHERE hook_id = ?1")?
                .execute([hook])?,
        };
    }
    Ok(())
}

/// The hook's failure state: as the open group left it, else as the file holds it.
fn read_health(conn: &Connection, pending: &Pending, hook: &str) -> Result<HookHealth, StoreError> {
    if let Some(health) = pending.health.get(hook) {
        return Ok(health.clone().unwrap_or_default());
    }
    let record: Option<String> = conn
        .prepare_cached("SELECT record FROM hook_health WHERE hook_id = ?1")?
        .query_row([hook], |r| r.get(0))
        .optional()?;
    record.map_or_else(|| Ok(HookHealth::default()), |r| from_json(&r))
}

/// An hourly row: its detail, with the attempt and success columns (which rows written
/// before the detail existed hold alone).
fn hour_counts(r: &rusqlite::Row) -> rusqlite::Result<HealthCounts> {
    let detail: String = r.get(2)?;
    let mut counts: HealthCounts = serde_json::from_str(&detail).unwrap_or_default();
    counts.attempts = r.get::<_, i64>(0)?.max(0) as u64;
    counts.successes = r.get::<_, i64>(1)?.max(0) as u64;
    Ok(counts)
}
