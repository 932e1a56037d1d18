//! Accepting events: claim the callers' event ids (an id posted again within 24 hours gets the
//! first answer and is not fanned out again), fan each event out to the enabled hooks
//! subscribed to it (one pending delivery each, with its first job queued), and release the
//! claims and remove the records again when the event cannot be accepted whole. With `wait`
//! (one event), its synchronous hooks are also called and their results answered.

use super::PortError;
use super::health::Health;
use super::sync_call::{self, Keeper, MAX_SYNC_HOOKS, SyncResult};
use crate::domain::catalog::EventName;
use crate::domain::clock::now_ms;
use crate::domain::delivery::{
    Delivery, DeliveryId, DeliveryStatus, FirstJob, Job, PendingDelivery,
};
use crate::domain::event::{Event, EventId, IngestBody};
use crate::domain::hook::{Hook, HookId, HookMode};
use crate::domain::json::RawJson;
use crate::domain::task::{FanOutCheck, Task};
use crate::domain::validation::ValidationError;
use crate::metrics::{self, Unit};
use crate::net::client::DeliveryClient;
use crate::ports::{EventClaim, EventFields, JobQueue, QueueError, Store, StoreError, Subscriber};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a preview event is refused while the setting is off.
pub const PREVIEW_REFUSED: &str = "is a preview event; set WEBHOOKS_PREVIEW_EVENTS=true to use it";

/// How long a caller's event id is remembered.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// A claim left unfinished this long (its request died) may be taken over: longer than any
/// request lives (the ingest function's timeout is 15 s; a sync call's at most 10 s).
const ABANDONED_CLAIM_MS: i64 = 20 * 1000;
/// The longest job (bytes of JSON) that carries its event's fields: ten fit one 64 KiB queue
/// request. A larger event's fields are kept once, and its jobs refer to them.
const MAX_CARRYING_JOB: usize = 6_400;
/// When a claimed event's fan-out is checked: once its claim would count as abandoned.
const CHECK_FAN_OUT_AFTER_MS: i64 = ABANDONED_CLAIM_MS + 5_000;

/// Why events were not accepted; none of them was then (claims released, records removed).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The events break a rule: a preview event while they are off, `wait` with a batch, more
    /// synchronous hooks than an event may have.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Another request is accepting an event of the same id right now.
    #[error("an event with this id is being accepted right now")]
    InProgress,
    #[error(transparent)]
    Port(#[from] PortError),
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError::Port(e.into())
    }
}

impl From<QueueError> for IngestError {
    fn from(e: QueueError) -> Self {
        IngestError::Port(e.into())
    }
}

/// The events accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// One answer per event, in order (an [`EventAnswer`]); an event id accepted before gets
    /// the answer it got then, byte for byte.
    pub answers: Vec<RawJson>,
}

/// What the caller is told about one event: `{id, deliveries}`, with `results` of the
/// synchronous hooks when waited for, else `skippedSyncHooks` when it has some.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAnswer<'a> {
    pub id: &'a EventId,
    pub deliveries: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<SyncResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_sync_hooks: Option<usize>,
}

/// What to do with one event of a request.
enum Plan {
    /// Fan out; `claim` is set when the caller's id was claimed for it.
    FanOut { claim: Option<Claim> },
    /// Posted before: answer as the first time.
    Repeat(RawJson),
    /// The same id earlier in this batch.
    SameAs(usize),
}

/// A claimed caller id: delivery ids derive from the time of its first claim.
#[derive(Debug, Clone, Copy)]
struct Claim {
    first_claimed_at: i64,
    resumed: bool,
}

/// An event's subscribers, by event name.
type Subscribers = HashMap<EventName, Vec<Subscriber>>;

/// Accepts events into the store and the queue.
pub struct Ingest {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    client: DeliveryClient,
    retention: Duration,
    preview_events: bool,
    /// Where synchronous calls report their outcome (notices, auto-disable); without it the
    /// sender acts on the changes, through the queue.
    health: Option<Arc<Health>>,
}

impl Ingest {
    /// Deliveries are kept `retention`; preview events are refused unless `preview_events`.
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        retention: Duration,
        preview_events: bool,
    ) -> Self {
        Self {
            store,
            queue,
            client,
            retention,
            preview_events,
            health: None,
        }
    }

    /// Who applies the health rules to synchronous calls: this process's keeper, else the
    /// sender, through the queue.
    fn keeper(&self) -> Keeper<'_> {
        match &self.health {
            Some(health) => Keeper::Rules(health),
            None => Keeper::Sender(self.queue.as_ref()),
        }
    }

    /// Synchronous calls follow the health rules of `health`, as deliveries do.
    pub fn with_health(self, health: Arc<Health>) -> Self {
        Self {
            health: Some(health),
            ..self
        }
    }

    /// Fans the events out (claiming callers' ids first); with `wait` (one event only), also
    /// calls its synchronous hooks.
    pub async fn accept(&self, body: IngestBody, wait: bool) -> Result<Accepted, IngestError> {
        if wait && matches!(body, IngestBody::Batch(_)) {
            return Err(ValidationError::new(
                "wait",
                "applies to one event; post a batch without it",
            )
            .into());
        }
        let events = body.events();
        if !self.preview_events
            && let Some(i) = events.iter().position(|e| e.name.is_preview())
        {
            let field = match body {
                IngestBody::Single(_) => "event".to_string(),
                IngestBody::Batch(_) => format!("events[{i}].event"),
            };
            return Err(ValidationError::new(field, PREVIEW_REFUSED).into());
        }
        let plan = self.claim(events).await?;
        let (subscribers, sync_hooks) = match self.subscribers(events, wait).await {
            Ok(found) => found,
            Err(e) => {
                self.release(events, &plan).await;
                return Err(e);
            }
        };
        let fresh: Vec<(&Event, Option<Claim>)> = events
            .iter()
            .zip(&plan)
            .filter_map(|(e, p)| match p {
                Plan::FanOut { claim } => Some((e, *claim)),
                _ => None,
            })
            .collect();
        let fanned = if self.queue.carries_deliveries() {
            self.fan_out_in_jobs(&fresh, &subscribers).await
        } else {
            self.fan_out(&fresh, &subscribers).await
        };
        let counts = match fanned {
            Ok(counts) => counts,
            Err(e) => {
                // Jobs a queue took carry their deliveries: the claims stay, so a repeat of an
                // id resumes with the same delivery ids instead of minting new ones.
                let queued_none = match &e {
                    PortError::Queue(q) => q.queued_none(),
                    PortError::Store(_) => true,
                };
                if queued_none || !self.queue.carries_deliveries() {
                    self.release(events, &plan).await;
                }
                return Err(e.into());
            }
        };
        let mut counts = counts.into_iter();
        let mut answers: Vec<RawJson> = Vec::with_capacity(events.len());
        let mut to_store: Vec<(EventId, RawJson)> = Vec::new();
        for (e, p) in events.iter().zip(&plan) {
            let answer = match p {
                Plan::FanOut { claim } => {
                    let mut answer = EventAnswer {
                        id: &e.id,
                        deliveries: counts.next().unwrap_or(0),
                        results: None,
                        skipped_sync_hooks: None,
                    };
                    let sync = subscribers[&e.name]
                        .iter()
                        .filter(|s| s.mode == HookMode::Sync)
                        .count();
                    if wait {
                        let at = claim.map_or_else(now_ms, |c| c.first_claimed_at);
                        let expires_at = (now_ms() + self.retention.as_millis() as i64) / 1000;
                        let results = sync_call::call_all(
                            self.store.as_ref(),
                            &self.client,
                            &sync_hooks,
                            e,
                            at,
                            expires_at,
                            self.keeper(),
                        )
                        .await;
                        answer.results = Some(results);
                        let answer = RawJson::of(&answer);
                        if claim.is_some()
                            && let Err(err) = self.store.complete_event(&e.id, &answer).await
                        {
                            tracing::warn!(event_id = %e.id, error = %err, "could not store the event's answer");
                        }
                        answer
                    } else {
                        if sync > 0 {
                            // Not called: the caller did not wait.
                            answer.skipped_sync_hooks = Some(sync);
                        }
                        let answer = RawJson::of(&answer);
                        if claim.is_some() {
                            to_store.push((e.id.clone(), answer.clone()));
                        }
                        answer
                    }
                }
                Plan::Repeat(answer) if wait => {
                    self.sync_calls_of_repeat(e, answer, &sync_hooks).await?
                }
                Plan::Repeat(answer) => answer.clone(),
                Plan::SameAs(i) => answers[*i].clone(),
            };
            answers.push(answer);
        }
        if !to_store.is_empty()
            && let Err(err) = self.store.complete_events(&to_store).await
        {
            tracing::warn!(events = to_store.len(), error = %err, "could not store the events' answers");
        }
        Ok(Accepted { answers })
    }

    /// The answer to a `wait=true` repeat of an event: the first answer when it has results
    /// or skipped no synchronous hook; else its synchronous hooks are called once (claimed
    /// under [`EventId::sync_calls`], recorded like any call) and their results answered, to
    /// this repeat and every later one that waits.
    async fn sync_calls_of_repeat(
        &self,
        e: &Event,
        first: &RawJson,
        sync_hooks: &[Hook],
    ) -> Result<RawJson, IngestError> {
        let parsed = first.to_value();
        if parsed.get("skippedSyncHooks").is_none() {
            return Ok(first.clone());
        }
        let id = e.id.sync_calls();
        let now = now_ms();
        let at = match self
            .store
            .claim_event(&id, now, IDEMPOTENCY_WINDOW_MS, ABANDONED_CLAIM_MS)
            .await?
        {
            EventClaim::Accepted(answer) => return Ok(answer),
            EventClaim::InProgress => return Err(IngestError::InProgress),
            EventClaim::Claimed {
                first_claimed_at, ..
            } => first_claimed_at,
        };
        let expires_at = (now + self.retention.as_millis() as i64) / 1000;
        let results = sync_call::call_all(
            self.store.as_ref(),
            &self.client,
            sync_hooks,
            e,
            at,
            expires_at,
            self.keeper(),
        )
        .await;
        let answer = RawJson::of(&EventAnswer {
            id: &e.id,
            deliveries: parsed["deliveries"].as_u64().unwrap_or(0) as usize,
            results: Some(results),
            skipped_sync_hooks: None,
        });
        if let Err(err) = self.store.complete_event(&id, &answer).await {
            tracing::warn!(event_id = %e.id, error = %err, "could not store the synchronous results");
        }
        Ok(answer)
    }

    /// Each event name's subscribers; with `wait`, also the synchronous hooks of the (one)
    /// event, read once: more than [`MAX_SYNC_HOOKS`] is refused.
    async fn subscribers(
        &self,
        events: &[Event],
        wait: bool,
    ) -> Result<(Subscribers, Vec<Hook>), IngestError> {
        let mut subscribers = Subscribers::new();
        for e in events {
            if let std::collections::hash_map::Entry::Vacant(slot) = subscribers.entry(e.name) {
                slot.insert(self.store.subscribers(e.name).await?);
            }
        }
        let mut hooks = Vec::new();
        if wait && let Some(e) = events.first() {
            let sync: Vec<&Subscriber> = subscribers[&e.name]
                .iter()
                .filter(|s| s.mode == HookMode::Sync)
                .collect();
            if sync.len() > MAX_SYNC_HOOKS {
                return Err(ValidationError::new(
                    "event",
                    format!("has more than {MAX_SYNC_HOOKS} synchronous hooks"),
                )
                .into());
            }
            for s in sync {
                if let Some(hook) = self.store.get_hook(&s.hook_id).await?
                    && hook.enabled
                    && hook.mode == HookMode::Sync
                {
                    hooks.push(hook);
                }
            }
        }
        Ok((subscribers, hooks))
    }

    /// Claims the callers' event ids (all of a request's at once), so an event posted again
    /// within the window is not fanned out again.
    async fn claim(&self, events: &[Event]) -> Result<Vec<Plan>, IngestError> {
        let mut plan = Vec::with_capacity(events.len());
        let mut claimed = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if e.caller_id
                && let Some(first) = events[..i].iter().position(|p| p.caller_id && p.id == e.id)
            {
                plan.push(Plan::SameAs(first));
                continue;
            }
            if e.caller_id {
                claimed.push(i);
            }
            plan.push(Plan::FanOut { claim: None });
        }
        if claimed.is_empty() {
            return Ok(plan);
        }
        let ids: Vec<_> = claimed.iter().map(|&i| events[i].id.clone()).collect();
        let claims = self
            .store
            .claim_events(&ids, now_ms(), IDEMPOTENCY_WINDOW_MS, ABANDONED_CLAIM_MS)
            .await?;
        let mut in_progress = false;
        for (i, claim) in claimed.into_iter().zip(claims) {
            plan[i] = match claim {
                EventClaim::Claimed {
                    first_claimed_at,
                    resumed,
                } => Plan::FanOut {
                    claim: Some(Claim {
                        first_claimed_at,
                        resumed,
                    }),
                },
                EventClaim::Accepted(answer) => Plan::Repeat(answer),
                EventClaim::InProgress => {
                    in_progress = true;
                    Plan::FanOut { claim: None }
                }
            };
        }
        if in_progress {
            self.release(events, &plan).await;
            return Err(IngestError::InProgress);
        }
        Ok(plan)
    }

    async fn release(&self, events: &[Event], plan: &[Plan]) {
        for (e, p) in events.iter().zip(plan) {
            if matches!(p, Plan::FanOut { claim: Some(_) })
                && let Err(err) = self.store.release_event(&e.id).await
            {
                tracing::warn!(event_id = %e.id, error = %err, "could not release the event's claim");
            }
        }
    }

    /// Records and enqueues every delivery; returns the number per event. Delivery ids derive
    /// from the event id, the hook id and the first claim time, so a fan-out repeated after
    /// any failure finds the records of the first one instead of minting new `webhook-id`s.
    async fn fan_out(
        &self,
        events: &[(&Event, Option<Claim>)],
        subscribers: &Subscribers,
    ) -> Result<Vec<usize>, PortError> {
        let now = now_ms();
        let expires_at = (now + self.retention.as_millis() as i64) / 1000;
        let (mut fresh, mut resumed) = (Vec::new(), Vec::new());
        let mut counts = Vec::with_capacity(events.len());
        for (e, claim) in events {
            let hooks: Vec<_> = subscribers[&e.name]
                .iter()
                .filter(|s| s.mode == HookMode::Async)
                .map(|s| &s.hook_id)
                .collect();
            counts.push(hooks.len());
            let at = claim.map_or(now, |c| c.first_claimed_at);
            for hook in hooks {
                let delivery = Delivery {
                    hook_id: hook.clone(),
                    id: DeliveryId::derive(at, &e.id, hook),
                    event_id: e.id.clone(),
                    event: e.name,
                    body: e.delivered_body(hook),
                    status: DeliveryStatus::Pending,
                    attempts: Vec::new(),
                    next_attempt_at: Some(now),
                    reason: None,
                    event_created_at: e.created_at_ms,
                    created_at: at,
                    expires_at,
                    sync: false,
                };
                if claim.is_some_and(|c| c.resumed) {
                    resumed.push(delivery);
                } else {
                    fresh.push(delivery);
                }
            }
        }
        // Records this request wrote (removed again if the event is refused), and the
        // deliveries whose first job must be queued.
        let mut created: Vec<Delivery> = Vec::new();
        let mut queued: Vec<Delivery> = Vec::new();
        if !fresh.is_empty() {
            if let Err(e) = self.store.insert_deliveries(&fresh).await {
                self.remove(&fresh).await;
                return Err(e.into());
            }
            created.extend(fresh.iter().cloned());
            queued.extend(fresh);
        }
        if !resumed.is_empty() {
            let stored = match self.store.insert_missing_deliveries(&resumed).await {
                Ok(stored) => stored,
                Err(e) => {
                    self.remove(&created).await;
                    return Err(e.into());
                }
            };
            for (delivery, new) in stored {
                if new {
                    created.push(delivery.clone());
                    queued.push(delivery);
                } else if delivery.status == DeliveryStatus::Pending && delivery.attempts.is_empty()
                {
                    // An earlier fan-out wrote it but may not have queued it.
                    queued.push(delivery);
                }
            }
        }
        // Grouped by hook, so a sender batch tends to hold one hook's jobs and adds them to its
        // counters in one write.
        let mut jobs: Vec<Job> = queued.iter().map(|d| Job::for_delivery(d, now)).collect();
        jobs.sort_by(|a, b| a.hook_id.cmp(&b.hook_id));
        if !jobs.is_empty()
            && let Err(e) = self.queue.enqueue(&jobs).await
        {
            // The event is refused: the records it created go, so nothing is left pending
            // without a job (a job the queue did accept then finds no record and is skipped).
            self.remove(&created).await;
            return Err(e.into());
        }
        accepted(events, &counts, jobs.len());
        Ok(counts)
    }

    /// Enqueues every delivery's first job carrying the delivery itself (no record is written:
    /// the first attempt writes it). An event too large to travel in each of its jobs is kept
    /// once first. A fan-out that resumed marks its jobs, so the sender looks for a record of
    /// an earlier copy before sending.
    async fn fan_out_in_jobs(
        &self,
        events: &[(&Event, Option<Claim>)],
        subscribers: &Subscribers,
    ) -> Result<Vec<usize>, PortError> {
        let now = now_ms();
        let expires_at = (now + self.retention.as_millis() as i64) / 1000;
        let mut counts = Vec::with_capacity(events.len());
        let mut kept = Vec::new();
        let mut tasks: Vec<(HookId, Task)> = Vec::new();
        let mut checks: Vec<Task> = Vec::new();
        for (e, claim) in events {
            let hooks: Vec<_> = subscribers[&e.name]
                .iter()
                .filter(|s| s.mode == HookMode::Async)
                .map(|s| &s.hook_id)
                .collect();
            counts.push(hooks.len());
            if hooks.is_empty() {
                continue;
            }
            let at = claim.map_or(now, |c| c.first_claimed_at);
            let resumed = claim.is_some_and(|c| c.resumed);
            let fields = e.fields_json();
            let carried = serde_json::to_string(fields).map_or(usize::MAX, |s| s.len());
            let inline = carried + 400 <= MAX_CARRYING_JOB;
            if !inline {
                kept.push(EventFields {
                    event_id: e.id.clone(),
                    created_at: at,
                    fields: fields.to_string(),
                    expires_at,
                });
            }
            let mut checked = false;
            for hook in hooks {
                let job = Job {
                    hook_id: hook.clone(),
                    delivery_id: DeliveryId::derive(at, &e.id, hook),
                    attempt: 1,
                    due_at: now,
                    reopen: false,
                    rate_slot: None,
                };
                let pending = PendingDelivery {
                    event_id: e.id.clone(),
                    event: e.name,
                    fields: inline.then(|| fields.to_string()),
                    event_created_at: e.created_at_ms,
                    created_at: at,
                    expires_at,
                    resumed,
                };
                if claim.is_some() && !checked {
                    checked = true;
                    // One per claimed event, so a fan-out its request could not finish is
                    // finished by the sender.
                    checks.push(Task::Check(FanOutCheck {
                        check_fan_out: pending.clone(),
                        due_at: now + CHECK_FAN_OUT_AFTER_MS,
                    }));
                }
                tasks.push((hook.clone(), Task::First(FirstJob { job, pending })));
            }
        }
        if !kept.is_empty() {
            self.store.put_event_fields(&kept).await?;
        }
        // Grouped by hook, so a sender batch tends to hold one hook's jobs.
        tasks.sort_by(|a, b| a.0.cmp(&b.0));
        let jobs = tasks.len();
        // The checks first: sent before any job they would complete.
        let tasks: Vec<Task> = checks
            .into_iter()
            .chain(tasks.into_iter().map(|(_, t)| t))
            .collect();
        if !tasks.is_empty() {
            self.queue.enqueue_tasks(&tasks).await?;
        }
        accepted(events, &counts, jobs);
        Ok(counts)
    }

    /// Finishes the fan-out of `check`'s event if its request died before answering: once
    /// the claim counts as abandoned, it is taken over and every first job queued again
    /// (marked resumed, under the same delivery ids), then the claim answered. An answered
    /// claim, the usual case, costs one read.
    pub async fn check_fan_out(&self, check: &FanOutCheck) -> Result<(), PortError> {
        let pending = &check.check_fan_out;
        let id = &pending.event_id;
        if self.store.answered(id).await? {
            return Ok(());
        }
        let now = now_ms();
        let first_claimed_at = match self
            .store
            .claim_event(id, now, IDEMPOTENCY_WINDOW_MS, ABANDONED_CLAIM_MS)
            .await?
        {
            EventClaim::Accepted(_) => return Ok(()),
            EventClaim::InProgress => {
                // Not abandoned yet: look again once it would be.
                let again = FanOutCheck {
                    due_at: now + ABANDONED_CLAIM_MS,
                    ..check.clone()
                };
                self.queue.enqueue_tasks(&[Task::Check(again)]).await?;
                return Ok(());
            }
            EventClaim::Claimed {
                first_claimed_at, ..
            } => first_claimed_at,
        };
        let fields = match &pending.fields {
            Some(fields) => Some(fields.clone()),
            None => self.store.event_fields(id, pending.created_at).await?,
        };
        let Some(fields) = fields else {
            tracing::warn!(event_id = %id, "an unfinished fan-out's event is no longer kept");
            self.store.release_event(id).await?;
            return Ok(());
        };
        let event = Event::accepted(id.clone(), pending.event, pending.event_created_at, fields);
        let subscribers =
            Subscribers::from([(event.name, self.store.subscribers(event.name).await?)]);
        let claim = Claim {
            first_claimed_at,
            resumed: true,
        };
        let counts = match self
            .fan_out_in_jobs(&[(&event, Some(claim))], &subscribers)
            .await
        {
            Ok(counts) => counts,
            Err(e) => {
                self.store.release_event(id).await?;
                return Err(e);
            }
        };
        let sync = subscribers[&event.name]
            .iter()
            .filter(|s| s.mode == HookMode::Sync)
            .count();
        let answer = RawJson::of(&EventAnswer {
            id,
            deliveries: counts.first().copied().unwrap_or(0),
            results: None,
            skipped_sync_hooks: (sync > 0).then_some(sync),
        });
        self.store.complete_event(id, &answer).await?;
        tracing::info!(event_id = %id, "an unfinished fan-out was finished");
        Ok(())
    }

    async fn remove(&self, deliveries: &[Delivery]) {
        if deliveries.is_empty() {
            return;
        }
        if let Err(cleanup) = self.store.delete_deliveries(deliveries).await {
            tracing::warn!(error = %cleanup, "could not remove the records of a refused event");
        }
    }
}

/// Measures and logs a fan-out of `events` (`counts` deliveries each, `queued` jobs in all).
fn accepted(events: &[(&Event, Option<Claim>)], counts: &[usize], queued: usize) {
    metrics::emit(&[
        ("EventsIngested", events.len() as f64, Unit::Count),
        ("DeliveriesEnqueued", queued as f64, Unit::Count),
    ]);
    for ((e, _), n) in events.iter().zip(counts) {
        tracing::info!(event_id = %e.id, event = %e.name, deliveries = n, "event accepted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::SqliteStore;
    use crate::api::bodies::NewHook;
    use crate::config::{Defaults, Settings};
    use crate::domain::event::parse_ingest;
    use crate::domain::hook::UrlPolicy;
    use crate::ports::HookStore;
    use serde_json::{Value, json};
    use std::sync::Mutex;

    /// A queue whose messages carry deliveries, taking only its first `room` tasks.
    struct Narrow {
        room: usize,
        taken: Mutex<Vec<Task>>,
    }

    #[async_trait::async_trait]
    impl JobQueue for Narrow {
        fn carries_deliveries(&self) -> bool {
            true
        }

        async fn enqueue_tasks(&self, tasks: &[Task]) -> Result<(), QueueError> {
            let mut taken = self.taken.lock().unwrap();
            let fits = tasks.len().min(self.room.saturating_sub(taken.len()));
            taken.extend(tasks[..fits].iter().cloned());
            if fits == tasks.len() {
                return Ok(());
            }
            Err(QueueError::NotAccepted {
                failed: tasks.len() - fits,
                total: tasks.len(),
                reason: "full".into(),
            })
        }
    }

    /// An ingest over the embedded store with two hooks of `User.Created`, queuing into a
    /// carrying queue with room for `room` jobs.
    async fn ingest(room: usize) -> (Ingest, Arc<Narrow>) {
        let store = SqliteStore::in_memory();
        for name in ["a", "b"] {
            let hook = NewHook::parse(
                &json!({"name": name, "events": ["User.Created"],
                        "config": {"url": "https://hooks.example.com/in"}}),
                UrlPolicy { allow_http: false },
            )
            .unwrap()
            .into_hook(now_ms());
            store.create_hook(&hook).await.unwrap();
        }
        let queue = Arc::new(Narrow {
            room,
            taken: Mutex::default(),
        });
        let settings = Settings::from_lookup(Defaults::local(), |_| None).unwrap();
        let ingest = Ingest::new(
            store,
            queue.clone(),
            DeliveryClient::from_settings(&settings),
            Duration::from_secs(3_600),
            false,
        );
        (ingest, queue)
    }

    fn event(id: &str) -> IngestBody {
        let body = json!({"event": "User.Created", "id": id, "data": {"id": "u1"}});
        parse_ingest(body.to_string().as_bytes(), time::OffsetDateTime::now_utc()).unwrap()
    }

    #[tokio::test]
    async fn jobs_carry_their_deliveries_and_no_record_is_written() {
        let (ingest, queue) = ingest(10).await;
        let accepted = ingest.accept(event("evt_carried"), false).await.unwrap();
        assert_eq!(accepted.answers[0].to_value()["deliveries"], 2);
        let taken = queue.taken.lock().unwrap().clone();
        assert_eq!(taken.len(), 3);
        let Task::Check(check) = &taken[0] else {
            panic!("the fan-out's check first: {taken:?}");
        };
        assert_eq!(check.check_fan_out.event_id.as_str(), "evt_carried");
        assert!(check.due_at >= now_ms() + ABANDONED_CLAIM_MS);
        for task in &taken[1..] {
            let Task::First(first) = task else {
                panic!("a first job: {task:?}");
            };
            assert!(first.pending.fields.as_deref().unwrap().contains("\"u1\""));
            let stored = ingest
                .store
                .get_delivery(&first.job.hook_id, &first.job.delivery_id)
                .await
                .unwrap();
            assert!(stored.is_none(), "the first attempt writes the record");
        }
    }

    #[tokio::test]
    async fn a_refusal_after_some_jobs_were_queued_keeps_the_claim() {
        let (ingest, _) = ingest(1).await;
        assert!(ingest.accept(event("evt_partly"), false).await.is_err());
        // One job is out: a repeat must not mint new delivery ids, so the claim stays (a
        // repeat waits, then resumes with the same ids).
        assert!(matches!(
            ingest.accept(event("evt_partly"), false).await,
            Err(IngestError::InProgress)
        ));
    }

    #[tokio::test]
    async fn a_refusal_with_nothing_queued_releases_the_claim() {
        let (ingest, queue) = ingest(0).await;
        assert!(ingest.accept(event("evt_none"), false).await.is_err());
        assert!(queue.taken.lock().unwrap().is_empty());
        let narrow = Narrow {
            room: 10,
            taken: Mutex::default(),
        };
        let retry = Ingest {
            queue: Arc::new(narrow),
            ..ingest
        };
        let accepted = retry.accept(event("evt_none"), false).await.unwrap();
        assert_eq!(
            accepted.answers[0].to_value()["deliveries"],
            2,
            "the repeat fans out at once"
        );
    }

    #[tokio::test]
    async fn a_request_claims_and_answers_its_caller_ids_in_one_call_each() {
        let store = crate::app::testing::Spy::new();
        for name in ["a", "b"] {
            let hook = NewHook::parse(
                &json!({"name": name, "events": ["User.Created"],
                        "config": {"url": "https://hooks.example.com/in"}}),
                UrlPolicy { allow_http: false },
            )
            .unwrap()
            .into_hook(now_ms());
            store.create_hook(&hook).await.unwrap();
        }
        let settings = Settings::from_lookup(Defaults::local(), |_| None).unwrap();
        let ingest = Ingest::new(
            store.clone(),
            crate::adapters::sqlite::SqliteQueue::in_memory(Duration::from_secs(30), 5),
            DeliveryClient::from_settings(&settings),
            Duration::from_secs(3_600),
            false,
        );
        let batch = |ids: &[&str]| {
            let events: Vec<Value> = ids
                .iter()
                .map(|id| json!({"event": "User.Created", "id": id, "data": {"id": "u1"}}))
                .collect();
            parse_ingest(
                json!({ "events": events }).to_string().as_bytes(),
                time::OffsetDateTime::now_utc(),
            )
            .unwrap()
        };
        store.reset();
        let ids = ["evt_b1", "evt_b2", "evt_b3", "evt_b1"];
        let first = ingest.accept(batch(&ids), false).await.unwrap();
        let calls = store.calls.lock().unwrap().clone();
        let count = |name: &str| calls.iter().filter(|c| **c == name).count();
        assert_eq!(count("claim_events"), 1, "{calls:?}");
        assert_eq!(count("claim_event"), 0, "{calls:?}");
        assert_eq!(count("insert_deliveries"), 1, "{calls:?}");
        assert_eq!(count("complete_events"), 1, "{calls:?}");
        assert_eq!(count("complete_event"), 0, "{calls:?}");
        assert_eq!(first.answers.len(), 4);
        assert_eq!(first.answers[3], first.answers[0]);

        // The answers were stored: a repeat of the batch fans nothing out.
        store.reset();
        let again = ingest.accept(batch(&ids), false).await.unwrap();
        assert_eq!(again.answers, first.answers);
        let calls = store.calls.lock().unwrap().clone();
        assert!(!calls.contains(&"insert_deliveries"), "{calls:?}");
    }

    #[tokio::test]
    async fn a_fan_out_its_request_could_not_finish_is_finished_by_its_check() {
        // Room for the check and one job of two: the request fails with the claim kept.
        let (ingest, narrow) = ingest(2).await;
        assert!(ingest.accept(event("evt_cut"), false).await.is_err());
        let taken = narrow.taken.lock().unwrap().clone();
        let Task::Check(check) = taken[0].clone() else {
            panic!("{taken:?}");
        };
        let Task::First(sent) = &taken[1] else {
            panic!("{taken:?}");
        };
        let queue = Arc::new(Narrow {
            room: 10,
            taken: Mutex::default(),
        });
        let ingest = Ingest {
            queue: queue.clone(),
            ..ingest
        };
        // While the claim is fresh the check looks again later.
        ingest.check_fan_out(&check).await.unwrap();
        let again = queue.taken.lock().unwrap().clone();
        assert!(
            matches!(&again[..], [Task::Check(c)] if c.due_at > check.due_at - CHECK_FAN_OUT_AFTER_MS),
            "{again:?}"
        );
        queue.taken.lock().unwrap().clear();

        // Abandoned (as a released claim is at once): the check takes it over, queues every
        // first job again under the same ids, marked resumed, and answers the claim.
        ingest
            .store
            .release_event(&sent.pending.event_id)
            .await
            .unwrap();
        ingest.check_fan_out(&check).await.unwrap();
        let resumed = queue.taken.lock().unwrap().clone();
        let firsts: Vec<&FirstJob> = resumed
            .iter()
            .filter_map(|t| match t {
                Task::First(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(firsts.len(), 2, "{resumed:?}");
        assert!(firsts.iter().all(|f| f.pending.resumed));
        assert!(
            firsts
                .iter()
                .any(|f| f.job.delivery_id == sent.job.delivery_id)
        );
        let repeat = ingest.accept(event("evt_cut"), false).await.unwrap();
        assert_eq!(repeat.answers[0].to_value()["deliveries"], 2);

        // Answered: a later copy of the check reads, and queues nothing.
        queue.taken.lock().unwrap().clear();
        ingest.check_fan_out(&check).await.unwrap();
        assert!(queue.taken.lock().unwrap().is_empty());
    }
}
