//! Logto's management API shapes, as a script written against Logto would meet them: each
//! case is a fact transcribed from Logto's route and schema definitions (`routes/hook.ts`,
//! `koa-pagination.ts`, `RequestError`, `jsonb-types/hooks.ts`), sent over real HTTP to the
//! dev server, and every answer is also checked against docs/openapi.yaml.

use crate::openapi::{conforms, doc};
use crate::support::{ADMIN, INGEST, local_config};
use serde_json::{Value, json};
use std::time::Duration;
use webhooks::startup::local::LocalServer;
use webhooks_tests::receiver::Receiver;

struct Client {
    http: reqwest::Client,
    base: String,
    doc: Value,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Client {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Checks `value` against the document's schema `name`.
    fn conforms(&self, name: &str, value: &Value) {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        conforms(&self.doc, &schema, value, name).unwrap_or_else(|e| panic!("{e}"));
    }
}

async fn server() -> (LocalServer, Client) {
    let settings = crate::support::local_settings();
    let server = LocalServer::start(local_config(settings)).await.unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{}", server.addr),
        doc: doc(),
    };
    (server, client)
}

#[tokio::test]
async fn hooks_take_logto_bodies_and_a_fetched_hook_goes_back_unchanged() {
    use reqwest::Method;
    let (server, c) = server().await;
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url("/logto");

    // hooks.ts: `name` optional, the legacy single `event`, `config.retries` (0 to 3).
    let created = c
        .send(
            Method::POST,
            "/api/hooks",
            Some(json!({"event": "PostRegister", "config": {"url": url, "headers": {"x-a": "1"}, "retries": 3}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let hook = created.body;
    c.conforms("Hook", &hook);
    assert_eq!(hook["name"], "");
    assert_eq!(hook["events"], json!(["PostRegister"]));
    assert_eq!(hook["event"], "PostRegister");
    assert_eq!(hook["config"]["retries"], 3);
    assert_eq!(hook["enabled"], true);
    let id = hook["id"].as_str().unwrap().to_string();

    // Neither `events` nor `event`: 400 `hook.missing_events`. An empty name: 400.
    let missing = c
        .send(
            Method::POST,
            "/api/hooks",
            Some(json!({"config": {"url": url}})),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["code"], "hook.missing_events");
    c.conforms("Error", &missing.body);
    // Logto's default name is empty; 257 characters is past its column's 256.
    let long_name = c
        .send(
            Method::POST,
            "/api/hooks",
            Some(
                json!({"name": "n".repeat(257), "events": ["PostSignIn"], "config": {"url": url}}),
            ),
        )
        .await;
    assert_eq!(long_name.status, 400);
    // RequestError's envelope: {code, message, data?, details?}, `details` a string.
    let e = &long_name.body;
    assert!(e["code"].is_string() && e["message"].is_string(), "{e}");
    assert_eq!(e["data"]["field"], "name");
    assert!(e["details"].as_str().unwrap().contains("\"name\""), "{e}");
    c.conforms("Error", e);

    // A fetched hook (with stats, and Logto's tenantId) sent back: accepted, nothing changes
    // but what was meant to.
    let mut fetched = c
        .send(
            Method::GET,
            &format!("/api/hooks/{id}?includeExecutionStats=true"),
            None,
        )
        .await
        .body;
    assert!(fetched["executionStats"]["requestCount"].is_u64());
    fetched["tenantId"] = json!("default");
    fetched["name"] = json!("renamed");
    let patched = c
        .send(Method::PATCH, &format!("/api/hooks/{id}"), Some(fetched))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    c.conforms("Hook", &patched.body);
    assert_eq!(patched.body["name"], "renamed");
    for field in ["id", "createdAt", "signingKey", "events", "config"] {
        assert_eq!(patched.body[field], hook[field], "{field}");
    }
    // A key sent with a patch is ignored (hook.ts omits signingKey from the guard).
    let same = c
        .send(
            Method::PATCH,
            &format!("/api/hooks/{id}"),
            Some(json!({"signingKey": "attempted-overwrite-of-the-key"})),
        )
        .await;
    assert_eq!(same.status, 200);
    assert_eq!(same.body["signingKey"], hook["signingKey"]);
    // Unknown fields inside `config` are still refused.
    let unknown = c
        .send(
            Method::PATCH,
            &format!("/api/hooks/{id}"),
            Some(json!({"config": {"url": url, "retry": 1}})),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["data"]["field"], "config.retry");

    // koa-pagination with isOptional: no paging parameter, every hook and no Total-Number.
    for i in 0..24 {
        let r = c
            .send(
                Method::POST,
                "/api/hooks",
                Some(json!({"name": format!("h{i}"), "events": ["User.Created"], "config": {"url": url}})),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let all = c.send(Method::GET, "/api/hooks", None).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body.as_array().unwrap().len(), 25);
    assert!(all.headers.get("total-number").is_none());
    for h in all.body.as_array().unwrap() {
        c.conforms("Hook", h);
    }
    let page = c.send(Method::GET, "/api/hooks?page=1", None).await;
    assert_eq!(page.body.as_array().unwrap().len(), 20);
    assert_eq!(page.headers["total-number"], "25");
    let page = c
        .send(Method::GET, "/api/hooks?page_size=5&page=2", None)
        .await;
    assert_eq!(page.body.as_array().unwrap().len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn the_test_button_answers_as_logto_does() {
    use reqwest::Method;
    let (server, c) = server().await;
    let ok = Receiver::start(&[]).await;
    let failing = Receiver::start(&[500]).await;
    let hook = c
        .send(
            Method::POST,
            "/api/hooks",
            Some(json!({"name": "t", "events": ["PostSignIn"], "config": {"url": ok.url("/t")}})),
        )
        .await
        .body;
    let path = format!("/api/hooks/{}/test", hook["id"].as_str().unwrap());
    let test =
        |url: String| json!({"events": ["PostSignIn", "User.Created"], "config": {"url": url}});

    let r = c.send(Method::POST, &path, Some(test(ok.url("/t")))).await;
    assert_eq!(r.status, 204);
    assert_eq!(ok.received().len(), 2, "one sample per event");
    // Logto's test payload shapes (`generateHookTestPayload`).
    let samples: Vec<Value> = ok.received().iter().map(|r| r.json()).collect();
    let of = |event: &str| {
        samples
            .iter()
            .find(|s| s["event"] == event)
            .unwrap()
            .clone()
    };
    let interaction = of("PostSignIn");
    assert_eq!(interaction["userIp"], "fake-user-ip", "{interaction}");
    assert_eq!(interaction["user"]["username"], "fake-user");
    assert_eq!(interaction["application"]["type"], "SPA");
    let data = of("User.Created");
    assert_eq!(data["data"], json!({"result": "success"}), "{data}");
    assert_eq!(data["path"], "/fake-path/:id");
    assert_eq!(data["userAgent"], "fake-user-agent");

    // A non-2xx answer: 422 hook.endpoint_responded_with_error, data {responseStatus, responseBody}.
    let r = c
        .send(Method::POST, &path, Some(test(failing.url("/t"))))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "hook.endpoint_responded_with_error");
    assert_eq!(r.body["data"]["responseStatus"], 500);
    assert!(r.body["data"]["responseBody"].is_string(), "{}", r.body);
    c.conforms("TestFailure", &r.body);
    // Every sample is sent and reported, not only up to the first failure.
    assert_eq!(failing.received().len(), 2);
    let results = r.body["data"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", r.body);
    assert_eq!(results.iter().filter(|r| r["status"] == 500).count(), 1);
    assert_eq!(results.iter().filter(|r| r["status"] == 200).count(), 1);

    // No answer at all (nothing listens there): 422 hook.send_test_payload_failed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = c
        .send(
            Method::POST,
            &path,
            Some(test(format!("http://127.0.0.1:{port}/t"))),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "hook.send_test_payload_failed");
    let results = r.body["data"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", r.body);
    assert!(results.iter().all(|r| r["error"].is_string()), "{}", r.body);
    c.conforms("Error", &r.body);
    server.stop().await;
}

#[tokio::test]
async fn recent_logs_are_logto_log_entries_with_logto_filters() {
    use reqwest::Method;
    let (server, c) = server().await;
    let receiver = Receiver::start(&[]).await;
    let hook = c
        .send(
            Method::POST,
            "/api/hooks",
            Some(json!({"name": "logs", "events": ["PostRegister", "User.Created"], "config": {"url": receiver.url("/l")}})),
        )
        .await
        .body;
    let id = hook["id"].as_str().unwrap();
    for event in [
        json!({"event": "PostRegister", "userId": "u1"}),
        json!({"event": "User.Created", "data": {"id": "u1"}}),
    ] {
        let r = c
            .http
            .post(format!("{}/api/events", c.base))
            .bearer_auth(INGEST)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    receiver.wait_for(2, Duration::from_secs(10)).await;
    let logs = loop {
        let logs = c
            .send(Method::GET, &format!("/api/hooks/{id}/recent-logs"), None)
            .await
            .body;
        if logs
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["result"] == "Success")
        {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 2);
    for log in logs {
        c.conforms("DeliveryLog", log);
        // Logs.guard: {id, key, payload, createdAt}; payload {key, result, hookId,
        // hookRequest: {body}, response: {statusCode, body}}.
        let key = log["key"].as_str().unwrap();
        assert!(key.starts_with("TriggerHook."), "{log}");
        assert!(log["createdAt"].is_i64());
        let payload = &log["payload"];
        assert_eq!(payload["key"], key);
        assert_eq!(payload["result"], "Success");
        assert_eq!(payload["hookId"], id);
        assert_eq!(payload["hookRequest"]["body"]["hookId"], id);
        assert_eq!(payload["response"]["statusCode"], 200);
        assert!(payload.get("error").is_none());
    }

    // `logKey` is an exact key; `start_time`/`end_time` are unix milliseconds.
    let register = c
        .send(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?logKey=TriggerHook.PostRegister"),
            None,
        )
        .await
        .body;
    let register = register.as_array().unwrap();
    assert_eq!(register.len(), 1);
    assert_eq!(
        register[0]["payload"]["hookRequest"]["body"]["event"],
        "PostRegister"
    );
    let now = webhooks::domain::clock::now_ms();
    let future = c
        .send(
            Method::GET,
            &format!(
                "/api/hooks/{id}/recent-logs?start_time={}&end_time={}",
                now + 60_000,
                now + 120_000
            ),
            None,
        )
        .await
        .body;
    assert_eq!(future, json!([]));
    let window = c
        .send(
            Method::GET,
            &format!(
                "/api/hooks/{id}/recent-logs?start_time={}&end_time={}",
                now - 60_000,
                now + 1
            ),
            None,
        )
        .await
        .body;
    assert_eq!(window.as_array().unwrap().len(), 2);
    let backwards = c
        .send(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?start_time={now}&end_time=1"),
            None,
        )
        .await;
    assert_eq!(backwards.status, 400);
    let bad_key = c
        .send(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?logKey=PostRegister"),
            None,
        )
        .await;
    assert_eq!(backwards.body["code"], "log.invalid_time_window");
    // An unknown key matches nothing (Logto answers an empty list), an end alone has no
    // lower bound, and a decimal timestamp is read as JavaScript reads it.
    assert_eq!(bad_key.status, 200);
    assert_eq!(bad_key.body, json!([]));
    let ended = c
        .send(
            Method::GET,
            &format!("/api/hooks/{id}/recent-logs?end_time={}.5", now + 1),
            None,
        )
        .await;
    assert_eq!(ended.status, 200);
    assert_eq!(
        ended.body.as_array().unwrap().len(),
        window.as_array().unwrap().len()
    );

    // koa-pagination's `Total-Number` is exact on every page: Logto's console computes its
    // page count from it (`WebhookLogs`: `page`, `page_size`, `logKey`).
    for i in 0..23 {
        let r = c
            .http
            .post(format!("{}/api/events", c.base))
            .bearer_auth(INGEST)
            .json(&json!({"event": "User.Created", "data": {"id": format!("u{i}")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    receiver.wait_for(25, Duration::from_secs(20)).await;
    for (query, total, len) in [
        ("page=1&page_size=10", "25", 10),
        ("page=3&page_size=10", "25", 5),
        (
            "page=2&page_size=20&logKey=TriggerHook.User.Created",
            "24",
            4,
        ),
        ("page=1&page_size=5&logKey=TriggerHook.PostRegister", "1", 1),
    ] {
        let r = c
            .send(
                Method::GET,
                &format!("/api/hooks/{id}/recent-logs?{query}"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{query}");
        assert_eq!(r.headers["total-number"], total, "{query}");
        assert!(r.headers.get("total-number-is-capped").is_none(), "{query}");
        assert_eq!(r.body.as_array().unwrap().len(), len, "{query}");
    }
    server.stop().await;
}

/// Logto sends `User-Agent: Logto (https://logto.io/)` (`libraries/hook/utils.ts`); a receiver
/// or firewall that allows only it gets it when the operator sets it.
#[tokio::test]
async fn deliveries_carry_the_user_agent_the_operator_sets() {
    let mut settings = crate::support::local_settings();
    settings.user_agent = http::HeaderValue::from_static("Logto (https://logto.io/)");
    let server = LocalServer::start(local_config(settings)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let receiver = Receiver::start(&[]).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(
            &json!({"name": "", "events": ["User.Created", "User.Created"],
            "config": {"url": receiver.url("/in")}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    assert_eq!(hook["name"], "", "Logto's default name, kept");
    assert_eq!(
        hook["events"],
        json!(["User.Created"]),
        "repeats dropped as Logto does"
    );
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "User.Created", "data": {"id": "u1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        received[0].header("user-agent"),
        "Logto (https://logto.io/)"
    );
    // The GET → PATCH round trip of an unnamed hook.
    let id = hook["id"].as_str().unwrap();
    let fetched: Value = http
        .get(format!("{base}/api/hooks/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .patch(format!("{base}/api/hooks/{id}"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": fetched["name"], "events": fetched["events"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Logto's error codes: `koa-guard` answers `guard.invalid_input`, `koa-pagination`
/// `guard.invalid_pagination`, and a log window that ends before it starts
/// `log.invalid_time_window`; each keeps `data.field` and `details`.
#[tokio::test]
async fn refusals_carry_logtos_codes() {
    let server = LocalServer::start(local_config(crate::support::local_settings()))
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "ftp://x.example"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "guard.invalid_input", "{body}");
    assert_eq!(body["data"]["field"], "config.url");
    assert!(body["details"].as_str().unwrap().contains("config.url"));
    let hook: Value = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(
            &json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://x.example"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = hook["id"].as_str().unwrap();
    for (path, code, field) in [
        (
            "/api/hooks?page_size=0".to_string(),
            "guard.invalid_pagination",
            "page_size",
        ),
        (
            "/api/hooks?page=abc".to_string(),
            "guard.invalid_pagination",
            "page",
        ),
        (
            format!("/api/hooks/{id}/recent-logs?page_size=101"),
            "guard.invalid_pagination",
            "page_size",
        ),
        (
            format!("/api/hooks/{id}/recent-logs?start_time=2000&end_time=1000"),
            "log.invalid_time_window",
            "startTime",
        ),
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], code, "{path}: {body}");
        assert_eq!(body["data"]["field"], field, "{path}: {body}");
    }
}

/// Logto's `config.retries` is the number of re-tries after the first attempt
/// (`ky`'s `retry.limit`): 0 sends once, 1 twice, at this product's first delays.
#[tokio::test]
async fn config_retries_limits_the_attempts_as_in_logto() {
    let mut settings = crate::support::local_settings();
    settings.retry_schedule = webhooks::domain::retry::RetrySchedule::parse("1s,1s,1s").unwrap();
    let server = LocalServer::start(local_config(settings)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let mut receivers = Vec::new();
    for retries in [0, 1] {
        let receiver = Receiver::start(&[500; 10]).await;
        let r = http
            .post(format!("{base}/api/hooks"))
            .bearer_auth(ADMIN)
            .json(
                &json!({"name": format!("r{retries}"), "events": ["User.Created"],
                "config": {"url": receiver.url("/in"), "retries": retries}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        receivers.push(receiver);
    }
    let unset = Receiver::start(&[500; 10]).await;
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "unset", "events": ["User.Created"], "config": {"url": unset.url("/in")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "User.Created", "data": {"id": "u1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The unset hook's four attempts take about 3 s (three 1 s delays, ±20 %).
    unset.wait_for(4, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receivers[0].received().len(), 1, "retries: 0 sends once");
    assert_eq!(receivers[1].received().len(), 2, "retries: 1 sends twice");
    assert_eq!(unset.received().len(), 4, "unset: the whole schedule");
}

/// A Logto hook moved over keeps its id (`PUT /api/hooks/{id}`), its legacy `event` behaves as
/// in Logto's dispatcher (`events.length > 0 ? events.includes(e) : event === e`), and the
/// headers Logto's `hookConfigGuard` accepts are kept and sent as Logto sends them (custom
/// headers after `user-agent`, before the signature).
async fn logto_hook_identity(base: &str) {
    use reqwest::Method;
    let c = Client {
        http: reqwest::Client::new(),
        base: base.to_string(),
        doc: doc(),
    };
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url("/moved");
    // generateStandardId(): 21 characters of [a-z0-9].
    let logto_id = "k3v9q2m8x1c7b4n6z5l0p";
    let body = json!({"name": "", "event": "PostRegister", "config": {"url": url, "headers": {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Logto (https://logto.io/)",
        "webhook-source": "logto",
        "x-api-key": "HeaderSecret-Moved-1"}}});
    let created = c
        .send(
            Method::PUT,
            &format!("/api/hooks/{logto_id}"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    c.conforms("Hook", &created.body);
    assert_eq!(created.body["id"], logto_id);
    assert_eq!(created.body["event"], "PostRegister");
    assert_eq!(created.body["events"], json!(["PostRegister"]));
    assert_eq!(
        created.body["config"]["headers"]["Content-Type"],
        "application/json; charset=utf-8"
    );
    let again = c
        .send(
            Method::PUT,
            &format!("/api/hooks/{logto_id}"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["code"], "hook.id_taken");
    c.conforms("Error", &again.body);
    for bad in ["has%20space", "operational", &"x".repeat(65)] {
        let r = c
            .send(
                Method::PUT,
                &format!("/api/hooks/{bad}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (
                r.status,
                r.body["code"].as_str(),
                r.body["data"]["field"].as_str()
            ),
            (400, Some("guard.invalid_input"), Some("id")),
            "{bad}"
        );
    }
    // Only headers that would break the request, and the signatures, are refused.
    for name in [
        "Connection",
        "Transfer-Encoding",
        "webhook-signature",
        "logto-signature-sha-256",
    ] {
        let r = c
            .send(
                Method::POST,
                "/api/hooks",
                Some(json!({"events": ["PostSignIn"], "config": {"url": url, "headers": {name: "v"}}})),
            )
            .await;
        assert_eq!(r.status, 400, "{name}");
        assert_eq!(r.body["data"]["field"], format!("config.headers.{name}"));
    }

    // PATCH {event}: a hook whose `events` came from `event` follows it, round trip or not.
    let path = format!("/api/hooks/{logto_id}");
    let moved = c
        .send(Method::PATCH, &path, Some(json!({"event": "PostSignIn"})))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        (&moved.body["event"], &moved.body["events"]),
        (&json!("PostSignIn"), &json!(["PostSignIn"]))
    );
    let fetched = c.send(Method::GET, &path, None).await.body;
    assert_eq!(
        c.send(Method::PATCH, &path, Some(fetched)).await.status,
        200
    );
    let moved = c
        .send(Method::PATCH, &path, Some(json!({"event": "User.Created"})))
        .await;
    assert_eq!(moved.body["events"], json!(["User.Created"]));
    // With `events` of its own, `event` is only kept and returned.
    let listed = c
        .send(
            Method::POST,
            "/api/hooks",
            Some(json!({"events": ["Role.Created", "Role.Deleted"], "config": {"url": url}})),
        )
        .await
        .body;
    let listed_path = format!("/api/hooks/{}", listed["id"].as_str().unwrap());
    let kept = c
        .send(
            Method::PATCH,
            &listed_path,
            Some(json!({"event": "PostRegister"})),
        )
        .await;
    assert_eq!(
        (&kept.body["event"], &kept.body["events"]),
        (
            &json!("PostRegister"),
            &json!(["Role.Created", "Role.Deleted"])
        )
    );

    // Delivered as Logto delivers: its hookId, its content type and agent, our signatures.
    let r = c
        .http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "User.Created", "data": {"id": "u_1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let delivered: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(delivered["hookId"], logto_id);
    assert_eq!(
        got[0].header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(got[0].header("user-agent"), "Logto (https://logto.io/)");
    assert_eq!(got[0].header("webhook-source"), "logto");
    assert!(got[0].header("webhook-signature").starts_with("v1,"));
}

#[tokio::test]
async fn logto_hooks_keep_their_id_legacy_event_and_headers_on_the_dev_server() {
    let (server, c) = server().await;
    logto_hook_identity(&c.base).await;
    server.stop().await;
}

#[tokio::test]
async fn logto_hooks_keep_their_id_legacy_event_and_headers_on_dynamodb() {
    let p = crate::support::pipeline("logtoid", "1s").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = p.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let sender = p.sender.clone();
    let queue = p.moto.queue.clone();
    let delivering = tokio::spawn(async move {
        loop {
            webhooks_tests::pump(&queue, &sender, 1).await;
        }
    });
    logto_hook_identity(&base).await;
    delivering.abort();
}
