//! The Store port on SQLite: the same items and conditions as the DynamoDB adapter, each
//! port call one statement or one transaction on the shared connection. One file per port;
//! this one holds the store and the encoding they share.

mod checks;
mod claims;
pub(super) mod deliveries;
mod health;
pub(crate) use health::write_pending;
mod hooks;
mod recoveries;

use super::Database;
use crate::ports::{NAMESPACE, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

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

/// The JSON record of one hook's item in `table` (`deliveries` or `recoveries`), by its id.
fn read_record<T: DeserializeOwned>(
    conn: &rusqlite::Connection,
    table: &'static str,
    hook: &str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    use rusqlite::OptionalExtension;
    let record: Option<String> = conn
        .prepare_cached(&format!(
            "SELECT record FROM {table} WHERE hook_id = ?1 AND id = ?2"
        ))?
        .query_row([hook, id], |r| r.get(0))
        .optional()?;
    record.as_deref().map(from_json).transpose()
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    )
}
