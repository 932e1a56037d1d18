//! Operational notices as the operator receives them: `Hook.FailingSince`, `Hook.Disabled`
//! and `Hook.Recovered`, signed with the operational key, retried and logged like any
//! delivery; from the dev server binary, and from the sender on moto with an SNS topic too.

use crate::support::pipeline;
use http::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use webhooks::adapters::sns::SnsTopic;
use webhooks::app::sender::Sender;
use webhooks::domain::health::HealthPolicy;
use webhooks::domain::hook::{HookUrl, UrlPolicy};
use webhooks::net::client::DeliveryClient;
use webhooks::operational::{Notices, OperationalEndpoint};
use webhooks_tests::dev_server::{DevServer, dev_server_binary};
use webhooks_tests::free_port;
use webhooks_tests::provision::moto_config;
use webhooks_tests::receiver::{Received, Receiver};
use webhooks_tests::verifiers::{logto_node_verifies, standard_webhooks_verifies};
use webhooks_tests::{pump, unique_prefix};

const ADMIN: &str = "ops-admin";
const INGEST: &str = "ops-ingest";
/// `whsec_` + base64 of `Operational-notices-key-01234567`.
pub const OPS_KEY: &str = "whsec_T3BlcmF0aW9uYWwtbm90aWNlcy1rZXktMDEyMzQ1Njc=";

/// The notices received, once each (a retried one arrives more than once with the same
/// `webhook-id`), as `(event, hookId)` → body; two notices of one event for one hook fail.
fn notices(received: &[Received]) -> BTreeMap<(String, String), Value> {
    let mut by_id = BTreeMap::new();
    for r in received {
        by_id.insert(r.header("webhook-id").to_string(), r.json());
    }
    let mut by_key = BTreeMap::new();
    for body in by_id.into_values() {
        let key = (
            body["event"].as_str().unwrap().to_string(),
            body["data"]["hookId"].as_str().unwrap().to_string(),
        );
        if let Some(earlier) = by_key.insert(key, body.clone()) {
            panic!("two notices of one event for one hook: {earlier} and {body}");
        }
    }
    by_key
}

fn key(event: &str, hook: &str) -> (String, String) {
    (event.to_string(), hook.to_string())
}

/// What a `Hook.Disabled` notice about a hook failing past its window must say.
fn assert_disabled_notice(body: &Value, name: &str) {
    let data = &body["data"];
    assert_eq!(data["hookName"], name, "{body}");
    let reason = data["reason"].as_str().unwrap();
    assert!(reason.starts_with("endpoint failing since "), "{body}");
    assert!(data["failedAttempts"].as_u64().unwrap() >= 3, "{body}");
    let since = data["failingSince"].as_str().unwrap();
    assert!(since.ends_with('Z') && since.len() == 24, "{body}");
    assert!(body["createdAt"].as_str().unwrap() > since, "{body}");
}

#[tokio::test]
async fn the_dev_server_notifies_the_operator_of_failing_disabled_and_recovered_hooks() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    // The endpoint's first answer is a 503: that notice is retried like any delivery.
    let ops = Receiver::start(&[503]).await;
    let down = Receiver::start(&[500; 100]).await;
    // Fails, recovers, then fails again within its window: one notice of each kind only.
    let flaky = Receiver::start(&[500, 200, 500]).await;
    let mut server = DevServer::start_on(
        &binary,
        free_port(),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
            ("WEBHOOKS_RETRY_SCHEDULE", "1s,1s,1s,1s,1s,1s,1s,1s,1s"),
            ("WEBHOOKS_DISABLE_AFTER", "3s"),
            ("WEBHOOKS_DISABLE_MIN_ATTEMPTS", "3"),
            ("WEBHOOKS_OPERATIONAL_URL", &ops.url("/ops")),
            ("WEBHOOKS_OPERATIONAL_SIGNING_KEY", OPS_KEY),
        ],
    );
    server.ready().await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let create = |name: &'static str, url: String, event: &'static str, config: Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut config = config;
            config["url"] = url.into();
            let r = http
                .post(format!("{base}/api/hooks"))
                .bearer_auth(ADMIN)
                .json(&json!({"name": name, "events": [event], "config": config}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let down_id = create("down", down.url("/down"), "PostSignIn", json!({})).await;
    let flaky_id = create(
        "flaky",
        flaky.url("/flaky"),
        "User.Created",
        json!({"disableAfter": "1h"}),
    )
    .await;
    let post = |event: Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http
                .post(format!("{base}/api/events"))
                .bearer_auth(INGEST)
                .json(&event)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    };
    post(json!({"event": "PostSignIn", "userId": "u1"})).await;
    post(json!({"event": "User.Created", "data": {"id": "u1"}})).await;

    let wanted = [
        key("Hook.FailingSince", &down_id),
        key("Hook.Disabled", &down_id),
        key("Hook.FailingSince", &flaky_id),
        key("Hook.Recovered", &flaky_id),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = notices(&ops.received());
        if wanted.iter().all(|k| got.contains_key(k)) {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "notices so far: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let doc = crate::openapi::doc();
    let schema = json!({"$ref": "#/components/schemas/OperationalNotice"});
    for body in got.values() {
        crate::openapi::conforms(&doc, &schema, body, "notice").unwrap();
    }
    assert_disabled_notice(&got[&wanted[1]], "down");
    let failing = &got[&wanted[0]]["data"];
    assert_eq!(failing["hookName"], "down");
    assert!(failing["failingSince"].is_string() && failing.get("reason").is_none());
    assert_eq!(got[&wanted[3]]["data"]["hookName"], "flaky");

    // The flaky hook fails again within its window: neither a second `Hook.FailingSince`
    // nor a `Hook.Recovered` for that failure.
    post(json!({"event": "User.Created", "data": {"id": "u2"}})).await;
    flaky.wait_for(4, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let received = ops.received();
    let got = notices(&received);
    assert_eq!(got.len(), 4, "{got:?}");

    // Every request is signed with the operational key, both ways; one was retried.
    for r in &received {
        standard_webhooks_verifies(OPS_KEY, r).unwrap_or_else(|e| panic!("{e}"));
        assert!(!r.header("logto-signature-sha-256").is_empty());
    }
    logto_node_verifies(OPS_KEY, &received[0]).unwrap();
    assert_eq!(received.len(), 5, "the 503 was retried once");

    // The operational endpoint's deliveries are logged and counted under `operational`.
    let logs: Vec<Value> = http
        .get(format!("{base}/api/hooks/operational/recent-logs"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs.len(), 4, "{logs:?}");
    assert!(logs.iter().all(|l| l["result"] == "Success"), "{logs:?}");
    assert_eq!(
        logs.iter()
            .map(|l| l["attemptCount"].as_u64().unwrap())
            .sum::<u64>(),
        5
    );
    let events: Vec<&str> = logs.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"Hook.Disabled"), "{events:?}");
    let filtered: Vec<Value> = http
        .get(format!(
            "{base}/api/hooks/operational/recent-logs?event=Hook.Disabled"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1, "{filtered:?}");
    let stats: Value = http
        .get(format!("{base}/api/hooks/operational/stats"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["attempts"], 5, "{stats}");
    assert_eq!(stats["failures"]["status5xx"], 1, "{stats}");
    // It is no hook: nothing subscribes to it and it is not listed or editable.
    let r = http
        .get(format!("{base}/api/hooks/operational"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Operational names are not events a caller may post or a hook may subscribe to.
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "Hook.Disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "x", "events": ["Hook.Disabled"], "config": {"url": ops.url("/x")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let output = server.stop();
    assert!(!output.contains(&OPS_KEY[6..]), "the key is in the output");
}

#[tokio::test]
async fn the_dev_server_refuses_an_operational_url_without_its_key() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let bad_key = "whsec_not-base64-Secret-9Qz!";
    for (env, named) in [
        (
            vec![("WEBHOOKS_OPERATIONAL_URL", "http://127.0.0.1:9/ops")],
            "WEBHOOKS_OPERATIONAL_SIGNING_KEY",
        ),
        (
            vec![("WEBHOOKS_OPERATIONAL_SIGNING_KEY", OPS_KEY)],
            "WEBHOOKS_OPERATIONAL_URL",
        ),
        (
            vec![
                ("WEBHOOKS_OPERATIONAL_URL", "http://127.0.0.1:9/ops"),
                ("WEBHOOKS_OPERATIONAL_SIGNING_KEY", bad_key),
            ],
            "WEBHOOKS_OPERATIONAL_SIGNING_KEY",
        ),
        (
            vec![
                ("WEBHOOKS_OPERATIONAL_URL", "http://10.0.0.1/ops"),
                ("WEBHOOKS_OPERATIONAL_SIGNING_KEY", OPS_KEY),
            ],
            "WEBHOOKS_OPERATIONAL_URL",
        ),
    ] {
        let mut all = vec![("WEBHOOKS_DATA_DIR", ":memory:")];
        all.extend(env.iter().copied());
        let server = DevServer::start_on(&binary, free_port(), &all);
        let (code, output) = server.wait_exit(Duration::from_secs(20));
        assert_ne!(code, Some(0), "{output}");
        assert!(output.contains(named), "{env:?}: {output}");
        assert!(
            !output.contains("Secret-9Qz"),
            "the key is echoed: {output}"
        );
    }
}

#[tokio::test]
async fn the_aws_path_sends_notices_to_the_endpoint_and_the_sns_topic() {
    let mut p = pipeline("operational", "1s,1s,1s,1s,1s,1s,1s,1s").await;
    let sdk = moto_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let name = unique_prefix("notices");
    let topic = sns
        .create_topic()
        .name(&name)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let subscriber = p
        .moto
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let subscriber_arn = p
        .moto
        .sqs
        .get_queue_attributes()
        .queue_url(&subscriber)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&subscriber_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let ops = Receiver::start(&[]).await;
    let mut settings = crate::support::settings("1s,1s,1s,1s,1s,1s,1s,1s");
    settings.health = HealthPolicy {
        disable_after: Duration::from_secs(3),
        min_attempts: 3,
    };
    let endpoint = OperationalEndpoint {
        url: HookUrl::parse(&ops.url("/ops"), UrlPolicy { allow_http: true }).unwrap(),
        key: OperationalEndpoint::parse_key(OPS_KEY).unwrap(),
    };
    p.sender = Sender::configured(
        p.moto.store.clone(),
        p.moto.queue.clone(),
        DeliveryClient::from_settings(&settings),
        &settings,
        Notices {
            endpoint: Some(endpoint),
            topic: Some(Arc::new(SnsTopic::new(sns.clone(), topic.clone()))),
            ..Notices::default()
        },
    );
    let down = Receiver::start(&[500; 100]).await;
    let hook = p.create_hook(&down.url("/down"), &["PostSignIn"]).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let r = p
        .post_event(json!({"event": "PostSignIn", "userId": "u1"}))
        .await;
    assert_eq!(r.status, 202);

    let wanted = [
        key("Hook.FailingSince", &hook_id),
        key("Hook.Disabled", &hook_id),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let got = loop {
        pump(&p.moto.queue, &p.sender, 1).await;
        let got = notices(&ops.received());
        if wanted.iter().all(|k| got.contains_key(k)) {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "notices so far: {got:?}"
        );
    };
    assert_eq!(got.len(), 2, "{got:?}");
    assert_disabled_notice(&got[&wanted[1]], "test hook");
    for r in ops.received() {
        standard_webhooks_verifies(OPS_KEY, &r).unwrap_or_else(|e| panic!("{e}"));
    }

    // The same notices on the topic, with their event as a message attribute.
    let mut published = BTreeMap::new();
    for _ in 0..5 {
        let out = p
            .moto
            .sqs
            .receive_message()
            .queue_url(&subscriber)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let attribute = m
                .message_attributes()
                .and_then(|a| a.get("event"))
                .and_then(|v| v.string_value())
                .map(str::to_string);
            assert_eq!(attribute.as_deref(), body["event"].as_str(), "{body}");
            let earlier = published.insert(
                key(
                    body["event"].as_str().unwrap(),
                    body["data"]["hookId"].as_str().unwrap(),
                ),
                body.clone(),
            );
            assert!(earlier.is_none(), "published twice: {body}");
        }
        if published.len() == 2 {
            break;
        }
    }
    assert_eq!(published, got, "the topic carries the same notices");

    let logs = p
        .admin(Method::GET, "/api/hooks/operational/recent-logs", None)
        .await;
    assert_eq!(logs.status, 200, "{}", logs.text());
    let logs = logs.body_json();
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs.iter().all(|l| l["result"] == "Success"), "{logs:?}");
}
