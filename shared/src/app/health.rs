//! A hook's health: the attempts of a sender batch added to the hook's hourly counters and to
//! its failure state, one write each per hook; the operator told when a hook starts failing,
//! recovers or is disabled; a hook disabled when it failed for too long, or answered 410.

use super::HookReader;
use crate::domain::catalog::EventName;
use crate::domain::clock::{iso, now_ms};
use crate::domain::decision::GONE_REASON;
use crate::domain::delivery::{DeliveryStatus, Job};
use crate::domain::health::{
    BatchHealth, HealthChange, HealthCounts, HealthPolicy, HookHealth, Outcome,
};
use crate::domain::hook::HookId;
use crate::metrics::{self, Unit};
use crate::operational::{Notice, Notices, OPERATIONAL_HOOK_ID};
use crate::ports::{AttemptRecord, HourlyCount, JobQueue, Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `(started_at, succeeded)` of a hook's attempts.
type Attempts = Vec<(i64, bool)>;

/// A hook this process last saw healthy is not written again for a batch of successes alone
/// within this long: such a write would only move its latest success forward.
const HEALTHY_REWRITE_MS: i64 = 60_000;

/// The attempts made since the last flush: by hook and hour for the counters, and by hook for
/// the failure states.
#[derive(Default)]
pub struct Tally {
    counts: Mutex<BTreeMap<(HookId, i64), HealthCounts>>,
    attempts: Mutex<BTreeMap<HookId, Attempts>>,
}

impl Tally {
    /// Adds one attempt of `hook`, started at `at_ms`.
    pub fn add(&self, hook: &HookId, at_ms: i64, duration_ms: u64, outcome: Outcome) {
        self.count(hook, at_ms, duration_ms, outcome);
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(hook.clone())
            .or_default()
            .push((at_ms, outcome == Outcome::Succeeded));
    }

    /// Adds one attempt of `hook` to its counters only: its failure state was written already.
    pub fn count(&self, hook: &HookId, at_ms: i64, duration_ms: u64, outcome: Outcome) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .entry((hook.clone(), at_ms.div_euclid(3_600_000)))
            .or_default()
            .record(at_ms, duration_ms, outcome);
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

/// A hook already read, for a health update that needs no other.
pub struct KnownHook<'a>(pub &'a crate::domain::hook::Hook);

#[async_trait::async_trait]
impl HookReader for KnownHook<'_> {
    async fn hook(&self, id: &HookId) -> Result<Option<crate::domain::hook::Hook>, StoreError> {
        Ok((self.0.id == *id).then(|| self.0.clone()))
    }
}

/// Keeps hooks' health by a policy, and sends the notices it gives rise to.
pub struct Health {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    policy: HealthPolicy,
    notices: Notices,
    /// Hooks whose failure state this process last saw healthy, and when it wrote it.
    healthy: Mutex<HashMap<HookId, i64>>,
}

impl Health {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        policy: HealthPolicy,
        notices: Notices,
    ) -> Self {
        Self {
            store,
            queue,
            policy,
            notices,
            healthy: Mutex::new(HashMap::new()),
        }
    }

    /// Where notices go; its endpoint is also a destination the sender delivers to.
    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    /// Adds the attempts `tally` holds to the hooks' counters and failure states, one write
    /// each per hook, and disables the hooks that failed for too long. A failure here costs only
    /// stats (or delays a disable to the hook's next batch), so it is logged and the jobs stay
    /// done.
    pub async fn flush(&self, tally: &Tally, hooks: &dyn HookReader) {
        let (counts, attempts) = tally.take();
        if counts.is_empty() {
            return;
        }
        let health = attempts
            .iter()
            .map(|(hook, attempts)| self.update(hook, attempts, hooks));
        let (counted, _) = tokio::join!(
            self.store.count_attempts(&counts),
            futures::future::join_all(health)
        );
        if let Err(e) = counted {
            tracing::warn!(error = %e, hooks = counts.len(), "could not add attempts to the hooks' stats");
        }
    }

    /// Applies a batch's attempts of `hook` to its failure state; notices a failure that began
    /// or ended, and disables the hook when the policy (or the hook's own window) says so.
    /// A batch of successes alone for a hook this process wrote healthy within
    /// [`HEALTHY_REWRITE_MS`] writes nothing: a failure another sender recorded meanwhile is then
    /// cleared by this process's next write, at most that much later.
    pub async fn update(&self, hook: &HookId, attempts: &[(i64, bool)], hooks: &dyn HookReader) {
        let batch = BatchHealth::of(attempts);
        let now = now_ms();
        let successes_only = batch.first_failure_after.is_none() && batch.last_success_at.is_some();
        {
            let healthy = self.healthy.lock().unwrap_or_else(|p| p.into_inner());
            if successes_only
                && healthy
                    .get(hook)
                    .is_some_and(|written| now - written < HEALTHY_REWRITE_MS)
            {
                return;
            }
        }
        let (before, after) = match self.store.record_health(hook, &batch).await {
            Ok(states) => states,
            Err(e) => {
                tracing::warn!(hook_id = %hook, error = %e, "could not record the hook's health");
                return;
            }
        };
        self.changed(hook, &before, &after, now, hooks).await;
    }

    /// Acts on a change synchronous calls recorded elsewhere: its notices, the disable the
    /// policy asks for, and a 410's disable. A disable that could not be written fails the
    /// message, so its next receive tries again.
    pub async fn act_on(
        &self,
        change: &HealthChange,
        hooks: &dyn HookReader,
    ) -> Result<(), StoreError> {
        let hook = &change.health_of;
        self.changed(hook, &change.before, &change.after, now_ms(), hooks)
            .await;
        if let Some(gone_at) = change.gone_at {
            self.disable(hook, GONE_REASON, gone_at, None).await?;
        }
        Ok(())
    }

    /// What follows a recorded change of `hook`'s failure state from `before` to `after`.
    async fn changed(
        &self,
        hook: &HookId,
        before: &HookHealth,
        after: &HookHealth,
        now: i64,
        hooks: &dyn HookReader,
    ) {
        {
            let mut healthy = self.healthy.lock().unwrap_or_else(|p| p.into_inner());
            if after.failing_since.is_none() && after.failed_attempts == 0 {
                healthy.insert(hook.clone(), now);
            } else {
                healthy.remove(hook);
            }
        }
        if hook.as_str() == OPERATIONAL_HOOK_ID {
            // The operational endpoint's own failures are in its stats, never in a notice.
            return;
        }
        let subject = hooks.hook(hook).await.ok().flatten();
        let window = subject
            .as_ref()
            .and_then(|h| h.disable_after.as_ref())
            .map_or(self.policy.disable_after, |w| w.duration());
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
                                after,
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
                        before,
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
            .policy
            .disables(after, subject.disable_after.map(|w| w.duration()), now)
        {
            return;
        }
        let since = after.failing_since.unwrap_or(now);
        let reason = format!(
            "endpoint failing since {} ({} failed attempts)",
            iso(since),
            after.failed_attempts
        );
        match self.disable(hook, &reason, now, Some(after)).await {
            Ok(true) => metrics::emit(&[("HooksAutoDisabled", 1.0, Unit::Count)]),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(hook_id = %hook, error = %e, "could not disable the failing hook")
            }
        }
    }

    /// Disables the hook for an answer that arrived at `answered_at`, unless it was changed
    /// since (an operator re-enabled or edited it); retries while it is being edited
    /// concurrently. True when this call disabled it, and then a `Hook.Disabled` notice (with
    /// the failure state `health`, read when not given) is sent.
    pub async fn disable(
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

    /// Sends `notice` to the operational endpoint (as a delivery of its own, through the queue)
    /// and to the topic. A failure is logged: the change it reports stands.
    pub async fn notify(&self, notice: Notice) {
        let to_endpoint = async {
            if self.notices.endpoint.is_none() {
                return;
            }
            let now = now_ms();
            let delivery = notice.delivery(now, self.notices.retention);
            if let Err(e) = self
                .store
                .insert_missing_deliveries(std::slice::from_ref(&delivery))
                .await
            {
                tracing::warn!(hook_id = %notice.hook_id, event = %notice.event, error = %e, "could not record an operational notice");
                return;
            }
            if let Err(e) = self
                .queue
                .enqueue(&[Job::for_delivery(&delivery, now)])
                .await
            {
                // Logged as failed rather than left pending: a recovery can send it again.
                tracing::warn!(hook_id = %notice.hook_id, event = %notice.event, error = %e, "could not queue an operational notice");
                let failed = AttemptRecord {
                    hook_id: delivery.hook_id.clone(),
                    delivery_id: delivery.id.clone(),
                    expires_at: delivery.expires_at,
                    expected_attempts: 0,
                    attempt: None,
                    status: DeliveryStatus::Error,
                    next_attempt_at: None,
                    reason: Some("could not be queued".into()),
                };
                let _ = self.store.record_attempt(&failed).await;
            }
        };
        let to_topic = async {
            let Some(topic) = &self.notices.topic else {
                return;
            };
            if let Err(e) = topic.publish(notice.event, &notice.body()).await {
                tracing::warn!(hook_id = %notice.hook_id, event = %notice.event, error = %e, "could not publish an operational notice");
            }
        };
        tokio::join!(to_endpoint, to_topic);
        tracing::info!(hook_id = %notice.hook_id, event = %notice.event, "operational notice");
        metrics::emit(&[("OperationalNotices", 1.0, Unit::Count)]);
    }
}
