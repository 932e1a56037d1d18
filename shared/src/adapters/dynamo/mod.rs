//! The DynamoDB store. Hooks table: the hook item (`sk = HOOK`) plus one subscription item
//! per event (`sk = SUB#<event>`, indexed by `subEvent` in `by-event`), written in one
//! transaction. Deliveries table: one item per delivery keyed by hook and time-sortable id.
//! Keys shared by a deployment (the hook listing, the subscription index, event claims) carry
//! the namespace.
//!
//! One file per port; `item` holds what they share (attribute values, reads, error mapping).

mod checks;
mod claims;
mod deliveries;
mod health;
mod hooks;
mod item;
mod recoveries;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;

pub const SUBSCRIPTION_INDEX: &str = "by-event";
/// Hook items by creation (sparse: subscriptions carry no `listPk`).
pub const LISTING_INDEX: &str = "by-created";

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
}
