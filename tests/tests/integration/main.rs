//! Integration tests: one binary so the AWS SDK links once. Every moto-backed test fails
//! (never skips) when the emulator is missing; run them with scripts/test.

mod duplicate_keys;
mod dynamo_store;
mod edge;
mod faults;
mod header_values;
mod hostile_input;
mod lambda_e2e;
mod local_server;
mod openapi;
mod operator;
mod panics;
mod pipeline;
mod secrets;
mod sqs_queue;
mod support;
mod tokens;
