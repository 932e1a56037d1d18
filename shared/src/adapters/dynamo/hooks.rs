//! Hooks on DynamoDB: the hook item and its subscription items, written in one transaction.

use super::item::{Item, corrupt, from_item, n, s, unavailable};
use super::{DynamoStore, LISTING_INDEX, SUBSCRIPTION_INDEX};
use crate::domain::catalog::EventName;
use crate::domain::hook::{Hook, HookId, HookMode, HookPosition};
use crate::ports::{HookStore, NAMESPACE, Page, StoreError, Subscriber};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

const HOOK_SK: &str = "HOOK";
const SUB_PREFIX: &str = "SUB#";

/// The listing partition of a namespace's hooks.
fn hook_list() -> String {
    format!("{NAMESPACE}#hooks")
}

/// The subscription index key of an event in the namespace.
fn sub_event(event: EventName) -> String {
    format!("{NAMESPACE}#{event}")
}

impl DynamoStore {
    fn hook_put(&self, hook: &Hook) -> Result<Put, StoreError> {
        let mut item: Item = serde_dynamo::to_item(hook).map_err(corrupt)?;
        item.insert("pk".into(), s(hook.id.as_str()));
        item.insert("sk".into(), s(HOOK_SK));
        item.insert("listPk".into(), s(&hook_list()));
        item.insert("listSk".into(), s(&HookPosition::of(hook).sort_key()));
        Put::builder()
            .table_name(&self.hooks_table)
            .set_item(Some(item))
            .build()
            .map_err(unavailable)
    }

    fn sub_put(&self, hook: &Hook, event: EventName) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.hooks_table)
            .item("pk", s(hook.id.as_str()))
            .item("sk", s(&format!("{SUB_PREFIX}{event}")))
            .item("subEvent", s(&sub_event(event)))
            .item("enabled", AttributeValue::Bool(hook.enabled));
        if !hook.mode.is_async() {
            put = put.item("mode", s(hook.mode.as_str()));
        }
        let put = put.build().map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn sub_delete(&self, hook: &HookId, event: EventName) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.hooks_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(&format!("{SUB_PREFIX}{event}")))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|se| se.is_transaction_canceled_exception()) {
                    let message = service.and_then(|se| se.message()).unwrap_or_default();
                    if message.contains("ConditionalCheckFailed") {
                        return Err(StoreError::Conflict);
                    }
                }
                Err(unavailable(e))
            }
        }
    }
}

#[async_trait]
impl HookStore for DynamoStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        let put = self.hook_put(hook)?;
        let put = Put::builder()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unavailable)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for e in &hook.events {
            items.push(self.sub_put(hook, *e)?);
        }
        self.transact(items).await.map_err(|e| match e {
            StoreError::Conflict => StoreError::AlreadyExists,
            other => other,
        })
    }

    async fn get_hook(&self, id: &HookId) -> Result<Option<Hook>, StoreError> {
        self.read_item(&self.hooks_table, id.as_str(), HOOK_SK)
            .await?
            .map(from_item)
            .transpose()
    }

    async fn page_hooks(
        &self,
        after: Option<&HookPosition>,
        limit: usize,
    ) -> Result<Page<Hook, HookPosition>, StoreError> {
        if limit == 0 {
            return Ok(Page::default());
        }
        let mut query = self
            .client
            .query()
            .table_name(&self.hooks_table)
            .index_name(LISTING_INDEX)
            .expression_attribute_values(":list", s(&hook_list()))
            // Newest first, as Logto lists them.
            .scan_index_forward(false)
            .limit(limit as i32 + 1);
        query = match after {
            Some(after) => query
                .key_condition_expression("listPk = :list AND listSk < :after")
                .expression_attribute_values(":after", s(&after.sort_key())),
            None => query.key_condition_expression("listPk = :list"),
        };
        let out = query.send().await.map_err(unavailable)?;
        let mut hooks = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item::<Hook>)
            .collect::<Result<Vec<_>, _>>()?;
        let next = (hooks.len() > limit).then(|| HookPosition::of(&hooks[limit - 1]));
        hooks.truncate(limit);
        Ok(Page { items: hooks, next })
    }

    async fn count_hooks(&self) -> Result<u64, StoreError> {
        let pages: Vec<_> = self
            .client
            .query()
            .table_name(&self.hooks_table)
            .index_name(LISTING_INDEX)
            .key_condition_expression("listPk = :list")
            .expression_attribute_values(":list", s(&hook_list()))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(unavailable)?;
        Ok(pages.iter().map(|p| p.count.max(0) as u64).sum())
    }

    async fn update_hook(&self, previous: &Hook, next: &Hook) -> Result<(), StoreError> {
        let put = self.hook_put(next)?;
        let put = Put::builder()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .condition_expression("updatedAt = :prev")
            .expression_attribute_values(":prev", n(previous.updated_at))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .map_err(unavailable)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for e in previous.events.iter().filter(|e| !next.events.contains(e)) {
            items.push(self.sub_delete(&previous.id, *e)?);
        }
        for e in &next.events {
            items.push(self.sub_put(next, *e)?);
        }
        self.transact(items).await
    }

    async fn delete_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.hooks_table)
            .key("pk", s(hook.id.as_str()))
            .key("sk", s(HOOK_SK))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unavailable)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        for e in &hook.events {
            items.push(self.sub_delete(&hook.id, *e)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn subscribers(&self, event: EventName) -> Result<Vec<Subscriber>, StoreError> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.hooks_table)
            .index_name(SUBSCRIPTION_INDEX)
            .key_condition_expression("subEvent = :e")
            .filter_expression("enabled = :t")
            .expression_attribute_values(":e", s(&sub_event(event)))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(unavailable)?;
        items
            .iter()
            .filter_map(|item| match item.get("pk") {
                Some(AttributeValue::S(pk)) => Some(HookId::parse(pk).map_err(corrupt).map(|id| {
                    let sync =
                        matches!(item.get("mode"), Some(AttributeValue::S(m)) if m == "sync");
                    Subscriber {
                        hook_id: id,
                        mode: if sync {
                            HookMode::Sync
                        } else {
                            HookMode::Async
                        },
                    }
                })),
                _ => None,
            })
            .collect()
    }
}
