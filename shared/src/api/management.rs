//! The management API (admin token): hooks CRUD, the event catalog and the delivery log.

use super::auth::Access;
use super::{ApiError, ApiRequest, ApiResponse, Tokens, json_body};
use crate::catalog::{EventName, catalog_json};
use crate::clock::now_ms;
use crate::delivery::Delivery;
use crate::hook::{HookId, HookPatch, NewHook, UrlPolicy};
use crate::ports::Store;
use crate::validation::ValidationError;
use http::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

pub struct ManagementHandler {
    store: Arc<dyn Store>,
    tokens: Tokens,
    url_policy: UrlPolicy,
}

impl ManagementHandler {
    pub fn new(store: Arc<dyn Store>, tokens: Tokens, url_policy: UrlPolicy) -> Self {
        Self {
            store,
            tokens,
            url_policy,
        }
    }

    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        self.route(req).await.into()
    }

    async fn route(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        let segments = req.segments();
        let known = matches!(
            segments.as_slice(),
            ["api", "hook-events"]
                | ["api", "hooks"]
                | ["api", "hooks", _]
                | ["api", "hooks", _, "recent-logs"]
        );
        if !known {
            return Err(ApiError::NotFound("route not found"));
        }
        self.tokens.authorize(&req.headers, Access::Admin)?;
        match (&req.method, segments.as_slice()) {
            (&Method::GET, ["api", "hook-events"]) => {
                Ok(ApiResponse::json(StatusCode::OK, &catalog_json()))
            }
            (&Method::GET, ["api", "hooks"]) => self.list(&req).await,
            (&Method::POST, ["api", "hooks"]) => self.create(&req).await,
            (&Method::GET, ["api", "hooks", id]) => self.get(id).await,
            (&Method::PATCH, ["api", "hooks", id]) => self.update(id, &req).await,
            (&Method::DELETE, ["api", "hooks", id]) => self.delete(id).await,
            (&Method::GET, ["api", "hooks", id, "recent-logs"]) => self.recent_logs(id, &req).await,
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    async fn list(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let page = Page::from_query(req)?;
        let hooks = self.store.list_hooks().await?;
        let total = hooks.len();
        let items: Vec<Value> = page.slice(&hooks).iter().map(|h| h.to_json()).collect();
        Ok(ApiResponse::json(StatusCode::OK, &Value::Array(items))
            .with_header("total-number", &total.to_string()))
    }

    async fn create(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = json_body(req)?;
        let hook = NewHook::parse(&body, self.url_policy)?.into_hook(now_ms());
        self.store.create_hook(&hook).await?;
        tracing::info!(hook_id = %hook.id, events = hook.events.len(), "hook created");
        Ok(ApiResponse::json(StatusCode::CREATED, &hook.to_json()))
    }

    async fn get(&self, id: &str) -> Result<ApiResponse, ApiError> {
        let hook = self.load(id).await?;
        Ok(ApiResponse::json(StatusCode::OK, &hook.to_json()))
    }

    async fn update(&self, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = json_body(req)?;
        let patch = HookPatch::parse(&body, self.url_policy)?;
        let current = self.load(id).await?;
        let next = patch.apply(&current, now_ms());
        self.store.update_hook(&current, &next).await?;
        tracing::info!(hook_id = %next.id, "hook updated");
        Ok(ApiResponse::json(StatusCode::OK, &next.to_json()))
    }

    async fn delete(&self, id: &str) -> Result<ApiResponse, ApiError> {
        let hook = self.load(id).await?;
        if !self.store.delete_hook(&hook).await? {
            return Err(ApiError::NotFound("hook not found"));
        }
        tracing::info!(hook_id = %hook.id, "hook deleted");
        Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
    }

    async fn recent_logs(&self, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let hook = self.load(id).await?;
        let page = Page::from_query(req)?;
        let now = now_ms();
        let end = ms_param(req, "endTime")?.unwrap_or(now);
        let start = ms_param(req, "startTime")?.unwrap_or(end - DAY_MS);
        let event =
            match req.query_param("event") {
                None => None,
                Some(e) => Some(EventName::parse(&e).ok_or_else(|| {
                    ValidationError::new("event", "is not an event of the catalog")
                })?),
            };
        let result = match req.query_param("result").as_deref() {
            None => None,
            Some(r @ ("Success" | "Error" | "Pending")) => Some(r.to_string()),
            Some(_) => {
                return Err(
                    ValidationError::new("result", "must be Success, Error or Pending").into(),
                );
            }
        };
        let deliveries: Vec<Delivery> = self
            .store
            .list_deliveries(&hook.id, start, end)
            .await?
            .into_iter()
            .filter(|d| event.is_none_or(|e| d.event == e))
            .collect();
        let logs: Vec<Value> = deliveries
            .iter()
            .map(Delivery::to_log_json)
            .filter(|l| result.as_deref().is_none_or(|r| l["result"] == r))
            .collect();
        let total = logs.len();
        Ok(
            ApiResponse::json(StatusCode::OK, &Value::Array(page.slice(&logs).to_vec()))
                .with_header("total-number", &total.to_string()),
        )
    }

    async fn load(&self, id: &str) -> Result<crate::hook::Hook, ApiError> {
        let id = HookId::parse(id).map_err(|_| ApiError::NotFound("hook not found"))?;
        self.store
            .get_hook(&id)
            .await?
            .ok_or(ApiError::NotFound("hook not found"))
    }
}

fn ms_param(req: &ApiRequest, name: &str) -> Result<Option<i64>, ApiError> {
    req.query_param(name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ValidationError::new(name, "must be unix milliseconds").into())
        })
        .transpose()
}

/// `page` (from 1) and `page_size` (1 to 100) query parameters.
struct Page {
    page: usize,
    size: usize,
}

impl Page {
    fn from_query(req: &ApiRequest) -> Result<Self, ApiError> {
        let parse = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
            match req.query_param(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        ValidationError::new(name, format!("must be an integer from 1 to {max}"))
                            .into()
                    }),
            }
        };
        Ok(Self {
            page: parse("page", 1, 1_000_000)?,
            size: parse("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
        })
    }

    fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.page - 1).saturating_mul(self.size).min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        &items[start..end]
    }
}
