//! The route table. Checks run in one order on every route: unknown path (404), bearer token
//! (401/403), method (405 with `Allow`), then the handler's own (413, 415, 400…). HEAD is
//! answered wherever GET is, without a body, as axum does.

use super::auth::Access;
use super::{ApiError, IngestHandler, ManagementHandler, RelayedBody, Tokens, console};
use crate::app::relay::LogtoSources;
use crate::config::Settings;
use crate::net::client::DeliveryClient;
use crate::ports::{JobQueue, Store};
use axum::Router;
use axum::extract::{FromRef, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use std::sync::Arc;
use tower::ServiceExt;

/// What the handlers share: built once per process, cloned per request.
#[derive(Clone)]
pub struct Api {
    ingest: Arc<IngestHandler>,
    management: Arc<ManagementHandler>,
    tokens: Arc<Tokens>,
    sources: Arc<LogtoSources>,
}

impl Api {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        tokens: Tokens,
        settings: &Settings,
    ) -> Self {
        Self {
            ingest: Arc::new(IngestHandler::new(
                store.clone(),
                queue.clone(),
                client.clone(),
                settings.retention,
                settings.preview_events,
            )),
            management: Arc::new(ManagementHandler::new(
                store,
                queue,
                client,
                settings.url_policy,
                settings.preview_events,
            )),
            tokens: Arc::new(tokens),
            sources: Arc::new(LogtoSources::default()),
        }
    }

    /// Synchronous calls follow the health rules of `health` (the sender's): failures count
    /// toward auto-disable, a 410 disables, notices are sent.
    pub fn with_health(mut self, health: Arc<crate::app::health::Health>) -> Self {
        let ingest = Arc::try_unwrap(self.ingest)
            .unwrap_or_else(|_| panic!("the API is configured before it is shared"));
        self.ingest = Arc::new(ingest.with_health(health));
        self
    }

    /// The Logto instances that may relay events to `POST /api/ingest/logto/{sourceId}`.
    pub fn with_logto_sources(mut self, sources: LogtoSources) -> Self {
        self.sources = Arc::new(sources);
        self
    }
}

impl FromRef<Api> for Arc<IngestHandler> {
    fn from_ref(api: &Api) -> Self {
        api.ingest.clone()
    }
}

impl FromRef<Api> for Arc<ManagementHandler> {
    fn from_ref(api: &Api) -> Self {
        api.management.clone()
    }
}

/// Every route of the API.
pub fn router(api: Api) -> Router {
    type Hooks = ManagementHandler;
    let guard = |access| middleware::from_fn_with_state((api.tokens.clone(), access), authorize);
    let ingest = Router::new()
        .route("/api/events", post(IngestHandler::accept))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(guard(Access::Ingest));
    // Static files: no token (they hold no secret; the pages ask for one).
    let console = Router::new()
        .route("/console", get(console::index))
        .route("/console/", get(console::index))
        .route("/console/{file}", get(console::asset))
        .method_not_allowed_fallback(method_not_allowed);
    // Authenticated by the source's signature, not by a bearer token.
    let relay = Router::new()
        .route("/api/ingest/logto/{sourceId}", post(relay))
        .method_not_allowed_fallback(method_not_allowed);
    let management = Router::new()
        .route("/api/hook-events", get(Hooks::catalog))
        .route("/api/hooks", get(Hooks::list).post(Hooks::create))
        .route(
            "/api/hooks/{id}",
            get(Hooks::get)
                .put(Hooks::create_with_id)
                .patch(Hooks::update)
                .delete(Hooks::delete),
        )
        .route("/api/hooks/{id}/recent-logs", get(Hooks::recent_logs))
        .route("/api/hooks/{id}/stats", get(Hooks::stats))
        .route("/api/hooks/{id}/signing-key", patch(Hooks::rotate_key))
        .route("/api/hooks/{id}/test", post(Hooks::test))
        .route("/api/hooks/{id}/check", post(Hooks::check))
        .route("/api/hooks/{id}/checks", get(Hooks::checks))
        .route(
            "/api/hooks/{id}/deliveries/{deliveryId}/retry",
            post(Hooks::retry),
        )
        .route("/api/hooks/{id}/recover", post(Hooks::recover))
        .route(
            "/api/hooks/{id}/recoveries/{recoveryId}",
            get(Hooks::recovery),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(guard(Access::Admin));
    let exact = ingest
        .merge(console)
        .merge(relay)
        .merge(management)
        .with_state(api)
        .fallback(|| async { ApiError::RouteNotFound });
    exact
        .clone()
        .fallback(move |req: Request| without_trailing_slash(exact.clone(), req))
}

async fn authorize(
    State((tokens, access)): State<(Arc<Tokens>, Access)>,
    req: Request,
    next: Next,
) -> Response {
    match tokens.authorize(req.headers(), access) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn relay(
    State(api): State<Api>,
    source: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: http::HeaderMap,
    RelayedBody(bytes): RelayedBody,
) -> Result<Response, ApiError> {
    // A segment that does not decode names no source.
    let Ok(Path(source)) = source else {
        return Err(ApiError::SignatureInvalid);
    };
    api.ingest
        .relay(&api.sources, &source, &headers, &bytes)
        .await
}

/// axum adds the `Allow` header listing the route's methods.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// `/api/hooks/` is `/api/hooks`: an unmatched path is routed again without its trailing
/// slashes.
async fn without_trailing_slash(exact: Router, mut req: Request) -> Response {
    let path = req.uri().path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() == path.len() || trimmed.is_empty() {
        return ApiError::RouteNotFound.into_response();
    }
    let target = match req.uri().query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_string(),
    };
    let Ok(uri) = target.parse() else {
        return ApiError::RouteNotFound.into_response();
    };
    *req.uri_mut() = uri;
    match exact.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
