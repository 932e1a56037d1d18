//! One contract for every store: the same cases run against the SQLite store (a file) and the
//! DynamoDB store (moto), so the two cannot drift apart. One file per port (hooks and
//! subscriptions, the delivery log, event claims, counters and failure state, recoveries);
//! this one holds the cases that cross ports and what the files share.

use serde_json::json;
use std::sync::Arc;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::api::bodies::{HookPatch, NewHook};
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus};
use webhooks::domain::event::EventId;
use webhooks::domain::hook::{Hook, HookId, UrlPolicy};
use webhooks::ports::{
    AttemptRecord, DeliveryLog, EventClaim, EventClaims, HookStore, RecordOutcome, Store,
    StoreError, Subscriber,
};

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
                super::$name(webhooks::adapters::sqlite::SqliteStore::new(db)).await;
                std::fs::remove_dir_all(dir).ok();
            }

            #[tokio::test]
            async fn dynamodb() {
                super::$name(crate::support::moto($short).await.store).await;
            }
        }
    };
}

// After the macro, so the ports' files can run their cases with it.
mod checks;
mod claims;
mod deliveries;
mod health;
mod hooks;
mod recoveries;

contract!(stale_writes_in_sequence_lose_to_the_first, "stale");

/// The hook ids of an event's subscribers.
fn ids(subscribers: Vec<Subscriber>) -> Vec<HookId> {
    subscribers.into_iter().map(|s| s.hook_id).collect()
}

fn attempt_record(hook: &Hook, id: &DeliveryId, status: u16) -> AttemptRecord {
    AttemptRecord {
        hook_id: hook.id.clone(),
        delivery_id: id.clone(),
        expires_at: now_ms() / 1000 + 86_400,
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

/// Two writers that read the same state and then write one after the other, in every
/// conditional port method: the first wins, the second learns it lost, and the state is the
/// first one's. Writes at the same moment: `conditional_writes`.
async fn stale_writes_in_sequence_lose_to_the_first(s: Arc<impl Store + ?Sized>) {
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
