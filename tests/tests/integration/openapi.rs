//! docs/openapi.yaml checked against the handlers that serve it: routes, methods, statuses,
//! event names, error codes and response shapes are compared with what the real handlers
//! answer, so the published document cannot drift from the product.

use crate::support::{ADMIN, Answer, INGEST, send, settings, tokens};
use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use http::{HeaderValue, Method, Request};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use webhooks::adapters::sqlite::SqliteQueue;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::api::{Api, ApiError, router};
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{Attempt, Delivery, DeliveryId, DeliveryStatus, ErrorKind};
use webhooks::domain::event::{EventId, MAX_BODY_BYTES};
use webhooks::domain::hook::HookId;
use webhooks::domain::validation::ValidationError;
use webhooks::net::client::DeliveryClient;
use webhooks::ports::DeliveryLog;
use webhooks_tests::receiver::Receiver;
use webhooks_tests::verifiers::python;

/// Every method a client could send; the ones a path does not document must be refused.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

fn doc_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml")
}

pub(crate) fn doc() -> Value {
    let path = doc_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML of JSON values: {e}", path.display()))
}

/// One documented operation.
struct Operation {
    method: Method,
    template: String,
    op: Value,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut out = Vec::new();
    for (template, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method.to_ascii_lowercase()) {
                out.push(Operation {
                    method: Method::from_bytes(method.as_bytes()).unwrap(),
                    template: template.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    assert!(!out.is_empty(), "the document has no operations");
    out
}

fn operation<'a>(ops: &'a [Operation], method: &Method, template: &str) -> &'a Operation {
    ops.iter()
        .find(|o| o.method == *method && o.template == template)
        .unwrap_or_else(|| panic!("{method} {template} is not documented"))
}

/// Follows `$ref`s (local JSON pointers) until a value without one.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => value = pointer(doc, r).unwrap_or_else(|| panic!("{r} does not resolve")),
            None => return value,
        }
    }
    panic!("$ref chain too long (a cycle?)");
}

fn pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let fragment = reference.strip_prefix('#')?;
    doc.pointer(fragment)
}

/// The template with its parameters filled in.
fn fill(template: &str, hook: &str, delivery: &str) -> String {
    template
        .replace("{id}", hook)
        .replace("{deliveryId}", delivery)
        .replace("{recoveryId}", "rcv_01JAAAAAAAAAAAAAAAAAAAAAAA")
}

/// Whether `path` is an instance of `template` (`{name}` matches one segment).
fn instance_of(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

/// The router every entry point serves, on the embedded store and queue.
fn api() -> (Router, Arc<SqliteStore>) {
    let store = SqliteStore::in_memory();
    let queue = SqliteQueue::in_memory(Duration::from_secs(60), 5);
    let settings = settings("1s");
    let client = DeliveryClient::from_settings(&settings);
    let api = Api::new(store.clone(), queue, client, tokens(), &settings);
    (router(api), store)
}

fn request(method: &Method, path: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut req = Request::builder().method(method.clone()).uri(path);
    if let Some(token) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if !body.is_empty() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    req.body(Body::from(body.to_string())).unwrap()
}

async fn call(
    api: &Router,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Answer {
    send(api, request(method, path, token, body)).await
}

fn code(r: &Answer) -> String {
    r.body_json()["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A route-level refusal: the path is not served, or not with this method. Answers to HEAD
/// have no body, so only their status tells.
fn is_route_refusal(method: &Method, r: &Answer) -> bool {
    let expected = match r.status.as_u16() {
        404 => "route.not_found",
        405 => "route.method_not_allowed",
        _ => return false,
    };
    if method == Method::HEAD {
        r.body.is_empty()
    } else {
        code(r) == expected
    }
}

/// The methods a 405 answer lists in `Allow`.
fn allowed(r: &Answer) -> BTreeSet<String> {
    r.headers
        .get(http::header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|m| m.trim().to_string()).collect())
        .unwrap_or_default()
}

async fn create_hook(api: &Router, url: &str) -> String {
    let body = json!({"name": "openapi", "events": ["PostRegister", "User.Created"],
                      "config": {"url": url, "headers": {"x-api-key": "k"}}});
    let r = call(
        api,
        &Method::POST,
        "/api/hooks",
        Some(ADMIN),
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body_json());
    r.body_json()["id"].as_str().unwrap().to_string()
}

/// Checks a value against a schema of the document: types, `const`/`enum`, `required`,
/// `properties`, `items`, `oneOf`/`anyOf`/`not` and numeric bounds. An object schema that
/// lists `properties` and says nothing about `additionalProperties` is taken as closed, so
/// every field the code emits must be documented.
pub(crate) fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    let fail = |why: String| Err(format!("{at}: {why} (value {value})"));
    match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return fail("no value is allowed".into()),
        Value::Object(_) => {}
        other => return fail(format!("schema {other} is not an object")),
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        return fail(format!("must be {c}"));
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        return fail(format!("must be one of {allowed:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => return fail(format!("bad type {t}")),
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !ok {
            return fail(format!("must be of type {types:?}"));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return fail(format!("must be at least {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return fail(format!("must be at most {max}"));
        }
    }
    if let Some(Value::Array(branches)) = schema.get("oneOf") {
        let passing = branches
            .iter()
            .filter(|b| conforms(doc, b, value, at).is_ok())
            .count();
        if passing != 1 {
            return fail(format!(
                "matches {passing} branches of oneOf, not exactly one"
            ));
        }
    }
    if let Some(Value::Array(branches)) = schema.get("anyOf")
        && !branches.iter().any(|b| conforms(doc, b, value, at).is_ok())
    {
        return fail("matches no branch of anyOf".into());
    }
    if let Some(not) = schema.get("not")
        && conforms(doc, not, value, at).is_ok()
    {
        return fail("matches a `not` schema".into());
    }
    if let Value::Object(obj) = value {
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    return fail(format!("misses the required field `{r}`"));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, v) in obj {
            let at = format!("{at}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => conforms(doc, s, v, &at)?,
                (None, Some(Value::Bool(true))) => {}
                (None, Some(extra @ Value::Object(_))) => conforms(doc, extra, v, &at)?,
                (None, None) if properties.is_none() => {}
                (None, _) => return Err(format!("{at}: is not a documented field")),
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(doc, item_schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Asserts the answer's status is documented for the operation, its body matches the
/// documented schema (or is empty when none is documented), and every documented response
/// header is present.
fn check_answer(doc: &Value, op: &Operation, r: &Answer) {
    let name = op.name();
    let status = r.status.as_u16().to_string();
    let responses = op.op["responses"].as_object().expect("responses");
    let documented = responses.get(&status).unwrap_or_else(|| {
        panic!(
            "{name} answered {status} ({}), which it does not document (it documents {:?})",
            String::from_utf8_lossy(&r.body),
            responses.keys().collect::<Vec<_>>()
        )
    });
    let documented = resolve(doc, documented);
    match documented.get("content") {
        Some(content) => {
            let media = content
                .get("application/json")
                .unwrap_or_else(|| panic!("{name} {status}: only application/json is served"));
            let content_type = r
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            assert_eq!(content_type, Some("application/json"), "{name} {status}");
            let body: Value = serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("{name} {status}: body is not JSON: {e}"));
            if let Err(e) = conforms(doc, &media["schema"], &body, "body") {
                panic!("{name} {status} does not match the document: {e}");
            }
        }
        None => assert!(
            r.body.is_empty(),
            "{name} {status} documents no body but answered {}",
            String::from_utf8_lossy(&r.body)
        ),
    }
    if let Some(headers) = documented.get("headers").and_then(Value::as_object) {
        for (header, spec) in headers {
            let spec = resolve(doc, spec);
            let Some(value) = r.headers.get(header.as_str()) else {
                assert!(
                    spec["required"] != true,
                    "{name} {status} documents the required {header} header but did not send it"
                );
                continue;
            };
            let text = value.to_str().unwrap();
            let parsed = text
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(text.to_string()));
            let schema = &spec["schema"];
            if let Err(e) = conforms(doc, schema, &parsed, header) {
                panic!("{name} {status}: {e}");
            }
        }
    }
}

#[test]
fn document_is_valid_openapi_3_1() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let out = std::process::Command::new(python())
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(doc_path())
        .output()
        .expect("run the Python interpreter of the test venv");
    let say = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        text.chars().take(4000).collect::<String>()
    };
    assert!(
        out.status.success(),
        "openapi-spec-validator rejects docs/openapi.yaml ({}):\n{}\n{}",
        out.status,
        say(&out.stdout),
        say(&out.stderr)
    );
}

#[test]
fn every_ref_resolves() {
    fn walk(doc: &Value, value: &Value, at: &str, seen: &mut usize) {
        match value {
            Value::Object(obj) => {
                if let Some(r) = obj.get("$ref") {
                    let r = r
                        .as_str()
                        .unwrap_or_else(|| panic!("{at}: $ref is not a string"));
                    assert!(r.starts_with("#/"), "{at}: $ref {r} is not local");
                    assert!(pointer(doc, r).is_some(), "{at}: $ref {r} does not resolve");
                    *seen += 1;
                }
                for (k, v) in obj {
                    walk(doc, v, &format!("{at}/{k}"), seen);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(doc, v, &format!("{at}/{i}"), seen);
                }
            }
            _ => {}
        }
    }
    let doc = doc();
    let mut seen = 0;
    walk(&doc, &doc, "#", &mut seen);
    assert!(seen > 0, "the document uses no $ref at all");
}

#[test]
fn event_names_are_exactly_the_catalog() {
    let doc = doc();
    let names: Vec<&str> = doc["components"]["schemas"]["EventName"]["enum"]
        .as_array()
        .expect("EventName has an enum")
        .iter()
        .map(|v| v.as_str().expect("event names are strings"))
        .collect();
    let catalog: Vec<&str> = EventName::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(names, catalog, "EventName must list the catalog, in order");
    let groups: BTreeSet<&str> = doc["components"]["schemas"]["EventGroup"]["enum"]
        .as_array()
        .expect("EventGroup has an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let catalog_groups: BTreeSet<&str> = EventName::ALL.iter().map(|e| e.group()).collect();
    assert_eq!(groups, catalog_groups);
}

#[test]
fn every_operation_requires_a_bearer_token_and_documents_401() {
    let doc = doc();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("components.securitySchemes");
    for (name, scheme) in schemes {
        // The Logto relay is authenticated by its signature header; everything else by a
        // bearer token.
        if name == "logtoSignature" {
            assert_eq!(scheme["type"], "apiKey");
            assert_eq!(scheme["in"], "header");
            assert_eq!(scheme["name"], "logto-signature-sha-256");
            continue;
        }
        assert_eq!(scheme["type"], "http", "{name}");
        assert!(
            scheme["scheme"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer")),
            "{name} is not a bearer scheme"
        );
    }
    let check = |requirements: &Value, what: &str| {
        let list = requirements
            .as_array()
            .unwrap_or_else(|| panic!("{what}: security is not a list"));
        assert!(
            !list.is_empty(),
            "{what}: an empty security list disables authentication"
        );
        for requirement in list {
            let requirement = requirement.as_object().expect("a security requirement");
            assert!(
                !requirement.is_empty(),
                "{what}: an empty requirement makes authentication optional"
            );
            for name in requirement.keys() {
                assert!(schemes.contains_key(name), "{what}: unknown scheme {name}");
            }
        }
    };
    let global = doc.get("security");
    for op in operations(&doc) {
        match (op.op.get("security"), global) {
            (Some(own), _) => check(own, &op.name()),
            (None, Some(global)) => check(global, "the global security"),
            (None, None) => panic!("{} has no security requirement", op.name()),
        }
        assert!(
            op.op["responses"].get("401").is_some(),
            "{} does not document 401",
            op.name()
        );
    }
}

#[tokio::test]
async fn tokens_are_enforced_as_documented() {
    let doc = doc();
    let ops = operations(&doc);
    let (api, _store) = api();
    let hook = create_hook(&api, "http://127.0.0.1:9/in").await;
    let delivery = DeliveryId::generate().to_string();
    for op in &ops {
        let path = fill(&op.template, &hook, &delivery);
        for token in [None, Some("not-a-token")] {
            let r = call(&api, &op.method, &path, token, "").await;
            assert_eq!(r.status, 401, "{} with {token:?}", op.name());
            check_answer(&doc, op, &r);
        }
        let r = call(&api, &op.method, &path, Some(INGEST), "").await;
        if op.template == "/api/ingest/logto/{sourceId}" {
            assert_eq!(r.status, 401, "a token is no signature");
        } else if op.template == "/api/events" {
            assert!(![401, 403].contains(&r.status.as_u16()), "{}", op.name());
        } else {
            assert_eq!(r.status, 403, "an ingest token on {}", op.name());
        }
        check_answer(&doc, op, &r);
    }
}

#[tokio::test]
async fn documented_routes_are_exactly_the_served_ones() {
    let doc = doc();
    let ops = operations(&doc);
    let (api, _store) = api();
    let delivery = DeliveryId::generate().to_string();

    // Every documented operation is served (with a fresh hook, so DELETE affects no other).
    for op in &ops {
        let hook = create_hook(&api, "http://127.0.0.1:9/in").await;
        let path = fill(&op.template, &hook, &delivery);
        let r = call(&api, &op.method, &path, Some(ADMIN), "").await;
        assert!(
            !is_route_refusal(&op.method, &r),
            "{} is documented but not served: {} {}",
            op.name(),
            r.status,
            r.body_json()
        );
        check_answer(&doc, op, &r);
    }

    // No documented path serves a method the document does not list (HEAD is served, without
    // a body, wherever GET is), and every 405 lists the served methods in `Allow`.
    let hook = create_hook(&api, "http://127.0.0.1:9/in").await;
    let mut documented: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for op in &ops {
        documented
            .entry(op.template.as_str())
            .or_default()
            .insert(op.method.to_string());
    }
    for (template, methods) in &documented {
        let path = fill(template, &hook, &delivery);
        let mut served = methods.clone();
        if methods.contains("GET") {
            served.insert("HEAD".to_string());
            let get = call(&api, &Method::GET, &path, Some(ADMIN), "").await;
            let head = call(&api, &Method::HEAD, &path, Some(ADMIN), "").await;
            assert_eq!(head.status, get.status, "HEAD {template}");
            assert!(head.body.is_empty(), "HEAD {template} answered a body");
        }
        for method in METHODS.iter().filter(|m| !served.contains(**m)) {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let r = call(&api, &method, &path, Some(ADMIN), "").await;
            assert!(
                is_route_refusal(&method, &r) && r.status == 405,
                "{method} {template} is served ({} {}) but not documented",
                r.status,
                r.body_json()
            );
            assert_eq!(
                allowed(&r),
                served,
                "the Allow header of {method} {template}"
            );
        }
    }

    // Paths next to the documented ones (their prefixes, and one more segment of the same
    // vocabulary) are not routes unless the document has them.
    let mut vocabulary: BTreeSet<&str> = ops
        .iter()
        .flat_map(|o| o.template.split('/'))
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
        .collect();
    vocabulary.insert("x");
    let mut bases = BTreeSet::new();
    for template in documented.keys() {
        let filled = fill(template, &hook, &delivery);
        let segments: Vec<&str> = filled.split('/').filter(|s| !s.is_empty()).collect();
        for n in 0..=segments.len() {
            bases.insert(format!("/{}", segments[..n].join("/")));
        }
    }
    let mut candidates = bases.clone();
    for base in &bases {
        for word in &vocabulary {
            candidates.insert(format!("{}/{word}", base.trim_end_matches('/')));
        }
    }
    let mut probed = 0;
    for path in &candidates {
        if documented.keys().any(|t| instance_of(t, path)) {
            continue;
        }
        for method in METHODS {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let r = call(&api, &method, path, Some(ADMIN), "").await;
            assert!(
                r.status == 404 && is_route_refusal(&method, &r),
                "{method} {path} is served ({} {}) but not documented",
                r.status,
                r.body_json()
            );
            probed += 1;
        }
    }
    assert!(probed > 100, "only {probed} undocumented paths were probed");
}

/// One error of every variant. The match lists the variants exhaustively, so adding one fails
/// to compile here until it is added to the list (and its code to the document).
fn every_api_error() -> Vec<ApiError> {
    let all = vec![
        ApiError::Unauthorized,
        ApiError::Forbidden,
        ApiError::SignatureInvalid,
        ApiError::RouteNotFound,
        ApiError::MethodNotAllowed,
        ApiError::HookNotFound,
        ApiError::DeliveryNotFound,
        ApiError::RecoveryNotFound,
        ApiError::Validation(ValidationError::new("config.url", "must use https")),
        ApiError::InvalidPagination(ValidationError::new("page_size", "must be 1 to 100")),
        ApiError::InvalidTimeWindow(ValidationError::new("startTime", "after endTime")),
        ApiError::MalformedRequest,
        ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        ApiError::UnsupportedMediaType,
        ApiError::Conflict,
        ApiError::EventInProgress,
        ApiError::DeliveryPending,
        ApiError::MissingEvents,
        ApiError::TestFailed {
            response_status: Some(500),
            response_body: Some("no".into()),
            results: vec![
                json!({"event": "PostSignIn", "status": 500, "error": "the endpoint answered 500"}),
            ],
        },
        ApiError::TestNotSent(
            "connection refused".into(),
            vec![
                json!({"event": "PostSignIn", "error": "the sample was not sent: connection refused"}),
            ],
        ),
        ApiError::Unavailable,
        ApiError::Internal,
        ApiError::HookExists,
    ];
    for e in &all {
        match e {
            ApiError::Unauthorized
            | ApiError::Forbidden
            | ApiError::SignatureInvalid
            | ApiError::RouteNotFound
            | ApiError::MethodNotAllowed
            | ApiError::HookNotFound
            | ApiError::DeliveryNotFound
            | ApiError::RecoveryNotFound
            | ApiError::Validation(_)
            | ApiError::InvalidPagination(_)
            | ApiError::InvalidTimeWindow(_)
            | ApiError::MalformedRequest
            | ApiError::PayloadTooLarge(_)
            | ApiError::UnsupportedMediaType
            | ApiError::Conflict
            | ApiError::HookExists
            | ApiError::EventInProgress
            | ApiError::DeliveryPending
            | ApiError::MissingEvents
            | ApiError::TestFailed { .. }
            | ApiError::TestNotSent(..)
            | ApiError::Unavailable
            | ApiError::Internal => {}
        }
    }
    all
}

#[tokio::test]
async fn error_codes_and_bodies_are_documented() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let documented: BTreeSet<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode has an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let errors = every_api_error();
    let served: BTreeSet<&str> = errors.iter().map(ApiError::code).collect();
    assert_eq!(
        documented, served,
        "ErrorCode must list exactly the API's error codes"
    );

    let statuses: BTreeSet<String> = operations(&doc)
        .iter()
        .flat_map(|o| {
            o.op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    for e in errors {
        let status = e.status().as_u16().to_string();
        let code = e.code();
        let body = body_of(e).await;
        let schema = if code == "hook.endpoint_responded_with_error" {
            &schemas["TestFailure"]
        } else {
            &schemas["Error"]
        };
        if let Err(why) = conforms(&doc, schema, &body, code) {
            panic!("{why}");
        }
        let routing = ["route.not_found", "route.method_not_allowed"].contains(&code);
        assert!(
            routing || statuses.contains(&status),
            "{code} answers {status}, which no operation documents"
        );
    }
    for name in ["RouteNotFound", "MethodNotAllowed"] {
        assert!(
            doc["components"]["responses"].get(name).is_some(),
            "components.responses.{name} describes the routing answers"
        );
    }
}

async fn body_of(e: ApiError) -> Value {
    let bytes = axum::body::to_bytes(e.into_response().into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A delivery that already finished in error, with one unanswered and one answered attempt.
fn failed_delivery(hook: &str) -> Delivery {
    let now = now_ms();
    Delivery {
        hook_id: HookId::parse(hook).unwrap(),
        id: DeliveryId::generate(),
        event_id: EventId::parse("evt_failed").unwrap(),
        event: EventName::UserCreated,
        body: json!({"hookId": hook, "event": "User.Created", "createdAt": "2026-11-26T10:00:00Z",
                     "data": {"id": "u_1"}})
        .to_string(),
        status: DeliveryStatus::Error,
        attempts: vec![
            Attempt {
                number: 1,
                started_at: now - 2_000,
                duration_ms: 3,
                response_status: None,
                response_body: None,
                error_kind: Some(ErrorKind::Connect),
                error: Some("connection refused".into()),
            },
            Attempt {
                number: 2,
                started_at: now - 1_000,
                duration_ms: 5,
                response_status: Some(500),
                response_body: Some("oops".into()),
                error_kind: Some(ErrorKind::Http),
                error: None,
            },
        ],
        next_attempt_at: None,
        reason: Some("attempts exhausted".into()),
        event_created_at: now - 3_000,
        created_at: now - 3_000,
        expires_at: now / 1000 + 3_600,
        sync: false,
    }
}

/// Calls the API and checks each answer against the operation it exercises.
struct Tour {
    doc: Value,
    ops: Vec<Operation>,
    api: Router,
}

impl Tour {
    /// The documented operation named "METHOD /template".
    fn operation(&self, name: &str) -> &Operation {
        let (method, template) = name.split_once(' ').expect("METHOD /template");
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        operation(&self.ops, &method, template)
    }

    /// Sends `body` (unless null) to `path` for the operation named "METHOD /template" and
    /// asserts the answer's status.
    async fn send(
        &self,
        status: u16,
        operation_name: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> Answer {
        let op = self.operation(operation_name);
        let method = op.method.clone();
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let r = call(&self.api, &method, path, Some(token), &body).await;
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, status, "{operation_name} {path}: {text}");
        check_answer(&self.doc, op, &r);
        r
    }

    async fn admin(&self, status: u16, operation: &str, path: &str, body: Value) -> Answer {
        self.send(status, operation, path, ADMIN, body).await
    }

    /// Sends a request prepared by hand (unusual headers or sizes).
    async fn raw(&self, status: u16, operation_name: &str, req: Request<Body>) -> Answer {
        let op = self.operation(operation_name);
        let r = send(&self.api, req).await;
        assert_eq!(r.status, status, "{operation_name}: {}", r.body_json());
        check_answer(&self.doc, op, &r);
        r
    }
}

#[tokio::test]
async fn answers_match_the_documented_statuses_and_schemas() {
    let doc = doc();
    let ops = operations(&doc);
    let (api, store) = api();
    let t = Tour { doc, ops, api };
    let none = Value::Null;
    let receiver = Receiver::start(&[500]).await;

    let r = t
        .admin(
            200,
            "GET /api/hook-events",
            "/api/hook-events",
            none.clone(),
        )
        .await;
    // Preview events are listed only with WEBHOOKS_PREVIEW_EVENTS.
    assert_eq!(
        r.body_json().as_array().unwrap().len(),
        EventName::ALL.iter().filter(|e| !e.is_preview()).count()
    );

    let hook = create_hook(&t.api, &receiver.url("/in")).await;
    let at = |suffix: &str| format!("/api/hooks/{hook}{suffix}");

    // The test button: the receiver answers 500 first, then 200.
    let test = "POST /api/hooks/{id}/test";
    let sample = json!({"events": ["PostRegister"]});
    let r = t.admin(422, test, &at("/test"), sample.clone()).await;
    assert_eq!(r.body_json()["responseStatus"], 500);
    t.admin(204, test, &at("/test"), sample).await;

    // The receiver check: this receiver accepts everything, so the report fails; it is kept.
    let r = t
        .admin(
            200,
            "POST /api/hooks/{id}/check",
            &at("/check"),
            none.clone(),
        )
        .await;
    assert_eq!(r.body_json()["outcome"], "fail");
    let checks = "GET /api/hooks/{id}/checks";
    let r = t
        .admin(200, checks, &at("/checks?page_size=5"), none.clone())
        .await;
    assert_eq!(r.body_json().as_array().unwrap().len(), 1);
    t.admin(400, checks, &at("/checks?cursor=nope"), none.clone())
        .await;

    let list = "/api/hooks?page=1&page_size=10&includeExecutionStats=true";
    t.admin(200, "GET /api/hooks", list, none.clone()).await;
    t.admin(
        400,
        "GET /api/hooks",
        "/api/hooks?page_size=0",
        none.clone(),
    )
    .await;
    let get = "GET /api/hooks/{id}";
    t.admin(200, get, &at("?includeExecutionStats=true"), none.clone())
        .await;
    let patch = "PATCH /api/hooks/{id}";
    let config = json!({"name": "renamed", "config": {"url": receiver.url("/in2")}});
    t.admin(200, patch, &at(""), config).await;
    t.admin(400, patch, &at(""), json!({"extra": "x"})).await;
    // A fetched hook sent back as it is, read-only fields and all.
    let fetched = t
        .admin(200, get, &at("?includeExecutionStats=true"), none.clone())
        .await
        .body_json();
    t.admin(200, patch, &at(""), fetched).await;
    let rotate = "PATCH /api/hooks/{id}/signing-key";
    t.admin(
        200,
        rotate,
        &at("/signing-key"),
        json!({"expireAfterSeconds": 60}),
    )
    .await;
    t.admin(
        400,
        rotate,
        &at("/signing-key"),
        json!({"expireAfterSeconds": -1}),
    )
    .await;

    // Ingest: a single event (twice, idempotent), a batch, and an unknown event.
    let ingest = "POST /api/events";
    let event = json!({"event": "PostRegister", "id": "evt_openapi_1", "userId": "u_1"});
    for _ in 0..2 {
        let r = t
            .send(202, ingest, "/api/events", INGEST, event.clone())
            .await;
        assert_eq!(r.body_json()["deliveries"], 1);
    }
    let batch = json!({"events": [{"event": "User.Created", "data": {"id": "u_2"}},
                                  {"event": "Role.Deleted"}]});
    t.send(202, ingest, "/api/events", INGEST, batch).await;
    t.send(400, ingest, "/api/events", INGEST, json!({"event": "Nope"}))
        .await;

    // The log: pending deliveries from ingest, then a finished one with attempts.
    let logs = "GET /api/hooks/{id}/recent-logs";
    let query = "/recent-logs?result=Pending&event=PostRegister&page=1&page_size=5";
    let r = t.admin(200, logs, &at(query), none.clone()).await;
    let pending = r.body_json()[0]["id"].as_str().unwrap().to_string();
    let failed = failed_delivery(&hook);
    store
        .insert_deliveries(std::slice::from_ref(&failed))
        .await
        .unwrap();
    let r = t
        .admin(200, logs, &at("/recent-logs?result=Error"), none.clone())
        .await;
    assert_eq!(r.body_json()[0]["attempts"].as_array().unwrap().len(), 2);
    t.admin(400, logs, &at("/recent-logs?result=Nope"), none.clone())
        .await;

    // Re-send and recover.
    let retry = "POST /api/hooks/{id}/deliveries/{deliveryId}/retry";
    let retry_path = |delivery: &str| at(&format!("/deliveries/{delivery}/retry"));
    t.admin(
        202,
        retry,
        &retry_path(&failed.id.to_string()),
        none.clone(),
    )
    .await;
    t.admin(409, retry, &retry_path(&pending), none.clone())
        .await;
    let unknown = DeliveryId::generate().to_string();
    let r = t
        .admin(404, retry, &retry_path(&unknown), none.clone())
        .await;
    assert_eq!(code(&r), "delivery.not_found");
    store
        .insert_deliveries(&[failed_delivery(&hook)])
        .await
        .unwrap();
    let recover = "POST /api/hooks/{id}/recover";
    let r = t
        .admin(202, recover, &at("/recover"), json!({"since": 0}))
        .await;
    assert_eq!(r.body_json()["status"], "running");
    let started = r.body_json()["id"].as_str().unwrap().to_string();
    let recovery = "GET /api/hooks/{id}/recoveries/{recoveryId}";
    let r = t
        .admin(
            200,
            recovery,
            &at(&format!("/recoveries/{started}")),
            none.clone(),
        )
        .await;
    assert_eq!(r.body_json()["id"], started.as_str());
    let r = t
        .admin(
            404,
            recovery,
            &at("/recoveries/rcv_01JAAAAAAAAAAAAAAAAAAAAAAA"),
            none.clone(),
        )
        .await;
    assert_eq!(code(&r), "recovery.not_found");
    t.admin(400, recover, &at("/recover"), json!({"since": "yesterday"}))
        .await;
    t.admin(
        400,
        recover,
        &at("/recover"),
        json!({"since": 5, "until": 4}),
    )
    .await;

    // Refusals that no happy path reaches.
    let mut req = request(&Method::POST, "/api/hooks", Some(ADMIN), "name=x");
    let text = HeaderValue::from_static("text/plain");
    req.headers_mut().insert(http::header::CONTENT_TYPE, text);
    t.raw(415, "POST /api/hooks", req).await;
    let big = json!({"event": "PostRegister", "pad": "x".repeat(MAX_BODY_BYTES)}).to_string();
    let req = request(&Method::POST, "/api/events", Some(INGEST), &big);
    t.raw(413, ingest, req).await;
    let ftp = json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "ftp://a.example"}});
    let r = t.admin(400, "POST /api/hooks", "/api/hooks", ftp).await;
    assert_eq!(r.body_json()["data"]["field"], "config.url");

    t.admin(204, "DELETE /api/hooks/{id}", &at(""), none.clone())
        .await;
    let r = t.admin(404, get, &at(""), none).await;
    assert_eq!(code(&r), "hook.not_found");
}
