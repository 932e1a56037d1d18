//! Recoveries (admin token): re-sending a hook's failed deliveries of a time window, and how
//! far that got.

use super::management::{Answer, Ids, ManagementHandler, This};
use super::views::recovery_json;
use super::{ApiError, JsonBody};
use crate::domain::clock::now_ms;
use crate::domain::recovery::RecoveryId;
use crate::domain::validation::ValidationError;
use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::Value;

impl ManagementHandler {
    /// Re-sends every delivery of the hook that failed (or was dropped) since `since` (unix ms).
    /// Starts re-sending every delivery of the hook that failed (or was dropped) in
    /// `[since, until]`: 202 with the recovery at once; the steps run from the queue.
    pub(crate) async fn recover(State(this): This, ids: Ids, JsonBody(body): JsonBody) -> Answer {
        if let Some(unknown) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| !["since", "until"].contains(&k.as_str())))
        {
            return Err(ValidationError::new(unknown.as_str(), "is not a known field").into());
        }
        let since = body
            .get("since")
            .and_then(Value::as_i64)
            .ok_or_else(|| ValidationError::new("since", "must be unix milliseconds"))?;
        let now = now_ms();
        let until = match body.get("until") {
            None | Some(Value::Null) => now,
            Some(v) => v.as_i64().filter(|u| *u >= since).ok_or_else(|| {
                ValidationError::new("until", "must be unix milliseconds, not before since")
            })?,
        };
        let hook = this.log_owner(&ids.hook).await?;
        let recovery = crate::app::recovery::start(
            this.store.as_ref(),
            this.queue.as_ref(),
            &hook.id,
            since,
            until,
        )
        .await?;
        Ok((StatusCode::ACCEPTED, Json(recovery_json(&recovery))).into_response())
    }

    /// `GET /api/hooks/{id}/recoveries/{recoveryId}`: a recovery's progress.
    pub(crate) async fn recovery(State(this): This, ids: Ids) -> Answer {
        let hook = this.log_owner(&ids.hook).await?;
        let id = ids
            .recovery
            .as_deref()
            .and_then(|r| RecoveryId::parse(r).ok())
            .ok_or(ApiError::RecoveryNotFound)?;
        let recovery = this
            .store
            .get_recovery(&hook.id, &id)
            .await?
            .ok_or(ApiError::RecoveryNotFound)?;
        Ok(Json(recovery_json(&recovery)).into_response())
    }
}
