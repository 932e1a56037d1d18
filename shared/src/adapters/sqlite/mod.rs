//! The embedded database: one SQLite file in WAL mode holding hooks, deliveries, claims,
//! counters and the job queue, so the dev server answers 202 only once both the deliveries
//! and their jobs are committed. `:memory:` gives the same model without a file (tests).

pub(crate) mod database;
pub mod queue;
pub(crate) mod ready;
mod schema;
pub mod store;
mod upgrade;

pub use database::{Database, FILE_NAME, OpenError};
pub use queue::SqliteQueue;
pub use schema::VERSION as SCHEMA_VERSION;
pub use store::SqliteStore;
