//! The delivery log on SQLite: a `deliveries` row per delivery, its record as JSON beside the
//! columns a listing filters on.

use super::{SqliteStore, from_json, read_record, to_json};
use crate::domain::delivery::{Delivery, DeliveryId, DeliveryStatus};
use crate::domain::hook::HookId;
use crate::ports::{AttemptRecord, DeliveryFilter, DeliveryLog, Page, RecordOutcome, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, params};

/// Rows a filtered listing examines per page beyond the page size: a selective filter
/// yields a short page with a cursor rather than a scan of the whole log.
const SCAN_FACTOR: usize = 10;
const MIN_SCAN: usize = 1_000;

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
    read_record(conn, "deliveries", hook.as_str(), &id.to_string())
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
impl DeliveryLog for SqliteStore {
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
}
