//! Per-hook counters and failure state on SQLite: `hourly_stats`, `hook_health` and
//! `rate_slots` rows, each read and written inside one transaction; hourly counts are summed in
//! memory until the group commit writes them.

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
        self.db.count(counts).await
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

    async fn record_health(
        &self,
        hook: &HookId,
        batch: &BatchHealth,
    ) -> Result<(HookHealth, HookHealth), StoreError> {
        let hook = hook.as_str().to_string();
        let batch = batch.clone();
        self.db
            .write(move |tx| {
                let before: HookHealth = read_health(tx, &hook)?;
                let after = before.apply(&batch);
                if after != before {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO hook_health (hook_id, record) VALUES (?1, ?2)",
                    )?
                    .execute(params![hook, to_json(&after)])?;
                }
                Ok((before, after))
            })
            .await
    }

    async fn hook_health(&self, hook: &HookId) -> Result<HookHealth, StoreError> {
        read_health(&self.db.lock(), hook.as_str())
    }

    async fn claim_notice(
        &self,
        hook: &HookId,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<bool, StoreError> {
        let hook = hook.as_str().to_string();
        self.db
            .write(move |tx| {
                let mut health = read_health(tx, &hook)?;
                if health.noticed_at.is_some_and(|at| at > now_ms - window_ms) {
                    return Ok(false);
                }
                health.noticed_at = Some(now_ms);
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO hook_health (hook_id, record) VALUES (?1, ?2)",
                )?
                .execute(params![hook, to_json(&health)])?;
                Ok(true)
            })
            .await
    }

    async fn reset_health(&self, hook: &HookId) -> Result<(), StoreError> {
        let hook = hook.as_str().to_string();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM hook_health WHERE hook_id = ?1", [hook])?;
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
        for ((pending, hour), counts) in &db.counts {
            if pending == hook && (from_hour..=to_hour).contains(hour) {
                hours.entry(*hour).or_default().merge(counts);
            }
        }
        Ok(hours.into_iter().collect())
    }
}

/// Adds counts to their hourly rows.
pub(crate) fn add_counts<'a>(
    conn: &Connection,
    counts: impl IntoIterator<Item = (&'a HookId, i64, &'a HealthCounts)>,
) -> Result<(), StoreError> {
    let mut read = conn.prepare_cached(
        "SELECT requests, successes, detail FROM hourly_stats WHERE hook_id = ?1 AND hour = ?2",
    )?;
    let mut write = conn.prepare_cached(
        "INSERT OR REPLACE INTO hourly_stats (hook_id, hour, requests, successes, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (hook, hour, counts) in counts {
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
    Ok(())
}

fn read_health(conn: &Connection, hook: &str) -> Result<HookHealth, StoreError> {
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
