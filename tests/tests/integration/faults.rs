//! Faults the pipeline must survive without losing or repeating work: a sender process killed
//! mid-batch, the AWS services frozen while events arrive, endpoints that fail, hang, reset or
//! never stop talking, and jobs that keep failing until the dead-letter queue takes them.

use crate::support::{Moto, Pipeline, moto, pipeline, set_visibility_timeout, settings, tokens};
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use http::Method;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webhooks::adapters::dynamo::DynamoStore;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::api::{Api, router};
use webhooks::app::sender::Sender;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{
    Delivery, DeliveryId, DeliveryStatus, Job, MAX_CAPTURE_BYTES, SUCCESS_CAPTURE_BYTES,
};
use webhooks::domain::hook::{CustomHeaders, HookId, HookUrl};
use webhooks::domain::retry::RetrySchedule;
use webhooks::domain::signing::{SigningKey, sign};
use webhooks::net::client::DeliveryClient;
use webhooks::net::client::Timeouts;
use webhooks::ports::{JobQueue, Store};
use webhooks_tests::hostile::Endpoint;
use webhooks_tests::moto_server::MotoServer;
use webhooks_tests::provision::{Provisioned, moto_config, provision};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::slow_receiver::SlowReceiver;
use webhooks_tests::{pump, unique_prefix};

/// Runs a test body, failing it (and dropping its processes) if it exceeds `limit`.
async fn bounded<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {limit:?}"))
}

async fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Messages in the queue: visible, in flight and delayed.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> u64 {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("read the queue's attributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ]
    .iter()
    .map(|name| {
        attrs
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

async fn deliveries_of(store: &dyn Store, hook: &HookId) -> Vec<Delivery> {
    webhooks_tests::deliveries_between(store, hook, 0, now_ms() + 60_000).await
}

fn hook_id(hook: &Value) -> HookId {
    HookId::parse(hook["id"].as_str().expect("the hook has an id")).unwrap()
}

/// `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`).
fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The sender loop in a process of its own (`sender-worker`), SIGKILLed on drop.
pub(crate) struct Worker(Child);

impl Worker {
    pub(crate) fn start(provisioned: &Provisioned) -> Self {
        let endpoint = std::env::var("WEBHOOKS_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
            panic!("WEBHOOKS_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test")
        });
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        let child = Command::new(env!("CARGO_BIN_EXE_sender-worker"))
            .env_clear()
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("WEBHOOKS_HOOKS_TABLE", &provisioned.hooks_table)
            .env("WEBHOOKS_DELIVERIES_TABLE", &provisioned.deliveries_table)
            .env("WEBHOOKS_QUEUE_URL", &provisioned.queue_url)
            .env("WEBHOOKS_ALLOWED_CIDRS", "127.0.0.0/8")
            .env("WEBHOOKS_ALLOW_HTTP", "true")
            .env("WEBHOOKS_RETRY_SCHEDULE", "1s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start sender-worker");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

const EVENTS: usize = 40;
/// How long after a request of the worker arrives it is killed: at once (the request is in
/// flight, unrecorded), or about when its answer is being recorded and the batch deleted.
const KILL_DELAYS_MS: [u64; 6] = [0, 290, 0, 320, 0, 260];

#[tokio::test]
async fn a_sender_killed_mid_batch_loses_nothing_and_never_resends_a_recorded_success() {
    bounded(Duration::from_secs(100), async {
        let p = pipeline("killed", "1s").await;
        set_visibility_timeout(&p.moto, 2).await;
        let receiver = SlowReceiver::start(Duration::from_millis(250)).await;
        let hooks = [
            hook_id(&p.create_hook(&receiver.url("/a"), &["User.Created"]).await),
            hook_id(&p.create_hook(&receiver.url("/b"), &["User.Created"]).await),
        ];
        let mut worker = Worker::start(&p.moto.provisioned);

        let post = async {
            let mut accepted = Vec::new();
            for i in 0..EVENTS {
                let r = p
                    .post_event(json!({"event": "User.Created", "data": {"id": format!("u_{i}")}}))
                    .await;
                assert_eq!(r.status, 202, "{}", r.body_json());
                assert_eq!(r.body_json()["deliveries"], 2);
                accepted.push(r.body_json()["id"].as_str().unwrap().to_string());
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            accepted
        };
        let kill = async {
            for delay in KILL_DELAYS_MS {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let seen = receiver.arrival_count();
                wait_until(Duration::from_secs(20), "a request of the worker", || {
                    receiver.arrival_count() > seen && receiver.in_flight() > 0
                })
                .await;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                worker.kill();
                tokio::time::sleep(Duration::from_millis(100)).await;
                worker = Worker::start(&p.moto.provisioned);
            }
        };
        let (accepted, ()) = tokio::join!(post, kill);

        let expected = accepted.len() * hooks.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        let deliveries = loop {
            let mut all = Vec::new();
            for hook in &hooks {
                all.extend(deliveries_of(p.moto.store.as_ref(), hook).await);
            }
            let done = all
                .iter()
                .filter(|d| d.status == DeliveryStatus::Success)
                .count();
            if done >= expected {
                break all;
            }
            assert!(
                Instant::now() < deadline,
                "{done} of {expected} deliveries succeeded within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while queue_depth(&p.moto.sqs, &p.moto.provisioned.queue_url).await > 0 {
            assert!(
                Instant::now() < deadline,
                "the queue did not drain after the kills"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        worker.kill();

        assert_eq!(deliveries.len(), expected, "one delivery per event per hook");
        for hook in &hooks {
            let events: HashSet<&str> = deliveries
                .iter()
                .filter(|d| &d.hook_id == hook)
                .map(|d| d.event_id.as_str())
                .collect();
            let wanted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
            assert_eq!(events, wanted, "every accepted event reached hook {hook}");
        }
        let mut recorded_end: HashMap<String, i64> = HashMap::new();
        for d in &deliveries {
            assert_eq!(d.status, DeliveryStatus::Success, "{}", d.id);
            assert_eq!(
                d.attempts.len(),
                1,
                "{}: an interrupted attempt is never recorded, the success once",
                d.id
            );
            let a = &d.attempts[0];
            assert!(a.succeeded(), "{}: {a:?}", d.id);
            recorded_end.insert(d.id.to_string(), a.started_at + a.duration_ms as i64);
        }

        let arrivals = receiver.arrivals();
        let mut per_delivery: HashMap<&str, usize> = HashMap::new();
        for a in &arrivals {
            let end = *recorded_end
                .get(&a.webhook_id)
                .unwrap_or_else(|| panic!("{} is not a recorded delivery", a.webhook_id));
            // Both clocks are floored to whole milliseconds.
            assert!(
                a.at_ms <= end + 2,
                "{} arrived at {} after its success was recorded (attempt ended at {end})",
                a.webhook_id,
                a.at_ms
            );
            *per_delivery.entry(a.webhook_id.as_str()).or_default() += 1;
        }
        assert_eq!(
            per_delivery.len(),
            expected,
            "every delivery reached the receiver"
        );
        let interrupted = KILL_DELAYS_MS.iter().filter(|d| **d == 0).count();
        assert!(
            arrivals.len() >= expected + interrupted,
            "each immediate kill interrupted a request in flight, which was sent again: {} arrivals for {expected} deliveries",
            arrivals.len()
        );
    })
    .await;
}

/// A pipeline on a moto server of its own, every AWS call bounded by `timeouts`.
fn pipeline_on(sdk: &SdkConfig, provisioned: Provisioned, schedule: &str) -> Pipeline {
    let settings = settings(schedule);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        provisioned.hooks_table.clone(),
        provisioned.deliveries_table.clone(),
    ));
    let queue = Arc::new(SqsQueue::new(sqs.clone(), provisioned.queue_url.clone()));
    Pipeline {
        router: router(Api::new(
            store.clone(),
            queue.clone(),
            DeliveryClient::from_settings(&settings),
            tokens(),
            &settings,
        )),
        sender: Sender::new(
            store.clone(),
            queue.clone(),
            DeliveryClient::from_settings(&settings),
            settings.retry_schedule.clone(),
        ),
        moto: Moto {
            store,
            queue,
            provisioned,
            sqs,
        },
    }
}

#[tokio::test]
async fn while_moto_is_frozen_ingest_answers_503_and_every_202_is_delivered() {
    bounded(Duration::from_secs(100), async {
        let server = MotoServer::start().await;
        let lenient = server
            .sdk_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .await;
        let provisioned = provision(&lenient, &unique_prefix("frozen")).await;
        let short = server
            .sdk_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(1))
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .await;
        let receiving = SqsQueue::new(
            aws_sdk_sqs::Client::new(&lenient),
            provisioned.queue_url.clone(),
        );
        let p = pipeline_on(&short, provisioned, "1s");
        let receiver = Receiver::start(&[]).await;
        let hook = hook_id(&p.create_hook(&receiver.url("/in"), &["PostSignIn"]).await);

        let mut accepted: Vec<(u64, String)> = Vec::new();
        let post = |seq: u64| p.post_event(json!({"event": "PostSignIn", "seq": seq}));
        for seq in 0..4 {
            let r = post(seq).await;
            assert_eq!(r.status, 202, "moto is up: {}", r.body_json());
            accepted.push((seq, r.body_json()["id"].as_str().unwrap().to_string()));
        }

        server.pause();
        for seq in 4..7 {
            let started = Instant::now();
            let r = post(seq).await;
            assert_eq!(r.status, 503, "moto is frozen: {}", r.body_json());
            assert_eq!(r.body_json()["code"], "service.unavailable");
            assert!(
                started.elapsed() < Duration::from_secs(6),
                "the 503 took {:?}: the SDK timeouts did not apply",
                started.elapsed()
            );
        }
        server.resume();

        let deadline = Instant::now() + Duration::from_secs(30);
        while aws_sdk_dynamodb::Client::new(&short)
            .list_tables()
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "moto did not recover after SIGCONT"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for seq in 7..11 {
            let r = post(seq).await;
            assert_eq!(r.status, 202, "moto is back: {}", r.body_json());
            accepted.push((seq, r.body_json()["id"].as_str().unwrap().to_string()));
        }

        let wanted: HashSet<u64> = accepted.iter().map(|(seq, _)| *seq).collect();
        let delivered = || -> HashSet<u64> {
            receiver
                .received()
                .iter()
                .filter_map(|r| r.json()["seq"].as_u64())
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(40);
        while !wanted.is_subset(&delivered()) {
            assert!(
                Instant::now() < deadline,
                "accepted events not delivered: {:?}",
                wanted.difference(&delivered()).collect::<Vec<_>>()
            );
            pump(&receiving, &p.sender, 1).await;
        }
        pump(&receiving, &p.sender, 1).await;

        let records = deliveries_of(p.moto.store.as_ref(), &hook).await;
        for (seq, event_id) in &accepted {
            let d = records
                .iter()
                .find(|d| d.event_id.as_str() == event_id)
                .unwrap_or_else(|| panic!("no delivery record for accepted event {seq}"));
            assert_eq!(d.status, DeliveryStatus::Success, "event {seq}: {d:?}");
        }
    })
    .await;
}

/// A pipeline whose sender gives up on an endpoint after one second.
async fn impatient_pipeline(name: &str) -> Pipeline {
    let mut p = pipeline(name, "1s,1s").await;
    let mut settings = settings("1s,1s");
    settings.timeouts = Timeouts {
        connect: Duration::from_secs(1),
        total: Duration::from_secs(1),
    };
    p.sender = Sender::new(
        p.moto.store.clone(),
        p.moto.queue.clone(),
        DeliveryClient::from_settings(&settings),
        RetrySchedule::parse("1s,1s").unwrap(),
    );
    p
}

/// Pumps until no delivery of `hooks` is pending any more.
async fn pump_until_settled(p: &Pipeline, hooks: &[HookId], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pending = 0;
        for hook in hooks {
            let deliveries = deliveries_of(p.moto.store.as_ref(), hook).await;
            // No record yet: the first job still carries the delivery.
            pending += deliveries
                .iter()
                .filter(|d| d.status == DeliveryStatus::Pending)
                .count()
                .max(usize::from(deliveries.is_empty()));
        }
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries still pending after {timeout:?}"
        );
        pump(&p.moto.queue, &p.sender, 1).await;
    }
}

async fn recent_log(p: &Pipeline, hook: &HookId) -> Value {
    let r = p
        .admin(Method::GET, &format!("/api/hooks/{hook}/recent-logs"), None)
        .await;
    assert_eq!(r.status, 200);
    let logs = r.body_json();
    assert_eq!(logs.as_array().map(Vec::len), Some(1), "{logs}");
    logs[0].clone()
}

#[tokio::test]
async fn failing_hanging_and_resetting_endpoints_are_retried_on_schedule_and_logged_by_kind() {
    bounded(Duration::from_secs(90), async {
        let p = impatient_pipeline("hostile").await;
        let failing = Endpoint::answering(500, 20_000).await;
        let hanging = Endpoint::hanging().await;
        let resetting = Endpoint::resetting().await;
        let cases = [
            (&failing, "http", Some(500u64)),
            (&hanging, "timeout", None),
            (&resetting, "connect", None),
        ];
        let mut hooks = Vec::new();
        for (endpoint, _, _) in &cases {
            hooks.push(hook_id(
                &p.create_hook(&endpoint.url("/in"), &["Role.Created"]).await,
            ));
        }
        let r = p
            .post_event(json!({"event": "Role.Created", "data": {"id": "r_1"}}))
            .await;
        assert_eq!(r.body_json()["deliveries"], 3);

        pump_until_settled(&p, &hooks, Duration::from_secs(60)).await;
        pump(&p.moto.queue, &p.sender, 2).await;

        for ((endpoint, kind, status), hook) in cases.iter().zip(&hooks) {
            let log = recent_log(&p, hook).await;
            assert_eq!(log["result"], "Error", "{kind}: {log}");
            assert_eq!(log["reason"], "all attempts failed", "{kind}");
            assert_eq!(log["attemptCount"], 3, "{kind}: {log}");
            assert_eq!(endpoint.connections(), 3, "{kind}: one request per attempt");
            let attempts = log["attempts"].as_array().unwrap();
            for (i, a) in attempts.iter().enumerate() {
                assert_eq!(a["number"], i as u64 + 1, "{kind}");
                assert_eq!(a["errorKind"], *kind, "{kind}: {a}");
                assert_eq!(a["responseStatus"].as_u64(), *status, "{a}");
                let body = a["responseBody"].as_str().unwrap_or("");
                assert!(body.len() <= MAX_CAPTURE_BYTES, "{kind}: {}", body.len());
                let duration = a["durationMs"].as_u64().unwrap();
                assert!(duration < 2_000, "{kind}: the attempt took {duration} ms");
                if *kind == "timeout" {
                    assert!(duration >= 900, "gave up after {duration} ms, not 1 s");
                }
            }
            if status.is_some() {
                assert_eq!(
                    attempts[0]["responseBody"].as_str().unwrap().len(),
                    MAX_CAPTURE_BYTES,
                    "the first 8 KiB of a 20 kB answer are kept"
                );
            }
            for pair in attempts.windows(2) {
                let gap = pair[1]["startedAt"].as_i64().unwrap()
                    - pair[0]["startedAt"].as_i64().unwrap()
                    - pair[0]["durationMs"].as_i64().unwrap();
                assert!(
                    (800..5_000).contains(&gap),
                    "{kind}: {gap} ms from the end of one attempt to the next; the schedule says 1 s ± 20 %"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn endless_trickling_and_huge_2xx_answers_succeed_once_keeping_a_short_answer_in_bounded_memory()
 {
    bounded(Duration::from_secs(60), async {
        let p = impatient_pipeline("bodies").await;
        let endless = Endpoint::endless(512, Duration::from_millis(5)).await;
        let trickling = Endpoint::endless(1, Duration::from_millis(10)).await;
        let huge = Endpoint::answering(200, 50 * 1024 * 1024).await;
        let cases = [
            (&endless, "endless"),
            (&trickling, "trickling"),
            (&huge, "huge"),
        ];
        let mut hooks = Vec::new();
        for (endpoint, _) in &cases {
            hooks.push(hook_id(
                &p.create_hook(&endpoint.url("/in"), &["Role.Deleted"])
                    .await,
            ));
        }

        // Resets VmHWM to the current RSS, so the peak below is the peak of the deliveries.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = memory_kib("VmRSS");
        let peak_before = memory_kib("VmHWM");
        let r = p
            .post_event(json!({"event": "Role.Deleted", "data": {"id": "r_2"}}))
            .await;
        assert_eq!(r.body_json()["deliveries"], 3);
        pump_until_settled(&p, &hooks, Duration::from_secs(30)).await;
        let rss_growth = memory_kib("VmRSS").saturating_sub(rss_before);
        let peak_growth = memory_kib("VmHWM").saturating_sub(peak_before);
        assert!(
            rss_growth < 30 * 1024 && peak_growth < 30 * 1024,
            "memory grew by {rss_growth} KiB (peak {peak_growth} KiB) for 50 MiB and endless answers"
        );
        pump(&p.moto.queue, &p.sender, 2).await;

        for ((endpoint, name), hook) in cases.iter().zip(&hooks) {
            let log = recent_log(&p, hook).await;
            assert_eq!(log["result"], "Success", "{name}: {log}");
            assert_eq!(log["attemptCount"], 1, "{name}");
            assert_eq!(endpoint.connections(), 1, "{name}: a 2xx is not retried");
            let a = &log["attempts"][0];
            assert_eq!(a["responseStatus"], 200, "{name}");
            assert!(a.get("errorKind").is_none(), "{name}: {a}");
            let body = a["responseBody"].as_str().unwrap().len();
            let duration = a["durationMs"].as_u64().unwrap();
            if *name == "trickling" {
                assert!(
                    (1..SUCCESS_CAPTURE_BYTES).contains(&body),
                    "what trickled in within the timeout is kept: {body} bytes"
                );
                assert!(
                    (900..2_000).contains(&duration),
                    "the capture ends at the 1 s timeout, not later: {duration} ms"
                );
            } else {
                assert_eq!(
                    body, SUCCESS_CAPTURE_BYTES,
                    "{name}: the start of a success's answer is kept"
                );
                assert!(
                    duration < 1_000,
                    "{name}: the answer was cut at 8 KiB, not read to the timeout ({duration} ms)"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_2xx_whose_body_outlasts_the_timeout_is_a_success_every_time() {
    bounded(Duration::from_secs(30), async {
        let trickling = Endpoint::endless(1, Duration::from_millis(50)).await;
        let mut s = settings("1s");
        s.timeouts = Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(1),
        };
        let client = DeliveryClient::from_settings(&s);
        let url = HookUrl::parse(&trickling.url("/in"), s.url_policy).unwrap();
        let signature = sign(
            &[&SigningKey::generate()],
            &DeliveryId::generate().to_string(),
            now_ms() / 1000,
            b"{}",
        );
        let mut outcomes: HashMap<String, usize> = HashMap::new();
        for _ in 0..4 {
            let mut attempts = tokio::task::JoinSet::new();
            for _ in 0..50 {
                let (client, url, signature) = (client.clone(), url.clone(), signature.clone());
                attempts.spawn(async move {
                    client
                        .post(&url, &CustomHeaders::default(), &signature, "{}")
                        .await
                });
            }
            while let Some(answer) = attempts.join_next().await {
                let answer = answer.unwrap();
                let outcome = format!("{:?} {:?}", answer.status, answer.error_kind);
                *outcomes.entry(outcome).or_default() += 1;
            }
        }
        assert_eq!(
            outcomes,
            HashMap::from([("Some(200) None".to_string(), 200)]),
            "the status arrived in time; the slow body must not decide the outcome"
        );
    })
    .await;
}

#[tokio::test]
async fn a_job_failing_on_infrastructure_moves_to_the_dlq_after_five_receives() {
    bounded(Duration::from_secs(60), async {
        let m = moto("dlq").await;
        set_visibility_timeout(&m, 1).await;
        let missing = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&moto_config().await),
            format!("{}-missing-hooks", m.provisioned.hooks_table),
            format!("{}-missing-deliveries", m.provisioned.deliveries_table),
        ));
        let s = settings("1s");
        let sender = Sender::new(
            missing,
            m.queue.clone(),
            DeliveryClient::from_settings(&s),
            s.retry_schedule,
        );
        let job = Job {
            hook_id: HookId::parse("hook_dlq").unwrap(),
            delivery_id: DeliveryId::generate(),
            attempt: 1,
            due_at: now_ms(),
            reopen: false,
            rate_slot: None,
        };
        m.queue.enqueue(std::slice::from_ref(&job)).await.unwrap();
        let dlq = SqsQueue::new(m.sqs.clone(), m.provisioned.dlq_url.clone());

        let mut receives = 0;
        let deadline = Instant::now() + Duration::from_secs(40);
        let dead = loop {
            assert!(Instant::now() < deadline, "the job never reached the DLQ");
            let got = m.queue.receive(10, 1).await.unwrap();
            if got.is_empty() {
                let dead = dlq.receive(10, 0).await.unwrap();
                if !dead.is_empty() {
                    break dead;
                }
                continue;
            }
            assert_eq!(got.len(), 1);
            let messages = vec![got[0].message.clone()];
            let failed = sender.process_batch(&messages).await;
            assert_eq!(
                failed,
                vec![got[0].message.id.clone()],
                "a storage failure is reported as a batch item failure"
            );
            receives += 1;
        };

        assert_eq!(receives, 5, "maxReceiveCount in the template is 5");
        assert_eq!(dead.len(), 1);
        let parked: Job = serde_json::from_str(&dead[0].message.body).unwrap();
        assert_eq!(parked, job, "the DLQ holds the job unchanged");
        assert!(
            m.queue.receive(10, 1).await.unwrap().is_empty(),
            "the job left the delivery queue"
        );
        assert_eq!(queue_depth(&m.sqs, &m.provisioned.queue_url).await, 0);
    })
    .await;
}
