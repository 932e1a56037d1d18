//! The JSON the management API answers with: hooks, delivery log entries and the event
//! catalog. Domain types stay free of wire shapes; this is the one place that knows them.

use crate::domain::catalog::EventName;
use crate::domain::delivery::{Delivery, DeliveryStatus};
use crate::domain::health::HealthCounts;
use crate::domain::hook::{CustomHeaders, Hook, HookId};
use crate::domain::recovery::Recovery;
use serde_json::{Map, Value, json};

/// A hook as its owner sees it, signing key and header values included.
pub fn hook_json(hook: &Hook) -> Value {
    let mut v = json!({
        "id": hook.id,
        "name": hook.name,
        // Logto's legacy single event, as last written; deliveries follow `events`.
        "event": hook.legacy_event,
        "events": hook.events,
        "config": { "url": hook.url.as_str(), "headers": headers_json(&hook.headers) },
        "signingKey": hook.signing_key.expose(),
        "enabled": hook.enabled,
        "createdAt": hook.created_at,
        "updatedAt": hook.updated_at,
    });
    if let Some(reason) = &hook.disabled_reason {
        v["disabledReason"] = Value::String(reason.clone());
    }
    if let Some(at) = hook.disabled_at {
        v["disabledAt"] = at.into();
    }
    if let Some(window) = &hook.disable_after {
        v["config"]["disableAfter"] = window.as_str().into();
    }
    if let Some(limit) = hook.rate_limit {
        v["config"]["rateLimit"] = limit.per_second().into();
    }
    if let Some(retries) = hook.retries {
        v["config"]["retries"] = retries.into();
    }
    if !hook.mode.is_async() {
        v["config"]["mode"] = hook.mode.as_str().into();
    }
    if let Some(timeout) = hook.timeout_ms {
        v["config"]["timeoutMs"] = timeout.ms().into();
    }
    v
}

fn headers_json(headers: &CustomHeaders) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), Value::String(v.to_string())))
            .collect::<Map<_, _>>(),
    )
}

/// An entry of `GET /api/hooks/{id}/recent-logs`: Logto's log entry (`id`, `key`,
/// `createdAt`, `payload: {key, result, hookId, hookRequest: {body}, response?, error?}`),
/// with the delivery's own fields beside it (`result` may also be `Pending` here).
pub fn delivery_log_json(d: &Delivery) -> Value {
    let result = match d.status {
        DeliveryStatus::Pending => "Pending",
        DeliveryStatus::Success => "Success",
        DeliveryStatus::Error | DeliveryStatus::Dropped => "Error",
    };
    let key = format!("TriggerHook.{}", d.event);
    let mut payload = json!({
        "key": key,
        "result": result,
        "hookId": d.hook_id,
        "hookRequest": {
            "body": serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
        },
    });
    let last = d.attempts.last();
    if let Some(status) = last.and_then(|a| a.response_status) {
        // Logto keeps the answer as JSON when it parses, else as text.
        let body = last.and_then(|a| a.response_body.as_deref()).map(|b| {
            serde_json::from_str::<Value>(b).unwrap_or_else(|_| Value::String(b.to_string()))
        });
        payload["response"] = json!({ "statusCode": status, "body": body });
    }
    if result == "Error"
        && let Some(error) = last.and_then(|a| a.error.clone()).or(d.reason.clone())
    {
        payload["error"] = error.into();
    }
    json!({
        "id": d.id,
        "key": key,
        "createdAt": d.created_at,
        "payload": payload,
        "hookId": d.hook_id,
        "eventId": d.event_id,
        "event": d.event,
        "result": result,
        "status": d.status.as_str(),
        "reason": d.reason,
        "mode": if d.sync { "sync" } else { "async" },
        "attemptCount": d.attempts.len(),
        "nextAttemptAt": d.next_attempt_at,
        "attempts": d.attempts,
    })
}

/// `GET /api/hook-events`: every event name with its group.
/// Preview events are listed only when they are turned on.
pub fn catalog_json(preview_events: bool) -> Value {
    Value::Array(
        EventName::ALL
            .iter()
            .filter(|e| preview_events || !e.is_preview())
            .map(|e| json!({ "event": e.as_str(), "group": e.group() }))
            .collect(),
    )
}

/// A recovery and how far it got.
pub fn recovery_json(r: &Recovery) -> Value {
    json!({
        "id": r.id,
        "hookId": r.hook_id,
        "since": r.since,
        "until": r.until,
        "status": r.status,
        "resent": r.resent,
        "steps": r.steps,
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
    })
}

/// Counts of some hours: attempts, failures by kind and duration percentiles (the upper bound
/// of the histogram bucket each falls in).
fn counts_json(c: &HealthCounts) -> Map<String, Value> {
    let mut json = Map::new();
    json.insert("attempts".into(), c.attempts.into());
    json.insert("successes".into(), c.successes.into());
    json.insert("failures".into(), json!(c.failures));
    json.insert(
        "durationMs".into(),
        json!({
            "p50": c.percentile(0.50),
            "p95": c.percentile(0.95),
            "p99": c.percentile(0.99),
        }),
    );
    json
}

/// A hook's health over `[since, until]`: totals, the latest success and failure, and the
/// hours that hold any attempt, oldest first.
pub fn health_json(hook: &HookId, since: i64, until: i64, hours: &[(i64, HealthCounts)]) -> Value {
    let mut total = HealthCounts::default();
    for (_, c) in hours {
        total.merge(c);
    }
    let mut json = counts_json(&total);
    json.insert("hookId".into(), hook.as_str().into());
    json.insert("since".into(), since.into());
    json.insert("until".into(), until.into());
    json.insert("lastSuccessAt".into(), json!(total.last_success_at));
    json.insert("lastFailureAt".into(), json!(total.last_failure_at));
    let hours: Vec<Value> = hours
        .iter()
        .map(|(hour, c)| {
            let mut h = counts_json(c);
            h.insert("hour".into(), (hour * 3_600_000).into());
            Value::Object(h)
        })
        .collect();
    json.insert("buckets".into(), Value::Array(hours));
    Value::Object(json)
}
