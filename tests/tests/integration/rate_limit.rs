//! `config.rateLimit`: a limited hook receives its deliveries no faster than its rate (plus a
//! burst of one) across every sender, every one of them delivered and no attempt counted for
//! a deferral, while an unlimited hook of the same events is not slowed.

use crate::support::faulty_pipeline;
use http::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use webhooks::app::consumer::consume;
use webhooks_tests::dev_server::{DevServer, dev_server_binary};
use webhooks_tests::free_port;
use webhooks_tests::poll;
use webhooks_tests::receiver::{Received, Receiver};

const ADMIN: &str = "rate-admin";
const INGEST: &str = "rate-ingest";
const RATE: usize = 5;

/// The most arrivals within any one second.
fn densest_second(received: &[Received]) -> usize {
    let mut at: Vec<Instant> = received.iter().map(|r| r.at).collect();
    at.sort();
    (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Checks the limited receiver's arrivals: all `events` of them, distinct, at the rate.
fn assert_limited(received: &[Received], events: usize) {
    assert_eq!(received.len(), events, "every delivery arrives once");
    let ids: std::collections::BTreeSet<&str> =
        received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), events, "no delivery twice");
    let densest = densest_second(received);
    // Slots are `1/RATE` apart plus a burst of one: a faster limiter puts RATE + 2 in a second.
    assert!(
        densest <= RATE + 1,
        "{densest} deliveries within one second"
    );
    let first = received.iter().map(|r| r.at).min().unwrap();
    let last = received.iter().map(|r| r.at).max().unwrap();
    let least = Duration::from_millis(((events - 2) * 1_000 / RATE) as u64);
    assert!(
        last.duration_since(first) >= least,
        "{events} deliveries in {:?}",
        last.duration_since(first)
    );
}

#[tokio::test]
async fn the_dev_server_holds_a_limited_hook_to_its_rate_and_not_the_others() {
    let events = 200;
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let limited = Receiver::start(&[]).await;
    let free = Receiver::start(&[]).await;
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
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for config in [
        json!({"url": limited.url("/slow"), "rateLimit": RATE}),
        json!({"url": free.url("/fast")}),
    ] {
        let r = http
            .post(format!("{base}/api/hooks"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "rate", "events": ["PostSignIn"], "config": config}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let hook: Value = r.json().await.unwrap();
        ids.push(hook["id"].as_str().unwrap().to_string());
    }
    let hook: Value = http
        .get(format!("{base}/api/hooks/{}", ids[0]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hook["config"]["rateLimit"], RATE);

    let posted = Instant::now();
    let batch: Vec<Value> = (0..events)
        .map(|i| json!({"event": "PostSignIn", "userId": format!("u{i}")}))
        .collect();
    for chunk in batch.chunks(50) {
        let r = http
            .post(format!("{base}/api/events"))
            .bearer_auth(INGEST)
            .json(&json!({"events": chunk}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    free.wait_for(events, Duration::from_secs(20)).await;
    assert!(
        posted.elapsed() < Duration::from_secs(20),
        "the unlimited hook was slowed"
    );
    assert!(
        limited.count() < events,
        "the limited hook kept up with the unlimited one"
    );
    let received = limited.wait_for(events, Duration::from_secs(90)).await;
    assert_limited(&received, events);

    // Deferrals are no attempts: one attempt per delivery, all of them successes (counted
    // when each sender batch ends, so shortly after the last arrival).
    let stats_url = format!("{base}/api/hooks/{}/stats", ids[0]);
    let stats = poll(
        Duration::from_secs(10),
        || async {
            let r = http
                .get(&stats_url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        },
        |stats| stats["attempts"] == events,
    )
    .await;
    assert_eq!(stats["attempts"], events, "{stats}");
    assert_eq!(stats["successes"], events, "{stats}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_on_the_aws_path_share_one_rate_limit() {
    let events = 40;
    // The senders' store takes slots one at a time, as DynamoDB's conditional updates of one
    // item are atomic (moto's are not).
    let (p, _) = faulty_pipeline("ratelimit", "1s").await;
    let limited = Receiver::start(&[]).await;
    let free = Receiver::start(&[]).await;
    let r = p
        .admin(
            Method::POST,
            "/api/hooks",
            Some(json!({"name": "slow", "events": ["PostSignIn"], "config": {"url": limited.url("/slow"), "rateLimit": RATE}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let slow_id = r.body_json()["id"].as_str().unwrap().to_string();
    p.create_hook(&free.url("/fast"), &["PostSignIn"]).await;
    let batch: Vec<Value> = (0..events)
        .map(|i| json!({"event": "PostSignIn", "userId": format!("u{i}")}))
        .collect();
    let r = p.post_event(json!({"events": batch})).await;
    assert_eq!(r.status, 202, "{}", r.text());

    // Two senders consume the same queue, as two Lambda executions would.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(consume(
                p.moto.queue.clone() as std::sync::Arc<dyn webhooks::ports::JobSource>,
                p.sender.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    free.wait_for(events, Duration::from_secs(30)).await;
    let received = limited.wait_for(events, Duration::from_secs(60)).await;
    let stats_path = format!("/api/hooks/{slow_id}/stats");
    let stats = poll(
        Duration::from_secs(10),
        || async { p.admin(Method::GET, &stats_path, None).await.body_json() },
        |stats| stats["attempts"] == events,
    )
    .await;
    stop.send(true).unwrap();
    for s in senders {
        s.await.unwrap();
    }
    assert_limited(&received, events);
    assert_eq!(
        stats["attempts"], events,
        "one attempt per delivery: {stats}"
    );
}
