//! Two senders holding the same job at once (an SQS duplicate, or a visibility timeout that
//! expired mid-attempt): both may send, the receiver de-duplicates on `webhook-id`, and the
//! attempt, its follow-up job and its stats are recorded exactly once. The job is the queued
//! message itself, which carries its delivery until the first attempt writes the record.
//! Two sender processes sharing the queue race on every job its visibility timeout hands out
//! again mid-attempt.

use crate::faults::Worker;
use crate::support::{faulty_pipeline, pipeline, set_visibility_timeout, settings};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use webhooks::adapters::sqlite::SqliteQueue;
use webhooks::app::sender::{JobOutcome, Sender};
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{DeliveryId, DeliveryStatus};
use webhooks::domain::hook::HookId;
use webhooks::domain::task::Task;
use webhooks::net::client::DeliveryClient;
use webhooks::ports::{DeliveryLog, HealthStore, QueueMessage, Store};
use webhooks_tests::faulty_store::{FaultyStore, Gate};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::slow_receiver::SlowReceiver;

/// Once both senders have sent and wait to record, lets their writes through one after the
/// other (the emulator does not serialise conditional writes to one item as DynamoDB does).
async fn one_record_at_a_time(gate: &Gate, store: &dyn Store, hook: &HookId, id: &DeliveryId) {
    gate.held(2).await;
    gate.release_one();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored = store.get_delivery(hook, id).await.unwrap();
        if stored.is_some_and(|d| !d.attempts.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first record never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gate.release_one();
}

/// The one queued message (a first job, carrying its delivery) and its delivery's id; no
/// record exists yet.
async fn first_job(p: &crate::support::Pipeline, hook: &HookId) -> (QueueMessage, DeliveryId) {
    assert!(
        webhooks_tests::deliveries_between(p.moto.store.as_ref(), hook, 0, now_ms())
            .await
            .is_empty(),
        "the first attempt writes the record"
    );
    let received = p.moto.queue.receive(10, 1).await.unwrap();
    assert_eq!(received.len(), 1);
    let message = received[0].message.clone();
    let Ok(Task::First(first)) = serde_json::from_str::<Task>(&message.body) else {
        panic!("a first job: {}", message.body);
    };
    (message, first.job.delivery_id)
}

#[tokio::test]
async fn two_senders_with_one_failing_job_record_one_attempt_and_queue_one_retry() {
    let (p, _) = faulty_pipeline("twins", "1s,1s").await;
    let receiver = Receiver::start(&[500, 500]).await;
    let hook = p
        .create_hook(&receiver.url("/twins"), &["Role.Deleted"])
        .await;
    let hook_id = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    let r = p
        .post_event(json!({"event": "Role.Deleted", "data": {"id": "r_9"}}))
        .await;
    assert_eq!(r.status, 202);
    let (job, delivery) = first_job(&p, &hook_id).await;

    // Both senders hold the message before either records: hold their records until both
    // have sent.
    let faulty = FaultyStore::new(p.moto.store.clone());
    let gate = faulty.hold("record_first_attempt");
    let queue = SqliteQueue::in_memory(Duration::from_secs(30), 5);
    let s = settings("1s,1s");
    let sender = || {
        Sender::new(
            faulty.clone(),
            queue.clone(),
            DeliveryClient::from_settings(&s),
            s.retry_schedule.clone(),
        )
    };
    let (one, two) = (sender(), sender());
    let opener = one_record_at_a_time(&gate, p.moto.store.as_ref(), &hook_id, &delivery);
    let (a, b, ()) = tokio::join!(
        one.process_received(&job),
        two.process_received(&job),
        opener
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [JobOutcome::RetryScheduled, JobOutcome::Skipped]);

    let seen = receiver.received();
    assert_eq!(seen.len(), 2, "both senders sent");
    assert!(
        seen.iter()
            .all(|r| r.header("webhook-id") == delivery.to_string())
    );
    let stored = p
        .moto
        .store
        .get_delivery(&hook_id, &delivery)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.attempts.len(), 1, "the attempt is recorded once");
    assert_eq!(stored.status, DeliveryStatus::Pending);
    assert_eq!(queue.len(), 1, "one follow-up job, not two");
    let hour = now_ms().div_euclid(3_600_000);
    let hours = p
        .moto
        .store
        .hourly_health(&hook_id, hour - 1, hour + 1)
        .await
        .unwrap();
    let attempts: u64 = hours.iter().map(|(_, c)| c.attempts).sum();
    assert_eq!(attempts, 1, "counted once");
}

#[tokio::test]
async fn two_senders_with_one_succeeding_job_leave_one_success_on_record() {
    let receiver = Receiver::start(&[]).await;
    let (p, _) = faulty_pipeline("twinsok", "1s").await;
    let hook = p.create_hook(&receiver.url("/ok"), &["Role.Created"]).await;
    let hook_id = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    p.post_event(json!({"event": "Role.Created", "data": {}}))
        .await;
    let (job, delivery) = first_job(&p, &hook_id).await;
    let faulty = FaultyStore::new(p.moto.store.clone());
    let gate = faulty.hold("record_first_attempt");
    let queue = SqliteQueue::in_memory(Duration::from_secs(30), 5);
    let s = settings("1s");
    let senders: Vec<Arc<Sender>> = (0..2)
        .map(|_| {
            Sender::new(
                faulty.clone(),
                queue.clone(),
                DeliveryClient::from_settings(&s),
                s.retry_schedule.clone(),
            )
        })
        .collect();
    let opener = one_record_at_a_time(&gate, p.moto.store.as_ref(), &hook_id, &delivery);
    let (a, b, ()) = tokio::join!(
        senders[0].process_received(&job),
        senders[1].process_received(&job),
        opener
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [JobOutcome::Delivered, JobOutcome::Skipped]);
    assert_eq!(receiver.received().len(), 2);
    let stored = p
        .moto
        .store
        .get_delivery(&hook_id, &delivery)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DeliveryStatus::Success);
    assert_eq!(stored.attempts.len(), 1);
    assert!(queue.is_empty());
    // A third copy arriving later (a second receive) sends nothing.
    let again = QueueMessage {
        receive_count: 2,
        ..job.clone()
    };
    assert_eq!(
        senders[0].process_received(&again).await.unwrap(),
        JobOutcome::Skipped
    );
    assert_eq!(receiver.received().len(), 2);
}

/// Both processes may send a job they both hold (each reads the record before the other
/// writes it); its success is recorded and counted once.
#[tokio::test]
async fn two_sender_processes_racing_on_one_hooks_jobs_record_each_success_once() {
    let p = pipeline("twoprocs", "1s").await;
    // Each attempt outlasts the visibility timeout: the other process receives the job while
    // the first one is still sending it.
    set_visibility_timeout(&p.moto, 1).await;
    let receiver = SlowReceiver::start(Duration::from_millis(1_300)).await;
    let hook = p
        .create_hook(&receiver.url("/two"), &["User.Created"])
        .await;
    let hook_id = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    let workers = [
        Worker::start(&p.moto.provisioned),
        Worker::start(&p.moto.provisioned),
    ];
    // Both processes polling before the jobs exist: on a loaded machine one may take seconds
    // to start, and would then find every job done by the other, with no race to observe.
    tokio::time::sleep(Duration::from_secs(3)).await;
    const EVENTS: usize = 8;
    for i in 0..EVENTS {
        let r = p
            .post_event(json!({"event": "User.Created", "data": {"id": format!("u_{i}")}}))
            .await;
        assert_eq!(r.status, 202);
    }
    let deliveries = webhooks_tests::poll(
        Duration::from_secs(30),
        || webhooks_tests::deliveries_between(p.moto.store.as_ref(), &hook_id, 0, now_ms()),
        |all| all.len() == EVENTS && all.iter().all(|d| d.status == DeliveryStatus::Success),
    )
    .await;
    // Any copy still handed out is skipped, not sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(workers);

    assert_eq!(deliveries.len(), EVENTS);
    for d in &deliveries {
        assert_eq!(d.status, DeliveryStatus::Success, "{}", d.id);
        assert_eq!(
            d.attempts.len(),
            1,
            "{}: the success is recorded once",
            d.id
        );
    }
    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    for a in receiver.arrivals() {
        *per_delivery.entry(a.webhook_id).or_default() += 1;
    }
    assert_eq!(per_delivery.len(), EVENTS, "every delivery arrived");
    assert!(
        per_delivery.values().all(|n| *n <= 2),
        "each process sent a delivery once at most: {per_delivery:?}"
    );
    assert!(
        per_delivery.values().any(|n| *n >= 2),
        "the two processes raced on a job (both sent it): {per_delivery:?}"
    );
    let hour = now_ms().div_euclid(3_600_000);
    let hours = p
        .moto
        .store
        .hourly_health(&hook_id, hour - 1, hour + 1)
        .await
        .unwrap();
    let counted: u64 = hours.iter().map(|(_, c)| c.attempts).sum();
    assert_eq!(counted, EVENTS as u64, "each recorded attempt counted once");
}
