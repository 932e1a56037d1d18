//! Signed webhook delivery for identity events: the domain, signing, delivery, the storage
//! and queue ports with their adapters, the use cases, and the handlers every entry point
//! runs.

pub mod adapters;
pub mod api;
pub mod app;
pub mod aws;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod local;
pub mod logto_import;
pub mod metrics;
pub mod net;
pub mod operational;
pub mod ports;
pub mod telemetry;
