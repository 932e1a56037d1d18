//! Hooks and the subscription index that finds them by event.

use super::{Page, StoreError};
use crate::domain::catalog::EventName;
use crate::domain::hook::{Hook, HookId, HookMode, HookPosition};
use async_trait::async_trait;

/// A hook subscribed to an event, as the subscription index holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subscriber {
    pub hook_id: HookId,
    pub mode: HookMode,
}

#[async_trait]
pub trait HookStore: Send + Sync {
    /// Creates the hook and its subscriptions.
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError>;
    async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError>;
    /// One page of hooks, newest first (as Logto lists them), after `after` (exclusive).
    async fn page_hooks(
        &self,
        after: Option<&HookPosition>,
        limit: usize,
    ) -> Result<Page<Hook, HookPosition>, StoreError>;
    async fn count_hooks(&self) -> Result<u64, StoreError>;
    /// Replaces `previous` (as read) by `next`, subscriptions included; `Conflict` if it changed.
    async fn update_hook(&self, previous: &Hook, next: &Hook) -> Result<(), StoreError>;
    /// Deletes the hook and its subscriptions; false when it did not exist.
    async fn delete_hook(&self, hook: &Hook) -> Result<bool, StoreError>;
    /// Enabled hooks subscribed to `event`, with their mode, from the subscription index.
    async fn subscribers(&self, event: EventName) -> Result<Vec<Subscriber>, StoreError>;
}
