//! The management API (admin token): the handler every management route shares, the path
//! segments they name and the lookups they start with. Each route is an axum handler of
//! [`ManagementHandler`], in the file of its resource: [`hooks`](super::hooks),
//! [`logs`](super::logs), [`stats`](super::stats), [`recoveries`](super::recoveries) and
//! [`hook_events`](super::hook_events). The router has checked the token and the method.

use super::ApiError;
use crate::domain::hook::{Hook, HookId, UrlPolicy};
use crate::net::client::DeliveryClient;
use crate::operational::{OPERATIONAL_HOOK_ID, operational_hook_id};
use crate::ports::{JobQueue, Store};
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::response::Response;
use http::request::Parts;
use std::sync::Arc;

pub struct ManagementHandler {
    pub(super) store: Arc<dyn Store>,
    pub(super) queue: Arc<dyn JobQueue>,
    pub(super) client: DeliveryClient,
    pub(super) url_policy: UrlPolicy,
    pub(super) preview_events: bool,
}

pub(super) type This = State<Arc<ManagementHandler>>;
pub(super) type Answer = Result<Response, ApiError>;

/// The `{id}` and `{deliveryId}` segments, percent-decoded; one that does not decode to
/// UTF-8 names no hook (or delivery).
pub(crate) struct Ids {
    pub(super) hook: String,
    pub(super) delivery: String,
    pub(super) recovery: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| match e {
                RawPathParamsRejection::InvalidUtf8InPathParam(e)
                    if e.body_text().contains("deliveryId") =>
                {
                    ApiError::DeliveryNotFound
                }
                RawPathParamsRejection::InvalidUtf8InPathParam(e)
                    if e.body_text().contains("recoveryId") =>
                {
                    ApiError::RecoveryNotFound
                }
                _ => ApiError::HookNotFound,
            })?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        Ok(Ids {
            hook: get("id"),
            delivery: get("deliveryId"),
            recovery: params
                .iter()
                .find(|(k, _)| *k == "recoveryId")
                .map(|(_, v)| v.to_string()),
        })
    }
}

impl ManagementHandler {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        url_policy: UrlPolicy,
        preview_events: bool,
    ) -> Self {
        Self {
            store,
            queue,
            client,
            url_policy,
            preview_events,
        }
    }

    /// The owner of a delivery log: a stored hook, or the operational endpoint, whose notices
    /// are logged under [`OPERATIONAL_HOOK_ID`] (no hook of that id can exist).
    pub(super) async fn log_owner(&self, id: &str) -> Result<LogOwner, ApiError> {
        if id == OPERATIONAL_HOOK_ID {
            return Ok(LogOwner {
                id: operational_hook_id(),
            });
        }
        self.load(id).await.map(|h| LogOwner { id: h.id })
    }

    pub(super) async fn load(&self, id: &str) -> Result<Hook, ApiError> {
        let id = HookId::parse(id).map_err(|_| ApiError::HookNotFound)?;
        self.store
            .get_hook(&id)
            .await?
            .ok_or(ApiError::HookNotFound)
    }
}

/// Whose delivery log a route reads.
pub(super) struct LogOwner {
    pub(super) id: HookId,
}
