//! Synchronous hooks: called while the caller of `POST /api/events?wait=true` waits, each
//! within its own time limit, signed like any delivery, recorded as a delivery of one attempt
//! and counted in stats and health. Never retried: the caller decides what a failure means.

use super::attempt::{self, Request};
use super::health::{Health, KnownHook};
use crate::domain::answer::Answer;
use crate::domain::clock::now_ms;
use crate::domain::decision::GONE_REASON;
use crate::domain::delivery::{Delivery, DeliveryId, DeliveryStatus, ErrorKind};
use crate::domain::event::Event;
use crate::domain::health::{BatchHealth, HealthChange, HealthCounts};
use crate::domain::hook::{Hook, HookId};
use crate::domain::json::RawJson;
use crate::domain::task::Task;
use crate::metrics::{self, Unit};
use crate::net::client::DeliveryClient;
use crate::ports::{HourlyCount, JobQueue, Store};
use serde::Serialize;

/// Most synchronous hooks one event may have.
pub const MAX_SYNC_HOOKS: usize = 5;

/// What one synchronous hook answered, as its caller reads it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResult {
    pub hook_id: HookId,
    pub delivery_id: DeliveryId,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<SyncBody>,
    /// Why the call is not a success: `timeout`, `connect`, `tls`, `blocked` or `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// Only part of the body arrived in time: `body` is what did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// The endpoint's answer: its JSON as sent, byte for byte, or else its text.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SyncBody {
    Json(RawJson),
    Text(String),
}

/// Calls every hook of `hooks` with `event` at once and answers, in the same order, one
/// result each. `at` is the event's fan-out time, from which the delivery ids derive.
pub async fn call_all(
    store: &dyn Store,
    client: &DeliveryClient,
    hooks: &[Hook],
    event: &Event,
    at: i64,
    expires_at: i64,
    keeper: Keeper<'_>,
) -> Vec<SyncResult> {
    let calls = hooks
        .iter()
        .map(|hook| call(store, client, hook, event, at, expires_at, keeper));
    futures::future::join_all(calls).await
}

async fn call(
    store: &dyn Store,
    client: &DeliveryClient,
    hook: &Hook,
    event: &Event,
    at: i64,
    expires_at: i64,
    keeper: Keeper<'_>,
) -> SyncResult {
    let id = DeliveryId::derive(at, &event.id, &hook.id);
    let body = event.delivered_body(&hook.id);
    let request = Request {
        within: Some(hook.timeout_ms.unwrap_or_default().duration()),
        ..Request::to_hook(hook, &id, &body)
    };
    let mut performed = attempt::perform(client, request).await;
    let partial = performed.answer.status.is_some() && !performed.answer.body_complete;
    if partial && performed.answer.error_kind.is_none() {
        // A success only if the whole answer arrived in time.
        performed.answer.error_kind = Some(ErrorKind::Timeout);
        performed.answer.error = Some("the answer's body did not arrive within the timeout".into());
    }
    let started_at = performed.started_at;
    let duration_ms = performed.duration_ms();
    let succeeded = performed.succeeded();
    let outcome = performed.outcome();
    let attempt = performed.attempt(1);
    let answer = performed.answer;
    let delivery = Delivery {
        hook_id: hook.id.clone(),
        id: id.clone(),
        event_id: event.id.clone(),
        event: event.name,
        body,
        status: if succeeded {
            DeliveryStatus::Success
        } else {
            DeliveryStatus::Error
        },
        attempts: vec![attempt],
        next_attempt_at: None,
        reason: (!succeeded).then(|| {
            answer
                .error
                .clone()
                .unwrap_or_else(|| "synchronous call failed".into())
        }),
        event_created_at: event.created_at_ms,
        created_at: at,
        expires_at,
        sync: true,
    };
    let mut counts = HealthCounts::default();
    counts.record(started_at, duration_ms, outcome);
    let hourly = HourlyCount {
        hook_id: hook.id.clone(),
        hour: started_at.div_euclid(3_600_000),
        counts,
    };
    let (recorded, counted, ()) = tokio::join!(
        store.insert_missing_deliveries(std::slice::from_ref(&delivery)),
        store.count_attempts(std::slice::from_ref(&hourly)),
        keep_health(store, keeper, hook, started_at, &answer, duration_ms),
    );
    if let Err(e) = recorded {
        tracing::warn!(hook_id = %hook.id, delivery_id = %id, error = %e, "could not record a synchronous call");
    }
    if let Err(e) = counted {
        tracing::warn!(hook_id = %hook.id, error = %e, "could not count a synchronous call");
    }
    tracing::info!(
        hook_id = %hook.id,
        delivery_id = %id,
        event_id = %event.id,
        status = answer.status,
        error_kind = ?answer.error_kind,
        duration_ms,
        "synchronous call"
    );
    metrics::emit(&[
        ("SyncCalls", 1.0, Unit::Count),
        ("SyncCallDurationMs", duration_ms as f64, Unit::Milliseconds),
    ]);
    let body = answer.body.filter(|b| !b.is_empty()).map(|text| {
        match RawJson::parse(&text).filter(|_| !partial) {
            Some(json) => SyncBody::Json(json),
            None => SyncBody::Text(text),
        }
    });
    SyncResult {
        hook_id: hook.id.clone(),
        delivery_id: id,
        duration_ms,
        status: answer.status,
        body,
        error: answer.error_kind.map(error_name),
        partial,
    }
}

/// Who applies the health rules to a synchronous call's outcome.
#[derive(Clone, Copy)]
pub enum Keeper<'a> {
    /// The health keeper of this process: notices, auto-disable and a 410's disable at once.
    Rules(&'a Health),
    /// No keeper runs here (the ingest function): the call is written to the failure state,
    /// and a change that may call for a notice or a disable is queued for the sender.
    Sender(&'a dyn JobQueue),
}

/// Applies a call to the hook's failure state, by the health rules.
async fn keep_health(
    store: &dyn Store,
    keeper: Keeper<'_>,
    hook: &Hook,
    started_at: i64,
    answer: &Answer,
    duration_ms: u64,
) {
    let succeeded = answer.succeeded();
    let gone_at = (answer.status == Some(410)).then(|| performed_at(started_at, duration_ms));
    match keeper {
        Keeper::Rules(health) => {
            health
                .update(&hook.id, &[(started_at, succeeded)], &KnownHook(hook))
                .await;
            if let Some(at) = gone_at
                && let Err(e) = health.disable(&hook.id, GONE_REASON, at, None).await
            {
                tracing::warn!(hook_id = %hook.id, error = %e, "could not disable the gone hook");
            }
        }
        Keeper::Sender(queue) => {
            let batch = BatchHealth::of(&[(started_at, succeeded)]);
            let (before, after) = match store.record_health(&hook.id, &batch).await {
                Ok(states) => states,
                Err(e) => {
                    tracing::warn!(hook_id = %hook.id, error = %e, "could not record a synchronous call's health");
                    return;
                }
            };
            // A failure may start a failure, reach the disable policy or be a 410; a success
            // may end a failure. Anything else changes nothing the sender acts on.
            if succeeded && before.failing_since == after.failing_since {
                return;
            }
            let change = HealthChange {
                health_of: hook.id.clone(),
                before,
                after,
                gone_at,
                due_at: now_ms(),
            };
            if let Err(e) = queue.enqueue_tasks(&[Task::Health(change)]).await {
                tracing::warn!(hook_id = %hook.id, error = %e, "could not queue a synchronous call's health change");
            }
        }
    }
}

fn performed_at(started_at: i64, duration_ms: u64) -> i64 {
    started_at + duration_ms as i64
}

/// The `error` of a result: why the call got no usable answer.
pub fn error_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "timeout",
        ErrorKind::Connect => "connect",
        ErrorKind::Tls => "tls",
        ErrorKind::Blocked => "blocked",
        ErrorKind::Http => "status",
    }
}
