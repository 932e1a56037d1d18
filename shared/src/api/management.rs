//! The management API (admin token): hooks CRUD and the delivery log. Each route is an axum
//! handler of [`ManagementHandler`]; the router has checked the token and the method.

use super::bodies::{HookPatch, MISSING_EVENTS, NewHook, TestRequest, parse_rotation};
use super::ingest::PREVIEW_REFUSED;
use super::paging::{
    MAX_PAGE_SIZE, Paging, decode_cursor, decode_hook_cursor, encode_cursor, encode_hook_cursor,
    next_link,
};
use super::views::{catalog_json, delivery_log_json, health_json, hook_json, recovery_json};
use super::{ApiError, JsonBody, query_param};
use crate::app::sync_call::MAX_SYNC_HOOKS;
use crate::domain::catalog::EventName;
use crate::domain::clock::now_ms;
use crate::domain::delivery::{Delivery, DeliveryId, DeliveryStatus, Job};
use crate::domain::health::MAX_HOURS;
use crate::domain::hook::{Hook, HookId, HookMode, HookUrl, UrlPolicy};
use crate::domain::recovery::RecoveryId;
use crate::domain::validation::ValidationError;
use crate::net::client::DeliveryClient;
use crate::operational::{OPERATIONAL_HOOK_ID, operational_hook_id};
use crate::ports::{AttemptRecord, DeliveryFilter, JobQueue, Page, Store, StoreError};
use axum::Json;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::Value;
use std::sync::Arc;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Most hooks `GET /api/hooks` answers without paging parameters (Logto's "all of them");
/// beyond it the answer says it is capped and links to the rest.
pub const MAX_UNPAGED_HOOKS: usize = 10_000;

pub struct ManagementHandler {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    client: DeliveryClient,
    url_policy: UrlPolicy,
    preview_events: bool,
}

type This = State<Arc<ManagementHandler>>;
type Answer = Result<Response, ApiError>;

/// The `{id}` and `{deliveryId}` segments, percent-decoded; one that does not decode to
/// UTF-8 names no hook (or delivery).
pub(crate) struct Ids {
    hook: String,
    delivery: String,
    recovery: Option<String>,
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

    /// `GET /api/hook-events`.
    pub(crate) async fn catalog(State(this): This) -> Json<Value> {
        Json(catalog_json(this.preview_events))
    }

    /// Refuses a synchronous hook for an event that already has the most it may.
    async fn check_sync_capacity(&self, hook: &Hook) -> Result<(), ApiError> {
        if hook.mode != HookMode::Sync || !hook.enabled {
            return Ok(());
        }
        for event in &hook.events {
            let others = self
                .store
                .subscribers(*event)
                .await?
                .into_iter()
                .filter(|s| s.mode == HookMode::Sync && s.hook_id != hook.id)
                .count();
            if others >= MAX_SYNC_HOOKS {
                return Err(ValidationError::new(
                    "config.mode",
                    format!("{event} already has {MAX_SYNC_HOOKS} synchronous hooks"),
                )
                .into());
            }
        }
        Ok(())
    }

    /// Refuses preview events while `WEBHOOKS_PREVIEW_EVENTS` is off.
    fn check_events(&self, events: &[EventName]) -> Result<(), ApiError> {
        match events.iter().position(|e| e.is_preview()) {
            Some(i) if !self.preview_events => {
                Err(ValidationError::new(format!("events[{i}]"), PREVIEW_REFUSED).into())
            }
            _ => Ok(()),
        }
    }

    /// Hooks oldest first, one page at a time; the total is exact (a count of the listing
    /// index, which holds nothing but hooks). Without `page`, `page_size` or `cursor`, every
    /// hook (up to [`MAX_UNPAGED_HOOKS`]) and no `Total-Number`, as Logto answers.
    pub(crate) async fn list(
        State(this): This,
        uri: Uri,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> Answer {
        let query = query.as_deref();
        if ["page", "page_size", "cursor"]
            .iter()
            .all(|p| query_param(query, p).is_none())
        {
            return this.list_all(&uri, &headers, wants_stats(query)).await;
        }
        let paging = Paging::from_query(query)?;
        let mut after = paging
            .cursor
            .as_deref()
            .map(decode_hook_cursor)
            .transpose()?;
        let mut page = Page::default();
        for number in 1..=paging.page {
            page = this.store.page_hooks(after.as_ref(), paging.size).await?;
            if number < paging.page {
                after = match page.next.take() {
                    Some(next) => Some(next),
                    None => {
                        page = Page::default();
                        break;
                    }
                };
            }
        }
        let total = this.store.count_hooks().await?;
        let with_stats = wants_stats(query);
        let mut items = Vec::with_capacity(page.items.len());
        for hook in &page.items {
            items.push(this.hook_json(hook, with_stats).await?);
        }
        let mut response = Json(Value::Array(items)).into_response();
        let answer = response.headers_mut();
        answer.insert("total-number", total.into());
        if let Some(next) = &page.next
            && let Ok(link) =
                HeaderValue::from_str(&next_link(&uri, &headers, &encode_hook_cursor(next)))
        {
            answer.insert(http::header::LINK, link);
        }
        Ok(response)
    }

    /// Every hook, oldest first, read a page at a time; past [`MAX_UNPAGED_HOOKS`] the answer
    /// is capped (`Total-Number-Is-Capped`) and `Link` names the next page.
    async fn list_all(&self, uri: &Uri, headers: &HeaderMap, with_stats: bool) -> Answer {
        let mut items = Vec::new();
        let mut after = None;
        let next = loop {
            let room = MAX_UNPAGED_HOOKS - items.len();
            let page = self
                .store
                .page_hooks(after.as_ref(), room.min(MAX_PAGE_SIZE))
                .await?;
            for hook in &page.items {
                items.push(self.hook_json(hook, with_stats).await?);
            }
            match page.next {
                Some(next) if items.len() < MAX_UNPAGED_HOOKS => after = Some(next),
                next => break next,
            }
        };
        let mut response = Json(Value::Array(items)).into_response();
        if let Some(next) = next {
            let answer = response.headers_mut();
            answer.insert("total-number-is-capped", HeaderValue::from_static("true"));
            let link = next_link(uri, headers, &encode_hook_cursor(&next));
            if let Ok(link) = HeaderValue::from_str(&link) {
                answer.insert(http::header::LINK, link);
            }
        }
        Ok(response)
    }

    pub(crate) async fn create(State(this): This, JsonBody(body): JsonBody) -> Answer {
        let new = NewHook::parse(&body, this.url_policy).map_err(|e| {
            if e.message == MISSING_EVENTS {
                ApiError::MissingEvents
            } else {
                e.into()
            }
        })?;
        this.check_events(&new.events)?;
        this.check_destination(&new.url)?;
        let hook = new.into_hook(now_ms());
        this.check_sync_capacity(&hook).await?;
        this.store.create_hook(&hook).await?;
        tracing::info!(hook_id = %hook.id, events = hook.events.len(), "hook created");
        Ok((StatusCode::CREATED, Json(hook_json(&hook))).into_response())
    }

    pub(crate) async fn get(State(this): This, ids: Ids, RawQuery(query): RawQuery) -> Answer {
        let hook = this.load(&ids.hook).await?;
        let json = this.hook_json(&hook, wants_stats(query.as_deref())).await?;
        Ok(Json(json).into_response())
    }

    /// The hook's JSON, with the last 24 hours' `executionStats` when asked for.
    async fn hook_json(&self, hook: &Hook, with_stats: bool) -> Result<Value, ApiError> {
        let mut json = hook_json(hook);
        if with_stats {
            let hour = now_ms().div_euclid(3_600_000);
            let hours = self.store.hourly_health(&hook.id, hour - 23, hour).await?;
            let (requests, successes) = hours
                .iter()
                .fold((0, 0), |(r, s), (_, c)| (r + c.attempts, s + c.successes));
            json["executionStats"] = serde_json::json!({
                "requestCount": requests,
                "successCount": successes,
            });
        }
        Ok(json)
    }

    pub(crate) async fn rotate_key(
        State(this): This,
        ids: Ids,
        JsonBody(body): JsonBody,
    ) -> Answer {
        let grace = parse_rotation(&body)?;
        let current = this.load(&ids.hook).await?;
        let next = current.rotated(grace, now_ms());
        this.store.update_hook(&current, &next).await?;
        tracing::info!(hook_id = %next.id, grace_secs = grace, "signing key rotated");
        Ok(Json(hook_json(&next)).into_response())
    }

    /// Sends a signed sample of each event to the hook's (or the given) endpoint, now.
    pub(crate) async fn test(State(this): This, ids: Ids, JsonBody(body): JsonBody) -> Answer {
        let test = TestRequest::parse(&body, this.url_policy)?;
        this.check_events(&test.events)?;
        if let Some((url, _)) = &test.config {
            this.check_destination(url)?;
        }
        let hook = this.load(&ids.hook).await?;
        let (url, headers) = test
            .config
            .unwrap_or_else(|| (hook.url.clone(), hook.headers.clone()));
        crate::app::samples::send(&this.client, &hook, &url, &headers, &test.events).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// Re-sends a finished delivery now, with the same `webhook-id`.
    pub(crate) async fn retry(State(this): This, ids: Ids) -> Answer {
        let hook = this.log_owner(&ids.hook).await?;
        let delivery_id =
            DeliveryId::parse(&ids.delivery).map_err(|_| ApiError::DeliveryNotFound)?;
        let before = this
            .store
            .get_delivery(&hook.id, &delivery_id)
            .await?
            .ok_or(ApiError::DeliveryNotFound)?;
        if before.sync {
            return Err(ValidationError::new(
                "deliveryId",
                "is a synchronous call: its caller decides whether to call again",
            )
            .into());
        }
        let reopened = match this
            .store
            .reopen_delivery(
                &hook.id,
                &delivery_id,
                now_ms(),
                Some(before.attempt_count()),
            )
            .await
        {
            Ok(Some(d)) => d,
            Ok(None) => return Err(ApiError::DeliveryNotFound),
            Err(StoreError::Conflict) => return Err(ApiError::DeliveryPending),
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = this.enqueue_now(&[&reopened]).await {
            // Not queued: put the delivery back as it was, so it is not left pending without
            // a job and the operator can retry.
            let restore = AttemptRecord {
                hook_id: hook.id.clone(),
                delivery_id: delivery_id.clone(),
                expected_attempts: reopened.attempt_count(),
                attempt: None,
                status: before.status,
                next_attempt_at: None,
                reason: before.reason.clone(),
            };
            if let Err(restore_error) = this.store.record_attempt(&restore).await {
                tracing::error!(hook_id = %hook.id, delivery_id = %delivery_id, error = %restore_error, "a re-send that could not be queued is left pending");
            }
            return Err(e);
        }
        tracing::info!(hook_id = %hook.id, delivery_id = %delivery_id, "delivery re-sent by an operator");
        Ok((StatusCode::ACCEPTED, Json(delivery_log_json(&reopened))).into_response())
    }

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

    async fn enqueue_now(&self, deliveries: &[&Delivery]) -> Result<(), ApiError> {
        let now = now_ms();
        let jobs: Vec<Job> = deliveries
            .iter()
            .map(|d| Job::for_delivery(d, now))
            .collect();
        self.queue.enqueue(&jobs).await?;
        Ok(())
    }

    pub(crate) async fn update(State(this): This, ids: Ids, JsonBody(body): JsonBody) -> Answer {
        let patch = HookPatch::parse(&body, this.url_policy)?;
        if let Some(events) = &patch.events {
            this.check_events(events)?;
        }
        if let Some((url, _)) = &patch.config {
            this.check_destination(url)?;
        }
        let current = this.load(&ids.hook).await?;
        let reenabled = !current.enabled && patch.enabled == Some(true);
        let next = patch.apply(&current, now_ms());
        this.check_sync_capacity(&next).await?;
        if reenabled {
            // Its failures so far no longer count towards disabling it again.
            this.store.reset_health(&current.id).await?;
        }
        this.store.update_hook(&current, &next).await?;
        tracing::info!(hook_id = %next.id, reenabled, "hook updated");
        Ok(Json(hook_json(&next)).into_response())
    }

    pub(crate) async fn delete(State(this): This, ids: Ids) -> Answer {
        let hook = this.load(&ids.hook).await?;
        if !this.store.delete_hook(&hook).await? {
            return Err(ApiError::HookNotFound);
        }
        if let Err(e) = this.store.reset_health(&hook.id).await {
            tracing::warn!(hook_id = %hook.id, error = %e, "could not delete the hook's health state");
        }
        tracing::info!(hook_id = %hook.id, "hook deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    }

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

    pub(crate) async fn recent_logs(
        State(this): This,
        ids: Ids,
        uri: Uri,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> Answer {
        let query = query.as_deref();
        let hook = this.log_owner(&ids.hook).await?;
        let paging = Paging::from_query(query)?;
        let now = now_ms();
        // Logto's names (`start_time`, `end_time`, `logKey`) are accepted beside ours.
        let end = time_param(query, "endTime", "end_time")?.unwrap_or(now);
        let start = time_param(query, "startTime", "start_time")?.unwrap_or(end - DAY_MS);
        if start > end {
            return Err(ValidationError::new("startTime", "must not be after endTime").into());
        }
        let event = match (query_param(query, "event"), query_param(query, "logKey")) {
            (None, None) => None,
            (Some(e), _) => {
                Some(EventName::parse_any(&e).ok_or_else(|| {
                    ValidationError::new("event", "is not an event of the catalog")
                })?)
            }
            (None, Some(key)) => Some(
                key.strip_prefix("TriggerHook.")
                    .and_then(EventName::parse_any)
                    .ok_or_else(|| ValidationError::new("logKey", "must be TriggerHook.<event>"))?,
            ),
        };
        let statuses = match query_param(query, "result").as_deref() {
            None => None,
            Some("Success") => Some(vec![DeliveryStatus::Success]),
            Some("Error") => Some(vec![DeliveryStatus::Error, DeliveryStatus::Dropped]),
            Some("Pending") => Some(vec![DeliveryStatus::Pending]),
            Some(_) => {
                return Err(
                    ValidationError::new("result", "must be Success, Error or Pending").into(),
                );
            }
        };
        let filter = DeliveryFilter {
            from_ms: start,
            to_ms: end,
            event,
            statuses,
        };
        // `page` walks from the newest entry (bounded by MAX_PAGE_OFFSET); a cursor goes on
        // from where the previous page ended.
        let mut after = paging.cursor.as_deref().map(decode_cursor).transpose()?;
        let mut before = 0;
        let mut page = Page::default();
        for number in 1..=paging.page {
            page = this
                .store
                .page_deliveries(&hook.id, &filter, after.as_ref(), paging.size)
                .await?;
            if number < paging.page {
                before += page.items.len();
                after = match page.next.take() {
                    Some(next) => Some(next),
                    None => {
                        page = Page::default();
                        break;
                    }
                };
            }
        }
        let logs: Vec<Value> = page.items.iter().map(delivery_log_json).collect();
        let seen = before + logs.len();
        let mut response = Json(Value::Array(logs)).into_response();
        let answer = response.headers_mut();
        match (&page.next, &paging.cursor) {
            (None, None) => {
                answer.insert("total-number", seen.into());
            }
            // Counting the rest would read it all: at least this many, and more to come.
            (next, _) => {
                answer.insert("total-number", (seen + usize::from(next.is_some())).into());
                answer.insert("total-number-is-capped", HeaderValue::from_static("true"));
            }
        }
        if let Some(next) = &page.next
            && let Ok(link) =
                HeaderValue::from_str(&next_link(&uri, &headers, &encode_cursor(next)))
        {
            answer.insert(http::header::LINK, link);
        }
        Ok(response)
    }

    /// Refuses URLs whose host is a literal address (or `localhost`) the sender may not reach;
    /// the send-time check stays the guarantee for names.
    fn check_destination(&self, url: &HookUrl) -> Result<(), ApiError> {
        self.client.policy().check_url(url.as_url()).map_err(|_| {
            ValidationError::new("config.url", "destination address is not allowed").into()
        })
    }

    /// The owner of a delivery log: a stored hook, or the operational endpoint, whose notices
    /// are logged under [`OPERATIONAL_HOOK_ID`] (no hook of that id can exist).
    async fn log_owner(&self, id: &str) -> Result<LogOwner, ApiError> {
        if id == OPERATIONAL_HOOK_ID {
            return Ok(LogOwner {
                id: operational_hook_id(),
            });
        }
        self.load(id).await.map(|h| LogOwner { id: h.id })
    }

    async fn load(&self, id: &str) -> Result<Hook, ApiError> {
        let id = HookId::parse(id).map_err(|_| ApiError::HookNotFound)?;
        self.store
            .get_hook(&id)
            .await?
            .ok_or(ApiError::HookNotFound)
    }
}

/// Whose delivery log a route reads.
struct LogOwner {
    id: HookId,
}

/// `includeExecutionStats` takes the values Logto's `yes()` does.
fn wants_stats(query: Option<&str>) -> bool {
    query_param(query, "includeExecutionStats").is_some_and(|v| {
        ["1", "true", "y", "yes", "yep", "yeah"].contains(&v.to_ascii_lowercase().as_str())
    })
}

/// A time bound by our name or Logto's (our name wins when both are given).
fn time_param(
    query: Option<&str>,
    name: &'static str,
    logto: &'static str,
) -> Result<Option<i64>, ApiError> {
    match ms_param(query, name)? {
        Some(v) => Ok(Some(v)),
        None => ms_param(query, logto),
    }
}

fn ms_param(query: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    query_param(query, name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ValidationError::new(name, "must be unix milliseconds").into())
        })
        .transpose()
}
