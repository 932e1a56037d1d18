//! A panic while processing one job must not lose it (§5.4): the sender reports the job as
//! failed so the queue keeps it and hands it out again, while its batch-mates are delivered.

use crate::support::{INGEST, request, send, settings, tokens};
use http::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use webhooks::adapters::sqlite::SqliteQueue;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::api::bodies::NewHook;
use webhooks::api::{Api, router};
use webhooks::app::sender::Sender;
use webhooks::domain::delivery::{DeliveryStatus, Job};
use webhooks::domain::hook::UrlPolicy;
use webhooks::net::client::DeliveryClient;
use webhooks::ports::{DeliveryLog, HookStore};
use webhooks_tests::faulty_store::FaultyStore;
use webhooks_tests::receiver::Receiver;

const VISIBILITY: Duration = Duration::from_millis(400);

#[tokio::test]
async fn a_panicking_job_is_reported_failed_and_received_again() {
    let receiver = Receiver::start(&[]).await;
    let inner = SqliteStore::in_memory();
    let store = FaultyStore::new(inner.clone());
    let queue = SqliteQueue::in_memory(VISIBILITY, 5);
    let settings = settings("1s");
    let hook = NewHook::parse(
        &json!({"name": "panics", "events": ["User.Created"],
                "config": {"url": receiver.url("/panics")}}),
        UrlPolicy { allow_http: true },
    )
    .unwrap()
    .into_hook(webhooks::domain::clock::now_ms());
    store.create_hook(&hook).await.unwrap();
    let client = DeliveryClient::from_settings(&settings);
    let api = Api::new(store.clone(), queue.clone(), client, tokens(), &settings);
    let ingest = router(api);
    for user in ["u_1", "u_2"] {
        let event = json!({"event": "User.Created", "data": {"id": user}});
        let req = request(Method::POST, "/api/events", INGEST, Some(event));
        let r = send(&ingest, req).await;
        assert_eq!(r.status, 202, "{}", r.body_json());
    }
    let sender = Sender::new(
        store.clone(),
        queue.clone(),
        DeliveryClient::from_settings(&settings),
        settings.retry_schedule.clone(),
    );

    let received_at = Instant::now();
    let batch = queue.receive(10).await;
    assert_eq!(batch.len(), 2, "both jobs are queued");
    let jobs: Vec<Job> = batch
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    store.poison(Some(jobs[0].delivery_id.clone()));

    let failed = sender.process_batch(&batch).await;
    assert_eq!(
        failed,
        vec![batch[0].id.clone()],
        "only the panicking job is reported"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1, "the other job was delivered");
    assert_eq!(got[0].header("webhook-id"), jobs[1].delivery_id.to_string());
    let delivered = inner
        .get_delivery(&hook.id, &jobs[1].delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered.status, DeliveryStatus::Success);
    let stuck = inner
        .get_delivery(&hook.id, &jobs[0].delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stuck.status, DeliveryStatus::Pending);
    assert_eq!(stuck.attempt_count(), 0);

    queue
        .acknowledge(
            batch
                .iter()
                .map(|m| m.id.as_str())
                .filter(|id| !failed.iter().any(|f| f == id)),
        )
        .unwrap();
    assert_eq!(queue.len(), 1, "the failed job stays on the queue");
    let again = tokio::time::timeout(Duration::from_secs(5), queue.receive(10))
        .await
        .expect("the failed job comes back after its visibility timeout");
    // The queue keeps time in whole milliseconds.
    assert!(received_at.elapsed() >= VISIBILITY - Duration::from_millis(2));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, batch[0].id);
    assert_eq!(again[0].body, batch[0].body);

    store.poison(None);
    assert!(sender.process_batch(&again).await.is_empty());
    queue
        .acknowledge(again.iter().map(|m| m.id.as_str()))
        .unwrap();
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].header("webhook-id"), jobs[0].delivery_id.to_string());
    assert!(queue.is_empty());
}
