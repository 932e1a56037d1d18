//! `webhooks-local import-logto` against a stand-in Logto management API on 127.0.0.1 that
//! answers with Logto's shapes (`GET /api/hooks`: `Hook` rows with `tenantId`, the legacy
//! `event`, 32-character keys, `koa-pagination`'s `page`/`page_size` and `Total-Number`).

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use webhooks::domain::signing::{SigningKey, verify_logto};
use webhooks_tests::dev_server::{DevServer, dev_server_binary};
use webhooks_tests::free_port;
use webhooks_tests::receiver::Receiver;

const ADMIN: &str = "import-admin";
const INGEST: &str = "import-ingest";
const LOGTO_TOKEN: &str = "logto-m2m-access-token";
const CRM_KEY: &str = "k9Qz2Lw7Xv4Rt8Yp1Mn6Bc3Hd5Fg0Ja";

/// Logto's `GET /api/hooks` with `koaPagination({ isOptional: true })`.
async fn logto_hooks(
    State(hooks): State<Arc<Vec<Value>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> axum::response::Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {LOGTO_TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": "auth.authorization_header_missing", "message": "Authorization header is missing."})),
        )
            .into_response();
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size: usize = query
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20);
    let items: Vec<Value> = hooks
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect();
    (
        [("total-number", hooks.len().to_string())],
        axum::Json(Value::Array(items)),
    )
        .into_response()
}

async fn stand_in_logto(hooks: Vec<Value>) -> String {
    let app = axum::Router::new()
        .route("/api/hooks", axum::routing::get(logto_hooks))
        .with_state(Arc::new(hooks));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{addr}")
}

fn import(binary: &str, logto: &str, token: &str, target: &str) -> (i32, String) {
    let out = Command::new(binary)
        .args([
            "import-logto",
            "--url",
            logto,
            "--token",
            token,
            "--to",
            target,
        ])
        .env("WEBHOOKS_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn hooks_are_copied_from_logto_with_their_keys_once() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let receiver = Receiver::start(&[]).await;
    let row = |id: &str, name: &str, event: Value, events: Value, config: Value, key: &str| {
        json!({"tenantId": "default", "id": id, "name": name, "event": event, "events": events,
               "config": config, "signingKey": key, "enabled": true, "createdAt": 1795766400000i64})
    };
    let legacy_url = receiver.url("/legacy").replacen("http://", "HTTP://", 1);
    let mut hooks = vec![
        row(
            "crmhook000000000000001",
            "crm",
            Value::Null,
            json!(["PostRegister", "User.Created"]),
            json!({"url": receiver.url("/crm"), "headers": {"x-api-key": "HeaderSecret-Import-1",
                "Content-Type": "application/json; charset=utf-8", "Connection": "keep-alive"}, "retries": 3}),
            CRM_KEY,
        ),
        // A hook of Logto's first versions: the single `event`, no key; its URL as Logto
        // kept it, not in normalised form.
        row(
            "legacyhook000000000001",
            "",
            json!("PostSignIn"),
            json!([]),
            json!({"url": legacy_url}),
            "",
        ),
        // This product refuses its URL: reported, not imported.
        row(
            "refusedhook00000000001",
            "ftp",
            Value::Null,
            json!(["User.Deleted"]),
            json!({"url": "ftp://files.example.com/in"}),
            "Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd",
        ),
    ];
    // Enough for a second page of Logto's 100.
    for i in 0..99 {
        hooks.push(row(
            &format!("bulk{i:018}"),
            &format!("bulk {i}"),
            Value::Null,
            json!(["Role.Created"]),
            json!({"url": receiver.url(&format!("/bulk/{i}"))}),
            &format!("BulkKey{i:025}"),
        ));
    }
    let logto = stand_in_logto(hooks).await;
    let mut server = DevServer::start_on(
        &binary,
        free_port(),
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
        ],
    );
    server.ready().await;
    let base = server.base.clone();

    let (code, output) = tokio::task::spawn_blocking({
        let (binary, logto, base) = (binary.clone(), logto.clone(), base.clone());
        move || import(&binary, &logto, "wrong-token", &base)
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("401"), "{output}");

    let (code, output) = tokio::task::spawn_blocking({
        let (binary, logto, base) = (binary.clone(), logto.clone(), base.clone());
        move || import(&binary, &logto, LOGTO_TOKEN, &base)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("101 imported, 1 skipped"), "{output}");
    assert!(
        output.contains("skipped refusedhook00000000001"),
        "{output}"
    );
    // Logto's ids are kept, so receivers checking `hookId` see no change.
    assert!(
        output.contains("legacyhook000000000001 as legacyhook000000000001")
            && output.contains("new signing key"),
        "{output}"
    );
    assert!(
        output.contains("left out header Connection of crmhook000000000000001"),
        "{output}"
    );
    for secret in [LOGTO_TOKEN, CRM_KEY, "HeaderSecret-Import-1", ADMIN] {
        assert!(!output.contains(secret), "{secret} printed: {output}");
    }

    let http = reqwest::Client::new();
    let ours = held_hooks(&http, &base).await;
    assert_eq!(ours.len(), 101);
    let crm = ours.iter().find(|h| h["name"] == "crm").unwrap();
    assert_eq!(crm["id"], "crmhook000000000000001");
    assert_eq!(crm["signingKey"], CRM_KEY);
    assert_eq!(
        crm["config"]["headers"]["Content-Type"],
        "application/json; charset=utf-8"
    );
    assert!(crm["config"]["headers"].get("Connection").is_none());
    assert_eq!(crm["events"], json!(["PostRegister", "User.Created"]));
    assert_eq!(
        crm["config"]["headers"]["x-api-key"],
        "HeaderSecret-Import-1"
    );
    assert_eq!(crm["config"]["retries"], 3);
    for i in 0..99 {
        let bulk = ours
            .iter()
            .find(|h| h["name"] == format!("bulk {i}"))
            .unwrap_or_else(|| panic!("bulk {i} imported"));
        assert_eq!(bulk["signingKey"], format!("BulkKey{i:025}"), "bulk {i}");
        assert_eq!(bulk["config"]["url"], receiver.url(&format!("/bulk/{i}")));
    }
    // Returned as written; compared normalised, so the second run below skips it.
    let legacy = ours
        .iter()
        .find(|h| h["config"]["url"] == legacy_url.as_str())
        .unwrap();
    assert_eq!(
        (
            &legacy["id"],
            &legacy["name"],
            &legacy["event"],
            &legacy["events"]
        ),
        (
            &json!("legacyhook000000000001"),
            &json!(""),
            &json!("PostSignIn"),
            &json!(["PostSignIn"])
        )
    );

    // The existing receiver's Logto check keeps passing with the key it already has.
    let r = http
        .post(format!("{base}/api/events"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "PostRegister", "userId": "u_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    verify_logto(
        &SigningKey::import(CRM_KEY).unwrap(),
        got[0].header("logto-signature-sha-256"),
        &got[0].body,
    )
    .expect("the Logto signature verifies with the Logto key");
    let delivered: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(delivered["hookId"], "crmhook000000000000001");

    // Run again: nothing is imported twice.
    let (code, output) = tokio::task::spawn_blocking({
        let (binary, logto, base) = (binary.clone(), logto.clone(), base.clone());
        move || import(&binary, &logto, LOGTO_TOKEN, &base)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("0 imported, 102 skipped"), "{output}");
    let after = held_hooks(&http, &base).await;
    assert_eq!(after.len(), 101, "the second run added no hook");
    server.stop();
}

/// Every hook the server holds (the listing without paging parameters answers all).
async fn held_hooks(http: &reqwest::Client, base: &str) -> Vec<Value> {
    http.get(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The same import into a deployment on DynamoDB (its API served from the moto-backed router):
/// Logto's ids kept, and a second run imports nothing.
#[tokio::test]
async fn an_import_into_dynamodb_keeps_logto_ids_once() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let hooks = vec![
        json!({"tenantId": "default", "id": "ddbhook000000000000001", "name": "", "event": "PostSignIn",
               "events": [], "config": {"url": "https://Receiver.Example.com:443"}, "signingKey": CRM_KEY,
               "enabled": true, "createdAt": 1795766400000i64}),
        json!({"tenantId": "default", "id": "ddbhook000000000000002", "name": "two", "event": null,
               "events": ["User.Created"], "config": {"url": "https://receiver.example.com/two",
               "headers": {"Host": "elsewhere.example.com"}}, "signingKey": "Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd",
               "enabled": false, "createdAt": 1795766400001i64}),
    ];
    let logto = stand_in_logto(hooks).await;
    let p = crate::support::pipeline("import", "1s").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = p.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let run = || {
        let (binary, logto, base) = (binary.clone(), logto.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            let out = Command::new(binary)
                .args([
                    "import-logto",
                    "--url",
                    &logto,
                    "--token",
                    LOGTO_TOKEN,
                    "--to",
                    &base,
                ])
                .env("WEBHOOKS_ADMIN_TOKEN", crate::support::ADMIN)
                .output()
                .unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
    };
    let (code, output) = run().await.unwrap();
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("2 imported, 0 skipped"), "{output}");
    assert!(
        output.contains("left out header Host of ddbhook000000000000002"),
        "{output}"
    );
    let http = reqwest::Client::new();
    for id in ["ddbhook000000000000001", "ddbhook000000000000002"] {
        let r = http
            .get(format!("{base}/api/hooks/{id}"))
            .bearer_auth(crate::support::ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id}");
    }
    let (code, output) = run().await.unwrap();
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("0 imported, 2 skipped"), "{output}");
}
