//! Recovery at volume: `recover` answers at once and its steps run from the queue, page by
//! page; every failed delivery is re-sent exactly once, on the embedded store and on moto; a
//! single re-send the queue refuses leaves its delivery as it was.

use crate::log_paging::deliveries;
use crate::support::{ADMIN, pipeline, request, send, settings, tokens};
use axum::Router;
use http::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use webhooks::adapters::sqlite::SqliteQueue;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::api::{Api, router};
use webhooks::app::consumer::consume;
use webhooks::app::sender::Sender;
use webhooks::domain::delivery::{Delivery, DeliveryStatus};
use webhooks::domain::hook::HookId;
use webhooks::domain::task::Task;
use webhooks::net::client::DeliveryClient;
use webhooks::ports::{DeliveryLog, JobQueue, QueueError};
use webhooks_tests::pump;
use webhooks_tests::receiver::Receiver;

/// Deliveries of `hook` that failed, with real bodies, ready to be re-sent.
fn failed(hook: &HookId, n: i64) -> Vec<Delivery> {
    deliveries(hook, n, DeliveryStatus::Error)
}

/// How often each `webhook-id` arrived.
fn arrivals(receiver: &Receiver) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in receiver.received() {
        *seen.entry(r.header("webhook-id").to_string()).or_default() += 1;
    }
    seen
}

async fn start_recovery(router: &Router, hook: &HookId) -> String {
    let req = request(
        Method::POST,
        &format!("/api/hooks/{hook}/recover"),
        ADMIN,
        Some(json!({"since": 0})),
    );
    let r = send(router, req).await;
    assert_eq!(r.status, 202, "{}", r.body_json());
    assert_eq!(r.body_json()["status"], "running");
    r.body_json()["id"].as_str().unwrap().to_string()
}

async fn progress(router: &Router, hook: &HookId, recovery: &str) -> Value {
    let path = format!("/api/hooks/{hook}/recoveries/{recovery}");
    let r = send(router, request(Method::GET, &path, ADMIN, None)).await;
    assert_eq!(r.status, 200, "{}", r.body_json());
    r.body_json()
}

#[tokio::test]
async fn twenty_thousand_failed_deliveries_are_resent_once_on_the_embedded_store() {
    const N: usize = 20_000;
    let receiver = Receiver::start(&[]).await;
    let store = SqliteStore::in_memory();
    let queue = SqliteQueue::in_memory(Duration::from_secs(60), 5);
    let settings = settings("1s");
    let api = Api::new(
        store.clone(),
        queue.clone(),
        DeliveryClient::from_settings(&settings),
        tokens(),
        &settings,
    );
    let router = router(api);
    let req = request(
        Method::POST,
        "/api/hooks",
        ADMIN,
        Some(
            json!({"name": "outage", "events": ["PostSignIn"], "config": {"url": receiver.url("/in")}}),
        ),
    );
    let hook = send(&router, req).await.body_json();
    let hook = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    store
        .insert_deliveries(&failed(&hook, N as i64))
        .await
        .unwrap();
    store
        .insert_deliveries(&deliveries(&hook, 50, DeliveryStatus::Success))
        .await
        .unwrap();

    let (stop, running) = tokio::sync::watch::channel(false);
    let sender = Sender::new(
        store.clone(),
        queue.clone(),
        DeliveryClient::from_settings(&settings),
        settings.retry_schedule.clone(),
    );
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(consume(queue.clone(), sender.clone(), running.clone())))
        .collect();
    let started = std::time::Instant::now();
    let recovery = start_recovery(&router, &hook).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "recover answers at once"
    );
    receiver.wait_for(N, Duration::from_secs(240)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let p = progress(&router, &hook, &recovery).await;
        if p["status"] == "done" {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "{p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    for w in workers {
        let _ = w.await;
    }
    assert_eq!(done["resent"], N);
    let seen = arrivals(&receiver);
    assert_eq!(seen.len(), N, "every failed delivery was re-sent");
    assert!(seen.values().all(|n| *n == 1), "none twice");
    assert_eq!(receiver.received().len(), N);
}

#[tokio::test]
async fn two_thousand_failed_deliveries_are_resent_once_on_moto() {
    const N: usize = 2_000;
    let p = pipeline("recover2k", "1s").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p.create_hook(&receiver.url("/in"), &["PostSignIn"]).await;
    let hook = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    p.moto
        .store
        .insert_deliveries(&failed(&hook, N as i64))
        .await
        .unwrap();
    let recovery = start_recovery(&p.router, &hook).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while receiver.count() < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {N} re-sent",
            receiver.count()
        );
        // One receiver at a time, as one event source poller: the emulator's queue may hand
        // one message to two concurrent receives, which SQS does only rarely.
        pump(&p.moto.queue, &p.sender, 1).await;
    }
    pump(&p.moto.queue, &p.sender, 2).await;
    let done = progress(&p.router, &hook, &recovery).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["resent"], N);
    let seen = arrivals(&receiver);
    assert_eq!(seen.len(), N);
    assert!(seen.values().all(|n| *n == 1), "none twice");
}

/// A queue that refuses everything, as SQS during an outage.
struct RefusingQueue;

#[async_trait::async_trait]
impl JobQueue for RefusingQueue {
    async fn enqueue_tasks(&self, tasks: &[Task]) -> Result<(), QueueError> {
        Err(QueueError::NotAccepted {
            failed: tasks.len(),
            total: tasks.len(),
            reason: "the queue is down".into(),
        })
    }
}

#[tokio::test]
async fn a_resend_the_queue_refuses_leaves_the_delivery_as_it_was() {
    let store = SqliteStore::in_memory();
    let settings = settings("1s");
    let router = router(Api::new(
        store.clone(),
        Arc::new(RefusingQueue),
        DeliveryClient::from_settings(&settings),
        tokens(),
        &settings,
    ));
    let req = request(
        Method::POST,
        "/api/hooks",
        ADMIN,
        Some(
            json!({"name": "down", "events": ["PostSignIn"], "config": {"url": "http://127.0.0.1:9/x"}}),
        ),
    );
    let hook = send(&router, req).await.body_json();
    let hook = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    let mut failed = failed(&hook, 1).remove(0);
    failed.reason = Some("all attempts failed".into());
    store
        .insert_deliveries(std::slice::from_ref(&failed))
        .await
        .unwrap();

    let path = format!("/api/hooks/{hook}/deliveries/{}/retry", failed.id);
    let r = send(&router, request(Method::POST, &path, ADMIN, None)).await;
    assert_eq!(r.status, 503, "{}", r.body_json());
    let stored = store
        .get_delivery(&hook, &failed.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DeliveryStatus::Error, "not left pending");
    assert_eq!(stored.reason.as_deref(), Some("all attempts failed"));
    let again = send(&router, request(Method::POST, &path, ADMIN, None)).await;
    assert_eq!(again.status, 503, "the operator may try again");
}
