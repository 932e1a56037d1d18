//! The delivery log: conditional attempts, idempotent inserts, reopening, and listings.

use super::{delivery, new_hook};
use std::sync::Arc;
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{Attempt, DeliveryId, DeliveryStatus};
use webhooks::domain::event::EventId;
use webhooks::domain::hook::HookId;
use webhooks::ports::{
    AttemptRecord, Count, DeliveryFilter, DeliveryLog, RecordOutcome, StoreError,
};

contract!(
    attempts_are_recorded_once_and_logs_list_newest_first,
    "attempts"
);
contract!(
    missing_deliveries_are_inserted_and_existing_ones_kept,
    "missing"
);
contract!(
    finished_deliveries_reopen_and_pending_ones_conflict,
    "reopen"
);
contract!(delivery_pages_follow_cursors_and_filters, "pages");
contract!(long_logs_list_every_delivery_once_newest_first, "long");
contract!(every_attempts_answer_is_kept_whole, "answers");

async fn attempts_are_recorded_once_and_logs_list_newest_first(s: Arc<impl DeliveryLog + ?Sized>) {
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
        expires_at: older.expires_at,
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

async fn missing_deliveries_are_inserted_and_existing_ones_kept(s: Arc<impl DeliveryLog + ?Sized>) {
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
        expires_at: first.expires_at,
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

async fn finished_deliveries_reopen_and_pending_ones_conflict(s: Arc<impl DeliveryLog + ?Sized>) {
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
        expires_at: d.expires_at,
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
}

async fn delivery_pages_follow_cursors_and_filters(s: Arc<impl DeliveryLog + ?Sized>) {
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
    let (ids, _) = walk(s, &hook.id, succeeded.clone(), 2).await;
    assert_eq!(ids.len(), 3, "filtered by status");

    let recent = DeliveryFilter::between(now - 60_000 + 5_000, now - 60_000 + 8_000);
    let (ids, _) = walk(s, &hook.id, recent.clone(), 2).await;
    assert_eq!(
        ids,
        newest_first[3..7].to_vec(),
        "the time range is inclusive"
    );

    // Counts: exact with every filter, a lower bound past the cap.
    let hook_id = &hook.id;
    let count = |filter: DeliveryFilter, cap: u64| async move {
        s.count_deliveries(hook_id, &filter, cap).await.unwrap()
    };
    let exact = |counted| Count {
        counted,
        exact: true,
    };
    assert_eq!(count(all.clone(), 100).await, exact(12));
    assert_eq!(
        count(all.clone(), 12).await,
        exact(12),
        "a cap reached is exact"
    );
    let created = DeliveryFilter {
        event: Some(EventName::UserCreated),
        ..all.clone()
    };
    assert_eq!(count(created, 100).await, exact(4));
    assert_eq!(count(succeeded, 100).await, exact(3));
    assert_eq!(count(recent, 100).await, exact(4));
    // Past the cap a store may stop (a lower bound above it) or finish counting.
    let capped = count(all.clone(), 5).await;
    assert!(
        capped == exact(12) || (!capped.exact && capped.counted > 5),
        "{capped:?}"
    );
    let none = DeliveryFilter::between(now - 7_200_000, now - 3_600_000);
    assert_eq!(count(none, 100).await, exact(0));
}

/// Hundreds of deliveries, some in the same millisecond: every page size and filter lists
/// each one once, newest first (the DynamoDB store merges a hook's partition keys for this).
async fn long_logs_list_every_delivery_once_newest_first(s: Arc<impl DeliveryLog + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let now = now_ms();
    let mut made = Vec::new();
    for i in 0..240i64 {
        let mut d = delivery(&hook, now - 600_000 + (i * 7_919) % 590_000 / 3 * 3);
        if i % 5 == 0 {
            d.status = DeliveryStatus::Success;
        }
        made.push(d);
    }
    s.insert_deliveries(&made).await.unwrap();
    made.sort_by(|a, b| b.id.cmp(&a.id));
    let newest_first: Vec<DeliveryId> = made.iter().map(|d| d.id.clone()).collect();
    let all = DeliveryFilter::between(now - 3_600_000, now);
    for size in [7, 50, 100] {
        let (ids, pages) = walk(s, &hook.id, all.clone(), size).await;
        assert_eq!(ids, newest_first, "page size {size}");
        assert_eq!(
            pages,
            240usize.div_ceil(size),
            "page size {size}: full pages"
        );
    }
    let succeeded = DeliveryFilter {
        statuses: Some(vec![DeliveryStatus::Success]),
        ..all.clone()
    };
    let want: Vec<DeliveryId> = made
        .iter()
        .filter(|d| d.status == DeliveryStatus::Success)
        .map(|d| d.id.clone())
        .collect();
    let (ids, _) = walk(s, &hook.id, succeeded, 10).await;
    assert_eq!(ids, want, "filtered by status");
    let window = DeliveryFilter::between(now - 400_000, now - 200_000);
    let want: Vec<DeliveryId> = made
        .iter()
        .filter(|d| (now - 400_000..=now - 200_000).contains(&d.created_at))
        .map(|d| d.id.clone())
        .collect();
    let (ids, _) = walk(s, &hook.id, window, 9).await;
    assert_eq!(ids, want, "a time window");
}

/// Long answers of several attempts each read back whole, from a single read and a listing.
async fn every_attempts_answer_is_kept_whole(s: Arc<impl DeliveryLog + ?Sized>) {
    let s = s.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let d = delivery(&hook, now_ms());
    s.insert_deliveries(std::slice::from_ref(&d)).await.unwrap();
    let answers = ["a".repeat(8_192), "é".repeat(3_000), "short".to_string()];
    for (i, answer) in answers.iter().enumerate() {
        let number = i as u32 + 1;
        let last = number == 3;
        let record = AttemptRecord {
            hook_id: hook.id.clone(),
            delivery_id: d.id.clone(),
            expires_at: d.expires_at,
            expected_attempts: number - 1,
            attempt: Some(Attempt {
                number,
                started_at: now_ms(),
                duration_ms: 4,
                response_status: Some(if last { 204 } else { 503 }),
                response_body: Some(answer.clone()),
                error_kind: None,
                error: None,
            }),
            status: if last {
                DeliveryStatus::Success
            } else {
                DeliveryStatus::Pending
            },
            next_attempt_at: (!last).then(now_ms),
            reason: None,
        };
        assert_eq!(
            s.record_attempt(&record).await.unwrap(),
            RecordOutcome::Recorded
        );
    }
    let kept = |d: &webhooks::domain::delivery::Delivery| -> Vec<String> {
        d.attempts
            .iter()
            .map(|a| a.response_body.clone().unwrap())
            .collect()
    };
    let read = s.get_delivery(&hook.id, &d.id).await.unwrap().unwrap();
    assert_eq!(kept(&read), answers, "read alone");
    let all = DeliveryFilter::between(now_ms() - 60_000, now_ms());
    let page = s.page_deliveries(&hook.id, &all, None, 5).await.unwrap();
    assert_eq!(kept(&page.items[0]), answers, "listed");
}

/// Every id the filter lists, following cursors page by page; and how many pages it took.
async fn walk(
    s: &(impl DeliveryLog + ?Sized),
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

/// Delivery items written before a hook's deliveries were spread over several partition keys
/// (under the hook id alone) are still read, listed among the new ones, recorded and reopened.
#[tokio::test]
async fn dynamodb_items_under_the_hook_id_alone_stay_in_use() {
    use aws_sdk_dynamodb::types::AttributeValue::{L, N, S};
    let moto = crate::support::moto("legacy").await;
    let s = moto.store.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let now = now_ms();
    let old = delivery(&hook, now - 5_000);
    let number = |v: i64| N(v.to_string());
    aws_sdk_dynamodb::Client::new(&webhooks_tests::provision::moto_config().await)
        .put_item()
        .table_name(&moto.provisioned.deliveries_table)
        .item("pk", S(hook.id.to_string()))
        .item("sk", S(old.id.to_string()))
        .item("eventId", S(old.event_id.to_string()))
        .item("event", S(old.event.as_str().into()))
        .item("body", S(old.body.clone()))
        .item("status", S("Pending".into()))
        .item("attempts", L(vec![]))
        .item("attemptCount", number(0))
        .item("nextAttemptAt", number(now - 5_000))
        .item("eventCreatedAt", number(old.event_created_at))
        .item("createdAt", number(old.created_at))
        .item("expiresAt", number(old.expires_at))
        .send()
        .await
        .unwrap();
    let new: Vec<_> = (0..6).map(|i| delivery(&hook, now - 4_000 + i)).collect();
    s.insert_deliveries(&new).await.unwrap();

    assert_eq!(
        s.get_delivery(&hook.id, &old.id).await.unwrap(),
        Some(old.clone())
    );
    let all = DeliveryFilter::between(now - 60_000, now);
    let (ids, _) = walk(s, &hook.id, all.clone(), 4).await;
    let mut want: Vec<DeliveryId> = new.iter().rev().map(|d| d.id.clone()).collect();
    want.push(old.id.clone());
    assert_eq!(ids, want, "listed with the newer items, in order");

    let record = super::attempt_record(&hook, &old.id, 500);
    assert_eq!(
        s.record_attempt(&record).await.unwrap(),
        RecordOutcome::Recorded
    );
    assert_eq!(
        s.record_attempt(&record).await.unwrap(),
        RecordOutcome::AlreadyRecorded
    );
    let stored = s.get_delivery(&hook.id, &old.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts.len()),
        (DeliveryStatus::Error, 1)
    );
    let reopened = s
        .reopen_delivery(&hook.id, &old.id, now, Some(1))
        .await
        .unwrap()
        .expect("reopened where it is");
    assert_eq!(reopened.status, DeliveryStatus::Pending);
    assert!(matches!(
        s.reopen_delivery(&hook.id, &old.id, now, None).await,
        Err(StoreError::Conflict)
    ));
    let unknown = DeliveryId::derive(now, &EventId::generate(), &hook.id);
    assert_eq!(
        s.reopen_delivery(&hook.id, &unknown, now, None)
            .await
            .unwrap(),
        None
    );
    let record = super::attempt_record(&hook, &unknown, 204);
    assert_eq!(
        s.record_attempt(&record).await.unwrap(),
        RecordOutcome::AlreadyRecorded
    );
}

/// A delivery's item keeps only the start of each long answer, so recording an attempt never
/// rewrites the answers of earlier ones (an update is billed on the item's whole size).
#[tokio::test]
async fn dynamodb_long_answers_stay_out_of_the_delivery_item() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let moto = crate::support::moto("answers-out").await;
    let s = moto.store.as_ref();
    let hook = new_hook(&["PostSignIn"]);
    let d = delivery(&hook, now_ms());
    s.insert_deliveries(std::slice::from_ref(&d)).await.unwrap();
    for number in 1..=3u32 {
        let record = AttemptRecord {
            hook_id: hook.id.clone(),
            delivery_id: d.id.clone(),
            expires_at: d.expires_at,
            expected_attempts: number - 1,
            attempt: Some(Attempt {
                number,
                started_at: now_ms(),
                duration_ms: 4,
                response_status: Some(500),
                response_body: Some(format!("{number}").repeat(8_192)),
                error_kind: None,
                error: None,
            }),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now_ms()),
            reason: None,
        };
        s.record_attempt(&record).await.unwrap();
    }
    let items = aws_sdk_dynamodb::Client::new(&webhooks_tests::provision::moto_config().await)
        .scan()
        .table_name(&moto.provisioned.deliveries_table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let item = items
        .iter()
        .find(|i| matches!(i.get("sk"), Some(AttributeValue::S(sk)) if *sk == d.id.to_string()))
        .expect("the delivery's item");
    let Some(AttributeValue::L(attempts)) = item.get("attempts") else {
        panic!("attempts are a list: {item:?}");
    };
    assert_eq!(attempts.len(), 3);
    for a in attempts {
        let Some(AttributeValue::S(body)) = a.as_m().unwrap().get("responseBody") else {
            panic!("an answer's start is kept: {a:?}");
        };
        assert!(body.len() <= 256, "{} bytes inline", body.len());
    }
    assert_eq!(items.len(), 4, "the delivery and one item per long answer");
    let read = s.get_delivery(&hook.id, &d.id).await.unwrap().unwrap();
    assert_eq!(
        read.attempts[2].response_body.as_deref(),
        Some("3".repeat(8_192).as_str())
    );
}
