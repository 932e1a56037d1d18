//! The receiver check: a suite of requests to an endpoint, through the delivery client (so the
//! same URL and address policy, no redirects followed), each judged by the rules of
//! `domain::receiver_check`. Nothing goes through the sender or its health rules, and nothing
//! is written to the delivery log: a check is never counted in a hook's stats or auto-disable.
//!
//! Every request but the repeat of a `webhook-id` is sent at once, each within the hook's time
//! limit (capped at [`MAX_REQUEST_LIMIT`]), so a whole check takes at most two limits.

use crate::domain::catalog::EventName;
use crate::domain::clock::now_ms;
use crate::domain::event::sample_event;
use crate::domain::hook::{CustomHeaders, Hook, HookMode, HookUrl};
use crate::domain::receiver_check::{
    CHECK_FIELD, CHECK_HEADER, CheckId, CheckReport, CheckResult, IfAccepted, LARGE_BODY_BYTES,
    Outcome, Received, SKEW_SECS, SentRequest, cap_body, judge_accepted, judge_duplicate,
    judge_redirects, judge_refused, shorten_signature,
};
use crate::domain::signing::{SigningKey, logto_signature, standard_signature};
use crate::net::client::DeliveryClient;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The longest any one check request may take, whatever the hook's own limit: two of them
/// (a request and its repeat) stay well inside the API function's 30-second timeout.
pub const MAX_REQUEST_LIMIT: Duration = Duration::from_secs(10);

const STANDARD: &str = "Standard Webhooks' webhook-signature";
const LOGTO: &str = "Logto's logto-signature-sha-256";

/// What to check and with which keys.
#[derive(Debug, Clone)]
pub struct Target {
    pub hook_id: Option<crate::domain::hook::HookId>,
    pub url: HookUrl,
    /// Sent as deliveries send them (values never shown in the report).
    pub headers: CustomHeaders,
    /// The keys that sign `webhook-signature`, the current one first.
    pub keys: Vec<SigningKey>,
    /// The key of `logto-signature-sha-256`.
    pub logto_key: SigningKey,
    /// Each request's time limit.
    pub limit: Duration,
    /// The event's fields (a JSON object), `hookId` first.
    pub event: Map<String, Value>,
}

impl Target {
    /// A hook's endpoint, headers and keys, with the time its deliveries (or, for a
    /// synchronous hook, its calls) get; `delivery_limit` is the sender's timeout.
    pub fn for_hook(hook: &Hook, delivery_limit: Duration) -> Self {
        let limit = if hook.mode == HookMode::Sync {
            hook.timeout_ms.unwrap_or_default().duration()
        } else {
            delivery_limit
        };
        let event = hook
            .events
            .first()
            .copied()
            .unwrap_or(EventName::PostRegister);
        Self {
            hook_id: Some(hook.id.clone()),
            url: hook.url.clone(),
            headers: hook.headers.clone(),
            keys: hook.signing_keys(now_ms()).into_iter().cloned().collect(),
            logto_key: hook.signing_key.clone(),
            limit: limit.min(MAX_REQUEST_LIMIT),
            event: event_fields(event, hook.id.as_str()),
        }
    }

    /// Any URL, signed with `secret` (and Logto's header with `logto_key`, or `secret`).
    pub fn for_url(
        url: HookUrl,
        secret: SigningKey,
        logto_key: Option<SigningKey>,
        limit: Duration,
    ) -> Self {
        Self {
            hook_id: None,
            url,
            headers: CustomHeaders::default(),
            logto_key: logto_key.unwrap_or_else(|| secret.clone()),
            keys: vec![secret],
            limit: limit.min(MAX_REQUEST_LIMIT),
            event: event_fields(EventName::PostRegister, "receiver-check"),
        }
    }
}

fn event_fields(event: EventName, hook_id: &str) -> Map<String, Value> {
    let sample = sample_event(event, time::OffsetDateTime::now_utc());
    let mut map = Map::new();
    map.insert("hookId".into(), hook_id.into());
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(sample.fields_json()) {
        map.extend(fields);
    }
    map
}

/// How one request is signed and what its body is.
struct Probe {
    name: &'static str,
    what: &'static str,
    /// The body sent.
    body: String,
    /// The body the signatures are computed over (the sent one unless tampered with).
    signed_body: Option<String>,
    body_note: Option<String>,
    standard: Signer,
    logto: Signer,
    /// Seconds added to now for `webhook-timestamp`.
    skew: i64,
}

#[derive(Clone, Copy)]
enum Signer {
    /// With the target's keys.
    Valid,
    /// With a random key.
    Wrong,
    /// A random key's signature first, then the target's current key's (key rotation).
    WrongThenValid,
    /// No header at all.
    Absent,
}

/// Runs the whole suite against `target`.
pub async fn run(client: &DeliveryClient, target: &Target) -> CheckReport {
    let created_at = now_ms();
    let wrong = SigningKey::generate();
    let base = body_with(&target.event, &[]);
    let probe = |name, what, body: String, standard, logto| Probe {
        name,
        what,
        body,
        signed_body: None,
        body_note: None,
        standard,
        logto,
        skew: 0,
    };
    let mut probes = vec![
        probe(
            "signed",
            "a correctly signed event",
            base.clone(),
            Signer::Valid,
            Signer::Valid,
        ),
        Probe {
            signed_body: Some(base.clone()),
            body_note: Some("a field was added after signing".into()),
            ..probe(
                "tampered-body",
                "a body changed after signing",
                body_with(&target.event, &[("tampered", json!(true))]),
                Signer::Valid,
                Signer::Valid,
            )
        },
        probe(
            "wrong-key",
            "a request signed with another key",
            base.clone(),
            Signer::Wrong,
            Signer::Wrong,
        ),
        probe(
            "missing-signature",
            "a request without signature headers",
            base.clone(),
            Signer::Absent,
            Signer::Absent,
        ),
        Probe {
            skew: -SKEW_SECS,
            ..probe(
                "stale-timestamp",
                "a request with a webhook-timestamp 10 minutes old (no Logto signature)",
                base.clone(),
                Signer::Valid,
                Signer::Absent,
            )
        },
        Probe {
            skew: SKEW_SECS,
            ..probe(
                "future-timestamp",
                "a request with a webhook-timestamp 10 minutes ahead (no Logto signature)",
                base.clone(),
                Signer::Valid,
                Signer::Absent,
            )
        },
        probe(
            "standard-signature-wrong",
            "a request whose webhook-signature is wrong and logto-signature-sha-256 valid",
            base.clone(),
            Signer::Wrong,
            Signer::Valid,
        ),
        probe(
            "logto-signature-wrong",
            "a request whose logto-signature-sha-256 is wrong and webhook-signature valid",
            base.clone(),
            Signer::Valid,
            Signer::Wrong,
        ),
        probe(
            "key-rotation",
            "a request signed by two keys of which only the second is valid",
            base.clone(),
            Signer::WrongThenValid,
            Signer::Valid,
        ),
        Probe {
            body_note: Some(format!("{LARGE_BODY_BYTES} bytes (a padding field)")),
            ..probe(
                "large-body",
                "a 64 KiB event",
                large_body(&target.event),
                Signer::Valid,
                Signer::Valid,
            )
        },
        Probe {
            body_note: Some("fields this product does not send today".into()),
            ..probe(
                "unknown-fields",
                "an event with unknown extra fields",
                body_with(
                    &target.event,
                    &[
                        ("unknownField", json!({"nested": [1, 2, 3], "flag": true})),
                        ("anotherUnknownField", json!("value")),
                    ],
                ),
                Signer::Valid,
                Signer::Valid,
            )
        },
    ];
    let duplicate = probe(
        "duplicate",
        "the same webhook-id twice",
        base,
        Signer::Valid,
        Signer::Valid,
    );
    let wrong = &wrong;
    let singles = probes.drain(..).map(|p| async move {
        let id = webhook_id();
        let (request, response) = send(client, target, wrong, &p, &id).await;
        let (outcome, detail) = judge(&p, &response);
        CheckResult {
            name: p.name.into(),
            outcome,
            detail,
            request,
            response,
        }
    });
    let repeat = async {
        let id = webhook_id();
        let (_, first) = send(client, target, wrong, &duplicate, &id).await;
        let (request, second) = send(client, target, wrong, &duplicate, &id).await;
        let (outcome, detail) = judge_duplicate(&first, &second);
        CheckResult {
            name: duplicate.name.into(),
            outcome,
            detail: format!("{detail} (first request {})", first.describe()),
            request,
            response: second,
        }
    };
    let (mut checks, repeated) = tokio::join!(futures::future::join_all(singles), repeat);
    checks.push(repeated);
    let (outcome, detail) = judge_redirects(&checks);
    checks.push(CheckResult {
        name: "redirect".into(),
        outcome,
        detail,
        request: SentRequest::default(),
        response: Received::default(),
    });
    let mut url = target.url.as_url().clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_password(None);
    let _ = url.set_username("");
    CheckReport::new(
        target.hook_id.clone(),
        url.to_string(),
        created_at,
        target.limit.as_millis() as u64,
        checks,
    )
}

fn judge(p: &Probe, got: &Received) -> (Outcome, String) {
    if p.signed_body.is_some() {
        // The body is not the one signed: every signature is wrong.
        return judge_refused(p.what, got, IfAccepted::Fail);
    }
    match (p.standard, p.logto) {
        (Signer::Valid | Signer::WrongThenValid, Signer::Valid) => judge_accepted(p.what, got),
        (Signer::Wrong, Signer::Valid) => {
            judge_refused(p.what, got, IfAccepted::Warn { other: LOGTO })
        }
        (Signer::Valid, Signer::Wrong) => {
            judge_refused(p.what, got, IfAccepted::Warn { other: STANDARD })
        }
        // Every signature is wrong: another key, none at all, or a Standard Webhooks signature
        // of a timestamp out of tolerance (without Logto's header, which has no timestamp).
        _ => judge_refused(p.what, got, IfAccepted::Fail),
    }
}

fn webhook_id() -> String {
    CheckId::generate().to_string()
}

/// The event's fields, the marker field and `extra`, serialized.
fn body_with(event: &Map<String, Value>, extra: &[(&str, Value)]) -> String {
    let mut map = event.clone();
    map.insert(CHECK_FIELD.into(), true.into());
    for (name, value) in extra {
        map.insert((*name).into(), value.clone());
    }
    Value::Object(map).to_string()
}

/// An event of exactly [`LARGE_BODY_BYTES`] bytes.
fn large_body(event: &Map<String, Value>) -> String {
    let empty = body_with(event, &[("padding", json!(""))]);
    let pad = LARGE_BODY_BYTES.saturating_sub(empty.len());
    body_with(event, &[("padding", json!("x".repeat(pad)))])
}

async fn send(
    client: &DeliveryClient,
    target: &Target,
    wrong: &SigningKey,
    p: &Probe,
    id: &str,
) -> (SentRequest, Received) {
    let timestamp = now_ms() / 1000 + p.skew;
    let signed_body = p.signed_body.as_deref().unwrap_or(&p.body).as_bytes();
    let standard = |key: &SigningKey| standard_signature(key, id, timestamp, signed_body);
    let mut headers: Vec<(&'static str, String)> = vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (CHECK_HEADER, "1".to_string()),
    ];
    let webhook_signature = match p.standard {
        Signer::Valid => Some(
            target
                .keys
                .iter()
                .map(standard)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Signer::Wrong => Some(standard(wrong)),
        Signer::WrongThenValid => target
            .keys
            .first()
            .map(|key| format!("{} {}", standard(wrong), standard(key))),
        Signer::Absent => None,
    };
    if let Some(value) = webhook_signature {
        headers.push(("webhook-signature", value));
    }
    let logto = match p.logto {
        Signer::Valid | Signer::WrongThenValid => {
            Some(logto_signature(&target.logto_key, signed_body))
        }
        Signer::Wrong => Some(logto_signature(wrong, signed_body)),
        Signer::Absent => None,
    };
    if let Some(value) = logto {
        headers.push(("logto-signature-sha-256", value));
    }
    let (answer, location) = client
        .post_with_headers(
            &target.url,
            &target.headers,
            &headers,
            &p.body,
            target.limit,
        )
        .await;
    let mut shown: std::collections::BTreeMap<String, String> = headers
        .iter()
        .map(|(name, value)| {
            let value = if name.ends_with("signature") || name.starts_with("logto-signature") {
                shorten_signature(value)
            } else {
                value.clone()
            };
            ((*name).to_string(), value)
        })
        .collect();
    for (name, _) in target.headers.iter() {
        shown.insert(name.to_ascii_lowercase(), "***".into());
    }
    shown.insert("content-type".into(), "application/json".into());
    let request = SentRequest {
        method: "POST".into(),
        headers: shown,
        body_bytes: p.body.len(),
        body_note: p.body_note.clone(),
    };
    let response = Received {
        status: answer.status,
        time_ms: answer.duration.as_millis() as u64,
        body: answer.body.as_deref().map(cap_body),
        error: if answer.status.is_none() {
            answer.error.clone()
        } else {
            None
        },
        location: location.filter(|_| answer.status.is_some_and(|s| (300..400).contains(&s))),
    };
    (request, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> Received {
        Received {
            status: Some(200),
            time_ms: 5,
            ..Received::default()
        }
    }

    fn probe(standard: Signer, logto: Signer) -> Probe {
        Probe {
            name: "x",
            what: "x",
            body: "{}".into(),
            signed_body: None,
            body_note: None,
            standard,
            logto,
            skew: 0,
        }
    }

    #[test]
    fn bodies_are_marked_and_the_large_one_is_exactly_64_kib() {
        let event = event_fields(EventName::PostRegister, "hook_x");
        let body: Value = serde_json::from_str(&body_with(&event, &[])).unwrap();
        assert_eq!(body[CHECK_FIELD], true);
        assert_eq!(body["hookId"], "hook_x");
        assert_eq!(body["event"], "PostRegister");
        let large = large_body(&event);
        assert_eq!(large.len(), LARGE_BODY_BYTES);
        assert!(serde_json::from_str::<Value>(&large).is_ok());
    }

    #[test]
    fn accepting_fails_only_when_every_signature_is_wrong() {
        let judged = |p: Probe| judge(&p, &accepted()).0;
        assert_eq!(judged(probe(Signer::Valid, Signer::Valid)), Outcome::Pass);
        assert_eq!(
            judged(probe(Signer::WrongThenValid, Signer::Valid)),
            Outcome::Pass
        );
        assert_eq!(judged(probe(Signer::Wrong, Signer::Valid)), Outcome::Warn);
        assert_eq!(judged(probe(Signer::Valid, Signer::Wrong)), Outcome::Warn);
        assert_eq!(judged(probe(Signer::Wrong, Signer::Wrong)), Outcome::Fail);
        assert_eq!(judged(probe(Signer::Absent, Signer::Absent)), Outcome::Fail);
        let stale = Probe {
            skew: -SKEW_SECS,
            ..probe(Signer::Valid, Signer::Absent)
        };
        assert_eq!(judged(stale), Outcome::Fail);
        let tampered = Probe {
            signed_body: Some("{\"a\":1}".into()),
            ..probe(Signer::Valid, Signer::Valid)
        };
        assert_eq!(judged(tampered), Outcome::Fail);
    }

    #[test]
    fn the_time_limit_is_the_hooks_capped() {
        let url = HookUrl::parse(
            "https://hooks.example.com/in",
            crate::domain::hook::UrlPolicy { allow_http: false },
        )
        .unwrap();
        let key = SigningKey::generate();
        let target = Target::for_url(url, key, None, Duration::from_secs(60));
        assert_eq!(target.limit, MAX_REQUEST_LIMIT);
        assert_eq!(target.keys.len(), 1);
        assert_eq!(target.logto_key, target.keys[0]);
    }
}
