//! Opening the database: an existing file is checked before anything is written to it, then
//! one connection (exclusive lock, WAL, `synchronous=NORMAL`: a commit survives the process
//! being killed) is shared by the store and the queue. Writes commit in groups: each runs in
//! a savepoint of the open transaction and waits for the commit that follows within about a
//! millisecond, so a thousand small writes cost one commit, not a thousand.

use super::schema;
use crate::ports::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// The database file inside the data directory.
pub const FILE_NAME: &str = "webhooks.sqlite3";

/// Rows deleted per statement by [`Database::expire`], so a large backlog never holds the
/// connection for long.
const EXPIRY_BATCH: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a usable webhooks database ({reason}); it was left untouched: move it \
         away or set WEBHOOKS_DATA_DIR to another directory"
    )]
    Unusable { path: PathBuf, reason: String },
    #[error("{path} is in use by another process")]
    Locked { path: PathBuf },
    #[error("cannot open {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Page cache (negative: KiB); savepoint journals in memory; checkpoints every 16 MB of WAL.
const PRAGMAS: &str =
    "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 4000;";
/// How long a group stays open for more writes before it commits.
const GROUP_WINDOW: Duration = Duration::from_millis(1);

pub struct Database {
    conn: Mutex<Session>,
    /// The file, or `None` in memory, where each write commits at once (nothing to wait for).
    path: Option<PathBuf>,
    /// Wakes the committer when a group opens; dropped with the database, which stops it.
    opened: watch::Sender<()>,
    /// The last group committed (or failed, with its error).
    committed: watch::Sender<Committed>,
}

/// The connection and the group of writes it has open.
pub(crate) struct Session {
    pub(crate) conn: Connection,
    open: bool,
    /// The group the next write joins.
    group: u64,
}

impl std::ops::Deref for Session {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

#[derive(Debug, Clone, Default)]
struct Committed {
    group: u64,
    failed: Option<String>,
}

impl Database {
    /// A database that lives and dies with the process.
    pub fn in_memory() -> Arc<Self> {
        let conn = Connection::open_in_memory().expect("an in-memory database opens");
        conn.execute_batch(schema::CREATE)
            .and_then(|()| conn.pragma_update(None, "user_version", schema::VERSION))
            .and_then(|()| conn.execute_batch("PRAGMA temp_store = MEMORY;"))
            .expect("the schema is valid");
        Self::serve(conn, None)
    }

    fn serve(conn: Connection, path: Option<PathBuf>) -> Arc<Self> {
        let (opened, wake) = watch::channel(());
        let db = Arc::new(Self {
            conn: Mutex::new(Session {
                conn,
                open: false,
                group: 1,
            }),
            path,
            opened,
            committed: watch::channel(Committed::default()).0,
        });
        if db.path.is_some() {
            tokio::spawn(commit_groups(Arc::downgrade(&db), wake));
        }
        db
    }

    /// Opens (or creates) the database in `dir`. A file that is not a database of this
    /// schema, or is damaged, is refused and left as it is.
    pub fn open(dir: &Path) -> Result<Arc<Self>, OpenError> {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if !existed {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let sqlite = |source| classify(&path, source);
        let conn = Connection::open_with_flags(&path, flags).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_millis(500))
            .map_err(sqlite)?;
        let _: String = conn
            .query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| r.get(0))
            .map_err(sqlite)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(sqlite)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite)?;
        let unusable = |reason: String| OpenError::Unusable {
            path: path.clone(),
            reason,
        };
        match (tables, version) {
            (0, 0) => {}
            (_, v) if (1..=schema::VERSION).contains(&v) => {
                let check: String = conn
                    .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
                    .map_err(sqlite)?;
                if check != "ok" {
                    return Err(unusable(format!("integrity check: {check}")));
                }
            }
            (_, 0) => return Err(unusable("it holds tables of another program".into())),
            (_, v) => return Err(unusable(format!("unknown schema version {v}"))),
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(unusable(format!("journal mode {mode} instead of wal")));
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .and_then(|()| conn.execute_batch(PRAGMAS))
            .map_err(sqlite)?;
        if tables > 0 && version < schema::VERSION {
            let steps: String = schema::MIGRATIONS
                .iter()
                .filter(|(from, _)| *from >= version)
                .map(|(_, sql)| *sql)
                .collect();
            conn.execute_batch(&format!(
                "BEGIN; {steps} PRAGMA user_version = {}; COMMIT;",
                schema::VERSION
            ))
            .map_err(sqlite)?;
        }
        if tables == 0 {
            conn.execute_batch(&format!(
                "BEGIN; {} PRAGMA user_version = {}; COMMIT;",
                schema::CREATE,
                schema::VERSION
            ))
            .map_err(sqlite)?;
        }
        Ok(Self::serve(conn, Some(path)))
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection, for reads (they see the open group's writes).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Session> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` as one all-or-nothing write in the open group and returns once the group is
    /// committed to the file (in memory, each write is its own transaction).
    pub(crate) async fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (value, group) = self.join(f)?;
        if self.path.is_none() {
            return Ok(value);
        }
        let mut committed = self.committed.subscribe();
        let done = committed
            .wait_for(|c| c.group >= group)
            .await
            .map_err(|_| StoreError::Unavailable("the database closed".into()))?;
        match &done.failed {
            Some(e) if done.group == group => Err(StoreError::Unavailable(e.clone())),
            _ => Ok(value),
        }
    }

    /// As [`Database::write`], without waiting for the commit: for changes that may be lost
    /// with the process (a receive's visibility, an acknowledgement).
    pub(crate) fn write_soon<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.join(f).map(|(value, _)| value)
    }

    fn join<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<(T, u64), StoreError> {
        let mut session = self.lock();
        // In memory, the savepoint alone is the transaction.
        if !session.open && self.path.is_some() {
            session.conn.execute_batch("BEGIN")?;
            session.open = true;
            self.opened.send_replace(());
        }
        session
            .conn
            .prepare_cached("SAVEPOINT write")?
            .execute([])?;
        match f(&session.conn) {
            Ok(value) => {
                session.conn.prepare_cached("RELEASE write")?.execute([])?;
                Ok((value, session.group))
            }
            Err(e) => {
                let _ = session
                    .conn
                    .execute_batch("ROLLBACK TO write; RELEASE write");
                Err(e)
            }
        }
    }

    /// Commits the open group, if any.
    fn commit(&self) {
        let (group, failed) = {
            let mut session = self.lock();
            if !session.open {
                return;
            }
            let failed = match session.conn.execute_batch("COMMIT") {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(error = %e, "could not commit to the database");
                    let _ = session.conn.execute_batch("ROLLBACK");
                    Some(e.to_string())
                }
            };
            session.open = false;
            session.group += 1;
            (session.group - 1, failed)
        };
        self.committed.send_replace(Committed { group, failed });
    }

    /// Deletes one batch of each kind of expired record (deliveries past their retention,
    /// idempotency windows that ended, hourly counters past 49 hours); returns how many rows
    /// went, so a caller can go on while a backlog remains.
    pub async fn expire(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.write(|conn| Self::expire_batch(conn, now_ms)).await
    }

    fn expire_batch(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
        let now_s = now_ms / 1000;
        let mut removed = conn.execute(
            "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries \
             WHERE expires_at <= ?1 LIMIT ?2)",
            [now_s, EXPIRY_BATCH],
        )?;
        removed += conn.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE window_ends_at <= ?1 \
             LIMIT ?2)",
            [now_ms, EXPIRY_BATCH],
        )?;
        removed += conn.execute(
            "DELETE FROM hourly_stats WHERE (hook_id, hour) IN (SELECT hook_id, hour FROM \
             hourly_stats WHERE (hour + ?3) * 3600 <= ?1 LIMIT ?2)",
            [now_s, EXPIRY_BATCH, crate::domain::health::MAX_HOURS + 25],
        )?;
        Ok(removed)
    }

    /// Runs [`Database::expire`] every `every` while the database is in use.
    pub fn spawn_expiry(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(db) = weak.upgrade() else { break };
                loop {
                    match db.expire(crate::domain::clock::now_ms()).await {
                        Ok(n) if n > 0 => tokio::task::yield_now().await,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not delete expired records");
                            break;
                        }
                    }
                }
            }
        });
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let session = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if session.open && session.conn.execute_batch("COMMIT").is_err() {
            let _ = session.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Commits each group a moment after it opens, while the database lives.
async fn commit_groups(db: Weak<Database>, mut opened: watch::Receiver<()>) {
    while opened.changed().await.is_ok() {
        tokio::time::sleep(GROUP_WINDOW).await;
        let Some(db) = db.upgrade() else { break };
        db.commit();
    }
}

fn classify(path: &Path, source: rusqlite::Error) -> OpenError {
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => OpenError::Locked {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => OpenError::Unusable {
            path: path.to_path_buf(),
            reason: source.to_string(),
        },
        _ => OpenError::Sqlite {
            path: path.to_path_buf(),
            source,
        },
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
