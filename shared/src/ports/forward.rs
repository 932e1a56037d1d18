//! Fakes of the store that change a few calls and pass every other one on. A fake implements
//! [`Forwarding`] (where the calls go, and what runs before each of them) and, per port,
//! [`forward_port!`](crate::forward_port) names the methods it passes on; it writes out only
//! the methods it changes:
//!
//! ```ignore
//! forward_port! {
//!     impl EventClaims for SlowClaims {
//!         forward complete_event, release_event;
//!
//!         async fn claim_event(&self, id: &EventId, now_ms: i64, window_ms: i64, stale_ms: i64)
//!             -> Result<EventClaim, StoreError> { /* the fake's own */ }
//!     }
//! }
//! forward_port! { impl HookStore for SlowClaims { forward all; } }
//! ```

use crate::ports::{Store, StoreError};
#[doc(hidden)]
pub use async_trait::async_trait;

/// What a fake's forwarded methods do: [`Forwarding::before`] with the method's name, then
/// the same call on [`Forwarding::inner`].
#[async_trait]
pub trait Forwarding: Send + Sync {
    /// The store the forwarded calls reach.
    fn inner(&self) -> &dyn Store;

    /// Runs before each forwarded call; an error fails the call without reaching the store.
    async fn before(&self, _method: &'static str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The types the forwarded signatures name, at one path the macro can spell.
#[doc(hidden)]
pub mod types {
    pub use crate::domain::catalog::EventName;
    pub use crate::domain::delivery::{Delivery, DeliveryId};
    pub use crate::domain::event::EventId;
    pub use crate::domain::health::{BatchHealth, HealthCounts, HookHealth};
    pub use crate::domain::hook::{Hook, HookId, HookPosition};
    pub use crate::domain::json::RawJson;
    pub use crate::domain::receiver_check::{CheckId, CheckReport};
    pub use crate::domain::recovery::{Recovery, RecoveryId};
    pub use crate::ports::{
        AttemptRecord, Count, DeliveryFilter, EventClaim, EventFields, HourlyCount, Page,
        RecordOutcome, StoreError, Subscriber,
    };
    pub use serde_json::Value;
}

/// Implements a store port for a type implementing [`Forwarding`]: the methods named after
/// `forward` (or every method of the port, with `forward all`) are passed on, and the methods
/// written after them are the fake's own. A method neither forwarded nor written out, or a
/// name the port does not have, fails to compile.
#[macro_export]
macro_rules! forward_port {
    (impl HookStore for $fake:ty { forward all; $($own:tt)* }) => {
        $crate::forward_port!(impl HookStore for $fake {
            forward create_hook, get_hook, page_hooks, count_hooks, update_hook, delete_hook,
                subscribers;
            $($own)*
        });
    };
    (impl DeliveryLog for $fake:ty { forward all; $($own:tt)* }) => {
        $crate::forward_port!(impl DeliveryLog for $fake {
            forward insert_deliveries, insert_missing_deliveries, delete_deliveries,
                get_delivery, record_attempt, record_first_attempt, put_event_fields,
                event_fields, page_deliveries, count_deliveries, reopen_delivery;
            $($own)*
        });
    };
    (impl EventClaims for $fake:ty { forward all; $($own:tt)* }) => {
        $crate::forward_port!(impl EventClaims for $fake {
            forward claim_event, claim_events, complete_event, complete_events,
                answered, release_event;
            $($own)*
        });
    };
    (impl HealthStore for $fake:ty { forward all; $($own:tt)* }) => {
        $crate::forward_port!(impl HealthStore for $fake {
            forward count_attempts, reserve_slot, record_health, hook_health, claim_notice,
                reset_health, hourly_health;
            $($own)*
        });
    };
    (impl RecoveryStore for $fake:ty { forward all; $($own:tt)* }) => {
        $crate::forward_port!(impl RecoveryStore for $fake {
            forward create_recovery, get_recovery, advance_recovery;
            $($own)*
        });
    };
    (impl CheckStore for $fake:ty { forward all; $($own:tt)* }) => {
        $crate::forward_port!(impl CheckStore for $fake {
            forward put_check, page_checks;
            $($own)*
        });
    };
    (impl $port:ident for $fake:ty { forward $($method:ident),+ $(,)?; $($own:tt)* }) => {
        $crate::forward_port!(@methods $port, $fake, [$($own)*], [] $($method)+);
    };

    // Every method generated: the impl, written out whole so `async_trait` sees each method.
    (@methods $port:ident, $fake:ty, [$($own:tt)*], [$($made:tt)*]) => {
        #[$crate::ports::forward::async_trait]
        impl $crate::ports::$port for $fake {
            $($made)*
            $($own)*
        }
    };
    // The next method: its signature from the table below, its body a forwarded call.
    (@methods $port:ident, $fake:ty, $own:tt, [$($made:tt)*] $method:ident $($rest:ident)*) => {
        $crate::forward_port!(
            @signature $method, [@methods $port, $fake, $own, [$($made)*]], [$($rest)*]
        );
    };
    (@made [@methods $port:ident, $fake:ty, $own:tt, [$($made:tt)*]], [$($rest:ident)*],
        $method:ident ($($arg:ident: $ty:ty),*) -> $out:ty) => {
        $crate::forward_port!(@methods $port, $fake, $own, [
            $($made)*
            async fn $method(&self, $($arg: $ty),*)
                -> ::std::result::Result<$out, $crate::ports::forward::types::StoreError> {
                $crate::ports::forward::Forwarding::before(self, stringify!($method)).await?;
                $crate::ports::forward::Forwarding::inner(self).$method($($arg),*).await
            }
        ] $($rest)*);
    };

    // The signature of every port method (types under `$crate::ports::forward::types`).
    (@signature create_hook, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        create_hook(hook: &$crate::ports::forward::types::Hook) -> ()); };
    (@signature get_hook, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        get_hook(id: &$crate::ports::forward::types::HookId)
            -> Option<$crate::ports::forward::types::Hook>); };
    (@signature page_hooks, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        page_hooks(after: Option<&$crate::ports::forward::types::HookPosition>, limit: usize)
            -> $crate::ports::forward::types::Page<
                $crate::ports::forward::types::Hook,
                $crate::ports::forward::types::HookPosition,
            >); };
    (@signature count_hooks, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        count_hooks() -> u64); };
    (@signature update_hook, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        update_hook(previous: &$crate::ports::forward::types::Hook, next: &$crate::ports::forward::types::Hook)
            -> ()); };
    (@signature delete_hook, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        delete_hook(hook: &$crate::ports::forward::types::Hook) -> bool); };
    (@signature subscribers, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        subscribers(event: $crate::ports::forward::types::EventName)
            -> Vec<$crate::ports::forward::types::Subscriber>); };

    (@signature insert_deliveries, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        insert_deliveries(deliveries: &[$crate::ports::forward::types::Delivery]) -> ()); };
    (@signature insert_missing_deliveries, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        insert_missing_deliveries(deliveries: &[$crate::ports::forward::types::Delivery])
            -> Vec<($crate::ports::forward::types::Delivery, bool)>); };
    (@signature delete_deliveries, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        delete_deliveries(deliveries: &[$crate::ports::forward::types::Delivery]) -> ()); };
    (@signature get_delivery, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        get_delivery(hook: &$crate::ports::forward::types::HookId, id: &$crate::ports::forward::types::DeliveryId)
            -> Option<$crate::ports::forward::types::Delivery>); };
    (@signature record_attempt, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        record_attempt(record: &$crate::ports::forward::types::AttemptRecord)
            -> $crate::ports::forward::types::RecordOutcome); };
    (@signature record_first_attempt, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        record_first_attempt(
            pending: &$crate::ports::forward::types::Delivery,
            record: &$crate::ports::forward::types::AttemptRecord
        ) -> $crate::ports::forward::types::RecordOutcome); };
    (@signature put_event_fields, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        put_event_fields(events: &[$crate::ports::forward::types::EventFields]) -> ()); };
    (@signature event_fields, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        event_fields(event: &$crate::ports::forward::types::EventId, created_at: i64)
            -> Option<String>); };
    (@signature page_deliveries, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        page_deliveries(
            hook: &$crate::ports::forward::types::HookId,
            filter: &$crate::ports::forward::types::DeliveryFilter,
            after: Option<&$crate::ports::forward::types::DeliveryId>,
            limit: usize
        ) -> $crate::ports::forward::types::Page<$crate::ports::forward::types::Delivery>); };
    (@signature count_deliveries, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        count_deliveries(
            hook: &$crate::ports::forward::types::HookId,
            filter: &$crate::ports::forward::types::DeliveryFilter,
            cap: u64
        ) -> $crate::ports::forward::types::Count); };
    (@signature reopen_delivery, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        reopen_delivery(
            hook: &$crate::ports::forward::types::HookId,
            id: &$crate::ports::forward::types::DeliveryId,
            now_ms: i64,
            expected_attempts: Option<u32>
        ) -> Option<$crate::ports::forward::types::Delivery>); };

    (@signature claim_event, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        claim_event(
            id: &$crate::ports::forward::types::EventId,
            now_ms: i64,
            window_ms: i64,
            stale_ms: i64
        ) -> $crate::ports::forward::types::EventClaim); };
    (@signature complete_event, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        complete_event(
            id: &$crate::ports::forward::types::EventId,
            answer: &$crate::ports::forward::types::RawJson
        ) -> ()); };
    (@signature claim_events, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        claim_events(
            ids: &[$crate::ports::forward::types::EventId],
            now_ms: i64,
            window_ms: i64,
            stale_ms: i64
        ) -> Vec<$crate::ports::forward::types::EventClaim>); };
    (@signature complete_events, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        complete_events(
            answers: &[($crate::ports::forward::types::EventId, $crate::ports::forward::types::RawJson)]
        ) -> ()); };
    (@signature answered, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        answered(id: &$crate::ports::forward::types::EventId) -> bool); };
    (@signature release_event, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        release_event(id: &$crate::ports::forward::types::EventId) -> ()); };

    (@signature count_attempts, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        count_attempts(counts: &[$crate::ports::forward::types::HourlyCount]) -> ()); };
    (@signature reserve_slot, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        reserve_slot(hook: &$crate::ports::forward::types::HookId, interval_ms: i64, now_ms: i64)
            -> i64); };
    (@signature record_health, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        record_health(
            hook: &$crate::ports::forward::types::HookId,
            batch: &$crate::ports::forward::types::BatchHealth
        ) -> ($crate::ports::forward::types::HookHealth, $crate::ports::forward::types::HookHealth)); };
    (@signature hook_health, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        hook_health(hook: &$crate::ports::forward::types::HookId)
            -> $crate::ports::forward::types::HookHealth); };
    (@signature claim_notice, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        claim_notice(hook: &$crate::ports::forward::types::HookId, now_ms: i64, window_ms: i64)
            -> bool); };
    (@signature reset_health, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        reset_health(hook: &$crate::ports::forward::types::HookId) -> ()); };
    (@signature hourly_health, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        hourly_health(hook: &$crate::ports::forward::types::HookId, from_hour: i64, to_hour: i64)
            -> Vec<(i64, $crate::ports::forward::types::HealthCounts)>); };

    (@signature create_recovery, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        create_recovery(recovery: &$crate::ports::forward::types::Recovery) -> ()); };
    (@signature get_recovery, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        get_recovery(hook: &$crate::ports::forward::types::HookId, id: &$crate::ports::forward::types::RecoveryId)
            -> Option<$crate::ports::forward::types::Recovery>); };
    (@signature advance_recovery, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        advance_recovery(
            hook: &$crate::ports::forward::types::HookId,
            id: &$crate::ports::forward::types::RecoveryId,
            from: Option<&$crate::ports::forward::types::DeliveryId>,
            to: Option<&$crate::ports::forward::types::DeliveryId>,
            resent: u64,
            now_ms: i64
        ) -> bool); };

    (@signature put_check, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        put_check(report: &$crate::ports::forward::types::CheckReport, expires_at: i64) -> ()); };
    (@signature page_checks, $k:tt, $r:tt) => { $crate::forward_port!(@made $k, $r,
        page_checks(
            hook: &$crate::ports::forward::types::HookId,
            after: Option<&$crate::ports::forward::types::CheckId>,
            limit: usize,
            now_ms: i64
        ) -> $crate::ports::forward::types::Page<
            $crate::ports::forward::types::CheckReport,
            $crate::ports::forward::types::CheckId,
        >); };
}
