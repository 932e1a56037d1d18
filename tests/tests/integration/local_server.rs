//! The local dev server over real HTTP: what the README's quickstart does, checked.

use serde_json::json;
use std::time::{Duration, Instant};
use webhooks::config::{Defaults, Settings};
use webhooks::startup::local::{LocalConfig, LocalServer};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::verifiers::{logto_node_verifies, standard_webhooks_verifies};

use crate::support::{ADMIN, INGEST};

/// The hook's newest delivery log entry, once its result is `result` (or after ~2 s).
async fn newest_log(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    result: &str,
) -> serde_json::Value {
    let mut log = serde_json::Value::Null;
    for _ in 0..100 {
        log = http
            .get(format!("{base}/api/hooks/{id}/recent-logs"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()[0]
            .clone();
        if log["result"] == result {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log
}

fn config(data_dir: Option<std::path::PathBuf>) -> LocalConfig {
    LocalConfig {
        data_dir,
        ..crate::support::local_config(crate::support::local_settings())
    }
}

#[tokio::test]
async fn quickstart_delivers_a_signed_webhook_within_a_second() {
    let server = LocalServer::start(config(None)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let receiver = Receiver::start(&[]).await;
    let http = reqwest::Client::new();

    let hook: serde_json::Value = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "local", "events": ["PostRegister"], "config": {"url": receiver.url("/webhook")}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = hook["signingKey"]
        .as_str()
        .expect("the created hook carries its key")
        .to_string();

    let forbidden = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(INGEST)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403, "ingest tokens only post events");

    let started = Instant::now();
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostRegister", "userId": "u_9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = receiver.wait_for(1, Duration::from_secs(1)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    standard_webhooks_verifies(&key, &got[0]).expect("standardwebhooks accepts the delivery");
    logto_node_verifies(&key, &got[0]).expect("Logto's HMAC check accepts the delivery");

    let id = hook["id"].as_str().unwrap();
    let log = newest_log(&http, &base, id, "Success").await;
    assert_eq!(log["result"], "Success");
    assert_eq!(log["id"], got[0].header("webhook-id"));

    let too_big = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    server.stop().await;
}

#[tokio::test]
async fn hooks_survive_a_restart_with_a_data_dir() {
    let dir = std::env::temp_dir().join(webhooks_tests::unique_prefix("data"));
    let server = LocalServer::start(config(Some(dir.clone()))).await.unwrap();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("http://{}/api/hooks", server.addr))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "kept", "events": ["User.Deleted"], "config": {"url": "https://hooks.example.com/in"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    server.stop().await;

    let again = LocalServer::start(config(Some(dir.clone()))).await.unwrap();
    let hooks: serde_json::Value = http
        .get(format!("http://{}/api/hooks", again.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hooks[0]["name"], "kept");
    again.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn with_an_empty_allowlist_no_loopback_spelling_reaches_the_receiver() {
    let receiver = Receiver::start(&[]).await;
    let port = receiver.addr.port();
    let spellings = [
        format!("http://127.0.0.1:{port}/a"),
        format!("http://localhost:{port}/a"),
        format!("http://LOCALHOST.:{port}/a"),
        format!("http://2130706433:{port}/a"),
        format!("http://0x7f.0.0.1:{port}/a"),
        format!("http://127.1:{port}/a"),
        format!("http://0177.0.0.1:{port}/a"),
        format!("http://[::ffff:7f00:1]:{port}/a"),
        format!("http://[::ffff:127.0.0.1]:{port}/a"),
        format!("http://[::1]:{port}/a"),
        format!("http://127.0.0.1.:{port}/a"),
    ];
    let http = reqwest::Client::new();
    let create = |base: String, url: String| {
        let http = http.clone();
        async move {
            http.post(format!("{base}/api/hooks"))
                .bearer_auth(ADMIN)
                .json(&json!({"name": url, "events": ["User.Created"], "config": {"url": url}}))
                .send()
                .await
                .unwrap()
        }
    };

    // Hooks registered while loopback was allowed (the dev server's default)…
    let dir = std::env::temp_dir().join(webhooks_tests::unique_prefix("ssrf"));
    let permissive = LocalServer::start(config(Some(dir.clone()))).await.unwrap();
    let mut hooks = Vec::new();
    for url in &spellings {
        let r = create(format!("http://{}", permissive.addr), url.clone()).await;
        assert_eq!(r.status(), 201, "{url}");
        hooks.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    permissive.stop().await;

    // …are refused at send time once the allowlist is empty, and new ones are refused at once.
    let mut cfg = config(Some(dir.clone()));
    cfg.settings = Settings::from_lookup(Defaults::local(), |name| {
        (name == "WEBHOOKS_ALLOWED_CIDRS").then(String::new)
    })
    .unwrap();
    let server = LocalServer::start(cfg).await.unwrap();
    let base = format!("http://{}", server.addr);
    for url in &spellings {
        let r = create(base.clone(), url.clone()).await;
        assert_eq!(r.status(), 400, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["data"]["field"], "config.url", "{url}");
    }
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "User.Created", "data": {"id": "u"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["deliveries"],
        spellings.len()
    );
    for (id, url) in hooks.iter().zip(&spellings) {
        let log = newest_log(&http, &base, id, "Error").await;
        assert_eq!(log["result"], "Error", "{url}: {log}");
        assert_eq!(
            log["attemptCount"], 1,
            "{url}: a blocked destination is not retried"
        );
        assert_eq!(log["attempts"][0]["errorKind"], "blocked", "{url}: {log}");
    }
    assert!(
        receiver.received().is_empty(),
        "no request reached the receiver"
    );
    server.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_dev_server_retries_disables_rotates_and_deduplicates_like_aws() {
    let mut cfg = config(None);
    cfg.settings.retry_schedule = webhooks::domain::retry::RetrySchedule::parse("1s,1s").unwrap();
    let server = LocalServer::start(cfg).await.unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            http.request(method, url)
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let flaky = Receiver::start(&[500]).await;
    let gone = Receiver::start(&[410]).await;
    let flaky_hook = admin(
        reqwest::Method::POST,
        "/api/hooks".into(),
        json!({"name": "flaky", "events": ["PostSignIn"], "config": {"url": flaky.url("/in")}}),
    )
    .await;
    let gone_hook = admin(
        reqwest::Method::POST,
        "/api/hooks".into(),
        json!({"name": "gone", "events": ["PostSignIn"], "config": {"url": gone.url("/in")}}),
    )
    .await;
    let old_key = flaky_hook["signingKey"].as_str().unwrap().to_string();
    let rotated = admin(
        reqwest::Method::PATCH,
        format!(
            "/api/hooks/{}/signing-key",
            flaky_hook["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    let new_key = rotated["signingKey"].as_str().unwrap().to_string();

    for _ in 0..2 {
        let r = http
            .post(format!("{base}/api/events"))
            .bearer_auth(INGEST)
            .json(&json!({"event": "PostSignIn", "id": "evt_local_once"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["deliveries"],
            2
        );
    }
    let got = flaky.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "retried with a stable webhook-id"
    );
    assert_eq!(
        got[0].header("webhook-signature").split(' ').count(),
        2,
        "both keys sign during the grace period"
    );
    for key in [&old_key, &new_key] {
        standard_webhooks_verifies(key, &got[1]).expect("each key verifies");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        flaky.received().len(),
        2,
        "the repeated event id fanned out once"
    );
    assert_eq!(gone.received().len(), 1);
    let disabled = admin(
        reqwest::Method::GET,
        format!("/api/hooks/{}", gone_hook["id"].as_str().unwrap()),
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(disabled["enabled"], false, "410 disables the hook");
    server.stop().await;
}
