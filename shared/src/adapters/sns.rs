//! The SNS notice topic: each operational notice is published as one message whose body is
//! the notice's JSON, with an `event` message attribute for subscription filter policies.

use crate::domain::catalog::EventName;
use crate::operational::NoticeTopic;
use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

#[derive(Clone)]
pub struct SnsTopic {
    client: Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(client: Client, topic_arn: String) -> Self {
        Self { client, topic_arn }
    }
}

#[async_trait]
impl NoticeTopic for SnsTopic {
    async fn publish(&self, event: EventName, body: &str) -> Result<(), String> {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(event.as_str())
            .build()
            .map_err(|e| e.to_string())?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(event.as_str())
            .message(body)
            .message_attributes("event", attribute)
            .send()
            .await
            .map_err(|e| format!("SNS refused the notice: {}", DisplayErrorContext(e)))?;
        Ok(())
    }
}
