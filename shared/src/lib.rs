//! Signed webhook delivery for identity events: the domain, signing, delivery, the storage
//! and queue ports with their adapters, and the handlers every entry point runs.

pub mod adapters;
pub mod api;
pub mod aws;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod decision;
pub mod delivery;
pub mod event;
pub mod health;
pub mod hook;
pub mod json;
pub mod local;
pub mod logto_import;
pub mod metrics;
pub mod net;
pub mod operational;
pub mod ports;
pub mod recovery;
pub mod relay;
pub mod retry;
pub mod sender;
pub mod signing;
pub mod sync_call;
pub mod telemetry;
pub mod validation;
