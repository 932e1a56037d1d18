//! Receiver check reports on DynamoDB: one item each in the deliveries table (whose TTL on
//! `expiresAt` removes old ones), under a partition of their own, `<hookId>#checks`, sorted by
//! report id (a ULID, so newest last). No delivery read names that partition, and the hooks
//! table, its listing and its subscriptions never see a report.

use super::DynamoStore;
use super::item::{Item, corrupt, from_item, n, number_attr, s, unavailable};
use crate::domain::hook::HookId;
use crate::domain::receiver_check::{CheckId, CheckReport};
use crate::ports::{CheckStore, Page, StoreError};
use async_trait::async_trait;

fn checks_pk(hook: &HookId) -> String {
    format!("{hook}#checks")
}

#[async_trait]
impl CheckStore for DynamoStore {
    async fn put_check(&self, report: &CheckReport, expires_at: i64) -> Result<(), StoreError> {
        let Some(hook) = &report.hook_id else {
            return Err(StoreError::Corrupt("a stored check names its hook".into()));
        };
        let mut item: Item = serde_dynamo::to_item(report).map_err(corrupt)?;
        item.insert("pk".into(), s(&checks_pk(hook)));
        item.insert("sk".into(), s(&report.id.to_string()));
        item.insert("expiresAt".into(), n(expires_at));
        self.client
            .put_item()
            .table_name(&self.deliveries_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn page_checks(
        &self,
        hook: &HookId,
        after: Option<&CheckId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page<CheckReport, CheckId>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.deliveries_table)
            .expression_attribute_values(":pk", s(&checks_pk(hook)))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        query = match after {
            Some(after) => query
                .key_condition_expression("pk = :pk AND sk < :after")
                .expression_attribute_values(":after", s(&after.to_string())),
            None => query.key_condition_expression("pk = :pk"),
        };
        let out = query.send().await.map_err(unavailable)?;
        // TTL deletes late: an expired report is left out. Every report is kept equally long,
        // so the expired ones are the oldest, after every one shown.
        let mut items = Vec::new();
        for item in out.items.unwrap_or_default() {
            if number_attr(&item, "expiresAt").is_some_and(|at| at <= now_ms) {
                continue;
            }
            items.push(from_item::<CheckReport>(item)?);
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
