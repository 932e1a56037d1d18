//! The Store port on SQLite: the same items and conditions as the DynamoDB adapter, each
//! port call one statement or one transaction on the shared connection.

use super::Database;
use crate::domain::catalog::EventName;
use crate::domain::delivery::{Delivery, DeliveryId, DeliveryStatus};
use crate::domain::event::EventId;
use crate::domain::health::{BatchHealth, HealthCounts, HookHealth};
use crate::domain::hook::{Hook, HookId, HookMode, HookPosition};
use crate::domain::recovery::{Recovery, RecoveryId, RecoveryStatus};
use crate::ports::{
    AttemptRecord, DeliveryFilter, EventClaim, HourlyCount, NAMESPACE, Page, RecordOutcome, Store,
    StoreError, Subscriber,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Rows a filtered listing examines per page beyond the page size: a selective filter
/// yields a short page with a cursor rather than a scan of the whole log.
const SCAN_FACTOR: usize = 10;
const MIN_SCAN: usize = 1_000;

pub struct SqliteStore {
    db: Arc<Database>,
}

impl SqliteStore {
    pub fn new(db: Arc<Database>) -> Arc<Self> {
        Arc::new(Self { db })
    }

    /// A store on its own in-memory database.
    pub fn in_memory() -> Arc<Self> {
        Self::new(Database::in_memory())
    }

    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }
}

/// Keys shared by the deployment (the hook listing, subscriptions, event ids) carry the
/// namespace, as on DynamoDB.
fn namespaced(key: &str) -> String {
    format!("{NAMESPACE}#{key}")
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("stored records serialize")
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    )
}

fn write_subscriptions(tx: &Connection, hook: &Hook) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM subscriptions WHERE hook_id = ?1",
        [hook.id.as_str()],
    )?;
    if hook.enabled {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO subscriptions (event, hook_id, sync) VALUES (?1, ?2, ?3)",
        )?;
        let sync = i64::from(!hook.mode.is_async());
        for event in &hook.events {
            insert.execute(params![namespaced(event.as_str()), hook.id.as_str(), sync])?;
        }
    }
    Ok(())
}

fn insert_delivery(conn: &Connection, d: &Delivery) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (hook_id, id, event, status, expires_at, record) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.hook_id.as_str(),
        d.id.to_string(),
        d.event.as_str(),
        d.status.as_str(),
        d.expires_at,
        to_json(d)
    ])
}

fn read_delivery(
    conn: &Connection,
    hook: &HookId,
    id: &DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let record: Option<String> = conn
        .prepare_cached("SELECT record FROM deliveries WHERE hook_id = ?1 AND id = ?2")?
        .query_row([hook.as_str(), &id.to_string()], |r| r.get(0))
        .optional()?;
    record.as_deref().map(from_json).transpose()
}

fn read_recovery(
    conn: &Connection,
    hook: &HookId,
    id: &RecoveryId,
) -> Result<Option<Recovery>, StoreError> {
    let record: Option<String> = conn
        .prepare_cached("SELECT record FROM recoveries WHERE hook_id = ?1 AND id = ?2")?
        .query_row([hook.as_str(), &id.to_string()], |r| r.get(0))
        .optional()?;
    record.as_deref().map(from_json).transpose()
}

fn write_delivery(conn: &Connection, d: &Delivery) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?3, record = ?4 WHERE hook_id = ?1 AND id = ?2",
    )?
    .execute(params![
        d.hook_id.as_str(),
        d.id.to_string(),
        d.status.as_str(),
        to_json(d)
    ])
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        self.db
            .write(|conn| {
                match conn.execute(
                    "INSERT INTO hooks (id, position, record) VALUES (?1, ?2, ?3)",
                    params![
                        hook.id.as_str(),
                        namespaced(&HookPosition::of(hook).sort_key()),
                        to_json(hook)
                    ],
                ) {
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists),
                    other => other?,
                };
                write_subscriptions(conn, hook)?;
                Ok(())
            })
            .await
    }

    async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError> {
        let conn = self.db.lock();
        let record: Option<String> = conn
            .prepare_cached("SELECT record FROM hooks WHERE id = ?1")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?;
        record.as_deref().map(from_json).transpose()
    }

    async fn page_hooks(
        &self,
        after: Option<&HookPosition>,
        limit: usize,
    ) -> Result<Page<Hook, HookPosition>, StoreError> {
        let conn = self.db.lock();
        let after = namespaced(&after.map(HookPosition::sort_key).unwrap_or_default());
        // '$' follows '#': the end of the namespace's positions.
        let end = format!("{NAMESPACE}$");
        let mut stmt = conn.prepare_cached(
            "SELECT record FROM hooks WHERE position > ?1 AND position < ?2 \
             ORDER BY position LIMIT ?3",
        )?;
        let records = stmt
            .query_map(params![after, end, limit as i64 + 1], |r| {
                r.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut items = records
            .iter()
            .map(|r| from_json::<Hook>(r))
            .collect::<Result<Vec<_>, _>>()?;
        let next = (items.len() > limit).then(|| HookPosition::of(&items[limit - 1]));
        items.truncate(limit);
        Ok(Page { items, next })
    }

    async fn count_hooks(&self) -> Result<u64, StoreError> {
        let conn = self.db.lock();
        let n: i64 = conn.query_row("SELECT count(*) FROM hooks", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    async fn update_hook(&self, previous: &Hook, next: &Hook) -> Result<(), StoreError> {
        self.db
            .write(|tx| {
                let current: Option<String> = tx
                    .query_row(
                        "SELECT record FROM hooks WHERE id = ?1",
                        [previous.id.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(current) = current else {
                    return Err(StoreError::Conflict);
                };
                if from_json::<Hook>(&current)?.updated_at != previous.updated_at {
                    return Err(StoreError::Conflict);
                }
                tx.execute(
                    "UPDATE hooks SET position = ?2, record = ?3 WHERE id = ?1",
                    params![
                        next.id.as_str(),
                        namespaced(&HookPosition::of(next).sort_key()),
                        to_json(next)
                    ],
                )?;
                write_subscriptions(tx, next)?;
                Ok(())
            })
            .await
    }

    async fn delete_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        self.db
            .write(|tx| {
                let existed =
                    tx.execute("DELETE FROM hooks WHERE id = ?1", [hook.id.as_str()])? > 0;
                tx.execute(
                    "DELETE FROM subscriptions WHERE hook_id = ?1",
                    [hook.id.as_str()],
                )?;
                Ok(existed)
            })
            .await
    }

    async fn subscribers(&self, event: EventName) -> Result<Vec<Subscriber>, StoreError> {
        let conn = self.db.lock();
        let mut stmt =
            conn.prepare_cached("SELECT hook_id, sync FROM subscriptions WHERE event = ?1")?;
        let rows = stmt
            .query_map([namespaced(event.as_str())], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|(id, sync)| {
                Ok(Subscriber {
                    hook_id: HookId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    mode: if *sync != 0 {
                        HookMode::Sync
                    } else {
                        HookMode::Async
                    },
                })
            })
            .collect()
    }

    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.db
            .write(|tx| {
                for d in deliveries {
                    insert_delivery(tx, d)?;
                }
                Ok(())
            })
            .await
    }

    async fn insert_missing_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<(Delivery, bool)>, StoreError> {
        self.db
            .write(|tx| {
                let mut stored = Vec::with_capacity(deliveries.len());
                for d in deliveries {
                    if insert_delivery(tx, d)? == 1 {
                        stored.push((d.clone(), true));
                    } else {
                        let existing = read_delivery(tx, &d.hook_id, &d.id)?
                            .ok_or_else(|| StoreError::Corrupt("a delivery vanished".into()))?;
                        stored.push((existing, false));
                    }
                }
                Ok(stored)
            })
            .await
    }

    async fn delete_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.db
            .write(|tx| {
                let mut delete =
                    tx.prepare_cached("DELETE FROM deliveries WHERE hook_id = ?1 AND id = ?2")?;
                for d in deliveries {
                    delete.execute([d.hook_id.as_str(), &d.id.to_string()])?;
                }
                Ok(())
            })
            .await
    }

    async fn get_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        read_delivery(&self.db.lock(), hook, id)
    }

    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
        self.db
            .write(|conn| {
                let Some(mut d) = read_delivery(conn, &record.hook_id, &record.delivery_id)? else {
                    return Ok(RecordOutcome::AlreadyRecorded);
                };
                if d.status != DeliveryStatus::Pending
                    || d.attempt_count() != record.expected_attempts
                {
                    return Ok(RecordOutcome::AlreadyRecorded);
                }
                d.attempts.extend(record.attempt.clone());
                d.status = record.status;
                d.next_attempt_at = record.next_attempt_at;
                d.reason = record.reason.clone();
                write_delivery(conn, &d)?;
                Ok(RecordOutcome::Recorded)
            })
            .await
    }

    async fn page_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        after: Option<&DeliveryId>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        let Some((low, high)) = filter.id_range(after).filter(|_| limit > 0) else {
            return Ok(Page::default());
        };
        let scan = (limit * SCAN_FACTOR).max(MIN_SCAN);
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, event, status, record FROM deliveries \
             WHERE hook_id = ?1 AND id >= ?2 AND id <= ?3 ORDER BY id DESC LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![
            hook.as_str(),
            low.to_string(),
            high.to_string(),
            scan as i64 + 1
        ])?;
        let mut items = Vec::new();
        let mut examined = 0;
        let mut last_examined: Option<String> = None;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if items.len() == limit || examined == scan {
                more = true;
                break;
            }
            examined += 1;
            let id: String = row.get(0)?;
            let event: String = row.get(1)?;
            let status: String = row.get(2)?;
            let event_matches = filter.event.is_none_or(|e| e.as_str() == event);
            let status_matches = filter
                .statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s.as_str() == status));
            if event_matches && status_matches {
                items.push(from_json::<Delivery>(&row.get::<_, String>(3)?)?);
            }
            last_examined = Some(id);
        }
        let next = if more {
            last_examined
                .map(|id| DeliveryId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string())))
                .transpose()?
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn reopen_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
        now_ms: i64,
        expected_attempts: Option<u32>,
    ) -> Result<Option<Delivery>, StoreError> {
        self.db
            .write(|conn| {
                let Some(mut d) = read_delivery(conn, hook, id)? else {
                    return Ok(None);
                };
                if d.status == DeliveryStatus::Pending
                    || expected_attempts.is_some_and(|n| d.attempt_count() != n)
                {
                    return Err(StoreError::Conflict);
                }
                d.status = DeliveryStatus::Pending;
                d.next_attempt_at = Some(now_ms);
                d.reason = None;
                write_delivery(conn, &d)?;
                Ok(Some(d))
            })
            .await
    }

    async fn create_recovery(&self, recovery: &Recovery) -> Result<(), StoreError> {
        self.db
            .write(|conn| {
                match conn.execute(
            "INSERT INTO recoveries (hook_id, id, updated_at, record) VALUES (?1, ?2, ?3, ?4)",
            params![
                recovery.hook_id.as_str(),
                recovery.id.to_string(),
                recovery.updated_at,
                to_json(recovery)
            ],
        ) {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            other => other.map(|_| ()).map_err(Into::into),
        }
            })
            .await
    }

    async fn get_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError> {
        read_recovery(&self.db.lock(), hook, id)
    }

    async fn advance_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
        from: Option<&DeliveryId>,
        to: Option<&DeliveryId>,
        resent: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .write(|conn| {
                let Some(mut r) = read_recovery(conn, hook, id)? else {
                    return Ok(false);
                };
                if r.status != RecoveryStatus::Running || r.cursor.as_ref() != from {
                    return Ok(false);
                }
                r.cursor = to.cloned();
                r.resent += resent;
                r.steps += 1;
                r.updated_at = now_ms;
                if to.is_none() {
                    r.status = RecoveryStatus::Done;
                }
                conn.execute(
            "UPDATE recoveries SET updated_at = ?3, record = ?4 WHERE hook_id = ?1 AND id = ?2",
            params![hook.as_str(), id.to_string(), now_ms, to_json(&r)],
        )?;
                Ok(true)
            })
            .await
    }

    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError> {
        self.db
            .write(|conn| {
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
                    Some((claimed_at, first, window_ends_at, answer))
                        if window_ends_at > now_ms =>
                    {
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
            .await
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

    async fn count_attempts(&self, counts: &[HourlyCount]) -> Result<(), StoreError> {
        self.db
            .write(|tx| {
                let mut read = tx.prepare_cached(
                    "SELECT requests, successes, detail FROM hourly_stats \
                     WHERE hook_id = ?1 AND hour = ?2",
                )?;
                let mut write = tx.prepare_cached(
                    "INSERT OR REPLACE INTO hourly_stats (hook_id, hour, requests, successes, \
                     detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for c in counts {
                    let mut total = read
                        .query_row(params![c.hook_id.as_str(), c.hour], hour_counts)
                        .optional()?
                        .unwrap_or_default();
                    total.merge(&c.counts);
                    write.execute(params![
                        c.hook_id.as_str(),
                        c.hour,
                        total.attempts as i64,
                        total.successes as i64,
                        to_json(&total)
                    ])?;
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
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
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
