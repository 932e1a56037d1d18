//! The dev server's SQLite store as a process sees it: `kill -9` while events flow loses no
//! accepted event, retries resume at their due time after a restart, a damaged file stops
//! start-up untouched, and expired records go in the background.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use webhooks::adapters::sqlite::{Database, FILE_NAME, SqliteStore};
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus, ErrorKind};
use webhooks::domain::event::EventId;
use webhooks::domain::health::{HealthCounts, Outcome};
use webhooks::domain::hook::HookId;
use webhooks::ports::{
    DeliveryFilter, DeliveryLog, EventClaim, EventClaims, HealthStore, HookStore, HourlyCount,
    RecoveryStore,
};
use webhooks_tests::dev_server::{DevServer, dev_server_binary};
use webhooks_tests::free_port;
use webhooks_tests::receiver::Receiver;
use webhooks_tests::slow_receiver::SlowReceiver;

const ADMIN: &str = "durable-admin";
const INGEST: &str = "durable-ingest";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(webhooks_tests::unique_prefix(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn binary() -> String {
    tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap()
}

fn env<'a>(data_dir: &'a str, retries: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
        ("WEBHOOKS_INGEST_TOKEN", INGEST),
        ("WEBHOOKS_DATA_DIR", data_dir),
        ("WEBHOOKS_RETRY_SCHEDULE", retries),
    ]
}

async fn create_hook(http: &reqwest::Client, base: &str, url: String) -> String {
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": url, "events": ["PostSignIn"], "config": {"url": url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Posts events until `stop`, each with a fresh `userId`; records the ones answered 202 and
/// when the last 202 arrived.
struct Posting {
    accepted: Mutex<Vec<String>>,
    last_accepted: Mutex<Option<Instant>>,
    answered: Notify,
    next: AtomicU64,
    /// Requests that had connected and were cut off before their answer.
    cut: AtomicU64,
}

async fn post_until(posting: Arc<Posting>, base: String, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    while !stop.load(Ordering::Acquire) {
        let n = posting.next.fetch_add(1, Ordering::AcqRel);
        let user = format!("u{n}");
        let sent = http
            .post(format!("{base}/api/events"))
            .bearer_auth(INGEST)
            .json(&json!({"event": "PostSignIn", "userId": user}))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 202 => {
                posting.accepted.lock().unwrap().push(user);
                *posting.last_accepted.lock().unwrap() = Some(Instant::now());
                posting.answered.notify_waiters();
            }
            Err(e) if !e.is_connect() => {
                posting.cut.fetch_add(1, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_kill9_rounds_lose_no_accepted_event_and_repeat_none_after_a_recorded_success() {
    let binary = binary().await;
    let dir = temp_dir("kill9");
    let data = dir.to_string_lossy().into_owned();
    let env = env(&data, "1s,1s,2s");
    let port = free_port();
    // Each answer waits 100 ms, so an attempt's recorded end is well after its arrival, and a
    // re-send after that end stands out.
    let receiver = SlowReceiver::start(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();
    let mut server = DevServer::start_on(&binary, port, &env);
    server.ready().await;
    let base = server.base.clone();
    let mut hook_ids = Vec::new();
    for path in ["/a", "/b"] {
        hook_ids.push(create_hook(&http, &base, receiver.url(path)).await);
    }

    let posting = Arc::new(Posting {
        accepted: Mutex::new(Vec::new()),
        last_accepted: Mutex::new(None),
        answered: Notify::new(),
        next: AtomicU64::new(0),
        cut: AtomicU64::new(0),
    });
    let mut kills = Vec::new();
    for round in 0..10u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let posters: Vec<_> = (0..4)
            .map(|_| tokio::spawn(post_until(posting.clone(), base.clone(), stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + 25 * round)).await;
        posting.answered.notified().await;
        let delivering = receiver.in_flight();
        server.kill9();
        let killed = Instant::now();
        let killed_ms = now_ms();
        let since_last = killed - posting.last_accepted.lock().unwrap().unwrap();
        // Posting was under way (on a loaded 2-core machine the kill may lag the last 202 by
        // tens of milliseconds); the in-flight check below is the evidence the kill cut work.
        assert!(
            since_last <= Duration::from_millis(150),
            "round {round}: killed {since_last:?} after the last 202"
        );
        kills.push(killed_ms);
        stop.store(true, Ordering::Release);
        for p in posters {
            p.await.unwrap();
        }
        // The kill landed mid-request: a poster's connected request got no answer, or a
        // delivery was waiting for the receiver's answer.
        let cut = posting.cut.swap(0, Ordering::AcqRel);
        assert!(
            cut >= 1 || delivering > 0,
            "round {round}: nothing was in flight at the kill"
        );
        server = DevServer::start_on(&binary, port, &env);
        server.ready().await;
    }

    let accepted = posting.accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 50,
        "only {} events accepted",
        accepted.len()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let received = receiver.arrivals();
        let got: std::collections::HashSet<(String, String)> = received
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                (
                    body["hookId"].as_str().unwrap_or_default().to_string(),
                    body["userId"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let hooks: std::collections::HashSet<&String> = got.iter().map(|(h, _)| h).collect();
        let missing: Vec<String> = accepted
            .iter()
            .filter(|u| {
                hooks.len() < 2
                    || hooks
                        .iter()
                        .any(|h| !got.contains(&((*h).clone(), (*u).clone())))
            })
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "{} of {} accepted events never reached both hooks, e.g. {:?}",
        missing.len(),
        accepted.len(),
        &missing[..missing.len().min(5)]
    );

    // A delivery is sent again only when the process died before its success was recorded:
    // a kill lies between any two receipts of one webhook-id.
    let mut by_id: HashMap<String, Vec<i64>> = HashMap::new();
    for r in receiver.arrivals() {
        by_id.entry(r.webhook_id.clone()).or_default().push(r.at_ms);
    }
    for (id, times) in &by_id {
        for pair in times.windows(2) {
            assert!(
                kills.iter().any(|k| pair[0] <= *k && *k <= pair[1]),
                "{id} was delivered twice without a kill in between"
            );
        }
    }
    server.stop();

    // Nothing arrives after its delivery's success was recorded.
    let db = Database::open(&dir).unwrap();
    let store = SqliteStore::new(db.clone());
    let mut recorded_end: HashMap<String, i64> = HashMap::new();
    for hook in &hook_ids {
        let hook = HookId::parse(hook).unwrap();
        let mut after = None;
        loop {
            let page = store
                .page_deliveries(
                    &hook,
                    &DeliveryFilter::between(0, now_ms() + 1),
                    after.as_ref(),
                    100,
                )
                .await
                .unwrap();
            for d in &page.items {
                // One cut off by the last kill may still be waiting for its retry.
                if let Some(success) = d.attempts.iter().find(|a| a.succeeded()) {
                    recorded_end.insert(
                        d.id.to_string(),
                        success.started_at + success.duration_ms as i64,
                    );
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    assert!(
        recorded_end.len() * 10 >= by_id.len() * 9,
        "{} of {} deliveries recorded as successes",
        recorded_end.len(),
        by_id.len()
    );
    for r in receiver.arrivals() {
        let Some(&end) = recorded_end.get(&r.webhook_id) else {
            continue;
        };
        // Both clocks are floored to whole milliseconds.
        assert!(
            r.at_ms <= end + 2,
            "{} arrived at {}, after its success was recorded (attempt ended at {end})",
            r.webhook_id,
            r.at_ms
        );
    }
    drop(store);
    drop(db);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_pending_retry_resumes_at_its_due_time_after_a_kill() {
    let binary = binary().await;
    let dir = temp_dir("resume");
    let data = dir.to_string_lossy().into_owned();
    // 8 s ± 20 % jitter: due 6.4 to 9.6 s after the first attempt, long after the restart.
    let env = env(&data, "8s");
    let port = free_port();
    let receiver = Receiver::start(&[500]).await;
    let http = reqwest::Client::new();
    let mut server = DevServer::start_on(&binary, port, &env);
    server.ready().await;
    let hook = create_hook(&http, &server.base, receiver.url("/r")).await;
    // The receiver stamps arrivals with `Instant`; this pair maps them to epoch ms.
    let (epoch, origin) = (now_ms(), Instant::now());
    let at_ms = |at: Instant| epoch + at.duration_since(origin).as_millis() as i64;
    let r = http
        .post(format!("{}/api/events", server.base))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostSignIn", "userId": "u_resume"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let first = receiver.wait_for(1, Duration::from_secs(10)).await[0].at;
    let logs_url = format!("{}/api/hooks/{hook}/recent-logs", server.base);
    let logs: Value = webhooks_tests::poll(
        Duration::from_secs(10),
        || {
            let (http, url) = (http.clone(), logs_url.clone());
            async move {
                let r = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
                r.json::<Value>().await.unwrap()
            }
        },
        // The first attempt recorded, with the retry's due time.
        |logs| logs[0]["attemptCount"] == 1 && logs[0]["nextAttemptAt"].is_i64(),
    )
    .await;
    let due = logs[0]["nextAttemptAt"]
        .as_i64()
        .unwrap_or_else(|| panic!("no nextAttemptAt: {logs}"));
    assert!(
        due - at_ms(first) >= 6_000,
        "due {} ms after the attempt",
        due - at_ms(first)
    );
    // About 3 s into the backoff.
    let kill_at = first + Duration::from_secs(3);
    tokio::time::sleep_until(kill_at.into()).await;
    server.kill9();
    assert_eq!(receiver.count(), 1);

    let mut server = DevServer::start_on(&binary, port, &env);
    server.ready().await;
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    // Kept its due time (a restart-time reschedule would be 3 s or more late); a second covers
    // the queue's poll and a loaded machine.
    let late = at_ms(got[1].at) - due;
    assert!(
        (0..1_000).contains(&late),
        "the retry came {late} ms after its nextAttemptAt"
    );
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 2, "the retry is sent once");
    server.stop();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_damaged_database_stops_start_up_and_is_left_untouched() {
    let binary = binary().await;
    let dir = temp_dir("damaged");
    let file = dir.join(FILE_NAME);
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();
    let data = dir.to_string_lossy().into_owned();

    let server = DevServer::start(&binary, &env(&data, "1s"));
    let (code, output) = server.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&file.display().to_string())
            && output.contains("is not a usable webhooks database"),
        "{output}"
    );
    assert!(!output.contains("listening on"), "{output}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        garbage,
        "the file is unchanged"
    );
    assert_eq!(
        files_in(&dir),
        vec![FILE_NAME.to_string()],
        "nothing was added beside it (no -wal or -shm file)"
    );

    // A file of another program is refused the same way.
    let other = temp_dir("foreign");
    let foreign = foreign_database(&other);
    let before = std::fs::read(&foreign).unwrap();
    let server = DevServer::start(&binary, &env(&other.to_string_lossy(), "1s"));
    let (code, output) = server.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("tables of another program"), "{output}");
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
    assert_eq!(
        files_in(&other),
        vec![FILE_NAME.to_string()],
        "nothing was added beside it (no -wal or -shm file)"
    );
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_dir_all(other).ok();
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A SQLite file of some other program, where the store's file would be.
fn foreign_database(dir: &Path) -> PathBuf {
    let file = dir.join(FILE_NAME);
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    drop(conn);
    file
}

#[tokio::test]
async fn data_persists_under_dot_webhooks_by_default_and_one_process_owns_it() {
    let binary = binary().await;
    let cwd = temp_dir("cwd");
    let mut server = DevServer::start_in(
        &binary,
        free_port(),
        Some(&cwd),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
        ],
    );
    server.ready().await;
    assert!(
        server.output().contains(".webhooks/webhooks.sqlite3"),
        "the banner names the file:\n{}",
        server.output()
    );
    assert!(cwd.join(".webhooks").join(FILE_NAME).is_file());

    let second = DevServer::start_in(
        &binary,
        free_port(),
        Some(&cwd),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
        ],
    );
    let (code, output) = second.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("is in use by another process"), "{output}");
    server.stop();

    let memory = temp_dir("memory");
    let mut server = DevServer::start_in(
        &binary,
        free_port(),
        Some(&memory),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
        ],
    );
    server.ready().await;
    assert!(server.output().contains("kept in memory only"));
    server.stop();
    assert_eq!(std::fs::read_dir(&memory).unwrap().count(), 0);
    std::fs::remove_dir_all(cwd).ok();
    std::fs::remove_dir_all(memory).ok();
}

/// The tables of schema 5, whose deliveries were JSON records, as that version created them.
const V5_CREATE: &str = "
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

fn delivery(hook: &HookId, at_ms: i64, expires_at_s: i64) -> Delivery {
    let event_id = EventId::generate();
    Delivery {
        hook_id: hook.clone(),
        id: DeliveryId::derive(at_ms, &event_id, hook),
        event_id,
        event: EventName::PostSignIn,
        body: "{}".into(),
        status: DeliveryStatus::Success,
        attempts: vec![],
        next_attempt_at: None,
        reason: None,
        event_created_at: at_ms,
        created_at: at_ms,
        expires_at: expires_at_s,
        sync: false,
    }
}

#[tokio::test]
async fn expired_records_are_deleted_in_batches_and_live_ones_stay() {
    let dir = temp_dir("expiry");
    let db = Database::open(&dir).unwrap();
    let store = SqliteStore::new(db.clone());
    let hook = HookId::generate();
    let now = now_ms();
    let expired: Vec<Delivery> = (0..2_500)
        .map(|i| delivery(&hook, now - 20 * 86_400_000 + i, now / 1000 - 1))
        .collect();
    store.insert_deliveries(&expired).await.unwrap();
    let live = delivery(&hook, now, now / 1000 + 3_600);
    store
        .insert_deliveries(std::slice::from_ref(&live))
        .await
        .unwrap();
    let old_event = EventId::generate();
    store
        .claim_event(&old_event, now - 100_000, 1_000, 1_000)
        .await
        .unwrap();

    let mut rounds = 0;
    while db.expire(now).await.unwrap() > 0 {
        rounds += 1;
    }
    assert!(rounds >= 2, "a backlog is deleted in more than one batch");
    let page = store
        .page_deliveries(&hook, &DeliveryFilter::between(0, now + 1), None, 100)
        .await
        .unwrap();
    assert_eq!(page.items, vec![live]);
    assert!(matches!(
        store
            .claim_event(&old_event, now, 1_000, 1_000)
            .await
            .unwrap(),
        EventClaim::Claimed { resumed: false, .. }
    ));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_file_of_the_previous_schema_is_upgraded_and_keeps_its_counters() {
    let dir = temp_dir("upgrade");
    let hook = HookId::generate();
    let hour = now_ms().div_euclid(3_600_000);
    {
        let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
        // The file as schema 1 left it: hourly counters without their detail, and none of the
        // tables added since.
        conn.execute_batch(V5_CREATE).unwrap();
        conn.execute_batch(
            "ALTER TABLE hourly_stats DROP COLUMN detail; DROP TABLE hook_health; \
             DROP TABLE rate_slots; ALTER TABLE subscriptions DROP COLUMN sync; \
             PRAGMA user_version = 1;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO subscriptions (event, hook_id) VALUES ('default#PostSignIn', ?1)",
            [hook.as_str()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO hourly_stats (hook_id, hour, requests, successes) VALUES (?1, ?2, 7, 5)",
            rusqlite::params![hook.as_str(), hour],
        )
        .unwrap();
    }
    let db = Database::open(&dir).unwrap();
    let store = SqliteStore::new(db.clone());
    let hours = store.hourly_health(&hook, hour, hour).await.unwrap();
    assert_eq!(hours.len(), 1);
    // Subscriptions written before synchronous hooks existed are asynchronous.
    assert_eq!(
        store
            .subscribers(webhooks::domain::catalog::EventName::PostSignIn)
            .await
            .unwrap(),
        vec![webhooks::ports::Subscriber {
            hook_id: hook.clone(),
            mode: webhooks::domain::hook::HookMode::Async
        }]
    );
    assert_eq!((hours[0].1.attempts, hours[0].1.successes), (7, 5));
    let mut counts = HealthCounts::default();
    counts.record(now_ms(), 12, Outcome::of(None, Some(ErrorKind::Timeout)));
    store
        .count_attempts(&[HourlyCount {
            hook_id: hook.clone(),
            hour,
            counts,
        }])
        .await
        .unwrap();
    let hours = store.hourly_health(&hook, hour, hour).await.unwrap();
    assert_eq!((hours[0].1.attempts, hours[0].1.successes), (8, 5));
    assert_eq!(hours[0].1.failures.timeout, 1);
    drop((store, db));
    let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, webhooks::adapters::sqlite::SCHEMA_VERSION);
    drop(conn);
    std::fs::remove_dir_all(dir).ok();
}

/// A delivery as schema 5 stored it, for `hook`.
fn v5_delivery(
    hook: &HookId,
    status: DeliveryStatus,
    attempts: u32,
    next_attempt_at: Option<i64>,
) -> Delivery {
    let now = now_ms();
    let event_id = EventId::generate();
    let attempts = (1..=attempts)
        .map(|number| Attempt {
            number,
            started_at: now - 10_000 + i64::from(number),
            duration_ms: 7,
            response_status: Some(if number == 1 { 503 } else { 204 }),
            response_body: Some("busy".into()),
            error_kind: (number == 1).then_some(ErrorKind::Http),
            error: None,
        })
        .collect();
    Delivery {
        hook_id: hook.clone(),
        id: DeliveryId::derive(now - 20_000, &event_id, hook),
        body: format!(
            "{{\"hookId\":\"{hook}\",\"event\":\"PostSignIn\",\"userId\":\"{event_id}\"}}"
        ),
        event_id,
        event: EventName::PostSignIn,
        status,
        attempts,
        next_attempt_at,
        reason: None,
        event_created_at: now - 20_000,
        created_at: now - 20_000,
        expires_at: now / 1000 + 86_400,
        sync: false,
    }
}

#[tokio::test]
async fn a_file_of_schema_5_is_upgraded_in_place_and_its_pending_deliveries_are_sent() {
    let dir = temp_dir("upgrade5");
    let receiver = Receiver::start(&[]).await;
    let now = now_ms();
    let hook = webhooks::api::bodies::NewHook::parse(
        &json!({"name": "h", "events": ["PostSignIn"], "config": {"url": receiver.url("/v5")}}),
        webhooks::domain::hook::UrlPolicy { allow_http: true },
    )
    .unwrap()
    .into_hook(now - 60_000);
    let done = v5_delivery(&hook.id, DeliveryStatus::Success, 2, None);
    let retrying = v5_delivery(&hook.id, DeliveryStatus::Pending, 1, Some(now));
    let fresh = v5_delivery(&hook.id, DeliveryStatus::Pending, 0, Some(now));
    let deferred = v5_delivery(&hook.id, DeliveryStatus::Pending, 0, Some(now));
    let mut own_body = v5_delivery(&hook.id, DeliveryStatus::Error, 1, None);
    own_body.body = "{\"sample\":true}".into();
    own_body.reason = Some("attempts exhausted".into());
    let deliveries = [&done, &retrying, &fresh, &deferred, &own_body];
    let job = |d: &Delivery, rate_slot: Option<i64>| {
        json!({"hookId": d.hook_id, "deliveryId": d.id, "attempt": d.attempts.len() + 1,
               "dueAt": now - 1_000, "rateSlot": rate_slot})
        .to_string()
    };
    let recovery = webhooks::domain::recovery::Recovery {
        id: webhooks::domain::recovery::RecoveryId::generate(),
        hook_id: hook.id.clone(),
        since: now - 86_400_000,
        until: now,
        status: webhooks::domain::recovery::RecoveryStatus::Done,
        resent: 3,
        steps: 2,
        cursor: None,
        created_at: now - 5_000,
        updated_at: now - 4_000,
    };
    let health = webhooks::domain::health::HookHealth {
        failing_since: Some(now - 9_000),
        failed_attempts: 4,
        last_success_at: Some(now - 50_000),
        noticed_at: None,
    };
    let hour = now.div_euclid(3_600_000);
    let claimed = EventId::generate();
    let answer = webhooks::domain::json::RawJson::of(&json!({"id": claimed, "deliveries": 1}));
    {
        let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
        conn.execute_batch(V5_CREATE).unwrap();
        conn.execute_batch("PRAGMA user_version = 5; PRAGMA journal_mode = WAL;")
            .unwrap();
        let position = format!(
            "default#{}",
            webhooks::domain::hook::HookPosition::of(&hook).sort_key()
        );
        conn.execute(
            "INSERT INTO hooks (id, position, record) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                hook.id.as_str(),
                position,
                serde_json::to_string(&hook).unwrap()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO subscriptions (event, hook_id, sync) VALUES ('default#PostSignIn', ?1, 0)",
            [hook.id.as_str()],
        )
        .unwrap();
        for d in deliveries {
            conn.execute(
                "INSERT INTO deliveries (hook_id, id, event, status, expires_at, record) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    d.hook_id.as_str(),
                    d.id.to_string(),
                    d.event.as_str(),
                    d.status.as_str(),
                    d.expires_at,
                    serde_json::to_string(d).unwrap()
                ],
            )
            .unwrap();
        }
        for body in [
            job(&retrying, None),
            job(&fresh, None),
            job(&deferred, Some(now - 500)),
        ] {
            conn.execute(
                "INSERT INTO jobs (visible_at, body) VALUES (?1, ?2)",
                rusqlite::params![now - 1_000, body],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO dead_jobs (failed_at, body) VALUES (?1, '{\"dead\":true}')",
            [now],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO events (id, claimed_at, first_claimed_at, window_ends_at, answer) \
             VALUES (?1, ?2, ?2, ?3, ?4)",
            rusqlite::params![
                format!("default#{claimed}"),
                now - 1_000,
                now + 86_400_000,
                answer.get()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO hourly_stats (hook_id, hour, requests, successes, detail) \
             VALUES (?1, ?2, 9, 6, '{}')",
            rusqlite::params![hook.id.as_str(), hour],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO hook_health (hook_id, record) VALUES (?1, ?2)",
            rusqlite::params![hook.id.as_str(), serde_json::to_string(&health).unwrap()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO rate_slots (hook_id, next_at) VALUES (?1, ?2)",
            rusqlite::params![hook.id.as_str(), now - 100],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO recoveries (hook_id, id, updated_at, record) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                hook.id.as_str(),
                recovery.id.to_string(),
                recovery.updated_at,
                serde_json::to_string(&recovery).unwrap()
            ],
        )
        .unwrap();
    }

    {
        let db = Database::open(&dir).unwrap();
        let store = SqliteStore::new(db.clone());
        assert_eq!(store.get_hook(&hook.id).await.unwrap(), Some(hook.clone()));
        assert_eq!(
            store
                .subscribers(EventName::PostSignIn)
                .await
                .unwrap()
                .len(),
            1
        );
        for d in deliveries {
            assert_eq!(
                store
                    .get_delivery(&d.hook_id, &d.id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(d),
                "every field and attempt reads back"
            );
        }
        let page = store
            .page_deliveries(&hook.id, &DeliveryFilter::between(0, now), None, 10)
            .await
            .unwrap();
        assert_eq!(page.items.len(), deliveries.len());
        assert!(matches!(
            store.claim_event(&claimed, now, 1_000, 1_000).await.unwrap(),
            EventClaim::Accepted(a) if a == answer
        ));
        let hours = store.hourly_health(&hook.id, hour, hour).await.unwrap();
        assert_eq!((hours[0].1.attempts, hours[0].1.successes), (9, 6));
        assert_eq!(store.hook_health(&hook.id).await.unwrap(), health);
        assert_eq!(
            store.get_recovery(&hook.id, &recovery.id).await.unwrap(),
            Some(recovery.clone())
        );
        let queue =
            webhooks::adapters::sqlite::SqliteQueue::new(db.clone(), Duration::from_secs(30), 5);
        assert_eq!(queue.len(), 3, "every queued job is still queued");
        assert_eq!(queue.dead_letters(), ["{\"dead\":true}"]);
        drop((queue, store, db));
    }
    let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, webhooks::adapters::sqlite::SCHEMA_VERSION);
    let bodies: i64 = conn
        .query_row("SELECT count(*) FROM bodies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bodies, 5);
    drop(conn);

    let binary = binary().await;
    let data = dir.to_string_lossy().into_owned();
    let mut server = DevServer::start_on(&binary, free_port(), &env(&data, "1s"));
    server.ready().await;
    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    let mut sent: Vec<String> = got
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    sent.sort();
    let mut pending: Vec<String> = [&retrying, &fresh, &deferred]
        .iter()
        .map(|d| d.id.to_string())
        .collect();
    pending.sort();
    assert_eq!(sent, pending, "each pending delivery is sent once");
    for r in &got {
        let d = deliveries
            .iter()
            .find(|d| d.id.to_string() == r.header("webhook-id"))
            .unwrap();
        assert_eq!(r.body_text(), d.body, "the body byte for byte");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();
    assert_eq!(receiver.count(), 3);

    let db = Database::open(&dir).unwrap();
    let store = SqliteStore::new(db.clone());
    let after = store
        .get_delivery(&hook.id, &retrying.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, DeliveryStatus::Success);
    assert_eq!(after.attempts.len(), 2);
    assert_eq!(after.attempts[0], retrying.attempts[0]);
    drop((store, db));
    std::fs::remove_dir_all(dir).ok();
}

/// A file of schema 6 (before receiver check reports) gains their table and keeps its hooks.
#[tokio::test]
async fn a_schema_6_file_gains_the_receiver_checks_table() {
    use webhooks::domain::receiver_check::{CheckReport, REPORT_RETENTION_MS};
    use webhooks::ports::CheckStore;
    let dir = temp_dir("schema6");
    let hook = webhooks::api::bodies::NewHook::parse(
        &json!({"name": "h", "events": ["PostSignIn"], "config": {"url": "https://hooks.example.com/x"}}),
        webhooks::domain::hook::UrlPolicy { allow_http: false },
    )
    .unwrap()
    .into_hook(now_ms());
    {
        let db = Database::open(&dir).unwrap();
        SqliteStore::new(db.clone())
            .create_hook(&hook)
            .await
            .unwrap();
        drop(db);
    }
    {
        let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
        conn.execute_batch("DROP TABLE receiver_checks; PRAGMA user_version = 6;")
            .unwrap();
    }
    let db = Database::open(&dir).unwrap();
    let store = SqliteStore::new(db.clone());
    assert_eq!(store.get_hook(&hook.id).await.unwrap(), Some(hook.clone()));
    let now = now_ms();
    let report = CheckReport::new(
        Some(hook.id.clone()),
        "https://hooks.example.com/x".into(),
        now,
        1_000,
        vec![],
    );
    store
        .put_check(&report, now + REPORT_RETENTION_MS)
        .await
        .unwrap();
    let page = store.page_checks(&hook.id, None, 10, now).await.unwrap();
    assert_eq!(page.items, vec![report]);
    drop((store, db));
    let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, webhooks::adapters::sqlite::SCHEMA_VERSION);
    drop(conn);
    std::fs::remove_dir_all(dir).ok();
}
