//! The delivery log on DynamoDB: one item per delivery, its body deflated when that is smaller.
//! A hook's deliveries spread over [`SHARDS`] partition keys (hook id and a bucket of the
//! delivery id), so one busy hook is not held to one partition's write limit; listings merge
//! the shards newest first. Items written before the spread, under the hook id alone, are still
//! read, changed and listed there until retention removes them.

use super::DynamoStore;
use super::item::{Item, corrupt, n, s, unavailable};
use crate::domain::delivery::{
    Attempt, Delivery, DeliveryId, SUCCESS_CAPTURE_BYTES, truncate_at_char,
};
use crate::domain::event::EventId;
use crate::domain::hook::HookId;
use crate::ports::{
    AttemptRecord, Count, DeliveryFilter, DeliveryLog, EventFields, MAX_COUNT_READ, Page,
    RecordOutcome, StoreError,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::{QueryError, QueryOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure,
    Select, WriteRequest,
};
use futures::{StreamExt, TryStreamExt};
use std::collections::VecDeque;
use std::time::Duration;

/// Partition keys per hook for its deliveries: at 1,000 write units a second per partition,
/// 16 take one hook past 5,000 deliveries a second with room for uneven spread.
pub const SHARDS: u32 = 16;
/// Items one page of a filtered delivery listing may read, per item it shows.
const PAGE_READ_ROUNDS: usize = 10;
/// Bodies from this length are stored deflated when that saves space.
const COMPRESS_FROM: usize = 256;
/// The most a stored body may inflate to (bodies are accepted up to 256 KiB).
const MAX_INFLATED: usize = 1024 * 1024;
/// An attempt's answer longer than this is kept whole in an item of its own (`body#<id>#<n>`,
/// beside the delivery, outside its listing's key range); the delivery keeps its start, so
/// recording a later attempt never rewrites an earlier one's answer.
const INLINE_ANSWER_BYTES: usize = SUCCESS_CAPTURE_BYTES;

/// The partition key of a delivery's item.
pub fn delivery_pk(hook: &HookId, id: &DeliveryId) -> String {
    format!("{hook}#d{:x}", id.bucket(SHARDS))
}

/// Every partition key a hook's deliveries may be under: its shards, then the hook id alone
/// (items written before the spread).
fn delivery_pks(hook: &HookId) -> Vec<String> {
    (0..SHARDS)
        .map(|i| format!("{hook}#d{i:x}"))
        .chain([hook.to_string()])
        .collect()
}

/// What a conditional update did: carried out, or refused with the item it found (`None`
/// when there was none).
enum Updated {
    Done(Box<UpdateItemOutput>),
    Refused(Option<Item>),
}

fn updated(
    result: Result<UpdateItemOutput, SdkError<UpdateItemError>>,
) -> Result<Updated, StoreError> {
    match result {
        Ok(out) => Ok(Updated::Done(Box::new(out))),
        Err(e) => match e.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(failed) => {
                Ok(Updated::Refused(failed.item))
            }
            other => Err(unavailable(other)),
        },
    }
}

impl DynamoStore {
    /// A query of the deliveries in `[low, high]` the filter matches, newest first; the caller
    /// names the partition key as `:h`.
    fn listing_query(
        &self,
        filter: &DeliveryFilter,
        low: &DeliveryId,
        high: &DeliveryId,
    ) -> QueryFluentBuilder {
        let mut conditions = Vec::new();
        let mut query = self
            .client
            .query()
            .table_name(&self.deliveries_table)
            .key_condition_expression("pk = :h AND sk BETWEEN :from AND :to")
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
        query
    }

    /// A delivery as an item: its ids only in the key, its body deflated when that is smaller
    /// (a 1 KB event then fits one write unit with its first attempts).
    fn delivery_item(&self, d: &Delivery) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(d).map_err(corrupt)?;
        item.remove("hookId");
        item.remove("id");
        put_body(&mut item, &d.body);
        item.insert("pk".into(), s(&delivery_pk(&d.hook_id, &d.id)));
        item.insert("sk".into(), s(&d.id.to_string()));
        item.insert("attemptCount".into(), n(d.attempt_count().into()));
        Ok(item)
    }

    /// Writes the delivery unless its id exists; returns the record as stored and whether
    /// this call created it.
    async fn put_if_absent(&self, d: &Delivery) -> Result<(Delivery, bool), StoreError> {
        match self.put_new(self.delivery_item(d)?).await? {
            None => Ok((d.clone(), true)),
            Some(existing) => Ok((delivery_from_item(existing)?, false)),
        }
    }

    /// Puts `item` unless its key exists: `None` when written, else the item that was there.
    async fn put_new(&self, item: Item) -> Result<Option<Item>, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.deliveries_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => failed
                    .item
                    .map(Some)
                    .ok_or_else(|| corrupt("a conflicting item without its attributes")),
                other => Err(unavailable(other)),
            },
        }
    }

    /// Puts every item, 25 to a batch write.
    async fn put_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(unavailable)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.write_deliveries(requests).await
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

/// An attempt as its delivery's item keeps it: a long answer cut to its start (and marked),
/// with the whole answer to keep apart.
fn inline_attempt(
    attempt: &Attempt,
) -> Result<(AttributeValue, Option<(u32, String)>), StoreError> {
    let mut inline = attempt.clone();
    let mut spilled = None;
    if let Some(body) = &mut inline.response_body
        && body.len() > INLINE_ANSWER_BYTES
    {
        spilled = Some((attempt.number, body.clone()));
        truncate_at_char(body, INLINE_ANSWER_BYTES);
    }
    let mut value = serde_dynamo::to_attribute_value(&inline).map_err(corrupt)?;
    if spilled.is_some()
        && let AttributeValue::M(fields) = &mut value
    {
        fields.insert("answerItem".into(), AttributeValue::Bool(true));
    }
    Ok((value, spilled))
}

/// Where an event's fields are kept for the jobs of its deliveries (one item per event).
fn fields_pk(event: &EventId, created_at: i64) -> String {
    format!("fields#{created_at}#{event}")
}
const FIELDS_SK: &str = "fields";

/// The sort key of attempt `number`'s whole answer.
fn answer_sk(id: &DeliveryId, number: u32) -> String {
    format!("body#{id}#{number:03}")
}

/// Sets `body` on an item, deflated when that is smaller.
fn put_body(item: &mut Item, body: &str) {
    if body.len() >= COMPRESS_FROM {
        let deflated = miniz_oxide::deflate::compress_to_vec(body.as_bytes(), 6);
        if deflated.len() < body.len() {
            item.remove("body");
            item.insert(
                "bodyZ".into(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(deflated)),
            );
            return;
        }
    }
    item.insert("body".into(), s(body));
}

/// An item's `body`, whichever way it was stored.
fn take_body(item: &mut Item) -> Result<Option<String>, StoreError> {
    match item.remove("bodyZ") {
        Some(AttributeValue::B(deflated)) => {
            let bytes =
                miniz_oxide::inflate::decompress_to_vec_with_limit(deflated.as_ref(), MAX_INFLATED)
                    .map_err(|e| corrupt(format!("a stored body does not inflate: {e:?}")))?;
            String::from_utf8(bytes).map(Some).map_err(corrupt)
        }
        _ => match item.remove("body") {
            Some(AttributeValue::S(body)) => Ok(Some(body)),
            _ => Ok(None),
        },
    }
}

/// The numbers of the attempts whose whole answer is in an item of its own.
fn spilled_answers(item: &Item) -> Vec<u32> {
    let Some(AttributeValue::L(attempts)) = item.get("attempts") else {
        return Vec::new();
    };
    attempts
        .iter()
        .filter_map(|a| match a {
            AttributeValue::M(fields)
                if matches!(fields.get("answerItem"), Some(AttributeValue::Bool(true))) =>
            {
                match fields.get("number") {
                    Some(AttributeValue::N(number)) => number.parse().ok(),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// The delivery an item holds, and the attempts whose whole answer is elsewhere.
fn with_spilled(item: Item) -> Result<(Delivery, Vec<u32>), StoreError> {
    let spilled = spilled_answers(&item);
    Ok((delivery_from_item(item)?, spilled))
}

/// The delivery an item holds, whichever way its body and ids were stored.
fn delivery_from_item(mut item: Item) -> Result<Delivery, StoreError> {
    if !item.contains_key("hookId")
        && let Some(AttributeValue::S(pk)) = item.get("pk")
    {
        let hook = pk.split_once('#').map_or(pk.as_str(), |(hook, _)| hook);
        item.insert("hookId".into(), s(hook));
    }
    if !item.contains_key("id")
        && let Some(sk) = item.get("sk").cloned()
    {
        item.insert("id".into(), sk);
    }
    if let Some(body) = take_body(&mut item)? {
        item.insert("body".into(), AttributeValue::S(body));
    }
    serde_dynamo::from_item(item).map_err(corrupt)
}

#[async_trait]
impl DeliveryLog for DynamoStore {
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let items = deliveries
            .iter()
            .map(|d| self.delivery_item(d))
            .collect::<Result<Vec<_>, _>>()?;
        self.put_all(items).await
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
                .key("pk", s(&delivery_pk(&d.hook_id, &d.id)))
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
        let sk = id.to_string();
        let mut item = self
            .read_item(&self.deliveries_table, &delivery_pk(hook, id), &sk)
            .await?;
        if item.is_none() {
            item = self
                .read_item(&self.deliveries_table, hook.as_str(), &sk)
                .await?;
        }
        match item {
            Some(item) => {
                let (d, spilled) = with_spilled(item)?;
                Ok(Some(self.with_answers(d, spilled).await?))
            }
            None => Ok(None),
        }
    }

    async fn record_attempt(&self, record: &AttemptRecord) -> Result<RecordOutcome, StoreError> {
        let mut set = vec!["#status = :status"];
        let mut remove = Vec::new();
        let mut update = self
            .update_item()
            .table_name(&self.deliveries_table)
            .condition_expression("#status = :pending AND attemptCount = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(record.status.as_str()))
            .expression_attribute_values(":pending", s("Pending"))
            .expression_attribute_values(":expected", n(record.expected_attempts.into()));
        let mut spilled = None;
        if let Some(attempt) = &record.attempt {
            let (value, long) = inline_attempt(attempt)?;
            spilled = long;
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
        let update = update.update_expression(expression);
        let recorded = self
            .update_delivery(update, &record.hook_id, &record.delivery_id)
            .await?;
        if let Updated::Refused(_) = recorded {
            return Ok(RecordOutcome::AlreadyRecorded);
        }
        self.keep_answer(record, spilled).await?;
        Ok(RecordOutcome::Recorded)
    }

    async fn record_first_attempt(
        &self,
        pending: &Delivery,
        record: &AttemptRecord,
    ) -> Result<RecordOutcome, StoreError> {
        let mut d = pending.clone();
        d.status = record.status;
        d.next_attempt_at = record.next_attempt_at;
        d.reason = record.reason.clone();
        let mut item = self.delivery_item(&d)?;
        let mut spilled = None;
        if let Some(attempt) = &record.attempt {
            let (value, long) = inline_attempt(attempt)?;
            spilled = long;
            item.insert("attempts".into(), AttributeValue::L(vec![value]));
            item.insert("attemptCount".into(), n(1));
        }
        if self.put_new(item).await?.is_some() {
            return Ok(RecordOutcome::AlreadyRecorded);
        }
        self.keep_answer(record, spilled).await?;
        Ok(RecordOutcome::Recorded)
    }

    async fn put_event_fields(&self, events: &[EventFields]) -> Result<(), StoreError> {
        let items = events
            .iter()
            .map(|e| {
                let mut item = Item::new();
                item.insert("pk".into(), s(&fields_pk(&e.event_id, e.created_at)));
                item.insert("sk".into(), s(FIELDS_SK));
                item.insert("expiresAt".into(), n(e.expires_at));
                put_body(&mut item, &e.fields);
                item
            })
            .collect();
        self.put_all(items).await
    }

    async fn event_fields(
        &self,
        event: &EventId,
        created_at: i64,
    ) -> Result<Option<String>, StoreError> {
        match self
            .read_item(
                &self.deliveries_table,
                &fields_pk(event, created_at),
                FIELDS_SK,
            )
            .await?
        {
            Some(mut item) => take_body(&mut item),
            None => Ok(None),
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
        let query = self.listing_query(filter, &low, &high);
        let (found, next) = Merge::new(query, delivery_pks(hook), limit).page().await?;
        let items = futures::stream::iter(found)
            .map(|(d, spilled)| self.with_answers(d, spilled))
            .buffered(8)
            .try_collect()
            .await?;
        Ok(Page { items, next })
    }

    async fn count_deliveries(
        &self,
        hook: &HookId,
        filter: &DeliveryFilter,
        cap: u64,
    ) -> Result<Count, StoreError> {
        let Some((low, high)) = filter.id_range(None) else {
            return Ok(Count {
                counted: 0,
                exact: true,
            });
        };
        let query = self
            .listing_query(filter, &low, &high)
            .select(Select::Count);
        let pks = delivery_pks(hook);
        // The read budget is shared evenly: delivery ids spread evenly over the shards.
        let budget = MAX_COUNT_READ.div_ceil(pks.len() as u64);
        let shards = pks.into_iter().map(|pk| {
            let query = query.clone().expression_attribute_values(":h", s(&pk));
            async move {
                let (mut counted, mut read) = (0u64, 0u64);
                let mut start = None;
                loop {
                    let out = query
                        .clone()
                        .limit((budget - read).clamp(1, i32::MAX as u64) as i32)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(unavailable)?;
                    counted += out.count().max(0) as u64;
                    read += out.scanned_count().max(0) as u64;
                    start = out.last_evaluated_key;
                    let Some(_) = &start else {
                        return Ok::<_, StoreError>(Count {
                            counted,
                            exact: true,
                        });
                    };
                    if read >= budget || counted > cap {
                        return Ok(Count {
                            counted,
                            exact: false,
                        });
                    }
                }
            }
        });
        let counts = futures::future::try_join_all(shards).await?;
        Ok(Count {
            counted: counts.iter().map(|c| c.counted).sum(),
            exact: counts.iter().all(|c| c.exact),
        })
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
        match self.update_delivery(update, hook, id).await? {
            Updated::Done(out) => out.attributes.map(delivery_from_item).transpose(),
            Updated::Refused(Some(_)) => Err(StoreError::Conflict),
            Updated::Refused(None) => Ok(None),
        }
    }
}

impl DynamoStore {
    /// Keeps an attempt's whole answer (`spilled`: its number and text) in its own item. After
    /// the attempt's record: should this write fail, the log shows the answer's start.
    async fn keep_answer(
        &self,
        record: &AttemptRecord,
        spilled: Option<(u32, String)>,
    ) -> Result<(), StoreError> {
        let Some((number, body)) = spilled else {
            return Ok(());
        };
        let mut item = Item::new();
        item.insert(
            "pk".into(),
            s(&delivery_pk(&record.hook_id, &record.delivery_id)),
        );
        item.insert("sk".into(), s(&answer_sk(&record.delivery_id, number)));
        item.insert("expiresAt".into(), n(record.expires_at));
        put_body(&mut item, &body);
        self.client
            .put_item()
            .table_name(&self.deliveries_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Puts the whole answers kept in items of their own (attempts `spilled`) back into `d`.
    async fn with_answers(
        &self,
        mut d: Delivery,
        spilled: Vec<u32>,
    ) -> Result<Delivery, StoreError> {
        if spilled.is_empty() {
            return Ok(d);
        }
        let out = self
            .client
            .query()
            .table_name(&self.deliveries_table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :answers)")
            .expression_attribute_values(":pk", s(&delivery_pk(&d.hook_id, &d.id)))
            .expression_attribute_values(":answers", s(&format!("body#{}#", d.id)))
            .send()
            .await
            .map_err(unavailable)?;
        for mut item in out.items.unwrap_or_default() {
            let number = match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk.rsplit('#').next().and_then(|n| n.parse().ok()),
                _ => None,
            };
            if let (Some(number), Some(body)) = (number, take_body(&mut item)?)
                && spilled.contains(&number)
                && let Some(attempt) = d.attempts.iter_mut().find(|a| a.number == number)
            {
                attempt.response_body = Some(body);
            }
        }
        Ok(d)
    }

    /// Sends a conditional update of a delivery's item, under its shard's key or, when no item
    /// is there, under the hook id alone (an item written before the spread).
    async fn update_delivery(
        &self,
        update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        hook: &HookId,
        id: &DeliveryId,
    ) -> Result<Updated, StoreError> {
        let update = update
            .key("sk", s(&id.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let sharded = updated(
            update
                .clone()
                .key("pk", s(&delivery_pk(hook, id)))
                .send()
                .await,
        )?;
        match sharded {
            Updated::Refused(None) => updated(update.key("pk", s(hook.as_str())).send().await),
            other => Ok(other),
        }
    }
}

/// One partition key's part of a merged listing: what was read and not yet shown, and where
/// its next read starts.
struct Shard {
    pk: String,
    read: VecDeque<(Delivery, Vec<u32>)>,
    /// The key of the last item read, while more may follow.
    start: Option<Item>,
    /// The sort key of that item: anything this shard has not read yet is below it.
    frontier: Option<String>,
    done: bool,
}

/// A page of one hook's deliveries, newest first, merged from its partition keys: each is read
/// a little at a time and an item is shown once no shard can still hold a newer one.
struct Merge {
    query: QueryFluentBuilder,
    shards: Vec<Shard>,
    limit: usize,
    /// Items the page may still read (a selective filter reads more than it shows).
    budget: usize,
}

impl Merge {
    fn new(query: QueryFluentBuilder, pks: Vec<String>, limit: usize) -> Self {
        let shards = pks
            .into_iter()
            .map(|pk| Shard {
                pk,
                read: VecDeque::new(),
                start: None,
                frontier: None,
                done: false,
            })
            .collect::<Vec<_>>();
        Self {
            query,
            budget: PAGE_READ_ROUNDS * limit + shards.len() * 2,
            shards,
            limit,
        }
    }

    /// The page's deliveries (each with the attempts whose whole answer is elsewhere) and the
    /// position after it.
    async fn page(mut self) -> Result<(Vec<(Delivery, Vec<u32>)>, Option<DeliveryId>), StoreError> {
        // First a few items of every shard (ids spread evenly), then more where needed.
        let first = self.limit.div_ceil(self.shards.len()) + 1;
        let reads: Vec<_> = (0..self.shards.len())
            .map(|i| self.read(i, first))
            .collect();
        let results = futures::future::join_all(reads).await;
        for (shard, result) in self.shards.iter_mut().zip(results) {
            shard.take(result.map_err(unavailable)?)?;
        }
        self.budget = self.budget.saturating_sub(first * self.shards.len());
        let mut items: Vec<(Delivery, Vec<u32>)> = Vec::with_capacity(self.limit);
        loop {
            // Anything not read yet is below the highest frontier of an unfinished shard.
            let bound = self
                .shards
                .iter()
                .filter(|s| !s.done)
                .filter_map(|s| s.frontier.clone())
                .max();
            while items.len() < self.limit {
                let Some(best) = self
                    .shards
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.read.front().map(|(d, _)| (i, d.id.to_string())))
                    .max_by(|a, b| a.1.cmp(&b.1))
                else {
                    break;
                };
                if bound.as_ref().is_some_and(|b| best.1 < *b) {
                    break;
                }
                let found = self.shards[best.0]
                    .read
                    .pop_front()
                    .expect("a head was found");
                if items.last().is_none_or(|(last, _)| last.id != found.0.id) {
                    items.push(found);
                }
            }
            let unread = self.shards.iter().any(|s| !s.done || !s.read.is_empty());
            if items.len() >= self.limit {
                let next = unread
                    .then(|| items.last().map(|(d, _)| d.id.clone()))
                    .flatten();
                return Ok((items, next));
            }
            let Some(bound) = bound else {
                return Ok((items, None));
            };
            if self.budget == 0 {
                // Everything from the bound up was shown: the next page starts below it.
                let next = DeliveryId::parse(&bound).map_err(corrupt)?;
                return Ok((items, Some(next)));
            }
            // Read on, at once, every unfinished shard that may hold an item newer than the
            // newest one read: a share of what the page still needs each.
            let newest_read = self
                .shards
                .iter()
                .filter_map(|s| s.read.front().map(|(d, _)| d.id.to_string()))
                .max();
            let next: Vec<usize> = self
                .shards
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.done)
                .filter(|(_, s)| match (&s.frontier, &newest_read) {
                    (Some(frontier), Some(newest)) => frontier > newest,
                    _ => true,
                })
                .map(|(i, _)| i)
                .collect();
            let unfinished = self.shards.iter().filter(|s| !s.done).count().max(1);
            let want =
                ((self.limit - items.len()).div_ceil(unfinished) + 1).clamp(2, self.budget.max(2));
            let reads: Vec<_> = next.iter().map(|&i| self.read(i, want)).collect();
            let results = futures::future::join_all(reads).await;
            for (&i, result) in next.iter().zip(results) {
                self.shards[i].take(result.map_err(unavailable)?)?;
            }
            self.budget = self.budget.saturating_sub(want * next.len());
        }
    }

    /// Reads up to `limit` more items of shard `i`.
    fn read(
        &self,
        i: usize,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<QueryOutput, SdkError<QueryError>>> + use<> {
        let shard = &self.shards[i];
        self.query
            .clone()
            .expression_attribute_values(":h", s(&shard.pk))
            .limit(limit as i32)
            .set_exclusive_start_key(shard.start.clone())
            .send()
    }
}

impl Shard {
    /// Keeps what a read returned and where the next one starts.
    fn take(&mut self, out: QueryOutput) -> Result<(), StoreError> {
        for item in out.items.unwrap_or_default() {
            self.read.push_back(with_spilled(item)?);
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => {
                self.frontier = match key.get("sk") {
                    Some(AttributeValue::S(sk)) => Some(sk.clone()),
                    _ => return Err(corrupt("a listing stopped at an item without a sort key")),
                };
                self.start = Some(key);
            }
            _ => {
                self.start = None;
                self.done = true;
            }
        }
        Ok(())
    }
}
