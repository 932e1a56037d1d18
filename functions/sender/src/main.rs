//! The sender Lambda: SQS batches of delivery jobs, each with how many times it was received,
//! and partial batch failures reported.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use webhooks::ports::QueueMessage;
use webhooks::startup::aws::sender_function;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sender = sender_function().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let sender = sender.clone();
        async move {
            let messages: Vec<QueueMessage> = event
                .payload
                .records
                .into_iter()
                .filter_map(|r| {
                    let receive_count = r
                        .attributes
                        .get("ApproximateReceiveCount")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1);
                    Some(QueueMessage {
                        id: r.message_id?,
                        body: r.body.unwrap_or_default(),
                        receive_count,
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
