//! Per-hook counters and failure state on DynamoDB, beside the hook's deliveries: hourly stats
//! items (`stats#<unix hour>`), the failure state (`health`) and the rate limit's next slot
//! (`rate`), each changed by conditional updates that any number of senders can race.

use super::DynamoStore;
use super::item::{Item, conditional, n, number_attr, s, unavailable};
use crate::domain::health::{BatchHealth, HealthCounts, HookHealth};
use crate::domain::hook::HookId;
use crate::ports::{HealthStore, HourlyCount, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

/// Hourly counters live beside a hook's deliveries, under `stats#<unix hour, 10 digits>`.
const STATS_PREFIX: &str = "stats#";
/// A hook's failure state lives beside its deliveries too (below every delivery id).
const HEALTH_SK: &str = "health";
/// And the next free slot of its rate limit.
const RATE_SK: &str = "rate";

fn stats_sk(hour: i64) -> String {
    format!("{STATS_PREFIX}{hour:010}")
}

#[async_trait]
impl HealthStore for DynamoStore {
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
            if conditional(idle)?.is_some() {
                return Ok(now_ms);
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
            if let Some(out) = conditional(busy)? {
                let next = out
                    .attributes
                    .as_ref()
                    .and_then(|a| number_attr(a, "nextAt"))
                    .ok_or_else(|| StoreError::Corrupt("rate slot without nextAt".into()))?;
                return Ok(next - interval_ms);
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
        match conditional(update.send().await)? {
            Some(out) => {
                let before = health_of(out.attributes.as_ref());
                let after = before.apply(batch);
                Ok((before, after))
            }
            None => {
                let health = self.hook_health(hook).await?;
                Ok((health.clone(), health))
            }
        }
    }

    async fn hook_health(&self, hook: &HookId) -> Result<HookHealth, StoreError> {
        let item = self
            .read_item(&self.deliveries_table, hook.as_str(), HEALTH_SK)
            .await?;
        Ok(health_of(item.as_ref()))
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
        Ok(conditional(claimed)?.is_some())
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
        let mut start: Option<Item> = None;
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
        if conditional(update(&lasts, true).await)?.is_some() {
            return Ok(());
        }
        update(&[], true).await.map_err(unavailable)?;
        for last in &lasts {
            // A later time already on record keeps it.
            conditional(update(std::slice::from_ref(last), false).await)?;
        }
        Ok(())
    }
}
