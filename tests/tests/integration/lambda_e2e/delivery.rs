//! The three binaries together: tokens from SSM SecureString parameters, deliveries both
//! verifiers accept (before and after a key rotation), a mixed SQS batch of which exactly the
//! broken jobs come back, and output of valid EMF and JSON logs without any secret in it.

use super::{Recording, Setup, Watch, sqs_record};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ssm::types::ParameterType;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::domain::delivery::{DeliveryId, Job};
use webhooks::domain::hook::HookId;
use webhooks_tests::moto_server::MotoServer;
use webhooks_tests::provision::{Deploy, Stack};
use webhooks_tests::receiver::{Received, Receiver};
use webhooks_tests::verifiers::{logto_node_verifies, standard_webhooks_verifies};
use webhooks_tests::{emf, unique_prefix};

const ADMIN: &str = "adm-Lambda-9c1e5a7f3b2d4e6a8c0e";
const ADMIN_NEXT: &str = "adm-Lambda-Next-4f6a8c0e2b4d6f8a";
const INGEST: &str = "ing-Lambda-7d9f1b3c5e7a9c1e3g5h";
/// Plain token variables, set on every function and never accepted on AWS.
const PLAIN_ADMIN: &str = "adm-Plain-Variable-3e5g7i9k1m3o";
const PLAIN_INGEST: &str = "ing-Plain-Variable-8h0j2l4n6p8r";
/// `whsec_` + base64 of these 32 bytes.
const KEY_BYTES: &str = "LambdaE2E-signing-key-0123456789";
const SIGNING_KEY: &str = "whsec_TGFtYmRhRTJFLXNpZ25pbmcta2V5LTAxMjM0NTY3ODk=";
const HEADER_VALUE: &str = "HeaderSecret-Lambda-6Jw3Nq9Vx2Zb";
const URL_PASSWORD: &str = "UrlPassword-Lambda-1Hs8Kd5Pf3";

pub(super) async fn put_secure(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
}

/// The action the crippled ingest function lacks: queueing a delivery needs it.
const WITHOUT: &str = "ingest:sqs:SendMessage";

/// The sender neither reads tokens nor may: no token parameter in its environment, no SSM
/// action in its role.
fn assert_sender_reads_no_tokens(stack: &Stack) {
    let sender = stack.function("sender");
    let parameters: Vec<&String> = sender
        .environment
        .keys()
        .filter(|k| k.contains("TOKEN"))
        .collect();
    assert!(parameters.is_empty(), "the sender is given {parameters:?}");
    let actions = sender.credentials.as_ref().expect("role keys").actions();
    assert!(!actions.is_empty(), "the sender's role holds no action");
    assert!(
        actions.iter().all(|a| !a.starts_with("ssm:")),
        "the sender's role holds {actions:?}"
    );
}

/// Both signatures verify with `key` (Standard Webhooks also with each of `also`), in the
/// official Python library and in Logto's Node snippet.
pub(super) fn assert_verified(received: &Received, key: &str, also: &[&str]) {
    for k in std::iter::once(&key).chain(also) {
        standard_webhooks_verifies(k, received)
            .unwrap_or_else(|e| panic!("standardwebhooks with {k}: {e}"));
    }
    logto_node_verifies(key, received).unwrap_or_else(|e| panic!("Logto's snippet: {e}"));
}

/// A request a function must refuse: (function, method, path, token, body, the status, or
/// any 4xx when `None`).
type Refused<'a> = (
    &'a Watch,
    &'a str,
    String,
    &'a str,
    Option<Value>,
    Option<u16>,
);

fn bad_hook(config: Value) -> Value {
    json!({"name": "bad", "events": ["PostSignIn"], "config": config})
}

#[tokio::test]
async fn lambda_binaries_deliver_signed_events_and_keep_secrets() {
    // A moto of its own that enforces IAM: each function holds only its role's policy.
    let server = MotoServer::start().await;
    let prefix = unique_prefix("lambda");
    let admin_parameter = format!("/{prefix}/admin-tokens");
    let ingest_parameter = format!("/{prefix}/ingest-tokens");
    let stack = Deploy {
        prefix: &prefix,
        parameters: vec![
            ("RetrySchedule", "1s".into()),
            ("AdminTokenParameterName", admin_parameter.clone()),
            ("IngestTokenParameterName", ingest_parameter.clone()),
        ],
        least_privilege: true,
        without: vec![WITHOUT],
    }
    .run(&server.endpoint)
    .await;
    server.enforce_iam().await;
    let sdk = server
        .sdk_config_as(stack.administrator.as_ref().expect("administrator keys"))
        .await;
    let provisioned = stack.provisioned();
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        provisioned.queue_url.clone(),
    );
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    put_secure(&ssm, &admin_parameter, &format!("{ADMIN},{ADMIN_NEXT}")).await;
    put_secure(&ssm, &ingest_parameter, INGEST).await;
    assert_sender_reads_no_tokens(&stack);

    let receiver = Receiver::start(&[]).await;
    let failing = Receiver::start(&[500]).await;
    let recording = Recording::default();
    let setup = Setup {
        stack: &stack,
        extra: &[
            ("WEBHOOKS_ALLOW_HTTP", "true"),
            ("WEBHOOKS_ALLOWED_CIDRS", "127.0.0.0/8"),
            ("WEBHOOKS_ADMIN_TOKEN", PLAIN_ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", PLAIN_INGEST),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
        log_filter: "debug",
        recording: &recording,
    };
    let mut api = Watch::start("api", &setup);
    let mut ingest = Watch::start("ingest", &setup);
    let mut sender = Watch::start("sender", &setup);
    for w in [&mut api, &mut ingest, &mut sender] {
        w.ready().await;
    }
    let http = reqwest::Client::new();
    // Answers that must not carry a secret: (request, whole invoke answer).
    let mut answers: Vec<(String, String)> = Vec::new();

    let created = api
        .request(
            &http,
            "POST",
            "/api/hooks",
            ADMIN,
            Some(&json!({
                "name": "lambda",
                "events": ["User.Created", "PostRegister"],
                "config": {"url": receiver.url("/lambda"), "headers": {"x-api-key": HEADER_VALUE}},
                "signingKey": SIGNING_KEY,
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let hook_id = created.body["id"].as_str().unwrap().to_string();
    let hook_path = format!("/api/hooks/{hook_id}");

    let event = json!({"event": "User.Created", "data": {"id": "u_l"}});
    let accepted = ingest
        .request(&http, "POST", "/api/events", INGEST, Some(&event))
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.raw);
    assert_eq!(accepted.body["deliveries"], 1);

    // Refused requests, many of them carrying a secret the answer must not repeat. The api
    // function gets no ingest tokens from the template, so an ingest token is unknown there.
    let header_with_newline = json!({"x-api-key": format!("{HEADER_VALUE}\r\n")});
    let mut bad_key = bad_hook(json!({"url": receiver.url("/x")}));
    bad_key["signingKey"] = json!(format!("{SIGNING_KEY} {HEADER_VALUE}"));
    let refused: Vec<Refused> = vec![
        (
            &ingest,
            "POST",
            "/api/events".into(),
            PLAIN_INGEST,
            Some(event.clone()),
            Some(401),
        ),
        (
            &ingest,
            "POST",
            "/api/events".into(),
            PLAIN_ADMIN,
            Some(event.clone()),
            Some(401),
        ),
        (
            &api,
            "GET",
            "/api/hooks".into(),
            PLAIN_ADMIN,
            None,
            Some(401),
        ),
        (&api, "GET", hook_path.clone(), INGEST, None, None),
        (
            &ingest,
            "POST",
            "/api/events".into(),
            INGEST,
            Some(json!({"event": "Nope", "userId": HEADER_VALUE})),
            Some(400),
        ),
        (
            &api,
            "POST",
            "/api/hooks".into(),
            ADMIN,
            Some(bad_hook(
                json!({"url": receiver.url("/x"), "headers": header_with_newline}),
            )),
            Some(400),
        ),
        (
            &api,
            "POST",
            "/api/hooks".into(),
            ADMIN,
            Some(bad_key),
            Some(400),
        ),
        (
            &api,
            "POST",
            "/api/hooks".into(),
            ADMIN,
            Some(bad_hook(
                json!({"url": format!("https://u:{URL_PASSWORD}@hooks.example.com/")}),
            )),
            Some(400),
        ),
        (
            &api,
            "PATCH",
            hook_path.clone(),
            ADMIN,
            Some(json!({"config": {"url": "ftp://hooks.example.com/"}})),
            Some(400),
        ),
        (
            &api,
            "GET",
            format!("/api/hooks/{}", HookId::generate()),
            ADMIN,
            None,
            Some(404),
        ),
        (
            &api,
            "POST",
            format!("{hook_path}/test"),
            ADMIN,
            Some(json!({
                "events": ["User.Created"],
                "config": {"url": failing.url("/fail"), "headers": {"x-api-key": HEADER_VALUE}},
            })),
            Some(422),
        ),
    ];
    for (function, method, path, token, body, expected) in refused {
        let answer = function
            .request(&http, method, &path, token, body.as_ref())
            .await;
        let case = format!("{method} {path}");
        match expected {
            Some(status) => assert_eq!(answer.status, status, "{case}: {}", answer.raw),
            None => assert!(
                (400..500).contains(&answer.status),
                "{case}: {}",
                answer.raw
            ),
        }
        assert!(answer.body["code"].is_string(), "{case}: {}", answer.raw);
        answers.push((case, answer.raw));
    }
    assert_eq!(failing.received().len(), 1, "the test request was sent");

    // A mixed batch: the queued job, two messages that are no job, a job for an unknown
    // delivery (skipped, so a success) and one whose delivery record is unreadable.
    let queued = queue.receive(10, 2).await.unwrap();
    assert_eq!(queued.len(), 1);
    // Under a hook of its own, so the real hook's delivery log stays readable.
    let (other_hook, unreadable) = (HookId::generate(), DeliveryId::generate());
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&provisioned.deliveries_table)
        .item("pk", AttributeValue::S(other_hook.to_string()))
        .item("sk", AttributeValue::S(unreadable.to_string()))
        .item("status", AttributeValue::N("42".into()))
        .send()
        .await
        .unwrap();
    let job = |hook_id: HookId, delivery_id: DeliveryId| {
        serde_json::to_string(&Job {
            hook_id,
            delivery_id,
            attempt: 1,
            due_at: webhooks::domain::clock::now_ms(),
            reopen: false,
            rate_slot: None,
        })
        .unwrap()
    };
    let arn = &provisioned.queue_arn;
    let unknown = job(HookId::parse(&hook_id).unwrap(), DeliveryId::generate());
    let batch = json!({"Records": [
        sqs_record(&queued[0].message.id, &queued[0].message.body, arn),
        sqs_record("not-json", "not a job", arn),
        sqs_record("not-a-job", &json!({"hookId": hook_id}).to_string(), arn),
        sqs_record("unknown-delivery", &unknown, arn),
        sqs_record("unreadable-record", &job(other_hook, unreadable), arn),
    ]});
    let answer = sender.invoke(&http, &batch).await;
    let failures: BTreeSet<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("no batchItemFailures: {answer}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    let expected = BTreeSet::from(["not-a-job", "not-json", "unreadable-record"]);
    assert_eq!(failures, expected, "{answer}");

    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["hookId"], hook_id.as_str());
    assert_eq!(got[0].json()["data"]["id"], "u_l");
    assert_eq!(got[0].header("x-api-key"), HEADER_VALUE);
    assert_verified(&got[0], SIGNING_KEY, &[]);

    // The parameter's second admin token rotates the key; the old key keeps signing too.
    let rotated = api
        .request(
            &http,
            "PATCH",
            &format!("{hook_path}/signing-key"),
            ADMIN_NEXT,
            Some(&json!({"expireAfterSeconds": 3600})),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.raw);
    let rotated_key = rotated.body["signingKey"].as_str().unwrap().to_string();
    assert_ne!(rotated_key, SIGNING_KEY);
    let second = json!({"event": "PostRegister", "userId": "u_2"});
    let accepted = ingest
        .request(&http, "POST", "/api/events", ADMIN, Some(&second))
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.raw);
    let queued = queue.receive(10, 2).await.unwrap();
    assert_eq!(queued.len(), 1);
    let record = sqs_record(&queued[0].message.id, &queued[0].message.body, arn);
    let answer = sender.invoke(&http, &json!({"Records": [record]})).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].json()["event"], "PostRegister");
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 2);
    assert_verified(&got[1], &rotated_key, &[SIGNING_KEY]);

    // The same message received a second time: the function passes SQS's receive count on,
    // so the sender reads the record, finds the success and sends nothing.
    let mut again = record.clone();
    again["attributes"]["ApproximateReceiveCount"] = json!("2");
    let answer = sender.invoke(&http, &json!({"Records": [again]})).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "not sent again after its success"
    );

    let logs = api
        .request(
            &http,
            "GET",
            &format!("{hook_path}/recent-logs"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(logs.status, 200, "{}", logs.raw);
    let results: Vec<&Value> = logs.body.as_array().unwrap().iter().collect();
    assert!(
        results.len() == 2 && results.iter().all(|d| d["result"] == "Success"),
        "{}",
        logs.raw
    );
    answers.push(("the delivery log".into(), logs.raw));

    // Everything the emulators and the functions printed; each function logged JSON lines.
    let mut output = String::new();
    for watch in [api, ingest, sender] {
        let function = watch.function;
        let (stdout, stderr) = watch.stop();
        assert!(
            stdout
                .lines()
                .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"].is_string())),
            "no JSON log line from {function}:\n{stdout}{stderr}"
        );
        output.push_str(&stdout);
        output.push_str(&stderr);
    }

    let secrets = [
        ("admin token", ADMIN.to_string()),
        ("second admin token", ADMIN_NEXT.to_string()),
        ("ingest token", INGEST.to_string()),
        ("plain admin variable", PLAIN_ADMIN.to_string()),
        ("plain ingest variable", PLAIN_INGEST.to_string()),
        ("signing key", SIGNING_KEY.to_string()),
        ("signing key's base64", SIGNING_KEY[6..].to_string()),
        ("signing key's bytes", KEY_BYTES.to_string()),
        ("rotated signing key", rotated_key.clone()),
        ("rotated key's base64", rotated_key[6..].to_string()),
        ("custom header value", HEADER_VALUE.to_string()),
        ("URL password", URL_PASSWORD.to_string()),
    ];
    for (what, secret) in &secrets {
        let leaks: Vec<&str> = output.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "the {what} is in the output:\n{}",
            leaks.join("\n")
        );
        for (case, answer) in &answers {
            assert!(
                !answer.contains(secret),
                "the {what} is in the answer to {case}: {answer}"
            );
        }
    }

    assert_valid_emf(&output);
    let logs: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"].is_string())
        .collect();
    assert!(
        logs.iter().any(|l| l["message"] == "delivery attempt"),
        "no JSON `delivery attempt` line:\n{output}"
    );
    assert!(
        logs.iter().any(|l| l["level"] == "DEBUG"),
        "not run at debug level:\n{output}"
    );

    // The ingest function without one action of its policy: an event needing it is refused
    // with a 503 that names no cause, the function's log says why, and nothing is queued.
    let mut crippled = Watch::start_as("ingest", &setup, stack.without_action.get(WITHOUT));
    crippled.ready().await;
    let refused = crippled
        .request(&http, "POST", "/api/events", INGEST, Some(&event))
        .await;
    assert_eq!(refused.status, 503, "{}", refused.raw);
    let (stdout, stderr) = crippled.stop();
    assert!(
        format!("{stdout}{stderr}").contains("not authorized to perform: sqs:SendMessage"),
        "the denial is not in the function's output:\n{stdout}{stderr}"
    );
    assert!(queue.receive(10, 1).await.unwrap().is_empty());
}

/// Every line that looks like EMF is a valid document in the project's namespace and
/// dimension, and together they carry the pipeline's metrics.
fn assert_valid_emf(output: &str) {
    let now = webhooks::domain::clock::now_ms();
    let mut metrics = BTreeSet::new();
    let emf_like = |l: &&str| l.contains("\"_aws\"") || l.contains("CloudWatchMetrics");
    for line in output.lines().filter(emf_like) {
        let emf = emf::validate(line, now, 10 * 60 * 1000)
            .unwrap_or_else(|e| panic!("invalid EMF ({e}): {line}"));
        let directive = &emf.doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Webhooks", "{line}");
        assert_eq!(directive["Dimensions"], json!([["Service"]]), "{line}");
        assert_eq!(emf.doc["Service"], "webhooks", "{line}");
        metrics.extend(emf.metrics.into_iter().map(|(name, _)| name));
    }
    for name in [
        "EventsIngested",
        "DeliveriesEnqueued",
        "DeliveryAttempts",
        "DeliverySucceeded",
        "AttemptDurationMs",
        "EndToEndLatencyMs",
    ] {
        assert!(metrics.contains(name), "no {name} metric in:\n{output}");
    }
}
