//! Integration tests: one binary so the AWS SDK links once. Every moto-backed test fails
//! (never skips) when the emulator is missing; run them with scripts/test.

mod concurrent_senders;
mod conditional_writes;
mod console;
mod doc_links;
mod duplicate_keys;
mod durable_store;
mod edge;
mod faults;
mod gone;
mod header_values;
mod health;
mod hook_changes;
mod hostile_input;
mod idempotency;
mod lambda_e2e;
mod local_server;
mod log_paging;
mod logto_compat;
mod logto_import;
mod logto_relay;
mod openapi;
mod operational;
mod operator;
mod panics;
mod pipeline;
mod rate_limit;
mod recovery;
mod secrets;
mod sqs_queue;
mod ssrf_client;
mod store_contract;
mod support;
mod sync_hooks;
mod template_metrics;
mod tokens;
