//! The durable relay for existing Logto deployments, fed bodies shaped exactly as Logto's
//! dispatcher builds them (`libraries/hook/utils.ts`: `JSON.stringify` of the payload,
//! `hookId` last) and signed the way Logto signs them (hex HMAC-SHA256 of the body with the
//! hook's signing key); and the preview events behind Logto's dev-feature flag.

use crate::support::{ADMIN, INGEST, local_config, pipeline};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use webhooks::app::relay::LogtoSources;
use webhooks::domain::signing::{SigningKey, logto_signature};
use webhooks::startup::local::{LocalConfig, LocalServer};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::verifiers::standard_webhooks_verifies;
use webhooks_tests::{pump, pump_until};

/// A Logto signing key: 32 letters and digits, as Logto generates them.
const LOGTO_KEY: &str = "k9Qz2Lw7Xv4Rt8Yp1Mn6Bc3Hd5Fg0Ja";
const OTHER_KEY: &str = "Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd";

fn sign(key: &str, body: &str) -> String {
    logto_signature(&SigningKey::import(key).unwrap(), body.as_bytes())
}

/// Bodies as Logto's dispatcher sends them, with Logto's own `hookId` last.
fn logto_bodies() -> Vec<String> {
    vec![
        // A data hook from the management API (buildWebhooks + registered route context).
        r#"{"event":"User.Created","createdAt":"2026-11-27T08:00:00.123Z","userAgent":"Mozilla/5.0 (X11)","ip":"203.0.113.7","path":"/users","method":"POST","status":200,"params":{},"matchedRoute":"/users","data":{"id":"u_1","username":"alice","primaryEmail":"alice@example.com","customData":{"plan":"pro","seats":12345678901234567890},"createdAt":1795766400123},"hookId":"l0gt0h00k1d"}"#.to_string(),
        // An interaction hook (triggerInteractionHooks).
        r#"{"event":"PostRegister","interactionEvent":"Register","createdAt":"2026-11-27T08:00:01.000Z","sessionId":"jti_1","userAgent":"Mozilla/5.0","userId":"u_1","userIp":"2001:db8::1","user":{"id":"u_1","username":"alice","name":"Al\u00efce"},"application":{"id":"app_1","type":"SPA","name":"Web","description":null},"hookId":"l0gt0h00k1d"}"#.to_string(),
        // Organization.Membership.Updated: the delta, no `data`.
        r#"{"event":"Organization.Membership.Updated","createdAt":"2026-11-27T08:00:02.000Z","userAgent":"curl/8","ip":"198.51.100.4","path":"/organizations/org_1/users","method":"PUT","status":204,"params":{"id":"org_1"},"matchedRoute":"/organizations/:id/users","organizationId":"org_1","addedUserIds":["u_2"],"removedUserIds":["u_3"],"hookId":"l0gt0h00k1d"}"#.to_string(),
    ]
}

/// The body this product delivers for a relayed one: its own `hookId` first, then Logto's
/// members unchanged, Logto's `hookId` gone.
fn expected(relayed: &str, hook: &str) -> String {
    let without = relayed
        .strip_suffix(r#","hookId":"l0gt0h00k1d"}"#)
        .expect("Logto puts hookId last");
    format!(r#"{{"hookId":"{hook}",{}}}"#, &without[1..])
}

async fn local(preview: bool) -> (LocalServer, String) {
    let mut settings = crate::support::local_settings();
    settings.preview_events = preview;
    let server = LocalServer::start(LocalConfig {
        logto_sources: LogtoSources::parse(&format!("prod={LOGTO_KEY},staging={OTHER_KEY}"))
            .unwrap(),
        ..local_config(settings)
    })
    .await
    .unwrap();
    let base = format!("http://{}", server.addr);
    (server, base)
}

async fn relay(
    http: &reqwest::Client,
    base: &str,
    source: &str,
    signature: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = http
        .post(format!("{base}/api/ingest/logto/{source}"))
        .header("content-type", "application/json")
        .header("user-agent", "Logto (https://logto.io/)")
        .body(body.to_string());
    if let Some(signature) = signature {
        req = req.header("logto-signature-sha-256", signature);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_logto_instance_relays_signed_events_durably_and_once() {
    let (server, base) = local(false).await;
    let http = reqwest::Client::new();
    let receiver = Receiver::start(&[]).await;
    let hook: Value = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "relayed", "events": ["User.Created", "PostRegister", "Organization.Membership.Updated"], "config": {"url": receiver.url("/r")}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_id = hook["id"].as_str().unwrap();
    let key = hook["signingKey"].as_str().unwrap();

    // Refused, and nothing happens: no signature, a wrong one, another source's key, an
    // unknown source, a bearer token instead of a signature.
    let body = &logto_bodies()[0];
    let refused = [
        relay(&http, &base, "prod", None, body).await,
        relay(&http, &base, "prod", Some(&"0".repeat(64)), body).await,
        relay(&http, &base, "prod", Some(&sign(OTHER_KEY, body)), body).await,
        relay(&http, &base, "nope", Some(&sign(LOGTO_KEY, body)), body).await,
        relay(
            &http,
            &base,
            "prod",
            Some(&sign(LOGTO_KEY, body)),
            &body.replace("alice", "mallory"),
        )
        .await,
    ];
    for (status, answer) in &refused {
        assert_eq!(*status, 401, "{answer}");
        assert_eq!(answer["code"], "auth.invalid_signature");
    }
    let r = http
        .post(format!("{base}/api/ingest/logto/prod"))
        .bearer_auth(INGEST)
        .json(&json!({"event": "User.Created"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Each of Logto's bodies is accepted and delivered with Logto's members unchanged.
    for body in logto_bodies() {
        let (status, answer) =
            relay(&http, &base, "prod", Some(&sign(LOGTO_KEY, &body)), &body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["deliveries"], 1, "{answer}");
    }
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let mut bodies: Vec<String> = got.iter().map(|r| r.body_text()).collect();
    bodies.sort();
    let mut wanted: Vec<String> = logto_bodies()
        .iter()
        .map(|b| expected(b, hook_id))
        .collect();
    wanted.sort();
    assert_eq!(bodies, wanted);
    for r in &got {
        standard_webhooks_verifies(key, r).unwrap_or_else(|e| panic!("{e}"));
    }

    // Logto sends the same bytes again (a retry): recognised, nothing sent twice.
    let body = &logto_bodies()[0];
    let (status, again) = relay(&http, &base, "prod", Some(&sign(LOGTO_KEY, body)), body).await;
    assert_eq!(status, 202);
    assert_eq!(again["deliveries"], 1);
    // From another source the same bytes are another event.
    let (status, _) = relay(&http, &base, "staging", Some(&sign(OTHER_KEY, body)), body).await;
    assert_eq!(status, 202);
    receiver.wait_for(4, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        4,
        "the repeat was not delivered again"
    );

    // The relayed deliveries are in the hook's log like any other.
    let logs: Value = http
        .get(format!("{base}/api/hooks/{hook_id}/recent-logs"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs.as_array().unwrap().len(), 4);
    server.stop().await;
}

/// A moto pipeline whose router takes relayed events from the `prod` source.
async fn relay_pipeline(name: &str) -> crate::support::Pipeline {
    let mut p = pipeline(name, "1s").await;
    let settings = crate::support::settings("1s");
    p.router = webhooks::api::router(
        webhooks::api::Api::new(
            p.moto.store.clone(),
            p.moto.queue.clone(),
            webhooks::net::client::DeliveryClient::from_settings(&settings),
            crate::support::tokens(),
            &settings,
        )
        .with_logto_sources(LogtoSources::parse(&format!("prod={LOGTO_KEY}")).unwrap()),
    );
    p
}

#[tokio::test]
async fn the_aws_path_relays_a_logto_event() {
    let p = relay_pipeline("relay").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p.create_hook(&receiver.url("/r"), &["User.Created"]).await;
    let body = logto_bodies().remove(0);
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/api/ingest/logto/prod")
        .header("content-type", "application/json")
        .header("logto-signature-sha-256", sign(LOGTO_KEY, &body))
        .body(axum::body::Body::from(body.clone()))
        .unwrap();
    let r = crate::support::send(&p.router, req).await;
    assert_eq!(r.status, 202, "{}", r.text());
    pump_until(&p.moto.queue, &p.sender, Duration::from_secs(20), || {
        receiver.count() >= 1
    })
    .await;
    let got = receiver.received();
    assert_eq!(
        got[0].body_text(),
        expected(&body, hook["id"].as_str().unwrap())
    );
    // Relayed again: the same event.
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/api/ingest/logto/prod")
        .header("content-type", "application/json")
        .header("logto-signature-sha-256", sign(LOGTO_KEY, &body))
        .body(axum::body::Body::from(body))
        .unwrap();
    assert_eq!(crate::support::send(&p.router, req).await.status, 202);
    pump(&p.moto.queue, &p.sender, 2).await;
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn preview_events_need_their_setting() {
    let http = reqwest::Client::new();
    for preview in [false, true] {
        let (server, base) = local(preview).await;
        let catalog: Value = http
            .get(format!("{base}/api/hook-events"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed = catalog
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "TrustedDevice.Created");
        assert_eq!(listed, preview);
        assert!(
            catalog
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "Identifier.Lockout"),
            "generally available"
        );
        let event = http
            .post(format!("{base}/api/events"))
            .bearer_auth(INGEST)
            .json(&json!({"event": "TrustedDevice.Created", "data": {"id": "d1", "userId": "u1"}}))
            .send()
            .await
            .unwrap();
        let hook = http
            .post(format!("{base}/api/hooks"))
            .bearer_auth(ADMIN)
            .json(&json!({"events": ["User.Created", "TrustedDevice.Deleted"], "config": {"url": "http://127.0.0.1:9/x"}}))
            .send()
            .await
            .unwrap();
        if preview {
            assert_eq!(event.status(), 202);
            assert_eq!(hook.status(), 201);
        } else {
            assert_eq!(event.status(), 400);
            let e: Value = event.json().await.unwrap();
            assert_eq!(e["data"]["field"], "event");
            assert_eq!(hook.status(), 400);
            let e: Value = hook.json().await.unwrap();
            assert_eq!(e["data"]["field"], "events[1]");
        }
        server.stop().await;
    }
}

/// Logto's "Test" button payloads (`generateHookTestPayload`: an interaction event with
/// `userIp: "fake-user-ip"`, a data event, an exception event), fields Logto may send that a
/// caller could not post (an empty or proxy-supplied IP, an odd `createdAt`), an event this
/// product does not know, and the largest membership delta Logto sends (four lists of 5,000
/// ids): each signed body is accepted and delivered byte for byte.
fn what_logto_may_send() -> Vec<(String, Option<&'static str>)> {
    let ids = |prefix: &str| -> Vec<String> {
        (0..5_000).map(|i| format!("{prefix}{i:0>17}x")).collect()
    };
    let delta = json!({
        "event": "Organization.Membership.Updated",
        "createdAt": "2026-11-27T08:00:03.000Z",
        "organizationId": "org_1",
        "addedUserIds": ids("au_"),
        "removedUserIds": ids("ru_"),
        "addedApplicationIds": ids("aa_"),
        "removedApplicationIds": ids("ra_"),
        "hookId": "l0gt0h00k1d",
    });
    vec![
        (r#"{"event":"PostRegister","hookId":"l0gt0h00k1d","createdAt":"2026-11-27T08:00:00.000Z","userAgent":"fake-user-agent","sessionId":"fake-session-id","userIp":"fake-user-ip","userId":"fake-id","user":{"id":"fake-id","username":"fake-user"},"application":{"id":"fake-spa-application-id","type":"SPA","name":"Fake Application","description":"Fake application data for testing"}}"#.to_string(), Some("PostRegister")),
        (r#"{"event":"User.Created","hookId":"l0gt0h00k1d","createdAt":"2026-11-27T08:00:00.000Z","userAgent":"fake-user-agent","path":"/fake-path/:id","method":"POST","status":200,"params":{"id":"fake-id"},"data":{"result":"success"}}"#.to_string(), Some("User.Created")),
        (r#"{"event":"Identifier.Lockout","hookId":"l0gt0h00k1d","createdAt":"2026-11-27T08:00:00.000Z","userAgent":"fake-user-agent","path":"/fake-path/:id","method":"POST","status":200,"params":{"id":"fake-id"},"data":{"result":"success"}}"#.to_string(), Some("Identifier.Lockout")),
        (r#"{"event":"PostSignIn","interactionEvent":"SignIn","createdAt":"yesterday","sessionId":"s","userIp":"","ip":"10.0.0.1, 203.0.113.9","userId":"u_1","hookId":"l0gt0h00k1d"}"#.to_string(), Some("PostSignIn")),
        (r#"{"event":"Some.FutureEvent","createdAt":"2026-11-27T08:00:00.000Z","data":{},"hookId":"l0gt0h00k1d"}"#.to_string(), None),
        (delta.to_string(), Some("Organization.Membership.Updated")),
    ]
}

/// `body` as delivered: `hookId` first, Logto's `hookId` gone, every other member as sent.
fn delivered_form(body: &str, hook: &str) -> String {
    let mut members: serde_json::Map<String, Value> = serde_json::from_str(body).unwrap();
    members.shift_remove("hookId");
    let mut out = serde_json::Map::new();
    out.insert("hookId".into(), json!(hook));
    out.extend(members);
    Value::Object(out).to_string()
}

#[tokio::test]
async fn whatever_logto_signs_is_delivered_as_sent() {
    let (_server, base) = local(false).await;
    let receiver = Receiver::start(&[]).await;
    let http = reqwest::Client::new();
    let mut hooks = std::collections::BTreeMap::new();
    for (_, event) in what_logto_may_send() {
        let Some(event) = event else { continue };
        let r = http
            .post(format!("{base}/api/hooks"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": event, "events": [event], "config": {"url": receiver.url(&format!("/{event}"))}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        hooks.insert(
            event,
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut expected = Vec::new();
    for (body, event) in what_logto_may_send() {
        let (status, answer) =
            relay(&http, &base, "prod", Some(&sign(LOGTO_KEY, &body)), &body).await;
        assert_eq!(status, 202, "{answer} for {}", &body[..body.len().min(200)]);
        match event {
            Some(event) => {
                assert_eq!(answer["deliveries"], 1, "{answer}");
                expected.push(delivered_form(&body, &hooks[event]));
            }
            None => assert_eq!(answer["deliveries"], 0, "an unknown event reaches no hook"),
        }
    }
    assert!(expected.last().unwrap().len() > 270_000);
    let received = receiver
        .wait_for(expected.len(), Duration::from_secs(20))
        .await;
    for want in &expected {
        assert!(
            received.iter().any(|r| r.body_text() == *want),
            "delivered as sent: {}",
            &want[..want.len().min(300)]
        );
    }
    // Still refused: a body that is not an object, and one larger than Logto sends.
    for body in [
        "[1]".to_string(),
        format!(
            r#"{{"event":"User.Created","pad":"{}"}}"#,
            "x".repeat(600_000)
        ),
    ] {
        let (status, _) = relay(&http, &base, "prod", Some(&sign(LOGTO_KEY, &body)), &body).await;
        assert!(status == 400 || status == 413, "{status}");
    }
}

#[tokio::test]
async fn the_aws_path_delivers_the_largest_delta_logto_sends() {
    let p = relay_pipeline("relay-large").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p
        .create_hook(&receiver.url("/r"), &["Organization.Membership.Updated"])
        .await;
    let (body, _) = what_logto_may_send().pop().unwrap();
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/api/ingest/logto/prod")
        .header("content-type", "application/json")
        .header("logto-signature-sha-256", sign(LOGTO_KEY, &body))
        .body(axum::body::Body::from(body.clone()))
        .unwrap();
    let r = crate::support::send(&p.router, req).await;
    assert_eq!(r.status, 202, "{}", r.text());
    pump_until(&p.moto.queue, &p.sender, Duration::from_secs(30), || {
        receiver.count() >= 1
    })
    .await;
    assert_eq!(
        receiver.received()[0].body_text(),
        delivered_form(&body, hook["id"].as_str().unwrap())
    );
}
