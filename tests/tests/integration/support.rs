//! Shared set-up: moto-backed adapters and handlers wired like the Lambda functions.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use std::sync::Arc;
use std::time::Duration;
use webhooks::adapters::dynamo::DynamoStore;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::api::{ApiRequest, ApiResponse, IngestHandler, ManagementHandler, Tokens};
use webhooks::config::{Defaults, Settings};
use webhooks::net::client::DeliveryClient;
use webhooks::retry::RetrySchedule;
use webhooks::sender::Sender;
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
    let provisioned = provision(&dynamo, &sqs, &unique_prefix(name)).await;
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

/// Local-style settings (http and loopback allowed) with a fast retry schedule.
pub fn settings(schedule: &str) -> Settings {
    let mut s = Settings::from_lookup(Defaults::local(), |_| None).unwrap();
    s.retry_schedule = RetrySchedule::parse(schedule).unwrap();
    s.timeouts.total = Duration::from_secs(3);
    s
}

pub struct Pipeline {
    pub moto: Moto,
    pub ingest: IngestHandler,
    pub management: ManagementHandler,
    pub sender: Arc<Sender>,
}

pub async fn pipeline(name: &str, schedule: &str) -> Pipeline {
    let moto = moto(name).await;
    let settings = settings(schedule);
    Pipeline {
        ingest: IngestHandler::new(
            moto.store.clone(),
            moto.queue.clone(),
            tokens(),
            settings.retention,
        ),
        management: ManagementHandler::new(
            moto.store.clone(),
            moto.queue.clone(),
            DeliveryClient::from_settings(&settings),
            tokens(),
            settings.url_policy,
        ),
        sender: Sender::new(
            moto.store.clone(),
            moto.queue.clone(),
            DeliveryClient::from_settings(&settings),
            settings.retry_schedule.clone(),
        ),
        moto,
    }
}

pub fn request(
    method: Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> ApiRequest {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path.to_string(), None),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    ApiRequest {
        method,
        path,
        query,
        headers,
        body: body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
    }
}

impl Pipeline {
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> ApiResponse {
        self.management
            .handle(request(method, path, ADMIN, body))
            .await
    }

    pub async fn post_event(&self, body: serde_json::Value) -> ApiResponse {
        self.ingest
            .handle(request(Method::POST, "/api/events", INGEST, Some(body)))
            .await
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
        ingest: IngestHandler::new(
            faulty.clone(),
            moto.queue.clone(),
            tokens(),
            settings.retention,
        ),
        management: ManagementHandler::new(
            faulty.clone(),
            moto.queue.clone(),
            DeliveryClient::from_settings(&settings),
            tokens(),
            settings.url_policy,
        ),
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
