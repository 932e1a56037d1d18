//! Hook health figures (`GET /api/hooks/{id}/stats`) as an operator reads them: from the dev
//! server binary over HTTP, and from the handlers and sender on moto.

use crate::support::pipeline;
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use webhooks::app::sender::Sender;
use webhooks::domain::clock::now_ms;
use webhooks::domain::health::HealthPolicy;
use webhooks::net::client::DeliveryClient;
use webhooks_tests::dev_server::{DevServer, dev_server_binary};
use webhooks_tests::free_port;
use webhooks_tests::receiver::Receiver;
use webhooks_tests::{poll, pump};

const ADMIN: &str = "health-admin";
const INGEST: &str = "health-ingest";
const HOUR_MS: i64 = 3_600_000;

/// Checks what every answer of the stats endpoint must hold together.
fn assert_consistent(stats: &Value) {
    let failures: u64 = stats["failures"]
        .as_object()
        .expect("failures by kind")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let attempts = stats["attempts"].as_u64().unwrap();
    assert_eq!(
        stats["successes"].as_u64().unwrap() + failures,
        attempts,
        "{stats}"
    );
    let hourly: u64 = stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(hourly, attempts, "the hours add up to the total: {stats}");
    let (p50, p95, p99) = (
        &stats["durationMs"]["p50"],
        &stats["durationMs"]["p95"],
        &stats["durationMs"]["p99"],
    );
    if attempts > 0 {
        let (p50, p95, p99) = (
            p50.as_u64().unwrap(),
            p95.as_u64().unwrap(),
            p99.as_u64().unwrap(),
        );
        assert!(p50 <= p95 && p95 <= p99, "{stats}");
    } else {
        assert!(p50.is_null() && p95.is_null() && p99.is_null(), "{stats}");
    }
}

#[tokio::test]
async fn the_dev_server_reports_attempts_failures_and_durations_by_hour() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let receiver = Receiver::start(&[500, 404]).await;
    let mut server = DevServer::start_on(
        &binary,
        free_port(),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
            ("WEBHOOKS_RETRY_SCHEDULE", "1s,1s"),
        ],
    );
    server.ready().await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let hook: Value = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "health", "events": ["PostSignIn"], "config": {"url": receiver.url("/h")}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = hook["id"].as_str().unwrap();
    let stats_url = format!("{base}/api/hooks/{id}/stats");
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let (status, empty) = get(stats_url.clone()).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["attempts"], 0);
    assert_eq!(empty["buckets"], json!([]));
    assert_eq!(empty["lastSuccessAt"], Value::Null);
    assert_consistent(&empty);

    let started = now_ms();
    for user in ["u1", "u2"] {
        let r = http
            .post(format!("{base}/api/events"))
            .bearer_auth(INGEST)
            .json(&json!({"event": "PostSignIn", "userId": user}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    // Two failures (500, 404), then each event succeeds on a retry: four attempts.
    receiver.wait_for(4, Duration::from_secs(20)).await;
    let (status, stats) = poll(
        Duration::from_secs(10),
        || get(stats_url.clone()),
        |(_, stats)| stats["attempts"] == 4,
    )
    .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["attempts"], 4, "{stats}");
    assert_eq!(stats["successes"], 2, "{stats}");
    assert_eq!(stats["failures"]["status5xx"], 1, "{stats}");
    assert_eq!(stats["failures"]["status4xx"], 1, "{stats}");
    assert_eq!(stats["hookId"], id);
    assert_consistent(&stats);
    let last_success = stats["lastSuccessAt"].as_i64().unwrap();
    let last_failure = stats["lastFailureAt"].as_i64().unwrap();
    assert!(
        last_failure >= started && last_success > last_failure,
        "{stats}"
    );
    let hours: Vec<i64> = stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hour"].as_i64().unwrap())
        .collect();
    assert!(
        hours
            .iter()
            .all(|h| h % HOUR_MS == 0 && *h <= now_ms() && *h + HOUR_MS > started),
        "{stats}"
    );
    // Local deliveries answer within the first buckets.
    assert!(
        stats["durationMs"]["p99"].as_u64().unwrap() <= 1_000,
        "{stats}"
    );

    // The 24-hour execution stats agree.
    let (_, with_stats) = get(format!("{base}/api/hooks/{id}?includeExecutionStats=true")).await;
    assert_eq!(
        with_stats["executionStats"],
        json!({"requestCount": 4, "successCount": 2})
    );

    // A range before the attempts is empty; the range is bounded and checked.
    let (status, before) = get(format!("{stats_url}?until={}", started - 2 * HOUR_MS)).await;
    assert_eq!(status, 200);
    assert_eq!(before["attempts"], 0, "{before}");
    let now = now_ms();
    let fourteen_days = 14 * 24 * HOUR_MS;
    let (status, widest) = get(format!(
        "{stats_url}?since={}&until={now}",
        now - fourteen_days
    ))
    .await;
    assert_eq!(status, 200, "{widest}");
    assert_eq!(widest["attempts"], 4);
    for query in [
        format!("since={}&until={now}", now - fourteen_days - 2 * HOUR_MS),
        format!("since={}&until={}", now, now - 1),
        "since=yesterday".to_string(),
        "until=1.5".to_string(),
    ] {
        let (status, body) = get(format!("{stats_url}?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["code"].is_string(), "{query}: {body}");
    }
    let (status, _) = get(format!("{base}/api/hooks/hook_unknown/stats")).await;
    assert_eq!(status, 404);
    server.stop();
}

#[tokio::test]
async fn the_aws_path_counts_status_classes_and_connection_failures() {
    let p = pipeline("health", "1s").await;
    let receiver = Receiver::start(&[404]).await;
    // Nothing listens there: every attempt fails to connect.
    let closed = format!("http://127.0.0.1:{}/gone", free_port());
    let answering = p.create_hook(&receiver.url("/a"), &["PostSignIn"]).await;
    let refusing = p.create_hook(&closed, &["PostSignIn"]).await;
    let r = p
        .post_event(json!({"event": "PostSignIn", "userId": "u1"}))
        .await;
    assert_eq!(r.status, 202);
    let stats = |hook: &Value| {
        let path = format!("/api/hooks/{}/stats", hook["id"].as_str().unwrap());
        let p = &p;
        async move { p.admin(Method::GET, &path, None).await.body_json() }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        pump(&p.moto.queue, &p.sender, 1).await;
        let (a, b) = (stats(&answering).await, stats(&refusing).await);
        if a["successes"] == 1 && b["attempts"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered in time: {a} {b}"
        );
    }
    let a = stats(&answering).await;
    assert_eq!(
        (a["attempts"].clone(), a["failures"]["status4xx"].clone()),
        (json!(2), json!(1)),
        "{a}"
    );
    assert_consistent(&a);
    let b = stats(&refusing).await;
    assert_eq!(b["successes"], 0, "{b}");
    assert_eq!(b["failures"]["connect"], b["attempts"], "{b}");
    assert_eq!(b["lastSuccessAt"], Value::Null, "{b}");
    assert!(b["lastFailureAt"].is_i64(), "{b}");
    assert_consistent(&b);
}

/// The answer of `GET {base}{path}` with the admin token.
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    let r = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_dev_server_disables_a_hook_failing_past_its_window_and_reenabling_clears_it() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let down = Receiver::start(&[500; 100]).await;
    let flaky = Receiver::start(&[500, 503]).await;
    let healthy = Receiver::start(&[]).await;
    let failing = Receiver::start(&[500; 100]).await;
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
        ],
    );
    server.ready().await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let create = |url: String, config: Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut config = config;
            config["url"] = url.into();
            let r = http
                .post(format!("{base}/api/hooks"))
                .bearer_auth(ADMIN)
                .json(&json!({"name": "h", "events": ["PostSignIn"], "config": config}))
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
    let down_id = create(down.url("/down"), json!({})).await;
    let flaky_id = create(flaky.url("/flaky"), json!({})).await;
    // Its own window is longer than the run: failing, never disabled.
    let patient_id = create(failing.url("/patient"), json!({"disableAfter": "1h"})).await;
    let patient = get_json(&http, format!("{base}/api/hooks/{patient_id}")).await;
    assert_eq!(patient["config"]["disableAfter"], "1h");

    let started = now_ms();
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostSignIn", "userId": "u1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let hook_url = format!("{base}/api/hooks/{down_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let disabled = loop {
        let hook = get_json(&http, hook_url.clone()).await;
        if hook["enabled"] == false {
            break hook;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {hook}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let disabled_at = disabled["disabledAt"].as_i64().expect("disabledAt");
    assert!(disabled_at >= started + 3_000, "{disabled}");
    let reason = disabled["disabledReason"].as_str().unwrap();
    assert!(reason.starts_with("endpoint failing since "), "{reason}");
    let stats = get_json(&http, format!("{hook_url}/stats")).await;
    let since = stats["failingSince"].as_i64().expect("failingSince");
    assert!(since >= started && disabled_at - since >= 3_000, "{stats}");
    assert!(
        stats["failedAttemptsSinceSuccess"].as_u64().unwrap() >= 3,
        "{stats}"
    );
    // Disabled by the first failed attempt past the window: attempts are 1 s apart, plus up to
    // a second for a loaded machine.
    let late = disabled_at - (since + 3_000);
    assert!(late < 2_000, "disabled {late} ms after the window ended");
    // Four attempts fit a 3 s window at 1 s apart (one more under load skew), never the ten
    // the schedule allows.
    let made = stats["failedAttemptsSinceSuccess"].as_u64().unwrap();
    assert!(made <= 5, "{made} attempts before disabling");

    // No attempt reaches a disabled hook; its pending retry is dropped.
    let reached = down.count();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        down.count(),
        reached,
        "attempts after the hook was disabled"
    );
    // The flaky hook recovered with its first success and stays enabled; the patient one is
    // failing within its own window.
    let flaky_stats = get_json(&http, format!("{base}/api/hooks/{flaky_id}/stats")).await;
    assert_eq!(flaky_stats["failingSince"], Value::Null, "{flaky_stats}");
    assert_eq!(flaky_stats["successes"], 1, "{flaky_stats}");
    let patient = get_json(&http, format!("{base}/api/hooks/{patient_id}")).await;
    assert_eq!(patient["enabled"], true, "{patient}");
    let patient_stats = get_json(&http, format!("{base}/api/hooks/{patient_id}/stats")).await;
    assert!(patient_stats["failingSince"].is_i64(), "{patient_stats}");

    // Re-enabled (at a working endpoint): the failure state is gone and `recover` re-sends
    // the dropped delivery.
    let r = http
        .patch(&hook_url)
        .bearer_auth(ADMIN)
        .json(&json!({"enabled": true, "config": {"url": healthy.url("/back")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let hook: Value = r.json().await.unwrap();
    assert!(
        hook.get("disabledReason").is_none() && hook.get("disabledAt").is_none(),
        "{hook}"
    );
    let stats = get_json(&http, format!("{hook_url}/stats")).await;
    assert_eq!(stats["failingSince"], Value::Null, "{stats}");
    assert_eq!(stats["failedAttemptsSinceSuccess"], 0, "{stats}");
    let r = http
        .post(format!("{hook_url}/recover"))
        .bearer_auth(ADMIN)
        .json(&json!({"since": started - 1_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = healthy.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["userId"], "u1");
    server.stop();
}

#[tokio::test]
async fn the_aws_path_disables_a_failing_hook_and_reenabling_clears_its_state() {
    let mut p = pipeline("autodisable", "1s,1s,1s,1s,1s,1s,1s,1s").await;
    let settings = crate::support::settings("1s,1s,1s,1s,1s,1s,1s,1s");
    p.sender = Sender::with_policy(
        p.moto.store.clone(),
        p.moto.queue.clone(),
        DeliveryClient::from_settings(&settings),
        settings.retry_schedule.clone(),
        HealthPolicy {
            disable_after: Duration::from_secs(3),
            min_attempts: 3,
        },
    );
    let down = Receiver::start(&[500; 100]).await;
    let flaky = Receiver::start(&[502]).await;
    let down_hook = p.create_hook(&down.url("/down"), &["PostSignIn"]).await;
    let flaky_hook = p.create_hook(&flaky.url("/flaky"), &["PostSignIn"]).await;
    let path = |hook: &Value| format!("/api/hooks/{}", hook["id"].as_str().unwrap());
    let started = now_ms();
    let r = p
        .post_event(json!({"event": "PostSignIn", "userId": "u1"}))
        .await;
    assert_eq!(r.status, 202);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let disabled = loop {
        pump(&p.moto.queue, &p.sender, 1).await;
        let hook = p
            .admin(Method::GET, &path(&down_hook), None)
            .await
            .body_json();
        if hook["enabled"] == false {
            break hook;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {hook}"
        );
    };
    assert!(
        disabled["disabledReason"]
            .as_str()
            .unwrap()
            .starts_with("endpoint failing since "),
        "{disabled}"
    );
    assert!(
        disabled["disabledAt"].as_i64().unwrap() >= started + 3_000,
        "{disabled}"
    );
    let stats = p
        .admin(Method::GET, &format!("{}/stats", path(&down_hook)), None)
        .await
        .body_json();
    assert!(
        stats["failingSince"].as_i64().unwrap() >= started,
        "{stats}"
    );
    assert!(
        stats["failedAttemptsSinceSuccess"].as_u64().unwrap() >= 3,
        "{stats}"
    );
    let flaky_stats = p
        .admin(Method::GET, &format!("{}/stats", path(&flaky_hook)), None)
        .await
        .body_json();
    assert_eq!(flaky_stats["failingSince"], Value::Null, "{flaky_stats}");
    assert_eq!(flaky_stats["successes"], 1, "{flaky_stats}");

    let r = p
        .admin(
            Method::PATCH,
            &path(&down_hook),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body_json().get("disabledAt").is_none());
    let stats = p
        .admin(Method::GET, &format!("{}/stats", path(&down_hook)), None)
        .await
        .body_json();
    assert_eq!(stats["failingSince"], Value::Null, "{stats}");
    assert_eq!(stats["failedAttemptsSinceSuccess"], 0, "{stats}");
}

/// Runs one failing hook on a dev server with `WEBHOOKS_DISABLE_MIN_ATTEMPTS` at `min`: five
/// attempts (one and four retries) spanning 4 s against a 2 s window. Answers the hook once
/// its last attempt is recorded, and how many attempts the receiver saw.
async fn fail_five_times(binary: &str, min: &str) -> (Value, usize) {
    let down = Receiver::start(&[500; 20]).await;
    let mut server = DevServer::start_on(
        binary,
        free_port(),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
            ("WEBHOOKS_RETRY_SCHEDULE", "1s,1s,1s,1s"),
            ("WEBHOOKS_DISABLE_AFTER", "2s"),
            ("WEBHOOKS_DISABLE_MIN_ATTEMPTS", min),
        ],
    );
    server.ready().await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "h", "events": ["PostSignIn"], "config": {"url": down.url("/down")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostSignIn", "userId": "u1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let logs_url = format!("{base}/api/hooks/{id}/recent-logs");
    let logs = poll(
        Duration::from_secs(30),
        || {
            let (http, url) = (http.clone(), logs_url.clone());
            async move { get_json(&http, url).await }
        },
        |logs| logs[0]["result"] == "Error" || logs[0]["result"] == "Dropped",
    )
    .await;
    assert!(logs[0]["result"] != "Pending", "{logs}");
    let hook = get_json(&http, format!("{base}/api/hooks/{id}")).await;
    let count = down.count();
    server.stop();
    (hook, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimum_attempts_decide_whether_a_failing_hook_is_disabled() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let ((above, tried_above), (at, tried_at)) =
        tokio::join!(fail_five_times(&binary, "6"), fail_five_times(&binary, "5"));
    // The same five failures past the same window: only the minimum differs.
    assert_eq!((tried_above, tried_at), (5, 5));
    assert_eq!(above["enabled"], true, "six attempts needed: {above}");
    assert!(above.get("disabledAt").is_none(), "{above}");
    assert_eq!(at["enabled"], false, "five attempts needed: {at}");
    assert!(at["disabledAt"].is_i64(), "{at}");
}
