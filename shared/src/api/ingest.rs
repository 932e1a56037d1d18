//! `POST /api/events`: validate, fan out to the enabled subscribed hooks, record one delivery
//! per hook and enqueue its first attempt. 202 only once every job was accepted; 503 otherwise.

use super::auth::Access;
use super::{ApiError, ApiRequest, ApiResponse, Tokens, require_json};
use crate::catalog::EventName;
use crate::clock::now_ms;
use crate::delivery::{Delivery, DeliveryId, DeliveryStatus, Job};
use crate::event::{Event, IngestBody, MAX_BODY_BYTES, parse_ingest};
use crate::hook::HookId;
use crate::ports::{JobQueue, Store};
use http::{Method, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub struct IngestHandler {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    tokens: Tokens,
    retention: Duration,
}

impl IngestHandler {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        tokens: Tokens,
        retention: Duration,
    ) -> Self {
        Self {
            store,
            queue,
            tokens,
            retention,
        }
    }

    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        self.try_handle(req).await.into()
    }

    async fn try_handle(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        if req.path.trim_end_matches('/') != "/api/events" {
            return Err(ApiError::NotFound("route not found"));
        }
        if req.method != Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        self.tokens.authorize(&req.headers, Access::Ingest)?;
        require_json(&req)?;
        if req.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
        let body = parse_ingest(&req.body, time::OffsetDateTime::now_utc())?;
        let counts = self.fan_out(body.events()).await?;
        let answers: Vec<_> = body
            .events()
            .iter()
            .zip(counts)
            .map(|(e, n)| json!({ "id": e.id, "deliveries": n }))
            .collect();
        let answer = match body {
            IngestBody::Single(_) => answers.into_iter().next().expect("one event"),
            IngestBody::Batch(_) => json!(answers),
        };
        Ok(ApiResponse::json(StatusCode::ACCEPTED, &answer))
    }

    /// Records and enqueues every delivery; returns the number per event.
    async fn fan_out(&self, events: &[Event]) -> Result<Vec<usize>, ApiError> {
        let mut subscribers: HashMap<EventName, Vec<HookId>> = HashMap::new();
        for e in events {
            if let std::collections::hash_map::Entry::Vacant(slot) = subscribers.entry(e.name) {
                slot.insert(self.store.subscribers(e.name).await?);
            }
        }
        let now = now_ms();
        let expires_at = (now + self.retention.as_millis() as i64) / 1000;
        let mut deliveries = Vec::new();
        let mut counts = Vec::with_capacity(events.len());
        for e in events {
            let hooks = &subscribers[&e.name];
            counts.push(hooks.len());
            for hook in hooks {
                deliveries.push(Delivery {
                    hook_id: hook.clone(),
                    id: DeliveryId::generate(),
                    event_id: e.id.clone(),
                    event: e.name,
                    body: e.delivered_body(hook),
                    status: DeliveryStatus::Pending,
                    attempts: Vec::new(),
                    next_attempt_at: Some(now),
                    reason: None,
                    event_created_at: e.created_at_ms,
                    created_at: now,
                    expires_at,
                });
            }
        }
        if deliveries.is_empty() {
            return Ok(counts);
        }
        self.store.insert_deliveries(&deliveries).await?;
        let jobs: Vec<Job> = deliveries
            .iter()
            .map(|d| Job {
                hook_id: d.hook_id.clone(),
                delivery_id: d.id.clone(),
                attempt: 1,
                due_at: now,
            })
            .collect();
        self.queue.enqueue(&jobs).await?;
        for (e, n) in events.iter().zip(&counts) {
            tracing::info!(event_id = %e.id, event = %e.name, deliveries = n, "event accepted");
        }
        Ok(counts)
    }
}
