//! Receiver check reports on SQLite: a `receiver_checks` row each; writing one deletes the
//! expired ones.

use super::{SqliteStore, from_json, to_json};
use crate::domain::hook::HookId;
use crate::domain::receiver_check::{CheckId, CheckReport};
use crate::ports::{CheckStore, Page, StoreError};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl CheckStore for SqliteStore {
    async fn put_check(&self, report: &CheckReport, expires_at: i64) -> Result<(), StoreError> {
        let Some(hook) = &report.hook_id else {
            return Err(StoreError::Corrupt("a stored check names its hook".into()));
        };
        self.db
            .write(|conn| {
                conn.execute(
                    "DELETE FROM receiver_checks WHERE expires_at <= ?1",
                    [report.created_at],
                )?;
                conn.execute(
                    "INSERT OR REPLACE INTO receiver_checks (hook_id, id, expires_at, record) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        hook.as_str(),
                        report.id.to_string(),
                        expires_at,
                        to_json(report)
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn page_checks(
        &self,
        hook: &HookId,
        after: Option<&CheckId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page<CheckReport, CheckId>, StoreError> {
        let conn = self.db.lock();
        // Ids are `chk_` + a ULID: by id descending is newest first; "~" sorts after them all.
        let after = after.map_or_else(|| "~".to_string(), ToString::to_string);
        let mut stmt = conn.prepare_cached(
            "SELECT record FROM receiver_checks \
             WHERE hook_id = ?1 AND id < ?2 AND expires_at > ?3 ORDER BY id DESC LIMIT ?4",
        )?;
        let records: Vec<String> = stmt
            .query_map(
                params![hook.as_str(), after, now_ms, (limit + 1) as i64],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        let mut items = records
            .iter()
            .map(|r| from_json::<CheckReport>(r))
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
