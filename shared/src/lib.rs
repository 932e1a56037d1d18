//! Signed webhook delivery for identity events: the domain, signing, delivery, the storage
//! and queue ports with their adapters, and the handlers every entry point runs.

pub mod adapters;
pub mod api;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod metrics;
pub mod net;
pub mod operational;
pub mod ports;
pub mod relay;
pub mod sender;
pub mod startup;
pub mod sync_call;
pub mod telemetry;
