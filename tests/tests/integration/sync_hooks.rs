//! Synchronous hooks as a sign-up flow uses them: `POST /api/events?wait=true` calls the
//! event's sync hooks at once and answers with what they said, records each call as one
//! delivery, never calls again for a repeat, and still queues the asynchronous hooks. On the
//! dev server over HTTP and on the AWS path (moto).

use crate::support::{ADMIN, INGEST, local_config, pipeline, send, settings, tokens};
use axum::extract::State;
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webhooks::api::{Api, router};
use webhooks::net::client::DeliveryClient;
use webhooks::net::lookup::FixedLookup;
use webhooks::startup::local::LocalServer;
use webhooks_tests::pump_until;
use webhooks_tests::receiver::{Received, Receiver};
use webhooks_tests::verifiers::standard_webhooks_verifies;

/// Endpoints a sign-up flow asks: `/deny` refuses the registration, `/slow` answers too late.
#[derive(Clone, Default)]
struct Endpoints {
    calls: Arc<Mutex<Vec<(String, Received)>>>,
}

impl Endpoints {
    async fn start() -> (Self, String) {
        let endpoints = Self::default();
        async fn answer(
            State(e): State<Endpoints>,
            uri: http::Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            let path = uri.path().to_string();
            e.calls.lock().unwrap().push((
                path.clone(),
                Received {
                    headers,
                    body,
                    at: Instant::now(),
                },
            ));
            match path.as_str() {
                "/deny" => axum::Json(json!({"allow": false, "reason": "domain not allowed"}))
                    .into_response(),
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    axum::Json(json!({"allow": true})).into_response()
                }
                _ => (http::StatusCode::FORBIDDEN, "no").into_response(),
            }
        }
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(endpoints.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        (endpoints, format!("http://{addr}"))
    }

    fn count(&self, path: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }
}

fn result<'a>(answer: &'a Value, hook: &str) -> &'a Value {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {answer}"))
        .iter()
        .find(|r| r["hookId"] == hook)
        .unwrap_or_else(|| panic!("no result of {hook}: {answer}"))
}

#[tokio::test]
async fn the_dev_server_waits_for_sync_hooks_and_queues_the_others() {
    let (endpoints, base_url) = Endpoints::start().await;
    let async_receiver = Receiver::start(&[]).await;
    let settings = crate::support::local_settings();
    let server = LocalServer::start(local_config(settings)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let create = |name: &str, url: String, extra: Value| {
        let (http, base) = (http.clone(), base.clone());
        let mut config = json!({"url": url});
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let body = json!({"name": name, "events": ["PostRegister"], "config": config});
        async move {
            let r = http
                .post(format!("{base}/api/hooks"))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (_, deny) = create(
        "deny",
        format!("{base_url}/deny"),
        json!({"mode": "sync", "timeoutMs": 2000}),
    )
    .await;
    let (_, slow) = create(
        "slow",
        format!("{base_url}/slow"),
        json!({"mode": "sync", "timeoutMs": 300}),
    )
    .await;
    let (_, queued) = create("crm", async_receiver.url("/crm"), json!({})).await;
    assert_eq!(deny["config"]["mode"], "sync");
    assert_eq!(deny["config"]["timeoutMs"], 2000);
    assert!(queued["config"].get("mode").is_none());
    let deny_id = deny["id"].as_str().unwrap();
    let slow_id = slow["id"].as_str().unwrap();

    let post = |query: &str, body: Value| {
        let (http, base, query) = (http.clone(), base.clone(), query.to_string());
        async move {
            let started = Instant::now();
            let r = http
                .post(format!("{base}/api/events{query}"))
                .bearer_auth(INGEST)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap(), started.elapsed())
        }
    };
    let signup = json!({"event": "PostRegister", "id": "evt_signup_1", "userId": "u_1",
                        "user": {"id": "u_1", "primaryEmail": "eve@blocked.example"}});
    let (status, answer, took) = post("?wait=true", signup.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], "evt_signup_1");
    assert_eq!(
        answer["deliveries"], 1,
        "the async hook is queued: {answer}"
    );
    let denied = result(&answer, deny_id);
    assert_eq!(denied["status"], 200);
    assert_eq!(
        denied["body"],
        json!({"allow": false, "reason": "domain not allowed"})
    );
    assert!(denied.get("error").is_none(), "{denied}");
    let late = result(&answer, slow_id);
    assert_eq!(late["error"], "timeout", "{late}");
    let late_ms = late["durationMs"].as_u64().unwrap();
    assert!(
        (250..2_000).contains(&late_ms),
        "timed out after {late_ms} ms"
    );
    assert!(
        took < Duration::from_millis(2_900),
        "the request waited {took:?}"
    );
    // Signed exactly like an asynchronous delivery.
    let call = endpoints.calls.lock().unwrap()[0].clone();
    standard_webhooks_verifies(deny["signingKey"].as_str().unwrap(), &call.1).unwrap();
    assert_eq!(call.1.json()["hookId"], deny_id);
    assert_eq!(
        call.1.header("webhook-id"),
        denied["deliveryId"].as_str().unwrap()
    );
    let got = async_receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["userId"], "u_1");

    // The same event id again: the recorded results, no new call.
    let (status, again, _) = post("?wait=true", signup.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(again, answer);
    assert_eq!(endpoints.count("/deny"), 1);

    // Without waiting, sync hooks are skipped and the answer says so.
    let (status, skipped, _) = post("", json!({"event": "PostRegister", "userId": "u_2"})).await;
    assert_eq!(status, 202);
    assert_eq!(skipped["skippedSyncHooks"], 2, "{skipped}");
    assert_eq!(skipped["deliveries"], 1);
    assert_eq!(endpoints.count("/deny"), 1);
    let (status, _, _) = post("?wait=true", json!({"events": [{"event": "PostRegister"}]})).await;
    assert_eq!(status, 400, "a batch cannot wait");
    let (status, _, _) = post("?wait=maybe", signup.clone()).await;
    assert_eq!(status, 400);

    // Recorded as one delivery of one attempt, counted in the stats, never re-sent.
    let logs: Value = http
        .get(format!("{base}/api/hooks/{deny_id}/recent-logs"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(
        (&logs[0]["mode"], &logs[0]["attemptCount"]),
        (&json!("sync"), &json!(1))
    );
    let retry = http
        .post(format!(
            "{base}/api/hooks/{deny_id}/deliveries/{}/retry",
            logs[0]["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 400);
    let stats: Value = http
        .get(format!("{base}/api/hooks/{slow_id}/stats"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["attempts"], 1, "{stats}");
    assert_eq!(stats["failures"]["timeout"], 1, "{stats}");
    let recovery = http
        .post(format!("{base}/api/hooks/{slow_id}/recover"))
        .bearer_auth(ADMIN)
        .json(&json!({"since": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(recovery.status(), 202);
    let recovery: Value = recovery.json().await.unwrap();
    let progress = format!(
        "{base}/api/hooks/{slow_id}/recoveries/{}",
        recovery["id"].as_str().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now: Value = http
            .get(&progress)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if now["status"] == "done" {
            break;
        }
        assert!(Instant::now() < deadline, "recovery never done: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        endpoints.count("/slow"),
        1,
        "recover does not re-send a sync call"
    );

    // At most five synchronous hooks per event.
    for i in 0..3 {
        let (status, _) = create("more", format!("{base_url}/deny"), json!({"mode": "sync"})).await;
        assert_eq!(status, 201, "sync hook {}", i + 3);
    }
    let (status, refused) =
        create("sixth", format!("{base_url}/deny"), json!({"mode": "sync"})).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["data"]["field"], "config.mode");
    server.stop().await;
}

#[tokio::test]
async fn the_aws_path_calls_sync_hooks_and_reports_a_blocked_one() {
    let (endpoints, base_url) = Endpoints::start().await;
    let mut p = pipeline("sync", "1s").await;
    let s = settings("1s");
    // `blocked.example` resolves to a private address: refused before any connection.
    let lookup = Arc::new(FixedLookup::new([(
        "blocked.example",
        vec![vec!["10.1.2.3".parse().unwrap()]],
    )]));
    let client =
        DeliveryClient::with_lookup(s.address_policy.clone(), s.url_policy, s.timeouts, lookup);
    p.router = router(Api::new(
        p.moto.store.clone(),
        p.moto.queue.clone(),
        client,
        tokens(),
        &s,
    ));
    let receiver = Receiver::start(&[]).await;
    let hook = |url: String, mode: &str| json!({"name": "h", "events": ["PostRegister"], "config": {"url": url, "mode": mode}});
    let deny = p
        .admin(
            Method::POST,
            "/api/hooks",
            Some(hook(format!("{base_url}/deny"), "sync")),
        )
        .await
        .body_json();
    let blocked = p
        .admin(
            Method::POST,
            "/api/hooks",
            Some(hook("http://blocked.example:9/x".into(), "sync")),
        )
        .await
        .body_json();
    p.admin(
        Method::POST,
        "/api/hooks",
        Some(hook(receiver.url("/a"), "async")),
    )
    .await;
    let post = || {
        Request::builder()
            .method(Method::POST)
            .uri("/api/events?wait=true")
            .header("authorization", format!("Bearer {INGEST}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({"event": "PostRegister", "id": "evt_aws_sync", "userId": "u"}).to_string(),
            ))
            .unwrap()
    };
    let r = send(&p.router, post()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.body_json();
    assert_eq!(answer["deliveries"], 1);
    let denied = result(&answer, deny["id"].as_str().unwrap());
    assert_eq!(denied["body"]["allow"], false);
    let refused = result(&answer, blocked["id"].as_str().unwrap());
    assert_eq!(refused["error"], "blocked", "{refused}");
    assert!(refused.get("status").is_none());
    pump_until(&p.moto.queue, &p.sender, Duration::from_secs(20), || {
        receiver.count() >= 1
    })
    .await;
    let again = send(&p.router, post()).await;
    assert_eq!(again.body_json(), answer);
    assert_eq!(endpoints.count("/deny"), 1);
    let logs = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}/recent-logs", blocked["id"].as_str().unwrap()),
            None,
        )
        .await
        .body_json();
    assert_eq!(logs[0]["mode"], "sync");
    assert_eq!(logs[0]["result"], "Error");

    // DynamoDB: creates racing past the capacity check may leave more than five sync hooks;
    // `wait=true` then refuses the event rather than calling them all.
    let racers = (0..6).map(|_| {
        p.admin(
            Method::POST,
            "/api/hooks",
            Some(hook(format!("{base_url}/deny"), "sync")),
        )
    });
    let created = futures::future::join_all(racers)
        .await
        .iter()
        .filter(|r| r.status == 201)
        .count();
    eprintln!("{created} of 6 racing creates succeeded");
    let r = send(
        &p.router,
        Request::builder()
            .method(Method::POST)
            .uri("/api/events?wait=true")
            .header("authorization", format!("Bearer {INGEST}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({"event": "PostRegister", "id": "evt_aws_six"}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    if 2 + created > 5 {
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.body_json()["data"]["field"], "event");
    } else {
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// The event's sync hooks are called at once, not one after another, and a sixth sync hook of
/// one event is refused however it would come about: created, switched to sync, subscribed,
/// or raced in by concurrent creates.
#[tokio::test]
async fn sync_hooks_are_called_in_parallel_and_a_sixth_is_refused() {
    let (endpoints, base_url) = Endpoints::start().await;
    let server = LocalServer::start(local_config(crate::support::local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let send_json = |method: Method, path: String, token: &'static str, body: Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // `timeoutMs` applies to sync hooks only (refused on an async one).
    let hook = |event: &str, path: &str, mode: &str| {
        let mut config = json!({"url": format!("{base_url}{path}"), "mode": mode});
        if mode == "sync" {
            config["timeoutMs"] = json!(500);
        }
        json!({"name": "h", "events": [event], "config": config})
    };
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let (status, created) = send_json(
            Method::POST,
            "/api/hooks".into(),
            ADMIN,
            hook("PostRegister", "/slow", "sync"),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        stalled.push(created["id"].as_str().unwrap().to_string());
    }

    let started = Instant::now();
    let (status, answer) = send_json(
        Method::POST,
        "/api/events?wait=true".into(),
        INGEST,
        json!({"event": "PostRegister", "userId": "u_1"}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    // One after the other they would take 1,000 ms; at once, 500 ms plus the recording.
    assert!(
        took < Duration::from_millis(900),
        "the request waited {took:?}"
    );
    for id in &stalled {
        let r = result(&answer, id);
        assert_eq!(r["error"], "timeout", "{r}");
        let ms = r["durationMs"].as_u64().unwrap();
        assert!((450..800).contains(&ms), "{id} timed out after {ms} ms");
    }
    assert_eq!(endpoints.count("/slow"), 2);
    {
        // Both calls reached the receiver before either could have timed out.
        let calls = endpoints.calls.lock().unwrap();
        let gap = calls[1].1.at.duration_since(calls[0].1.at);
        assert!(
            gap < Duration::from_millis(400),
            "second call {gap:?} later"
        );
    }

    // Five sync hooks, then every way to a sixth.
    for _ in 0..3 {
        let (status, created) = send_json(
            Method::POST,
            "/api/hooks".into(),
            ADMIN,
            hook("PostRegister", "/deny", "sync"),
        )
        .await;
        assert_eq!(status, 201, "{created}");
    }
    let (status, refused) = send_json(
        Method::POST,
        "/api/hooks".into(),
        ADMIN,
        hook("PostRegister", "/deny", "sync"),
    )
    .await;
    assert_eq!(
        (status, &refused["data"]["field"]),
        (400, &json!("config.mode")),
        "{refused}"
    );
    let (_, async_hook) = send_json(
        Method::POST,
        "/api/hooks".into(),
        ADMIN,
        hook("PostRegister", "/deny", "async"),
    )
    .await;
    let (_, other_event) = send_json(
        Method::POST,
        "/api/hooks".into(),
        ADMIN,
        hook("PostSignIn", "/deny", "sync"),
    )
    .await;
    let patch = |id: &Value, body: Value| {
        send_json(
            Method::PATCH,
            format!("/api/hooks/{}", id.as_str().unwrap()),
            ADMIN,
            body,
        )
    };
    let (status, refused) = patch(
        &async_hook["id"],
        json!({"config": {"url": format!("{base_url}/deny"), "mode": "sync"}}),
    )
    .await;
    assert_eq!(
        (status, &refused["data"]["field"]),
        (400, &json!("config.mode")),
        "{refused}"
    );
    let (status, refused) = patch(
        &other_event["id"],
        json!({"events": ["PostSignIn", "PostRegister"]}),
    )
    .await;
    assert_eq!(
        (status, &refused["data"]["field"]),
        (400, &json!("config.mode")),
        "{refused}"
    );
    // A sync hook already counted may still be edited.
    let (status, edited) = patch(&json!(stalled[0]), json!({"name": "renamed"})).await;
    assert_eq!(status, 200, "{edited}");
    let get = |id: &Value| {
        send_json(
            Method::GET,
            format!("/api/hooks/{}", id.as_str().unwrap()),
            ADMIN,
            Value::Null,
        )
    };
    let (_, unchanged) = get(&async_hook["id"]).await;
    assert!(unchanged["config"].get("mode").is_none(), "{unchanged}");
    let (_, unchanged) = get(&other_event["id"]).await;
    assert_eq!(unchanged["events"], json!(["PostSignIn"]), "{unchanged}");
    let (status, answer) = send_json(
        Method::POST,
        "/api/events?wait=true".into(),
        INGEST,
        json!({"event": "PostRegister", "userId": "u_2"}),
    )
    .await;
    assert_eq!(status, 200, "five sync hooks are allowed: {answer}");
    assert_eq!(answer["results"].as_array().unwrap().len(), 5, "{answer}");

    // Writers racing past the capacity check: each reads the count before any writes.
    for id in &stalled {
        let (status, _) = send_json(
            Method::DELETE,
            format!("/api/hooks/{id}"),
            ADMIN,
            Value::Null,
        )
        .await;
        assert_eq!(status, 204);
    }
    let racers = (0..6).map(|_| {
        send_json(
            Method::POST,
            "/api/hooks".into(),
            ADMIN,
            hook("PostRegister", "/deny", "sync"),
        )
    });
    let created = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter(|(status, _)| *status == 201)
        .count();
    // The SQLite store answers the check and the write on one connection, in order.
    assert_eq!(created, 2, "racing creates made {} sync hooks", 3 + created);
    let (status, answer) = send_json(
        Method::POST,
        "/api/events?wait=true".into(),
        INGEST,
        json!({"event": "PostRegister", "userId": "u_3"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"].as_array().unwrap().len(), 5, "{answer}");
    server.stop().await;
}
