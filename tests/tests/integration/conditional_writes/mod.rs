//! The DynamoDB store's conditional writes under real concurrency: moto applies concurrent
//! conditional updates of one item non-atomically, so these run the store's own requests against
//! an in-memory table with DynamoDB's per-item atomicity, over many seeded interleavings.

mod claims;
mod deliveries;
mod health;
mod rate;
mod recoveries;

/// Interleavings tried per case; a failure names its seed.
const SEEDS: u64 = 100;
