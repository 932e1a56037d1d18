//! Synchronous hooks: called while the caller of `POST /api/events?wait=true` waits, each
//! within its own time limit, signed like any delivery, recorded as a delivery of one attempt
//! and counted in stats and health. Never retried: the caller decides what a failure means.

use super::attempt::{self, Request};
use super::health::{Health, KnownHook};
use crate::domain::decision::GONE_REASON;
use crate::domain::delivery::{Delivery, DeliveryId, DeliveryStatus, ErrorKind};
use crate::domain::event::Event;
use crate::domain::health::{BatchHealth, HealthCounts};
use crate::domain::hook::{Hook, HookId};
use crate::domain::json::RawJson;
use crate::metrics::{self, Unit};
use crate::net::client::DeliveryClient;
use crate::ports::{HourlyCount, Store};
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
    health: Option<&Health>,
) -> Vec<SyncResult> {
    let calls = hooks
        .iter()
        .map(|hook| call(store, client, hook, event, at, expires_at, health));
    futures::future::join_all(calls).await
}

async fn call(
    store: &dyn Store,
    client: &DeliveryClient,
    hook: &Hook,
    event: &Event,
    at: i64,
    expires_at: i64,
    health: Option<&Health>,
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
        keep_health(store, health, hook, started_at, succeeded),
    );
    if let Err(e) = recorded {
        tracing::warn!(hook_id = %hook.id, delivery_id = %id, error = %e, "could not record a synchronous call");
    }
    if let Err(e) = counted {
        tracing::warn!(hook_id = %hook.id, error = %e, "could not count a synchronous call");
    }
    if answer.status == Some(410)
        && let Some(health) = health
        && let Err(e) = health
            .disable(
                &hook.id,
                GONE_REASON,
                performed_at(started_at, duration_ms),
                None,
            )
            .await
    {
        tracing::warn!(hook_id = %hook.id, error = %e, "could not disable the gone hook");
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

/// Applies a call to the hook's failure state: by the health rules when `health` is given
/// (notices, auto-disable), else to the state alone.
async fn keep_health(
    store: &dyn Store,
    health: Option<&Health>,
    hook: &Hook,
    started_at: i64,
    succeeded: bool,
) {
    match health {
        Some(health) => {
            health
                .update(&hook.id, &[(started_at, succeeded)], &KnownHook(hook))
                .await
        }
        None => {
            let batch = BatchHealth::of(&[(started_at, succeeded)]);
            if let Err(e) = store.record_health(&hook.id, &batch).await {
                tracing::warn!(hook_id = %hook.id, error = %e, "could not record a synchronous call's health");
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
