//! Recoveries on DynamoDB: one item beside the hook's deliveries, its cursor moved by
//! conditional updates so a step recorded twice counts once.

use super::DynamoStore;
use super::item::{Item, conditional, corrupt, from_item, n, s};
use crate::domain::delivery::DeliveryId;
use crate::domain::hook::HookId;
use crate::domain::recovery::{Recovery, RecoveryId};
use crate::ports::{RecoveryStore, StoreError};
use async_trait::async_trait;

fn recovery_sk(id: &RecoveryId) -> String {
    format!("recovery#{id}")
}

#[async_trait]
impl RecoveryStore for DynamoStore {
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
        match conditional(result)? {
            Some(_) => Ok(()),
            None => Err(StoreError::AlreadyExists),
        }
    }

    async fn get_recovery(
        &self,
        hook: &HookId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError> {
        self.read_item(&self.deliveries_table, hook.as_str(), &recovery_sk(id))
            .await?
            .map(from_item)
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
        Ok(conditional(update.send().await)?.is_some())
    }
}
