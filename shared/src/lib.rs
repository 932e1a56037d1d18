//! Signed webhook delivery for identity events: the domain, signing, delivery, the storage
//! and queue ports with their adapters, the use cases, and the handlers every entry point
//! runs.

pub mod adapters;
pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod net;
pub mod operational;
pub mod ports;
pub mod startup;
pub mod telemetry;
