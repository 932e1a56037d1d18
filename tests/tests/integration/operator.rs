//! Idempotent ingest, key rotation, dropped deliveries and the operator actions (test button,
//! re-send, recover, execution stats) through the moto-backed pipeline.

use crate::support::pipeline;
use http::Method;
use serde_json::json;
use std::time::Duration;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::DeliveryStatus;
use webhooks::domain::hook::HookId;
use webhooks::domain::signing::{SigningKey, verify, verify_logto};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::verifiers::standard_webhooks_verifies;
use webhooks_tests::{pump, pump_until};

const WAIT: Duration = Duration::from_secs(20);

fn id(hook: &serde_json::Value) -> &str {
    hook["id"].as_str().unwrap()
}

#[tokio::test]
async fn an_event_posted_again_with_the_same_id_fans_out_once() {
    let p = pipeline("idem", "1s").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p.create_hook(&receiver.url("/in"), &["User.Created"]).await;
    let event = json!({"event": "User.Created", "id": "evt_caller_1", "data": {"id": "u"}});
    let first = p.post_event(event.clone()).await;
    assert_eq!(first.status, 202);
    let second = p.post_event(event.clone()).await;
    assert_eq!(second.status, 202);
    assert_eq!(
        second.body_json(),
        first.body_json(),
        "the answer repeats the first one"
    );
    let batch = p
        .post_event(json!({"events": [event.clone(), {"event": "User.Created", "id": "evt_caller_2"}, {"event": "User.Created", "id": "evt_caller_2"}]}))
        .await;
    assert_eq!(batch.status, 202);
    let answers = batch.body_json();
    assert_eq!(answers[0], first.body_json());
    assert_eq!(answers[1], answers[2]);

    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        receiver.received().len() >= 2
    })
    .await;
    pump(&p.moto.queue, &p.sender, 2).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "one delivery per distinct event id"
    );
    let logs = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}/recent-logs", id(&hook)),
            None,
        )
        .await;
    assert_eq!(logs.headers["total-number"], "2");
}

#[tokio::test]
async fn both_keys_sign_during_the_grace_period_then_only_the_new_one() {
    let p = pipeline("rotate", "1s").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p.create_hook(&receiver.url("/in"), &["Role.Created"]).await;
    let old = SigningKey::import(hook["signingKey"].as_str().unwrap()).unwrap();
    let rotated = p
        .admin(
            Method::PATCH,
            &format!("/api/hooks/{}/signing-key", id(&hook)),
            Some(json!({"expireAfterSeconds": 3600})),
        )
        .await;
    assert_eq!(rotated.status, 200);
    let new = SigningKey::import(rotated.body_json()["signingKey"].as_str().unwrap()).unwrap();
    assert_ne!(old, new);

    p.post_event(json!({"event": "Role.Created", "data": {"id": "r"}}))
        .await;
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        !receiver.received().is_empty()
    })
    .await;
    let req = &receiver.received()[0];
    let signatures = req.header("webhook-signature");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    let now = now_ms() / 1000;
    for key in [&old, &new] {
        verify(
            key,
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            signatures,
            &req.body,
            now,
            300,
        )
        .expect("each key verifies its own signature");
        standard_webhooks_verifies(key.expose(), req)
            .expect("the official library accepts either key");
    }
    verify_logto(&new, req.header("logto-signature-sha-256"), &req.body)
        .expect("Logto's header uses the new key");
    assert!(verify_logto(&old, req.header("logto-signature-sha-256"), &req.body).is_err());

    let bad = p
        .admin(
            Method::PATCH,
            &format!("/api/hooks/{}/signing-key", id(&hook)),
            Some(json!({"expireAfterSeconds": 604801})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let again = p
        .admin(
            Method::PATCH,
            &format!("/api/hooks/{}/signing-key", id(&hook)),
            Some(json!({"expireAfterSeconds": 0})),
        )
        .await;
    let newest = SigningKey::import(again.body_json()["signingKey"].as_str().unwrap()).unwrap();
    p.post_event(json!({"event": "Role.Created", "data": {"id": "r2"}}))
        .await;
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        receiver.received().len() >= 2
    })
    .await;
    let req = &receiver.received()[1];
    let signatures = req.header("webhook-signature");
    assert_eq!(
        signatures.split(' ').count(),
        2,
        "the first rotation's old key is still in its grace period"
    );
    verify(
        &newest,
        req.header("webhook-id"),
        req.header("webhook-timestamp"),
        signatures,
        &req.body,
        now_ms() / 1000,
        300,
    )
    .unwrap();
    assert!(
        verify(
            &new,
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            signatures,
            &req.body,
            now_ms() / 1000,
            300
        )
        .is_err(),
        "a key rotated with no grace stops signing at once"
    );
}

#[tokio::test]
async fn queued_deliveries_of_a_deleted_or_disabled_hook_are_dropped() {
    let p = pipeline("dropped", "1s").await;
    let receiver = Receiver::start(&[]).await;
    let deleted = p
        .create_hook(&receiver.url("/deleted"), &["Scope.Deleted"])
        .await;
    let disabled = p
        .create_hook(&receiver.url("/disabled"), &["Scope.Deleted"])
        .await;
    let r = p
        .post_event(json!({"event": "Scope.Deleted", "data": {"id": "s"}}))
        .await;
    assert_eq!(r.body_json()["deliveries"], 2);
    assert_eq!(
        p.admin(
            Method::DELETE,
            &format!("/api/hooks/{}", id(&deleted)),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        p.admin(
            Method::PATCH,
            &format!("/api/hooks/{}", id(&disabled)),
            Some(json!({"enabled": false}))
        )
        .await
        .status,
        200
    );
    pump(&p.moto.queue, &p.sender, 3).await;
    assert!(receiver.received().is_empty(), "nothing is sent");
    for hook in [&deleted, &disabled] {
        let hook_id = HookId::parse(id(hook)).unwrap();
        let deliveries = webhooks_tests::deliveries_between(
            p.moto.store.as_ref(),
            &hook_id,
            now_ms() - 60_000,
            now_ms(),
        )
        .await;
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].status, DeliveryStatus::Dropped);
        assert!(deliveries[0].attempts.is_empty());
    }
}

#[tokio::test]
async fn test_button_resend_recover_and_execution_stats() {
    let p = pipeline("operator", "1s").await;
    let ok = Receiver::start(&[]).await;
    let hook = p.create_hook(&ok.url("/in"), &["PostSignIn"]).await;

    let tested = p
        .admin(
            Method::POST,
            &format!("/api/hooks/{}/test", id(&hook)),
            Some(json!({"events": ["PostSignIn", "User.Created"]})),
        )
        .await;
    assert_eq!(tested.status, 204);
    let samples = ok.received();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].json()["event"], "User.Created");
    let key = hook["signingKey"].as_str().unwrap();
    standard_webhooks_verifies(key, &samples[0]).expect("test requests are signed like real ones");

    let failing = Receiver::start(&[500, 500, 500, 500]).await;
    let refused = p
        .admin(
            Method::POST,
            &format!("/api/hooks/{}/test", id(&hook)),
            Some(json!({"events": ["PostSignIn"], "config": {"url": failing.url("/x")}})),
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.body_json()["code"],
        "hook.endpoint_responded_with_error"
    );
    assert_eq!(refused.body_json()["responseStatus"], 500);

    // Two deliveries fail for good (two attempts each), then are re-sent.
    let flaky = Receiver::start(&[500, 500, 500, 500]).await;
    let flaky_hook = p.create_hook(&flaky.url("/in"), &["PostRegister"]).await;
    p.post_event(json!({"event": "PostRegister"})).await;
    p.post_event(json!({"event": "PostRegister"})).await;
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        flaky.received().len() >= 4
    })
    .await;
    let logs_path = format!("/api/hooks/{}/recent-logs", id(&flaky_hook));
    let mut errors = serde_json::Value::Null;
    for _ in 0..20 {
        errors = p
            .admin(Method::GET, &format!("{logs_path}?result=Error"), None)
            .await
            .body_json();
        if errors.as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        pump(&p.moto.queue, &p.sender, 1).await;
    }
    assert_eq!(errors.as_array().unwrap().len(), 2, "{errors}");
    let first = errors[0]["id"].as_str().unwrap().to_string();

    let resent = p
        .admin(
            Method::POST,
            &format!("/api/hooks/{}/deliveries/{first}/retry", id(&flaky_hook)),
            None,
        )
        .await;
    assert_eq!(resent.status, 202, "{}", resent.body_json());
    let twice = p
        .admin(
            Method::POST,
            &format!("/api/hooks/{}/deliveries/{first}/retry", id(&flaky_hook)),
            None,
        )
        .await;
    assert_eq!(twice.status, 409, "a pending delivery is not re-sent twice");
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        flaky.received().len() >= 5
    })
    .await;
    assert_eq!(
        flaky.received()[4].header("webhook-id"),
        first,
        "the same webhook-id"
    );

    let recovered = p
        .admin(
            Method::POST,
            &format!("/api/hooks/{}/recover", id(&flaky_hook)),
            Some(json!({"since": now_ms() - 60_000})),
        )
        .await;
    assert_eq!(recovered.status, 202);
    assert_eq!(recovered.body_json()["status"], "running");
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        flaky.received().len() >= 6
    })
    .await;
    let progress = p
        .admin(
            Method::GET,
            &format!(
                "/api/hooks/{}/recoveries/{}",
                id(&flaky_hook),
                recovered.body_json()["id"].as_str().unwrap()
            ),
            None,
        )
        .await
        .body_json();
    assert_eq!(progress["status"], "done");
    assert_eq!(progress["resent"], 1);
    let mut successes = serde_json::Value::Null;
    for _ in 0..20 {
        successes = p
            .admin(Method::GET, &format!("{logs_path}?result=Success"), None)
            .await
            .body_json();
        if successes.as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        pump(&p.moto.queue, &p.sender, 1).await;
    }
    assert_eq!(successes.as_array().unwrap().len(), 2);

    let with_stats = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}?includeExecutionStats=true", id(&flaky_hook)),
            None,
        )
        .await
        .body_json();
    assert_eq!(
        with_stats["executionStats"],
        json!({"requestCount": 6, "successCount": 2})
    );
    let listed = p
        .admin(Method::GET, "/api/hooks?includeExecutionStats=true", None)
        .await
        .body_json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["executionStats"].is_object())
    );
    let missing = p
        .admin(
            Method::POST,
            &format!(
                "/api/hooks/{}/deliveries/msg_01M8C57GQGH2GWWZY5JMYZ0C7Q/retry",
                id(&flaky_hook)
            ),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body_json()["code"], "delivery.not_found");
}
