//! Upgrading a file whose deliveries are JSON records (schema 5): each record becomes a
//! delivery row, its body and its attempt rows, and each queued job a delivery row can carry
//! becomes that row's queue entry. Runs inside the transaction that sets the new version.

use super::schema;
use super::store::deliveries::{Bodies, insert_delivery};
use crate::domain::delivery::{Delivery, DeliveryStatus};
use crate::domain::task::Task;
use rusqlite::{Connection, OptionalExtension, params};

pub(crate) fn records_to_rows(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DROP INDEX deliveries_by_expiry; DROP INDEX IF EXISTS jobs_by_visibility; \
         ALTER TABLE deliveries RENAME TO delivery_records;",
    )?;
    conn.execute_batch(schema::DELIVERIES)?;
    let mut bodies = Bodies::default();
    let mut read = conn.prepare("SELECT record FROM delivery_records ORDER BY rowid")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let record: String = row.get(0)?;
        let delivery: Delivery = serde_json::from_str(&record).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })?;
        insert_delivery(conn, &mut bodies, &delivery, None)?;
    }
    drop(rows);
    drop(read);
    let mut jobs = conn.prepare("SELECT id, visible_at, body FROM jobs")?;
    let jobs: Vec<(i64, i64, String)> = jobs
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, visible_at, body) in jobs {
        let Ok(Task::Delivery(job)) = serde_json::from_str::<Task>(&body) else {
            continue;
        };
        if job.reopen || job.rate_slot.is_some() {
            continue;
        }
        let row: Option<(i64, String, u32, Option<i64>)> = conn
            .query_row(
                "SELECT seq, status, attempts, due_at FROM deliveries \
                 WHERE hook_id = ?1 AND id = ?2",
                [job.hook_id.as_str(), &job.delivery_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((seq, status, attempts, due)) = row else {
            continue;
        };
        if status != DeliveryStatus::Pending.as_str() || attempts + 1 != job.attempt {
            continue;
        }
        // Copies of one job become one entry, at the earliest time.
        let due_at = due.map_or(visible_at, |d| d.min(visible_at));
        conn.execute(
            "UPDATE deliveries SET due_at = ?2 WHERE seq = ?1",
            params![seq, due_at],
        )?;
        conn.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
    }
    conn.execute_batch("DROP TABLE delivery_records;")
}
