//! Idempotent ingest at its edges: a repeat after any failure derives the same delivery ids
//! (receivers see each `webhook-id` once), 409 while the first request is still fanning out,
//! takeover of an abandoned claim, and a repeat with a different body.

use crate::support::{Pipeline, faulty_pipeline};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use webhooks::domain::clock::now_ms;
use webhooks::domain::event::EventId;
use webhooks::ports::{EventClaim, EventClaims};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::{pump, pump_until};

const WAIT: Duration = Duration::from_secs(30);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Requests per `webhook-id` a receiver got.
fn ids(receiver: &Receiver) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in receiver.received() {
        *seen.entry(r.header("webhook-id").to_string()).or_default() += 1;
    }
    seen
}

async fn two_hooks(p: &Pipeline) -> (Receiver, Receiver) {
    let (a, b) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
    p.create_hook(&a.url("/a"), &["User.Created"]).await;
    p.create_hook(&b.url("/b"), &["User.Created"]).await;
    (a, b)
}

#[tokio::test]
async fn a_repeat_after_a_failed_completion_reuses_every_webhook_id() {
    let (p, faulty) = faulty_pipeline("repeat", "1s").await;
    let (a, b) = two_hooks(&p).await;
    let event = json!({"event": "User.Created", "id": "evt_repeat_1", "data": {"id": "u_1"}});
    faulty.fail_next("complete_event", 1);

    let first = p.post_event(event.clone()).await;
    assert_eq!(first.status, 202, "{}", first.body_json());
    assert_eq!(first.body_json()["deliveries"], 2);
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        !a.received().is_empty() && !b.received().is_empty()
    })
    .await;

    // The claim was never completed: while it is fresh a repeat is told to wait…
    let waiting = p.post_event(event.clone()).await;
    assert_eq!(waiting.status, 409);
    assert_eq!(waiting.body_json()["code"], "event.in_progress");
    // …and once it is abandoned the repeat takes it over and fans out again.
    faulty.advance_claim_clock(5 * 60 * 1000);
    let repeat = p.post_event(event.clone()).await;
    assert_eq!(repeat.status, 202, "{}", repeat.body_json());
    assert_eq!(repeat.body_json(), first.body_json());
    pump(&p.moto.queue, &p.sender, 3).await;

    for receiver in [&a, &b] {
        let seen = ids(receiver);
        assert_eq!(seen.len(), 1, "one webhook-id per hook: {seen:?}");
        assert!(seen.values().all(|n| *n == 1), "each sent once: {seen:?}");
    }
    // The repeat completed the claim: the next one repeats the answer.
    let third = p.post_event(event).await;
    assert_eq!(third.status, 202);
    assert_eq!(third.body_json(), first.body_json());
}

#[tokio::test]
async fn a_repeat_after_a_refused_event_delivers_under_the_same_ids() {
    let (p, faulty) = faulty_pipeline("refused", "1s").await;
    let (a, b) = two_hooks(&p).await;
    // Too large to travel in each job: its fields are kept first, and that write fails, so no
    // job is queued.
    let event = json!({"event": "User.Created", "id": "evt_refused_1",
                       "data": {"id": "u_2", "bio": "b".repeat(8_000)}});
    faulty.fail_next("put_event_fields", 1);

    let refused = p.post_event(event.clone()).await;
    assert_eq!(refused.status, 503);
    // Refused means released: the caller may retry at once.
    let accepted = p.post_event(event.clone()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body_json());
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        !a.received().is_empty() && !b.received().is_empty()
    })
    .await;
    pump(&p.moto.queue, &p.sender, 2).await;
    for receiver in [&a, &b] {
        let seen = ids(receiver);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen.values().all(|n| *n == 1), "{seen:?}");
        let body: Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
        assert_eq!(body["data"]["bio"].as_str().map(str::len), Some(8_000));
    }
    assert_eq!(
        faulty.calls("event_fields"),
        1,
        "the kept fields are read once for both hooks"
    );
}

#[tokio::test]
async fn a_repeat_while_the_first_request_fans_out_gets_409() {
    let (p, faulty) = faulty_pipeline("inprogress", "1s").await;
    let (a, b) = two_hooks(&p).await;
    let event = json!({"event": "User.Created", "id": "evt_busy_1", "data": {"id": "u_3"}});
    let gate = faulty.hold("subscribers");

    let first = p.post_event(event.clone());
    let second = async {
        gate.entered().await;
        let r = p.post_event(event.clone()).await;
        gate.open();
        r
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(second.status, 409, "{}", second.body_json());
    assert_eq!(second.body_json()["code"], "event.in_progress");
    assert_eq!(first.status, 202, "{}", first.body_json());
    assert_eq!(first.body_json()["deliveries"], 2);

    let after = p.post_event(event).await;
    assert_eq!(after.status, 202);
    assert_eq!(after.body_json(), first.body_json());
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        !a.received().is_empty() && !b.received().is_empty()
    })
    .await;
    pump(&p.moto.queue, &p.sender, 2).await;
    assert_eq!(a.received().len() + b.received().len(), 2);
}

#[tokio::test]
async fn an_abandoned_claim_is_taken_over_and_a_fresh_one_is_not() {
    let (p, _faulty) = faulty_pipeline("takeover", "1s").await;
    let (a, _b) = two_hooks(&p).await;
    let now = now_ms();
    // A request that claimed this id two minutes ago and died.
    let dead = EventId::parse("evt_dead_1").unwrap();
    let claim = p
        .moto
        .store
        .claim_event(&dead, now - 120_000, DAY_MS, 60_000)
        .await
        .unwrap();
    assert!(matches!(claim, EventClaim::Claimed { resumed: false, .. }));
    // A request that claimed this one a moment ago and is still working.
    let busy = EventId::parse("evt_busy_2").unwrap();
    p.moto
        .store
        .claim_event(&busy, now - 1_000, DAY_MS, 60_000)
        .await
        .unwrap();

    let taken = p
        .post_event(json!({"event": "User.Created", "id": "evt_dead_1", "data": {}}))
        .await;
    assert_eq!(taken.status, 202, "{}", taken.body_json());
    assert_eq!(taken.body_json()["deliveries"], 2);
    let refused = p
        .post_event(json!({"event": "User.Created", "id": "evt_busy_2", "data": {}}))
        .await;
    assert_eq!(refused.status, 409);

    pump_until(&p.moto.queue, &p.sender, WAIT, || !a.received().is_empty()).await;
    let delivered = &a.received()[0];
    assert_eq!(delivered.json()["event"], "User.Created");
    // Delivery ids carry the time of the first claim.
    let id = webhooks::domain::delivery::DeliveryId::parse(delivered.header("webhook-id")).unwrap();
    assert_eq!(id.created_at_ms(), now - 120_000);
}

#[tokio::test]
async fn the_same_id_with_another_body_repeats_the_first_answer_and_sends_nothing_new() {
    let (p, _faulty) = faulty_pipeline("otherbody", "1s").await;
    let (a, _b) = two_hooks(&p).await;
    let first = p
        .post_event(json!({"event": "User.Created", "id": "evt_same_1", "data": {"name": "first"}}))
        .await;
    assert_eq!(first.status, 202);
    let other = p
        .post_event(
            json!({"event": "User.Deleted", "id": "evt_same_1", "data": {"name": "second"}}),
        )
        .await;
    assert_eq!(other.status, 202);
    assert_eq!(other.body_json(), first.body_json());
    pump_until(&p.moto.queue, &p.sender, WAIT, || !a.received().is_empty()).await;
    pump(&p.moto.queue, &p.sender, 2).await;
    let received: Vec<Value> = a.received().iter().map(|r| r.json()).collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["event"], "User.Created");
    assert_eq!(received[0]["data"]["name"], "first");
}

#[tokio::test]
async fn the_sender_finishes_a_fan_out_whose_request_died() {
    use webhooks::domain::catalog::EventName;
    use webhooks::domain::delivery::PendingDelivery;
    use webhooks::domain::task::{FanOutCheck, Task};
    use webhooks::ports::JobQueue;
    let p = crate::support::pipeline("fan-out-check", "1s").await;
    let (a, b) = two_hooks(&p).await;
    // A request claimed `evt_died`, queued its check and died before any job went out.
    let id = EventId::parse("evt_died").unwrap();
    let first_claimed_at = now_ms() - 120_000;
    p.moto
        .store
        .claim_event(&id, first_claimed_at, DAY_MS, 60_000)
        .await
        .unwrap();
    let check = FanOutCheck {
        check_fan_out: PendingDelivery {
            event_id: id.clone(),
            event: EventName::UserCreated,
            fields: Some(r#"{"event":"User.Created","data":{"id":"u_died"}}"#.into()),
            event_created_at: first_claimed_at,
            created_at: first_claimed_at,
            expires_at: now_ms() / 1000 + 3_600,
            resumed: false,
        },
        due_at: now_ms(),
    };
    p.moto
        .queue
        .enqueue_tasks(&[Task::Check(check)])
        .await
        .unwrap();
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        !a.received().is_empty() && !b.received().is_empty()
    })
    .await;
    for receiver in [&a, &b] {
        let body = receiver.received()[0].json();
        assert_eq!(body["data"]["id"], "u_died", "{body}");
    }
    // The claim is answered: a repeat of the id fans nothing out again.
    let repeat = p
        .post_event(json!({"event": "User.Created", "id": "evt_died", "data": {"id": "u_died"}}))
        .await;
    assert_eq!(repeat.status, 202, "{}", repeat.body_json());
    assert_eq!(repeat.body_json()["deliveries"], 2);
    pump(&p.moto.queue, &p.sender, 2).await;
    assert_eq!((a.received().len(), b.received().len()), (1, 1));
}
