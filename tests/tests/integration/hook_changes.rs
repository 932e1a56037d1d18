//! What pending deliveries do when their hook changes: a new URL receives the remaining
//! attempts under the same `webhook-id`.

use crate::support::pipeline;
use http::Method;
use serde_json::json;
use std::time::Duration;
use webhooks_tests::pump_until;
use webhooks_tests::receiver::Receiver;

#[tokio::test]
async fn a_pending_retry_goes_to_the_hooks_new_url() {
    let p = pipeline("newurl", "1s").await;
    let old = Receiver::start(&[500]).await;
    let new = Receiver::start(&[]).await;
    let hook = p.create_hook(&old.url("/old"), &["User.Deleted"]).await;
    let id = hook["id"].as_str().unwrap();
    let r = p
        .post_event(json!({"event": "User.Deleted", "data": {"id": "u_7"}}))
        .await;
    assert_eq!(r.status, 202);
    pump_until(&p.moto.queue, &p.sender, Duration::from_secs(20), || {
        !old.received().is_empty()
    })
    .await;
    let r = p
        .admin(
            Method::PATCH,
            &format!("/api/hooks/{id}"),
            Some(json!({"config": {"url": new.url("/new")}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body_json());
    pump_until(&p.moto.queue, &p.sender, Duration::from_secs(20), || {
        !new.received().is_empty()
    })
    .await;
    assert_eq!(old.received().len(), 1);
    assert_eq!(
        new.received()[0].header("webhook-id"),
        old.received()[0].header("webhook-id")
    );
    assert_eq!(new.received()[0].body, old.received()[0].body);
}
