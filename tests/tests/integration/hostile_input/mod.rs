//! Hostile input against the real handlers (§3, §6, §7): arbitrary bytes, structured but wrong
//! JSON and odd headers never panic, are always answered with a JSON 4xx naming the problem,
//! and are accepted only when every rule holds, as re-checked here independently.

use crate::support::{ADMIN, Answer, INGEST, local_settings, send, tokens};
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
use webhooks::adapters::sqlite::SqliteQueue;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::api::bodies::NewHook;
use webhooks::api::{Api, router};
use webhooks::domain::hook::{Hook, UrlPolicy};
use webhooks::net::client::DeliveryClient;
use webhooks::ports::HookStore;

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
    store: Arc<SqliteStore>,
    queue: Arc<SqliteQueue>,
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
    let field = body["data"]["field"]
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

/// A JSON key as error paths show it: without control characters or whitespace.
fn shown(key: &str) -> String {
    key.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
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

mod auth_headers;
mod hook_bodies;
mod ingest_bodies;
