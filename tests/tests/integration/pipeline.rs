//! The whole pipeline against moto: ingest handler → SQS → sender handler → a real receiver.

use crate::support::{INGEST, pipeline, request, send, settings, tokens};
use http::Method;
use serde_json::json;
use std::time::Duration;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::api::{Api, router};
use webhooks::app::sender::JobOutcome;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{DeliveryId, Job};
use webhooks::domain::hook::HookId;
use webhooks::domain::signing::{SigningKey, verify, verify_logto};
use webhooks::net::client::DeliveryClient;
use webhooks_tests::receiver::Receiver;
use webhooks_tests::verifiers::{logto_node_verifies, standard_webhooks_verifies};
use webhooks_tests::{pump, pump_until};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn an_event_reaches_each_subscribed_hook_signed_and_logged() {
    let p = pipeline("deliver", "1s").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p
        .create_hook(&receiver.url("/in"), &["PostSignIn", "User.Created"])
        .await;
    let other = p
        .create_hook(&receiver.url("/other"), &["Role.Created"])
        .await;
    let disabled = p
        .create_hook(&receiver.url("/disabled"), &["PostSignIn"])
        .await;
    let r = p
        .admin(
            Method::PATCH,
            &format!("/api/hooks/{}", disabled["id"].as_str().unwrap()),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, 200);

    let r = p
        .post_event(
            json!({"event": "PostSignIn", "userId": "u_1", "userIp": "203.0.113.7", "data": null}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body_json());
    assert_eq!(r.body_json()["deliveries"], 1);
    let event_id = r.body_json()["id"].as_str().unwrap().to_string();

    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        !receiver.received().is_empty()
    })
    .await;
    pump(&p.moto.queue, &p.sender, 1).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1, "only the enabled subscribed hook is called");
    let req = &got[0];
    let body = req.json();
    assert_eq!(body["hookId"], hook["id"]);
    assert_eq!(body["event"], "PostSignIn");
    assert_eq!(body["interactionEvent"], "SignIn");
    assert_eq!(body["userId"], "u_1");
    assert_eq!(req.header("content-type"), "application/json");
    assert!(req.header("user-agent").starts_with("webhooks/"));

    let key = SigningKey::import(hook["signingKey"].as_str().unwrap()).unwrap();
    let now = now_ms() / 1000;
    verify(
        &key,
        req.header("webhook-id"),
        req.header("webhook-timestamp"),
        req.header("webhook-signature"),
        &req.body,
        now,
        300,
    )
    .expect("the Standard Webhooks signature verifies");
    verify_logto(&key, req.header("logto-signature-sha-256"), &req.body)
        .expect("the Logto signature verifies");
    standard_webhooks_verifies(key.expose(), req)
        .expect("the official standardwebhooks library accepts it");
    logto_node_verifies(key.expose(), req).expect("Logto's Node snippet accepts it");

    let logs = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}/recent-logs", hook["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(logs.status, 200);
    assert_eq!(logs.headers["total-number"], "1");
    let log = &logs.body_json()[0];
    assert_eq!(log["result"], "Success");
    assert_eq!(log["id"], req.header("webhook-id"));
    assert_eq!(log["eventId"], event_id.as_str());
    assert_eq!(log["attempts"][0]["responseStatus"], 200);
    let none = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}/recent-logs", other["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(none.body_json(), json!([]));
}

#[tokio::test]
async fn failures_are_retried_on_schedule_with_a_stable_webhook_id() {
    let p = pipeline("retry", "1s,1s,1s").await;
    let receiver = Receiver::start(&[500, 503]).await;
    let hook = p.create_hook(&receiver.url("/in"), &["User.Created"]).await;
    let r = p
        .post_event(json!({"event": "User.Created", "data": {"id": "u_2"}}))
        .await;
    assert_eq!(r.status, 202);

    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        receiver.received().len() >= 3
    })
    .await;
    let got = receiver.received();
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(
        got[0].body, got[2].body,
        "the body is byte-identical on every attempt"
    );

    let logs = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}/recent-logs", hook["id"].as_str().unwrap()),
            None,
        )
        .await
        .body_json();
    assert_eq!(logs[0]["result"], "Success");
    let statuses: Vec<_> = logs[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["responseStatus"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(500), json!(503), json!(200)]);
}

#[tokio::test]
async fn exhausted_attempts_end_in_error_and_410_disables_the_hook() {
    let p = pipeline("exhaust", "1s").await;
    let failing = Receiver::start(&[500, 502]).await;
    let gone = Receiver::start(&[410]).await;
    let hook = p.create_hook(&failing.url("/in"), &["Role.Deleted"]).await;
    let gone_hook = p.create_hook(&gone.url("/in"), &["Role.Deleted"]).await;
    let r = p
        .post_event(json!({"event": "Role.Deleted", "data": {"id": "r_1"}}))
        .await;
    assert_eq!(r.body_json()["deliveries"], 2);

    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        failing.received().len() >= 2 && !gone.received().is_empty()
    })
    .await;
    pump(&p.moto.queue, &p.sender, 2).await;
    assert_eq!(failing.received().len(), 2, "no attempt past the schedule");
    assert_eq!(gone.received().len(), 1, "410 is not retried");

    let logs = p
        .admin(
            Method::GET,
            &format!(
                "/api/hooks/{}/recent-logs?result=Error",
                hook["id"].as_str().unwrap()
            ),
            None,
        )
        .await
        .body_json();
    assert_eq!(logs.as_array().unwrap().len(), 1);
    assert_eq!(logs[0]["attemptCount"], 2);
    let disabled = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}", gone_hook["id"].as_str().unwrap()),
            None,
        )
        .await
        .body_json();
    assert_eq!(disabled["enabled"], false);
    assert!(disabled["disabledReason"].as_str().unwrap().contains("410"));
}

#[tokio::test]
async fn a_batch_fans_out_all_or_nothing() {
    let p = pipeline("batch", "1s").await;
    let receiver = Receiver::start(&[]).await;
    p.create_hook(
        &receiver.url("/in"),
        &["PostRegister", "Organization.Created"],
    )
    .await;
    let bad = p
        .post_event(json!({"events": [{"event": "PostRegister"}, {"event": "Nope"}]}))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body_json()["data"]["field"], "events[1].event");
    let ok = p
        .post_event(json!({"events": [{"event": "PostRegister"}, {"event": "Organization.Created", "data": {"id": "o"}}, {"event": "Scope.Created"}]}))
        .await;
    assert_eq!(ok.status, 202);
    let counts: Vec<_> = ok
        .body_json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["deliveries"].clone())
        .collect();
    assert_eq!(counts, vec![json!(1), json!(1), json!(0)]);
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        receiver.received().len() >= 2
    })
    .await;
    pump(&p.moto.queue, &p.sender, 1).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "the rejected batch enqueued nothing"
    );
}

#[tokio::test]
async fn ingest_answers_503_when_the_queue_does_not_accept_the_jobs() {
    let p = pipeline("unavailable", "1s").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p.create_hook(&receiver.url("/in"), &["PostSignIn"]).await;
    let missing_queue = format!("{}-missing", p.moto.provisioned.queue_url);
    let settings = settings("1s");
    let ingest = router(Api::new(
        p.moto.store.clone(),
        std::sync::Arc::new(SqsQueue::new(p.moto.sqs.clone(), missing_queue)),
        DeliveryClient::from_settings(&settings),
        tokens(),
        &settings,
    ));
    let event = json!({"event": "PostSignIn"});
    let r = send(
        &ingest,
        request(Method::POST, "/api/events", INGEST, Some(event)),
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body_json()["code"], "service.unavailable");
    let logs = p
        .admin(
            Method::GET,
            &format!("/api/hooks/{}/recent-logs", hook["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        logs.body_json(),
        json!([]),
        "a refused event leaves no pending record behind"
    );
}

#[tokio::test]
async fn a_job_received_before_its_due_time_is_requeued_not_run() {
    let p = pipeline("due", "1s").await;
    let receiver = Receiver::start(&[]).await;
    let hook = p.create_hook(&receiver.url("/in"), &["PostSignIn"]).await;
    let job = Job {
        hook_id: HookId::parse(hook["id"].as_str().unwrap()).unwrap(),
        delivery_id: DeliveryId::generate(),
        attempt: 2,
        due_at: now_ms() + 3_600_000,
        reopen: false,
        rate_slot: None,
    };
    assert_eq!(p.sender.process(&job).await.unwrap(), JobOutcome::Skipped);
    let attrs = p
        .moto
        .sqs
        .get_queue_attributes()
        .queue_url(&p.moto.provisioned.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let delayed = attrs
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .cloned();
    assert_eq!(delayed.as_deref(), Some("1"), "re-enqueued with a delay");
    assert!(p.moto.queue.receive(10, 0).await.unwrap().is_empty());
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn retry_after_on_429_stretches_the_delay_within_twice_the_schedule() {
    let p = pipeline("retry-after", "1s,1s").await;
    let receiver = Receiver::start(&[429, 503]).await;
    receiver.set_retry_after("30");
    p.create_hook(&receiver.url("/in"), &["Message.RateLimited"])
        .await;
    p.post_event(json!({"event": "Message.RateLimited"})).await;
    pump_until(&p.moto.queue, &p.sender, WAIT, || {
        receiver.received().len() >= 3
    })
    .await;
    let got = receiver.received();
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // Scheduled 1 s ± 20 %, asked for 30 s: clamped to twice the scheduled delay.
        assert!(gap >= Duration::from_millis(1500), "{gap:?}");
        assert!(gap < Duration::from_secs(5), "{gap:?}");
    }
}
