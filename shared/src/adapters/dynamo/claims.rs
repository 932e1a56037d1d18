//! Event claims on DynamoDB: one item per event id in the namespace, claimed by a conditional
//! put, taken over by a conditional update, and kept (by TTL) until its window ends.

use super::DynamoStore;
use super::item::{conditional, corrupt, n, number_attr, s, unavailable};
use crate::domain::event::EventId;
use crate::domain::json::RawJson;
use crate::ports::{EventClaim, EventClaims, NAMESPACE, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

const EVENT_SK: &str = "event";

fn event_pk(id: &EventId) -> String {
    format!("{NAMESPACE}#event#{id}")
}

#[async_trait]
impl EventClaims for DynamoStore {
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
        if conditional(fresh)?.is_some() {
            return Ok(EventClaim::Claimed {
                first_claimed_at: now_ms,
                resumed: false,
            });
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
        if let Some(out) = conditional(takeover)? {
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
        let item = self
            .read_item(&self.deliveries_table, &event_pk(id), EVENT_SK)
            .await?;
        match item.as_ref().and_then(|i| i.get("answer")) {
            Some(AttributeValue::S(answer)) => Ok(EventClaim::Accepted(
                RawJson::parse(answer)
                    .ok_or_else(|| StoreError::Corrupt("an event's answer is not JSON".into()))?,
            )),
            _ => Ok(EventClaim::InProgress),
        }
    }

    /// An eventually consistent read (half a read unit): it is asked long after the answer
    /// would have been written, and a stale "no" only leads to the authoritative claim.
    async fn answered(&self, id: &EventId) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(&event_pk(id)))
            .key("sk", s(EVENT_SK))
            .projection_expression("answer")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item.is_some_and(|i| i.contains_key("answer")))
    }

    async fn complete_event(&self, id: &EventId, answer: &RawJson) -> Result<(), StoreError> {
        self.update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(&event_pk(id)))
            .key("sk", s(EVENT_SK))
            .update_expression("SET answer = :a")
            .expression_attribute_values(":a", s(answer.get()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release_event(&self, id: &EventId) -> Result<(), StoreError> {
        let released = self
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", s(&event_pk(id)))
            .key("sk", s(EVENT_SK))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(answer)")
            .update_expression("SET claimedAt = :released")
            .expression_attribute_values(":released", n(0))
            .send()
            .await;
        // Nothing to release (already completed, or never claimed) is fine too.
        conditional(released)?;
        Ok(())
    }
}
