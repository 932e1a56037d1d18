//! What a synchronous hook's caller reads, on the dev server: a success only when the whole
//! answer arrived in time, the endpoint's JSON repeated byte for byte (numbers beyond f64 and
//! repeated keys as sent), and a repeat of the event id answered the same bytes.

use crate::support::{ADMIN, INGEST, local_config, local_settings};
use axum::body::{Body, Bytes};
use axum::extract::State;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use webhooks::startup::local::LocalServer;

/// The exact text `/exact` answers: valid JSON no f64 or map can repeat.
const EXACT: &str = r#"{"allow":true,"n":12345678901234567890123,"k":1,"k":2}"#;

/// Paths called, in order.
type Calls = Arc<Mutex<Vec<String>>>;

/// Endpoints: `/exact` answers [`EXACT`] (`/slow` after 800 ms); `/stall` sends 200 and half
/// a JSON body, then nothing more.
async fn endpoints() -> (String, Calls) {
    async fn answer(State(calls): State<Calls>, uri: http::Uri) -> axum::response::Response {
        calls.lock().unwrap().push(uri.path().to_string());
        let exact = || {
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(EXACT))
                .unwrap()
        };
        match uri.path() {
            "/exact" => exact(),
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(800)).await;
                exact()
            }
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
    let calls = Calls::default();
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (format!("http://{addr}"), calls)
}

fn called(calls: &Calls, path: &str) -> usize {
    calls.lock().unwrap().iter().filter(|p| *p == path).count()
}

async fn sync_hook(http: &reqwest::Client, base: &str, url: String, timeout_ms: u64) -> String {
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "sync", "events": ["PostRegister"],
            "config": {"url": url, "mode": "sync", "timeoutMs": timeout_ms}}))
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
    let (endpoints, calls) = endpoints().await;
    let http = reqwest::Client::new();
    let exact = sync_hook(&http, &base, format!("{endpoints}/exact"), 3_000).await;
    let stall = sync_hook(&http, &base, format!("{endpoints}/stall"), 500).await;

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
    assert_eq!((called(&calls, "/exact"), called(&calls, "/stall")), (1, 1));

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

#[tokio::test]
async fn a_call_is_recorded_though_the_caller_hung_up() {
    let server = LocalServer::start(local_config(local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let (endpoints, calls) = endpoints().await;
    let http = reqwest::Client::new();
    sync_hook(&http, &base, format!("{endpoints}/slow"), 5_000).await;
    let hung_up = http
        .post(format!("{base}/api/events?wait=true"))
        .bearer_auth(INGEST)
        .timeout(Duration::from_millis(200))
        .json(&json!({"event": "PostRegister", "id": "evt_hung_up"}))
        .send()
        .await;
    assert!(hung_up.is_err(), "the caller gave up before the answer");
    // The call goes on; once it is recorded, a repeat answers it without calling again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (status, text) = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, text) = post_wait(&http, &base, "evt_hung_up").await;
        // 409 while the call is under way.
        if status != 409 || std::time::Instant::now() > deadline {
            break (status, text);
        }
    };
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!(r#""body":{EXACT}"#)), "{text}");
    assert_eq!(called(&calls, "/slow"), 1);
}

#[tokio::test]
async fn a_waiting_repeat_of_an_event_accepted_without_waiting_calls_its_sync_hooks_once() {
    let server = LocalServer::start(local_config(local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let (endpoints, calls) = endpoints().await;
    let http = reqwest::Client::new();
    let hook = sync_hook(&http, &base, format!("{endpoints}/exact"), 3_000).await;
    let first: Value = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostRegister", "id": "evt_later"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["skippedSyncHooks"], 1, "{first}");
    assert_eq!(called(&calls, "/exact"), 0);

    let (status, waited) = post_wait(&http, &base, "evt_later").await;
    assert_eq!(status, 200, "{waited}");
    let answer: Value = serde_json::from_str(&waited).unwrap();
    assert_eq!(answer["results"][0]["hookId"], hook.as_str(), "{waited}");
    assert_eq!(answer["results"][0]["status"], 200, "{waited}");
    assert!(answer.get("skippedSyncHooks").is_none(), "{waited}");
    assert_eq!(answer["deliveries"], first["deliveries"]);
    assert_eq!(called(&calls, "/exact"), 1);

    let (_, again) = post_wait(&http, &base, "evt_later").await;
    assert_eq!(again, waited, "recorded, not called again");
    let unwaited: Value = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostRegister", "id": "evt_later"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        unwaited, first,
        "a repeat without wait answers as the first time"
    );
    assert_eq!(called(&calls, "/exact"), 1);
}

/// The same on the AWS path (moto), where this behaviour lives in the same shared code: the
/// endpoint's JSON byte for byte, a stalled body as a partial timeout, and a waiting repeat of
/// an event accepted without waiting calling its sync hooks once.
#[tokio::test]
async fn on_the_aws_path_sync_answers_are_exact_partial_bodies_fail_and_repeats_call_once() {
    use crate::support::{pipeline, request, send};
    use http::Method;
    let p = pipeline("sync-answers", "1s").await;
    let (endpoints, calls) = endpoints().await;
    let mut ids = Vec::new();
    for path in ["/exact", "/stall"] {
        let r = p
            .admin(
                Method::POST,
                "/api/hooks",
                Some(json!({"name": path, "events": ["PostRegister"],
                    "config": {"url": format!("{endpoints}{path}"), "mode": "sync", "timeoutMs": 1_000}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        ids.push(r.body_json()["id"].as_str().unwrap().to_string());
    }
    let post = |query: &str, id: &str| {
        request(
            Method::POST,
            &format!("/api/events{query}"),
            INGEST,
            Some(json!({"event": "PostRegister", "id": id})),
        )
    };
    let first = send(&p.router, post("", "evt_aws_sync")).await;
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.body_json()["skippedSyncHooks"], 2);
    assert_eq!(calls.lock().unwrap().len(), 0);

    let waited = send(&p.router, post("?wait=true", "evt_aws_sync")).await;
    assert_eq!(waited.status, 200, "{}", waited.text());
    let text = waited.text();
    assert!(text.contains(&format!(r#""body":{EXACT}"#)), "{text}");
    let answer = waited.body_json();
    let stalled = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["hookId"] == ids[1].as_str())
        .unwrap()
        .clone();
    assert_eq!(stalled["error"], "timeout", "{text}");
    assert_eq!(stalled["partial"], true, "{text}");
    assert_eq!(stalled["body"], r#"{"allow":false,"#);

    let again = send(&p.router, post("?wait=true", "evt_aws_sync")).await;
    assert_eq!(again.text(), text, "recorded, not called again");
    assert_eq!((called(&calls, "/exact"), called(&calls, "/stall")), (1, 1));
}
