//! One contract for every store: the same cases run against the SQLite store (a file) and the
//! DynamoDB store (moto), so the two cannot drift apart (hooks and subscriptions, conditional
//! attempts, delivery listing, event claims, stats).

use crate::support::moto;
use serde_json::json;
use std::sync::Arc;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::api::bodies::{HookPatch, NewHook};
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus, ErrorKind};
use webhooks::domain::event::EventId;
use webhooks::domain::health::{BatchHealth, HealthCounts, HookHealth, Outcome, bucket_of};
use webhooks::domain::hook::{Hook, HookId, HookMode, HookPosition, UrlPolicy};
use webhooks::ports::{AttemptRecord, HourlyCount, RecordOutcome, Store, StoreError, Subscriber};
use webhooks::ports::{DeliveryFilter, EventClaim};

const POLICY: UrlPolicy = UrlPolicy { allow_http: false };

fn new_hook(events: &[&str]) -> Hook {
    NewHook::parse(
        &json!({"name": "h", "events": events, "config": {"url": "https://hooks.example.com/x", "headers": {"x-key": "v"}}}),
        POLICY,
    )
    .unwrap()
    .into_hook(now_ms())
}

fn delivery(hook: &Hook, at_ms: i64) -> Delivery {
    let id = DeliveryId::derive(at_ms, &EventId::generate(), &hook.id);
    Delivery {
        hook_id: hook.id.clone(),
        id,
        event_id: EventId::generate(),
        event: EventName::PostSignIn,
        body: "{\"hookId\":\"x\"}".into(),
        status: DeliveryStatus::Pending,
        attempts: vec![],
        next_attempt_at: Some(at_ms),
        reason: None,
        event_created_at: at_ms,
        created_at: at_ms,
        expires_at: at_ms / 1000 + 86_400,
        sync: false,
    }
}

/// Runs one contract case against both stores.
macro_rules! contract {
    ($name:ident, $short:literal) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let dir = std::env::temp_dir().join(webhooks_tests::unique_prefix("contract"));
                let db = webhooks::adapters::sqlite::Database::open(&dir).unwrap();
                super::$name(super::SqliteStore::new(db)).await;
                std::fs::remove_dir_all(dir).ok();
            }

            #[tokio::test]
            async fn dynamodb() {
                super::$name(super::moto($short).await.store).await;
            }
        }
    };
}

contract!(hooks_and_subscriptions_follow_every_change, "hooks");
contract!(
    attempts_are_recorded_once_and_logs_list_newest_first,
    "attempts"
);
contract!(event_claims_repeat_wait_take_over_and_expire, "claims");
contract!(
    missing_deliveries_are_inserted_and_existing_ones_kept,
    "missing"
);
contract!(reopen_and_hourly_stats, "reopen");
contract!(failure_states_open_close_and_reset, "health");
contract!(rate_slots_follow_one_another_and_restart_when_idle, "slots");
contract!(delivery_pages_follow_cursors_and_filters, "pages");
contract!(
    hook_pages_run_oldest_first_and_count_every_hook,
    "hookpages"
);
contract!(writers_racing_from_one_read_leave_one_winner, "racing");

/// The hook ids of an event's subscribers.
fn ids(subscribers: Vec<Subscriber>) -> Vec<HookId> {
    subscribers.into_iter().map(|s| s.hook_id).collect()
}

fn attempt_record(hook: &Hook, id: &DeliveryId, status: u16) -> AttemptRecord {
    AttemptRecord {
        hook_id: hook.id.clone(),
        delivery_id: id.clone(),
        expected_attempts: 0,
        attempt: Some(Attempt {
            number: 1,
            started_at: now_ms(),
            duration_ms: 3,
            response_status: Some(status),
            response_body: None,
            error_kind: None,
            error: None,
        }),
        status: if status < 300 {
            DeliveryStatus::Success
        } else {
            DeliveryStatus::Error
        },
        next_attempt_at: None,
        reason: None,
    }
}

/// Two writers that read the same state and then write, in every conditional port method:
/// the first wins, the second learns it lost, and the state is the first one's.
async fn writers_racing_from_one_read_leave_one_winner(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    s.create_hook(&hook).await.unwrap();
    let now = now_ms();
    let first = HookPatch::parse(&json!({"name": "first"}), POLICY)
        .unwrap()
        .apply(&hook, now + 1);
    let second = HookPatch::parse(&json!({"name": "second", "enabled": false}), POLICY)
        .unwrap()
        .apply(&hook, now + 2);
    s.update_hook(&hook, &first).await.unwrap();
    assert!(matches!(
        s.update_hook(&hook, &second).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get_hook(&hook.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        ids(s.subscribers(EventName::PostSignIn).await.unwrap()),
        vec![hook.id.clone()],
        "the losing write did not disable the hook"
    );

    let d = delivery(&hook, now);
    s.insert_deliveries(std::slice::from_ref(&d)).await.unwrap();
    let ok = attempt_record(&hook, &d.id, 204);
    let failed = attempt_record(&hook, &d.id, 500);
    assert_eq!(
        s.record_attempt(&ok).await.unwrap(),
        RecordOutcome::Recorded
    );
    assert_eq!(
        s.record_attempt(&failed).await.unwrap(),
        RecordOutcome::AlreadyRecorded
    );
    let stored = s.get_delivery(&hook.id, &d.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Success);
    assert_eq!(stored.attempts.len(), 1);
    assert_eq!(stored.attempts[0].response_status, Some(204));

    // Two re-sends of the finished delivery: one reopens it, the other finds it pending.
    assert!(
        s.reopen_delivery(&hook.id, &d.id, now, Some(1))
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        s.reopen_delivery(&hook.id, &d.id, now, Some(1)).await,
        Err(StoreError::Conflict)
    ));

    // Two fan-outs of one event: one creates the record, the other finds it.
    let e = delivery(&hook, now - 5);
    let created = s
        .insert_missing_deliveries(std::slice::from_ref(&e))
        .await
        .unwrap();
    let found = s
        .insert_missing_deliveries(std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!((created[0].1, found[0].1), (true, false));
    assert_eq!(found[0].0, e);

    // Two claims of one event id: one owns it, the other waits.
    let id = EventId::generate();
    assert!(matches!(
        s.claim_event(&id, now, 60_000, 30_000).await.unwrap(),
        EventClaim::Claimed { resumed: false, .. }
    ));
    assert_eq!(
        s.claim_event(&id, now + 1, 60_000, 30_000).await.unwrap(),
        EventClaim::InProgress
    );

    // Two copies of one recovery step: one advances it, the other is refused.
    let recovery = webhooks::domain::recovery::Recovery {
        id: webhooks::domain::recovery::RecoveryId::generate(),
        hook_id: hook.id.clone(),
        since: 0,
        until: now,
        status: webhooks::domain::recovery::RecoveryStatus::Running,
        resent: 0,
        steps: 0,
        cursor: None,
        created_at: now,
        updated_at: now,
    };
    s.create_recovery(&recovery).await.unwrap();
    let to = Some(d.id.clone());
    assert!(
        s.advance_recovery(&hook.id, &recovery.id, None, to.as_ref(), 3, now)
            .await
            .unwrap()
    );
    assert!(
        !s.advance_recovery(&hook.id, &recovery.id, None, to.as_ref(), 3, now)
            .await
            .unwrap()
    );
    let stored = s
        .get_recovery(&hook.id, &recovery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.resent, stored.steps), (3, 1));
}

/// The embedded store under real concurrency: many senders recording the same attempt at
/// once, and many requests claiming one event id at once, each have exactly one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_the_sqlite_store_have_one_winner() {
    let dir = std::env::temp_dir().join(webhooks_tests::unique_prefix("concurrent"));
    let s = SqliteStore::new(webhooks::adapters::sqlite::Database::open(&dir).unwrap());
    let hook = new_hook(&["PostSignIn"]);
    s.create_hook(&hook).await.unwrap();
    let d = delivery(&hook, now_ms());
    s.insert_deliveries(std::slice::from_ref(&d)).await.unwrap();
    let attempts = (0..16).map(|i| {
        let (s, record) = (s.clone(), attempt_record(&hook, &d.id, 200 + i));
        tokio::spawn(async move { s.record_attempt(&record).await.unwrap() })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let recorded = outcomes
        .iter()
        .filter(|o| *o.as_ref().unwrap() == RecordOutcome::Recorded)
        .count();
    assert_eq!(recorded, 1);
    assert_eq!(
        s.get_delivery(&hook.id, &d.id)
            .await
            .unwrap()
            .unwrap()
            .attempts
            .len(),
        1
    );

    let id = EventId::generate();
    let now = now_ms();
    let claims = (0..16).map(|_| {
        let (s, id) = (s.clone(), id.clone());
        tokio::spawn(async move { s.claim_event(&id, now, 60_000, 30_000).await.unwrap() })
    });
    let claims = futures::future::join_all(claims).await;
    let owners = claims
        .iter()
        .filter(|c| matches!(c.as_ref().unwrap(), EventClaim::Claimed { .. }))
        .count();
    assert_eq!(owners, 1);
    std::fs::remove_dir_all(dir).ok();
}

async fn hooks_and_subscriptions_follow_every_change(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let a = new_hook(&["PostSignIn", "User.Created"]);
    let b = new_hook(&["PostSignIn"]);
    s.create_hook(&a).await.unwrap();
    s.create_hook(&b).await.unwrap();
    assert!(matches!(
        s.create_hook(&a).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(s.get_hook(&a.id).await.unwrap().as_ref(), Some(&a));
    let listed: Vec<_> = s
        .page_hooks(None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|h| h.id)
        .collect();
    let mut expected = vec![(a.created_at, a.id.clone()), (b.created_at, b.id.clone())];
    expected.sort();
    assert_eq!(
        listed,
        expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
        "hooks list oldest first"
    );

    let mut subs = ids(s.subscribers(EventName::PostSignIn).await.unwrap());
    subs.sort();
    let mut both = vec![a.id.clone(), b.id.clone()];
    both.sort();
    assert_eq!(subs, both);

    let patch = HookPatch::parse(
        &json!({"events": ["Role.Created"], "enabled": true}),
        POLICY,
    )
    .unwrap();
    let a2 = patch.apply(&a, now_ms());
    s.update_hook(&a, &a2).await.unwrap();
    assert_eq!(
        ids(s.subscribers(EventName::PostSignIn).await.unwrap()),
        vec![b.id.clone()]
    );
    assert_eq!(
        ids(s.subscribers(EventName::RoleCreated).await.unwrap()),
        vec![a.id.clone()]
    );
    assert!(
        s.subscribers(EventName::UserCreated)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        matches!(s.update_hook(&a, &a2).await, Err(StoreError::Conflict)),
        "a stale write loses"
    );

    let disable = HookPatch::parse(&json!({"enabled": false}), POLICY)
        .unwrap()
        .apply(&b, now_ms());
    s.update_hook(&b, &disable).await.unwrap();
    assert!(
        s.subscribers(EventName::PostSignIn)
            .await
            .unwrap()
            .is_empty(),
        "disabled hooks get nothing"
    );

    // The index says which subscribers are called synchronously.
    let sync = HookPatch::parse(
        &json!({"enabled": true, "config": {"url": "https://hooks.example.com/s", "mode": "sync", "timeoutMs": 500}}),
        POLICY,
    )
    .unwrap()
    .apply(&disable, now_ms());
    s.update_hook(&disable, &sync).await.unwrap();
    assert_eq!(
        s.subscribers(EventName::PostSignIn).await.unwrap(),
        vec![Subscriber {
            hook_id: b.id.clone(),
            mode: HookMode::Sync
        }]
    );
    let back = HookPatch::parse(
        &json!({"config": {"url": "https://hooks.example.com/s"}}),
        POLICY,
    )
    .unwrap()
    .apply(&sync, now_ms());
    s.update_hook(&sync, &back).await.unwrap();
    assert_eq!(
        s.subscribers(EventName::PostSignIn).await.unwrap()[0].mode,
        HookMode::Async
    );

    assert!(s.delete_hook(&a2).await.unwrap());
    assert!(!s.delete_hook(&a2).await.unwrap());
    assert!(s.get_hook(&a.id).await.unwrap().is_none());
    assert!(
        s.subscribers(EventName::RoleCreated)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn attempts_are_recorded_once_and_logs_list_newest_first(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let now = now_ms();
    let older = delivery(&hook, now - 60_000);
    let newer = delivery(&hook, now - 1_000);
    let ancient = delivery(&hook, now - 3 * 86_400_000);
    s.insert_deliveries(&[older.clone(), newer.clone(), ancient.clone()])
        .await
        .unwrap();

    let attempt = Attempt {
        number: 1,
        started_at: now,
        duration_ms: 12,
        response_status: Some(500),
        response_body: Some("oops".into()),
        error_kind: Some(webhooks::domain::delivery::ErrorKind::Http),
        error: None,
    };
    let record = AttemptRecord {
        hook_id: hook.id.clone(),
        delivery_id: older.id.clone(),
        expected_attempts: 0,
        attempt: Some(attempt.clone()),
        status: DeliveryStatus::Pending,
        next_attempt_at: Some(now + 5_000),
        reason: None,
    };
    assert_eq!(
        s.record_attempt(&record).await.unwrap(),
        RecordOutcome::Recorded
    );
    assert_eq!(
        s.record_attempt(&record).await.unwrap(),
        RecordOutcome::AlreadyRecorded,
        "the same attempt twice"
    );
    let done = AttemptRecord {
        expected_attempts: 1,
        attempt: Some(Attempt {
            number: 2,
            response_status: Some(204),
            error_kind: None,
            ..attempt
        }),
        status: DeliveryStatus::Success,
        next_attempt_at: None,
        ..record
    };
    assert_eq!(
        s.record_attempt(&done).await.unwrap(),
        RecordOutcome::Recorded
    );
    assert_eq!(
        s.record_attempt(&done).await.unwrap(),
        RecordOutcome::AlreadyRecorded,
        "a finished delivery is final"
    );

    let stored = s.get_delivery(&hook.id, &older.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Success);
    assert_eq!(stored.attempts.len(), 2);
    assert_eq!(stored.next_attempt_at, None);

    let listed = s
        .page_deliveries(
            &hook.id,
            &DeliveryFilter::between(now - 86_400_000, now),
            None,
            10,
        )
        .await
        .unwrap()
        .items;
    let ids: Vec<_> = listed.iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        ids,
        vec![newer.id, older.id],
        "last 24 h only, newest first"
    );
}

async fn event_claims_repeat_wait_take_over_and_expire(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    const WINDOW: i64 = 86_400_000;
    const STALE: i64 = 60_000;
    let t0 = now_ms();
    let id = EventId::parse(&format!("evt_{}", ulid::Ulid::new())).unwrap();
    let fresh = EventClaim::Claimed {
        first_claimed_at: t0,
        resumed: false,
    };
    assert_eq!(s.claim_event(&id, t0, WINDOW, STALE).await.unwrap(), fresh);
    assert_eq!(
        s.claim_event(&id, t0 + 1_000, WINDOW, STALE).await.unwrap(),
        EventClaim::InProgress
    );
    // Abandoned: taken over, keeping the first claim's time.
    let resumed = EventClaim::Claimed {
        first_claimed_at: t0,
        resumed: true,
    };
    assert_eq!(
        s.claim_event(&id, t0 + STALE + 1, WINDOW, STALE)
            .await
            .unwrap(),
        resumed
    );
    assert_eq!(
        s.claim_event(&id, t0 + STALE + 2, WINDOW, STALE)
            .await
            .unwrap(),
        EventClaim::InProgress,
        "the takeover is a fresh claim"
    );
    // Released: free at once, still with the first claim's time.
    s.release_event(&id).await.unwrap();
    assert_eq!(
        s.claim_event(&id, t0 + STALE + 3, WINDOW, STALE)
            .await
            .unwrap(),
        resumed
    );
    let answer = json!({"id": id.to_string(), "deliveries": 3});
    s.complete_event(&id, &answer).await.unwrap();
    s.release_event(&id).await.unwrap();
    assert_eq!(
        s.claim_event(&id, t0 + 2 * STALE, WINDOW, STALE)
            .await
            .unwrap(),
        EventClaim::Accepted(answer.clone()),
        "a completed claim repeats its answer and cannot be released"
    );
    // After the window the id is new again.
    assert_eq!(
        s.claim_event(&id, t0 + WINDOW, WINDOW, STALE)
            .await
            .unwrap(),
        EventClaim::Claimed {
            first_claimed_at: t0 + WINDOW,
            resumed: false,
        }
    );
}

async fn missing_deliveries_are_inserted_and_existing_ones_kept(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let now = now_ms();
    let first = delivery(&hook, now - 2_000);
    let second = delivery(&hook, now - 1_000);
    s.insert_deliveries(std::slice::from_ref(&first))
        .await
        .unwrap();
    let attempted = AttemptRecord {
        hook_id: hook.id.clone(),
        delivery_id: first.id.clone(),
        expected_attempts: 0,
        attempt: Some(Attempt {
            number: 1,
            started_at: now,
            duration_ms: 3,
            response_status: Some(204),
            response_body: None,
            error_kind: None,
            error: None,
        }),
        status: DeliveryStatus::Success,
        next_attempt_at: None,
        reason: None,
    };
    s.record_attempt(&attempted).await.unwrap();

    let mut retried = first.clone();
    retried.body = "{\"changed\":true}".into();
    let stored = s
        .insert_missing_deliveries(&[retried, second.clone()])
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(!stored[0].1, "the existing record is kept");
    assert_eq!(stored[0].0.status, DeliveryStatus::Success);
    assert_eq!(stored[0].0.attempts.len(), 1);
    assert_eq!(stored[0].0.body, first.body, "and not overwritten");
    assert!(stored[1].1, "the missing one is created");
    assert_eq!(stored[1].0, second);
    assert_eq!(
        s.get_delivery(&hook.id, &second.id).await.unwrap(),
        Some(second.clone())
    );

    s.delete_deliveries(&[first.clone(), second.clone()])
        .await
        .unwrap();
    assert!(s.get_delivery(&hook.id, &first.id).await.unwrap().is_none());
    assert!(
        s.get_delivery(&hook.id, &second.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn reopen_and_hourly_stats(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let now = now_ms();
    let d = delivery(&hook, now);
    s.insert_deliveries(std::slice::from_ref(&d)).await.unwrap();
    assert!(
        matches!(
            s.reopen_delivery(&hook.id, &d.id, now, None).await,
            Err(StoreError::Conflict)
        ),
        "a pending delivery cannot be reopened"
    );
    let failed = AttemptRecord {
        hook_id: hook.id.clone(),
        delivery_id: d.id.clone(),
        expected_attempts: 0,
        attempt: None,
        status: DeliveryStatus::Dropped,
        next_attempt_at: None,
        reason: Some("hook disabled".into()),
    };
    s.record_attempt(&failed).await.unwrap();
    let reopened = s
        .reopen_delivery(&hook.id, &d.id, now + 5, Some(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reopened.status, DeliveryStatus::Pending);
    assert_eq!(reopened.next_attempt_at, Some(now + 5));
    assert_eq!(reopened.reason, None);
    let unknown = DeliveryId::derive(now, &EventId::generate(), &hook.id);
    assert!(
        s.reopen_delivery(&hook.id, &unknown, now, None)
            .await
            .unwrap()
            .is_none()
    );

    let hour = 3_600_000;
    let base = (now / hour) * hour;
    let h = base / hour;
    let other = HookId::generate();
    // `requests` attempts of `ms` each at `at`, the first `successes` of them successful,
    // the others 503s.
    let count = |hook: &HookId, hour: i64, requests: u64, successes: u64, at: i64, ms: u64| {
        let mut counts = HealthCounts::default();
        for i in 0..requests {
            let outcome = if i < successes {
                Outcome::Succeeded
            } else {
                Outcome::of(Some(503), Some(ErrorKind::Http))
            };
            counts.record(at, ms, outcome);
        }
        HourlyCount {
            hook_id: hook.clone(),
            hour,
            counts,
        }
    };
    s.count_attempts(&[
        count(&hook.id, h, 1, 1, base + 10, 30),
        count(&hook.id, h - 1, 1, 1, base - 10, 30),
        count(&hook.id, h - 30, 1, 1, base - 30 * hour, 30),
        count(&other, h, 5, 0, base + 1, 30),
    ])
    .await
    .unwrap();
    // An earlier failure written later: counted, and the latest failure time stays.
    s.count_attempts(&[count(&hook.id, h, 1, 0, base + 20, 4_000)])
        .await
        .unwrap();
    s.count_attempts(&[count(&hook.id, h, 1, 0, base + 15, 700)])
        .await
        .unwrap();
    s.count_attempts(&[]).await.unwrap();
    let day = s.hourly_health(&hook.id, h - 23, h).await.unwrap();
    assert_eq!(
        day.iter().map(|(hour, _)| *hour).collect::<Vec<_>>(),
        vec![h - 1, h],
        "the hours with attempts, oldest first"
    );
    let now_hour = &day[1].1;
    assert_eq!((now_hour.attempts, now_hour.successes), (3, 1));
    assert_eq!(now_hour.failures.status_5xx, 2);
    assert_eq!(now_hour.failures.total(), 2);
    assert_eq!(now_hour.last_success_at, Some(base + 10));
    assert_eq!(now_hour.last_failure_at, Some(base + 20));
    assert_eq!(now_hour.durations[bucket_of(30)], 1);
    assert_eq!(now_hour.durations[bucket_of(700)], 1);
    assert_eq!(now_hour.durations[bucket_of(4_000)], 1);
    assert_eq!(now_hour.percentile(0.99), Some(5_000));
    let older = s.hourly_health(&hook.id, h - 40, h - 2).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].0, h - 30);
    let others = s.hourly_health(&other, h, h).await.unwrap();
    assert_eq!(others[0].1.failures.status_5xx, 5);
}

async fn delivery_pages_follow_cursors_and_filters(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let now = now_ms();
    let all = DeliveryFilter::between(now - 3_600_000, now);
    let empty = s.page_deliveries(&hook.id, &all, None, 5).await.unwrap();
    assert!(
        empty.items.is_empty() && empty.next.is_none(),
        "an empty log"
    );

    // 12 deliveries a second apart, every third a User.Created, every fourth a success.
    let mut made = Vec::new();
    for i in 0..12i64 {
        let mut d = delivery(&hook, now - 60_000 + i * 1_000);
        if i % 3 == 0 {
            d.event = EventName::UserCreated;
        }
        if i % 4 == 0 {
            d.status = DeliveryStatus::Success;
        }
        made.push(d);
    }
    s.insert_deliveries(&made).await.unwrap();
    let newest_first: Vec<DeliveryId> = made.iter().rev().map(|d| d.id.clone()).collect();

    for size in [1, 5, 11, 12, 13, 100] {
        let (ids, _) = walk(s, &hook.id, all.clone(), size).await;
        assert_eq!(
            ids, newest_first,
            "page size {size}: every delivery once, newest first"
        );
    }
    let (_, pages) = walk(s, &hook.id, all.clone(), 13).await;
    assert_eq!(pages, 1, "a page larger than the log is the last one");
    let exactly = s.page_deliveries(&hook.id, &all, None, 12).await.unwrap();
    assert_eq!(exactly.items.len(), 12);

    let created = DeliveryFilter {
        event: Some(EventName::UserCreated),
        ..all.clone()
    };
    let (ids, _) = walk(s, &hook.id, created, 2).await;
    let want: Vec<DeliveryId> = made
        .iter()
        .rev()
        .filter(|d| d.event == EventName::UserCreated)
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(ids, want, "filtered by event");

    let succeeded = DeliveryFilter {
        statuses: Some(vec![DeliveryStatus::Success]),
        ..all.clone()
    };
    let (ids, _) = walk(s, &hook.id, succeeded, 2).await;
    assert_eq!(ids.len(), 3, "filtered by status");

    let recent = DeliveryFilter::between(now - 60_000 + 5_000, now - 60_000 + 8_000);
    let (ids, _) = walk(s, &hook.id, recent, 2).await;
    assert_eq!(
        ids,
        newest_first[3..7].to_vec(),
        "the time range is inclusive"
    );
}

/// Every id the filter lists, following cursors page by page; and how many pages it took.
async fn walk(
    s: &(impl Store + ?Sized),
    hook: &HookId,
    filter: DeliveryFilter,
    size: usize,
) -> (Vec<DeliveryId>, usize) {
    let (mut ids, mut after, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = s
            .page_deliveries(hook, &filter, after.as_ref(), size)
            .await
            .unwrap();
        assert!(page.items.len() <= size);
        pages += 1;
        ids.extend(page.items.into_iter().map(|d| d.id));
        after = page.next;
        if after.is_none() {
            return (ids, pages);
        }
    }
}

async fn hook_pages_run_oldest_first_and_count_every_hook(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let empty = s.page_hooks(None, 5).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
    assert_eq!(s.count_hooks().await.unwrap(), 0);
    // Seven hooks; two pairs share a creation time, so ties are ordered by id.
    let mut made = Vec::new();
    for at in [5_000, 1_000, 3_000, 3_000, 9_000, 7_000, 7_000] {
        let mut hook = new_hook(&["PostSignIn"]);
        hook.created_at = 1_795_000_000_000 + at;
        hook.updated_at = hook.created_at;
        s.create_hook(&hook).await.unwrap();
        made.push(hook);
    }
    let mut want: Vec<HookPosition> = made.iter().map(HookPosition::of).collect();
    want.sort();
    assert_eq!(s.count_hooks().await.unwrap(), 7);
    for size in [1, 3, 6, 7, 8] {
        let (mut got, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = s.page_hooks(after.as_ref(), size).await.unwrap();
            assert!(page.items.len() <= size);
            pages += 1;
            got.extend(page.items.iter().map(HookPosition::of));
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        assert_eq!(got, want, "page size {size}");
        assert_eq!(
            pages,
            7usize.div_ceil(size),
            "no empty last page at size {size}"
        );
    }
    // Subscriptions are not hooks: deleting one hook leaves six listed.
    assert!(s.delete_hook(&made[0]).await.unwrap());
    assert_eq!(s.count_hooks().await.unwrap(), 6);
}

/// A batch's `(started_at, succeeded)` attempts.
type Step = &'static [(i64, bool)];

async fn failure_states_open_close_and_reset(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let hook = HookId::generate();
    let other = HookId::generate();
    assert_eq!(s.hook_health(&hook).await.unwrap(), HookHealth::default());

    // Each step: a batch's attempts, and the state expected after it.
    let steps: [(Step, Option<i64>, u64); 6] = [
        (&[(100, false), (90, false)], Some(90), 2),
        (&[(120, false)], Some(90), 3),
        // A later success closes the window; the failure after it opens a new one.
        (&[(130, true), (140, false)], Some(140), 1),
        // Failures before the success on record do not count; nor does an older success.
        (&[(125, false)], Some(140), 1),
        (&[(128, true)], Some(140), 1),
        (&[(150, true)], None, 0),
    ];
    let mut expected = HookHealth::default();
    for (i, (attempts, failing_since, failed)) in steps.into_iter().enumerate() {
        let batch = BatchHealth::of(attempts);
        let (before, after) = s.record_health(&hook, &batch).await.unwrap();
        assert_eq!(before, expected, "step {i}: the state before");
        assert_eq!(
            after,
            before.apply(&batch),
            "step {i}: as the pure rule says"
        );
        assert_eq!(
            (after.failing_since, after.failed_attempts),
            (failing_since, failed),
            "step {i}"
        );
        assert_eq!(
            s.hook_health(&hook).await.unwrap(),
            after,
            "step {i}: stored"
        );
        expected = after;
    }
    assert_eq!(s.hook_health(&other).await.unwrap(), HookHealth::default());

    // One notice per window: a claim is refused until the window after the last one ends,
    // and failures and successes recorded since keep it.
    assert!(s.claim_notice(&hook, 1_000, 500).await.unwrap());
    assert!(!s.claim_notice(&hook, 1_499, 500).await.unwrap());
    let (_, after) = s
        .record_health(&hook, &BatchHealth::of(&[(1_200, false)]))
        .await
        .unwrap();
    assert_eq!(
        (after.failing_since, after.noticed_at),
        (Some(1_200), Some(1_000))
    );
    let (_, after) = s
        .record_health(&hook, &BatchHealth::of(&[(1_300, true)]))
        .await
        .unwrap();
    assert_eq!((after.failing_since, after.noticed_at), (None, Some(1_000)));
    assert!(s.claim_notice(&hook, 1_500, 500).await.unwrap());
    assert_eq!(s.hook_health(&hook).await.unwrap().noticed_at, Some(1_500));
    assert!(
        s.claim_notice(&other, 1_500, 500).await.unwrap(),
        "per hook"
    );

    s.record_health(&hook, &BatchHealth::of(&[(2_000, false)]))
        .await
        .unwrap();
    s.reset_health(&hook).await.unwrap();
    assert_eq!(s.hook_health(&hook).await.unwrap(), HookHealth::default());
    let (before, after) = s
        .record_health(&hook, &BatchHealth::of(&[(50, false)]))
        .await
        .unwrap();
    assert_eq!(
        before,
        HookHealth::default(),
        "a reset forgets the success too"
    );
    assert_eq!(after.failing_since, Some(50));
}

async fn rate_slots_follow_one_another_and_restart_when_idle(s: Arc<impl Store + ?Sized>) {
    let s = s.as_ref();
    let (hook, other) = (HookId::generate(), HookId::generate());
    let now = 1_000_000;
    let mut slots = Vec::new();
    for _ in 0..4 {
        slots.push(s.reserve_slot(&hook, 200, now).await.unwrap());
    }
    assert_eq!(slots, [now, now + 200, now + 400, now + 600]);
    assert_eq!(
        s.reserve_slot(&other, 200, now).await.unwrap(),
        now,
        "per hook"
    );
    // Later, but before the last slot taken: the slot after it.
    assert_eq!(
        s.reserve_slot(&hook, 200, now + 300).await.unwrap(),
        now + 800
    );
    // Idle since: now again.
    assert_eq!(
        s.reserve_slot(&hook, 200, now + 5_000).await.unwrap(),
        now + 5_000
    );
    assert_eq!(
        s.reserve_slot(&hook, 200, now + 5_000).await.unwrap(),
        now + 5_200
    );
}
