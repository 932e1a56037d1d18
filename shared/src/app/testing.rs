//! Test doubles for the use cases' unit tests: the embedded store and queue, watched, and a
//! receiver on 127.0.0.1. Nothing here connects anywhere but the loopback address.

use crate::adapters::sqlite::{SqliteQueue, SqliteStore};
use crate::domain::delivery::{Delivery, DeliveryId, Job};
use crate::domain::health::{BatchHealth, HookHealth};
use crate::domain::hook::{Hook, HookId};
use crate::domain::task::Task;
use crate::forward_port;
use crate::ports::forward::Forwarding;
use crate::ports::{
    AttemptRecord, HourlyCount, JobQueue, QueueError, RecordOutcome, Store, StoreError,
};
use async_trait::async_trait;
use axum::extract::Path;
use http::{HeaderMap, StatusCode};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The embedded store, counting the writes and reads a batch should make once per hook.
pub struct Spy {
    inner: Arc<SqliteStore>,
    /// The hourly counts of each `count_attempts` call.
    pub counted: Mutex<Vec<Vec<HourlyCount>>>,
    /// The hook of each `record_health` call.
    pub health_writes: Mutex<Vec<HookId>>,
    /// The hook of each `get_hook` call.
    pub hook_reads: Mutex<Vec<HookId>>,
    /// The id of each `get_delivery` call.
    pub delivery_reads: Mutex<Vec<DeliveryId>>,
    /// Makes every attempt's record fail, as when the database is unreachable.
    pub refuse_records: std::sync::atomic::AtomicBool,
    /// The name of each forwarded call, in order.
    pub calls: Mutex<Vec<&'static str>>,
}

impl Spy {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: SqliteStore::in_memory(),
            counted: Mutex::default(),
            health_writes: Mutex::default(),
            hook_reads: Mutex::default(),
            delivery_reads: Mutex::default(),
            refuse_records: Default::default(),
            calls: Mutex::default(),
        })
    }

    /// Forgets the calls so far.
    pub fn reset(&self) {
        self.counted.lock().unwrap().clear();
        self.health_writes.lock().unwrap().clear();
        self.hook_reads.lock().unwrap().clear();
        self.delivery_reads.lock().unwrap().clear();
        self.calls.lock().unwrap().clear();
    }

    fn refused(&self) -> Result<(), StoreError> {
        if self
            .refuse_records
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Unavailable("refused by the test".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Forwarding for Spy {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }

    async fn before(&self, method: &'static str) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(method);
        Ok(())
    }
}

forward_port! {
    impl HookStore for Spy {
        forward create_hook, page_hooks, count_hooks, update_hook, delete_hook, subscribers;

        async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError> {
            self.hook_reads.lock().unwrap().push(id.clone());
            self.inner.get_hook(id).await
        }
    }
}

forward_port! {
    impl DeliveryLog for Spy {
        forward insert_deliveries, insert_missing_deliveries, delete_deliveries, put_event_fields,
            event_fields, page_deliveries, count_deliveries, reopen_delivery;

        async fn get_delivery(
            &self,
            hook: &HookId,
            id: &DeliveryId,
        ) -> Result<Option<Delivery>, StoreError> {
            self.delivery_reads.lock().unwrap().push(id.clone());
            self.inner.get_delivery(hook, id).await
        }

        async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
            self.refused()?;
            self.inner.record_attempt(record).await
        }

        async fn record_first_attempt(
            &self,
            pending: &Delivery,
            record: &AttemptRecord,
        ) -> Result<RecordOutcome, StoreError> {
            self.refused()?;
            self.inner.record_first_attempt(pending, record).await
        }
    }
}

forward_port! { impl EventClaims for Spy { forward all; } }

forward_port! { impl RecoveryStore for Spy { forward all; } }

forward_port! { impl CheckStore for Spy { forward all; } }

forward_port! {
    impl HealthStore for Spy {
        forward reserve_slot, hook_health, claim_notice, reset_health, hourly_health;

        async fn count_attempts(&self, counts: &[HourlyCount]) -> Result<(), StoreError> {
            self.counted.lock().unwrap().push(counts.to_vec());
            self.inner.count_attempts(counts).await
        }

        async fn record_health(
            &self,
            hook: &HookId,
            batch: &BatchHealth,
        ) -> Result<(HookHealth, HookHealth), StoreError> {
            self.health_writes.lock().unwrap().push(hook.clone());
            self.inner.record_health(hook, batch).await
        }
    }
}

/// The embedded queue, remembering every task queued.
pub struct Queued {
    inner: Arc<SqliteQueue>,
    pub tasks: Mutex<Vec<Task>>,
}

impl Queued {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: SqliteQueue::in_memory(Duration::from_secs(30), 5),
            tasks: Mutex::default(),
        })
    }

    /// The delivery jobs queued, in order.
    pub fn jobs(&self) -> Vec<Job> {
        self.tasks
            .lock()
            .unwrap()
            .iter()
            .filter_map(|t| match t {
                Task::Delivery(job) => Some(job.clone()),
                Task::First(first) => Some(first.job.clone()),
                Task::Recovery(_) | Task::Health(_) | Task::Check(_) => None,
            })
            .collect()
    }
}

#[async_trait]
impl JobQueue for Queued {
    async fn enqueue_tasks(&self, tasks: &[Task]) -> Result<(), QueueError> {
        self.tasks.lock().unwrap().extend(tasks.iter().cloned());
        self.inner.enqueue_tasks(tasks).await
    }
}

/// A receiver on 127.0.0.1 answering `POST /{status}` with that status; it remembers each
/// request's status and `webhook-id`.
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<(u16, String)>>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let answer = move |Path(status): Path<u16>, headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_string();
                seen.lock().unwrap().push((status, id));
                StatusCode::from_u16(status).unwrap()
            }
        };
        let app = axum::Router::new().route("/{status}", axum::routing::post(answer));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, got }
    }

    /// The `webhook-id`s received.
    pub fn ids(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, id)| id.clone())
            .collect()
    }
}
