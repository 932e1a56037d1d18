//! The DynamoDB store. Hooks table: the hook item (`sk = HOOK`) plus one subscription item
//! per event (`sk = SUB#<event>`, indexed by `subEvent` in `by-event`), written in one
//! transaction. Deliveries table: one item per delivery keyed by hook and time-sortable id.
//! Keys shared by a deployment (the hook listing, the subscription index, event claims) carry
//! the namespace.

use crate::domain::catalog::EventName;
use crate::domain::delivery::{Delivery, DeliveryId};
use crate::domain::event::EventId;
use crate::domain::health::{BatchHealth, HealthCounts, HookHealth};
use crate::domain::hook::HookMode;
use crate::domain::hook::{Hook, HookId, HookPosition};
use crate::domain::recovery::{Recovery, RecoveryId};
use crate::ports::Subscriber;
use crate::ports::{
    AttemptRecord, DeliveryFilter, EventClaim, HourlyCount, NAMESPACE, Page, RecordOutcome, Store,
    StoreError,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, WriteRequest,
};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

pub const SUBSCRIPTION_INDEX: &str = "by-event";
/// Hook items by creation (sparse: subscriptions carry no `listPk`).
pub const LISTING_INDEX: &str = "by-created";
/// The listing partition of a namespace's hooks.
fn hook_list() -> String {
    format!("{NAMESPACE}#hooks")
}

/// The subscription index key of an event in the namespace.
fn sub_event(event: EventName) -> String {
    format!("{NAMESPACE}#{event}")
}
const HOOK_SK: &str = "HOOK";
const SUB_PREFIX: &str = "SUB#";
/// Query rounds one page of a filtered delivery listing may take.
const PAGE_READ_ROUNDS: usize = 10;
const EVENT_SK: &str = "event";
/// Hourly counters live beside a hook's deliveries, under `stats#<unix hour, 10 digits>`.
const STATS_PREFIX: &str = "stats#";
/// A hook's failure state lives beside its deliveries too (below every delivery id).
const HEALTH_SK: &str = "health";
/// And the next free slot of its rate limit.
const RATE_SK: &str = "rate";

fn event_pk(id: &EventId) -> String {
    format!("{NAMESPACE}#event#{id}")
}

fn recovery_sk(id: &RecoveryId) -> String {
    format!("recovery#{id}")
}

fn stats_sk(hour: i64) -> String {
    format!("{STATS_PREFIX}{hour:010}")
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    hooks_table: String,
    deliveries_table: String,
    /// Updates return the whole new item (free in capacity units) so a usage meter sees its size.
    report_sizes: bool,
}

impl DynamoStore {
    pub fn new(client: Client, hooks_table: String, deliveries_table: String) -> Self {
        Self {
            client,
            hooks_table,
            deliveries_table,
            report_sizes: false,
        }
    }

    /// Makes every update return the item as written, for the benchmark's usage meter
    /// (`bench/src/usage.rs`).
    pub fn reporting_item_sizes(mut self) -> Self {
        self.report_sizes = true;
        self
    }

    fn update_item(
        &self,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let update = self.client.update_item();
        if self.report_sizes {
            update.return_values(ReturnValue::AllNew)
        } else {
            update
        }
    }

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

    /// A delivery as an item: its ids only in the key, its body deflated when that is smaller
    /// (a 1 KB event then fits one write unit with its first attempts).
    fn delivery_item(&self, d: &Delivery) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(d).map_err(corrupt)?;
        item.remove("hookId");
        item.remove("id");
        if d.body.len() >= COMPRESS_FROM {
            let deflated = miniz_oxide::deflate::compress_to_vec(d.body.as_bytes(), 6);
            if deflated.len() < d.body.len() {
                item.remove("body");
                item.insert(
                    "bodyZ".into(),
                    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(deflated)),
                );
            }
        }
        item.insert("pk".into(), s(d.hook_id.as_str()));
        item.insert("sk".into(), s(&d.id.to_string()));
        item.insert("attemptCount".into(), n(d.attempt_count().into()));
        Ok(item)
    }

    /// Writes the delivery unless its id exists; returns the record as stored and whether
    /// this call created it.
    async fn put_if_absent(&self, d: &Delivery) -> Result<(Delivery, bool), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.deliveries_table)
            .set_item(Some(self.delivery_item(d)?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok((d.clone(), true)),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let existing = failed
                        .item
                        .ok_or_else(|| corrupt("a conflicting delivery without its item"))?;
                    Ok((delivery_from_item(existing)?, false))
                }
                other => Err(unavailable(other)),
            },
        }
    }

    /// BatchWriteItem in 25s on the deliveries table, retrying unprocessed items with backoff.
    async fn write_deliveries(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for round in 0..5u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.deliveries_table, pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.deliveries_table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "{} delivery writes were not processed",
                    pending.len()
                )));
            }
        }
        Ok(())
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

/// Bodies from this length are stored deflated when that saves space.
const COMPRESS_FROM: usize = 256;
/// The most a stored body may inflate to (bodies are accepted up to 256 KiB).
const MAX_INFLATED: usize = 1024 * 1024;

/// The delivery an item holds, whichever way its body and ids were stored.
fn delivery_from_item(mut item: Item) -> Result<Delivery, StoreError> {
    for (field, key) in [("hookId", "pk"), ("id", "sk")] {
        if !item.contains_key(field)
            && let Some(value) = item.get(key).cloned()
        {
            item.insert(field.into(), value);
        }
    }
    if let Some(AttributeValue::B(deflated)) = item.remove("bodyZ") {
        let bytes =
            miniz_oxide::inflate::decompress_to_vec_with_limit(deflated.as_ref(), MAX_INFLATED)
                .map_err(|e| corrupt(format!("a stored body does not inflate: {e:?}")))?;
        let body = String::from_utf8(bytes).map_err(corrupt)?;
        item.insert("body".into(), AttributeValue::S(body));
    }
    serde_dynamo::from_item(item).map_err(corrupt)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn number_attr(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn unavailable(e: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn is_conditional_failure<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl Store for DynamoStore {
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
        let out = self
            .client
            .get_item()
            .table_name(&self.hooks_table)
            .key("pk", s(id.as_str()))
            .key("sk", s(HOOK_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt))
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
            .limit(limit as i32 + 1);
        query = match after {
            Some(after) => query
                .key_condition_expression("listPk = :list AND listSk > :after")
                .expression_attribute_values(":after", s(&after.sort_key())),
            None => query.key_condition_expression("listPk = :list"),
        };
        let out = query.send().await.map_err(unavailable)?;
        let mut hooks = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item::<_, Hook>(item).map_err(corrupt))
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

    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let item = self.delivery_item(d)?;
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(unavailable)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.write_deliveries(requests).await
    }

    async fn insert_missing_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<(Delivery, bool)>, StoreError> {
        let puts: Vec<_> = deliveries.iter().map(|d| self.put_if_absent(d)).collect();
        futures::stream::iter(puts).buffered(16).try_collect().await
    }

    async fn delete_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let delete = DeleteRequest::builder()
                .key("pk", s(d.hook_id.as_str()))
                .key("sk", s(&d.id.to_string()))
                .build()
                .map_err(unavailable)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.write_deliveries(requests).await
    }

    async fn get_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(&id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.map(delivery_from_item).transpose()
    }

    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
        let mut set = vec!["#status = :status"];
        let mut remove = Vec::new();
        let mut update = self
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(record.hook_id.as_str()))
            .key("sk", s(&record.delivery_id.to_string()))
            .condition_expression("#status = :pending AND attemptCount = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(record.status.as_str()))
            .expression_attribute_values(":pending", s("Pending"))
            .expression_attribute_values(":expected", n(record.expected_attempts.into()));
        if let Some(attempt) = &record.attempt {
            let value = serde_dynamo::to_attribute_value(attempt).map_err(corrupt)?;
            set.push("attempts = list_append(attempts, :attempt)");
            set.push("attemptCount = :count");
            update = update
                .expression_attribute_values(":attempt", AttributeValue::L(vec![value]))
                .expression_attribute_values(":count", n(i64::from(record.expected_attempts) + 1));
        }
        match record.next_attempt_at {
            Some(at) => {
                set.push("nextAttemptAt = :next");
                update = update.expression_attribute_values(":next", n(at));
            }
            None => remove.push("nextAttemptAt"),
        }
        match &record.reason {
            Some(reason) => {
                set.push("reason = :reason");
                update = update.expression_attribute_values(":reason", s(reason));
            }
            None => remove.push("reason"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        match update.update_expression(expression).send().await {
            Ok(_) => Ok(RecordOutcome::Recorded),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {
                Ok(RecordOutcome::AlreadyRecorded)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn page_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        after: Option<&DeliveryId>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        let Some((low, high)) = filter.id_range(after).filter(|_| limit > 0) else {
            return Ok(Page::default());
        };
        let mut conditions = Vec::new();
        let mut query = self
            .client
            .query()
            .table_name(&self.deliveries_table)
            .key_condition_expression("pk = :h AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":h", s(hook.as_str()))
            .expression_attribute_values(":from", s(&low.to_string()))
            .expression_attribute_values(":to", s(&high.to_string()))
            .scan_index_forward(false);
        if let Some(event) = filter.event {
            conditions.push("#event = :event".to_string());
            query = query
                .expression_attribute_names("#event", "event")
                .expression_attribute_values(":event", s(event.as_str()));
        }
        if let Some(statuses) = &filter.statuses {
            let names: Vec<String> = (0..statuses.len()).map(|i| format!(":s{i}")).collect();
            conditions.push(format!("#status IN ({})", names.join(", ")));
            query = query.expression_attribute_names("#status", "status");
            for (name, status) in names.iter().zip(statuses) {
                query = query.expression_attribute_values(name, s(status.as_str()));
            }
        }
        if !conditions.is_empty() {
            query = query.filter_expression(conditions.join(" AND "));
        }
        // A selective filter may match little of what is read: a page reads at most
        // PAGE_READ_ROUNDS × `limit` items, then says where to go on.
        let mut items = Vec::with_capacity(limit);
        let mut start: Option<Item> = None;
        for _ in 0..PAGE_READ_ROUNDS {
            let out = query
                .clone()
                .limit((limit - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items.unwrap_or_default() {
                items.push(delivery_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(Page { items, next: None }),
            }
            if items.len() >= limit {
                break;
            }
        }
        let next = match start.as_ref().and_then(|k| k.get("sk")) {
            Some(AttributeValue::S(sk)) => Some(DeliveryId::parse(sk).map_err(corrupt)?),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn reopen_delivery(
        &self,
        hook: &HookId,
        id: &DeliveryId,
        now_ms: i64,
        expected_attempts: Option<u32>,
    ) -> Result<Option<Delivery>, StoreError> {
        let mut update = self
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(&id.to_string()))
            .update_expression("SET #status = :pending, nextAttemptAt = :now REMOVE reason")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("Pending"))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(ReturnValue::AllNew);
        update = match expected_attempts {
            Some(count) => update
                .condition_expression(
                    "attribute_exists(pk) AND #status <> :pending AND attemptCount = :count",
                )
                .expression_attribute_values(":count", n(count.into())),
            None => update.condition_expression("attribute_exists(pk) AND #status <> :pending"),
        };
        match update.send().await {
            Ok(out) => out.attributes.map(delivery_from_item).transpose(),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {
                match self.get_delivery(hook, id).await? {
                    Some(_) => Err(StoreError::Conflict),
                    None => Ok(None),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn create_recovery(&self, recovery: &Recovery) -> Result<(), StoreError> {
        let mut item: Item = serde_dynamo::to_item(recovery).map_err(corrupt)?;
        item.insert("pk".into(), s(recovery.hook_id.as_str()));
        item.insert("sk".into(), s(&recovery_sk(&recovery.id)));
        let result = self
            .client
            .put_item()
            .table_name(&self.deliveries_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn get_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(&recovery_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt))
            .transpose()
    }

    async fn advance_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
        from: Option<&DeliveryId>,
        to: Option<&DeliveryId>,
        resent: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(&recovery_sk(id)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_names("#resent", "resent")
            .expression_attribute_names("#steps", "steps")
            .expression_attribute_names("#updatedAt", "updatedAt")
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":resent", n(resent as i64))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms));
        let at = match from {
            Some(from) => {
                update = update.expression_attribute_values(":from", s(&from.to_string()));
                "#cursor = :from"
            }
            None => "attribute_not_exists(#cursor)",
        };
        update = update.condition_expression(format!("#status = :running AND {at}"));
        let set = "#resent = #resent + :resent, #steps = #steps + :one, #updatedAt = :now";
        update = match to {
            Some(to) => update
                .update_expression(format!("SET {set}, #cursor = :to"))
                .expression_attribute_values(":to", s(&to.to_string())),
            None => update
                .update_expression(format!("SET {set}, #status = :done REMOVE #cursor"))
                .expression_attribute_values(":done", s("done")),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn claim_event(
        &self,
        id: &EventId,
        now_ms: i64,
        window_ms: i64,
        stale_ms: i64,
    ) -> Result<EventClaim, StoreError> {
        let window_ends_at = now_ms + window_ms;
        let fresh = self
            .client
            .put_item()
            .table_name(&self.deliveries_table)
            .item("pk", s(&event_pk(id)))
            .item("sk", s(EVENT_SK))
            .item("claimedAt", n(now_ms))
            .item("firstClaimedAt", n(now_ms))
            .item("windowEndsAt", n(window_ends_at))
            .item("expiresAt", n(window_ends_at / 1000 + 1))
            .condition_expression("attribute_not_exists(pk) OR windowEndsAt <= :now")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match fresh {
            Ok(_) => {
                return Ok(EventClaim::Claimed {
                    first_claimed_at: now_ms,
                    resumed: false,
                });
            }
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {}
            Err(e) => return Err(unavailable(e)),
        }
        // Within the window: take over a claim that was released or abandoned, keeping the
        // time of the first claim.
        let takeover = self
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(&event_pk(id)))
            .key("sk", s(EVENT_SK))
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(answer) \
                 AND claimedAt <= :stale AND windowEndsAt > :now",
            )
            .update_expression(
                "SET firstClaimedAt = if_not_exists(firstClaimedAt, claimedAt), claimedAt = :now",
            )
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":stale", n(now_ms - stale_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match takeover {
            Ok(out) => {
                let first_claimed_at = out
                    .attributes
                    .as_ref()
                    .and_then(|a| number_attr(a, "firstClaimedAt"))
                    .ok_or_else(|| corrupt("an event claim without firstClaimedAt"))?;
                return Ok(EventClaim::Claimed {
                    first_claimed_at,
                    resumed: true,
                });
            }
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {}
            Err(e) => return Err(unavailable(e)),
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(&event_pk(id)))
            .key("sk", s(EVENT_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match out.item.as_ref().and_then(|i| i.get("answer")) {
            Some(AttributeValue::S(answer)) => Ok(EventClaim::Accepted(
                serde_json::from_str(answer).map_err(corrupt)?,
            )),
            _ => Ok(EventClaim::InProgress),
        }
    }

    async fn complete_event(
        &self,
        id: &EventId,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(&event_pk(id)))
            .key("sk", s(EVENT_SK))
            .update_expression("SET answer = :a")
            .expression_attribute_values(":a", s(&answer.to_string()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release_event(&self, id: &EventId) -> Result<(), StoreError> {
        let result = self
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(&event_pk(id)))
            .key("sk", s(EVENT_SK))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(answer)")
            .update_expression("SET claimedAt = :released")
            .expression_attribute_values(":released", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn count_attempts(&self, counts: &[HourlyCount]) -> Result<(), StoreError> {
        let updates = counts.iter().map(|c| self.add_hour(c));
        for result in futures::future::join_all(updates).await {
            result?;
        }
        Ok(())
    }

    async fn reserve_slot(
        &self,
        hook: &HookId,
        interval_ms: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        // Kept an hour past its last slot, then TTL removes an idle hook's item.
        let expires = n(now_ms / 1000 + 3_600);
        for _ in 0..5 {
            // Idle: the slot is now.
            let idle = self
                .client
                .update_item()
                .table_name(&self.deliveries_table)
                .key("pk", s(hook.as_str()))
                .key("sk", s(RATE_SK))
                .update_expression("SET nextAt = :next, expiresAt = :exp")
                .condition_expression("attribute_not_exists(nextAt) OR nextAt <= :now")
                .expression_attribute_values(":next", n(now_ms + interval_ms))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":exp", expires.clone())
                .send()
                .await;
            match idle {
                Ok(_) => return Ok(now_ms),
                Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {}
                Err(e) => return Err(unavailable(e)),
            }
            // Busy: the slot after the last one taken.
            let busy = self
                .client
                .update_item()
                .table_name(&self.deliveries_table)
                .key("pk", s(hook.as_str()))
                .key("sk", s(RATE_SK))
                .update_expression("ADD nextAt :interval SET expiresAt = :exp")
                .condition_expression("nextAt > :now")
                .expression_attribute_values(":interval", n(interval_ms))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":exp", expires.clone())
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match busy {
                Ok(out) => {
                    let next = out
                        .attributes
                        .as_ref()
                        .and_then(|a| number_attr(a, "nextAt"))
                        .ok_or_else(|| StoreError::Corrupt("rate slot without nextAt".into()))?;
                    return Ok(next - interval_ms);
                }
                Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn record_health(
        &self,
        hook: &HookId,
        batch: &BatchHealth,
    ) -> Result<(HookHealth, HookHealth), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(HEALTH_SK))
            .return_values(ReturnValue::AllOld);
        let update = match (batch.last_success_at, batch.first_failure_after) {
            (Some(success), first) => {
                let update = update
                    .condition_expression(
                        "attribute_not_exists(lastSuccessAt) OR lastSuccessAt < :s",
                    )
                    .expression_attribute_values(":s", n(success))
                    .expression_attribute_values(":k", n(batch.failures_after as i64));
                match first {
                    Some(first) => update
                        .update_expression(
                            "SET lastSuccessAt = :s, failedAttempts = :k, failingSince = :f",
                        )
                        .expression_attribute_values(":f", n(first)),
                    None => update.update_expression(
                        "SET lastSuccessAt = :s, failedAttempts = :k REMOVE failingSince",
                    ),
                }
            }
            (None, Some(first)) => update
                .condition_expression("attribute_not_exists(lastSuccessAt) OR lastSuccessAt < :f")
                .update_expression(
                    "SET failingSince = if_not_exists(failingSince, :f) ADD failedAttempts :k",
                )
                .expression_attribute_values(":f", n(first))
                .expression_attribute_values(":k", n(batch.failures_after as i64)),
            (None, None) => {
                let health = self.hook_health(hook).await?;
                return Ok((health.clone(), health));
            }
        };
        match update.send().await {
            Ok(out) => {
                let before = health_of(out.attributes.as_ref());
                let after = before.apply(batch);
                Ok((before, after))
            }
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {
                let health = self.hook_health(hook).await?;
                Ok((health.clone(), health))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn hook_health(&self, hook: &HookId) -> Result<HookHealth, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(HEALTH_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(health_of(out.item.as_ref()))
    }

    async fn claim_notice(
        &self,
        hook: &HookId,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<bool, StoreError> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(HEALTH_SK))
            .condition_expression("attribute_not_exists(noticedAt) OR noticedAt <= :cutoff")
            .update_expression("SET noticedAt = :now")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":cutoff", n(now_ms - window_ms))
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn reset_health(&self, hook: &HookId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(hook.as_str()))
            .key("sk", s(HEALTH_SK))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn hourly_health(
        &self,
        hook: &HookId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, HealthCounts)>, StoreError> {
        let mut hours = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.deliveries_table)
                .key_condition_expression("pk = :h AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":h", s(hook.as_str()))
                .expression_attribute_values(":from", s(&stats_sk(from_hour)))
                .expression_attribute_values(":to", s(&stats_sk(to_hour)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                let hour = match item.get("sk") {
                    Some(AttributeValue::S(sk)) => sk
                        .strip_prefix(STATS_PREFIX)
                        .and_then(|h| h.parse::<i64>().ok()),
                    _ => None,
                };
                if let Some(hour) = hour {
                    hours.push((hour, stat_counts(item)));
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(hours)
    }
}

/// A hook's failure state from its item (healthy without one).
fn health_of(item: Option<&Item>) -> HookHealth {
    let Some(item) = item else {
        return HookHealth::default();
    };
    HookHealth {
        failing_since: number_attr(item, "failingSince"),
        failed_attempts: number_attr(item, "failedAttempts").unwrap_or(0).max(0) as u64,
        last_success_at: number_attr(item, "lastSuccessAt"),
        noticed_at: number_attr(item, "noticedAt"),
    }
}

/// The counter attributes of an hourly stats item and their values in `c`.
fn stat_counters(c: &HealthCounts) -> Vec<(String, u64)> {
    let f = &c.failures;
    let mut counters: Vec<(String, u64)> = [
        ("requestCount", c.attempts),
        ("successCount", c.successes),
        ("f4xx", f.status_4xx),
        ("f5xx", f.status_5xx),
        ("fOther", f.status_other),
        ("fTimeout", f.timeout),
        ("fConnect", f.connect),
        ("fTls", f.tls),
        ("fBlocked", f.blocked),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    counters.extend(
        c.durations
            .iter()
            .enumerate()
            .map(|(i, count)| (format!("d{i}"), *count)),
    );
    counters
}

fn stat_counts(item: &Item) -> HealthCounts {
    let number = |name: &str| number_attr(item, name).unwrap_or(0).max(0) as u64;
    let mut c = HealthCounts {
        attempts: number("requestCount"),
        successes: number("successCount"),
        last_success_at: number_attr(item, "lastSuccessAt"),
        last_failure_at: number_attr(item, "lastFailureAt"),
        ..HealthCounts::default()
    };
    let f = &mut c.failures;
    f.status_4xx = number("f4xx");
    f.status_5xx = number("f5xx");
    f.status_other = number("fOther");
    f.timeout = number("fTimeout");
    f.connect = number("fConnect");
    f.tls = number("fTls");
    f.blocked = number("fBlocked");
    for (i, slot) in c.durations.iter_mut().enumerate() {
        *slot = number(&format!("d{i}"));
    }
    c
}

impl DynamoStore {
    /// Adds one hook's attempts of one hour in one write. The latest success and failure
    /// times only move forward: should another sender have written a later one, the counters
    /// are added alone and each time is set where it is later.
    async fn add_hour(&self, c: &HourlyCount) -> Result<(), StoreError> {
        let counters: Vec<(String, u64)> = stat_counters(&c.counts)
            .into_iter()
            .filter(|(_, value)| *value > 0)
            .collect();
        let adds = counters
            .iter()
            .enumerate()
            .map(|(i, (name, _))| format!("{name} :c{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let lasts: Vec<(&str, &str, i64)> = [
            ("lastSuccessAt", ":ls", c.counts.last_success_at),
            ("lastFailureAt", ":lf", c.counts.last_failure_at),
        ]
        .into_iter()
        .filter_map(|(name, value, at)| at.map(|at| (name, value, at)))
        .collect();
        let expires = n((c.hour + crate::domain::health::MAX_HOURS + 25) * 3600);
        let update = |sets: &[(&str, &str, i64)], add: bool| {
            let mut expression = String::new();
            if add && !adds.is_empty() {
                expression = format!("ADD {adds} ");
            }
            expression.push_str("SET expiresAt = :exp");
            for (name, value, _) in sets {
                expression.push_str(&format!(", {name} = {value}"));
            }
            let mut request = self
                .update_item()
                .table_name(&self.deliveries_table)
                .key("pk", s(c.hook_id.as_str()))
                .key("sk", s(&stats_sk(c.hour)))
                .update_expression(expression)
                .expression_attribute_values(":exp", expires.clone());
            if add {
                for (i, (_, value)) in counters.iter().enumerate() {
                    request =
                        request.expression_attribute_values(format!(":c{i}"), n(*value as i64));
                }
            }
            let conditions: Vec<String> = sets
                .iter()
                .map(|(name, value, _)| {
                    format!("(attribute_not_exists({name}) OR {name} < {value})")
                })
                .collect();
            for (_, value, at) in sets {
                request = request.expression_attribute_values(*value, n(*at));
            }
            if !conditions.is_empty() {
                request = request.condition_expression(conditions.join(" AND "));
            }
            request.send()
        };
        match update(&lasts, true).await {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {}
            Err(e) => return Err(unavailable(e)),
        }
        update(&[], true).await.map_err(unavailable)?;
        for last in &lasts {
            match update(std::slice::from_ref(last), false).await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }
}
