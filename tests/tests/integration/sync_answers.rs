//! What a synchronous hook's caller reads, on the dev server: a success only when the whole
//! answer arrived in time, the endpoint's JSON repeated byte for byte (numbers beyond f64 and
//! repeated keys as sent), and a repeat of the event id answered the same bytes.

use crate::support::{ADMIN, INGEST, local_config, local_settings};
use axum::body::{Body, Bytes};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use webhooks::startup::local::LocalServer;

/// The exact text `/exact` answers: valid JSON no f64 or map can repeat.
const EXACT: &str = r#"{"allow":true,"n":12345678901234567890123,"k":1,"k":2}"#;

/// Endpoints: `/exact` answers [`EXACT`]; `/stall` sends 200 and half a JSON body, then
/// nothing more.
async fn endpoints() -> String {
    async fn answer(uri: http::Uri) -> axum::response::Response {
        match uri.path() {
            "/exact" => axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(EXACT))
                .unwrap(),
            _ => {
                let first = futures::stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from_static(br#"{"allow":false,"#))
                });
                axum::response::Response::builder()
                    .header("content-type", "application/json")
                    .body(Body::from_stream(first.chain(futures::stream::pending())))
                    .unwrap()
            }
        }
    }
    let app = axum::Router::new().fallback(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{addr}")
}

async fn sync_hook(http: &reqwest::Client, base: &str, url: String) -> String {
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "sync", "events": ["PostRegister"],
            "config": {"url": url, "mode": "sync", "timeoutMs": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn post_wait(http: &reqwest::Client, base: &str, id: &str) -> (u16, String) {
    let r = http
        .post(format!("{base}/api/events?wait=true"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostRegister", "id": id}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_sync_answer_is_repeated_byte_for_byte_and_a_partial_one_is_a_timeout() {
    let server = LocalServer::start(local_config(local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let endpoints = endpoints().await;
    let http = reqwest::Client::new();
    let exact = sync_hook(&http, &base, format!("{endpoints}/exact")).await;
    let stall = sync_hook(&http, &base, format!("{endpoints}/stall")).await;

    let (status, text) = post_wait(&http, &base, "evt_sync_bytes").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(&format!(r#""body":{EXACT}"#)),
        "the endpoint's JSON as sent: {text}"
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    let results = answer["results"].as_array().unwrap();
    let of = |hook: &str| results.iter().find(|r| r["hookId"] == hook).unwrap();
    assert_eq!(of(&exact)["status"], 200);
    assert!(of(&exact).get("error").is_none(), "{text}");

    let stalled = of(&stall);
    assert_eq!(stalled["status"], 200, "{text}");
    assert_eq!(
        stalled["error"], "timeout",
        "a partial body is no success: {text}"
    );
    assert_eq!(stalled["partial"], true, "{text}");
    assert_eq!(
        stalled["body"], r#"{"allow":false,"#,
        "what arrived, as text"
    );
    assert!(stalled["durationMs"].as_u64().unwrap() >= 450, "{text}");

    // The repeat answers the recorded bytes, calling nothing.
    let (status, again) = post_wait(&http, &base, "evt_sync_bytes").await;
    assert_eq!(status, 200);
    assert_eq!(again, text);

    // The log agrees: the stalled call failed.
    let mut logged = Value::Null;
    for _ in 0..100 {
        logged = http
            .get(format!("{base}/api/hooks/{stall}/recent-logs"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if logged.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(logged[0]["result"], "Error", "{logged}");
    assert_eq!(logged[0]["attempts"][0]["errorKind"], "timeout", "{logged}");
}
