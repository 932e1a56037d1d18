//! Opening the database: an existing file is checked before anything is written to it, then
//! one connection (WAL, `synchronous=NORMAL`: a commit survives the process being killed) is
//! shared by the store and the queue. Writes commit in groups: each runs in a savepoint of the
//! open transaction and waits for the commit that follows within about a millisecond, so a
//! thousand small writes cost one commit. Commits run on a blocking thread, checkpoints on a
//! thread and connection of their own, so neither stalls the runtime nor holds the writers'
//! lock while the file is synced.

use super::ready::{Key, Payload, Ready};
use super::{schema, upgrade};
use crate::domain::delivery::Job;
use crate::domain::health::{HealthCounts, HookHealth};
use crate::domain::hook::HookId;
use crate::ports::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{Notify, watch};

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
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Page cache of 4 MiB (negative: KiB; the OS caches the file behind it); savepoint journals in
/// memory; no checkpoint in a commit (the checkpointer does them).
const PRAGMAS: &str =
    "PRAGMA cache_size = -4096; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;";
/// How long a group stays open for more writes before it commits.
const GROUP_WINDOW: Duration = Duration::from_millis(1);
/// WAL size past which the checkpointer copies it into the database (about 4000 pages).
const CHECKPOINT_BYTES: u64 = 16 << 20;

pub struct Database {
    conn: Mutex<Session>,
    /// The file, or `None` in memory, where each write commits at once (nothing to wait for).
    path: Option<PathBuf>,
    /// Wakes the committer when a group opens; dropped with the database, which stops it.
    opened: watch::Sender<()>,
    /// The last group committed (or failed, with its error).
    committed: watch::Sender<Committed>,
    /// The queue's entries by due time.
    ready: Mutex<Ready>,
    /// Wakes receivers when an entry is queued.
    pub(crate) queued: Notify,
    /// Tells the checkpointer a group was committed; dropped with the database, which stops it.
    checkpoints: Option<mpsc::SyncSender<()>>,
    /// Held while the database lives: one process owns the file.
    _owner: Option<std::fs::File>,
}

/// The connection and the group of writes it has open.
pub(crate) struct Session {
    pub(crate) conn: Connection,
    open: bool,
    /// Changes the next commit writes.
    pub(crate) pending: Pending,
    /// The group the next write joins.
    group: u64,
}

impl std::ops::Deref for Session {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// Per-hook state kept in memory until the group commit writes it: one row per hook (and hour)
/// per commit, however many batches changed it.
#[derive(Default)]
pub(crate) struct Pending {
    /// Hourly counts to add, by hook and hour.
    pub(crate) counts: HashMap<(HookId, i64), HealthCounts>,
    /// Failure states to write (`None`: to delete), by hook.
    pub(crate) health: HashMap<String, Option<HookHealth>>,
}

impl Pending {
    fn write(&self, conn: &Connection) -> Result<(), StoreError> {
        super::store::write_pending(conn, self)
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
            .and_then(|()| conn.execute_batch(schema::DELIVERIES))
            .and_then(|()| conn.pragma_update(None, "user_version", schema::VERSION))
            .and_then(|()| conn.execute_batch("PRAGMA temp_store = MEMORY;"))
            .expect("the schema is valid");
        Self::serve(conn, None, None, Ready::default())
    }

    fn serve(
        conn: Connection,
        path: Option<PathBuf>,
        owner: Option<std::fs::File>,
        ready: Ready,
    ) -> Arc<Self> {
        let (opened, wake) = watch::channel(());
        let checkpoints = path.as_ref().map(|path| spawn_checkpointer(path.clone()));
        let db = Arc::new(Self {
            conn: Mutex::new(Session {
                conn,
                open: false,
                group: 1,
                pending: Pending::default(),
            }),
            path,
            opened,
            committed: watch::channel(Committed::default()).0,
            ready: Mutex::new(ready),
            queued: Notify::new(),
            checkpoints,
            _owner: owner,
        });
        if db.path.is_some() {
            tokio::spawn(commit_groups(Arc::downgrade(&db), wake));
        }
        db
    }

    /// The queue's entries.
    pub(crate) fn ready(&self) -> MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the queue's entries with `f`, then wakes the receivers.
    pub(crate) fn queued(&self, f: impl FnOnce(&mut Ready)) {
        f(&mut self.ready());
        self.queued.notify_waiters();
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
        let owner = own(&path)?;
        conn.busy_timeout(Duration::from_millis(500))
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
            conn.execute_batch(&format!("BEGIN; {steps}"))
                .and_then(|()| {
                    if version <= 5 {
                        upgrade::records_to_rows(&conn)
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| {
                    conn.execute_batch(&format!(
                        "PRAGMA user_version = {}; COMMIT;",
                        schema::VERSION
                    ))
                })
                .map_err(|e| {
                    let _ = conn.execute_batch("ROLLBACK");
                    sqlite(e)
                })?;
        }
        if tables == 0 {
            conn.execute_batch(&format!(
                "BEGIN; {} {} PRAGMA user_version = {}; COMMIT;",
                schema::CREATE,
                schema::DELIVERIES,
                schema::VERSION
            ))
            .map_err(sqlite)?;
        }
        // This process owns the file: a claim left unfinished was a request of a process that
        // died, and a repeat of its id may take it over at once.
        conn.execute(
            "UPDATE events SET claimed_at = 0 WHERE answer IS NULL AND claimed_at > 0",
            [],
        )
        .map_err(sqlite)?;
        let ready = load_queue(&conn).map_err(sqlite)?;
        Ok(Self::serve(conn, Some(path), Some(owner), ready))
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
        self.committed_group(group).await?;
        Ok(value)
    }

    /// Runs `f` on the changes the open group's commit writes, and waits for that commit (in
    /// memory, they are written at once).
    pub(crate) async fn at_commit<T>(
        &self,
        f: impl FnOnce(&Connection, &mut Pending) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.path.is_none() {
            return self
                .write(|conn| {
                    let mut pending = Pending::default();
                    let value = f(conn, &mut pending)?;
                    pending.write(conn)?;
                    Ok(value)
                })
                .await;
        }
        let (value, group) = {
            let mut session = self.lock();
            self.open_group(&mut session)?;
            let session = &mut *session;
            (f(&session.conn, &mut session.pending)?, session.group)
        };
        self.committed_group(group).await?;
        Ok(value)
    }

    /// Waits until `group` is committed.
    async fn committed_group(&self, group: u64) -> Result<(), StoreError> {
        if self.path.is_none() {
            return Ok(());
        }
        let mut committed = self.committed.subscribe();
        let done = committed
            .wait_for(|c| c.group >= group)
            .await
            .map_err(|_| StoreError::Unavailable("the database closed".into()))?;
        match &done.failed {
            Some(e) if done.group == group => Err(StoreError::Unavailable(e.clone())),
            _ => Ok(()),
        }
    }

    /// Opens a group unless one is open (in memory, the savepoint alone is the transaction).
    fn open_group(&self, session: &mut Session) -> Result<(), StoreError> {
        if !session.open && self.path.is_some() {
            session.conn.execute_batch("BEGIN")?;
            session.open = true;
            self.opened.send_replace(());
        }
        Ok(())
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
        self.open_group(&mut session)?;
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

    /// Commits the open group, if any; what its writers are told is left to the caller.
    fn commit(&self) -> Option<Committed> {
        let (group, failed) = {
            let mut session = self.lock();
            if !session.open {
                return None;
            }
            let pending = std::mem::take(&mut session.pending);
            let failed = match pending
                .write(&session.conn)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    session
                        .conn
                        .execute_batch("COMMIT")
                        .map_err(|e| e.to_string())
                }) {
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
        if let Some(checkpoints) = &self.checkpoints {
            let _ = checkpoints.try_send(());
        }
        Some(Committed { group, failed })
    }

    /// Deletes one batch of each kind of expired record (deliveries past their retention with
    /// their attempts and bodies, idempotency windows that ended, hourly counters past 49
    /// hours); returns how many rows went, so a caller can go on while a backlog remains.
    pub async fn expire(&self, now_ms: i64) -> Result<usize, StoreError> {
        let (removed, expired) = self.write(|conn| Self::expire_batch(conn, now_ms)).await?;
        self.queued(|ready| {
            for seq in expired {
                ready.remove(Key::Delivery(seq));
            }
        });
        Ok(removed)
    }

    fn expire_batch(conn: &Connection, now_ms: i64) -> Result<(usize, Vec<i64>), StoreError> {
        let now_s = now_ms / 1000;
        let expired: Vec<i64> = conn
            .prepare_cached("SELECT seq FROM deliveries WHERE expires_at <= ?1 LIMIT ?2")?
            .query_map([now_s, EXPIRY_BATCH], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut removed = expired.len();
        for seq in &expired {
            removed += conn
                .prepare_cached("DELETE FROM attempts WHERE delivery = ?1")?
                .execute([seq])?;
            conn.prepare_cached("DELETE FROM deliveries WHERE seq = ?1")?
                .execute([seq])?;
        }
        removed += conn.execute(
            "DELETE FROM bodies WHERE id IN (SELECT id FROM bodies WHERE expires_at <= ?1 \
             LIMIT ?2)",
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
        Ok((removed, expired))
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
        let pending = std::mem::take(&mut session.pending);
        if session.open
            && pending
                .write(&session.conn)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    session
                        .conn
                        .execute_batch("COMMIT")
                        .map_err(|e| e.to_string())
                })
                .is_err()
        {
            let _ = session.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Commits each group a moment after it opens, while the database lives, on a blocking
/// thread. That thread lets go of the database before the writers hear of the commit, so
/// whoever drops the database last after a write closes the file.
async fn commit_groups(weak: Weak<Database>, mut opened: watch::Receiver<()>) {
    while opened.changed().await.is_ok() {
        tokio::time::sleep(GROUP_WINDOW).await;
        let Some(db) = weak.upgrade() else { break };
        let Ok(committed) = tokio::task::spawn_blocking(move || db.commit()).await else {
            break;
        };
        if let Some(committed) = committed
            && let Some(db) = weak.upgrade()
        {
            db.committed.send_replace(committed);
        }
    }
}

/// Copies the WAL into the database once it has grown past [`CHECKPOINT_BYTES`], on a
/// connection of its own: writers go on meanwhile. Stops when the database is dropped.
fn spawn_checkpointer(path: PathBuf) -> mpsc::SyncSender<()> {
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let conn = match Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            ) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::error!(error = %e, "could not open the checkpoint connection");
                    return;
                }
            };
            let _ = conn.busy_timeout(Duration::from_millis(500));
            while rx.recv().is_ok() {
                let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                if size < CHECKPOINT_BYTES {
                    continue;
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "could not checkpoint the database");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the checkpoint thread");
    }
    tx
}

/// Takes the lock that makes this process the file's only user.
fn own(path: &Path) -> Result<std::fs::File, OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| OpenError::Lock {
            path: path.to_path_buf(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(OpenError::Lock {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The queue's entries as the file holds them: queued delivery rows and jobs.
fn load_queue(conn: &Connection) -> rusqlite::Result<Ready> {
    let mut ready = Ready::default();
    let mut deliveries = conn.prepare(
        "SELECT seq, hook_id, id, attempts, due_at FROM deliveries WHERE due_at IS NOT NULL",
    )?;
    let mut rows = deliveries.query([])?;
    while let Some(row) = rows.next()? {
        let (Ok(hook_id), Ok(delivery_id)) = (
            crate::domain::hook::HookId::parse(&row.get::<_, String>(1)?),
            crate::domain::delivery::DeliveryId::parse(&row.get::<_, String>(2)?),
        ) else {
            continue;
        };
        let job = Job {
            hook_id,
            delivery_id,
            attempt: row.get::<_, u32>(3)? + 1,
            due_at: row.get(4)?,
            reopen: false,
            rate_slot: None,
        };
        ready.put_delivery(row.get(0)?, job);
    }
    let mut jobs = conn.prepare("SELECT id, visible_at, body FROM jobs")?;
    let mut rows = jobs.query([])?;
    while let Some(row) = rows.next()? {
        ready.put(
            Key::Job(row.get(0)?),
            row.get(1)?,
            Payload::Job(row.get(2)?),
        );
    }
    Ok(ready)
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
