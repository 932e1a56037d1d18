//! The DynamoDB store against moto: subscriptions through the index, conditional writes.

use crate::support::moto;
use serde_json::json;
use webhooks::catalog::EventName;
use webhooks::clock::now_ms;
use webhooks::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus};
use webhooks::event::EventId;
use webhooks::hook::{Hook, HookPatch, NewHook, UrlPolicy};
use webhooks::ports::{AttemptRecord, RecordOutcome, Store, StoreError};

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
    let id = DeliveryId::lowest_at(at_ms);
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
    }
}

#[tokio::test]
async fn hooks_and_subscriptions_follow_every_change() {
    let m = moto("hooks").await;
    let s = &m.store;
    let a = new_hook(&["PostSignIn", "User.Created"]);
    let b = new_hook(&["PostSignIn"]);
    s.create_hook(&a).await.unwrap();
    s.create_hook(&b).await.unwrap();
    assert!(matches!(
        s.create_hook(&a).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(s.get_hook(&a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(s.list_hooks().await.unwrap().len(), 2);

    let mut subs = s.subscribers(EventName::PostSignIn).await.unwrap();
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
        s.subscribers(EventName::PostSignIn).await.unwrap(),
        vec![b.id.clone()]
    );
    assert_eq!(
        s.subscribers(EventName::RoleCreated).await.unwrap(),
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

#[tokio::test]
async fn attempts_are_recorded_once_and_logs_list_newest_first() {
    let m = moto("deliveries").await;
    let s = &m.store;
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
        error_kind: Some(webhooks::delivery::ErrorKind::Http),
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
        .list_deliveries(&hook.id, now - 86_400_000, now)
        .await
        .unwrap();
    let ids: Vec<_> = listed.iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        ids,
        vec![newer.id, older.id],
        "last 24 h only, newest first"
    );
}
