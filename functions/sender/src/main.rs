//! The sender Lambda: SQS batches of delivery jobs, with partial batch failures reported.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use webhooks::app::sender::Sender;
use webhooks::aws::{Accepts, Deployment};
use webhooks::net::client::DeliveryClient;
use webhooks::ports::QueueMessage;

#[tokio::main]
async fn main() -> Result<(), Error> {
    webhooks::telemetry::init();
    let deployment = Deployment::from_env(Accepts::Nothing).await?;
    let notices = deployment.notices().await?;
    let settings = &deployment.settings;
    let sender = Sender::configured(
        deployment.store.clone(),
        deployment.queue.clone(),
        DeliveryClient::from_settings(settings),
        settings,
        notices,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let sender = sender.clone();
        async move {
            let messages: Vec<QueueMessage> = event
                .payload
                .records
                .into_iter()
                .filter_map(|r| {
                    Some(QueueMessage {
                        id: r.message_id?,
                        body: r.body.unwrap_or_default(),
                    })
                })
                .collect();
            let mut response = SqsBatchResponse::default();
            for id in sender.process_batch(&messages).await {
                response.add_failure(id);
            }
            Ok::<_, Error>(response)
        }
    }))
    .await
}
