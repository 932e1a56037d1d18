//! The sender's SQS loop as a process of its own, so tests can SIGKILL it mid-batch: what
//! Lambda's event source mapping does (receive up to 10, invoke the sender, delete the jobs
//! not reported failed), forever, wired from the environment like the sender Lambda.

use std::time::Duration;
use webhooks::aws::{Accepts, Deployment};
use webhooks::net::client::DeliveryClient;
use webhooks::sender::Sender;

#[tokio::main]
async fn main() {
    let deployment = Deployment::from_env(Accepts::Nothing)
        .await
        .unwrap_or_else(|e| {
            eprintln!("sender-worker: {e}");
            std::process::exit(2);
        });
    let settings = deployment.settings;
    let queue = deployment.queue;
    let sender = Sender::new(
        deployment.store,
        queue.clone(),
        DeliveryClient::from_settings(&settings),
        settings.retry_schedule,
    );
    loop {
        let received = match queue.receive(10, 1).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sender-worker: receive: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if received.is_empty() {
            continue;
        }
        let messages: Vec<_> = received.iter().map(|r| r.message.clone()).collect();
        let failed = sender.process_batch(&messages).await;
        let done: Vec<String> = received
            .iter()
            .filter(|r| !failed.contains(&r.message.id))
            .map(|r| r.receipt_handle.clone())
            .collect();
        if let Err(e) = queue.delete(&done).await {
            eprintln!("sender-worker: delete: {e}");
        }
    }
}
