//! Receiver check reports: kept per hook, listed newest first, expired after
//! [`REPORT_RETENTION_MS`](crate::domain::receiver_check::REPORT_RETENTION_MS).

use super::{Page, StoreError};
use crate::domain::hook::HookId;
use crate::domain::receiver_check::{CheckId, CheckReport};
use async_trait::async_trait;

#[async_trait]
pub trait CheckStore: Send + Sync {
    /// Keeps `report` (of a hook) until `expires_at` (unix ms).
    async fn put_check(&self, report: &CheckReport, expires_at: i64) -> Result<(), StoreError>;
    /// The hook's reports not expired at `now_ms`, newest first, up to `limit` of them from
    /// after `after`; `next` names the last one shown while there may be more.
    async fn page_checks(
        &self,
        hook: &HookId,
        after: Option<&CheckId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page<CheckReport, CheckId>, StoreError>;
}
