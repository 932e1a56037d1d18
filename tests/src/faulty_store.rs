//! A store that delegates to a real one but can fail, hold or time-shift chosen calls, so
//! tests can stop the pipeline at the exact write where a crash or outage would hit it. Every
//! call of every port goes through [`FaultyStore::fail_next`], [`FaultyStore::hold`] and the
//! call count; the few calls with faults of their own are written out, the rest forwarded.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};
use webhooks::domain::delivery::{Delivery, DeliveryId};
use webhooks::domain::event::EventId;
use webhooks::domain::hook::HookId;
use webhooks::forward_port;
use webhooks::ports::forward::Forwarding;
use webhooks::ports::{EventClaim, Store, StoreError};

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
impl Forwarding for FaultyStore {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }

    /// Every call is counted, then fails if a failure of it is pending, or waits at its gate.
    async fn before(&self, method: &'static str) -> Result<(), StoreError> {
        self.enter(method).await
    }
}

forward_port! { impl HookStore for FaultyStore { forward all; } }

forward_port! { impl RecoveryStore for FaultyStore { forward all; } }

forward_port! { impl CheckStore for FaultyStore { forward all; } }

forward_port! {
    impl DeliveryLog for FaultyStore {
        forward insert_deliveries, insert_missing_deliveries, delete_deliveries, record_attempt,
            record_first_attempt, put_event_fields, event_fields, page_deliveries,
            count_deliveries, reopen_delivery;

        /// Panics on the poisoned delivery.
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
    }
}

forward_port! {
    impl EventClaims for FaultyStore {
        forward complete_event, answered, release_event;

        /// Sees the clock moved by [`FaultyStore::advance_claim_clock`].
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
    }
}

forward_port! {
    impl HealthStore for FaultyStore {
        forward count_attempts, record_health, hook_health, claim_notice, reset_health,
            hourly_health;

        /// One at a time (see [`FaultyStore`]'s `slots`).
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
    }
}
