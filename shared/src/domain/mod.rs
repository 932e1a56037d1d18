//! The pure core: events, hooks, deliveries and their rules (signing, retries, health,
//! recovery), with no I/O. Everything else depends on it; it depends on nothing of the crate.

pub mod answer;
pub mod catalog;
pub mod clock;
pub mod decision;
pub mod delivery;
pub mod duration;
pub mod event;
pub mod health;
pub mod hook;
pub mod ids;
pub mod json;
pub mod receiver_check;
pub mod recovery;
pub mod retry;
pub mod signing;
pub mod task;
pub mod validation;
