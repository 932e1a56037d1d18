//! Delivering one job: check that it is due and still the delivery's next attempt, find its
//! hook (a deleted or disabled one drops the delivery), wait for the hook's rate-limit slot,
//! perform the attempt, record it, and queue the next one by the retry schedule. A 410 ends the
//! delivery and disables the hook. Only our own infrastructure failing is an error; whatever
//! the endpoint did is an outcome, recorded.

use super::attempt::{self, Performed, Request};
use super::health::{Health, KnownHook, Tally};
use super::{HookReader, PortError};
use crate::domain::clock::now_ms;
use crate::domain::decision::{Decision, GONE_REASON, decide};
use crate::domain::delivery::{Delivery, DeliveryStatus, FirstJob, Job, PendingDelivery};
use crate::domain::event::EventId;
use crate::domain::hook::{Hook, HookId};
use crate::domain::retry::RetrySchedule;
use crate::domain::task::Task;
use crate::metrics::{self, Unit};
use crate::net::client::DeliveryClient;
use crate::operational::OPERATIONAL_HOOK_ID;
use crate::ports::{
    AttemptRecord, JobQueue, MAX_RECEIVES, QueueError, RecordOutcome, Store, StoreError,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A job that arrives this much before its due time is re-queued instead of run.
const EARLY_TOLERANCE_MS: i64 = 1_000;
/// Kept event fields remembered for the next jobs of the same event (its other hooks).
const REMEMBERED_FIELDS: usize = 32;

/// One large event's fields, read once (`None`: not kept, or gone).
type KeptFields = tokio::sync::OnceCell<Option<Arc<String>>>;

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

/// Delivers jobs to hooks and to the operational endpoint.
pub struct Deliveries {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    client: DeliveryClient,
    schedule: RetrySchedule,
    health: Arc<Health>,
    /// The operational endpoint as a hook, when notices go to one.
    operational: Option<Hook>,
    /// The fields of large events read lately, by event id and fan-out time: jobs of one event
    /// in one batch wait for a single read.
    fields: std::sync::Mutex<std::collections::HashMap<(EventId, i64), Arc<KeptFields>>>,
}

impl Deliveries {
    /// Retries by `schedule`; a 410 disables the hook through `health`, and jobs of the
    /// operational hook go to its notices' endpoint.
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        schedule: RetrySchedule,
        health: Arc<Health>,
    ) -> Self {
        let operational = health.notices().endpoint.as_ref().map(|e| e.hook());
        Self {
            store,
            queue,
            client,
            schedule,
            health,
            operational,
            fields: Default::default(),
        }
    }

    /// Runs `job`, the `receive_count`th receive of its message; `first` is the delivery when
    /// the job carries it (no record may exist yet). Hooks are read from `hooks`, and an
    /// attempt made is added to `tally`.
    pub async fn deliver(
        &self,
        job: &Job,
        first: Option<&PendingDelivery>,
        receive_count: u32,
        hooks: &dyn HookReader,
        tally: &Tally,
    ) -> Result<JobOutcome, PortError> {
        let now = now_ms();
        if job.due_at > now + EARLY_TOLERANCE_MS {
            let again = match first {
                Some(pending) => Task::First(FirstJob {
                    job: job.clone(),
                    pending: pending.clone(),
                }),
                None => Task::Delivery(job.clone()),
            };
            self.queue.enqueue_tasks(&[again]).await?;
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
        let found = match first {
            // Read only when an earlier receive or fan-out may have attempted it.
            Some(pending) if !pending.resumed && receive_count <= 1 => None,
            _ => {
                self.store
                    .get_delivery(&job.hook_id, &job.delivery_id)
                    .await?
            }
        };
        let (delivery, unrecorded) = match (found, first) {
            (Some(delivery), _) => (delivery, false),
            (None, Some(pending)) => {
                let delivery = match &pending.fields {
                    Some(fields) => pending.delivery(job, fields),
                    None => match self.kept_fields(pending).await? {
                        Some(fields) => pending.delivery(job, &fields),
                        None => {
                            tracing::warn!(hook_id = %job.hook_id, delivery_id = %job.delivery_id, "job for an event whose body is gone");
                            return Ok(JobOutcome::Skipped);
                        }
                    },
                };
                if receive_count >= MAX_RECEIVES {
                    // The queue's last try before its dead-letter queue: written now, so the
                    // log shows it and a recovery finds it whatever happens next.
                    let (stored, _) = self
                        .store
                        .insert_missing_deliveries(std::slice::from_ref(&delivery))
                        .await?
                        .pop()
                        .ok_or_else(|| StoreError::Corrupt("an insert answered nothing".into()))?;
                    (stored, false)
                } else {
                    (delivery, true)
                }
            }
            (None, None) => {
                tracing::warn!(hook_id = %job.hook_id, delivery_id = %job.delivery_id, "job for an unknown delivery");
                return Ok(JobOutcome::Skipped);
            }
        };
        if delivery.status != DeliveryStatus::Pending {
            // A copy of the job that recorded a 410 finishes the hook's disable, should the
            // first copy have failed or stopped after recording the attempt.
            if let Some(gone_at) = delivery.gone_at() {
                self.health
                    .disable(&delivery.hook_id, GONE_REASON, gone_at, None)
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

        let hook = match self.hook(hooks, &job.hook_id).await? {
            Some(h) if h.enabled => h,
            other => {
                let reason = if other.is_some() {
                    "hook disabled"
                } else if job.hook_id.as_str() == OPERATIONAL_HOOK_ID {
                    "no operational endpoint configured"
                } else {
                    "hook deleted"
                };
                self.finish_without_attempt(&delivery, unrecorded, DeliveryStatus::Dropped, reason)
                    .await?;
                tracing::info!(hook_id = %job.hook_id, delivery_id = %delivery.id, reason, "delivery dropped");
                return Ok(JobOutcome::Dropped);
            }
        };
        if self
            .wait_for_slot(&hook, &delivery, unrecorded, job)
            .await?
        {
            return Ok(JobOutcome::Deferred);
        }
        self.attempt(&hook, &delivery, unrecorded, job.attempt, tally)
            .await
    }

    /// The fields kept for a large event, read once for the jobs of its hooks.
    async fn kept_fields(
        &self,
        pending: &PendingDelivery,
    ) -> Result<Option<Arc<String>>, StoreError> {
        let cell = {
            let mut remembered = self.fields.lock().unwrap_or_else(|p| p.into_inner());
            let key = (pending.event_id.clone(), pending.created_at);
            if !remembered.contains_key(&key) && remembered.len() >= REMEMBERED_FIELDS {
                remembered.clear();
            }
            remembered.entry(key).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            Ok(self
                .store
                .event_fields(&pending.event_id, pending.created_at)
                .await?
                .map(Arc::new))
        })
        .await
        .cloned()
    }

    /// The hook a job is for: the operational endpoint, or a stored hook.
    async fn hook(&self, hooks: &dyn HookReader, id: &HookId) -> Result<Option<Hook>, StoreError> {
        if id.as_str() == OPERATIONAL_HOOK_ID {
            return Ok(self.operational.clone());
        }
        hooks.hook(id).await
    }

    /// Takes the job's slot of the hook's rate limit: waits for a slot shortly ahead, or queues
    /// the job again for a later one (true then: no attempt now).
    /// An `unrecorded` delivery is written first, so the log shows it while it waits.
    async fn wait_for_slot(
        &self,
        hook: &Hook,
        delivery: &Delivery,
        unrecorded: bool,
        job: &Job,
    ) -> Result<bool, PortError> {
        let Some(limit) = hook.rate_limit else {
            return Ok(false);
        };
        let interval = limit.interval_ms();
        let now = now_ms();
        let slot = match job.rate_slot {
            // Its own slot, reached on time (queues deliver in whole seconds, so a deferred job
            // comes up to a second early and waits here for it).
            Some(slot) if now - slot <= interval => slot,
            // A fresh job, or one that came too late for its slot: the next free one.
            _ => self.store.reserve_slot(&hook.id, interval, now).await?,
        };
        if slot - now > interval && job.rate_slot != Some(slot) {
            if unrecorded {
                self.store
                    .insert_missing_deliveries(std::slice::from_ref(delivery))
                    .await?;
            }
            let deferred = Job {
                due_at: slot - 999,
                rate_slot: Some(slot),
                reopen: false,
                ..job.clone()
            };
            self.queue.enqueue(std::slice::from_ref(&deferred)).await?;
            metrics::emit(&[("DeliveriesDeferred", 1.0, Unit::Count)]);
            tracing::debug!(hook_id = %hook.id, delivery_id = %delivery.id, slot, "delivery deferred by the hook's rate limit");
            return Ok(true);
        }
        if slot > now {
            tokio::time::sleep(Duration::from_millis((slot - now).min(2_000) as u64)).await;
        }
        Ok(false)
    }

    /// Performs attempt `number` of `delivery`, records it (writing the record when
    /// `unrecorded`) and queues the next one.
    async fn attempt(
        &self,
        hook: &Hook,
        delivery: &Delivery,
        unrecorded: bool,
        number: u32,
        tally: &Tally,
    ) -> Result<JobOutcome, PortError> {
        let performed = attempt::perform(
            &self.client,
            Request::to_hook(hook, &delivery.id, &delivery.body),
        )
        .await;
        let Performed { started_at, answer } = &performed;
        let duration_ms = performed.duration_ms();
        let limited;
        let schedule = match hook.retries {
            Some(retries) => {
                limited = self.schedule.limited_to(retries);
                &limited
            }
            None => &self.schedule,
        };
        let decision = decide(
            answer,
            number,
            schedule,
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
            expires_at: delivery.expires_at,
            expected_attempts: number - 1,
            attempt: Some(performed.attempt(number).trimmed()),
            status: decision.status(),
            next_attempt_at,
            reason,
        };
        // A failed attempt has its line at `info`; a delivered one at `debug`, summed by the
        // sender's batch line at `info`.
        macro_rules! attempt_line {
            ($level:ident) => {
                tracing::$level!(
                    hook_id = %hook.id,
                    delivery_id = %delivery.id,
                    event_id = %delivery.event_id,
                    attempt = number,
                    status = answer.status,
                    error_kind = ?answer.error_kind,
                    duration_ms,
                    outcome = ?outcome,
                    "delivery attempt"
                )
            };
        }
        if matches!(outcome, JobOutcome::Delivered) {
            attempt_line!(debug);
        } else {
            attempt_line!(info);
        }
        if self.record(delivery, unrecorded, &record).await? == RecordOutcome::AlreadyRecorded {
            return Ok(JobOutcome::Skipped);
        }
        let gone = matches!(
            decision,
            Decision::Failed {
                disable_hook: true,
                ..
            }
        );
        if gone {
            // Its failure is written before the disable below, so a `Hook.FailingSince` notice
            // precedes `Hook.Disabled`, which then carries the failure's figures.
            tally.count(&hook.id, *started_at, duration_ms, performed.outcome());
            self.health
                .update(&hook.id, &[(*started_at, false)], &KnownHook(hook))
                .await;
        } else {
            tally.add(&hook.id, *started_at, duration_ms, performed.outcome());
        }
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
        // Emitted before a disable's write: a failed disable is finished by the job's next copy.
        metrics::emit(&measured);
        if let Decision::Failed {
            reason,
            disable_hook: true,
        } = decision
            && self
                .health
                .disable(&hook.id, reason, performed.answered_at(), None)
                .await?
        {
            metrics::emit(&[("HooksDisabled", 1.0, Unit::Count)]);
        }
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

    /// Records what became of `delivery`: its record is written when `unrecorded`.
    async fn record(
        &self,
        delivery: &Delivery,
        unrecorded: bool,
        record: &AttemptRecord,
    ) -> Result<RecordOutcome, StoreError> {
        if unrecorded {
            self.store.record_first_attempt(delivery, record).await
        } else {
            self.store.record_attempt(record).await
        }
    }

    async fn finish_without_attempt(
        &self,
        delivery: &Delivery,
        unrecorded: bool,
        status: DeliveryStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.record(
            delivery,
            unrecorded,
            &AttemptRecord {
                hook_id: delivery.hook_id.clone(),
                delivery_id: delivery.id.clone(),
                expires_at: delivery.expires_at,
                expected_attempts: delivery.attempt_count(),
                attempt: None,
                status,
                next_attempt_at: None,
                reason: Some(reason.to_string()),
            },
        )
        .await
        .map(|_| ())
    }
}
