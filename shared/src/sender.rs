//! The sender: performs one delivery attempt per job, records it, and queues the next one.
//! A job fails (is retried by the queue) only when our own infrastructure failed; an endpoint's
//! failure is an outcome to record, never an error.

use crate::config::Settings;
use crate::domain::catalog::EventName;
use crate::domain::clock::now_ms;
use crate::domain::decision::{Decision, GONE_REASON, decide};
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, Job};
use crate::domain::health::{BatchHealth, HealthCounts, HealthPolicy, HookHealth, Outcome};
use crate::domain::hook::{Hook, HookId};
use crate::domain::recovery::{RecoveryStatus, RecoveryStep};
use crate::domain::retry::RetrySchedule;
use crate::domain::signing::sign;
use crate::domain::task::Task;
use crate::metrics::{self, Unit};
use crate::net::client::DeliveryClient;
use crate::operational::{Notice, Notices, OPERATIONAL_HOOK_ID};
use crate::ports::{
    AttemptRecord, DeliveryFilter, HourlyCount, JobQueue, QueueError, QueueMessage, RecordOutcome,
    Store, StoreError,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Failed deliveries one recovery step re-queues.
const RECOVERY_PAGE: usize = 200;
/// A running recovery not advanced for this long lost its next step.
const STALLED_RECOVERY_MS: i64 = 60_000;
/// A job that arrives this much before its due time is re-queued instead of run.
const EARLY_TOLERANCE_MS: i64 = 1_000;

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

pub struct Sender {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    client: DeliveryClient,
    schedule: RetrySchedule,
    health: HealthPolicy,
    notices: Notices,
}

/// What became of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Delivered,
    RetryScheduled,
    Failed,
    Dropped,
    /// Already done by an earlier copy of the job, or not due yet (re-queued).
    Skipped,
    /// A recovery step queued its page of re-sends.
    RecoveryStep,
    /// Queued again for the slot the hook's rate limit gave it; no attempt was made.
    Deferred,
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
        Arc::new(Self {
            store,
            queue,
            client,
            schedule,
            health,
            notices: Notices::default(),
        })
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
        Arc::new(Self {
            store,
            queue,
            client,
            schedule: settings.retry_schedule.clone(),
            health: settings.health,
            notices: Notices {
                retention: settings.retention,
                ..notices
            },
        })
    }

    /// Processes a batch concurrently, then adds its attempts to the hourly counters in one
    /// write per hook; returns the ids of messages to retry.
    pub async fn process_batch(self: &Arc<Self>, messages: &[QueueMessage]) -> Vec<String> {
        let batch = Arc::new(Batch::default());
        let tasks: Vec<_> = messages
            .iter()
            .map(|m| {
                let this = Arc::clone(self);
                let body = m.body.clone();
                let batch = batch.clone();
                tokio::spawn(async move { this.process_message(&body, &batch).await })
            })
            .collect();
        let mut failed = Vec::new();
        for (message, task) in messages.iter().zip(tasks) {
            let result = task.await.unwrap_or(Err(SenderError::Panicked));
            if let Err(e) = result {
                tracing::error!(message_id = %message.id, error = %e, "job failed; the queue will retry it");
                failed.push(message.id.clone());
            }
        }
        self.flush_counts(&batch).await;
        failed
    }

    async fn process_message(&self, body: &str, batch: &Batch) -> Result<JobOutcome, SenderError> {
        match serde_json::from_str(body).map_err(|_| SenderError::Malformed)? {
            Task::Delivery(job) => self.process_counted(&job, batch).await,
            Task::Recovery(step) => self.recover(&step).await,
        }
    }

    /// One step of a recovery: queues a re-send of one page of failed deliveries, records the
    /// step, then queues the next one. The re-send jobs make their delivery pending themselves,
    /// so a step stopped half-way leaves nothing pending without a job.
    pub async fn recover(&self, step: &RecoveryStep) -> Result<JobOutcome, SenderError> {
        let Some(recovery) = self
            .store
            .get_recovery(&step.hook_id, &step.recovery_id)
            .await?
        else {
            tracing::warn!(hook_id = %step.hook_id, recovery_id = %step.recovery_id, "step of an unknown recovery");
            return Ok(JobOutcome::Skipped);
        };
        let now = now_ms();
        if recovery.status != RecoveryStatus::Running {
            return Ok(JobOutcome::Skipped);
        }
        if recovery.cursor != step.after {
            // A copy of a step already recorded. If the chain went quiet (its next step was
            // lost when a sender stopped after recording), start it again from the cursor.
            if recovery.updated_at + STALLED_RECOVERY_MS <= now {
                self.queue
                    .enqueue_tasks(&[Task::Recovery(RecoveryStep {
                        after: recovery.cursor.clone(),
                        due_at: now,
                        ..step.clone()
                    })])
                    .await?;
            }
            return Ok(JobOutcome::Skipped);
        }
        let filter = DeliveryFilter {
            statuses: Some(vec![DeliveryStatus::Error, DeliveryStatus::Dropped]),
            ..DeliveryFilter::between(recovery.since, recovery.until)
        };
        let page = self
            .store
            .page_deliveries(&step.hook_id, &filter, step.after.as_ref(), RECOVERY_PAGE)
            .await?;
        // Synchronous calls are never re-sent: their caller decided.
        let jobs: Vec<Job> = page
            .items
            .iter()
            .filter(|d| !d.sync)
            .map(|d| Job {
                reopen: true,
                ..Job::for_delivery(d, now)
            })
            .collect();
        if !jobs.is_empty() {
            self.queue.enqueue(&jobs).await?;
        }
        let recorded = self
            .store
            .advance_recovery(
                &step.hook_id,
                &step.recovery_id,
                step.after.as_ref(),
                page.next.as_ref(),
                jobs.len() as u64,
                now,
            )
            .await?;
        if recorded && let Some(next) = page.next {
            self.queue
                .enqueue_tasks(&[Task::Recovery(RecoveryStep {
                    after: Some(next),
                    due_at: now,
                    ..step.clone()
                })])
                .await?;
        }
        tracing::info!(hook_id = %step.hook_id, recovery_id = %step.recovery_id, resent = jobs.len(), "recovery step");
        Ok(JobOutcome::RecoveryStep)
    }

    /// Processes one delivery job on its own (counting its attempt at once).
    pub async fn process(&self, job: &Job) -> Result<JobOutcome, SenderError> {
        let batch = Batch::default();
        let outcome = self.process_counted(job, &batch).await;
        self.flush_counts(&batch).await;
        outcome
    }

    /// Adds a batch's attempts to the hooks' counters and failure states, one write each per
    /// hook, and disables the hooks that failed for too long. A failure here costs only stats
    /// (or delays a disable to the hook's next batch), so it is logged and the jobs stay done.
    async fn flush_counts(&self, batch: &Batch) {
        let (counts, attempts) = batch.take();
        if counts.is_empty() {
            return;
        }
        let health = attempts
            .iter()
            .map(|(hook, attempts)| self.update_health(hook, attempts, batch));
        let (counted, _) = tokio::join!(
            self.store.count_attempts(&counts),
            futures::future::join_all(health)
        );
        if let Err(e) = counted {
            tracing::warn!(error = %e, hooks = counts.len(), "could not add attempts to the hooks' stats");
        }
    }

    async fn update_health(&self, hook: &HookId, attempts: &[(i64, bool)], batch: &Batch) {
        let (before, after) = match self
            .store
            .record_health(hook, &BatchHealth::of(attempts))
            .await
        {
            Ok(states) => states,
            Err(e) => {
                tracing::warn!(hook_id = %hook, error = %e, "could not record the hook's health");
                return;
            }
        };
        if hook.as_str() == OPERATIONAL_HOOK_ID {
            // The operational endpoint's own failures are in its stats, never in a notice.
            return;
        }
        let subject = batch.hook(self.store.as_ref(), hook).await.ok().flatten();
        let window = subject
            .as_ref()
            .and_then(|h| h.disable_after.as_ref())
            .map_or(self.health.disable_after, |w| w.duration());
        let now = now_ms();
        match (before.failing_since, after.failing_since) {
            (None, Some(since)) => {
                tracing::warn!(hook_id = %hook, failing_since = since, "hook failing");
                if !self.notices.is_empty() {
                    match self
                        .store
                        .claim_notice(hook, now, window.as_millis() as i64)
                        .await
                    {
                        Ok(true) => {
                            self.notify(Notice::of(
                                EventName::HookFailingSince,
                                hook,
                                subject.as_ref(),
                                &after,
                                now,
                            ))
                            .await
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(hook_id = %hook, error = %e, "could not claim the failing notice")
                        }
                    }
                }
            }
            (Some(since), None) => {
                tracing::info!(hook_id = %hook, failing_since = since, "hook recovered");
                if before.noticed_this_failure() {
                    self.notify(Notice::of(
                        EventName::HookRecovered,
                        hook,
                        subject.as_ref(),
                        &before,
                        now,
                    ))
                    .await;
                }
            }
            _ => {}
        }
        let Some(subject) = subject.filter(|h| h.enabled) else {
            return;
        };
        if !self
            .health
            .disables(&after, subject.disable_after.map(|w| w.duration()), now)
        {
            return;
        }
        let since = after.failing_since.unwrap_or(now);
        let reason = format!(
            "endpoint failing since {} ({} failed attempts)",
            crate::domain::clock::iso(since),
            after.failed_attempts
        );
        match self.disable(hook, &reason, now, Some(&after)).await {
            Ok(true) => metrics::emit(&[("HooksAutoDisabled", 1.0, Unit::Count)]),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(hook_id = %hook, error = %e, "could not disable the failing hook")
            }
        }
    }

    async fn notify(&self, notice: Notice) {
        self.notices
            .send(self.store.as_ref(), self.queue.as_ref(), notice)
            .await;
    }

    /// The hook a job is for: the operational endpoint (from the settings), or a stored hook.
    async fn job_hook(&self, batch: &Batch, id: &HookId) -> Result<Option<Hook>, StoreError> {
        if id.as_str() == OPERATIONAL_HOOK_ID {
            return Ok(self.notices.endpoint.as_ref().map(|e| e.hook()));
        }
        batch.hook(self.store.as_ref(), id).await
    }

    async fn process_counted(&self, job: &Job, batch: &Batch) -> Result<JobOutcome, SenderError> {
        let now = now_ms();
        if job.due_at > now + EARLY_TOLERANCE_MS {
            self.queue.enqueue(std::slice::from_ref(job)).await?;
            return Ok(JobOutcome::Skipped);
        }
        if job.reopen {
            // Conflict: an earlier copy reopened it, or it changed since the job was queued.
            match self
                .store
                .reopen_delivery(
                    &job.hook_id,
                    &job.delivery_id,
                    now,
                    Some(job.attempt.saturating_sub(1)),
                )
                .await
            {
                Ok(_) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let Some(delivery) = self
            .store
            .get_delivery(&job.hook_id, &job.delivery_id)
            .await?
        else {
            tracing::warn!(hook_id = %job.hook_id, delivery_id = %job.delivery_id, "job for an unknown delivery");
            return Ok(JobOutcome::Skipped);
        };
        if delivery.status != DeliveryStatus::Pending {
            // A copy of the job that recorded a 410 finishes the hook's disable, should the
            // first copy have failed or stopped after recording the attempt.
            if let Some(gone_at) = delivery.gone_at() {
                self.disable(&delivery.hook_id, GONE_REASON, gone_at, None)
                    .await?;
            }
            return Ok(JobOutcome::Skipped);
        }
        let recorded = delivery.attempt_count();
        if recorded >= job.attempt {
            // This attempt is on record; its follow-up may not have been queued.
            if recorded == job.attempt
                && let Some(next) = delivery.next_attempt_at
            {
                self.enqueue_next(&delivery, recorded + 1, next).await?;
            }
            return Ok(JobOutcome::Skipped);
        }
        if recorded + 1 != job.attempt {
            tracing::warn!(delivery_id = %delivery.id, job_attempt = job.attempt, recorded, "job is ahead of its delivery record");
            return Ok(JobOutcome::Skipped);
        }

        let hook = match self.job_hook(batch, &job.hook_id).await? {
            Some(h) if h.enabled => h,
            other => {
                let reason = if other.is_some() {
                    "hook disabled"
                } else if job.hook_id.as_str() == OPERATIONAL_HOOK_ID {
                    "no operational endpoint configured"
                } else {
                    "hook deleted"
                };
                self.finish_without_attempt(&delivery, DeliveryStatus::Dropped, reason)
                    .await?;
                tracing::info!(hook_id = %job.hook_id, delivery_id = %delivery.id, reason, "delivery dropped");
                return Ok(JobOutcome::Dropped);
            }
        };
        if let Some(limit) = hook.rate_limit {
            let interval = limit.interval_ms();
            let now = now_ms();
            let slot = match job.rate_slot {
                // Its own slot, reached on time (queues deliver in whole seconds, so a
                // deferred job comes up to a second early and waits here for it).
                Some(slot) if now - slot <= interval => slot,
                // A fresh job, or one that came too late for its slot: the next free one.
                _ => self.store.reserve_slot(&hook.id, interval, now).await?,
            };
            if slot - now > interval && job.rate_slot != Some(slot) {
                let deferred = Job {
                    due_at: slot - 999,
                    rate_slot: Some(slot),
                    reopen: false,
                    ..job.clone()
                };
                self.queue.enqueue(std::slice::from_ref(&deferred)).await?;
                metrics::emit(&[("DeliveriesDeferred", 1.0, Unit::Count)]);
                tracing::debug!(hook_id = %hook.id, delivery_id = %delivery.id, slot, "delivery deferred by the hook's rate limit");
                return Ok(JobOutcome::Deferred);
            }
            if slot > now {
                tokio::time::sleep(Duration::from_millis((slot - now).min(2_000) as u64)).await;
            }
        }
        self.attempt(&hook, &delivery, job.attempt, batch).await
    }

    async fn attempt(
        &self,
        hook: &Hook,
        delivery: &Delivery,
        number: u32,
        batch: &Batch,
    ) -> Result<JobOutcome, SenderError> {
        let started_at = now_ms();
        let headers = sign(
            &hook.signing_keys(started_at),
            &delivery.id.to_string(),
            started_at / 1000,
            delivery.body.as_bytes(),
        );
        let answer = self
            .client
            .post(&hook.url, &hook.headers, &headers, &delivery.body)
            .await;
        let duration_ms = answer.duration.as_millis() as u64;
        let attempt = Attempt {
            number,
            started_at,
            duration_ms,
            response_status: answer.status,
            response_body: answer.body.clone(),
            error_kind: answer.error_kind,
            error: answer.error.clone(),
        };
        let decision = decide(
            &answer,
            number,
            &self.schedule,
            SystemTime::now(),
            rand::random::<f64>(),
        );
        let (next_attempt_at, reason, outcome) = match decision {
            Decision::Delivered => (None, None, JobOutcome::Delivered),
            Decision::RetryAt(at) => (Some(at), None, JobOutcome::RetryScheduled),
            Decision::Failed { reason, .. } => (None, Some(reason.to_string()), JobOutcome::Failed),
        };
        let record = AttemptRecord {
            hook_id: hook.id.clone(),
            delivery_id: delivery.id.clone(),
            expected_attempts: number - 1,
            attempt: Some(attempt),
            status: decision.status(),
            next_attempt_at,
            reason,
        };
        tracing::info!(
            hook_id = %hook.id,
            delivery_id = %delivery.id,
            event_id = %delivery.event_id,
            attempt = number,
            status = answer.status,
            error_kind = ?answer.error_kind,
            duration_ms,
            outcome = ?outcome,
            "delivery attempt"
        );
        if self.store.record_attempt(&record).await? == RecordOutcome::AlreadyRecorded {
            return Ok(JobOutcome::Skipped);
        }
        batch.add(
            &hook.id,
            started_at,
            duration_ms,
            Outcome::of(answer.status, answer.error_kind),
        );
        if let Some(next) = next_attempt_at {
            self.enqueue_next(delivery, number + 1, next).await?;
        }
        let mut measured = vec![
            ("DeliveryAttempts", 1.0, Unit::Count),
            ("AttemptDurationMs", duration_ms as f64, Unit::Milliseconds),
        ];
        match outcome {
            JobOutcome::Delivered => {
                measured.push(("DeliverySucceeded", 1.0, Unit::Count));
                let latency = (now_ms() - delivery.event_created_at).max(0) as f64;
                measured.push(("EndToEndLatencyMs", latency, Unit::Milliseconds));
            }
            JobOutcome::RetryScheduled => measured.push(("DeliveryRetried", 1.0, Unit::Count)),
            _ => measured.push(("DeliveryFailed", 1.0, Unit::Count)),
        }
        if let Decision::Failed {
            reason,
            disable_hook: true,
        } = decision
        {
            // Emitted before the write: a failed disable is finished by the job's next copy.
            metrics::emit(&measured);
            if self
                .disable(&hook.id, reason, started_at + duration_ms as i64, None)
                .await?
            {
                metrics::emit(&[("HooksDisabled", 1.0, Unit::Count)]);
            }
            return Ok(outcome);
        }
        metrics::emit(&measured);
        Ok(outcome)
    }

    /// Queues attempt `attempt` of `delivery`, due at `due_at`.
    async fn enqueue_next(
        &self,
        delivery: &Delivery,
        attempt: u32,
        due_at: i64,
    ) -> Result<(), QueueError> {
        let job = Job {
            attempt,
            ..Job::for_delivery(delivery, due_at)
        };
        self.queue.enqueue(&[job]).await
    }

    async fn finish_without_attempt(
        &self,
        delivery: &Delivery,
        status: DeliveryStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store
            .record_attempt(&AttemptRecord {
                hook_id: delivery.hook_id.clone(),
                delivery_id: delivery.id.clone(),
                expected_attempts: delivery.attempt_count(),
                attempt: None,
                status,
                next_attempt_at: None,
                reason: Some(reason.to_string()),
            })
            .await
            .map(|_| ())
    }

    /// Disables the hook for an answer that arrived at `answered_at`, unless it was changed
    /// since (an operator re-enabled or edited it); retries while it is being edited
    /// concurrently. True when this call disabled it, and then a `Hook.Disabled` notice (with
    /// the failure state `health`, read when not given) is sent.
    async fn disable(
        &self,
        id: &HookId,
        reason: &str,
        answered_at: i64,
        health: Option<&HookHealth>,
    ) -> Result<bool, StoreError> {
        for _ in 0..5 {
            let Some(hook) = self.store.get_hook(id).await? else {
                return Ok(false);
            };
            if !hook.enabled || hook.updated_at > answered_at {
                return Ok(false);
            }
            let mut next = hook.clone();
            next.enabled = false;
            next.disabled_reason = Some(reason.to_string());
            next.disabled_at = Some(now_ms());
            next.updated_at = now_ms().max(answered_at + 1).max(hook.updated_at + 1);
            match self.store.update_hook(&hook, &next).await {
                Ok(()) => {
                    tracing::warn!(hook_id = %id, reason, "hook disabled");
                    if !self.notices.is_empty() {
                        let health = match health {
                            Some(h) => h.clone(),
                            None => self.store.hook_health(id).await.unwrap_or_default(),
                        };
                        let mut notice =
                            Notice::of(EventName::HookDisabled, id, Some(&next), &health, now_ms());
                        notice.reason = Some(reason.to_string());
                        self.notify(notice).await;
                    }
                    return Ok(true);
                }
                Err(StoreError::Conflict) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}

/// `(started_at, succeeded)` of a hook's attempts in a batch.
type Attempts = Vec<(i64, bool)>;

/// What the jobs of one batch share: each hook read once (a batch tends to hold one hook's
/// jobs), and the attempts recorded, by hook and hour, until they are added to the counters.
#[derive(Default)]
struct Batch {
    counts: std::sync::Mutex<std::collections::BTreeMap<(HookId, i64), HealthCounts>>,
    /// `(started_at, succeeded)` of each attempt, by hook, for the failure states.
    attempts: std::sync::Mutex<std::collections::BTreeMap<HookId, Attempts>>,
    hooks: std::sync::Mutex<
        std::collections::HashMap<HookId, Arc<tokio::sync::OnceCell<Option<Hook>>>>,
    >,
}

impl Batch {
    /// The hook as read by the first job of the batch that needed it.
    async fn hook(&self, store: &dyn Store, id: &HookId) -> Result<Option<Hook>, StoreError> {
        let cell = self
            .hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| store.get_hook(id)).await.cloned()
    }

    fn add(&self, hook: &HookId, at_ms: i64, duration_ms: u64, outcome: Outcome) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .entry((hook.clone(), at_ms.div_euclid(3_600_000)))
            .or_default()
            .record(at_ms, duration_ms, outcome);
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(hook.clone())
            .or_default()
            .push((at_ms, outcome == Outcome::Succeeded));
    }

    /// The hourly counts and each hook's attempts, emptied.
    fn take(&self) -> (Vec<HourlyCount>, Vec<(HookId, Attempts)>) {
        let attempts =
            std::mem::take(&mut *self.attempts.lock().unwrap_or_else(|p| p.into_inner()));
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .map(|((hook_id, hour), counts)| HourlyCount {
                hook_id,
                hour,
                counts,
            })
            .collect();
        (counts, attempts.into_iter().collect())
    }
}
