//! `POST /api/events` at the edges of JSON on the dev server: any RFC 8259 number is accepted
//! and delivered as written, nesting has a stated limit, a body of undeclared type is refused,
//! and error messages keep the caller's characters.

use crate::support::{ADMIN, INGEST, local_config, local_settings};
use serde_json::{Value, json};
use std::time::Duration;
use webhooks::startup::local::LocalServer;
use webhooks_tests::receiver::Receiver;

async fn post(http: &reqwest::Client, base: &str, body: String) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn any_json_number_is_delivered_as_written_and_nesting_has_a_stated_limit() {
    let server = LocalServer::start(local_config(local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let receiver = Receiver::start(&[]).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "n", "events": ["User.Created"], "config": {"url": receiver.url("/in")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let data = r#"{"huge":1e309,"negative":-1E+400,"long":12345678901234567890123,"fine":1.5e-7}"#;
    let (status, answer) = post(
        &http,
        &base,
        format!(r#"{{"event":"User.Created","data":{data}}}"#),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    for _ in 0..200 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = receiver.received()[0].body_text();
    assert!(
        delivered.contains(&format!(r#""data":{data}"#)),
        "numbers delivered as posted: {delivered}"
    );

    let nested = |n: usize| {
        format!(
            r#"{{"event":"User.Created","data":{}{}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    // The body object itself is one level.
    let (status, answer) = post(&http, &base, nested(63)).await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = post(&http, &base, nested(64)).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("deeper than 64 levels"), "{answer}");
    let (status, answer) = post(&http, &base, nested(500)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("64"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_event_without_a_json_content_type_is_refused_with_415() {
    let server = LocalServer::start(local_config(local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let body = r#"{"event":"User.Created"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = http
            .post(format!("{base}/api/events"))
            .bearer_auth(INGEST)
            .body(body);
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 415, "{content_type:?}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], "request.unsupported_media_type");
    }
    let (status, answer) = post(&http, &base, body.to_string()).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn error_messages_keep_the_callers_characters() {
    let server = LocalServer::start(local_config(local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "h", "events": ["User.Created"],
            "config": {"url": "https://hooks.example.com/in", "headers": {"x-é": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["data"]["field"], "config.headers.x-é", "{answer}");

    let (status, answer) = post(
        &http,
        &base,
        r#"{"event":"User.Created","data":{"clé":1,"clé":2}}"#.to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["data"]["field"], "data.clé", "{answer}");
}

#[tokio::test]
async fn a_restart_frees_the_claims_of_requests_that_died_with_the_process() {
    use webhooks_tests::dev_server::{DevServer, dev_server_binary};
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(webhooks_tests::unique_prefix("claims-restart"));
    std::fs::create_dir_all(&dir).unwrap();
    let data_dir = dir.to_str().unwrap().to_string();
    let env = [
        ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
        ("WEBHOOKS_INGEST_TOKEN", INGEST),
        ("WEBHOOKS_DATA_DIR", data_dir.as_str()),
    ];
    let receiver = Receiver::start(&[]).await;
    let http = reqwest::Client::new();
    let mut server = DevServer::start(&binary, &env);
    server.ready().await;
    let r = http
        .post(format!("{}/api/hooks", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "n", "events": ["User.Created"], "config": {"url": receiver.url("/in")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.kill9();

    // A request that claimed `evt_died` and died with the process before its fan-out.
    let now = webhooks::domain::clock::now_ms();
    let db = rusqlite::Connection::open(dir.join("webhooks.sqlite3")).unwrap();
    db.execute(
        "INSERT INTO events (id, claimed_at, first_claimed_at, window_ends_at, answer) \
         VALUES ('default#evt_died', ?1, ?1, ?2, NULL)",
        rusqlite::params![now, now + 86_400_000],
    )
    .unwrap();
    drop(db);

    let mut server = DevServer::start(&binary, &env);
    server.ready().await;
    let (status, answer) = post(
        &http,
        &server.base,
        r#"{"event":"User.Created","id":"evt_died"}"#.to_string(),
    )
    .await;
    assert_eq!(status, 202, "taken over at once: {answer}");
    assert_eq!(answer["deliveries"], 1);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
