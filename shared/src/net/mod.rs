//! Outbound HTTP: which addresses hooks may reach, and the client that performs attempts.

pub mod address_policy;
pub mod client;
pub mod lookup;
