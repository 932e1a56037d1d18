//! Secrets never reach the logs (§7, §10): the real dev server binary at debug level, driven
//! over HTTP through every path that handles a token, a signing key or a custom header value.

use reqwest::Method as M;
use serde_json::{Value, json};
use std::time::Duration;
use webhooks_tests::dev_server::{DevServer, dev_server_binary};
use webhooks_tests::receiver::Receiver;

const ADMIN: &str = "adm-Secret-7f3c9e1d5b2a4c6e8f0a";
const INGEST: &str = "ing-Secret-2b4d6f8a0c1e3g5h7j9k";
const IMPORTED_KEY: &str = "ImportedSigningKeyQ7vX9zR2mW4pL8sT";
const HEADER_VALUE: &str = "HeaderSecret-5Kq2Wz8Rt1Yv4Xn7";

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.expect("the dev server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn no_secret_reaches_the_dev_servers_output() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let mut server = DevServer::start(
        &binary,
        &[
            ("RUST_LOG", "debug"),
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_RETRY_SCHEDULE", "1s"),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
        ],
    );
    server.ready().await;
    let base = server.base.clone();
    let receiver = Receiver::start(&[500]).await;
    let http = reqwest::Client::new();

    let (status, hook) = send(
        &http,
        M::POST,
        format!("{base}/api/hooks"),
        ADMIN,
        Some(json!({
            "name": "secrets",
            "events": ["PostRegister", "User.Created"],
            "config": {"url": receiver.url("/in"), "headers": {"x-api-key": HEADER_VALUE}},
            "signingKey": IMPORTED_KEY,
        })),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().unwrap().to_string();
    let hook_url = format!("{base}/api/hooks/{id}");

    let (status, _) = send(
        &http,
        M::POST,
        format!("{base}/api/events"),
        INGEST,
        Some(json!({"event": "PostRegister", "userId": "u_1"})),
    )
    .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got[0].header("x-api-key"), HEADER_VALUE);
    assert_eq!(
        got[1].header("webhook-id"),
        got[0].header("webhook-id"),
        "a retry"
    );

    let refused = [
        (
            M::POST,
            format!("{base}/api/events"),
            "not-the-token",
            Some(json!({"event": "PostSignIn"})),
        ),
        (M::GET, format!("{base}/api/hooks"), INGEST, None),
        (
            M::POST,
            format!("{base}/api/events"),
            INGEST,
            Some(json!({
                "event": "PostSignIn",
                "userIp": HEADER_VALUE,
                "id": format!("{HEADER_VALUE} x"),
            })),
        ),
        (
            M::POST,
            format!("{base}/api/hooks"),
            ADMIN,
            Some(json!({
                "name": "bad",
                "events": ["PostSignIn"],
                "config": {
                    "url": receiver.url("/in"),
                    "headers": {"x-api-key": format!("{HEADER_VALUE}\r\n")},
                },
            })),
        ),
        (
            M::POST,
            format!("{base}/api/hooks"),
            ADMIN,
            Some(json!({
                "name": "bad",
                "events": ["PostSignIn"],
                "signingKey": format!("{IMPORTED_KEY} {HEADER_VALUE}"),
                "config": {
                    "url": format!("https://{HEADER_VALUE}:{IMPORTED_KEY}@hooks.example.com/"),
                },
            })),
        ),
        (
            M::PATCH,
            hook_url.clone(),
            ADMIN,
            Some(json!({HEADER_VALUE: IMPORTED_KEY})),
        ),
        (
            M::PATCH,
            hook_url.clone(),
            ADMIN,
            Some(json!({"config": {"url": format!("not a url {HEADER_VALUE}")}})),
        ),
    ];
    for (method, url, token, body) in refused {
        let (status, answer) = send(&http, method, url, token, body).await;
        assert!((400..500).contains(&status), "{status}: {answer}");
    }

    let (status, answer) = send(
        &http,
        M::POST,
        format!("{hook_url}/test"),
        ADMIN,
        Some(json!({"events": ["User.Created"]})),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let (status, rotated) = send(
        &http,
        M::PATCH,
        format!("{hook_url}/signing-key"),
        ADMIN,
        Some(json!({"expireAfterSeconds": 3600})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let rotated_key = rotated["signingKey"].as_str().unwrap().to_string();
    assert_ne!(rotated_key, IMPORTED_KEY);

    let (status, _) = send(
        &http,
        M::POST,
        format!("{base}/api/events"),
        ADMIN,
        Some(json!({"event": "User.Created", "data": {"id": "u_2"}})),
    )
    .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(4, Duration::from_secs(15)).await;
    assert_eq!(
        got[3].header("webhook-signature").split(' ').count(),
        2,
        "signed with the new and the retired key"
    );
    for path in ["", "/recent-logs"] {
        let (status, _) = send(&http, M::GET, format!("{hook_url}{path}"), ADMIN, None).await;
        assert_eq!(status, 200);
    }

    let output = server.stop();
    assert!(output.contains("listening on"), "{output}");
    assert!(
        output.contains("stopping"),
        "not stopped by SIGINT:\n{output}"
    );
    assert!(output.contains("DEBUG"), "no debug-level lines:\n{output}");
    assert!(output.contains("delivery attempt"), "{output}");
    for (what, secret) in [
        ("admin token", ADMIN),
        ("ingest token", INGEST),
        ("imported signing key", IMPORTED_KEY),
        ("rotated signing key", rotated_key.as_str()),
        ("custom header value", HEADER_VALUE),
    ] {
        let leaks: Vec<&str> = output.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "the {what} is in the output:\n{}",
            leaks.join("\n")
        );
    }
}
