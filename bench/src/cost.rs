//! The price of a delivery on AWS: the Lambda code path (the API router and the sender, on
//! the DynamoDB and SQS adapters) against moto, with every request metered, turned into
//! dollars by the dated price table `docs/aws-prices.json`. Counts matter here, not speed.

use crate::receiver::{Receiver, event_body};
use crate::rig::call;
use crate::usage::{DynamoDbMeter, SqsMeter, Usage};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webhooks::adapters::dynamo::DynamoStore;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::api::{Api, Tokens, router};
use webhooks::app::consumer::BATCH;
use webhooks::app::sender::Sender;
use webhooks::config::{Defaults, Settings};
use webhooks::net::client::DeliveryClient;
use webhooks::ports::JobSource;
use webhooks::ports::QueueMessage;
use webhooks_tests::moto_server::MotoServer;
use webhooks_tests::provision::provision;

const ADMIN: &str = "cost-admin";
const INGEST: &str = "cost-ingest";

#[derive(serde::Deserialize)]
pub struct Prices {
    pub as_of: String,
    lambda_arm64_usd_per_gb_second: f64,
    lambda_usd_per_million_requests: f64,
    sqs_standard_usd_per_million_requests: f64,
    dynamodb_on_demand_usd_per_million_write_units: f64,
    dynamodb_on_demand_usd_per_million_read_units: f64,
    api_gateway_http_api_usd_per_million_requests: f64,
    api_gateway_http_api_billed_request_kib: f64,
}

impl Prices {
    pub fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/aws-prices.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("docs/aws-prices.json"))
            .expect("docs/aws-prices.json is a price table")
    }
}

/// Lambda memory of the functions, from the template's globals.
fn lambda_memory_gb() -> f64 {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .expect("infra/template.yaml");
    let mb: f64 = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("the template sets MemorySize");
    mb / 1024.0
}

#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub fan_out: usize,
    pub events_per_request: usize,
    pub deliveries: usize,
    pub wru_per_delivery: f64,
    pub rru_per_delivery: f64,
    pub dynamodb_requests_per_delivery: f64,
    pub sqs_requests_per_delivery: f64,
    pub lambda_ms_per_delivery: f64,
    pub usd_per_million_deliveries: f64,
    /// Each service's dollars per million deliveries.
    pub usd_share: Shares,
    /// DynamoDB operation → requests, write units and read units per delivery.
    pub dynamodb_per_delivery: Vec<(String, f64, f64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Shares {
    pub dynamodb: f64,
    pub sqs: f64,
    pub lambda: f64,
    pub api_gateway: f64,
}

pub struct Bench {
    _moto: MotoServer,
    sdk: aws_config::SdkConfig,
    prices: Prices,
}

impl Bench {
    pub async fn start() -> Self {
        let (moto, sdk) = crate::rig::start().await;
        Self {
            _moto: moto,
            sdk,
            prices: Prices::load(),
        }
    }

    pub fn prices(&self) -> &Prices {
        &self.prices
    }

    /// Posts `events` events to `fan_out` hooks, `per_request` per ingest request, delivers
    /// them, and prices what was metered from the first post to the last acknowledgement.
    pub async fn measure(
        &self,
        name: &str,
        fan_out: usize,
        events: usize,
        per_request: usize,
    ) -> Cost {
        let usage = Usage::new();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.sdk)
                .interceptor(DynamoDbMeter(usage.clone()))
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&self.sdk)
                .interceptor(SqsMeter(usage.clone()))
                .build(),
        );
        let provisioned = provision(&self.sdk, &format!("bench-{name}")).await;
        let store = Arc::new(
            DynamoStore::new(
                dynamo,
                provisioned.hooks_table.clone(),
                provisioned.deliveries_table.clone(),
            )
            .reporting_item_sizes(),
        );
        let queue = Arc::new(SqsQueue::new(sqs, provisioned.queue_url.clone()));
        let settings = Settings::from_lookup(Defaults::local(), |_| None).unwrap();
        let client = DeliveryClient::from_settings(&settings);
        let app = router(Api::new(
            store.clone(),
            queue.clone(),
            client.clone(),
            Tokens::from_lists(ADMIN, INGEST),
            &settings,
        ));
        let sender = Sender::new(
            store,
            queue.clone(),
            client,
            settings.retry_schedule.clone(),
        );
        let receiver = Receiver::start().await;
        let mut hooks = Vec::new();
        for i in 0..fan_out {
            let body = json!({"name": format!("cost {i}"), "events": ["PostSignIn"], "config": {"url": receiver.url("/in")}});
            let (status, created) = call(&app, "/api/hooks", ADMIN, &body).await;
            assert_eq!(status, 201);
            hooks.push(created["id"].as_str().unwrap().to_string());
        }

        let before = usage.counts();
        let ops_before = usage.by_operation();
        let mut lambda_ms = 0.0;
        let mut invocations = 0usize;
        let mut api_requests = 0.0;
        for chunk in (0..events).collect::<Vec<_>>().chunks(per_request) {
            let body = if per_request == 1 {
                event_body(chunk[0])
            } else {
                json!({"events": chunk.iter().map(|n| event_body(*n)).collect::<Vec<_>>()})
            };
            let kib = serde_json::to_vec(&body).unwrap().len() as f64 / 1024.0;
            let started = Instant::now();
            let (status, _) = call(&app, "/api/events", INGEST, &body).await;
            lambda_ms += billed_ms(started.elapsed());
            assert_eq!(status, 202);
            invocations += 1;
            api_requests += (kib / self.prices.api_gateway_http_api_billed_request_kib).ceil();
        }
        let deliveries = events * fan_out;
        let deadline = Instant::now() + Duration::from_secs(600);
        while receiver.count() < deliveries {
            assert!(Instant::now() < deadline, "metered deliveries stalled");
            let received = queue.receive_batch(BATCH).await.expect("receive from moto");
            if received.is_empty() {
                continue;
            }
            let messages: Vec<QueueMessage> = received.iter().map(|r| r.message.clone()).collect();
            let started = Instant::now();
            let failed = sender.process_batch(&messages).await;
            lambda_ms += billed_ms(started.elapsed());
            invocations += 1;
            let done: Vec<String> = received
                .iter()
                .filter(|r| !failed.contains(&r.message.id))
                .map(|r| r.receipt_handle.clone())
                .collect();
            queue.acknowledge(&done).await.expect("delete from moto");
        }
        let used = usage.counts().since(&before);
        let d = deliveries as f64;
        let dynamodb_per_delivery = usage
            .by_operation()
            .into_iter()
            .map(|(op, requests, w, r)| {
                let (r0, w0, rr0) = ops_before
                    .iter()
                    .find(|(o, ..)| *o == op)
                    .map_or((0, 0.0, 0.0), |(_, a, b, c)| (*a, *b, *c));
                (
                    op.to_string(),
                    (requests - r0) as f64 / d,
                    (w - w0) / d,
                    (r - rr0) / d,
                )
            })
            .filter(|(_, requests, ..)| *requests > 0.0)
            .collect();
        if let Err(e) = receiver.check_exactly_once(events, &hooks) {
            eprintln!("the metered run lost or duplicated deliveries: {e}");
            std::process::exit(1);
        }

        let p = &self.prices;
        let per_million = |total_usd: f64| total_usd / deliveries as f64 * 1e6;
        let shares = Shares {
            dynamodb: per_million(
                used.write_units * p.dynamodb_on_demand_usd_per_million_write_units / 1e6
                    + used.read_units * p.dynamodb_on_demand_usd_per_million_read_units / 1e6,
            ),
            sqs: per_million(
                used.sqs_requests as f64 * p.sqs_standard_usd_per_million_requests / 1e6,
            ),
            lambda: per_million(
                lambda_ms / 1000.0 * lambda_memory_gb() * p.lambda_arm64_usd_per_gb_second
                    + invocations as f64 * p.lambda_usd_per_million_requests / 1e6,
            ),
            api_gateway: per_million(
                api_requests * p.api_gateway_http_api_usd_per_million_requests / 1e6,
            ),
        };
        Cost {
            fan_out,
            events_per_request: per_request,
            deliveries,
            wru_per_delivery: used.write_units / deliveries as f64,
            rru_per_delivery: used.read_units / deliveries as f64,
            dynamodb_requests_per_delivery: used.dynamodb_requests as f64 / deliveries as f64,
            sqs_requests_per_delivery: used.sqs_requests as f64 / deliveries as f64,
            lambda_ms_per_delivery: lambda_ms / deliveries as f64,
            usd_per_million_deliveries: shares.dynamodb
                + shares.sqs
                + shares.lambda
                + shares.api_gateway,
            usd_share: shares,
            dynamodb_per_delivery,
        }
    }
}

/// Lambda bills whole milliseconds.
fn billed_ms(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1e3).ceil()
}
