//! What the AWS adapters would be billed for, counted on the wire by SDK interceptors:
//! DynamoDB request units from item sizes (AWS's sizing rules), SQS requests in 64 KiB
//! chunks. The benchmark turns the counts into a price; nothing here changes a request.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Request units are counted in halves (an eventually consistent read of 4 KB is half a unit).
#[derive(Debug, Default)]
pub struct Usage {
    dynamodb_requests: AtomicU64,
    write_half_units: AtomicU64,
    read_half_units: AtomicU64,
    sqs_requests: AtomicU64,
    sqs_empty_receives: AtomicU64,
    /// DynamoDB operation → (requests, write half units, read half units).
    by_operation: std::sync::Mutex<std::collections::BTreeMap<&'static str, [u64; 3]>>,
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

impl Usage {
    pub fn new() -> Arc<Self> {
        Arc::default()
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

    fn lock_operations(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<&'static str, [u64; 3]>> {
        self.by_operation.lock().unwrap_or_else(|p| p.into_inner())
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

/// What the response of a call still has to tell about its cost.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Read { consistent: bool },
    Update,
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
        if let Some(put) = input.downcast_ref::<PutItemInput>() {
            usage.request("PutItem");
            usage.write(
                "PutItem",
                write_units(put.item.as_ref().map_or(0, item_size)),
            );
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            usage.request("DeleteItem");
            usage.write("DeleteItem", 1);
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            usage.request("BatchWriteItem");
            for request in batch
                .request_items
                .iter()
                .flat_map(|m| m.values())
                .flatten()
            {
                usage.write(
                    "BatchWriteItem",
                    write_units(
                        request
                            .put_request
                            .as_ref()
                            .map_or(0, |p| item_size(&p.item)),
                    ),
                );
            }
        } else if let Some(tx) = input.downcast_ref::<TransactWriteItemsInput>() {
            usage.request("TransactWriteItems");
            for item in tx.transact_items.iter().flatten() {
                let size = item.put.as_ref().map_or(0, |p| item_size(&p.item));
                usage.write("TransactWriteItems", 2 * write_units(size));
            }
        } else if let Some(get) = input.downcast_ref::<GetItemInput>() {
            usage.request("GetItem");
            cfg.interceptor_state().store_put(Pending::Read {
                consistent: get.consistent_read == Some(true),
            });
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            usage.request("Query");
            cfg.interceptor_state().store_put(Pending::Read {
                consistent: query.consistent_read == Some(true),
            });
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            usage.request("UpdateItem");
            cfg.interceptor_state().store_put(Pending::Update);
        } else {
            usage.request("other");
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
        let pending = cfg.load::<Pending>().copied();
        let consistent = matches!(pending, Some(Pending::Read { consistent: true }));
        let Some(outcome) = context.output_or_error() else {
            return Ok(());
        };
        let Ok(output) = outcome else {
            // A refused conditional update still costs a unit.
            if matches!(pending, Some(Pending::Update)) {
                usage.write("UpdateItem", 1);
            }
            return Ok(());
        };
        if let Some(get) = output.downcast_ref::<GetItemOutput>() {
            usage.read(
                "GetItem",
                read_half_units(get.item.as_ref().map_or(0, item_size), consistent),
            );
        } else if let Some(query) = output.downcast_ref::<QueryOutput>() {
            let returned: u64 = query.items().iter().map(item_size).sum();
            // Items a filter dropped were read too: count them at the returned items' mean.
            let scanned = query.scanned_count.max(query.count).max(1) as u64;
            let count = (query.count as u64).max(1);
            usage.read(
                "Query",
                read_half_units(returned * scanned / count, consistent),
            );
        } else if let Some(update) = output.downcast_ref::<UpdateItemOutput>() {
            usage.write(
                "UpdateItem",
                write_units(update.attributes.as_ref().map_or(0, item_size)),
            );
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
            .fetch_add(payload.div_ceil(64 * 1024).max(1), Ordering::Relaxed);
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
            let counter = if received.messages().is_empty() {
                &self.0.sqs_empty_receives
            } else {
                &self.0.sqs_requests
            };
            counter.fetch_add(1, Ordering::Relaxed);
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
}
