//! The delivery log on SQLite: a small `deliveries` row per delivery (its status, counts and
//! queue entry), the body its event's deliveries share in `bodies`, and an `attempts` row per
//! attempt, so recording an attempt appends a row and updates a few columns.

use super::super::ready::{Key, Ready};
use super::{SqliteStore, from_json, to_json};
use crate::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus, Job};
use crate::domain::hook::HookId;
use crate::ports::{
    AttemptRecord, Count, DeliveryFilter, DeliveryLog, MAX_COUNT_READ, Page, RecordOutcome,
    StoreError,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Rows a filtered listing examines per page beyond the page size: a selective filter
/// yields a short page with a cursor rather than a scan of the whole log.
const SCAN_FACTOR: usize = 10;
const MIN_SCAN: usize = 1_000;

const COLUMNS: &str = "d.seq, d.hook_id, d.id, d.event_id, d.event, d.status, d.attempts, \
     d.next_attempt_at, d.reason, d.event_created_at, d.created_at, d.expires_at, d.sync, \
     b.shared, b.body";

/// What every delivered body starts with: the hook's id.
fn hook_prefix(hook: &HookId) -> String {
    format!("{{\"hookId\":{},", to_json(&hook.as_str()))
}

/// The bodies written by one call, so the deliveries of one event share one row.
#[derive(Default)]
pub(crate) struct Bodies {
    written: HashMap<(bool, String), i64>,
}

impl Bodies {
    fn id(&mut self, conn: &Connection, d: &Delivery) -> rusqlite::Result<i64> {
        let prefix = hook_prefix(&d.hook_id);
        let (shared, text) = match d.body.strip_prefix(&prefix) {
            Some(rest) => (true, rest),
            None => (false, d.body.as_str()),
        };
        if let Some(id) = self.written.get(&(shared, text.to_string())) {
            return Ok(*id);
        }
        conn.prepare_cached("INSERT INTO bodies (expires_at, shared, body) VALUES (?1, ?2, ?3)")?
            .execute(params![d.expires_at, shared, text])?;
        let id = conn.last_insert_rowid();
        if self.written.len() > 64 {
            self.written.clear();
        }
        self.written.insert((shared, text.to_string()), id);
        Ok(id)
    }
}

/// Writes a new delivery with its attempts, queued at `due_at` when set; `None` when a
/// delivery of that id exists.
pub(crate) fn insert_delivery(
    conn: &Connection,
    bodies: &mut Bodies,
    d: &Delivery,
    due_at: Option<i64>,
) -> rusqlite::Result<Option<i64>> {
    let body = bodies.id(conn, d)?;
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO deliveries (hook_id, id, event_id, event, status, attempts, \
             due_at, next_attempt_at, reason, body_id, event_created_at, created_at, expires_at, \
             sync) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![
            d.hook_id.as_str(),
            d.id.to_string(),
            d.event_id.as_str(),
            d.event.as_str(),
            d.status.as_str(),
            d.attempts.len() as i64,
            due_at,
            d.next_attempt_at,
            d.reason,
            body,
            d.event_created_at,
            d.created_at,
            d.expires_at,
            d.sync
        ])?;
    if inserted == 0 {
        return Ok(None);
    }
    let seq = conn.last_insert_rowid();
    for (i, attempt) in d.attempts.iter().enumerate() {
        insert_attempt(conn, seq, i as u32 + 1, attempt)?;
    }
    Ok(Some(seq))
}

fn insert_attempt(conn: &Connection, seq: i64, number: u32, a: &Attempt) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO attempts (delivery, number, record) VALUES (?1, ?2, ?3)")?
        .execute(params![seq, number, to_json(a)])?;
    Ok(())
}

/// Where a new delivery is queued: a pending one of the ingest (no attempt yet) at its first
/// attempt's time. Its first job, queued after, then finds it queued.
fn first_due(d: &Delivery) -> Option<i64> {
    (d.status == DeliveryStatus::Pending && d.attempts.is_empty() && !d.sync)
        .then_some(d.next_attempt_at)
        .flatten()
}

fn parse<T: DeserializeOwned>(text: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A delivery row (of [`COLUMNS`]) without its attempts, and its `seq`.
fn from_row(row: &Row) -> Result<(i64, Delivery, i64), StoreError> {
    let hook_id: HookId = parse(row.get(1)?)?;
    let shared: Option<bool> = row.get(13)?;
    let text: Option<String> = row.get(14)?;
    let body = match (shared, text) {
        (Some(true), Some(text)) => hook_prefix(&hook_id) + &text,
        (_, text) => text.unwrap_or_default(),
    };
    let status: String = row.get(5)?;
    let delivery = Delivery {
        hook_id,
        id: parse(row.get(2)?)?,
        event_id: parse(row.get(3)?)?,
        event: parse(row.get(4)?)?,
        body,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {status}")))?,
        attempts: Vec::new(),
        next_attempt_at: row.get(7)?,
        reason: row.get(8)?,
        event_created_at: row.get(9)?,
        created_at: row.get(10)?,
        expires_at: row.get(11)?,
        sync: row.get(12)?,
    };
    Ok((row.get(0)?, delivery, row.get(6)?))
}

fn read_attempts(conn: &Connection, seq: i64, d: &mut Delivery) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT record FROM attempts WHERE delivery = ?1 ORDER BY number")?;
    let records = stmt
        .query_map([seq], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    d.attempts = records
        .iter()
        .map(|r| from_json(r))
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// A delivery with its attempts, and its `seq`.
fn read_delivery(
    conn: &Connection,
    hook: &HookId,
    id: &DeliveryId,
) -> Result<Option<(i64, Delivery)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries d LEFT JOIN bodies b ON b.id = d.body_id \
         WHERE d.hook_id = ?1 AND d.id = ?2"
    ))?;
    let mut rows = stmt.query([hook.as_str(), &id.to_string()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let (seq, mut d, count) = from_row(row)?;
    if count > 0 {
        read_attempts(conn, seq, &mut d)?;
    }
    Ok(Some((seq, d)))
}

/// The columns of a delivery a conditional write checks.
fn read_state(
    conn: &Connection,
    hook: &HookId,
    id: &DeliveryId,
) -> rusqlite::Result<Option<(i64, String, u32)>> {
    conn.prepare_cached(
        "SELECT seq, status, attempts FROM deliveries WHERE hook_id = ?1 AND id = ?2",
    )?
    .query_row([hook.as_str(), &id.to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .optional()
}

/// Queues (or takes off their rows) the entries of delivery rows written by a call.
fn requeue(ready: &mut Ready, queued: impl IntoIterator<Item = (i64, Option<Job>)>) {
    for (seq, job) in queued {
        match job {
            Some(job) => ready.put_delivery(seq, job),
            None => ready.release(Key::Delivery(seq)),
        }
    }
}

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let queued = self
            .db
            .write(|tx| {
                let mut bodies = Bodies::default();
                let mut queued = Vec::new();
                for d in deliveries {
                    let due = first_due(d);
                    if let Some(seq) = insert_delivery(tx, &mut bodies, d, due)?
                        && let Some(due) = due
                    {
                        queued.push((seq, Some(Job::for_delivery(d, due))));
                    }
                }
                Ok(queued)
            })
            .await?;
        self.db.queued(|ready| requeue(ready, queued));
        Ok(())
    }

    async fn insert_missing_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<(Delivery, bool)>, StoreError> {
        let (stored, queued) = self
            .db
            .write(|tx| {
                let mut bodies = Bodies::default();
                let mut stored = Vec::with_capacity(deliveries.len());
                let mut queued = Vec::new();
                for d in deliveries {
                    if let Some((_, existing)) = read_delivery(tx, &d.hook_id, &d.id)? {
                        stored.push((existing, false));
                        continue;
                    }
                    let due = first_due(d);
                    if let Some(seq) = insert_delivery(tx, &mut bodies, d, due)?
                        && let Some(due) = due
                    {
                        queued.push((seq, Some(Job::for_delivery(d, due))));
                    }
                    stored.push((d.clone(), true));
                }
                Ok((stored, queued))
            })
            .await?;
        self.db.queued(|ready| requeue(ready, queued));
        Ok(stored)
    }

    async fn delete_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let removed = self
            .db
            .write(|tx| {
                let mut removed = Vec::new();
                for d in deliveries {
                    let Some((seq, _, _)) = read_state(tx, &d.hook_id, &d.id)? else {
                        continue;
                    };
                    tx.prepare_cached("DELETE FROM attempts WHERE delivery = ?1")?
                        .execute([seq])?;
                    tx.prepare_cached("DELETE FROM deliveries WHERE seq = ?1")?
                        .execute([seq])?;
                    removed.push(seq);
                }
                Ok(removed)
            })
            .await?;
        self.db.queued(|ready| {
            for seq in removed {
                ready.remove(Key::Delivery(seq));
            }
        });
        Ok(())
    }

    async fn get_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        Ok(read_delivery(&self.db.lock(), hook, id)?.map(|(_, d)| d))
    }

    /// Not waiting for the commit: an attempt lost with the process leaves its delivery
    /// queued as before, so it is sent again under the same id.
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
        let written = self.db.write_soon(|conn| {
            let Some((seq, status, count)) =
                read_state(conn, &record.hook_id, &record.delivery_id)?
            else {
                return Ok(None);
            };
            if status != DeliveryStatus::Pending.as_str() || count != record.expected_attempts {
                return Ok(None);
            }
            let mut count = count;
            if let Some(attempt) = &record.attempt {
                count += 1;
                insert_attempt(conn, seq, count, attempt)?;
            }
            // Still pending: the next attempt is queued with the record, so it is never
            // left without a job; otherwise the delivery leaves the queue.
            let due = match record.status {
                DeliveryStatus::Pending => record.next_attempt_at,
                _ => None,
            };
            conn.prepare_cached(
                "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, \
                     reason = ?5, due_at = ?6 WHERE seq = ?1",
            )?
            .execute(params![
                seq,
                record.status.as_str(),
                count,
                record.next_attempt_at,
                record.reason,
                due
            ])?;
            let job = due.map(|due_at| Job {
                hook_id: record.hook_id.clone(),
                delivery_id: record.delivery_id.clone(),
                attempt: count + 1,
                due_at,
                reopen: false,
                rate_slot: None,
            });
            Ok(Some((seq, job)))
        })?;
        let Some(written) = written else {
            return Ok(RecordOutcome::AlreadyRecorded);
        };
        self.db.queued(|ready| requeue(ready, [written]));
        Ok(RecordOutcome::Recorded)
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
            "SELECT seq, id, event, status, attempts FROM deliveries \
             WHERE hook_id = ?1 AND id >= ?2 AND id <= ?3 ORDER BY id DESC LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![
            hook.as_str(),
            low.to_string(),
            high.to_string(),
            scan as i64 + 1
        ])?;
        let mut matching = Vec::new();
        let mut examined = 0;
        let mut last_examined: Option<String> = None;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if matching.len() == limit || examined == scan {
                more = true;
                break;
            }
            examined += 1;
            let id: String = row.get(1)?;
            let event: String = row.get(2)?;
            let status: String = row.get(3)?;
            let event_matches = filter.event.is_none_or(|e| e.as_str() == event);
            let status_matches = filter
                .statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s.as_str() == status));
            if event_matches && status_matches {
                matching.push(row.get::<_, i64>(0)?);
            }
            last_examined = Some(id);
        }
        drop(rows);
        let mut read = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deliveries d LEFT JOIN bodies b ON b.id = d.body_id \
             WHERE d.seq = ?1"
        ))?;
        let mut items = Vec::with_capacity(matching.len());
        for seq in matching {
            let mut rows = read.query([seq])?;
            if let Some(row) = rows.next()? {
                let (seq, mut d, count) = from_row(row)?;
                if count > 0 {
                    read_attempts(&conn, seq, &mut d)?;
                }
                items.push(d);
            }
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

    async fn count_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        cap: u64,
    ) -> Result<Count, StoreError> {
        let Some((low, high)) = filter.id_range(None) else {
            return Ok(Count {
                counted: 0,
                exact: true,
            });
        };
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT event, status FROM deliveries \
             WHERE hook_id = ?1 AND id >= ?2 AND id <= ?3 ORDER BY id DESC LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![
            hook.as_str(),
            low.to_string(),
            high.to_string(),
            MAX_COUNT_READ as i64 + 1
        ])?;
        let (mut counted, mut read) = (0, 0);
        while let Some(row) = rows.next()? {
            if counted > cap || read == MAX_COUNT_READ {
                return Ok(Count {
                    counted,
                    exact: false,
                });
            }
            read += 1;
            let event: String = row.get(0)?;
            let status: String = row.get(1)?;
            let matches = filter.event.is_none_or(|e| e.as_str() == event)
                && filter
                    .statuses
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|s| s.as_str() == status));
            counted += u64::from(matches);
        }
        Ok(Count {
            counted,
            exact: true,
        })
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
                let Some((seq, mut d)) = read_delivery(conn, hook, id)? else {
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
                // Not queued here: the re-send's job queues it.
                conn.prepare_cached(
                    "UPDATE deliveries SET status = ?2, next_attempt_at = ?3, reason = NULL \
                     WHERE seq = ?1",
                )?
                .execute(params![seq, d.status.as_str(), now_ms])?;
                Ok(Some(d))
            })
            .await
    }
}
