//! The management API (admin token): hooks CRUD, the event catalog and the delivery log.

use super::auth::Access;
use super::{ApiError, ApiRequest, ApiResponse, Tokens, json_body};
use crate::catalog::{EventName, catalog_json};
use crate::clock::now_ms;
use crate::delivery::{Delivery, DeliveryId, DeliveryStatus, Job};
use crate::event::MAX_BODY_BYTES;
use crate::event::sample_event;
use crate::hook::{
    Hook, HookId, HookPatch, HookUrl, NewHook, TestRequest, UrlPolicy, parse_rotation,
};
use crate::net::client::DeliveryClient;
use crate::ports::{JobQueue, Store, StoreError};
use crate::signing::sign;
use crate::validation::ValidationError;
use http::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

pub struct ManagementHandler {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    client: DeliveryClient,
    tokens: Tokens,
    url_policy: UrlPolicy,
}

impl ManagementHandler {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        tokens: Tokens,
        url_policy: UrlPolicy,
    ) -> Self {
        Self {
            store,
            queue,
            client,
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
                | [
                    "api",
                    "hooks",
                    _,
                    "recent-logs" | "signing-key" | "test" | "recover"
                ]
                | ["api", "hooks", _, "deliveries", _, "retry"]
        );
        if !known {
            return Err(ApiError::NotFound("route not found"));
        }
        self.tokens.authorize(&req.headers, Access::Admin)?;
        if req.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
        match (&req.method, segments.as_slice()) {
            (&Method::GET, ["api", "hook-events"]) => {
                Ok(ApiResponse::json(StatusCode::OK, &catalog_json()))
            }
            (&Method::GET, ["api", "hooks"]) => self.list(&req).await,
            (&Method::POST, ["api", "hooks"]) => self.create(&req).await,
            (&Method::GET, ["api", "hooks", id]) => self.get(id, &req).await,
            (&Method::PATCH, ["api", "hooks", id]) => self.update(id, &req).await,
            (&Method::DELETE, ["api", "hooks", id]) => self.delete(id).await,
            (&Method::GET, ["api", "hooks", id, "recent-logs"]) => self.recent_logs(id, &req).await,
            (&Method::PATCH, ["api", "hooks", id, "signing-key"]) => {
                self.rotate_key(id, &req).await
            }
            (&Method::POST, ["api", "hooks", id, "test"]) => self.test(id, &req).await,
            (&Method::POST, ["api", "hooks", id, "deliveries", delivery, "retry"]) => {
                self.retry(id, delivery).await
            }
            (&Method::POST, ["api", "hooks", id, "recover"]) => self.recover(id, &req).await,
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    async fn list(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let page = Page::from_query(req)?;
        let hooks = self.store.list_hooks().await?;
        let total = hooks.len();
        let with_stats = wants_stats(req);
        let mut items = Vec::new();
        for hook in page.slice(&hooks) {
            items.push(self.hook_json(hook, with_stats).await?);
        }
        Ok(ApiResponse::json(StatusCode::OK, &Value::Array(items))
            .with_header("total-number", &total.to_string()))
    }

    async fn create(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = json_body(req)?;
        let new = NewHook::parse(&body, self.url_policy)?;
        self.check_destination(&new.url)?;
        let hook = new.into_hook(now_ms());
        self.store.create_hook(&hook).await?;
        tracing::info!(hook_id = %hook.id, events = hook.events.len(), "hook created");
        Ok(ApiResponse::json(StatusCode::CREATED, &hook.to_json()))
    }

    async fn get(&self, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let hook = self.load(id).await?;
        let json = self.hook_json(&hook, wants_stats(req)).await?;
        Ok(ApiResponse::json(StatusCode::OK, &json))
    }

    /// The hook's JSON, with the last 24 hours' `executionStats` when asked for.
    async fn hook_json(&self, hook: &Hook, with_stats: bool) -> Result<Value, ApiError> {
        let mut json = hook.to_json();
        if with_stats {
            let hour = now_ms().div_euclid(3_600_000);
            let stats = self
                .store
                .execution_stats(&hook.id, hour - 23, hour)
                .await?;
            json["executionStats"] = serde_json::json!({
                "requestCount": stats.request_count,
                "successCount": stats.success_count,
            });
        }
        Ok(json)
    }

    async fn rotate_key(&self, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let grace = parse_rotation(&json_body(req)?)?;
        let current = self.load(id).await?;
        let next = current.rotated(grace, now_ms());
        self.store.update_hook(&current, &next).await?;
        tracing::info!(hook_id = %next.id, grace_secs = grace, "signing key rotated");
        Ok(ApiResponse::json(StatusCode::OK, &next.to_json()))
    }

    /// Sends a signed sample of each event to the hook's (or the given) endpoint, now.
    async fn test(&self, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let test = TestRequest::parse(&json_body(req)?, self.url_policy)?;
        if let Some((url, _)) = &test.config {
            self.check_destination(url)?;
        }
        let hook = self.load(id).await?;
        let (url, headers) = test
            .config
            .unwrap_or_else(|| (hook.url.clone(), hook.headers.clone()));
        for event in test.events {
            let now = time::OffsetDateTime::now_utc();
            let body = sample_event(event, now).delivered_body(&hook.id);
            let at = now_ms();
            let signature = sign(
                &hook.signing_keys(at),
                &DeliveryId::generate().to_string(),
                at / 1000,
                body.as_bytes(),
            );
            let answer = self.client.post(&url, &headers, &signature, &body).await;
            if !answer.succeeded() {
                return Err(ApiError::TestFailed {
                    response_status: answer.status,
                    response_body: answer.body.or(answer.error),
                });
            }
        }
        Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
    }

    /// Re-sends a finished delivery now, with the same `webhook-id`.
    async fn retry(&self, id: &str, delivery: &str) -> Result<ApiResponse, ApiError> {
        let hook = self.load(id).await?;
        let delivery_id =
            DeliveryId::parse(delivery).map_err(|_| ApiError::NotFound("delivery not found"))?;
        let reopened = match self
            .store
            .reopen_delivery(&hook.id, &delivery_id, now_ms())
            .await
        {
            Ok(Some(d)) => d,
            Ok(None) => return Err(ApiError::NotFound("delivery not found")),
            Err(StoreError::Conflict) => return Err(ApiError::DeliveryPending),
            Err(e) => return Err(e.into()),
        };
        self.enqueue_now(&[&reopened]).await?;
        tracing::info!(hook_id = %hook.id, delivery_id = %delivery_id, "delivery re-sent by an operator");
        Ok(ApiResponse::json(
            StatusCode::ACCEPTED,
            &reopened.to_log_json(),
        ))
    }

    /// Re-sends every delivery of the hook that failed (or was dropped) since `since` (unix ms).
    async fn recover(&self, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = json_body(req)?;
        if let Some(unknown) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| k.as_str() != "since"))
        {
            return Err(ValidationError::new(unknown.as_str(), "is not a known field").into());
        }
        let since = body
            .get("since")
            .and_then(Value::as_i64)
            .ok_or_else(|| ValidationError::new("since", "must be unix milliseconds"))?;
        let hook = self.load(id).await?;
        let now = now_ms();
        let failed: Vec<Delivery> = self
            .store
            .list_deliveries(&hook.id, since, now)
            .await?
            .into_iter()
            .filter(|d| matches!(d.status, DeliveryStatus::Error | DeliveryStatus::Dropped))
            .collect();
        let mut reopened = Vec::with_capacity(failed.len());
        for d in &failed {
            match self.store.reopen_delivery(&hook.id, &d.id, now).await {
                Ok(Some(d)) => reopened.push(d),
                Ok(None) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.enqueue_now(&reopened.iter().collect::<Vec<_>>())
            .await?;
        tracing::info!(hook_id = %hook.id, deliveries = reopened.len(), "failed deliveries recovered");
        Ok(ApiResponse::json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "recovered": reopened.len() }),
        ))
    }

    async fn enqueue_now(&self, deliveries: &[&Delivery]) -> Result<(), ApiError> {
        let now = now_ms();
        let jobs: Vec<Job> = deliveries
            .iter()
            .map(|d| Job {
                hook_id: d.hook_id.clone(),
                delivery_id: d.id.clone(),
                attempt: d.attempt_count() + 1,
                due_at: now,
            })
            .collect();
        self.queue.enqueue(&jobs).await?;
        Ok(())
    }

    async fn update(&self, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = json_body(req)?;
        let patch = HookPatch::parse(&body, self.url_policy)?;
        if let Some((url, _)) = &patch.config {
            self.check_destination(url)?;
        }
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

    /// Refuses URLs whose host is a literal address (or `localhost`) the sender may not reach;
    /// the send-time check stays the guarantee for names.
    fn check_destination(&self, url: &HookUrl) -> Result<(), ApiError> {
        self.client.policy().check_url(url.as_url()).map_err(|_| {
            ValidationError::new("config.url", "destination address is not allowed").into()
        })
    }

    async fn load(&self, id: &str) -> Result<Hook, ApiError> {
        let id = HookId::parse(id).map_err(|_| ApiError::NotFound("hook not found"))?;
        self.store
            .get_hook(&id)
            .await?
            .ok_or(ApiError::NotFound("hook not found"))
    }
}

fn wants_stats(req: &ApiRequest) -> bool {
    req.query_param("includeExecutionStats").as_deref() == Some("true")
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
