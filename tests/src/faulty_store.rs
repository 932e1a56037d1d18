//! A store that delegates to a real one but can fail, hold or time-shift chosen calls, so
//! tests can stop the pipeline at the exact write where a crash or outage would hit it.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};
use webhooks::domain::catalog::EventName;
use webhooks::domain::delivery::{Delivery, DeliveryId};
use webhooks::domain::event::EventId;
use webhooks::domain::health::{BatchHealth, HealthCounts, HookHealth};
use webhooks::domain::hook::{Hook, HookId, HookPosition};
use webhooks::domain::recovery::{Recovery, RecoveryId};
use webhooks::ports::{
    AttemptRecord, DeliveryFilter, EventClaim, HourlyCount, Page, RecordOutcome, Store, StoreError,
};

/// Calls held until the test lets them through, one at a time or all at once.
pub struct Gate {
    permits: Semaphore,
    entered: Notify,
    waiting: Mutex<usize>,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            permits: Semaphore::new(0),
            entered: Notify::new(),
            waiting: Mutex::new(0),
        })
    }

    /// Waits until a call is held at the gate.
    pub async fn entered(&self) {
        self.held(1).await
    }

    /// Waits until `n` calls are held at the gate at once.
    pub async fn held(&self, n: usize) {
        loop {
            let notified = self.entered.notified();
            if *self.waiting.lock().unwrap() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Lets one held (or the next) call through.
    pub fn release_one(&self) {
        self.permits.add_permits(1);
    }

    /// Lets every held call, and every later one, through.
    pub fn open(&self) {
        self.permits.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    async fn pass(&self) {
        *self.waiting.lock().unwrap() += 1;
        self.entered.notify_waiters();
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
        *self.waiting.lock().unwrap() -= 1;
    }
}

#[derive(Default)]
struct Faults {
    /// Calls of a method still to fail.
    failures: HashMap<&'static str, u32>,
    gates: HashMap<&'static str, Arc<Gate>>,
    calls: HashMap<&'static str, usize>,
    /// Reading this delivery panics.
    poisoned: Option<DeliveryId>,
}

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Mutex<Faults>,
    claim_clock_offset_ms: AtomicI64,
    /// `reserve_slot` calls go one at a time: moto applies concurrent conditional updates of
    /// one item without DynamoDB's per-item atomicity.
    slots: tokio::sync::Mutex<()>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            faults: Mutex::new(Faults::default()),
            claim_clock_offset_ms: AtomicI64::new(0),
            slots: tokio::sync::Mutex::new(()),
        })
    }

    /// The next `times` calls of `method` fail as if storage were unavailable.
    pub fn fail_next(&self, method: &'static str, times: u32) {
        self.faults.lock().unwrap().failures.insert(method, times);
    }

    /// Holds every call of `method` until the gate opens.
    pub fn hold(&self, method: &'static str) -> Arc<Gate> {
        let gate = Gate::new();
        self.faults
            .lock()
            .unwrap()
            .gates
            .insert(method, gate.clone());
        gate
    }

    /// Reading delivery `id` panics (`None` heals it), as a bug in processing one job would.
    pub fn poison(&self, id: Option<DeliveryId>) {
        self.faults.lock().unwrap().poisoned = id;
    }

    /// How often `method` was called.
    pub fn calls(&self, method: &'static str) -> usize {
        self.faults
            .lock()
            .unwrap()
            .calls
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Event claims see a clock this far ahead, as a request arriving that much later would.
    pub fn advance_claim_clock(&self, ms: i64) {
        self.claim_clock_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    async fn enter(&self, method: &'static str) -> Result<(), StoreError> {
        let gate = {
            let mut faults = self.faults.lock().unwrap();
            *faults.calls.entry(method).or_default() += 1;
            if let Some(left) = faults.failures.get_mut(method)
                && *left > 0
            {
                *left -= 1;
                return Err(StoreError::Unavailable(format!(
                    "injected failure of {method}"
                )));
            }
            faults.gates.get(method).cloned()
        };
        if let Some(gate) = gate {
            gate.pass().await;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        self.enter("create_hook").await?;
        self.inner.create_hook(hook).await
    }
    async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError> {
        self.enter("get_hook").await?;
        self.inner.get_hook(id).await
    }
    async fn page_hooks(
        &self,
        after: Option<&HookPosition>,
        limit: usize,
    ) -> Result<Page<Hook, HookPosition>, StoreError> {
        self.enter("page_hooks").await?;
        self.inner.page_hooks(after, limit).await
    }
    async fn count_hooks(&self) -> Result<u64, StoreError> {
        self.enter("count_hooks").await?;
        self.inner.count_hooks().await
    }
    async fn update_hook(&self, previous: &Hook, next: &Hook) -> Result<(), StoreError> {
        self.enter("update_hook").await?;
        self.inner.update_hook(previous, next).await
    }
    async fn delete_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        self.enter("delete_hook").await?;
        self.inner.delete_hook(hook).await
    }
    async fn subscribers(
        &self,
        event: EventName,
    ) -> Result<Vec<webhooks::ports::Subscriber>, StoreError> {
        self.enter("subscribers").await?;
        self.inner.subscribers(event).await
    }
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.enter("insert_deliveries").await?;
        self.inner.insert_deliveries(deliveries).await
    }
    async fn insert_missing_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<(Delivery, bool)>, StoreError> {
        self.enter("insert_missing_deliveries").await?;
        self.inner.insert_missing_deliveries(deliveries).await
    }
    async fn delete_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.enter("delete_deliveries").await?;
        self.inner.delete_deliveries(deliveries).await
    }
    async fn get_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.enter("get_delivery").await?;
        let poisoned = self.faults.lock().unwrap().poisoned.as_ref() == Some(id);
        if poisoned {
            panic!("injected panic while reading delivery {id}");
        }
        self.inner.get_delivery(hook, id).await
    }
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
        self.enter("record_attempt").await?;
        self.inner.record_attempt(record).await
    }
    async fn page_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        after: Option<&DeliveryId>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        self.enter("page_deliveries").await?;
        self.inner.page_deliveries(hook, filter, after, limit).await
    }
    async fn reopen_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
        now_ms: i64,
        expected_attempts: Option<u32>,
    ) -> Result<Option<Delivery>, StoreError> {
        self.enter("reopen_delivery").await?;
        self.inner
            .reopen_delivery(hook, id, now_ms, expected_attempts)
            .await
    }
    async fn create_recovery(&self, recovery: &Recovery) -> Result<(), StoreError> {
        self.enter("create_recovery").await?;
        self.inner.create_recovery(recovery).await
    }
    async fn get_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError> {
        self.enter("get_recovery").await?;
        self.inner.get_recovery(hook, id).await
    }
    async fn advance_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
        from: Option<&DeliveryId>,
        to: Option<&DeliveryId>,
        resent: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.enter("advance_recovery").await?;
        self.inner
            .advance_recovery(hook, id, from, to, resent, now_ms)
            .await
    }
    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError> {
        self.enter("claim_event").await?;
        let now_ms = now_ms + self.claim_clock_offset_ms.load(Ordering::SeqCst);
        self.inner
            .claim_event(id, now_ms, window_ms, stale_ms)
            .await
    }
    async fn complete_event(
        &self,
        id: &EventId,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.enter("complete_event").await?;
        self.inner.complete_event(id, answer).await
    }
    async fn release_event(&self, id: &EventId) -> Result<(), StoreError> {
        self.enter("release_event").await?;
        self.inner.release_event(id).await
    }
    async fn count_attempts(&self, counts: &[HourlyCount]) -> Result<(), StoreError> {
        self.enter("count_attempts").await?;
        self.inner.count_attempts(counts).await
    }
    async fn reserve_slot(
        &self,
        hook: &HookId,
        interval_ms: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.enter("reserve_slot").await?;
        let _one_at_a_time = self.slots.lock().await;
        self.inner.reserve_slot(hook, interval_ms, now_ms).await
    }
    async fn record_health(
        &self,
        hook: &HookId,
        batch: &BatchHealth,
    ) -> Result<(HookHealth, HookHealth), StoreError> {
        self.enter("record_health").await?;
        self.inner.record_health(hook, batch).await
    }
    async fn hook_health(&self, hook: &HookId) -> Result<HookHealth, StoreError> {
        self.enter("hook_health").await?;
        self.inner.hook_health(hook).await
    }
    async fn claim_notice(
        &self,
        hook: &HookId,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<bool, StoreError> {
        self.enter("claim_notice").await?;
        self.inner.claim_notice(hook, now_ms, window_ms).await
    }
    async fn reset_health(&self, hook: &HookId) -> Result<(), StoreError> {
        self.enter("reset_health").await?;
        self.inner.reset_health(hook).await
    }
    async fn hourly_health(
        &self,
        hook: &HookId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, HealthCounts)>, StoreError> {
        self.enter("hourly_health").await?;
        self.inner.hourly_health(hook, from_hour, to_hour).await
    }
}
