//! The real Lambda binaries under `cargo lambda watch` (the Lambda runtime emulator), invoked
//! with API Gateway HTTP API and SQS event payloads, against moto and a real receiver.

use crate::support::{ADMIN, INGEST, moto};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use webhooks_tests::receiver::Receiver;

/// `cargo lambda watch` for one function, in its own process group, killed with everything
/// it started. One emulator per function: each runs its own package's binary.
struct Watch {
    child: Child,
    port: u16,
}

impl Watch {
    fn start(function: &str, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let manifest = format!("functions/{function}/Cargo.toml");
        // Built as scripts/test prebuilt them, not with this test process's cargo variables.
        let child = webhooks_tests::nested_cargo("cargo")
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--quiet",
                "-A",
                "127.0.0.1",
            ])
            .args(["-P", &port.to_string(), "--manifest-path", &manifest])
            .env(
                "CARGO_TARGET_DIR",
                format!("{workspace}/target/lambda-watch"),
            )
            .current_dir(workspace)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("cargo lambda is installed by scripts/test (PyPI cargo-lambda)");
        Self { child, port }
    }

    async fn ready(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cargo lambda watch did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn invoke(&self, http: &reqwest::Client, function: &str, payload: &Value) -> Value {
        invoke(http, self.port, function, payload).await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn api_gateway_event(method: &str, path: &str, token: &str, body: &Value) -> Value {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {token}"),
            "content-type": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests"},
            "requestId": "req-1",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "26/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795683600000u64
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

async fn invoke(http: &reqwest::Client, port: u16, function: &str, payload: &Value) -> Value {
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations");
    let response = http
        .post(&url)
        .json(payload)
        .timeout(Duration::from_secs(240))
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {function}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "invoke {function}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{function} answered {text}"))
}

fn http_body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test]
async fn lambda_binaries_deliver_an_event_end_to_end() {
    let m = moto("lambda").await;
    let receiver = Receiver::start(&[]).await;
    let env = [
        ("WEBHOOKS_HOOKS_TABLE", m.provisioned.hooks_table.clone()),
        (
            "WEBHOOKS_DELIVERIES_TABLE",
            m.provisioned.deliveries_table.clone(),
        ),
        ("WEBHOOKS_QUEUE_URL", m.provisioned.queue_url.clone()),
        ("WEBHOOKS_ADMIN_TOKEN", ADMIN.to_string()),
        ("WEBHOOKS_INGEST_TOKEN", INGEST.to_string()),
        ("WEBHOOKS_ALLOW_HTTP", "true".to_string()),
        ("WEBHOOKS_ALLOWED_CIDRS", "127.0.0.0/8".to_string()),
        ("WEBHOOKS_RETRY_SCHEDULE", "1s".to_string()),
        (
            "AWS_ENDPOINT_URL",
            std::env::var("WEBHOOKS_TEST_AWS_ENDPOINT").unwrap(),
        ),
    ];
    let api = Watch::start("api", &env);
    let ingest = Watch::start("ingest", &env);
    let sender = Watch::start("sender", &env);
    for w in [&api, &ingest, &sender] {
        w.ready().await;
    }
    let http = reqwest::Client::new();

    let created = api.invoke(
        &http,
        "api",
        &api_gateway_event(
            "POST",
            "/api/hooks",
            ADMIN,
            &json!({"name": "lambda", "events": ["User.Created"], "config": {"url": receiver.url("/lambda")}}),
        ),
    )
    .await;
    assert_eq!(created["statusCode"], 201, "{created}");
    let hook = http_body(&created);

    let accepted = ingest
        .invoke(
            &http,
            "ingest",
            &api_gateway_event(
                "POST",
                "/api/events",
                INGEST,
                &json!({"event": "User.Created", "data": {"id": "u_l"}}),
            ),
        )
        .await;
    assert_eq!(accepted["statusCode"], 202, "{accepted}");
    assert_eq!(http_body(&accepted)["deliveries"], 1);

    let denied = api
        .invoke(
            &http,
            "api",
            &api_gateway_event("POST", "/api/hooks", INGEST, &json!({})),
        )
        .await;
    assert_eq!(denied["statusCode"], 403);

    let messages = m.queue.receive(10, 2).await.unwrap();
    assert_eq!(messages.len(), 1);
    let records: Vec<Value> = messages
        .iter()
        .map(|r| {
            json!({
                "messageId": r.message.id,
                "receiptHandle": r.receipt_handle,
                "body": r.message.body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795683600000", "SenderId": "AIDA", "ApproximateFirstReceiveTimestamp": "1795683600000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": m.provisioned.queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let batch = sender
        .invoke(&http, "sender", &json!({"Records": records}))
        .await;
    assert_eq!(batch["batchItemFailures"], json!([]), "{batch}");

    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].json()["hookId"], hook["id"]);
    assert_eq!(got[0].json()["data"]["id"], "u_l");
}
