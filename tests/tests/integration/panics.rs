//! A panic while processing one job must not lose it (§5.4): the sender reports the job as
//! failed so the queue keeps it and hands it out again, while its batch-mates are delivered.

use crate::support::{INGEST, request, send, settings, tokens};
use async_trait::async_trait;
use http::Method;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webhooks::adapters::memory_queue::MemoryQueue;
use webhooks::adapters::memory_store::MemoryStore;
use webhooks::api::bodies::NewHook;
use webhooks::api::{Api, router};
use webhooks::catalog::EventName;
use webhooks::delivery::{Delivery, DeliveryId, DeliveryStatus, Job};
use webhooks::event::EventId;
use webhooks::hook::{Hook, HookId, UrlPolicy};
use webhooks::net::client::DeliveryClient;
use webhooks::ports::{
    AttemptRecord, EventClaim, ExecutionStats, RecordOutcome, Store, StoreError,
};
use webhooks::sender::Sender;
use webhooks_tests::receiver::Receiver;

const VISIBILITY: Duration = Duration::from_millis(400);

/// The embedded store, except that reading one chosen delivery panics.
struct PanickyStore {
    inner: Arc<MemoryStore>,
    poisoned: Mutex<Option<DeliveryId>>,
}

#[async_trait]
impl Store for PanickyStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        self.inner.create_hook(hook).await
    }
    async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError> {
        self.inner.get_hook(id).await
    }
    async fn list_hooks(&self) -> Result<Vec<Hook>, StoreError> {
        self.inner.list_hooks().await
    }
    async fn update_hook(&self, previous: &Hook, next: &Hook) -> Result<(), StoreError> {
        self.inner.update_hook(previous, next).await
    }
    async fn delete_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        self.inner.delete_hook(hook).await
    }
    async fn subscribers(&self, event: EventName) -> Result<Vec<HookId>, StoreError> {
        self.inner.subscribers(event).await
    }
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.inner.insert_deliveries(deliveries).await
    }
    async fn insert_missing_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<(Delivery, bool)>, StoreError> {
        self.inner.insert_missing_deliveries(deliveries).await
    }
    async fn delete_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.inner.delete_deliveries(deliveries).await
    }
    async fn get_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        if self.poisoned.lock().unwrap().as_ref() == Some(id) {
            panic!("injected panic while reading delivery {id}");
        }
        self.inner.get_delivery(hook, id).await
    }
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
        self.inner.record_attempt(record).await
    }
    async fn list_deliveries(
        &self,
        hook: &HookId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_deliveries(hook, from_ms, to_ms).await
    }
    async fn reopen_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
        now_ms: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        self.inner.reopen_delivery(hook, id, now_ms).await
    }
    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError> {
        self.inner
            .claim_event(id, now_ms, window_ms, stale_ms)
            .await
    }
    async fn complete_event(
        &self,
        id: &EventId,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.inner.complete_event(id, answer).await
    }
    async fn release_event(&self, id: &EventId) -> Result<(), StoreError> {
        self.inner.release_event(id).await
    }
    async fn count_attempt(
        &self,
        hook: &HookId,
        at_ms: i64,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        self.inner.count_attempt(hook, at_ms, succeeded).await
    }
    async fn execution_stats(
        &self,
        hook: &HookId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<ExecutionStats, StoreError> {
        self.inner.execution_stats(hook, from_hour, to_hour).await
    }
}

#[tokio::test]
async fn a_panicking_job_is_reported_failed_and_received_again() {
    let receiver = Receiver::start(&[]).await;
    let inner = MemoryStore::new();
    let store = Arc::new(PanickyStore {
        inner: inner.clone(),
        poisoned: Mutex::new(None),
    });
    let queue = MemoryQueue::new(VISIBILITY, 5);
    let settings = settings("1s");
    let hook = NewHook::parse(
        &json!({"name": "panics", "events": ["User.Created"],
                "config": {"url": receiver.url("/panics")}}),
        UrlPolicy { allow_http: true },
    )
    .unwrap()
    .into_hook(webhooks::clock::now_ms());
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

    let batch = queue.receive(10).await;
    assert_eq!(batch.len(), 2, "both jobs are queued");
    let jobs: Vec<Job> = batch
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    *store.poisoned.lock().unwrap() = Some(jobs[0].delivery_id.clone());
    let received_at = Instant::now();

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

    queue.acknowledge(
        batch
            .iter()
            .map(|m| m.id.as_str())
            .filter(|id| !failed.iter().any(|f| f == id)),
    );
    assert_eq!(queue.len(), 1, "the failed job stays on the queue");
    let again = tokio::time::timeout(Duration::from_secs(5), queue.receive(10))
        .await
        .expect("the failed job comes back after its visibility timeout");
    assert!(received_at.elapsed() >= VISIBILITY);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, batch[0].id);
    assert_eq!(again[0].body, batch[0].body);

    *store.poisoned.lock().unwrap() = None;
    assert!(sender.process_batch(&again).await.is_empty());
    queue.acknowledge(again.iter().map(|m| m.id.as_str()));
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].header("webhook-id"), jobs[0].delivery_id.to_string());
    assert!(queue.is_empty());
}
