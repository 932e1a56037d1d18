//! The delivery log on DynamoDB: one item per delivery, keyed by hook and time-sortable id,
//! its body deflated when that is smaller.

use super::DynamoStore;
use super::item::{Item, conditional, corrupt, n, s, unavailable};
use crate::domain::delivery::{Delivery, DeliveryId};
use crate::domain::hook::HookId;
use crate::ports::{AttemptRecord, DeliveryFilter, DeliveryLog, Page, RecordOutcome, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure,
    WriteRequest,
};
use futures::{StreamExt, TryStreamExt};
use std::time::Duration;

/// Query rounds one page of a filtered delivery listing may take.
const PAGE_READ_ROUNDS: usize = 10;
/// Bodies from this length are stored deflated when that saves space.
const COMPRESS_FROM: usize = 256;
/// The most a stored body may inflate to (bodies are accepted up to 256 KiB).
const MAX_INFLATED: usize = 1024 * 1024;

impl DynamoStore {
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
}

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

#[async_trait]
impl DeliveryLog for DynamoStore {
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
        self.read_item(&self.deliveries_table, hook.as_str(), &id.to_string())
            .await?
            .map(delivery_from_item)
            .transpose()
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
        Ok(
            match conditional(update.update_expression(expression).send().await)? {
                Some(_) => RecordOutcome::Recorded,
                None => RecordOutcome::AlreadyRecorded,
            },
        )
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
        match conditional(update.send().await)? {
            Some(out) => out.attributes.map(delivery_from_item).transpose(),
            None => match self.get_delivery(hook, id).await? {
                Some(_) => Err(StoreError::Conflict),
                None => Ok(None),
            },
        }
    }
}
