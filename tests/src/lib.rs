//! Support for the integration tests: moto provisioning from the template, a real receiver,
//! independent signature verifiers, and the SQS → sender loop Lambda's event source runs.

pub mod captured;
pub mod dev_server;
pub mod emf;
pub mod faulty_store;
pub mod hostile;
pub mod iam;
pub mod interleaving;
pub mod item_store;
pub mod lambda_events;
pub mod least_privilege;
pub mod moto_server;
pub mod provision;
pub mod receiver;
pub mod recording_proxy;
pub mod slow_receiver;
pub mod verifiers;

use std::sync::Arc;
use std::time::Duration;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::app::consumer::consume_once;
use webhooks::app::sender::Sender;
use webhooks::domain::delivery::Delivery;
use webhooks::domain::hook::HookId;
use webhooks::ports::{DeliveryFilter, Store};

/// A port on 127.0.0.1 that was free a moment ago, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .unwrap()
        .port()
}

/// Does what Lambda's SQS event source mapping does: receive a batch, invoke the sender,
/// delete the messages it did not report as failed. Returns after `rounds` receives.
pub async fn pump(queue: &SqsQueue, sender: &Arc<Sender>, rounds: usize) -> usize {
    let mut processed = 0;
    for _ in 0..rounds {
        processed += consume_once(queue, sender).await.expect("receive from SQS");
    }
    processed
}

/// Calls `fetch` every 100 ms until `done` holds for its answer or `timeout` passes; returns
/// the last answer (for figures written shortly after what a test waited for).
pub async fn poll<T, F, Fut>(timeout: Duration, mut fetch: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answer = fetch().await;
        if done(&answer) || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs [`pump`] until `done` holds or `timeout` passes; panics on timeout.
pub async fn pump_until(
    queue: &SqsQueue,
    sender: &Arc<Sender>,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {timeout:?}"
        );
        pump(queue, sender, 1).await;
    }
}

/// A `cargo` command (or one that runs cargo) without the variables cargo sets for the test
/// process: a nested build must not see them, or build scripts that track them (ring tracks
/// `CARGO_MANIFEST_DIR`) would rerun and invalidate the outer build.
pub fn nested_cargo(program: &str) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_tests = name == "OUT_DIR"
            || ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_", "CARGO_CFG_"]
                .iter()
                .any(|p| name.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .contains(&name.as_ref());
        if set_for_tests {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// A unique name prefix so tests sharing one moto server never collide.
pub fn unique_prefix(name: &str) -> String {
    format!(
        "t{}-{name}",
        &ulid::Ulid::new().to_string().to_lowercase()[16..]
    )
}

/// Every delivery of `hook` created in `[from_ms, to_ms]`, newest first, page by page.
pub async fn deliveries_between(
    store: &dyn Store,
    hook: &HookId,
    from_ms: i64,
    to_ms: i64,
) -> Vec<Delivery> {
    let filter = DeliveryFilter::between(from_ms, to_ms);
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .page_deliveries(hook, &filter, after.as_ref(), 100)
            .await
            .expect("list deliveries");
        all.extend(page.items);
        after = page.next;
        if after.is_none() {
            return all;
        }
    }
}
