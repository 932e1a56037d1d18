//! `410 Gone` disables the hook even when the disable write fails or the sender stops right
//! after recording the attempt: the recorded 410 itself is what the job's next copy finishes.

use crate::support::{faulty_pipeline, set_visibility_timeout};
use http::Method;
use serde_json::json;
use std::time::Duration;
use webhooks::app::sender::JobOutcome;
use webhooks::domain::delivery::{DeliveryStatus, Job};
use webhooks::domain::hook::HookId;
use webhooks::ports::{HookStore, JobQueue};
use webhooks_tests::pump;
use webhooks_tests::receiver::Receiver;

#[tokio::test]
async fn a_failed_disable_write_is_finished_by_the_jobs_next_copy() {
    let (p, faulty) = faulty_pipeline("gone", "1s").await;
    set_visibility_timeout(&p.moto, 1).await;
    let gone = Receiver::start(&[410]).await;
    let hook = p.create_hook(&gone.url("/gone"), &["Role.Created"]).await;
    let hook_id = HookId::parse(hook["id"].as_str().unwrap()).unwrap();
    faulty.fail_next("update_hook", 1);

    let r = p
        .post_event(json!({"event": "Role.Created", "data": {"id": "r_1"}}))
        .await;
    assert_eq!(r.status, 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        pump(&p.moto.queue, &p.sender, 1).await;
        let stored = p.moto.store.get_hook(&hook_id).await.unwrap().unwrap();
        if !stored.enabled {
            assert!(stored.disabled_reason.unwrap().contains("410"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hook is still enabled after its disable write failed"
        );
    }
    assert!(
        faulty.calls("update_hook") >= 2,
        "the disable was tried again"
    );
    assert_eq!(gone.received().len(), 1, "the 410 was not sent again");
    let deliveries =
        webhooks_tests::deliveries_between(p.moto.store.as_ref(), &hook_id, 0, i64::MAX / 2).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, DeliveryStatus::Error);
    assert_eq!(deliveries[0].attempts.len(), 1);

    // An operator re-enables the hook; a late copy of the same job must not disable it again.
    let r = p
        .admin(
            Method::PATCH,
            &format!("/api/hooks/{hook_id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body_json());
    let late = Job::for_delivery(&deliveries[0], 0);
    let late = Job { attempt: 1, ..late };
    assert_eq!(p.sender.process(&late).await.unwrap(), JobOutcome::Skipped);
    p.moto.queue.enqueue(&[late]).await.unwrap();
    pump(&p.moto.queue, &p.sender, 2).await;
    let stored = p.moto.store.get_hook(&hook_id).await.unwrap().unwrap();
    assert!(stored.enabled, "a re-enabled hook stays enabled");
    assert_eq!(gone.received().len(), 1);
}
