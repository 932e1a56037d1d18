//! The price of a delivery on AWS: the Lambda code path (the API router and the sender, on
//! the DynamoDB and SQS adapters) against moto, with every request metered, turned into
//! dollars by the dated price table `docs/aws-prices.json`. Counts matter here, not speed.

use crate::receiver::{Receiver, event_body};
use crate::rig::call;
use crate::usage::{DynamoDbMeter, SqsMeter, Usage, describe_table};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    cloudwatch_logs_usd_per_gb_ingested: f64,
}

impl Prices {
    pub fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/aws-prices.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("docs/aws-prices.json"))
            .expect("docs/aws-prices.json is a price table")
    }
}

fn template() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .expect("infra/template.yaml")
}

/// Lambda memory of the functions, from the template's globals.
fn lambda_memory_gb() -> f64 {
    let mb: f64 = template()
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("the template sets MemorySize");
    mb / 1024.0
}

/// Most jobs per sender invocation: the template's `SenderBatchSize` default.
pub fn sender_batch_size() -> usize {
    let template = template();
    let mut lines = template
        .lines()
        .skip_while(|l| l.trim() != "SenderBatchSize:");
    lines
        .find_map(|l| l.trim().strip_prefix("Default:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("the template has a SenderBatchSize parameter with a default")
}

/// One metered case: `events` events to `fan_out` hooks, `per_request` per ingest request.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub fan_out: usize,
    pub events: usize,
    pub per_request: usize,
    /// Each event posted with a caller `id` (the ingest claims it for idempotency).
    pub with_ids: bool,
    /// One ingest request per this interval, each delivered before the next (sender batches
    /// then hold only that request's jobs); `None`: all posted, then all delivered.
    pub every: Option<Duration>,
}

impl Case {
    const fn new(name: &'static str, fan_out: usize, events: usize, per_request: usize) -> Self {
        Self {
            name,
            fan_out,
            events,
            per_request,
            with_ids: false,
            every: None,
        }
    }
}

/// The happy path at fan-out 1 and 10 (100 events per request). Fan-out 1 is one hook: its
/// hottest partition, scaled to 5,000 deliveries a second, is the single-hook figure.
pub const FAN_OUT_1: Case = Case::new("f1", 1, 2_000, 100);
pub const FAN_OUT_10: Case = Case::new("f10", 10, 100, 100);
/// One event per request.
pub const SINGLE: Case = Case::new("single", 1, 200, 1);
/// One event per request, each with a caller id.
pub const WITH_IDS: Case = Case {
    with_ids: true,
    ..Case::new("ids", 1, 200, 1)
};
/// One event per request at fan-out 10.
pub const SINGLE_FAN_OUT_10: Case = Case::new("single-f10", 10, 50, 1);
/// A low rate: one event a second to 2 hooks, so each sender batch holds 2 jobs.
pub const LOW_RATE: Case = Case {
    every: Some(Duration::from_secs(1)),
    ..Case::new("low-rate", 2, 6, 1)
};
/// Every case, in the order they run.
pub const CASES: [Case; 6] = [
    FAN_OUT_1,
    FAN_OUT_10,
    SINGLE,
    WITH_IDS,
    SINGLE_FAN_OUT_10,
    LOW_RATE,
];

/// Bytes the code logs at `info`, as JSON lines the way the functions write them to
/// CloudWatch Logs.
static LOG_BYTES: AtomicU64 = AtomicU64::new(0);
static LOG_LINES: AtomicU64 = AtomicU64::new(0);

/// A log sink that only counts.
struct CountingWriter;

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG_BYTES.fetch_add(buf.len() as u64, Ordering::Relaxed);
        LOG_LINES.fetch_add(
            buf.iter().filter(|b| **b == b'\n').count() as u64,
            Ordering::Relaxed,
        );
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Logs of this process go to the counter, formatted as on Lambda (`shared/src/telemetry.rs`)
/// at its default level, `info`.
fn count_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_target(false)
        .json()
        .flatten_event(true)
        .without_time()
        .with_writer(|| CountingWriter)
        .try_init();
}

fn log_counts() -> (u64, u64) {
    (
        LOG_BYTES.load(Ordering::Relaxed),
        LOG_LINES.load(Ordering::Relaxed),
    )
}

/// What the code logged during a case, per delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Logs {
    pub bytes_per_delivery: f64,
    pub lines_per_delivery: f64,
    /// CloudWatch Logs ingestion, not in `usd_per_million_deliveries`.
    pub usd_per_million_deliveries: f64,
}

/// The partition that took the most write units per second during a case.
#[derive(Debug, Clone, Serialize)]
pub struct HottestPartition {
    pub wcu_per_s: f64,
    /// Its write units per delivery at 5,000 deliveries a second (the figure for one hook when
    /// the case has one).
    pub wcu_per_s_at_5000_deliveries_per_s: f64,
    /// `hooks` or `deliveries` table, or `table/index`.
    pub table: String,
    /// What the partition key is (a hook id, an event claim, …).
    pub key_kind: &'static str,
    /// The key itself when it cannot hold a caller's data (hook ids, fixed keys).
    pub key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub case: &'static str,
    pub fan_out: usize,
    pub events_per_request: usize,
    pub with_ids: bool,
    /// Seconds between ingest requests, when paced.
    pub every_s: Option<f64>,
    pub deliveries: usize,
    /// Jobs per sender batch, on average.
    pub jobs_per_batch: f64,
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
    /// CloudWatch Logs: what the code logged at `info`, priced on its own.
    pub logs: Logs,
    /// Write units per second on the busiest partition key, from the first post to the last
    /// acknowledgement.
    pub hottest_partition_wcu_per_s: f64,
    pub hottest_partition: Option<HottestPartition>,
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
        count_logs();
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

    /// Runs `case`: posts its events, delivers them, and prices what was metered from the
    /// first post to the last acknowledgement.
    pub async fn measure(&self, case: Case) -> Cost {
        let Case {
            name,
            fan_out,
            events,
            per_request,
            with_ids,
            every,
        } = case;
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
        let plain = aws_sdk_dynamodb::Client::new(&self.sdk);
        for table in [&provisioned.hooks_table, &provisioned.deliveries_table] {
            usage.register_table(table, describe_table(&plain, table).await);
        }
        let tables = [
            (provisioned.hooks_table.clone(), "hooks"),
            (provisioned.deliveries_table.clone(), "deliveries"),
        ];
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
        let partitions_before = usage.partition_writes();
        let logs_before = log_counts();
        let started_case = Instant::now();
        let mut lambda_ms = 0.0;
        let mut invocations = 0usize;
        let mut batches = 0usize;
        let mut jobs = 0usize;
        let mut api_requests = 0.0;
        let mut delivered = 0;
        for chunk in (0..events).collect::<Vec<_>>().chunks(per_request) {
            let posted_at = Instant::now();
            let body_of = |n: usize| {
                let mut body = event_body(n);
                if with_ids {
                    body["id"] = json!(format!("bench-{name}-{n}"));
                }
                body
            };
            let body = if per_request == 1 {
                body_of(chunk[0])
            } else {
                json!({"events": chunk.iter().map(|n| body_of(*n)).collect::<Vec<_>>()})
            };
            let kib = serde_json::to_vec(&body).unwrap().len() as f64 / 1024.0;
            let started = Instant::now();
            let (status, _) = call(&app, "/api/events", INGEST, &body).await;
            lambda_ms += billed_ms(started.elapsed());
            assert_eq!(status, 202);
            invocations += 1;
            api_requests += (kib / self.prices.api_gateway_http_api_billed_request_kib).ceil();
            if let Some(every) = every {
                delivered += chunk.len() * fan_out;
                let (ms, runs, batch_jobs) = deliver(&sender, &queue, &receiver, delivered).await;
                lambda_ms += ms;
                invocations += runs;
                batches += runs;
                jobs += batch_jobs;
                tokio::time::sleep(every.saturating_sub(posted_at.elapsed())).await;
            }
        }
        let deliveries = events * fan_out;
        let (ms, runs, batch_jobs) = deliver(&sender, &queue, &receiver, deliveries).await;
        lambda_ms += ms;
        invocations += runs;
        batches += runs;
        jobs += batch_jobs;
        let seconds = started_case.elapsed().as_secs_f64();
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
        let (bytes, lines) = log_counts();
        let (bytes, lines) = (
            (bytes - logs_before.0) as f64,
            (lines - logs_before.1) as f64,
        );
        let logs = Logs {
            bytes_per_delivery: bytes / d,
            lines_per_delivery: lines / d,
            usd_per_million_deliveries: per_million(
                bytes / 1e9 * p.cloudwatch_logs_usd_per_gb_ingested,
            ),
        };
        let hottest = hottest_partition(&usage, &partitions_before, &tables);
        Cost {
            case: name,
            fan_out,
            events_per_request: per_request,
            with_ids,
            every_s: every.map(|e| e.as_secs_f64()),
            deliveries,
            jobs_per_batch: jobs as f64 / batches.max(1) as f64,
            wru_per_delivery: used.write_units / d,
            rru_per_delivery: used.read_units / d,
            dynamodb_requests_per_delivery: used.dynamodb_requests as f64 / d,
            sqs_requests_per_delivery: used.sqs_requests as f64 / d,
            lambda_ms_per_delivery: lambda_ms / d,
            usd_per_million_deliveries: shares.dynamodb
                + shares.sqs
                + shares.lambda
                + shares.api_gateway,
            usd_share: shares,
            dynamodb_per_delivery,
            logs,
            hottest_partition_wcu_per_s: hottest.as_ref().map_or(0.0, |(units, _)| units / seconds),
            hottest_partition: hottest.map(|(units, h)| HottestPartition {
                wcu_per_s: units / seconds,
                wcu_per_s_at_5000_deliveries_per_s: units / d * 5_000.0,
                ..h
            }),
        }
    }
}

/// Runs sender batches until the receiver holds `deliveries`: the billed milliseconds, the
/// batches and the jobs they held. Like Lambda's poller, a batch gathers receives (10 messages
/// each) up to the template's batch size, or until the queue has no more.
async fn deliver(
    sender: &Arc<Sender>,
    queue: &Arc<SqsQueue>,
    receiver: &Receiver,
    deliveries: usize,
) -> (f64, usize, usize) {
    let (mut ms, mut batches, mut jobs) = (0.0, 0, 0);
    let batch_size = sender_batch_size();
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.count() < deliveries {
        assert!(Instant::now() < deadline, "metered deliveries stalled");
        let mut received = Vec::new();
        while received.len() < batch_size {
            let more = queue
                .receive_batch(BATCH.min(batch_size - received.len()))
                .await
                .expect("receive from moto");
            let last = more.len() < BATCH;
            received.extend(more);
            if last {
                break;
            }
        }
        if received.is_empty() {
            continue;
        }
        let messages: Vec<QueueMessage> = received.iter().map(|r| r.message.clone()).collect();
        let started = Instant::now();
        let failed = sender.process_batch(&messages).await;
        ms += billed_ms(started.elapsed());
        batches += 1;
        jobs += messages.len();
        let done: Vec<String> = received
            .iter()
            .filter(|r| !failed.contains(&r.message.id))
            .map(|r| r.receipt_handle.clone())
            .collect();
        queue.acknowledge(&done).await.expect("delete from moto");
    }
    (ms, batches, jobs)
}

/// The partition with the most write units since `before` (its units, and what it is).
fn hottest_partition(
    usage: &Usage,
    before: &[(String, String, f64)],
    tables: &[(String, &'static str)],
) -> Option<(f64, HottestPartition)> {
    let earlier: HashMap<(&str, &str), f64> = before
        .iter()
        .map(|(t, k, u)| ((t.as_str(), k.as_str()), *u))
        .collect();
    let (table, key, units) = usage
        .partition_writes()
        .into_iter()
        .map(|(t, k, u)| {
            let was = earlier
                .get(&(t.as_str(), k.as_str()))
                .copied()
                .unwrap_or(0.0);
            (t, k, u - was)
        })
        .filter(|(.., u)| *u > 0.0)
        .max_by(|a, b| a.2.total_cmp(&b.2))?;
    let (name, index) = table.split_once('/').unwrap_or((&table, ""));
    let role = tables
        .iter()
        .find(|(t, _)| t == name)
        .map_or("other", |(_, role)| role);
    let (key_kind, shown) = key_kind(&key);
    Some((
        units,
        HottestPartition {
            wcu_per_s: 0.0,
            wcu_per_s_at_5000_deliveries_per_s: 0.0,
            table: if index.is_empty() {
                role.to_string()
            } else {
                format!("{role}/{index}")
            },
            key_kind,
            key: shown.then_some(key),
        },
    ))
}

/// What a partition key is, and whether it may be shown (it holds no caller data).
fn key_kind(key: &str) -> (&'static str, bool) {
    if (key.starts_with("hook_") || key.starts_with("operational")) && key.contains("#d") {
        ("hook id and delivery shard", true)
    } else if key.starts_with("hook_") || key == "operational" {
        ("hook id", true)
    } else if key.contains("#event#") {
        ("event claim (caller's event id)", false)
    } else if key.ends_with("#hooks") {
        ("hook list", true)
    } else if key.contains('#') {
        ("event subscriptions", true)
    } else {
        ("other", false)
    }
}

/// Lambda bills whole milliseconds.
fn billed_ms(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1e3).ceil()
}
