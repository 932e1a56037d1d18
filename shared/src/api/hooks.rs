//! The hooks (admin token): create, read, list, update and delete, the signing key's
//! rotation and the test button.

use super::bodies::{HookPatch, MISSING_EVENTS, NewHook, TestRequest, parse_rotation};
use super::ingest::PREVIEW_REFUSED;
use super::management::{Answer, Ids, ManagementHandler, This};
use super::paging::{MAX_PAGE_SIZE, Paging, decode_hook_cursor, encode_hook_cursor, next_link};
use super::views::hook_json;
use super::{ApiError, JsonBody, query_param};
use crate::app::sync_call::MAX_SYNC_HOOKS;
use crate::domain::catalog::EventName;
use crate::domain::clock::now_ms;
use crate::domain::hook::{Hook, HookId, HookMode, HookUrl};
use crate::domain::validation::ValidationError;
use crate::operational::operational_hook_id;
use crate::ports::{Page, StoreError};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::Value;

/// Most hooks `GET /api/hooks` answers without paging parameters (Logto's "all of them");
/// beyond it the answer says it is capped and links to the rest.
pub const MAX_UNPAGED_HOOKS: usize = 10_000;

impl ManagementHandler {
    /// Hooks newest first, one page at a time; the total is exact (a count of the listing
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

    /// Every hook, newest first, read a page at a time; past [`MAX_UNPAGED_HOOKS`] the answer
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
        this.create_hook(&body, HookId::generate()).await
    }

    /// `PUT /api/hooks/{id}`: creates the hook under an id the caller chooses (a Logto hook's
    /// own, so receivers checking `hookId` see no change); 409 when the id is taken.
    pub(crate) async fn create_with_id(
        State(this): This,
        ids: Ids,
        JsonBody(body): JsonBody,
    ) -> Answer {
        let id = HookId::parse(&ids.hook)?;
        if id == operational_hook_id() {
            return Err(ValidationError::new("id", "is reserved for operational notices").into());
        }
        this.create_hook(&body, id).await
    }

    async fn create_hook(&self, body: &Value, id: HookId) -> Answer {
        let new = NewHook::parse(body, self.url_policy).map_err(|e| {
            if e.message == MISSING_EVENTS {
                ApiError::MissingEvents
            } else {
                e.into()
            }
        })?;
        self.check_events(&new.events)?;
        if let Some(event) = new.legacy_event {
            self.check_legacy_event(event)?;
        }
        self.check_destination(&new.url)?;
        let hook = new.into_hook_with_id(id, now_ms());
        self.check_sync_capacity(&hook).await?;
        match self.store.create_hook(&hook).await {
            Err(StoreError::AlreadyExists) => return Err(ApiError::HookExists),
            other => other?,
        }
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

    pub(crate) async fn update(State(this): This, ids: Ids, JsonBody(body): JsonBody) -> Answer {
        let patch = HookPatch::parse(&body, this.url_policy)?;
        if let Some(events) = &patch.events {
            this.check_events(events)?;
        }
        if let Some(Some(event)) = patch.legacy_event {
            this.check_legacy_event(event)?;
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

    fn check_legacy_event(&self, event: EventName) -> Result<(), ApiError> {
        if event.is_preview() && !self.preview_events {
            return Err(ValidationError::new("event", PREVIEW_REFUSED).into());
        }
        Ok(())
    }

    /// Refuses URLs whose host is a literal address (or `localhost`) the sender may not reach;
    /// the send-time check stays the guarantee for names.
    fn check_destination(&self, url: &HookUrl) -> Result<(), ApiError> {
        self.client.policy().check_url(url.as_url()).map_err(|_| {
            ValidationError::new("config.url", "destination address is not allowed").into()
        })
    }
}

/// `includeExecutionStats` takes the values Logto's `yes()` does.
fn wants_stats(query: Option<&str>) -> bool {
    query_param(query, "includeExecutionStats").is_some_and(|v| {
        ["1", "true", "y", "yes", "yep", "yeah"].contains(&v.to_ascii_lowercase().as_str())
    })
}
