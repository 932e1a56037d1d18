//! Adapters for the ports: DynamoDB, SQS and SNS on AWS, embedded ones for local runs and tests.

pub mod dynamo;
pub mod sns;
pub mod sqlite;
pub mod sqs;
