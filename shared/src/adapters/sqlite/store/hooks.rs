//! Hooks on SQLite: a `hooks` row per hook, ordered by its listing position, and the
//! `subscriptions` rows of the enabled ones.

use super::{SqliteStore, from_json, is_unique_violation, namespaced, to_json};
use crate::domain::catalog::EventName;
use crate::domain::hook::{Hook, HookId, HookMode, HookPosition};
use crate::ports::{HookStore, NAMESPACE, Page, StoreError, Subscriber};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

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

#[async_trait]
impl HookStore for SqliteStore {
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
        // Newest first, as Logto lists them; '$' follows '#': past the namespace's positions.
        let before = match after {
            Some(after) => namespaced(&after.sort_key()),
            None => format!("{NAMESPACE}$"),
        };
        let start = namespaced("");
        let mut stmt = conn.prepare_cached(
            "SELECT record FROM hooks WHERE position < ?1 AND position > ?2 \
             ORDER BY position DESC LIMIT ?3",
        )?;
        let records = stmt
            .query_map(params![before, start, limit as i64 + 1], |r| {
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
}
