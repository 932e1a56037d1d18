//! The sender binary's operational notices under IAM enforcement: the key comes from the one
//! SSM parameter its role may read (no token parameter), the notices are queued, signed with
//! that key, and published to the SNS topic its role may publish to.

use super::delivery::{assert_verified, put_secure};
use super::{Recording, Setup, Watch, sqs_record};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use webhooks::adapters::sqs::SqsQueue;
use webhooks_tests::moto_server::{MotoServer, default_timeouts};
use webhooks_tests::provision::{Deploy, Keys};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::unique_prefix;

const ADMIN: &str = "adm-Ops-Lambda-5b7d9f1h3j5l7n9p";
const INGEST: &str = "ing-Ops-Lambda-2c4e6g8i0k2m4o6q";
const OPS_KEY: &str = crate::operational::OPS_KEY;

/// The SSM resources `keys`' role was granted, as the template wrote them.
fn ssm_resources(keys: &Keys) -> BTreeSet<String> {
    let as_list = |v: &Value| match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    keys.granted
        .iter()
        .filter(|s| {
            as_list(&s["Action"])
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.starts_with("ssm:")))
        })
        .flat_map(|s| as_list(&s["Resource"]))
        .map(|r| r.as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn the_lambda_sender_signs_notices_with_its_parameter_key_and_publishes_them() {
    let server = MotoServer::start().await;
    let prefix = unique_prefix("opslambda");
    let open = server.sdk_config(default_timeouts()).await;
    let sns = aws_sdk_sns::Client::new(&open);
    let sqs = aws_sdk_sqs::Client::new(&open);
    let topic = sns
        .create_topic()
        .name(&prefix)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let subscriber = sqs
        .create_queue()
        .queue_name(&prefix)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{prefix}"))
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let ops = Receiver::start(&[]).await;
    let gone = Receiver::start(&[410]).await;
    let (admin_parameter, ingest_parameter, key_parameter) = (
        format!("/{prefix}/admin-tokens"),
        format!("/{prefix}/ingest-tokens"),
        format!("/{prefix}/operational-key"),
    );
    let stack = Deploy {
        prefix: &prefix,
        parameters: vec![
            ("RetrySchedule", "1s".into()),
            ("AdminTokenParameterName", admin_parameter.clone()),
            ("IngestTokenParameterName", ingest_parameter.clone()),
            ("OperationalUrl", ops.url("/ops")),
            ("OperationalSigningKeyParameterName", key_parameter.clone()),
            ("OperationalTopicArn", topic.clone()),
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
    put_secure(&ssm, &key_parameter, OPS_KEY).await;

    // The sender may read the operational key and no other parameter (no token).
    let sender_fn = stack.function("sender");
    let keys = sender_fn.credentials.as_ref().expect("role keys");
    assert_eq!(
        ssm_resources(keys),
        BTreeSet::from([format!(
            "arn:aws:ssm:us-east-1:123456789012:parameter{key_parameter}"
        )])
    );
    let actions = keys.actions();
    for action in ["ssm:GetParameter", "sns:Publish"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    assert!(
        !sender_fn.environment.keys().any(|k| k.contains("TOKEN")),
        "{:?}",
        sender_fn.environment
    );

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
    let created = api
        .request(
            &http,
            "POST",
            "/api/hooks",
            ADMIN,
            Some(&json!({"name": "gone", "events": ["User.Created"], "config": {"url": gone.url("/gone")}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let hook_id = created.body["id"].as_str().unwrap().to_string();
    let accepted = ingest
        .request(
            &http,
            "POST",
            "/api/events",
            INGEST,
            Some(&json!({"event": "User.Created", "data": {"id": "u1"}})),
        )
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.raw);

    // The 410 disables the hook; its two notices are queued and then delivered.
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        stack.provisioned().queue_url.clone(),
    );
    let arn = stack.provisioned().queue_arn;
    let mut rounds = 0;
    while ops.count() < 2 {
        rounds += 1;
        assert!(rounds < 20, "notices delivered: {}", ops.count());
        let queued = queue.receive(10, 1).await.unwrap();
        if queued.is_empty() {
            continue;
        }
        let records: Vec<Value> = queued
            .iter()
            .map(|q| sqs_record(&q.message.id, &q.message.body, &arn))
            .collect();
        let answer = sender.invoke(&http, &json!({"Records": records})).await;
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        queue
            .delete(
                &queued
                    .iter()
                    .map(|q| q.receipt_handle.clone())
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
    }
    let received = ops.wait_for(2, Duration::from_secs(5)).await;
    let mut events = BTreeSet::new();
    for r in &received {
        assert_verified(r, OPS_KEY, &[]);
        let body = r.json();
        assert_eq!(body["data"]["hookId"], hook_id.as_str(), "{body}");
        events.insert(body["event"].as_str().unwrap().to_string());
    }
    assert_eq!(
        events,
        BTreeSet::from(["Hook.Disabled".to_string(), "Hook.FailingSince".to_string()])
    );
    let disabled = received
        .iter()
        .map(|r| r.json())
        .find(|b| b["event"] == "Hook.Disabled")
        .unwrap();
    assert!(
        disabled["data"]["reason"].as_str().unwrap().contains("410"),
        "{disabled}"
    );

    // Read with the administrator's keys now that IAM is enforced.
    let subscribed = aws_sdk_sqs::Client::new(&sdk);
    let mut topics = BTreeSet::new();
    for _ in 0..5 {
        let published = subscribed
            .receive_message()
            .queue_url(&subscriber)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        topics.extend(published.messages().iter().map(|m| {
            serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["event"].to_string()
        }));
        if topics.len() == 2 {
            break;
        }
    }
    // moto checks an SNS request's signature against its form re-encoded (a space becomes
    // `+` where the SDK signed `%20`), so under IAM enforcement it refuses a notice whose body
    // holds a space, as `Hook.Disabled`'s reason does; AWS accepts it. The moto path without
    // enforcement shows both notices published.
    assert!(topics.contains("\"Hook.FailingSince\""), "{topics:?}");
    let (stdout, stderr) = sender.stop();
    let refused: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("could not publish an operational notice"))
        .collect();
    assert!(
        refused.iter().all(|l| l.contains("SignatureDoesNotMatch")),
        "{refused:?}"
    );
    assert_eq!(topics.len() + refused.len(), 2, "{topics:?} {refused:?}");
    let mut output = format!("{stdout}{stderr}");

    let logs = api
        .request(
            &http,
            "GET",
            "/api/hooks/operational/recent-logs",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(logs.status, 200, "{}", logs.raw);
    assert_eq!(logs.body.as_array().unwrap().len(), 2, "{}", logs.raw);

    for watch in [api, ingest] {
        let (stdout, stderr) = watch.stop();
        output.push_str(&stdout);
        output.push_str(&stderr);
    }
    assert!(
        !output.contains(&OPS_KEY[6..]),
        "the operational key is in the output"
    );
    recording.assert_uses_its_grants(
        &stack,
        "the_lambda_sender_signs_notices_with_its_parameter_key_and_publishes_them",
    );
}
