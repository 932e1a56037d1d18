//! The sender: drives a batch of queue messages through the use cases, concurrently — each
//! delivery job through [`Deliveries::deliver`], each recovery step through
//! [`recovery::step`] — with each hook read once per batch, then adds the batch's attempts to
//! the hooks' counters and health once per hook ([`Health::flush`]). A message fails (the
//! queue hands it out again) only when it is not a task or our own infrastructure failed; an
//! endpoint's failure is an outcome the use case recorded, never an error.

use super::deliver::Deliveries;
use super::health::{Health, Tally};
use super::ingest::Ingest;
use super::recovery::{self, StepOutcome};
use super::{HookReader, PortError};
use crate::config::Settings;
use crate::domain::delivery::Job;
use crate::domain::health::HealthPolicy;
use crate::domain::hook::{Hook, HookId};
use crate::domain::recovery::RecoveryStep;
use crate::domain::retry::RetrySchedule;
use crate::domain::task::Task;
use crate::net::client::DeliveryClient;
use crate::operational::Notices;
use crate::ports::{JobQueue, QueueError, QueueMessage, Store, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

pub use super::deliver::JobOutcome;

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("the message is not a delivery job")]
    Malformed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("processing the job panicked")]
    Panicked,
}

impl From<PortError> for SenderError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Store(e) => SenderError::Store(e),
            PortError::Queue(e) => SenderError::Queue(e),
        }
    }
}

pub struct Sender {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    deliveries: Deliveries,
    health: Arc<Health>,
    /// Finishes the fan-outs whose requests died.
    fan_outs: Ingest,
}

impl Sender {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        schedule: RetrySchedule,
    ) -> Arc<Self> {
        Self::with_policy(store, queue, client, schedule, HealthPolicy::default())
    }

    /// A sender that disables failing hooks by `health`.
    pub fn with_policy(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        schedule: RetrySchedule,
        health: HealthPolicy,
    ) -> Arc<Self> {
        Self::build(store, queue, client, schedule, health, Notices::default())
    }

    /// A sender as a deployment runs it: its settings' schedule and health policy, and
    /// operational notices sent where `notices` says.
    pub fn configured(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        settings: &Settings,
        notices: Notices,
    ) -> Arc<Self> {
        let notices = Notices {
            retention: settings.retention,
            ..notices
        };
        Self::build(
            store,
            queue,
            client,
            settings.retry_schedule.clone(),
            settings.health,
            notices,
        )
    }

    fn build(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        schedule: RetrySchedule,
        policy: HealthPolicy,
        notices: Notices,
    ) -> Arc<Self> {
        // A sender built without settings keeps what it re-queues 14 days (AWS's default).
        let retention = match notices.retention {
            r if r.is_zero() => std::time::Duration::from_secs(14 * 86_400),
            r => r,
        };
        let health = Arc::new(Health::new(store.clone(), queue.clone(), policy, notices));
        let fan_outs = Ingest::new(
            store.clone(),
            queue.clone(),
            client.clone(),
            retention,
            true,
        );
        let deliveries = Deliveries::new(
            store.clone(),
            queue.clone(),
            client,
            schedule,
            health.clone(),
        );
        Arc::new(Self {
            store,
            queue,
            deliveries,
            health,
            fan_outs,
        })
    }

    /// The health keeper its deliveries report to; synchronous calls report to it too.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Processes a batch concurrently, then adds its attempts to the hourly counters and
    /// failure states in one write each per hook; returns the ids of messages to retry.
    pub async fn process_batch(self: &Arc<Self>, messages: &[QueueMessage]) -> Vec<String> {
        let started = std::time::Instant::now();
        let batch = Arc::new(Batch::new(self.store.clone()));
        let tasks: Vec<_> = messages
            .iter()
            .map(|m| {
                let this = Arc::clone(self);
                let body = m.body.clone();
                let receive_count = m.receive_count;
                let batch = batch.clone();
                tokio::spawn(
                    async move { this.process_message(&body, receive_count, &batch).await },
                )
            })
            .collect();
        let mut failed = Vec::new();
        let mut outcomes = Outcomes::default();
        for (message, task) in messages.iter().zip(tasks) {
            let result = task.await.unwrap_or(Err(SenderError::Panicked));
            match result {
                Ok(outcome) => outcomes.add(outcome),
                Err(e) => {
                    tracing::error!(message_id = %message.id, error = %e, "job failed; the queue will retry it");
                    failed.push(message.id.clone());
                }
            }
        }
        self.health.flush(&batch.tally, batch.as_ref()).await;
        let hooks = batch.hooks.lock().unwrap_or_else(|p| p.into_inner()).len();
        // One line per batch at `info`; each attempt has its own line at `debug`.
        tracing::info!(
            messages = messages.len(),
            delivered = outcomes.delivered,
            retry_scheduled = outcomes.retry_scheduled,
            failed = outcomes.failed,
            dropped = outcomes.dropped,
            skipped = outcomes.skipped,
            deferred = outcomes.deferred,
            recovery_steps = outcomes.recovery_steps,
            errors = failed.len(),
            hooks,
            duration_ms = started.elapsed().as_millis() as u64,
            "sender batch"
        );
        failed
    }

    async fn process_message(
        &self,
        body: &str,
        receive_count: u32,
        batch: &Batch,
    ) -> Result<JobOutcome, SenderError> {
        match serde_json::from_str(body).map_err(|_| SenderError::Malformed)? {
            Task::Delivery(job) => Ok(self
                .deliveries
                .deliver(&job, None, receive_count, batch, &batch.tally)
                .await?),
            Task::First(first) => Ok(self
                .deliveries
                .deliver(
                    &first.job,
                    Some(&first.pending),
                    receive_count,
                    batch,
                    &batch.tally,
                )
                .await?),
            Task::Recovery(step) => self.recover(&step).await,
            Task::Check(check) => {
                self.fan_outs.check_fan_out(&check).await?;
                Ok(JobOutcome::Skipped)
            }
            Task::Health(change) => {
                self.health.act_on(&change, batch).await?;
                Ok(JobOutcome::Skipped)
            }
        }
    }

    /// Processes one received message on its own (adding its attempt to the counters at once).
    pub async fn process_received(
        &self,
        message: &QueueMessage,
    ) -> Result<JobOutcome, SenderError> {
        let batch = Batch::new(self.store.clone());
        let outcome = self
            .process_message(&message.body, message.receive_count, &batch)
            .await;
        self.health.flush(&batch.tally, &batch).await;
        outcome
    }

    /// Processes one delivery job on its own (adding its attempt to the counters at once).
    pub async fn process(&self, job: &Job) -> Result<JobOutcome, SenderError> {
        let batch = Batch::new(self.store.clone());
        let outcome = self
            .deliveries
            .deliver(job, None, 1, &batch, &batch.tally)
            .await;
        self.health.flush(&batch.tally, &batch).await;
        Ok(outcome?)
    }

    /// Runs one step of a recovery.
    pub async fn recover(&self, step: &RecoveryStep) -> Result<JobOutcome, SenderError> {
        Ok(
            match recovery::step(self.store.as_ref(), self.queue.as_ref(), step).await? {
                StepOutcome::Resent(_) => JobOutcome::RecoveryStep,
                StepOutcome::Skipped => JobOutcome::Skipped,
            },
        )
    }
}

/// How many jobs of a batch ended each way, for the batch's log line.
#[derive(Debug, Default)]
struct Outcomes {
    delivered: u32,
    retry_scheduled: u32,
    failed: u32,
    dropped: u32,
    skipped: u32,
    deferred: u32,
    recovery_steps: u32,
}

impl Outcomes {
    fn add(&mut self, outcome: JobOutcome) {
        let count = match outcome {
            JobOutcome::Delivered => &mut self.delivered,
            JobOutcome::RetryScheduled => &mut self.retry_scheduled,
            JobOutcome::Failed => &mut self.failed,
            JobOutcome::Dropped => &mut self.dropped,
            JobOutcome::Skipped => &mut self.skipped,
            JobOutcome::Deferred => &mut self.deferred,
            JobOutcome::RecoveryStep => &mut self.recovery_steps,
        };
        *count += 1;
    }
}

/// What the jobs of one batch share: each hook read once (a batch tends to hold one hook's
/// jobs), and the attempts made, until they are flushed.
struct Batch {
    store: Arc<dyn Store>,
    hooks: Mutex<HashMap<HookId, Arc<OnceCell<Option<Hook>>>>>,
    tally: Tally,
}

impl Batch {
    fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            hooks: Mutex::default(),
            tally: Tally::default(),
        }
    }
}

#[async_trait]
impl HookReader for Batch {
    /// The hook as read by the first job of the batch that needed it.
    async fn hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError> {
        let cell = self
            .hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.store.get_hook(id))
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    //! The batch logic on the embedded store and queue, against a receiver on 127.0.0.1 that
    //! answers the status its path names (`/204`, `/503`, `/410`).

    use super::*;
    use crate::api::bodies::NewHook;
    use crate::app::testing::{Queued, Receiver, Spy};
    use crate::config::{Defaults, Settings};
    use crate::domain::catalog::EventName;
    use crate::domain::clock::now_ms;
    use crate::domain::decision::GONE_REASON;
    use crate::domain::delivery::{
        Delivery, DeliveryId, DeliveryStatus, FirstJob, PendingDelivery,
    };
    use crate::domain::event::EventId;
    use crate::domain::hook::UrlPolicy;
    use crate::domain::recovery::RecoveryStatus;
    use crate::ports::{
        DeliveryLog, HealthStore, HookStore, HourlyCount, MAX_RECEIVES, RecoveryStore,
    };

    /// A sender on the watched embedded store and queue, and the receiver its hooks point at.
    struct World {
        store: Arc<Spy>,
        queue: Arc<Queued>,
        sender: Arc<Sender>,
        receiver: Receiver,
    }

    impl World {
        async fn new() -> Self {
            let settings = Settings::from_lookup(Defaults::local(), |_| None).unwrap();
            let store = Spy::new();
            let queue = Queued::new();
            let sender = Sender::new(
                store.clone(),
                queue.clone(),
                DeliveryClient::from_settings(&settings),
                RetrySchedule::parse("1m,1h").unwrap(),
            );
            Self {
                store,
                queue,
                sender,
                receiver: Receiver::start().await,
            }
        }

        /// A stored hook whose endpoint answers `status`.
        async fn hook(&self, status: u16) -> Hook {
            let url = format!("http://{}/{status}", self.receiver.addr);
            let hook = NewHook::parse(
                &serde_json::json!({"name": "h", "events": ["User.Created"],
                                    "config": {"url": url}}),
                UrlPolicy { allow_http: true },
            )
            .unwrap()
            .into_hook(now_ms() - 1);
            self.store.create_hook(&hook).await.unwrap();
            hook
        }

        /// A pending delivery to `hook`, stored, and the job of its first attempt.
        async fn pending(&self, hook: &Hook) -> Job {
            let now = now_ms();
            let delivery = Delivery {
                hook_id: hook.id.clone(),
                id: DeliveryId::generate(),
                event_id: EventId::generate(),
                event: EventName::UserCreated,
                body: r#"{"event":"User.Created"}"#.into(),
                status: DeliveryStatus::Pending,
                attempts: Vec::new(),
                next_attempt_at: Some(now),
                reason: None,
                event_created_at: now,
                created_at: now,
                expires_at: now / 1000 + 86_400,
                sync: false,
            };
            self.store
                .insert_deliveries(std::slice::from_ref(&delivery))
                .await
                .unwrap();
            Job::for_delivery(&delivery, now)
        }

        async fn delivery(&self, job: &Job) -> Delivery {
            self.store
                .get_delivery(&job.hook_id, &job.delivery_id)
                .await
                .unwrap()
                .unwrap()
        }

        /// Runs one batch of these messages; returns the ids reported failed.
        async fn batch(&self, bodies: &[String]) -> Vec<String> {
            self.received(bodies, 1).await
        }

        /// Runs one batch of these messages, each received `count` times.
        async fn received(&self, bodies: &[String], count: u32) -> Vec<String> {
            let messages: Vec<QueueMessage> = bodies
                .iter()
                .enumerate()
                .map(|(i, body)| QueueMessage {
                    id: format!("m{i}"),
                    body: body.clone(),
                    receive_count: count,
                })
                .collect();
            self.sender.process_batch(&messages).await
        }

        /// A delivery to `hook` that no record holds yet, as its first job carries it.
        fn first(&self, hook: &Hook) -> (FirstJob, String) {
            let now = now_ms();
            let first = FirstJob {
                job: Job {
                    hook_id: hook.id.clone(),
                    delivery_id: DeliveryId::generate(),
                    attempt: 1,
                    due_at: now,
                    reopen: false,
                    rate_slot: None,
                },
                pending: PendingDelivery {
                    event_id: EventId::generate(),
                    event: EventName::UserCreated,
                    fields: Some(r#"{"event":"User.Created","data":{"id":"u1"}}"#.into()),
                    event_created_at: now,
                    created_at: now,
                    expires_at: now / 1000 + 86_400,
                    resumed: false,
                },
            };
            let text = serde_json::to_string(&Task::First(first.clone())).unwrap();
            (first, text)
        }

        async fn stored(&self, job: &Job) -> Option<Delivery> {
            self.store
                .get_delivery(&job.hook_id, &job.delivery_id)
                .await
                .unwrap()
        }
    }

    fn message(job: &Job) -> String {
        serde_json::to_string(&Task::Delivery(job.clone())).unwrap()
    }

    #[tokio::test]
    async fn a_success_is_recorded_once_and_nothing_more_is_queued() {
        let w = World::new().await;
        let hook = w.hook(204).await;
        let job = w.pending(&hook).await;

        assert!(w.batch(&[message(&job)]).await.is_empty());

        let delivery = w.delivery(&job).await;
        assert_eq!(delivery.status, DeliveryStatus::Success);
        assert_eq!(delivery.attempt_count(), 1);
        assert_eq!(delivery.attempts[0].response_status, Some(204));
        assert_eq!(w.receiver.ids(), [job.delivery_id.to_string()]);
        assert!(
            w.queue.jobs().is_empty(),
            "a delivered job has no follow-up"
        );
    }

    #[tokio::test]
    async fn a_retryable_failure_is_queued_again_as_the_next_attempt_of_the_same_delivery() {
        let w = World::new().await;
        let hook = w.hook(503).await;
        let job = w.pending(&hook).await;

        assert!(w.batch(&[message(&job)]).await.is_empty());

        let delivery = w.delivery(&job).await;
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.attempt_count(), 1);
        let next = w.queue.jobs();
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(next[0].delivery_id, job.delivery_id);
        assert_eq!(next[0].hook_id, hook.id);
        assert_eq!(next[0].attempt, job.attempt + 1);
        assert_eq!(Some(next[0].due_at), delivery.next_attempt_at);
        // 1m ± 20 % after the attempt.
        let wait = next[0].due_at - delivery.attempts[0].started_at;
        assert!((48_000..=72_000).contains(&wait), "{wait}");
    }

    #[tokio::test]
    async fn a_410_fails_the_delivery_and_disables_the_hook() {
        let w = World::new().await;
        let hook = w.hook(410).await;
        let job = w.pending(&hook).await;

        assert!(w.batch(&[message(&job)]).await.is_empty());

        let delivery = w.delivery(&job).await;
        assert_eq!(delivery.status, DeliveryStatus::Error);
        assert_eq!(delivery.reason.as_deref(), Some(GONE_REASON));
        let stored = w.store.get_hook(&hook.id).await.unwrap().unwrap();
        assert!(!stored.enabled, "the hook is disabled");
        assert_eq!(stored.disabled_reason.as_deref(), Some(GONE_REASON));
        assert!(w.queue.jobs().is_empty(), "no retry after a 410");
    }

    #[tokio::test]
    async fn a_job_for_a_deleted_hook_is_dropped_without_a_request() {
        let w = World::new().await;
        let hook = w.hook(204).await;
        let job = w.pending(&hook).await;
        assert!(w.store.delete_hook(&hook).await.unwrap());

        assert!(w.batch(&[message(&job)]).await.is_empty());

        let delivery = w.delivery(&job).await;
        assert_eq!(delivery.status, DeliveryStatus::Dropped);
        assert_eq!(delivery.reason.as_deref(), Some("hook deleted"));
        assert_eq!(delivery.attempt_count(), 0);
        assert!(w.receiver.ids().is_empty(), "nothing was sent");
        assert!(w.queue.jobs().is_empty());
    }

    #[tokio::test]
    async fn a_copy_of_a_job_already_recorded_is_not_sent_again() {
        let w = World::new().await;
        let ok = w.hook(204).await;
        let delivered = w.pending(&ok).await;
        let failing = w.hook(503).await;
        let retried = w.pending(&failing).await;
        let first = [message(&delivered), message(&retried)];
        assert!(w.batch(&first).await.is_empty());
        assert_eq!(w.receiver.ids().len(), 2);
        let follow_up = w.queue.jobs();
        assert_eq!(follow_up.len(), 1);

        // The queue hands both messages out again (a lost acknowledgement).
        assert!(w.batch(&first).await.is_empty());

        assert_eq!(w.receiver.ids().len(), 2, "neither was sent twice");
        assert_eq!(w.delivery(&delivered).await.attempt_count(), 1);
        assert_eq!(w.delivery(&delivered).await.status, DeliveryStatus::Success);
        assert_eq!(w.delivery(&retried).await.attempt_count(), 1);
        // The copy of the retried attempt queues its follow-up again, in case the first copy
        // stopped before it did: the same job, which the next attempt's record makes one.
        let again = w.queue.jobs();
        assert_eq!(again.len(), 2);
        assert_eq!(again[1], follow_up[0]);
        let counted: u64 = w
            .store
            .counted
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|c| c.counts.attempts)
            .sum();
        assert_eq!(counted, 2, "only the first copies' attempts are counted");
    }

    #[tokio::test]
    async fn a_batch_counts_its_attempts_once_per_hook() {
        let w = World::new().await;
        let ok = w.hook(204).await;
        let failing = w.hook(503).await;
        let mut bodies = Vec::new();
        for _ in 0..3 {
            bodies.push(message(&w.pending(&ok).await));
        }
        for _ in 0..2 {
            bodies.push(message(&w.pending(&failing).await));
        }
        w.store.reset();

        assert!(w.batch(&bodies).await.is_empty());

        let counted = w.store.counted.lock().unwrap().clone();
        assert_eq!(counted.len(), 1, "one write of the counters per batch");
        let of = |hook: &Hook| -> Vec<&HourlyCount> {
            counted[0].iter().filter(|c| c.hook_id == hook.id).collect()
        };
        // One entry per hook and hour: the batch may straddle an hour.
        let (ok_counts, failing_counts) = (of(&ok), of(&failing));
        assert!(ok_counts.len() == 1 || ok_counts.len() == 2);
        let attempts = |c: &[&HourlyCount]| c.iter().map(|c| c.counts.attempts).sum::<u64>();
        let successes = |c: &[&HourlyCount]| c.iter().map(|c| c.counts.successes).sum::<u64>();
        assert_eq!(attempts(&ok_counts), 3);
        assert_eq!(successes(&ok_counts), 3);
        assert_eq!(attempts(&failing_counts), 2);
        assert_eq!(successes(&failing_counts), 0);
        let mut health_writes = w.store.health_writes.lock().unwrap().clone();
        health_writes.sort();
        let mut hooks = vec![ok.id.clone(), failing.id.clone()];
        hooks.sort();
        assert_eq!(health_writes, hooks, "one failure-state write per hook");
        let mut reads = w.store.hook_reads.lock().unwrap().clone();
        reads.sort();
        assert_eq!(reads, hooks, "each hook read once per batch");
        let failing_state = w.store.hook_health(&failing.id).await.unwrap();
        assert_eq!(failing_state.failed_attempts, 2);
        assert!(failing_state.failing_since.is_some());
    }

    #[tokio::test]
    async fn a_first_job_is_sent_without_a_read_and_its_attempt_writes_the_record() {
        let w = World::new().await;
        let hook = w.hook(204).await;
        let (first, text) = w.first(&hook);
        w.store.reset();
        assert!(w.batch(std::slice::from_ref(&text)).await.is_empty());
        assert!(
            w.store.delivery_reads.lock().unwrap().is_empty(),
            "no read before a first receive"
        );
        assert_eq!(
            w.receiver.ids(),
            vec![first.job.delivery_id.to_string()],
            "sent once, with the delivery id as its webhook-id"
        );
        let d = w
            .stored(&first.job)
            .await
            .expect("the attempt wrote the record");
        assert_eq!(d.status, DeliveryStatus::Success);
        assert_eq!(d.attempt_count(), 1);
        assert_eq!(
            d.body,
            format!(
                r#"{{"hookId":"{}","event":"User.Created","data":{{"id":"u1"}}}}"#,
                hook.id
            )
        );
        assert_eq!(d.event_id, first.pending.event_id);

        // A second receive of the same message, or a resumed fan-out's copy, reads first and
        // finds the success.
        w.store.reset();
        assert!(w.received(std::slice::from_ref(&text), 2).await.is_empty());
        let resumed = FirstJob {
            pending: PendingDelivery {
                resumed: true,
                ..first.pending.clone()
            },
            ..first.clone()
        };
        let resumed = serde_json::to_string(&Task::First(resumed)).unwrap();
        assert!(w.batch(&[resumed]).await.is_empty());
        assert_eq!(
            w.receiver.ids().len(),
            1,
            "never sent again after its success"
        );
        assert_eq!(w.store.delivery_reads.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_first_job_on_its_last_receive_is_written_before_anything_can_fail() {
        let w = World::new().await;
        let hook = w.hook(204).await;
        let (early, early_text) = w.first(&hook);
        let (last, last_text) = w.first(&hook);
        w.store
            .refuse_records
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(w.received(&[early_text], 1).await.len(), 1);
        assert_eq!(w.received(&[last_text], MAX_RECEIVES).await.len(), 1);
        assert!(
            w.stored(&early.job).await.is_none(),
            "a retry will carry it"
        );
        let kept = w.stored(&last.job).await.expect("the log shows it");
        assert_eq!(kept.status, DeliveryStatus::Pending);
        assert_eq!(kept.attempt_count(), 0);
    }

    #[tokio::test]
    async fn a_first_job_deferred_by_the_rate_limit_is_written_before_it_waits() {
        let w = World::new().await;
        let url = format!("http://{}/204", w.receiver.addr);
        let hook = NewHook::parse(
            &serde_json::json!({"name": "slow", "events": ["User.Created"],
                                "config": {"url": url, "rateLimit": 1}}),
            UrlPolicy { allow_http: true },
        )
        .unwrap()
        .into_hook(now_ms() - 1);
        w.store.create_hook(&hook).await.unwrap();
        let firsts: Vec<(FirstJob, String)> = (0..3).map(|_| w.first(&hook)).collect();
        let texts: Vec<String> = firsts.iter().map(|(_, text)| text.clone()).collect();
        // One a second: the first now, the second waits its second, the third is deferred.
        assert!(w.batch(&texts).await.is_empty());
        assert_eq!(w.receiver.ids().len(), 2);
        let deferred: Vec<&FirstJob> = firsts
            .iter()
            .map(|(first, _)| first)
            .filter(|f| !w.receiver.ids().contains(&f.job.delivery_id.to_string()))
            .collect();
        assert_eq!(deferred.len(), 1);
        let kept = w
            .stored(&deferred[0].job)
            .await
            .expect("the log shows the deferred delivery");
        assert_eq!(kept.status, DeliveryStatus::Pending);
        assert_eq!(kept.attempt_count(), 0);
        let requeued = w.queue.tasks.lock().unwrap().clone();
        assert!(
            requeued.iter().any(|t| matches!(t, Task::Delivery(job)
                if job.delivery_id == deferred[0].job.delivery_id && job.rate_slot.is_some())),
            "queued again as a plain job for its slot: {requeued:?}"
        );
    }

    #[tokio::test]
    async fn a_first_job_for_a_deleted_hook_is_recorded_dropped() {
        let w = World::new().await;
        let hook = w.hook(204).await;
        let (first, text) = w.first(&hook);
        w.store.delete_hook(&hook).await.unwrap();
        assert!(w.batch(&[text]).await.is_empty());
        let d = w.stored(&first.job).await.expect("recorded");
        assert_eq!(d.status, DeliveryStatus::Dropped);
        assert_eq!(d.reason.as_deref(), Some("hook deleted"));
        assert!(w.receiver.ids().is_empty());
    }

    #[tokio::test]
    async fn a_healthy_hook_is_not_written_again_for_successes_alone() {
        let w = World::new().await;
        let ok = w.hook(204).await;
        let first = vec![message(&w.pending(&ok).await)];
        let second = vec![message(&w.pending(&ok).await)];
        w.store.reset();
        assert!(w.batch(&first).await.is_empty());
        assert!(w.batch(&second).await.is_empty());
        let writes = w.store.health_writes.lock().unwrap().clone();
        assert_eq!(writes, vec![ok.id.clone()], "only the first batch writes");
        assert_eq!(
            w.store.counted.lock().unwrap().len(),
            2,
            "each batch still adds to the counters"
        );

        let failing = w.hook(503).await;
        let third = vec![message(&w.pending(&failing).await)];
        let fourth = vec![message(&w.pending(&failing).await)];
        w.store.reset();
        assert!(w.batch(&third).await.is_empty());
        assert!(w.batch(&fourth).await.is_empty());
        let writes = w.store.health_writes.lock().unwrap().clone();
        assert_eq!(writes.len(), 2, "failures are always written");
        let state = w.store.hook_health(&failing.id).await.unwrap();
        assert_eq!(state.failed_attempts, 2);
    }

    #[tokio::test]
    async fn malformed_messages_are_reported_failed_and_their_batch_mates_done() {
        let w = World::new().await;
        let hook = w.hook(204).await;
        let job = w.pending(&hook).await;
        let bodies = [
            "not json".to_string(),
            message(&job),
            r#"{"hookId":"hook_a"}"#.to_string(),
        ];

        let failed = w.batch(&bodies).await;

        assert_eq!(failed, ["m0", "m2"]);
        assert_eq!(w.delivery(&job).await.status, DeliveryStatus::Success);
    }

    #[tokio::test]
    async fn a_recovery_step_in_a_batch_queues_its_failed_deliveries_again() {
        let w = World::new().await;
        let hook = w.hook(410).await;
        let job = w.pending(&hook).await;
        assert!(w.batch(&[message(&job)]).await.is_empty());
        assert_eq!(w.delivery(&job).await.status, DeliveryStatus::Error);
        let recovery = super::recovery::start(
            w.store.as_ref(),
            w.queue.as_ref(),
            &hook.id,
            now_ms() - 60_000,
            now_ms(),
        )
        .await
        .unwrap();
        let step = w.queue.tasks.lock().unwrap().last().cloned().unwrap();

        let body = serde_json::to_string(&step).unwrap();
        assert!(w.batch(&[body]).await.is_empty());

        let resent = w.queue.jobs();
        assert_eq!(resent.len(), 1, "{resent:?}");
        assert_eq!(resent[0].delivery_id, job.delivery_id);
        assert_eq!(resent[0].attempt, 2);
        assert!(resent[0].reopen);
        let recorded = w
            .store
            .get_recovery(&hook.id, &recovery.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recorded.resent, 1);
        assert_eq!(recorded.status, RecoveryStatus::Done);
    }
}
