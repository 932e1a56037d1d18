//! Synchronous hooks under the health rules of deliveries, on the dev server: failures count
//! toward auto-disable, a 410 disables, the operator is told in order (`Hook.FailingSince`
//! before `Hook.Disabled`, with the figures); the test button keeps a sync hook's `timeoutMs`;
//! settings that do nothing in a hook's mode are refused.

use crate::operational::OPS_KEY;
use crate::support::{ADMIN, INGEST, local_config, local_settings};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use webhooks::domain::hook::{HookUrl, UrlPolicy};
use webhooks::operational::OperationalEndpoint;
use webhooks::startup::local::{LocalConfig, LocalServer};
use webhooks_tests::receiver::Receiver;

struct Server {
    base: String,
    http: reqwest::Client,
    _server: LocalServer,
}

impl Server {
    async fn start(config: LocalConfig) -> Self {
        let server = LocalServer::start(config).await.unwrap();
        Self {
            base: format!("http://{}", server.addr),
            http: reqwest::Client::new(),
            _server: server,
        }
    }

    async fn create(&self, name: &str, event: &str, config: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/hooks", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({"name": name, "events": [event], "config": config}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn hook(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/api/hooks/{id}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, query: &str, event: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/api/events{query}", self.base))
            .bearer_auth(INGEST)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        r.json().await.unwrap()
    }
}

/// The notices `ops` received about `hook`, by event name (each once: a retried notice
/// repeats its `webhook-id`).
fn notices_of(ops: &Receiver, hook: &str) -> Vec<Value> {
    let mut seen = std::collections::BTreeMap::new();
    for r in ops.received() {
        let body = r.json();
        if body["data"]["hookId"] == hook {
            seen.insert(r.header("webhook-id").to_string(), body);
        }
    }
    seen.into_values().collect()
}

async fn until_notices(ops: &Receiver, hook: &str, events: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = notices_of(ops, hook);
        if events.iter().all(|e| got.iter().any(|n| n["event"] == *e)) {
            return got;
        }
        assert!(Instant::now() < deadline, "notices of {hook}: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `Hook.FailingSince` first, then `Hook.Disabled` carrying the failure's figures.
fn assert_in_order(notices: &[Value]) {
    let of = |event: &str| {
        let found: Vec<&Value> = notices.iter().filter(|n| n["event"] == event).collect();
        assert_eq!(found.len(), 1, "one {event}: {notices:?}");
        found[0].clone()
    };
    let failing = of("Hook.FailingSince");
    let disabled = of("Hook.Disabled");
    assert!(
        failing["createdAt"].as_str() <= disabled["createdAt"].as_str(),
        "FailingSince before Disabled: {notices:?}"
    );
    let data = &disabled["data"];
    assert!(data["failingSince"].is_string(), "{disabled}");
    assert!(data["failedAttempts"].as_u64().unwrap() >= 1, "{disabled}");
}

fn with_ops(ops: &Receiver) -> LocalConfig {
    let mut settings = local_settings();
    settings.health.disable_after = Duration::from_secs(1);
    settings.health.min_attempts = 2;
    LocalConfig {
        operational: Some(OperationalEndpoint {
            url: HookUrl::parse(&ops.url("/ops"), UrlPolicy { allow_http: true }).unwrap(),
            key: OperationalEndpoint::parse_key(OPS_KEY).unwrap(),
        }),
        ..local_config(settings)
    }
}

#[tokio::test]
async fn a_410_disables_a_sync_or_async_hook_and_the_notices_come_in_order() {
    let ops = Receiver::start(&[]).await;
    let server = Server::start(with_ops(&ops)).await;
    let sync_gone = Receiver::start(&[410]).await;
    let async_gone = Receiver::start(&[410]).await;
    let (_, sync_hook) = server
        .create(
            "sync gone",
            "PostRegister",
            json!({"url": sync_gone.url("/s"), "mode": "sync", "timeoutMs": 2000}),
        )
        .await;
    let (_, async_hook) = server
        .create(
            "async gone",
            "PostRegister",
            json!({"url": async_gone.url("/a")}),
        )
        .await;
    let (sync_id, async_id) = (
        sync_hook["id"].as_str().unwrap(),
        async_hook["id"].as_str().unwrap(),
    );

    let answer = server
        .post(
            "?wait=true",
            json!({"event": "PostRegister", "id": "evt_gone"}),
        )
        .await;
    assert_eq!(answer["results"][0]["status"], 410, "{answer}");
    for id in [sync_id, async_id] {
        let notices = until_notices(&ops, id, &["Hook.FailingSince", "Hook.Disabled"]).await;
        assert_in_order(&notices);
        let hook = server.hook(id).await;
        assert_eq!(hook["enabled"], false, "{hook}");
    }
}

#[tokio::test]
async fn a_failing_sync_hook_is_disabled_after_its_window() {
    let ops = Receiver::start(&[]).await;
    let server = Server::start(with_ops(&ops)).await;
    let failing = Receiver::start(&[500; 10]).await;
    let (_, hook) = server
        .create(
            "sync failing",
            "PostRegister",
            json!({"url": failing.url("/f"), "mode": "sync", "timeoutMs": 2000}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    server
        .post("?wait=true", json!({"event": "PostRegister"}))
        .await;
    until_notices(&ops, id, &["Hook.FailingSince"]).await;
    assert_eq!(
        server.hook(id).await["enabled"],
        true,
        "one failure is not enough"
    );
    // Past the 1 s window, with the second failed call the minimum is reached.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    server
        .post("?wait=true", json!({"event": "PostRegister"}))
        .await;
    let notices = until_notices(&ops, id, &["Hook.Disabled"]).await;
    assert_in_order(&notices);
    let hook = server.hook(id).await;
    assert_eq!(hook["enabled"], false, "{hook}");
    assert_eq!(failing.received().len(), 2);
}

#[tokio::test]
async fn the_test_button_gives_a_sync_hook_its_own_timeout() {
    let server = Server::start(local_config(local_settings())).await;
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        "late"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    let (status, hook) = server
        .create(
            "sync slow",
            "PostRegister",
            json!({"url": format!("http://{slow}/slow"), "mode": "sync", "timeoutMs": 300}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let started = Instant::now();
    let r = server
        .http
        .post(format!(
            "{}/api/hooks/{}/test",
            server.base,
            hook["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"events": ["PostRegister"]}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 422);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["code"], "hook.send_test_payload_failed", "{answer}");
    // The client's own limit is 10 s, the endpoint answers after 2 s.
    assert!(took < Duration::from_millis(1_500), "{took:?}");
}

#[tokio::test]
async fn settings_that_do_nothing_in_the_hooks_mode_are_refused() {
    let server = Server::start(local_config(local_settings())).await;
    let url = "http://127.0.0.1:9/in";
    for (config, field) in [
        (json!({"url": url, "timeoutMs": 500}), "config.timeoutMs"),
        (
            json!({"url": url, "mode": "async", "timeoutMs": 500}),
            "config.timeoutMs",
        ),
        (
            json!({"url": url, "mode": "sync", "rateLimit": 5}),
            "config.rateLimit",
        ),
        (
            json!({"url": url, "mode": "sync", "retries": 2}),
            "config.retries",
        ),
    ] {
        let (status, answer) = server.create("h", "PostRegister", config.clone()).await;
        assert_eq!(status, 400, "{config}: {answer}");
        assert_eq!(answer["data"]["field"], field, "{answer}");
    }
    let (status, hook) = server
        .create("h", "PostRegister", json!({"url": url, "mode": "sync"}))
        .await;
    assert_eq!(status, 201, "{hook}");
    let r = server
        .http
        .patch(format!(
            "{}/api/hooks/{}",
            server.base,
            hook["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"config": {"url": url, "mode": "sync", "rateLimit": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["data"]["field"], "config.rateLimit", "{answer}");
}

#[tokio::test]
async fn on_the_aws_path_the_sender_disables_a_sync_hook_that_answered_410() {
    use crate::support::pipeline;
    use http::Method;
    let p = pipeline("sync-gone", "1s").await;
    let gone = Receiver::start(&[410]).await;
    let r = p
        .admin(
            Method::POST,
            "/api/hooks",
            Some(json!({"name": "sync gone", "events": ["PostRegister"],
                "config": {"url": gone.url("/s"), "mode": "sync", "timeoutMs": 2000}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body_json());
    let id = r.body_json()["id"].as_str().unwrap().to_string();
    let req = crate::support::request(
        Method::POST,
        "/api/events?wait=true",
        INGEST,
        Some(json!({"event": "PostRegister"})),
    );
    let answer = crate::support::send(&p.router, req).await;
    assert_eq!(answer.body_json()["results"][0]["status"], 410);
    // The ingest wrote the failure and queued the change; the sender disables the hook.
    let hook = p
        .admin(Method::GET, &format!("/api/hooks/{id}"), None)
        .await;
    assert_eq!(hook.body_json()["enabled"], true, "not by the ingest");
    webhooks_tests::pump(&p.moto.queue, &p.sender, 2).await;
    let hook = p
        .admin(Method::GET, &format!("/api/hooks/{id}"), None)
        .await;
    let hook = hook.body_json();
    assert_eq!(hook["enabled"], false, "{hook}");
    assert!(
        hook["disabledReason"].as_str().unwrap().contains("410"),
        "{hook}"
    );
}
