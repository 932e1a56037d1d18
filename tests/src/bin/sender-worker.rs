//! The sender's SQS loop as a process of its own, so tests can SIGKILL it mid-batch: what
//! Lambda's event source mapping does (receive up to 10, invoke the sender, delete the jobs
//! not reported failed), forever, wired from the environment like the sender Lambda.

use webhooks::app::consumer::consume;
use webhooks::app::sender::Sender;
use webhooks::net::client::DeliveryClient;
use webhooks::startup::aws::{Accepts, Deployment};

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
    // Runs until the test kills it.
    let (_stop, running) = tokio::sync::watch::channel(false);
    consume(queue, sender, running).await;
}
