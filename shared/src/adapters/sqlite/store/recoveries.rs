//! Recoveries on SQLite: a `recoveries` row each, advanced inside one transaction.

use super::{SqliteStore, is_unique_violation, read_record, to_json};
use crate::domain::delivery::DeliveryId;
use crate::domain::hook::HookId;
use crate::domain::recovery::{Recovery, RecoveryId, RecoveryStatus};
use crate::ports::{RecoveryStore, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, params};

fn read_recovery(
    conn: &Connection,
    hook: &HookId,
    id: &RecoveryId,
) -> Result<Option<Recovery>, StoreError> {
    read_record(conn, "recoveries", hook.as_str(), &id.to_string())
}

#[async_trait]
impl RecoveryStore for SqliteStore {
    async fn create_recovery(&self, recovery: &Recovery) -> Result<(), StoreError> {
        self.db
            .write(|conn| {
                match conn.execute(
                    "INSERT INTO recoveries (hook_id, id, updated_at, record) \
                     VALUES (?1, ?2, ?3, ?4)",
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
                    "UPDATE recoveries SET updated_at = ?3, record = ?4 \
                     WHERE hook_id = ?1 AND id = ?2",
                    params![hook.as_str(), id.to_string(), now_ms, to_json(&r)],
                )?;
                Ok(true)
            })
            .await
    }
}
