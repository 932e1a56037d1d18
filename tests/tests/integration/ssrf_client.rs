//! The address policy proven on real reqwest requests: names resolve through a fixed lookup
//! (no real DNS), every answer the policy refuses is refused by the client itself, and only
//! 127.0.0.1 / ::1 are ever connected to, so a broken filter shows as a request that arrives.

use crate::support::settings;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhooks::adapters::sqlite::SqliteQueue;
use webhooks::adapters::sqlite::SqliteStore;
use webhooks::api::bodies::NewHook;
use webhooks::app::sender::{JobOutcome, Sender};
use webhooks::domain::answer::Answer;
use webhooks::domain::catalog::EventName;
use webhooks::domain::clock::now_ms;
use webhooks::domain::delivery::{Delivery, DeliveryId, DeliveryStatus, ErrorKind, Job};
use webhooks::domain::event::EventId;
use webhooks::domain::hook::{CustomHeaders, HookUrl, UrlPolicy};
use webhooks::domain::signing::{SigningKey, sign};
use webhooks::net::address_policy::AddressPolicy;
use webhooks::net::client::DeliveryClient;
use webhooks::net::client::Timeouts;
use webhooks::net::lookup::FixedLookup;
use webhooks::ports::{DeliveryLog, HookStore};
use webhooks_tests::receiver::Receiver;

const HTTP: UrlPolicy = UrlPolicy { allow_http: true };

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn client(policy: AddressPolicy, lookup: Arc<FixedLookup>) -> DeliveryClient {
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        total: Duration::from_secs(3),
    };
    DeliveryClient::with_lookup(policy, HTTP, timeouts, lookup)
}

async fn post(client: &DeliveryClient, url: &str) -> Answer {
    let url = HookUrl::parse(url, HTTP).unwrap();
    assert!(
        client.policy().check_url(url.as_url()).is_ok(),
        "{url:?} passes the literal-host check, so only the resolver can refuse it"
    );
    let key = SigningKey::generate();
    let signature = sign(&[&key], "msg_test", now_ms() / 1000, b"{}");
    client
        .post(&url, &CustomHeaders::default(), &signature, "{}")
        .await
}

/// Every non-public class, in the spellings a resolver may return.
const NON_PUBLIC: [&str; 17] = [
    "127.0.0.2",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "192.0.2.1",
    "240.0.0.1",
    "::",
    "fd00::1",
    "fe80::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2001:db8::1",
];

#[tokio::test]
async fn a_name_resolving_to_loopback_is_blocked_by_the_client_itself() {
    let receiver = Receiver::start(&[]).await;
    let port = receiver.addr.port();
    let lookup = Arc::new(FixedLookup::new([
        ("hooks.example.test", vec![ips(&["127.0.0.1"])]),
        ("mapped.example.test", vec![ips(&["::ffff:127.0.0.1"])]),
    ]));
    let client = client(AddressPolicy::default(), lookup.clone());
    for name in ["hooks.example.test", "mapped.example.test"] {
        let answer = post(&client, &format!("http://{name}:{port}/in")).await;
        assert_eq!(
            answer.error_kind,
            Some(ErrorKind::Blocked),
            "{name}: {answer:?}"
        );
        assert_eq!(answer.status, None);
        assert_eq!(
            answer.error.as_deref(),
            Some("destination address is not allowed")
        );
    }
    assert_eq!(lookup.calls(), 2, "both names went through the lookup");
    assert!(receiver.received().is_empty(), "nothing reached loopback");
}

#[tokio::test]
async fn one_refused_address_in_an_answer_refuses_the_name() {
    let receiver = Receiver::start(&[]).await;
    let port = receiver.addr.port();
    // 127.0.0.1 is allowed, so a filter that let any of these through would connect to the
    // receiver (the first address) and the request would arrive.
    let policy = AddressPolicy::parse_allowlist("127.0.0.1/32").unwrap();
    let mut table = vec![("allowed.test".to_string(), vec![ips(&["127.0.0.1"])])];
    for (i, private) in NON_PUBLIC.iter().enumerate() {
        table.push((
            format!("mixed-{i}.test"),
            vec![ips(&["127.0.0.1", private])],
        ));
    }
    let lookup = Arc::new(FixedLookup::new(
        table.iter().map(|(n, a)| (n.as_str(), a.clone())),
    ));
    let client = client(policy, lookup);

    let allowed = post(&client, &format!("http://allowed.test:{port}/in")).await;
    assert_eq!(
        allowed.status,
        Some(200),
        "the set-up reaches the receiver: {allowed:?}"
    );
    assert_eq!(receiver.received().len(), 1);

    for (i, private) in NON_PUBLIC.iter().enumerate() {
        let answer = post(&client, &format!("http://mixed-{i}.test:{port}/in")).await;
        assert_eq!(
            answer.error_kind,
            Some(ErrorKind::Blocked),
            "127.0.0.1 beside {private} must be refused: {answer:?}"
        );
    }
    assert_eq!(
        receiver.received().len(),
        1,
        "no refused name reached the receiver"
    );
}

/// Answers every connection on `listener` with a 500 and closes it, counting connections.
fn closing_server(listener: tokio::net::TcpListener) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                    )
                    .await;
                let _ = socket.shutdown().await;
            });
        }
    });
    accepted
}

/// Binds ::1 and 127.0.0.1 on one port number.
async fn twin_listeners() -> (tokio::net::TcpListener, tokio::net::TcpListener) {
    for _ in 0..50 {
        let v6 = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let port = v6.local_addr().unwrap().port();
        if let Ok(v4) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return (v6, v4);
        }
    }
    panic!("no port free on both ::1 and 127.0.0.1");
}

#[tokio::test]
async fn dns_rebinding_never_reaches_the_private_address() {
    let (v6, v4) = twin_listeners().await;
    let port = v6.local_addr().unwrap().port();
    let permitted = closing_server(v6);
    let private = closing_server(v4);
    // Only ::1 is allowed; the name answers ::1 first and 127.0.0.1 on every later lookup.
    let policy = AddressPolicy::parse_allowlist("::1/128").unwrap();
    let lookup = Arc::new(FixedLookup::new([(
        "rebind.test",
        vec![ips(&["::1"]), ips(&["127.0.0.1"])],
    )]));
    let client = client(policy, lookup.clone());
    let url = format!("http://rebind.test:{port}/in");

    let first = post(&client, &url).await;
    assert_eq!(first.status, Some(500), "{first:?}");
    let second = post(&client, &url).await;
    assert_eq!(second.error_kind, Some(ErrorKind::Blocked), "{second:?}");
    let third = post(&client, &url).await;
    assert_eq!(third.error_kind, Some(ErrorKind::Blocked), "{third:?}");

    assert_eq!(lookup.calls(), 3, "every new connection resolves again");
    assert_eq!(permitted.load(Ordering::SeqCst), 1);
    assert_eq!(
        private.load(Ordering::SeqCst),
        0,
        "the rebound address was never connected to"
    );
}

#[tokio::test]
async fn a_blocked_delivery_is_recorded_once_and_not_retried() {
    let receiver = Receiver::start(&[]).await;
    let store = SqliteStore::in_memory();
    let queue = SqliteQueue::in_memory(Duration::from_secs(30), 5);
    let lookup = Arc::new(FixedLookup::new([(
        "internal.example.test",
        vec![ips(&["127.0.0.1", "10.0.0.7"])],
    )]));
    let settings = settings("1s,1s");
    let sender = Sender::new(
        store.clone(),
        queue.clone(),
        client(AddressPolicy::loopback(), lookup),
        settings.retry_schedule.clone(),
    );
    let url = format!("http://internal.example.test:{}/in", receiver.addr.port());
    let hook = NewHook::parse(
        &json!({"name": "internal", "events": ["User.Created"], "config": {"url": url}}),
        HTTP,
    )
    .unwrap()
    .into_hook(now_ms());
    store.create_hook(&hook).await.unwrap();
    let now = now_ms();
    let event = EventId::generate();
    let delivery = Delivery {
        hook_id: hook.id.clone(),
        id: DeliveryId::derive(now, &event, &hook.id),
        event_id: event,
        event: EventName::UserCreated,
        body: "{}".into(),
        status: DeliveryStatus::Pending,
        attempts: vec![],
        next_attempt_at: Some(now),
        reason: None,
        event_created_at: now,
        created_at: now,
        expires_at: now / 1000 + 86_400,
        sync: false,
    };
    store
        .insert_deliveries(std::slice::from_ref(&delivery))
        .await
        .unwrap();
    let job = Job::for_delivery(&delivery, now);

    assert_eq!(sender.process(&job).await.unwrap(), JobOutcome::Failed);
    // The same job again (a redelivered message) changes nothing.
    assert_eq!(sender.process(&job).await.unwrap(), JobOutcome::Skipped);

    let stored = store
        .get_delivery(&hook.id, &delivery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DeliveryStatus::Error);
    assert_eq!(stored.attempts.len(), 1, "recorded once");
    assert_eq!(stored.attempts[0].error_kind, Some(ErrorKind::Blocked));
    assert_eq!(
        stored.reason.as_deref(),
        Some("destination address is not allowed")
    );
    assert!(queue.is_empty(), "no retry was queued");
    assert!(receiver.received().is_empty());
}
