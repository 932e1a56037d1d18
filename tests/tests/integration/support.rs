//! Shared set-up: moto-backed adapters and the router wired like the Lambda functions, and
//! requests sent to a router in process.

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use webhooks::adapters::dynamo::DynamoStore;
use webhooks::adapters::sqlite::SqliteQueue;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::api::{Api, Tokens, router};
use webhooks::app::sender::Sender;
use webhooks::config::{Defaults, Settings};
use webhooks::domain::retry::RetrySchedule;
use webhooks::net::client::DeliveryClient;
use webhooks_tests::faulty_store::FaultyStore;
use webhooks_tests::provision::{Provisioned, moto_config, provision};
use webhooks_tests::unique_prefix;

pub const ADMIN: &str = "admin-test-token";
pub const INGEST: &str = "ingest-test-token";

pub struct Moto {
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    pub provisioned: Provisioned,
    pub sqs: aws_sdk_sqs::Client,
}

/// Fresh tables and queues in moto, created from infra/template.yaml.
pub async fn moto(name: &str) -> Moto {
    let sdk = moto_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let provisioned = provision(&sdk, &unique_prefix(name)).await;
    Moto {
        store: Arc::new(DynamoStore::new(
            dynamo,
            provisioned.hooks_table.clone(),
            provisioned.deliveries_table.clone(),
        )),
        queue: Arc::new(SqsQueue::new(sqs.clone(), provisioned.queue_url.clone())),
        provisioned,
        sqs,
    }
}

pub fn tokens() -> Tokens {
    Tokens::from_lists(ADMIN, INGEST)
}

/// The dev server's default settings (http and loopback allowed), as with no variables set.
pub fn local_settings() -> Settings {
    Settings::from_lookup(Defaults::local(), |_| None).unwrap()
}

/// Local-style settings (http and loopback allowed) with a fast retry schedule.
pub fn settings(schedule: &str) -> Settings {
    let mut s = local_settings();
    s.retry_schedule = RetrySchedule::parse(schedule).unwrap();
    s.timeouts.total = Duration::from_secs(3);
    s
}

pub struct Pipeline {
    pub moto: Moto,
    pub router: Router,
    pub sender: Arc<Sender>,
}

pub async fn pipeline(name: &str, schedule: &str) -> Pipeline {
    let moto = moto(name).await;
    let settings = settings(schedule);
    Pipeline {
        router: router(Api::new(
            moto.store.clone(),
            moto.queue.clone(),
            DeliveryClient::from_settings(&settings),
            tokens(),
            &settings,
        )),
        sender: Sender::new(
            moto.store.clone(),
            moto.queue.clone(),
            DeliveryClient::from_settings(&settings),
            settings.retry_schedule.clone(),
        ),
        moto,
    }
}

/// The one in-process dev server configuration: any free port, in memory, the test tokens;
/// tests change what they need with `LocalConfig { field, ..local_config(settings) }`.
pub fn local_config(settings: Settings) -> webhooks::startup::local::LocalConfig {
    webhooks::startup::local::LocalConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_tokens: ADMIN.into(),
        ingest_tokens: INGEST.into(),
        data_dir: None,
        settings,
        workers: 2,
        operational: None,
        logto_sources: Default::default(),
    }
}

/// The router on the embedded store and queue (no emulator needed), with local settings.
pub fn memory_router() -> (Router, Arc<SqliteStore>, Arc<SqliteQueue>) {
    let store = SqliteStore::in_memory();
    let queue = SqliteQueue::in_memory(Duration::from_secs(60), 5);
    let settings = settings("1s");
    let client = DeliveryClient::from_settings(&settings);
    let api = Api::new(store.clone(), queue.clone(), client, tokens(), &settings);
    (router(api), store, queue)
}

/// What the router answered, its body read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request through the router, in process.
pub async fn send(router: &Router, req: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(req)
        .await
        .expect("the router is infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("an in-process body reads whole");
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A request with a bearer token and, when there is a body, a JSON content type.
pub fn request(
    method: Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    req = req.header(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    req = req.header(http::header::CONTENT_TYPE, "application/json");
    let body = body
        .map(|b| Body::from(b.to_string()))
        .unwrap_or_else(Body::empty);
    req.body(body).unwrap()
}

impl Pipeline {
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        send(&self.router, request(method, path, ADMIN, body)).await
    }

    pub async fn post_event(&self, body: serde_json::Value) -> Answer {
        let req = request(Method::POST, "/api/events", INGEST, Some(body));
        send(&self.router, req).await
    }

    /// Creates a hook for `events` pointing at `url`; returns its JSON.
    pub async fn create_hook(&self, url: &str, events: &[&str]) -> serde_json::Value {
        let r = self
            .admin(
                Method::POST,
                "/api/hooks",
                Some(serde_json::json!({"name": "test hook", "events": events, "config": {"url": url}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body_json());
        r.body_json()
    }
}

/// A pipeline whose handlers and sender use the moto store through a [`FaultyStore`]
/// (`moto.store` stays the plain store, for inspection).
pub async fn faulty_pipeline(name: &str, schedule: &str) -> (Pipeline, Arc<FaultyStore>) {
    let moto = moto(name).await;
    let settings = settings(schedule);
    let faulty = FaultyStore::new(moto.store.clone());
    let pipeline = Pipeline {
        router: router(Api::new(
            faulty.clone(),
            moto.queue.clone(),
            DeliveryClient::from_settings(&settings),
            tokens(),
            &settings,
        )),
        sender: Sender::new(
            faulty.clone(),
            moto.queue.clone(),
            DeliveryClient::from_settings(&settings),
            settings.retry_schedule.clone(),
        ),
        moto,
    };
    (pipeline, faulty)
}

/// Sets the queue's visibility timeout, so a job its sender failed comes back quickly.
pub async fn set_visibility_timeout(m: &Moto, seconds: u32) {
    m.sqs
        .set_queue_attributes()
        .queue_url(&m.provisioned.queue_url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            seconds.to_string(),
        )
        .send()
        .await
        .expect("set the visibility timeout");
}
