//! What the AWS adapters would be billed for, counted on the wire by SDK interceptors:
//! DynamoDB request units from item sizes (AWS's sizing rules), SQS requests in 64 KiB
//! chunks. The benchmark turns the counts into a price; nothing here changes a request.
//!
//! The DynamoDB rules followed:
//!
//! - A put, update or delete is billed on the larger of the item before and after (1 KB per
//!   write unit, rounded up, at least one); the before-size comes from a shadow of every item
//!   the meter has seen (written, returned by an update's `ALL_NEW`, read, deleted).
//! - A refused conditional write is billed on the item as it exists (at least one unit).
//! - Each global secondary index whose key attributes the item has, before or after, takes a
//!   write of its own: a put, an update, a delete, or a delete and a put when the index key
//!   changes. The indexes and their keys come from `DescribeTable`.
//! - Transactions cost twice their items (their index writes once).
//! - A read is billed per 4 KB of the data read, rounded up once for the whole response;
//!   a query with a filter read its `ScannedCount` items, not only those returned: the
//!   dropped ones are sized from the shadow of their partition, else at the returned mean.
//! - Eventually consistent reads cost half.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type Item = HashMap<String, AttributeValue>;

/// A table's key attributes (hash, then range) and global secondary indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    pub keys: Vec<String>,
    pub indexes: Vec<IndexSchema>,
}

impl Default for TableSchema {
    fn default() -> Self {
        Self {
            keys: vec!["pk".into(), "sk".into()],
            indexes: Vec::new(),
        }
    }
}

/// A global secondary index: its key attributes (hash, then range) and what it projects
/// (`None`: every attribute; otherwise these besides the keys).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSchema {
    pub name: String,
    pub keys: Vec<String>,
    pub projected: Option<Vec<String>>,
}

/// A table's schema as DescribeTable tells it.
pub async fn describe_table(client: &aws_sdk_dynamodb::Client, table: &str) -> TableSchema {
    use aws_sdk_dynamodb::types::{KeySchemaElement, KeyType, ProjectionType};
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("a table description");
    let keys = |schema: &[KeySchemaElement]| {
        let mut keys: Vec<&KeySchemaElement> = schema.iter().collect();
        keys.sort_by_key(|k| k.key_type != KeyType::Hash);
        keys.iter()
            .map(|k| k.attribute_name.clone())
            .collect::<Vec<_>>()
    };
    TableSchema {
        keys: keys(described.key_schema()),
        indexes: described
            .global_secondary_indexes()
            .iter()
            .map(|index| IndexSchema {
                name: index.index_name().unwrap_or_default().to_string(),
                keys: keys(index.key_schema()),
                projected: match index.projection().and_then(|p| p.projection_type()) {
                    Some(ProjectionType::All) | None => None,
                    Some(_) => Some(
                        index
                            .projection()
                            .map(|p| p.non_key_attributes().to_vec())
                            .unwrap_or_default(),
                    ),
                },
            })
            .collect(),
    }
}

/// Request units are counted in halves (an eventually consistent read of 4 KB is half a unit).
#[derive(Debug, Default)]
pub struct Usage {
    dynamodb_requests: AtomicU64,
    write_half_units: AtomicU64,
    read_half_units: AtomicU64,
    sqs_requests: AtomicU64,
    sqs_empty_receives: AtomicU64,
    /// DynamoDB operation → (requests, write half units, read half units).
    by_operation: Mutex<BTreeMap<&'static str, [u64; 3]>>,
    ledger: Mutex<Ledger>,
}

/// What the meter knows of the tables: their schemas, the last known shape of each item, and
/// the write units taken by each partition.
#[derive(Debug, Default)]
struct Ledger {
    schemas: HashMap<String, TableSchema>,
    /// (table, item key) → the item as last seen.
    shadow: HashMap<(String, String), Shadow>,
    /// (table or `table/index`, partition key value) → write units.
    partitions: HashMap<(String, String), u64>,
}

/// An item as last seen: its size, its partition key value and its entries in the indexes.
#[derive(Debug, Clone, PartialEq)]
struct Shadow {
    size: u64,
    partition: String,
    /// Index name → (index key, index partition key value, projected size).
    indexes: BTreeMap<String, (String, String, u64)>,
}

/// The counts at one moment; subtract two to get an interval's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct UsageCounts {
    pub dynamodb_requests: u64,
    pub write_units: f64,
    pub read_units: f64,
    /// Billed SQS requests (each 64 KiB of a request's payload is one), empty receives aside.
    pub sqs_requests: u64,
    /// Receives that returned nothing: billed too, but a cost of polling per hour, not of a
    /// delivery.
    pub sqs_empty_receives: u64,
}

impl UsageCounts {
    pub fn since(&self, earlier: &UsageCounts) -> UsageCounts {
        UsageCounts {
            dynamodb_requests: self.dynamodb_requests - earlier.dynamodb_requests,
            write_units: self.write_units - earlier.write_units,
            read_units: self.read_units - earlier.read_units,
            sqs_requests: self.sqs_requests - earlier.sqs_requests,
            sqs_empty_receives: self.sqs_empty_receives - earlier.sqs_empty_receives,
        }
    }
}

/// How an item write ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Written {
    /// Stored (a put or an update), with this item after.
    Stored,
    /// Deleted.
    Deleted,
    /// Refused by its condition: billed on the item as it is, nothing changes.
    Refused,
}

impl Usage {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Sizes the items of `table` by `schema` (tables not registered have keys `pk`, `sk` and
    /// no index).
    pub fn register_table(&self, table: &str, schema: TableSchema) {
        self.lock_ledger().schemas.insert(table.to_string(), schema);
    }

    pub fn counts(&self) -> UsageCounts {
        UsageCounts {
            dynamodb_requests: self.dynamodb_requests.load(Ordering::Relaxed),
            write_units: self.write_half_units.load(Ordering::Relaxed) as f64 / 2.0,
            read_units: self.read_half_units.load(Ordering::Relaxed) as f64 / 2.0,
            sqs_requests: self.sqs_requests.load(Ordering::Relaxed),
            sqs_empty_receives: self.sqs_empty_receives.load(Ordering::Relaxed),
        }
    }

    /// DynamoDB requests, write units and read units by operation, so far.
    pub fn by_operation(&self) -> Vec<(&'static str, u64, f64, f64)> {
        self.lock_operations()
            .iter()
            .map(|(op, [requests, w, r])| (*op, *requests, *w as f64 / 2.0, *r as f64 / 2.0))
            .collect()
    }

    /// Write units so far by partition: (table or `table/index`, partition key value, units).
    pub fn partition_writes(&self) -> Vec<(String, String, f64)> {
        self.lock_ledger()
            .partitions
            .iter()
            .map(|((table, key), half)| (table.clone(), key.clone(), *half as f64 / 2.0))
            .collect()
    }

    fn lock_operations(&self) -> MutexGuard<'_, BTreeMap<&'static str, [u64; 3]>> {
        self.by_operation.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self, op: &'static str) {
        self.dynamodb_requests.fetch_add(1, Ordering::Relaxed);
        self.lock_operations().entry(op).or_default()[0] += 1;
    }

    fn write(&self, op: &'static str, units: u64) {
        self.write_half_units
            .fetch_add(units * 2, Ordering::Relaxed);
        self.lock_operations().entry(op).or_default()[1] += units * 2;
    }

    fn read(&self, op: &'static str, half_units: u64) {
        self.read_half_units
            .fetch_add(half_units, Ordering::Relaxed);
        self.lock_operations().entry(op).or_default()[2] += half_units;
    }

    /// Bills one item write of `op` to `table`: `key` holds at least the item's key
    /// attributes, `after` the item as written (a put's item, an update's `ALL_NEW`; `None`
    /// when the update returned nothing: then it is taken as the same size as before).
    /// `factor` is 2 in a transaction.
    fn item_write(
        &self,
        op: &'static str,
        table: &str,
        key: &Item,
        after: Option<&Item>,
        written: Written,
        factor: u64,
    ) {
        let mut ledger = self.lock_ledger();
        let schema = ledger.schemas.get(table).cloned().unwrap_or_default();
        let id = (table.to_string(), key_of(&schema.keys, key));
        let before = ledger.shadow.get(&id).cloned();
        let after = match written {
            Written::Refused | Written::Deleted => None,
            Written::Stored => after
                .map(|item| shadow_of(&schema, item))
                .or_else(|| before.clone()),
        };
        let size = before
            .as_ref()
            .map_or(0, |b| b.size)
            .max(after.as_ref().map_or(0, |a| a.size));
        let units = write_units(size) * factor;
        let partition = before
            .as_ref()
            .or(after.as_ref())
            .map_or_else(|| key_value(key, &schema.keys[0]), |s| s.partition.clone());
        *ledger
            .partitions
            .entry((table.to_string(), partition))
            .or_default() += units * 2;
        let mut index_units = 0;
        if written != Written::Refused {
            for index in &schema.indexes {
                let was = before.as_ref().and_then(|b| b.indexes.get(&index.name));
                let is = after.as_ref().and_then(|a| a.indexes.get(&index.name));
                let writes: Vec<(&String, u64)> = match (was, is) {
                    (None, None) => vec![],
                    (Some((_, p, size)), None) | (None, Some((_, p, size))) => {
                        vec![(p, write_units(*size))]
                    }
                    (Some((k0, p0, s0)), Some((k1, p1, s1))) if k0 == k1 => {
                        let _ = p1;
                        vec![(p0, write_units(*s0.max(s1)))]
                    }
                    (Some((_, p0, s0)), Some((_, p1, s1))) => {
                        vec![(p0, write_units(*s0)), (p1, write_units(*s1))]
                    }
                };
                for (partition, units) in writes {
                    index_units += units;
                    *ledger
                        .partitions
                        .entry((format!("{table}/{}", index.name), partition.clone()))
                        .or_default() += units * 2;
                }
            }
            match after {
                Some(after) => ledger.shadow.insert(id, after),
                None => ledger.shadow.remove(&id),
            };
        }
        drop(ledger);
        self.write(op, units);
        if index_units > 0 {
            self.write("index writes", index_units);
        }
    }

    /// Notes items a read returned (their shape for later writes' before-sizes).
    fn seen(&self, table: &str, items: &[Item]) {
        let mut ledger = self.lock_ledger();
        let schema = ledger.schemas.get(table).cloned().unwrap_or_default();
        for item in items {
            let id = (table.to_string(), key_of(&schema.keys, item));
            ledger.shadow.insert(id, shadow_of(&schema, item));
        }
    }

    /// Half read units of a query of `table`'s partition `partition` (on the table itself, not
    /// an index) that read `scanned` items and returned `returned`.
    fn query_half_units(
        &self,
        table: &str,
        partition: Option<&str>,
        returned: &[Item],
        scanned: u64,
        consistent: bool,
    ) -> u64 {
        let ledger = self.lock_ledger();
        let schema = ledger.schemas.get(table).cloned().unwrap_or_default();
        let returned_size: u64 = returned.iter().map(item_size).sum();
        let dropped = scanned.saturating_sub(returned.len() as u64);
        let mut size = returned_size;
        if dropped > 0 {
            // The items of the partition the meter knows and the query did not return.
            let returned_keys: Vec<String> =
                returned.iter().map(|i| key_of(&schema.keys, i)).collect();
            let known: Vec<u64> = partition.map_or_else(Vec::new, |p| {
                ledger
                    .shadow
                    .iter()
                    .filter(|((t, k), s)| {
                        t == table && s.partition == p && !returned_keys.contains(k)
                    })
                    .map(|(_, s)| s.size)
                    .collect()
            });
            let mean = if !known.is_empty() {
                known.iter().sum::<u64>() / known.len() as u64
            } else if !returned.is_empty() {
                returned_size / returned.len() as u64
            } else {
                0
            };
            size += dropped * mean;
        }
        read_half_units(size, consistent)
    }
}

/// The key of an item (or of a key map) as one string.
fn key_of(keys: &[String], item: &Item) -> String {
    keys.iter()
        .map(|k| key_value(item, k))
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

fn key_value(item: &Item, attribute: &str) -> String {
    match item.get(attribute) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn shadow_of(schema: &TableSchema, item: &Item) -> Shadow {
    let size = item_size(item);
    let indexes = schema
        .indexes
        .iter()
        .filter(|index| index.keys.iter().all(|k| item.contains_key(k)))
        .map(|index| {
            let projected = match &index.projected {
                None => size,
                Some(extra) => item
                    .iter()
                    .filter(|(name, _)| {
                        schema.keys.contains(name)
                            || index.keys.contains(name)
                            || extra.contains(name)
                    })
                    .map(|(name, value)| name.len() as u64 + value_size(value))
                    .sum(),
            };
            (
                index.name.clone(),
                (
                    key_of(&index.keys, item),
                    key_value(item, &index.keys[0]),
                    projected,
                ),
            )
        })
        .collect();
    Shadow {
        size,
        partition: key_value(item, &schema.keys[0]),
        indexes,
    }
}

/// DynamoDB's size of an item: attribute names plus values, per AWS's sizing rules.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                .sum::<u64>()
        }
        AttributeValue::Ss(set) => set.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len() as u64).sum(),
        _ => 1,
    }
}

/// Numbers take one byte per two significant digits, plus one.
fn number_size(n: &str) -> u64 {
    let digits = n
        .trim_start_matches('-')
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .replace('.', "");
    let significant = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1);
    significant.div_ceil(2) as u64 + 1
}

/// Write units of one item write: 1 KB each, rounded up, at least one.
fn write_units(size: u64) -> u64 {
    size.div_ceil(1024).max(1)
}

/// Half read units of reading `size` bytes at once: 4 KB per unit, rounded up, at least one;
/// eventually consistent reads cost half.
fn read_half_units(size: u64, consistent: bool) -> u64 {
    let units = size.div_ceil(4096).max(1);
    if consistent { units * 2 } else { units }
}

/// SQS requests billed for a payload: one per 64 KiB, at least one.
fn sqs_requests(payload: u64) -> u64 {
    payload.div_ceil(64 * 1024).max(1)
}

/// The partition key value a query's key condition names (`pk = :v`, the names and values
/// through the expression's placeholders).
fn query_partition(
    condition: &str,
    names: Option<&HashMap<String, String>>,
    values: Option<&Item>,
    hash_key: &str,
) -> Option<String> {
    condition
        .split(" AND ")
        .chain(condition.split(" and "))
        .find_map(|clause| {
            let (left, right) = clause.split_once('=')?;
            let left = left.trim().trim_start_matches('(');
            let left = names.and_then(|n| n.get(left)).map_or(left, String::as_str);
            if left != hash_key || right.contains('=') {
                return None;
            }
            let placeholder = right.trim().trim_end_matches(')');
            match values?.get(placeholder)? {
                AttributeValue::S(s) => Some(s.clone()),
                AttributeValue::N(n) => Some(n.clone()),
                _ => None,
            }
        })
}

/// What the response of a call still has to tell about its cost.
#[derive(Debug, Clone)]
enum Pending {
    Get {
        table: String,
        consistent: bool,
    },
    Query {
        table: String,
        /// The table's partition read (`None` for an index).
        partition: Option<String>,
        consistent: bool,
    },
    Write {
        op: &'static str,
        table: String,
        key: Item,
        /// A put's item.
        item: Option<Item>,
    },
}

impl Storable for Pending {
    type Storer = StoreReplace<Self>;
}

/// Counts DynamoDB request units.
#[derive(Debug)]
pub struct DynamoDbMeter(pub Arc<Usage>);

impl Intercept for DynamoDbMeter {
    fn name(&self) -> &'static str {
        "DynamoDbMeter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{
            batch_write_item::BatchWriteItemInput, delete_item::DeleteItemInput,
            get_item::GetItemInput, put_item::PutItemInput, query::QueryInput,
            transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
        };
        let usage = &self.0;
        let input = context.input();
        let table = |t: &Option<String>| t.clone().unwrap_or_default();
        let pending = if let Some(put) = input.downcast_ref::<PutItemInput>() {
            usage.request("PutItem");
            let item = put.item.clone().unwrap_or_default();
            Some(Pending::Write {
                op: "PutItem",
                table: table(&put.table_name),
                key: item.clone(),
                item: Some(item),
            })
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            usage.request("DeleteItem");
            Some(Pending::Write {
                op: "DeleteItem",
                table: table(&delete.table_name),
                key: delete.key.clone().unwrap_or_default(),
                item: None,
            })
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            usage.request("UpdateItem");
            Some(Pending::Write {
                op: "UpdateItem",
                table: table(&update.table_name),
                key: update.key.clone().unwrap_or_default(),
                item: None,
            })
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            usage.request("BatchWriteItem");
            for (table, requests) in batch.request_items.iter().flatten() {
                for request in requests {
                    if let Some(put) = &request.put_request {
                        let item = &put.item;
                        usage.item_write(
                            "BatchWriteItem",
                            table,
                            item,
                            Some(item),
                            Written::Stored,
                            1,
                        );
                    } else if let Some(delete) = &request.delete_request {
                        usage.item_write(
                            "BatchWriteItem",
                            table,
                            &delete.key,
                            None,
                            Written::Deleted,
                            1,
                        );
                    }
                }
            }
            None
        } else if let Some(tx) = input.downcast_ref::<TransactWriteItemsInput>() {
            // Metered as sent: a cancelled transaction is rare here and billed alike.
            usage.request("TransactWriteItems");
            for item in tx.transact_items.iter().flatten() {
                let op = "TransactWriteItems";
                if let Some(put) = &item.put {
                    usage.item_write(
                        op,
                        &put.table_name,
                        &put.item,
                        Some(&put.item),
                        Written::Stored,
                        2,
                    );
                } else if let Some(delete) = &item.delete {
                    usage.item_write(
                        op,
                        &delete.table_name,
                        &delete.key,
                        None,
                        Written::Deleted,
                        2,
                    );
                } else if let Some(update) = &item.update {
                    usage.item_write(
                        op,
                        &update.table_name,
                        &update.key,
                        None,
                        Written::Stored,
                        2,
                    );
                } else if let Some(check) = &item.condition_check {
                    usage.item_write(op, &check.table_name, &check.key, None, Written::Refused, 2);
                }
            }
            None
        } else if let Some(get) = input.downcast_ref::<GetItemInput>() {
            usage.request("GetItem");
            Some(Pending::Get {
                table: table(&get.table_name),
                consistent: get.consistent_read == Some(true),
            })
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            usage.request("Query");
            let table = table(&query.table_name);
            let hash_key = usage
                .lock_ledger()
                .schemas
                .get(&table)
                .cloned()
                .unwrap_or_default()
                .keys[0]
                .clone();
            let partition = if query.index_name.is_some() {
                None
            } else {
                query.key_condition_expression.as_deref().and_then(|c| {
                    query_partition(
                        c,
                        query.expression_attribute_names.as_ref(),
                        query.expression_attribute_values.as_ref(),
                        &hash_key,
                    )
                })
            };
            Some(Pending::Query {
                table,
                partition,
                consistent: query.consistent_read == Some(true),
            })
        } else {
            usage.request("other");
            None
        };
        if let Some(pending) = pending {
            cfg.interceptor_state().store_put(pending);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{
            get_item::GetItemOutput, query::QueryOutput, update_item::UpdateItemOutput,
        };
        let usage = &self.0;
        let Some(pending) = cfg.load::<Pending>().cloned() else {
            return Ok(());
        };
        let Some(outcome) = context.output_or_error() else {
            return Ok(());
        };
        let output = match outcome {
            Ok(output) => output,
            Err(e) => {
                // A write the service refused (its condition failed) is billed on the item
                // as it is; a request that never reached the service is not billed.
                if e.as_operation_error().is_some()
                    && let Pending::Write { op, table, key, .. } = &pending
                {
                    usage.item_write(op, table, key, None, Written::Refused, 1);
                }
                return Ok(());
            }
        };
        match pending {
            Pending::Write {
                op,
                table,
                key,
                item,
            } => {
                let returned = output
                    .downcast_ref::<UpdateItemOutput>()
                    .and_then(|u| u.attributes.clone());
                let written = if op == "DeleteItem" {
                    Written::Deleted
                } else {
                    Written::Stored
                };
                usage.item_write(op, &table, &key, item.or(returned).as_ref(), written, 1);
            }
            Pending::Get { table, consistent } => {
                if let Some(get) = output.downcast_ref::<GetItemOutput>() {
                    let item = get.item.clone();
                    usage.read(
                        "GetItem",
                        read_half_units(item.as_ref().map_or(0, item_size), consistent),
                    );
                    if let Some(item) = item {
                        usage.seen(&table, &[item]);
                    }
                }
            }
            Pending::Query {
                table,
                partition,
                consistent,
            } => {
                if let Some(query) = output.downcast_ref::<QueryOutput>() {
                    let scanned = query.scanned_count.max(query.count).max(0) as u64;
                    let half = usage.query_half_units(
                        &table,
                        partition.as_deref(),
                        query.items(),
                        scanned,
                        consistent,
                    );
                    usage.read("Query", half);
                    if partition.is_some() {
                        usage.seen(&table, query.items());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Counts billed SQS requests.
#[derive(Debug)]
pub struct SqsMeter(pub Arc<Usage>);

impl aws_sdk_sqs::config::Intercept for SqsMeter {
    fn name(&self) -> &'static str {
        "SqsMeter"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_sqs::config::ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        use aws_sdk_sqs::operation::{
            send_message::SendMessageInput, send_message_batch::SendMessageBatchInput,
        };
        let input = context.input();
        let payload = if let Some(batch) = input.downcast_ref::<SendMessageBatchInput>() {
            batch
                .entries()
                .iter()
                .map(|e| e.message_body.len() as u64)
                .sum()
        } else if let Some(one) = input.downcast_ref::<SendMessageInput>() {
            one.message_body.as_deref().map_or(0, str::len) as u64
        } else {
            return Ok(());
        };
        self.0
            .sqs_requests
            .fetch_add(sqs_requests(payload), Ordering::Relaxed);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_sdk_sqs::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_sqs::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sqs::config::ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
        let Some(Ok(output)) = context.output_or_error() else {
            return Ok(());
        };
        if let Some(received) = output.downcast_ref::<ReceiveMessageOutput>() {
            if received.messages().is_empty() {
                self.0.sqs_empty_receives.fetch_add(1, Ordering::Relaxed);
            } else {
                // Billed per 64 KiB of what came back.
                let payload: u64 = received
                    .messages()
                    .iter()
                    .map(|m| m.body().map_or(0, str::len) as u64)
                    .sum();
                self.0
                    .sqs_requests
                    .fetch_add(sqs_requests(payload), Ordering::Relaxed);
            }
        } else if output
            .downcast_ref::<aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput>()
            .is_none()
            && output
                .downcast_ref::<aws_sdk_sqs::operation::send_message::SendMessageOutput>()
                .is_none()
        {
            self.0.sqs_requests.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    /// An item of `pk`, `sk` and a `body` of `bytes` bytes (its size is 4 + 4 + 4 + bytes).
    fn item(pk: &str, sk: &str, bytes: usize, extra: &[(&str, &str)]) -> Item {
        let mut item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("body".to_string(), s(&"x".repeat(bytes))),
        ]);
        for (k, v) in extra {
            item.insert(k.to_string(), s(v));
        }
        item
    }

    fn write_units_of(usage: &Usage) -> f64 {
        usage.counts().write_units
    }

    fn with_index() -> Arc<Usage> {
        let usage = Usage::new();
        usage.register_table(
            "t",
            TableSchema {
                keys: vec!["pk".into(), "sk".into()],
                indexes: vec![IndexSchema {
                    name: "by-x".into(),
                    keys: vec!["x".into(), "pk".into()],
                    projected: None,
                }],
            },
        );
        usage
    }

    #[test]
    fn sizes_follow_the_published_rules() {
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("1795704472000"), 6);
        assert_eq!(number_size("-12.50"), 3);
        let item = HashMap::from([
            ("pk".to_string(), AttributeValue::S("hook_1".into())),
            ("n".to_string(), AttributeValue::N("12".into())),
            (
                "l".to_string(),
                AttributeValue::L(vec![AttributeValue::Bool(true)]),
            ),
        ]);
        assert_eq!(item_size(&item), (2 + 6) + (1 + 2) + (1 + 3 + 1 + 1));
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(read_half_units(4097, true), 4);
        assert_eq!(read_half_units(10, false), 1);
    }

    #[test]
    fn an_update_is_billed_on_the_larger_of_before_and_after() {
        let usage = Usage::new();
        let big = item("h", "d", 3000, &[]);
        usage.item_write("PutItem", "t", &big, Some(&big), Written::Stored, 1);
        assert_eq!(write_units_of(&usage), 3.0);
        // The update leaves a small item: still billed on the 3 KB before it.
        let small = item("h", "d", 10, &[]);
        usage.item_write("UpdateItem", "t", &small, Some(&small), Written::Stored, 1);
        assert_eq!(write_units_of(&usage), 6.0);
        // The next one sees the small item before.
        usage.item_write("UpdateItem", "t", &small, Some(&small), Written::Stored, 1);
        assert_eq!(write_units_of(&usage), 7.0);
        // A put replacing an item is billed alike; a read teaches the before-size too.
        let other = item("h", "e", 2000, &[]);
        usage.seen("t", std::slice::from_ref(&other));
        let replaced = item("h", "e", 1, &[]);
        usage.item_write(
            "PutItem",
            "t",
            &replaced,
            Some(&replaced),
            Written::Stored,
            1,
        );
        assert_eq!(write_units_of(&usage), 9.0);
    }

    #[test]
    fn refused_writes_and_deletes_are_billed_on_the_existing_item() {
        let usage = Usage::new();
        let big = item("h", "d", 2500, &[]);
        usage.item_write("PutItem", "t", &big, Some(&big), Written::Stored, 1);
        let small = item("h", "d", 1, &[]);
        usage.item_write("PutItem", "t", &small, Some(&small), Written::Refused, 1);
        assert_eq!(
            write_units_of(&usage),
            6.0,
            "refused: the 3 units of the item as it is"
        );
        usage.item_write("DeleteItem", "t", &small, None, Written::Deleted, 1);
        assert_eq!(
            write_units_of(&usage),
            9.0,
            "the deleted item was still the big one"
        );
        // Gone now, and unknown items still cost a unit.
        usage.item_write("DeleteItem", "t", &small, None, Written::Deleted, 1);
        usage.item_write("UpdateItem", "t", &small, None, Written::Refused, 1);
        assert_eq!(write_units_of(&usage), 11.0);
    }

    #[test]
    fn index_writes_follow_the_index_keys() {
        let usage = with_index();
        // Without the index key: no index write.
        let plain = item("h", "d", 10, &[]);
        usage.item_write("PutItem", "t", &plain, Some(&plain), Written::Stored, 1);
        assert_eq!(write_units_of(&usage), 1.0);
        // Gaining the key: a put on the index.
        let indexed = item("h", "d", 10, &[("x", "a")]);
        usage.item_write(
            "UpdateItem",
            "t",
            &indexed,
            Some(&indexed),
            Written::Stored,
            1,
        );
        assert_eq!(write_units_of(&usage), 3.0);
        // Same key: an update of the index entry.
        usage.item_write(
            "UpdateItem",
            "t",
            &indexed,
            Some(&indexed),
            Written::Stored,
            1,
        );
        assert_eq!(write_units_of(&usage), 5.0);
        // A changed key: a delete and a put on the index.
        let moved = item("h", "d", 10, &[("x", "b")]);
        usage.item_write("UpdateItem", "t", &moved, Some(&moved), Written::Stored, 1);
        assert_eq!(write_units_of(&usage), 8.0);
        // Deleting the item deletes its entry; a refused write touches no index.
        usage.item_write("PutItem", "t", &moved, Some(&moved), Written::Refused, 1);
        assert_eq!(write_units_of(&usage), 9.0);
        usage.item_write("DeleteItem", "t", &moved, None, Written::Deleted, 1);
        assert_eq!(write_units_of(&usage), 11.0);
        let by_index: Vec<_> = usage
            .partition_writes()
            .into_iter()
            .filter(|(t, ..)| t == "t/by-x")
            .collect();
        assert_eq!(by_index.iter().map(|(.., u)| u).sum::<f64>(), 5.0);
        // Transactions double the item's write, not the index's.
        let fresh = item("h", "f", 10, &[("x", "a")]);
        usage.item_write(
            "TransactWriteItems",
            "t",
            &fresh,
            Some(&fresh),
            Written::Stored,
            2,
        );
        assert_eq!(write_units_of(&usage), 14.0);
    }

    #[test]
    fn a_filtered_query_is_billed_on_what_it_scanned() {
        let usage = Usage::new();
        let returned = vec![item("h", "a", 1000, &[])];
        // Nothing known of the partition: the dropped items are sized at the returned mean.
        // 10 × ~1 KB = ~10 KB: 3 units consistent (6 halves), not the returned 1 unit.
        assert_eq!(
            usage.query_half_units("t", Some("h"), &returned, 10, true),
            6
        );
        assert_eq!(
            usage.query_half_units("t", Some("h"), &returned, 1, true),
            2
        );
        // The partition's other items known, larger: sized as they are.
        let known: Vec<Item> = (0..9)
            .map(|i| item("h", &format!("b{i}"), 3000, &[]))
            .collect();
        usage.seen("t", &known);
        usage.seen("t", &returned);
        // 1012 + 9 × 3012 = 28,120 bytes: 7 units, eventually consistent 7 halves.
        assert_eq!(
            usage.query_half_units("t", Some("h"), &returned, 10, false),
            7
        );
        // A count-only query returns nothing and still read them.
        assert_eq!(usage.query_half_units("t", Some("h"), &[], 9, true), 14);
    }

    #[test]
    fn a_query_names_its_partition() {
        let values = HashMap::from([
            (":pk".to_string(), s("hook_1")),
            (":s".to_string(), s("msg_")),
        ]);
        let names = HashMap::from([("#p".to_string(), "pk".to_string())]);
        assert_eq!(
            query_partition(
                "#p = :pk AND begins_with(sk, :s)",
                Some(&names),
                Some(&values),
                "pk"
            ),
            Some("hook_1".to_string())
        );
        assert_eq!(
            query_partition("pk = :pk", None, Some(&values), "pk"),
            Some("hook_1".to_string())
        );
        assert_eq!(query_partition("sk = :s", None, Some(&values), "pk"), None);
    }

    #[test]
    fn sqs_bills_each_64_kib() {
        assert_eq!(sqs_requests(0), 1);
        assert_eq!(sqs_requests(64 * 1024), 1);
        assert_eq!(sqs_requests(64 * 1024 + 1), 2);
        assert_eq!(sqs_requests(10 * 100 * 1024), 16);
    }
}
