//! Adapters for the ports: DynamoDB and SQS on AWS, embedded ones for local runs and tests.

pub mod dynamo;
pub mod sqlite;
pub mod sqs;
pub mod usage;
