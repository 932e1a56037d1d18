//! Every route and job of the Lambda path once, under IAM enforcement, so the recording proxy
//! sees each AWS call the binaries make: `wait=true` with a sync hook, the Logto relay, the
//! management routes (the receiver check included), sender batches with retries and rate
//! limits, and a recovery's steps.

use super::delivery::put_secure;
use super::{Recording, Setup, Watch, sqs_record};
use serde_json::{Value, json};
use webhooks::adapters::sqs::SqsQueue;
use webhooks::domain::signing::{SigningKey, logto_signature};
use webhooks_tests::lambda_events::http_event;
use webhooks_tests::moto_server::MotoServer;
use webhooks_tests::provision::Deploy;
use webhooks_tests::receiver::Receiver;
use webhooks_tests::unique_prefix;

const ADMIN: &str = "adm-Routes-Lambda-3d5f7h9j1l3n5p";
const INGEST: &str = "ing-Routes-Lambda-8e0g2i4k6m8o0q";
const LOGTO_KEY: &str = "r7Tz2Kw9Xv4Qt8Yp1Mn6Bc3Hd5Fg0Jb";

/// Plays Lambda's event source mapping: receives batches, invokes the sender, deletes what it
/// did not report failed, until the queue stays empty for `idle` receives in a row.
async fn drain(sender: &Watch, queue: &SqsQueue, arn: &str, idle: usize) {
    let http = reqwest::Client::new();
    let (mut empty, mut rounds) = (0, 0);
    while empty < idle {
        rounds += 1;
        assert!(rounds < 60, "the queue did not drain");
        let queued = queue.receive(10, 1).await.unwrap();
        if queued.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let records: Vec<Value> = queued
            .iter()
            .map(|q| sqs_record(&q.message.id, &q.message.body, arn))
            .collect();
        let answer = sender.invoke(&http, &json!({"Records": records})).await;
        let failed: Vec<&str> = answer["batchItemFailures"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        let done: Vec<String> = queued
            .iter()
            .filter(|q| !failed.contains(&q.message.id.as_str()))
            .map(|q| q.receipt_handle.clone())
            .collect();
        queue.delete(&done).await.unwrap();
    }
}

#[tokio::test]
async fn every_lambda_route_and_job_calls_aws_as_its_role_allows() {
    let server = MotoServer::start().await;
    let prefix = unique_prefix("routes");
    let (admin_parameter, ingest_parameter, sources_parameter) = (
        format!("/{prefix}/admin-tokens"),
        format!("/{prefix}/ingest-tokens"),
        format!("/{prefix}/logto-sources"),
    );
    let stack = Deploy {
        prefix: &prefix,
        parameters: vec![
            ("RetrySchedule", "1s".into()),
            ("AdminTokenParameterName", admin_parameter.clone()),
            ("IngestTokenParameterName", ingest_parameter.clone()),
            ("LogtoSourcesParameterName", sources_parameter.clone()),
        ],
        least_privilege: true,
        without: Vec::new(),
    }
    .run(&server.endpoint)
    .await;
    server.enforce_iam().await;
    let sdk = server
        .sdk_config_as(stack.administrator.as_ref().expect("administrator keys"))
        .await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    put_secure(&ssm, &admin_parameter, ADMIN).await;
    put_secure(&ssm, &ingest_parameter, INGEST).await;
    put_secure(&ssm, &sources_parameter, &format!("prod={LOGTO_KEY}")).await;
    let provisioned = stack.provisioned();
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        provisioned.queue_url.clone(),
    );
    let arn = provisioned.queue_arn.clone();

    let sync = Receiver::start(&[]).await;
    let flaky = Receiver::start(&[500, 500]).await;
    let limited = Receiver::start(&[]).await;
    let recording = Recording::default();
    let setup = Setup {
        stack: &stack,
        extra: &[
            ("WEBHOOKS_ALLOW_HTTP", "true"),
            ("WEBHOOKS_ALLOWED_CIDRS", "127.0.0.0/8"),
        ],
        log_filter: "info",
        recording: &recording,
    };
    let mut api = Watch::start("api", &setup);
    let mut ingest = Watch::start("ingest", &setup);
    let mut sender = Watch::start("sender", &setup);
    for w in [&mut api, &mut ingest, &mut sender] {
        w.ready().await;
    }
    let http = reqwest::Client::new();
    let create = |name: &'static str, config: Value| {
        let (api, http) = (&api, &http);
        async move {
            let body = json!({"name": name, "events": ["PostRegister"], "config": config});
            let created = api
                .request(http, "POST", "/api/hooks", ADMIN, Some(&body))
                .await;
            assert_eq!(created.status, 201, "{}", created.raw);
            created.body["id"].as_str().unwrap().to_string()
        }
    };
    let sync_id = create(
        "sync",
        json!({"url": sync.url("/sync"), "mode": "sync", "timeoutMs": 5000}),
    )
    .await;
    let flaky_id = create("flaky", json!({"url": flaky.url("/flaky")})).await;
    let limited_id = create(
        "limited",
        json!({"url": limited.url("/limited"), "rateLimit": 1}),
    )
    .await;

    // Synchronous hooks answer in the request; the others are queued.
    let signup = json!({"event": "PostRegister", "userId": "u_1"});
    let waited = ingest
        .request(
            &http,
            "POST",
            "/api/events?wait=true",
            INGEST,
            Some(&signup),
        )
        .await;
    assert_eq!(waited.status, 200, "{}", waited.raw);
    assert_eq!(sync.count(), 1, "{}", waited.raw);
    assert!(waited.raw.contains(&sync_id), "{}", waited.raw);

    // Logto's relay, signed with the source's key from its parameter.
    let relayed = json!({"event": "PostRegister", "createdAt": "2026-12-02T08:00:00.000Z",
                         "userId": "u_2", "hookId": "l0gt0h00k1d"});
    let key = SigningKey::import(LOGTO_KEY).unwrap();
    let mut event = http_event("POST", "/api/ingest/logto/prod", "", Some(&relayed));
    let signature = logto_signature(&key, event["body"].as_str().unwrap().as_bytes());
    event["headers"]["logto-signature-sha-256"] = json!(signature);
    let answer = ingest.invoke(&http, &event).await;
    assert_eq!(answer["statusCode"], 202, "{answer}");

    // An event too large to ride in its jobs keeps its fields in the table; sent twice, the
    // repeat finds the first one's claim.
    let large = json!({"event": "PostRegister", "id": "evt_large", "userId": "u_3",
                       "user": {"id": "u_3", "bio": "x".repeat(8_000)}});
    for _ in 0..2 {
        let accepted = ingest
            .request(&http, "POST", "/api/events", INGEST, Some(&large))
            .await;
        assert_eq!(accepted.status, 202, "{}", accepted.raw);
    }

    // Retries (the flaky hook fails twice), the rate limit's slots, the sync hook skipped.
    drain(&sender, &queue, &arn, 3).await;
    assert!(
        limited.count() >= 3,
        "events delivered: {}",
        limited.count()
    );
    assert!(flaky.count() >= 2, "attempts: {}", flaky.count());

    let hook = |id: &str, rest: &str| format!("/api/hooks/{id}{rest}");
    for (method, path, body, status) in [
        ("GET", "/api/hooks".to_string(), None, 200),
        ("GET", "/api/hook-events".to_string(), None, 200),
        ("GET", hook(&flaky_id, ""), None, 200),
        (
            "PATCH",
            hook(&flaky_id, ""),
            Some(json!({"name": "flaky-renamed"})),
            200,
        ),
        ("GET", hook(&flaky_id, "/stats"), None, 200),
        (
            "POST",
            hook(&limited_id, "/test"),
            Some(json!({"events": ["PostRegister"]})),
            204,
        ),
        (
            "PATCH",
            hook(&limited_id, "/signing-key"),
            Some(json!({"expireAfterSeconds": 60})),
            200,
        ),
    ] {
        let answer = api
            .request(&http, method, &path, ADMIN, body.as_ref())
            .await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.raw);
    }

    // The receiver check: run by the api function well within its 30 s timeout, the report
    // kept in the deliveries table and listed back.
    let started = std::time::Instant::now();
    let checked = api
        .request(&http, "POST", &hook(&limited_id, "/check"), ADMIN, None)
        .await;
    assert_eq!(checked.status, 200, "{}", checked.raw);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the check took {:?}",
        started.elapsed()
    );
    assert_eq!(checked.body["checks"].as_array().unwrap().len(), 13);
    let kept = api
        .request(&http, "GET", &hook(&limited_id, "/checks"), ADMIN, None)
        .await;
    assert_eq!(kept.status, 200, "{}", kept.raw);
    assert_eq!(kept.body, json!([checked.body]));

    // A failed delivery retried by hand, then a recovery re-sending the hook's failures.
    let logs = api
        .request(&http, "GET", &hook(&flaky_id, "/recent-logs"), ADMIN, None)
        .await;
    assert_eq!(logs.status, 200, "{}", logs.raw);
    let delivery = logs.body[0]["id"].as_str().unwrap().to_string();
    let retried = api
        .request(
            &http,
            "POST",
            &hook(&flaky_id, &format!("/deliveries/{delivery}/retry")),
            ADMIN,
            None,
        )
        .await;
    assert!(
        (200..300).contains(&retried.status),
        "retry: {}",
        retried.raw
    );
    drain(&sender, &queue, &arn, 2).await;
    let recovery = api
        .request(
            &http,
            "POST",
            &hook(&flaky_id, "/recover"),
            ADMIN,
            Some(&json!({"since": 0})),
        )
        .await;
    assert_eq!(recovery.status, 202, "{}", recovery.raw);
    let recovery_id = recovery.body["id"].as_str().unwrap().to_string();
    drain(&sender, &queue, &arn, 2).await;
    let progress = api
        .request(
            &http,
            "GET",
            &hook(&flaky_id, &format!("/recoveries/{recovery_id}")),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(progress.status, 200, "{}", progress.raw);
    let deleted = api
        .request(&http, "DELETE", &hook(&sync_id, ""), ADMIN, None)
        .await;
    assert!(
        (200..300).contains(&deleted.status),
        "delete: {}",
        deleted.raw
    );

    for watch in [api, ingest, sender] {
        watch.stop();
    }
    recording.assert_uses_its_grants(
        &stack,
        "every_lambda_route_and_job_calls_aws_as_its_role_allows",
    );
}
