//! The tables, created once per database file; `user_version` names the schema so a file of
//! another program (or another schema) is refused rather than written to. Deliveries (rows of
//! a kilobyte or more) live in a rowid table with a unique index on their key: a key-ordered
//! table of large rows would rebalance on nearly every insert.

/// `PRAGMA user_version` of the schema below.
pub const VERSION: i64 = 5;

/// What brings a file of an earlier version up to date, by the version each step starts from.
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
];

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
CREATE TABLE deliveries (
    hook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (hook_id, id)
);
CREATE INDEX deliveries_by_expiry ON deliveries (expires_at);
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
CREATE TABLE recoveries (
    hook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (hook_id, id)
) WITHOUT ROWID;
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    visible_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX jobs_by_visibility ON jobs (visible_at);
CREATE TABLE dead_jobs (
    id INTEGER PRIMARY KEY,
    failed_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
";
