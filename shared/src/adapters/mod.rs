//! Adapters for the ports: DynamoDB and SQS on AWS, embedded ones for local runs and tests.

pub mod dynamo;
pub mod memory_queue;
pub mod memory_store;
pub mod sqs;
