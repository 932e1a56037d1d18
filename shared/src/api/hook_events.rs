//! `GET /api/hook-events`: the event catalog.

use super::management::{ManagementHandler, This};
use super::views::catalog_json;
use axum::Json;
use axum::extract::State;
use serde_json::Value;

impl ManagementHandler {
    /// `GET /api/hook-events`.
    pub(crate) async fn catalog(State(this): This) -> Json<Value> {
        Json(catalog_json(this.preview_events))
    }
}
