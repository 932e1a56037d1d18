//! Hostile input against the real handlers (§3, §6, §7): arbitrary bytes, structured but wrong
//! JSON and odd headers never panic, are always answered with a JSON 4xx naming the problem,
//! and are accepted only when every rule holds, as re-checked here independently.

use crate::support::{Answer, send};
use axum::Router;
use axum::body::Body;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};
use proptest::test_runner::{TestCaseError, TestCaseResult, TestRunner};
use serde_json::{Map, Value, json};
use std::cell::Cell;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webhooks::adapters::memory_queue::MemoryQueue;
use webhooks::adapters::memory_store::MemoryStore;
use webhooks::api::bodies::NewHook;
use webhooks::api::{Api, Tokens, router};
use webhooks::config::{Defaults, Settings};
use webhooks::hook::{Hook, UrlPolicy};
use webhooks::net::client::DeliveryClient;
use webhooks::ports::Store;

const ADMIN: &str = "hostile-admin-token";
const INGEST: &str = "hostile-ingest-token";
const CASES: u32 = 10_000;
const MAX_BODY: usize = 256 * 1024;
const RETENTION: Duration = Duration::from_secs(86_400);

/// §3, typed out again so the handlers are checked against the spec, not against themselves.
const CATALOG: [&str; 29] = [
    "PostRegister",
    "PostSignIn",
    "PostResetPassword",
    "PostSignInAdaptiveMfaTriggered",
    "User.Created",
    "User.Deleted",
    "User.Data.Updated",
    "User.SuspensionStatus.Updated",
    "Role.Created",
    "Role.Deleted",
    "Role.Data.Updated",
    "Role.Scopes.Updated",
    "Scope.Created",
    "Scope.Deleted",
    "Scope.Data.Updated",
    "Organization.Created",
    "Organization.Deleted",
    "Organization.Data.Updated",
    "Organization.Membership.Updated",
    "OrganizationRole.Created",
    "OrganizationRole.Deleted",
    "OrganizationRole.Data.Updated",
    "OrganizationRole.Scopes.Updated",
    "OrganizationScope.Created",
    "OrganizationScope.Deleted",
    "OrganizationScope.Data.Updated",
    "Identifier.Lockout",
    "Message.RateLimited",
    "Grant.LimitExceeded",
];
const INTERACTION_KINDS: [&str; 3] = ["Register", "SignIn", "ForgotPassword"];

/// How the handler answered one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected,
}

/// Runs `test` on `CASES` generated inputs; both outcomes must be common, so a generator that
/// drifted into producing only valid (or only invalid) input fails the test too.
fn run<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<Outcome, TestCaseError>,
) {
    let config = ProptestConfig {
        cases: CASES,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    let started = Instant::now();
    let tally = [Cell::new(0u32), Cell::new(0u32)];
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        let outcome = test(value)?;
        let slot = &tally[usize::from(outcome == Outcome::Rejected)];
        slot.set(slot.get() + 1);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let [accepted, rejected] = tally.map(Cell::into_inner);
    println!(
        "{name}: {CASES} cases in {:?}: {accepted} accepted, {rejected} rejected",
        started.elapsed()
    );
    assert!(
        accepted >= CASES / 10 && rejected >= CASES / 10,
        "{name}: too one-sided to mean much ({accepted} accepted, {rejected} rejected)"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tokens() -> Tokens {
    Tokens::from_lists(ADMIN, INGEST)
}

fn request(method: Method, path: &str, headers: HeaderMap, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body))
        .unwrap();
    *req.headers_mut() = headers;
    req
}

/// The router on a fresh embedded store and queue, as every entry point serves it.
fn app(
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    client: &DeliveryClient,
    allow_http: bool,
) -> Router {
    let mut settings = local_settings();
    settings.url_policy = UrlPolicy { allow_http };
    settings.retention = RETENTION;
    router(Api::new(store, queue, client.clone(), tokens(), &settings))
}

fn json_headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

fn text(r: &Answer) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// A rejection: a 4xx with a JSON body carrying a string `code` and `message`.
fn rejection(r: &Answer) -> Result<Value, TestCaseError> {
    prop_assert!(
        r.status.is_client_error(),
        "expected a 4xx, got {}: {}",
        r.status,
        text(r)
    );
    prop_assert_eq!(
        r.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|e| fail(format!("error body is not JSON ({e}): {}", text(r))))?;
    prop_assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "no code: {}",
        body
    );
    prop_assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {}",
        body
    );
    Ok(body)
}

/// A 400 whose `details.field` is one of `allowed`.
fn rejected_at(r: &Answer, allowed: &[String]) -> TestCaseResult {
    prop_assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(r));
    let body = rejection(r)?;
    let field = body["details"]["field"]
        .as_str()
        .ok_or_else(|| fail(format!("no details.field: {body}")))?;
    prop_assert!(
        allowed.iter().any(|a| a == field),
        "field `{}` is none of {:?}: {}",
        field,
        allowed,
        body
    );
    Ok(())
}

/// The printable-ASCII form of a JSON key, as error paths show it.
fn shown(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_graphic)
        .take(64)
        .collect()
}

fn join(parent: &str, child: &str) -> String {
    if child.is_empty() {
        parent.to_string()
    } else if child.starts_with('[') {
        format!("{parent}{child}")
    } else {
        format!("{parent}.{child}")
    }
}

fn string_of(chars: &'static str, len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    vec(select(chars.chars().collect::<Vec<_>>()), len)
        .prop_map(String::from_iter)
        .boxed()
}

fn printable(len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    vec(proptest::char::range('!', '~'), len)
        .prop_map(String::from_iter)
        .boxed()
}

fn any_text(len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    vec(any::<char>(), len).prop_map(String::from_iter).boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e9f64..1.0e9).prop_map(Value::from),
        any_text(0..=12).prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((any_text(0..=8), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Any JSON value that is not a string (and not null).
fn not_string() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        vec(any::<u8>(), 0..3).prop_map(|v| json!(v)),
        Just(json!({"nested": {"deeper": ["PostSignIn"]}})),
    ]
    .boxed()
}

fn not_object() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any_text(0..=10).prop_map(Value::from),
        vec(json_value(), 0..3).prop_map(Value::Array),
    ]
    .boxed()
}

/// One generated JSON field: its value (absent when `None`) and the error paths it deserves.
/// `bad` paths must be rejected; `either` paths are the spec's open questions (the handler may
/// accept them, or reject them naming that path).
#[derive(Debug, Clone, Default)]
struct Field {
    value: Option<Value>,
    bad: Vec<String>,
    either: Vec<String>,
}

impl Field {
    fn ok(v: Value) -> Self {
        Self {
            value: Some(v),
            ..Self::default()
        }
    }

    fn absent() -> Self {
        Self::default()
    }

    fn bad(v: Option<Value>, path: &str) -> Self {
        Self {
            value: v,
            bad: vec![path.to_string()],
            either: Vec::new(),
        }
    }

    fn either(v: Value, path: &str) -> Self {
        Self {
            value: Some(v),
            bad: Vec::new(),
            either: vec![path.to_string()],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// POST /api/events
// ---------------------------------------------------------------------------------------------

fn event_name(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = select(&CATALOG[..]).prop_map(|n| Field::ok(json!(n)));
    if valid_only {
        return valid.boxed();
    }
    let mangled = (select(&CATALOG[..]), 0..5u8)
        .prop_map(|(n, how)| match how {
            0 => n.to_lowercase(),
            1 => n.to_uppercase(),
            2 => format!("{n} "),
            3 => n.replace('.', "_"),
            _ => format!("x{n}"),
        })
        .prop_filter("outside the catalog", |s| !CATALOG.contains(&s.as_str()));
    let junk = string_of("abcDEF.PostSign", 0..=24)
        .prop_filter("outside the catalog", |s| !CATALOG.contains(&s.as_str()));
    prop_oneof![
        10 => valid,
        1 => mangled.prop_map(|s| Field::bad(Some(json!(s)), "event")),
        1 => junk.prop_map(|s| Field::bad(Some(json!(s)), "event")),
        1 => prop_oneof![Just(Value::Null), not_string()]
            .prop_map(|v| Field::bad(Some(v), "event")),
        1 => Just(Field::bad(None, "event")),
    ]
    .boxed()
}

fn event_id(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        3 => Just(Field::absent()),
        1 => Just(Field::ok(Value::Null)),
        1 => printable(1..=8).prop_map(|s| Field::ok(json!(s))),
        1 => printable(120..=128).prop_map(|s| Field::ok(json!(s))),
    ];
    if valid_only {
        return valid.boxed();
    }
    let bad = |s: String| Field::bad(Some(json!(s)), "id");
    prop_oneof![
        12 => valid,
        1 => Just(bad(String::new())),
        1 => printable(129..=160).prop_map(bad),
        1 => (printable(1..=6), printable(1..=6)).prop_map(move |(a, b)| bad(format!("{a} {b}"))),
        1 => (printable(0..=6), select(vec!['é', '\t', '\u{0}', '日']))
            .prop_map(move |(a, c)| bad(format!("{a}{c}"))),
        1 => not_string().prop_map(|v| Field::bad(Some(v), "id")),
    ]
    .boxed()
}

/// RFC 3339 date-times built from their parts.
fn rfc3339() -> BoxedStrategy<String> {
    let offset = prop_oneof![
        2 => Just("Z".to_string()),
        1 => (any::<bool>(), 0u8..=23, 0u8..=59)
            .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
    ];
    let fraction = option::of(string_of("0123456789", 1..=9)).prop_map(|f| match f {
        Some(f) => format!(".{f}"),
        None => String::new(),
    });
    (
        0u16..=9999,
        1u8..=12,
        1u8..=28,
        0u8..=23,
        0u8..=59,
        0u8..=59,
        fraction,
        offset,
    )
        .prop_map(|(y, mo, d, h, mi, s, f, o)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{o}")
        })
        .boxed()
}

fn created_at(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        3 => Just(Field::absent()),
        1 => Just(Field::ok(Value::Null)),
        3 => rfc3339().prop_map(|s| Field::ok(json!(s))),
    ];
    if valid_only {
        return valid.boxed();
    }
    let near_miss = (rfc3339(), 0u8..7, 0u8..=99).prop_map(|(s, how, n)| match how {
        0 => format!("{}{:02}{}", &s[..5], 13 + n % 87, &s[7..]),
        1 => format!("{}{:02}{}", &s[..8], 32 + n % 68, &s[10..]),
        2 => format!("{}{:02}{}", &s[..11], 24 + n % 76, &s[13..]),
        3 => format!("{}{:02}{}", &s[..14], 60 + n % 40, &s[16..]),
        4 => s[..19].to_string(),
        5 => format!("{}-02-30{}", &s[..4], &s[10..]),
        _ => s[2..].to_string(),
    });
    let bad = |s: String| Field::bad(Some(json!(s)), "createdAt");
    prop_oneof![
        8 => valid,
        2 => near_miss.prop_map(bad),
        1 => string_of("abcdefyesterday ", 0..=16).prop_map(bad),
        1 => not_string().prop_map(|v| Field::bad(Some(v), "createdAt")),
    ]
    .boxed()
}

fn user_ip(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        2 => Just(Field::absent()),
        1 => Just(Field::ok(Value::Null)),
        1 => any::<[u8; 4]>().prop_map(|o| Field::ok(json!(Ipv4Addr::from(o).to_string()))),
        1 => any::<[u16; 8]>().prop_map(|s| Field::ok(json!(Ipv6Addr::from(s).to_string()))),
    ];
    if valid_only {
        return valid.boxed();
    }
    let bad = |s: String| Field::bad(Some(json!(s)), "userIp");
    let bad_octet = (any::<[u8; 4]>(), 0usize..4, 256u16..=999).prop_map(|(o, i, big)| {
        let mut parts: Vec<String> = o.iter().map(u8::to_string).collect();
        parts[i] = big.to_string();
        parts.join(".")
    });
    prop_oneof![
        8 => valid,
        1 => bad_octet.prop_map(bad),
        1 => string_of("ghijklmnopqrstuvwxyz", 0..=8).prop_map(bad),
        1 => any::<[u8; 4]>().prop_map(move |o| bad(format!("{}:80", Ipv4Addr::from(o)))),
        1 => not_string().prop_map(|v| Field::bad(Some(v), "userIp")),
    ]
    .boxed()
}

fn interaction(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        3 => Just(Field::absent()),
        1 => select(&INTERACTION_KINDS[..]).prop_map(|k| Field::ok(json!(k))),
    ];
    if valid_only {
        return valid.boxed();
    }
    prop_oneof![
        8 => valid,
        1 => string_of("abcdefghinrstuw", 0..=8)
            .prop_map(|s| Field::bad(Some(json!(s)), "interactionEvent")),
        1 => prop_oneof![Just(Value::Null), not_string()]
            .prop_map(|v| Field::bad(Some(v), "interactionEvent")),
    ]
    .boxed()
}

fn hook_id(valid_only: bool) -> BoxedStrategy<Field> {
    if valid_only {
        return Just(Field::absent()).boxed();
    }
    prop_oneof![
        15 => Just(Field::absent()),
        1 => json_value().prop_map(|v| Field::bad(Some(v), "hookId")),
    ]
    .boxed()
}

const EVENT_KEYS: [&str; 8] = [
    "event",
    "events",
    "id",
    "createdAt",
    "userIp",
    "interactionEvent",
    "hookId",
    "data",
];

fn context_key() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec![
            "userId",
            "sessionId",
            "userAgent",
            "user",
            "application"
        ])
        .prop_map(str::to_string),
        string_of("abcxyzABC_$", 1..=10),
    ]
    .prop_filter("not an event field", |k| !EVENT_KEYS.contains(&k.as_str()))
    .boxed()
}

#[derive(Debug, Clone)]
struct GenEvent {
    value: Value,
    bad: Vec<String>,
    caller_id: Option<String>,
}

fn gen_event(valid_only: bool) -> BoxedStrategy<GenEvent> {
    let object = (
        event_name(valid_only),
        event_id(valid_only),
        created_at(valid_only),
        user_ip(valid_only),
        interaction(valid_only),
        hook_id(valid_only),
        option::of(json_value()),
        vec((context_key(), json_value()), 0..3),
    )
        .prop_map(|(event, id, created, ip, kind, hook, data, extras)| {
            let mut obj = Map::new();
            let mut bad = Vec::new();
            let caller_id = match (&id.value, id.bad.is_empty()) {
                (Some(Value::String(s)), true) => Some(s.clone()),
                _ => None,
            };
            let named = [
                ("event", event),
                ("id", id),
                ("createdAt", created),
                ("userIp", ip),
                ("interactionEvent", kind),
                ("hookId", hook),
            ];
            for (key, field) in named {
                bad.extend(field.bad);
                if let Some(v) = field.value {
                    obj.insert(key.to_string(), v);
                }
            }
            for (k, v) in extras {
                obj.insert(k, v);
            }
            if let Some(d) = data {
                obj.insert("data".into(), d);
            }
            GenEvent {
                value: Value::Object(obj),
                bad,
                caller_id,
            }
        });
    if valid_only {
        return object.boxed();
    }
    prop_oneof![
        12 => object,
        1 => not_object().prop_map(|value| GenEvent {
            value,
            bad: vec![String::new()],
            caller_id: None,
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum IngestCase {
    Bytes(Vec<u8>),
    Mutated(Vec<u8>),
    Single(GenEvent),
    Batch {
        items: Vec<GenEvent>,
        extra: Option<(String, Value)>,
    },
    NotObject(Value),
}

/// What the handler must answer.
enum Expect {
    Accept {
        single: bool,
        ids: Vec<Option<String>>,
    },
    Reject(Vec<String>),
    /// Raw bytes: no oracle beyond "valid JSON with catalog events, or a 4xx".
    Unknown,
}

impl IngestCase {
    fn render(self) -> (Vec<u8>, Expect) {
        match self {
            IngestCase::Bytes(b) | IngestCase::Mutated(b) => (b, Expect::Unknown),
            IngestCase::NotObject(v) => (
                v.to_string().into_bytes(),
                Expect::Reject(vec![String::new()]),
            ),
            IngestCase::Single(e) => {
                let bytes = e.value.to_string().into_bytes();
                let expect = if e.bad.is_empty() {
                    Expect::Accept {
                        single: true,
                        ids: vec![e.caller_id],
                    }
                } else {
                    Expect::Reject(e.bad)
                };
                (bytes, expect)
            }
            IngestCase::Batch { items, extra } => {
                let mut bad = Vec::new();
                let mut body = Map::new();
                if let Some((k, v)) = extra {
                    bad.push(String::new());
                    body.insert(k, v);
                }
                if items.is_empty() || items.len() > 100 {
                    bad.push("events".into());
                }
                for (i, e) in items.iter().enumerate() {
                    let at = format!("events[{i}]");
                    bad.extend(e.bad.iter().map(|p| join(&at, p)));
                }
                let ids = items.iter().map(|e| e.caller_id.clone()).collect();
                body.insert(
                    "events".into(),
                    Value::Array(items.into_iter().map(|e| e.value).collect()),
                );
                let bytes = Value::Object(body).to_string().into_bytes();
                let expect = if bad.is_empty() {
                    Expect::Accept { single: false, ids }
                } else {
                    Expect::Reject(bad)
                };
                (bytes, expect)
            }
        }
    }
}

fn batch_size() -> BoxedStrategy<usize> {
    prop_oneof![8 => 1usize..=6, 1 => 95usize..=105, 1 => 106usize..=120].boxed()
}

fn ingest_case() -> BoxedStrategy<IngestCase> {
    let any_event = gen_event(false);
    let valid_event = gen_event(true);
    let valid_batch = batch_size().prop_flat_map(move |n| vec(valid_event.clone(), n));
    let mixed_batch = (vec(gen_event(true), 0..=4), vec(any_event.clone(), 0..=3))
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
        .prop_shuffle();
    let extra = (
        context_key().prop_filter("not `event`", |k| k != "event"),
        json_value(),
    );
    let edits = vec(
        (
            any::<Index>(),
            0u8..3,
            select(b"\"{}[],:\\\0\xff0 e".to_vec()),
        ),
        1..4,
    );
    let mutated = (gen_event(true), edits).prop_map(|(e, edits)| {
        let mut bytes = e.value.to_string().into_bytes();
        for (at, op, b) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => {
                    bytes.remove(i);
                }
                1 if i < bytes.len() => bytes[i] = b,
                _ => bytes.insert(i, b),
            }
        }
        IngestCase::Mutated(bytes)
    });
    let near_limit = (gen_event(true), 0usize..2048).prop_map(|(mut e, k)| {
        let size = e.value.to_string().len();
        let pad = (MAX_BODY - 1024 + k).saturating_sub(size + 14);
        e.value["padding"] = json!("p".repeat(pad));
        IngestCase::Single(e)
    });
    prop_oneof![
        1 => near_limit,
        6 => vec(any::<u8>(), 0..200).prop_map(IngestCase::Bytes),
        6 => mutated,
        12 => any_event.prop_map(IngestCase::Single),
        6 => valid_batch.prop_map(|items| IngestCase::Batch { items, extra: None }),
        6 => (mixed_batch, option::weighted(0.2, extra))
            .prop_map(|(items, extra)| IngestCase::Batch { items, extra }),
        3 => not_object().prop_map(IngestCase::NotObject),
    ]
    .boxed()
}

/// Whether `body` is an event object, or a batch of them, naming only catalog events.
fn names_only_catalog_events(body: &Value) -> bool {
    let known = |e: &Value| e["event"].as_str().is_some_and(|n| CATALOG.contains(&n));
    match body.get("events") {
        Some(Value::Array(items)) if body.get("event").is_none() => items.iter().all(known),
        _ => known(body),
    }
}

async fn check_ingest(
    client: &DeliveryClient,
    hook: &Hook,
    case: IngestCase,
) -> Result<Outcome, TestCaseError> {
    let store = MemoryStore::new();
    store.create_hook(hook).await.expect("the hook is stored");
    let queue = MemoryQueue::new(Duration::from_secs(60), 5);
    let app = app(store, queue.clone(), client, false);
    let (bytes, expect) = case.render();
    let headers = json_headers(INGEST);
    let req = request(Method::POST, "/api/events", headers, bytes.clone());
    let r = send(&app, req).await;
    if r.status != StatusCode::ACCEPTED {
        rejection(&r)?;
        prop_assert!(queue.is_empty(), "a rejected body queued jobs");
    }
    if bytes.len() > MAX_BODY {
        prop_assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        return Ok(Outcome::Rejected);
    }
    match expect {
        Expect::Unknown => {
            let parsed = serde_json::from_slice::<Value>(&bytes);
            if r.status == StatusCode::ACCEPTED {
                let body =
                    parsed.map_err(|e| fail(format!("accepted a body that is not JSON: {e}")))?;
                prop_assert!(
                    names_only_catalog_events(&body),
                    "accepted events outside the catalog: {}",
                    body
                );
                prop_assert!(!queue.is_empty(), "accepted without queueing a job");
            } else if parsed.is_err() {
                rejected_at(&r, &[String::new()])?;
            }
        }
        Expect::Reject(paths) => rejected_at(&r, &paths)?,
        Expect::Accept { single, ids } => {
            prop_assert_eq!(r.status, StatusCode::ACCEPTED, "{}", text(&r));
            let answer: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let answers = if single {
                vec![answer.clone()]
            } else {
                answer
                    .as_array()
                    .cloned()
                    .ok_or_else(|| fail(format!("a batch answer is a list: {answer}")))?
            };
            prop_assert_eq!(answers.len(), ids.len(), "{}", answer);
            for (a, id) in answers.iter().zip(&ids) {
                prop_assert_eq!(&a["deliveries"], &json!(1), "{}", answer);
                let got = a["id"].as_str().unwrap_or_default();
                match id {
                    Some(id) => prop_assert_eq!(got, id.as_str()),
                    None => prop_assert!(got.starts_with("evt_"), "{}", answer),
                }
            }
            let generated = ids.iter().filter(|i| i.is_none()).count();
            let distinct: HashSet<&String> = ids.iter().flatten().collect();
            prop_assert_eq!(
                queue.len(),
                generated + distinct.len(),
                "one job per accepted event"
            );
        }
    }
    Ok(outcome(&r, StatusCode::ACCEPTED))
}

fn outcome(r: &Answer, success: StatusCode) -> Outcome {
    if r.status == success {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// A hook subscribed to every catalog event, so each accepted event queues exactly one job.
fn subscriber() -> Hook {
    NewHook::parse(
        &json!({"name": "all", "events": CATALOG,
                "config": {"url": "https://hooks.example.com/in"}}),
        UrlPolicy { allow_http: false },
    )
    .unwrap()
    .into_hook(0)
}

#[test]
fn ingest_answers_hostile_bodies_with_202_only_when_valid() {
    let rt = runtime();
    let hook = subscriber();
    let client = DeliveryClient::from_settings(&local_settings());
    run("ingest bodies", ingest_case(), |case| {
        rt.block_on(check_ingest(&client, &hook, case))
    });
}

// ---------------------------------------------------------------------------------------------
// POST /api/hooks and PATCH /api/hooks/{id}
// ---------------------------------------------------------------------------------------------

const LOWER_DIGITS: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const TCHARS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
const RESERVED: [&str; 10] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_token(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| TCHARS.contains(c))
}

/// §6: names a hook may not set.
fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED.contains(&lower.as_str())
        || lower.starts_with("webhook-")
        || lower.starts_with("logto-signature-")
}

fn name_text(len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    string_of("abcXYZ09 -_.éü日本🙂", len)
        .prop_map(|s| match s.strip_prefix(' ') {
            Some(rest) => format!("n{rest}"),
            None => s,
        })
        .boxed()
}

const CONTROL: [char; 7] = ['\u{0}', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}'];

fn hook_name() -> BoxedStrategy<Option<Field>> {
    let bad = |v: Value| Some(Field::bad(Some(v), "name"));
    prop_oneof![
        1 => Just(None),
        16 => name_text(1..=40).prop_map(|s| Some(Field::ok(json!(s)))),
        1 => name_text(250..=256).prop_map(|s| Some(Field::ok(json!(s)))),
        1 => name_text(257..=300).prop_map(move |s| bad(json!(s))),
        1 => Just(bad(json!(""))),
        1 => string_of(" ", 1..=4).prop_map(|s| Some(Field::either(json!(s), "name"))),
        1 => (name_text(1..=20), any::<Index>(), select(CONTROL.to_vec()))
            .prop_map(|(s, at, c)| {
                let mut chars: Vec<char> = s.chars().collect();
                chars.insert(at.index(chars.len() + 1), c);
                Some(Field::either(json!(String::from_iter(chars)), "name"))
            }),
        1 => prop_oneof![Just(Value::Null), not_string()].prop_map(bad),
    ]
    .boxed()
}

fn hook_events() -> BoxedStrategy<Option<Field>> {
    let valid = subsequence(&CATALOG[..], 1..=CATALOG.len()).prop_shuffle();
    let junk = prop_oneof![
        (select(&CATALOG[..]), 0..3u8).prop_map(|(n, how)| match how {
            0 => json!(n.to_lowercase()),
            1 => json!(format!(" {n}")),
            _ => json!(n.replace('.', "")),
        }),
        not_string(),
        Just(Value::Null),
    ];
    let corrupted = (
        valid.clone(),
        any::<Index>(),
        prop_oneof![junk.prop_map(Some), Just(None)],
    )
        .prop_map(|(names, at, item)| {
            let mut items: Vec<Value> = names.iter().map(|n| json!(n)).collect();
            let i = at.index(items.len() + 1);
            let item = item.unwrap_or_else(|| json!(names[at.index(names.len())]));
            items.insert(i, item);
            let mut seen = HashSet::new();
            let bad = items
                .iter()
                .enumerate()
                .filter(|(_, v)| {
                    let known = v.as_str().filter(|n| CATALOG.contains(n));
                    !known.is_some_and(|n| seen.insert(n.to_string()))
                })
                .map(|(i, _)| format!("events[{i}]"))
                .collect();
            Some(Field {
                value: Some(Value::Array(items)),
                bad,
                either: Vec::new(),
            })
        });
    prop_oneof![
        1 => Just(None),
        16 => valid.prop_map(|n| Some(Field::ok(json!(n)))),
        2 => corrupted,
        1 => Just(Some(Field::bad(Some(json!([])), "events"))),
        1 => prop_oneof![
            Just(Value::Null),
            Just(json!("PostSignIn")),
            not_string().prop_filter("not an array", |v| !v.is_array()),
        ]
        .prop_map(|v| Some(Field::bad(Some(v), "events"))),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct UrlParts {
    scheme: &'static str,
    userinfo: &'static str,
    host: String,
    port: &'static str,
    path: String,
    query: &'static str,
    fragment: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Either,
    Bad,
}

impl UrlParts {
    fn text(&self) -> String {
        let sep = if self.scheme.is_empty() { "//" } else { "://" };
        format!(
            "{}{sep}{}{}{}{}{}{}",
            self.scheme, self.userinfo, self.host, self.port, self.path, self.query, self.fragment
        )
    }

    fn level(&self, allow_http: bool) -> Level {
        let scheme = match self.scheme.to_ascii_lowercase().as_str() {
            "https" => Level::Ok,
            "http" if allow_http => Level::Ok,
            _ => Level::Bad,
        };
        let userinfo = match self.userinfo {
            "" => Level::Ok,
            "@" => Level::Either,
            _ => Level::Bad,
        };
        let host = match self.host.as_str() {
            "" => Level::Either,
            "exa mple.com" | "[::1" | "ex<ample.com" | "999.999.1.1" => Level::Bad,
            _ => Level::Ok,
        };
        let port = match self.port {
            ":65536" | ":abc" => Level::Bad,
            ":0" => Level::Either,
            _ => Level::Ok,
        };
        let fragment = if self.fragment.is_empty() {
            Level::Ok
        } else {
            Level::Bad
        };
        let length = if self.text().len() > 2048 {
            Level::Either
        } else {
            Level::Ok
        };
        [scheme, userinfo, host, port, fragment, length]
            .into_iter()
            .max()
            .unwrap_or(Level::Ok)
    }
}

fn url_parts() -> BoxedStrategy<UrlParts> {
    let scheme = prop_oneof![
        10 => select(vec!["https", "HTTPS", "Https"]),
        3 => select(vec!["http", "HTTP"]),
        2 => select(vec!["ftp", "ws", "file", "javascript", ""]),
    ];
    let userinfo = prop_oneof![
        16 => Just(""),
        1 => select(vec!["user@", "user:secret@", ":secret@", "@"]),
    ];
    let host = prop_oneof![
        12 => select(vec![
            "hooks.example.com", "127.0.0.1", "[::1]", "sub.domain.example",
            "xn--bcher-kva.example", "bücher.example", "LOCALHOST",
        ])
        .prop_map(str::to_string),
        6 => (string_of(LOWER_DIGITS, 1..=12), select(vec![".com", ".example", ""]))
            .prop_map(|(a, b)| format!("h{a}{b}")),
        1 => select(vec!["", "exa mple.com", "[::1", "ex<ample.com", "999.999.1.1"])
            .prop_map(str::to_string),
    ];
    let port = prop_oneof![
        12 => Just(""),
        1 => select(vec![":443", ":8080", ":65535", ":0", ":65536", ":abc"]),
    ];
    let path = prop_oneof![
        20 => vec(string_of("abcXYZ019_-", 0..=8), 0..=3)
            .prop_map(|s| format!("/{}", s.join("/"))),
        1 => Just(format!("/{}", "p".repeat(2100))),
    ];
    let query = select(vec!["", "", "?a=1&b=two"]);
    let fragment = prop_oneof![16 => Just(""), 1 => select(vec!["#frag", "#"])];
    (scheme, userinfo, host, port, path, query, fragment)
        .prop_map(
            |(scheme, userinfo, host, port, path, query, fragment)| UrlParts {
                scheme,
                userinfo,
                host,
                port,
                path,
                query,
                fragment,
            },
        )
        .boxed()
}

fn header_name() -> BoxedStrategy<String> {
    prop_oneof![
        6 => string_of(TCHARS, 1..=20),
        3 => select(vec!["x-api-key", "Authorization", "User-Agent", "X-Tenant", "x-a"])
            .prop_map(str::to_string),
        2 => (select(vec![
            "host", "content-length", "connection", "keep-alive", "proxy-authenticate",
            "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
            "webhook-id", "webhook-signature", "webhook-timestamp", "logto-signature-sha-256",
            "content-type", "proxy-connection",
        ]), any::<bool>())
            .prop_map(|(n, upper)| if upper { n.to_ascii_uppercase() } else { n.to_string() }),
        1 => select(vec!["bad name", "x:y", "", "ü-key", "x\u{0}y", "(paren)", "x\r\ny"])
            .prop_map(str::to_string),
        1 => Just("t".repeat(300)),
    ]
    .boxed()
}

fn header_value() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => printable(0..=24).prop_map(Value::from),
        1 => (printable(0..=8), select(vec!["\r", "\n", "\r\n", "\r\nx-injected: 1"]))
            .prop_map(|(a, b)| json!(format!("{a}{b}"))),
        1 => (printable(0..=8), select(vec!['\u{0}', '\u{1}', '\t', '\u{7f}', 'é']))
            .prop_map(|(a, c)| json!(format!("{a}{c}"))),
        1 => Just(json!("v".repeat(4097))),
        1 => prop_oneof![Just(Value::Null), not_string()],
    ]
    .boxed()
}

/// The value's verdict per §6: a string without CR/LF; other oddities are the spec's silence.
fn header_value_level(v: &Value) -> Level {
    match v {
        Value::String(s) if s.contains(['\r', '\n']) => Level::Bad,
        Value::String(s)
            if s.len() > 4096 || s.chars().any(|c| c.is_control() || !c.is_ascii()) =>
        {
            Level::Either
        }
        Value::String(_) => Level::Ok,
        _ => Level::Bad,
    }
}

fn header_name_level(name: &str) -> Level {
    let lower = name.to_ascii_lowercase();
    if is_token(name) && name.len() > 256 {
        Level::Either
    } else if !is_token(name) || is_reserved(name) {
        Level::Bad
    } else if lower == "content-type" || lower == "proxy-connection" {
        Level::Either
    } else {
        Level::Ok
    }
}

#[derive(Debug, Clone)]
enum HeadersGen {
    Absent,
    Null,
    WrongType(Value),
    Map(Vec<(String, Value)>),
}

fn headers_gen() -> BoxedStrategy<HeadersGen> {
    let entry = (header_name(), header_value());
    let plain = (string_of("abcdefgh-", 1..=10), printable(0..=12))
        .prop_map(|(n, v)| (format!("x-{n}"), Value::from(v)));
    prop_oneof![
        6 => Just(HeadersGen::Absent),
        1 => Just(HeadersGen::Null),
        1 => prop_oneof![
            Just(json!([["x-a", "1"]])),
            Just(json!("x-a: 1")),
            not_string().prop_filter("not an object", |v| !v.is_object()),
        ]
            .prop_map(HeadersGen::WrongType),
        8 => vec(plain.clone(), 0..=4).prop_map(HeadersGen::Map),
        3 => vec(entry, 1..=4).prop_map(HeadersGen::Map),
        1 => vec(plain, 18..=24).prop_map(HeadersGen::Map),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum ConfigGen {
    WrongType(Value),
    Object {
        url: Option<Result<Box<UrlParts>, Value>>,
        headers: HeadersGen,
        extra: Option<(String, Value)>,
    },
}

fn odd_key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => string_of("abcxyzABC_$", 1..=12),
        1 => any_text(0..=4),
    ]
    .boxed()
}

fn config_gen() -> BoxedStrategy<Option<ConfigGen>> {
    let url = prop_oneof![
        24 => url_parts().prop_map(|p| Some(Ok(Box::new(p)))),
        1 => Just(None),
        1 => not_string().prop_map(|v| Some(Err(v))),
    ];
    let extra = option::weighted(
        0.05,
        (
            prop_oneof![Just("retries".to_string()), odd_key()]
                .prop_filter("not url or headers", |k| k != "url" && k != "headers"),
            json_value(),
        ),
    );
    let object = (url, headers_gen(), extra).prop_map(|(url, headers, extra)| {
        Some(ConfigGen::Object {
            url,
            headers,
            extra,
        })
    });
    prop_oneof![
        1 => Just(None),
        20 => object,
        1 => prop_oneof![
            Just(Value::Null),
            Just(json!("https://hooks.example.com")),
            not_string().prop_filter("not an object", |v| !v.is_object()),
        ]
            .prop_map(|v| Some(ConfigGen::WrongType(v))),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct HookInput {
    name: Option<Field>,
    events: Option<Field>,
    config: Option<ConfigGen>,
    enabled: Option<Value>,
    signing_key: Option<Value>,
    extra: Option<String>,
}

#[derive(Debug, Clone)]
enum HookBody {
    Object(HookInput),
    Truncated(HookInput, Index),
    Empty,
    NotObject(Value),
}

#[derive(Debug, Clone)]
struct HookCase {
    patch: bool,
    allow_http: bool,
    body: HookBody,
}

const HOOK_FIELDS: [&str; 5] = ["name", "events", "config", "enabled", "signingKey"];
const SERVER_FIELDS: [&str; 5] = [
    "id",
    "createdAt",
    "updatedAt",
    "executionStats",
    "disabledReason",
];

fn hook_input() -> BoxedStrategy<HookInput> {
    let enabled = prop_oneof![
        3 => Just(None),
        3 => any::<bool>().prop_map(|b| Some(json!(b))),
        1 => select(vec![Value::Null, json!("yes"), json!(1), json!("true")]).prop_map(Some),
    ];
    let signing_key = prop_oneof![
        16 => Just(None),
        1 => Just(Some(Value::Null)),
        2 => printable(24..=64).prop_map(|k| Some(json!(k))),
        1 => printable(1..=23).prop_map(|k| Some(json!(k))),
        1 => (printable(12..=20), printable(12..=20))
            .prop_map(|(a, b)| Some(json!(format!("{a} {b}")))),
        1 => not_string().prop_map(Some),
    ];
    let extra = option::weighted(
        0.05,
        prop_oneof![
            select(&SERVER_FIELDS[..]).prop_map(str::to_string),
            odd_key()
        ]
        .prop_filter("not a hook field", |k| !HOOK_FIELDS.contains(&k.as_str())),
    );
    (
        hook_name(),
        hook_events(),
        config_gen(),
        enabled,
        signing_key,
        extra,
    )
        .prop_map(
            |(name, events, config, enabled, signing_key, extra)| HookInput {
                name,
                events,
                config,
                enabled,
                signing_key,
                extra,
            },
        )
        .boxed()
}

fn hook_case() -> BoxedStrategy<HookCase> {
    let body = prop_oneof![
        24 => hook_input().prop_map(HookBody::Object),
        1 => (hook_input(), any::<Index>()).prop_map(|(h, i)| HookBody::Truncated(h, i)),
        1 => Just(HookBody::Empty),
        1 => not_object().prop_map(HookBody::NotObject),
    ];
    (any::<bool>(), any::<bool>(), body)
        .prop_map(|(patch, allow_http, body)| HookCase {
            patch,
            allow_http,
            body,
        })
        .boxed()
}

/// What a 2xx answer must show: the fields as given (`None`: left as they were).
#[derive(Debug, Default)]
struct Wanted {
    name: Option<Value>,
    events: Option<Value>,
    config: Option<(String, Map<String, Value>)>,
    enabled: Option<Value>,
    signing_key: Option<Value>,
}

#[derive(Debug, Default)]
struct Verdicts {
    bad: Vec<String>,
    either: Vec<String>,
}

impl Verdicts {
    fn add(&mut self, level: Level, path: String) {
        match level {
            Level::Ok => {}
            Level::Either => self.either.push(path),
            Level::Bad => self.bad.push(path),
        }
    }

    fn field(&mut self, f: Field) -> Option<Value> {
        self.bad.extend(f.bad);
        self.either.extend(f.either);
        f.value
    }
}

impl HookInput {
    fn render(self, patch: bool, allow_http: bool) -> (Map<String, Value>, Verdicts, Wanted) {
        let mut body = Map::new();
        let mut v = Verdicts::default();
        let mut wanted = Wanted::default();
        let required = |v: &mut Verdicts, name: &str| {
            if !patch {
                v.add(Level::Bad, name.to_string());
            }
        };
        match self.name {
            None => required(&mut v, "name"),
            Some(f) => {
                let value = v.field(f).unwrap_or(Value::Null);
                wanted.name = Some(value.clone());
                body.insert("name".into(), value);
            }
        }
        match self.events {
            None => required(&mut v, "events"),
            Some(f) => {
                let value = v.field(f).unwrap_or(Value::Null);
                wanted.events = Some(value.clone());
                body.insert("events".into(), value);
            }
        }
        match self.config {
            None => required(&mut v, "config"),
            Some(ConfigGen::WrongType(value)) => {
                v.add(Level::Bad, "config".into());
                body.insert("config".into(), value);
            }
            Some(ConfigGen::Object {
                url,
                headers,
                extra,
            }) => {
                let mut config = Map::new();
                let url_text = match url {
                    None => {
                        v.add(Level::Bad, "config.url".into());
                        String::new()
                    }
                    Some(Err(value)) => {
                        v.add(Level::Bad, "config.url".into());
                        config.insert("url".into(), value);
                        String::new()
                    }
                    Some(Ok(parts)) => {
                        v.add(parts.level(allow_http), "config.url".into());
                        config.insert("url".into(), json!(parts.text()));
                        parts.text()
                    }
                };
                let mut given = Map::new();
                match headers {
                    HeadersGen::Absent => {}
                    HeadersGen::Null => {
                        config.insert("headers".into(), Value::Null);
                    }
                    HeadersGen::WrongType(value) => {
                        v.add(Level::Bad, "config.headers".into());
                        config.insert("headers".into(), value);
                    }
                    HeadersGen::Map(entries) => {
                        let mut seen: Vec<String> = Vec::new();
                        for (name, value) in entries {
                            if given.contains_key(&name) {
                                continue;
                            }
                            let path = format!("config.headers.{}", shown(&name));
                            let mut level =
                                header_name_level(&name).max(header_value_level(&value));
                            if seen.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                                level = level.max(Level::Either);
                            }
                            if level != Level::Ok && shown(&name).is_empty() {
                                v.add(level, "config.headers".into());
                            }
                            v.add(level, path);
                            seen.push(name.clone());
                            given.insert(name, value);
                        }
                        if given.len() > 20 {
                            v.add(Level::Bad, "config.headers".into());
                        }
                        config.insert("headers".into(), Value::Object(given.clone()));
                    }
                }
                if let Some((key, value)) = extra {
                    let level = if key == "retries" {
                        Level::Either
                    } else {
                        Level::Bad
                    };
                    v.add(level, join("config", &shown(&key)));
                    config.insert(key, value);
                }
                wanted.config = Some((url_text, given));
                body.insert("config".into(), Value::Object(config));
            }
        }
        if let Some(value) = self.enabled {
            let level = match &value {
                Value::Bool(_) => Level::Ok,
                Value::Null if !patch => Level::Ok,
                Value::Null => Level::Either,
                _ => Level::Bad,
            };
            v.add(level, "enabled".into());
            wanted.enabled = Some(value.clone());
            body.insert("enabled".into(), value);
        }
        if let Some(value) = self.signing_key {
            let level = match &value {
                _ if patch => Level::Either,
                Value::Null => Level::Ok,
                Value::String(k) if k.chars().count() < 24 => Level::Bad,
                Value::String(k) if k.chars().all(|c| c.is_ascii_graphic()) => Level::Ok,
                Value::String(_) => Level::Either,
                _ => Level::Bad,
            };
            v.add(level, "signingKey".into());
            wanted.signing_key = Some(value.clone());
            body.insert("signingKey".into(), value);
        }
        if let Some(key) = self.extra {
            let level = if SERVER_FIELDS.contains(&key.as_str()) {
                Level::Either
            } else {
                Level::Bad
            };
            v.add(level, shown(&key));
            body.insert(key, json!("extra"));
        }
        (body, v, wanted)
    }
}

impl HookCase {
    fn render(self) -> (Vec<u8>, Verdicts, Wanted) {
        let (patch, allow_http) = (self.patch, self.allow_http);
        match self.body {
            HookBody::Object(input) => {
                let (body, v, wanted) = input.render(patch, allow_http);
                (Value::Object(body).to_string().into_bytes(), v, wanted)
            }
            HookBody::Truncated(input, at) => {
                let (body, _, _) = input.render(patch, allow_http);
                let mut bytes = Value::Object(body).to_string().into_bytes();
                bytes.truncate(1 + at.index(bytes.len() - 1));
                let v = Verdicts {
                    bad: vec![String::new()],
                    either: Vec::new(),
                };
                (bytes, v, Wanted::default())
            }
            HookBody::Empty => {
                let mut v = Verdicts::default();
                if patch {
                    v.either.push(String::new());
                } else {
                    v.bad = ["", "name", "events", "config"].map(String::from).to_vec();
                }
                (Vec::new(), v, Wanted::default())
            }
            HookBody::NotObject(value) => {
                let v = Verdicts {
                    bad: vec![String::new()],
                    either: Vec::new(),
                };
                (value.to_string().into_bytes(), v, Wanted::default())
            }
        }
    }
}

/// §6's rules for a stored hook, checked without the product's parsers.
fn check_hook_rules(h: &Value, allow_http: bool) -> TestCaseResult {
    prop_assert!(h["id"].as_str().is_some_and(|id| !id.is_empty()), "{}", h);
    let name = h["name"].as_str().unwrap_or_default();
    prop_assert!(
        (1..=256).contains(&name.chars().count()),
        "name of {} chars",
        name.chars().count()
    );
    let events = h["events"].as_array().cloned().unwrap_or_default();
    prop_assert!(!events.is_empty(), "no events: {}", h);
    let mut seen = HashSet::new();
    for e in &events {
        let e = e.as_str().unwrap_or_default();
        prop_assert!(CATALOG.contains(&e), "event `{}` is not in the catalog", e);
        prop_assert!(seen.insert(e), "event `{}` is repeated", e);
    }
    let url = h["config"]["url"].as_str().unwrap_or_default();
    let parsed = url::Url::parse(url).map_err(|e| fail(format!("url `{url}`: {e}")))?;
    prop_assert!(
        parsed.scheme() == "https" || (allow_http && parsed.scheme() == "http"),
        "url `{}`",
        url
    );
    prop_assert!(parsed.host().is_some(), "url `{}` has no host", url);
    prop_assert!(
        parsed.username().is_empty() && parsed.password().is_none(),
        "url `{}` carries credentials",
        url
    );
    prop_assert!(parsed.fragment().is_none(), "url `{}` has a fragment", url);
    let headers = h["config"]["headers"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    prop_assert!(headers.len() <= 20, "{} headers", headers.len());
    for (n, v) in &headers {
        prop_assert!(is_token(n), "header name `{}` is not a token", n);
        prop_assert!(!is_reserved(n), "header `{}` is reserved", n);
        let v = v
            .as_str()
            .ok_or_else(|| fail(format!("header `{n}` is not a string")))?;
        prop_assert!(!v.contains(['\r', '\n']), "header `{}` has CR/LF", n);
    }
    prop_assert!(
        h["signingKey"]
            .as_str()
            .is_some_and(|k| k.chars().count() >= 24),
        "{}",
        h
    );
    prop_assert!(h["enabled"].is_boolean(), "{}", h);
    prop_assert!(h["createdAt"].is_i64() && h["updatedAt"].is_i64(), "{}", h);
    Ok(())
}

/// The answer shows what was asked for, and `base`'s values for everything else.
fn check_reflects(h: &Value, wanted: &Wanted, base: Option<&Value>) -> TestCaseResult {
    let keep = |field: &str| base.map(|b| b[field].clone());
    if let Some(name) = wanted.name.clone().or_else(|| keep("name")) {
        prop_assert_eq!(&h["name"], &name);
    }
    if let Some(events) = wanted.events.clone().or_else(|| keep("events")) {
        prop_assert_eq!(&h["events"], &events);
    }
    match (&wanted.config, base) {
        (Some((url, headers)), _) => {
            let normalized =
                url::Url::parse(url).map_err(|e| fail(format!("accepted url `{url}`: {e}")))?;
            prop_assert_eq!(h["config"]["url"].as_str(), Some(normalized.as_str()));
            prop_assert_eq!(&h["config"]["headers"], &Value::Object(headers.clone()));
        }
        (None, Some(base)) => prop_assert_eq!(&h["config"], &base["config"]),
        (None, None) => {}
    }
    match (&wanted.enabled, base) {
        (Some(Value::Bool(b)), _) => prop_assert_eq!(&h["enabled"], &json!(b)),
        (Some(_) | None, Some(base)) => prop_assert_eq!(&h["enabled"], &base["enabled"]),
        (Some(_) | None, None) => prop_assert_eq!(&h["enabled"], &json!(true)),
    }
    match (&wanted.signing_key, base) {
        (_, Some(base)) => prop_assert_eq!(&h["signingKey"], &base["signingKey"]),
        (Some(Value::String(k)), None) => {
            prop_assert_eq!(h["signingKey"].as_str(), Some(k.as_str()))
        }
        (_, None) => prop_assert!(
            h["signingKey"]
                .as_str()
                .is_some_and(|k| k.starts_with("whsec_")),
            "{}",
            h
        ),
    }
    if let Some(base) = base {
        prop_assert_eq!(&h["id"], &base["id"]);
        prop_assert_eq!(&h["createdAt"], &base["createdAt"]);
    }
    Ok(())
}

struct HookRig {
    client: DeliveryClient,
    base: Hook,
}

async fn check_hooks(rig: &HookRig, case: HookCase) -> Result<Outcome, TestCaseError> {
    let (patch, allow_http) = (case.patch, case.allow_http);
    let store = MemoryStore::new();
    let queue = MemoryQueue::new(Duration::from_secs(60), 5);
    let app = app(store.clone(), queue, &rig.client, allow_http);
    let base = webhooks::api::views::hook_json(&rig.base);
    let base_path = format!("/api/hooks/{}", rig.base.id);
    if patch {
        store
            .create_hook(&rig.base)
            .await
            .expect("the hook is stored");
    }
    let (bytes, verdicts, wanted) = case.render();
    let (method, path) = if patch {
        (Method::PATCH, base_path.as_str())
    } else {
        (Method::POST, "/api/hooks")
    };
    let r = send(&app, request(method, path, json_headers(ADMIN), bytes)).await;
    let success = if patch {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    if r.status == success {
        prop_assert!(
            verdicts.bad.is_empty(),
            "accepted although {:?} are invalid: {}",
            verdicts.bad,
            text(&r)
        );
        let hook: Value = serde_json::from_slice(&r.body)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        check_hook_rules(&hook, allow_http)?;
        check_reflects(&hook, &wanted, patch.then_some(&base))?;
        let id = hook["id"].as_str().unwrap_or_default();
        let path = format!("/api/hooks/{id}");
        let get = request(Method::GET, &path, json_headers(ADMIN), Vec::new());
        let stored = send(&app, get).await;
        prop_assert_eq!(stored.status, StatusCode::OK);
        prop_assert_eq!(stored.body_json(), hook);
        return Ok(Outcome::Accepted);
    }
    prop_assert!(
        !verdicts.bad.is_empty() || !verdicts.either.is_empty(),
        "a valid body was refused with {}: {}",
        r.status,
        text(&r)
    );
    let allowed: Vec<String> = verdicts.bad.into_iter().chain(verdicts.either).collect();
    rejected_at(&r, &allowed)?;
    let (path, expected) = if patch {
        (base_path.as_str(), base)
    } else {
        ("/api/hooks", json!([]))
    };
    let after = send(
        &app,
        request(Method::GET, path, json_headers(ADMIN), Vec::new()),
    )
    .await;
    prop_assert_eq!(
        after.body_json(),
        expected,
        "a rejected body changed the store"
    );
    Ok(Outcome::Rejected)
}

fn local_settings() -> Settings {
    Settings::from_lookup(Defaults::local(), |_| None).unwrap()
}

#[test]
fn hook_bodies_are_validated_field_by_field() {
    let rt = runtime();
    let rig = HookRig {
        client: DeliveryClient::from_settings(&local_settings()),
        base: NewHook::parse(
            &json!({"name": "base", "events": ["PostSignIn"],
                    "config": {"url": "https://hooks.example.com/base",
                               "headers": {"x-base": "1"}}}),
            UrlPolicy { allow_http: false },
        )
        .unwrap()
        .into_hook(1),
    };
    run("hook bodies", hook_case(), |case| {
        rt.block_on(check_hooks(&rig, case))
    });
}

// ---------------------------------------------------------------------------------------------
// Authorization and Content-Type
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    Ingest,
}

/// RFC 7235 `Bearer <token>`: the scheme case-insensitive, separated by spaces.
fn role_of(header: Option<&[u8]>) -> Option<Role> {
    let raw = header?;
    if !raw.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\t') {
        return None;
    }
    let s = std::str::from_utf8(raw).ok()?.trim_matches([' ', '\t']);
    let (scheme, token) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    match token.trim_matches([' ', '\t']) {
        ADMIN => Some(Role::Admin),
        INGEST => Some(Role::Ingest),
        _ => None,
    }
}

#[derive(Debug, Clone)]
enum ContentType {
    Missing,
    Json(&'static str),
    Other(&'static str),
    Unclear(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
enum Route {
    PostEvent,
    ListHooks,
    CreateHook,
    Catalog,
}

#[derive(Debug, Clone)]
struct HeaderCase {
    auth: Option<Vec<u8>>,
    content_type: ContentType,
    route: Route,
}

fn auth_header() -> BoxedStrategy<Option<Vec<u8>>> {
    let scheme = prop_oneof![
        3 => select(vec!["Bearer", "bearer", "BEARER", "bEaReR"]),
        1 => select(vec!["Basic", "Token", "", "Bearer:", "Bearer\u{0}"]),
    ];
    let separator = prop_oneof![
        3 => select(vec![" ", "  ", " \t"]),
        1 => select(vec!["\t", ""]),
    ];
    let token = prop_oneof![
        3 => select(vec![ADMIN, ADMIN, INGEST]),
        1 => select(vec![
            "",
            "wrong",
            "hostile-admin-tokenx",
            "xhostile-admin-token",
            "HOSTILE-ADMIN-TOKEN",
            "hostile-admin-token hostile-admin-token",
            "hostile-ingest-toke",
        ]),
    ];
    let padding = select(vec!["", "", " ", "\t"]);
    let composed = (padding.clone(), scheme, separator, token, padding).prop_map(
        |(a, scheme, sep, token, b)| Some(format!("{a}{scheme}{sep}{token}{b}").into_bytes()),
    );
    let spliced = (
        select(vec![ADMIN, INGEST]),
        any::<Index>(),
        prop_oneof![any::<u8>(), 0x80u8..=0xff],
    )
        .prop_map(|(token, at, b)| {
            let mut bytes = format!("Bearer {token}").into_bytes();
            bytes.insert(7 + at.index(token.len() + 1), b);
            Some(bytes)
        });
    prop_oneof![
        1 => Just(None),
        12 => composed,
        2 => spliced,
        2 => vec(any::<u8>(), 0..48).prop_map(Some),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<ContentType> {
    prop_oneof![
        2 => Just(ContentType::Missing),
        6 => select(vec![
            "application/json", "Application/JSON", "application/json; charset=utf-8",
            "application/json;charset=UTF-8", " application/json ", "application/cloudevents+json",
            "application/vnd.api+json",
        ]).prop_map(ContentType::Json),
        3 => select(vec![
            "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "", "application/jsonx", "json", "application/xml", "application/json-patch",
        ]).prop_map(ContentType::Other),
        2 => prop_oneof![
            vec(any::<u8>(), 0..40),
            any::<u8>().prop_map(|b| [b"application/json".as_slice(), &[b]].concat()),
        ].prop_map(ContentType::Unclear),
    ]
    .boxed()
}

fn header_case() -> BoxedStrategy<HeaderCase> {
    (
        auth_header(),
        content_type(),
        select(vec![
            Route::PostEvent,
            Route::ListHooks,
            Route::CreateHook,
            Route::Catalog,
        ]),
    )
        .prop_map(|(auth, content_type, route)| HeaderCase {
            auth,
            content_type,
            route,
        })
        .boxed()
}

async fn check_headers(
    client: &DeliveryClient,
    hook: &Hook,
    case: HeaderCase,
) -> Result<Outcome, TestCaseError> {
    let store = MemoryStore::new();
    store.create_hook(hook).await.expect("the hook is stored");
    let queue = MemoryQueue::new(Duration::from_secs(60), 5);
    let mut headers = HeaderMap::new();
    let auth = case
        .auth
        .as_deref()
        .and_then(|b| HeaderValue::from_bytes(b).ok());
    let sent_auth = auth.as_ref().map(HeaderValue::as_bytes);
    if let Some(v) = &auth {
        headers.insert(AUTHORIZATION, v.clone());
    }
    let json_ok = match &case.content_type {
        ContentType::Missing => Some(true),
        ContentType::Json(_) => Some(true),
        ContentType::Other(_) => Some(false),
        ContentType::Unclear(_) => None,
    };
    let ct = match &case.content_type {
        ContentType::Missing => None,
        ContentType::Json(s) | ContentType::Other(s) => Some(s.as_bytes()),
        ContentType::Unclear(b) => Some(b.as_slice()),
    };
    let json_ok = match ct.map(HeaderValue::from_bytes) {
        Some(Ok(v)) => {
            headers.insert(CONTENT_TYPE, v);
            json_ok
        }
        Some(Err(_)) | None => Some(true),
    };
    let (method, path, body, need_admin, reads_body) = match case.route {
        Route::PostEvent => (
            Method::POST,
            "/api/events",
            json!({"event": "PostSignIn"}),
            false,
            true,
        ),
        Route::ListHooks => (Method::GET, "/api/hooks", Value::Null, true, false),
        Route::Catalog => (Method::GET, "/api/hook-events", Value::Null, true, false),
        Route::CreateHook => (
            Method::POST,
            "/api/hooks",
            json!({"name": "h", "events": ["PostSignIn"],
                   "config": {"url": "https://hooks.example.com/h"}}),
            true,
            true,
        ),
    };
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let req = request(method, path, headers, body);
    let r = send(&app(store, queue, client, false), req).await;
    let role = role_of(sent_auth);
    let success = match case.route {
        Route::PostEvent => StatusCode::ACCEPTED,
        Route::CreateHook => StatusCode::CREATED,
        Route::ListHooks | Route::Catalog => StatusCode::OK,
    };
    match (role, need_admin) {
        (None, _) => {
            prop_assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", text(&r));
            prop_assert_eq!(
                r.headers.get(WWW_AUTHENTICATE).map(HeaderValue::as_bytes),
                Some(b"Bearer".as_slice())
            );
            rejection(&r)?;
        }
        (Some(Role::Ingest), true) => {
            prop_assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
            rejection(&r)?;
        }
        (Some(_), _) => match (reads_body, json_ok) {
            (false, _) | (true, Some(true)) => prop_assert_eq!(r.status, success, "{}", text(&r)),
            (true, Some(false)) => {
                prop_assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", text(&r));
                rejection(&r)?;
            }
            (true, None) => {
                if r.status != success {
                    prop_assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", text(&r));
                    rejection(&r)?;
                }
            }
        },
    }
    Ok(outcome(&r, success))
}

#[test]
fn authorization_and_content_type_headers_are_checked_in_order() {
    let rt = runtime();
    let client = DeliveryClient::from_settings(&local_settings());
    let hook = subscriber();
    run("auth and content-type headers", header_case(), |case| {
        rt.block_on(check_headers(&client, &hook, case))
    });
}
