//! The tables, created once per database file; `user_version` names the schema so a file of
//! another program (or another schema) is refused rather than written to. A delivery is a small
//! row that doubles as its queue entry (`due_at`); the body its event's deliveries share is
//! stored once, and each attempt is a row of its own, so an attempt appends instead of rewriting.

/// `PRAGMA user_version` of the schema below.
pub const VERSION: i64 = 7;

/// What brings a file of an earlier version up to the current one, by the version each step
/// starts from; a file of version 5 or earlier then has `upgrade.rs` rewrite version 5's JSON
/// delivery records as rows (version 6), and version 6 gains the receiver checks' table.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "ALTER TABLE hourly_stats ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';",
    ),
    (2, HOOK_HEALTH),
    (3, RATE_SLOTS),
    (
        4,
        "ALTER TABLE subscriptions ADD COLUMN sync INTEGER NOT NULL DEFAULT 0;",
    ),
    (6, RECEIVER_CHECKS),
];

/// Receiver check reports, newest first by id (a ULID); expired rows are deleted as new ones
/// are written.
const RECEIVER_CHECKS: &str = "
CREATE TABLE receiver_checks (
    hook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (hook_id, id)
) WITHOUT ROWID;
CREATE INDEX receiver_checks_by_expiry ON receiver_checks (expires_at);
";

const RATE_SLOTS: &str = "
CREATE TABLE rate_slots (
    hook_id TEXT PRIMARY KEY,
    next_at INTEGER NOT NULL
) WITHOUT ROWID;
";

const HOOK_HEALTH: &str = "
CREATE TABLE hook_health (
    hook_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
) WITHOUT ROWID;
";

/// The delivery log: bodies (`shared`: the body follows the hook's `{"hookId":…,` prefix),
/// deliveries (`due_at` set while queued; `seq` is what attempts and the queue refer to) and
/// their attempts.
pub const DELIVERIES: &str = "
CREATE TABLE bodies (
    id INTEGER PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    shared INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX bodies_by_expiry ON bodies (expires_at);
CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    hook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    due_at INTEGER,
    next_attempt_at INTEGER,
    reason TEXT,
    body_id INTEGER NOT NULL,
    event_created_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    sync INTEGER NOT NULL,
    UNIQUE (hook_id, id)
);
CREATE INDEX deliveries_by_expiry ON deliveries (expires_at);
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE attempts (
    delivery INTEGER NOT NULL,
    number INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (delivery, number)
) WITHOUT ROWID;
";

/// Every table but the delivery log's ([`DELIVERIES`]).
pub const CREATE: &str = "
CREATE TABLE hooks (
    id TEXT PRIMARY KEY,
    position TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE subscriptions (
    event TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    sync INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event, hook_id)
) WITHOUT ROWID;
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    claimed_at INTEGER NOT NULL,
    first_claimed_at INTEGER NOT NULL,
    window_ends_at INTEGER NOT NULL,
    answer TEXT
) WITHOUT ROWID;
CREATE INDEX events_by_expiry ON events (window_ends_at);
CREATE TABLE hourly_stats (
    hook_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (hook_id, hour)
) WITHOUT ROWID;
CREATE TABLE hook_health (
    hook_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE rate_slots (
    hook_id TEXT PRIMARY KEY,
    next_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE receiver_checks (
    hook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (hook_id, id)
) WITHOUT ROWID;
CREATE INDEX receiver_checks_by_expiry ON receiver_checks (expires_at);
CREATE TABLE recoveries (
    hook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (hook_id, id)
) WITHOUT ROWID;
-- Queued tasks a delivery row cannot carry (recovery steps, re-sends, rate-limit deferrals);
-- the queue keeps their order in memory.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    visible_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE dead_jobs (
    id INTEGER PRIMARY KEY,
    failed_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
";
