//! A hook's delivery health (admin token).

use super::management::{Answer, Ids, ManagementHandler, This};
use super::views::health_json;
use super::{DAY_MS, ms_param};
use crate::domain::clock::now_ms;
use crate::domain::health::MAX_HOURS;
use crate::domain::validation::ValidationError;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;

impl ManagementHandler {
    /// Health over `[since, until]` (unix ms; the last 24 hours by default, 14 days at most),
    /// from the hourly aggregates the sender keeps.
    pub(crate) async fn stats(State(this): This, ids: Ids, RawQuery(query): RawQuery) -> Answer {
        let query = query.as_deref();
        let hook = this.log_owner(&ids.hook).await?;
        let until = ms_param(query, "until")?.unwrap_or_else(now_ms);
        let since = ms_param(query, "since")?.unwrap_or(until - DAY_MS);
        if since > until {
            return Err(ValidationError::new("since", "must not be after until").into());
        }
        let (first, last) = (since.div_euclid(3_600_000), until.div_euclid(3_600_000));
        if last - first > MAX_HOURS {
            return Err(ValidationError::new("since", "must be within 14 days of until").into());
        }
        let (hours, state) = tokio::try_join!(
            this.store.hourly_health(&hook.id, first, last),
            this.store.hook_health(&hook.id)
        )?;
        let mut json = health_json(&hook.id, since, until, &hours);
        json["failingSince"] = serde_json::json!(state.failing_since);
        json["failedAttemptsSinceSuccess"] = state.failed_attempts.into();
        Ok(Json(json).into_response())
    }
}
