//! `POST /api/events` and the Logto relay: parse the request, hand the events to the ingest use
//! case ([`crate::app::ingest`]), answer. 202 once every delivery and its job were accepted
//! (503 otherwise); with `?wait=true` (one event), 200 with the synchronous hooks' results.

use super::{ApiError, LimitedBody, query_param, require_declared_json, require_json};
use crate::app::ingest::{Accepted, Ingest};
use crate::app::relay::LogtoSources;
use crate::domain::event::{IngestBody, parse_ingest};
use crate::domain::validation::ValidationError;
use crate::net::client::DeliveryClient;
use crate::ports::{JobQueue, Store};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use std::sync::Arc;
use std::time::Duration;

pub(crate) use crate::app::ingest::PREVIEW_REFUSED;

pub struct IngestHandler {
    ingest: Ingest,
}

impl IngestHandler {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        client: DeliveryClient,
        retention: Duration,
        preview_events: bool,
    ) -> Self {
        Self {
            ingest: Ingest::new(store, queue, client, retention, preview_events),
        }
    }

    /// Synchronous calls follow the health rules of `health`.
    pub fn with_health(self, health: Arc<crate::app::health::Health>) -> Self {
        Self {
            ingest: self.ingest.with_health(health),
        }
    }

    /// The route's handler; the router has checked the token and the method.
    pub(super) async fn accept(
        State(this): State<Arc<Self>>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        LimitedBody(bytes): LimitedBody,
    ) -> Result<Response, ApiError> {
        let wait = match query_param(query.as_deref(), "wait").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ValidationError::new("wait", "must be true or false").into()),
        };
        require_declared_json(&headers)?;
        let body = parse_ingest(&bytes, time::OffsetDateTime::now_utc())?;
        let single = matches!(body, IngestBody::Single(_));
        // On a task of its own: a caller that hangs up does not cut a fan-out or a synchronous
        // call short, so what was done is recorded and a repeat of the id finds it.
        let ingest = this.clone();
        let accepted =
            match tokio::spawn(async move { ingest.ingest.accept(body, wait).await }).await {
                Ok(accepted) => accepted?,
                Err(e) => match e.try_into_panic() {
                    Ok(panic) => std::panic::resume_unwind(panic),
                    Err(_) => return Err(ApiError::Unavailable),
                },
            };
        let status = if wait {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        Ok(answer(status, accepted, single))
    }

    /// `POST /api/ingest/logto/{sourceId}`: a body a Logto instance sent, accepted only with
    /// the source's `logto-signature-sha-256`, then fanned out like any event.
    pub(super) async fn relay(
        &self,
        sources: &LogtoSources,
        source: &str,
        headers: &HeaderMap,
        bytes: &[u8],
    ) -> Result<Response, ApiError> {
        let signature = headers
            .get("logto-signature-sha-256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let relayed = sources
            .verify(source, signature, bytes)
            .ok_or(ApiError::SignatureInvalid)?;
        require_json(headers)?;
        let accepted = relayed.accept(&self.ingest).await?;
        Ok(answer(StatusCode::ACCEPTED, accepted, true))
    }
}

/// The answer's body: the event's answer for one event, the list of them for a batch.
fn answer(status: StatusCode, accepted: Accepted, single: bool) -> Response {
    let mut answers = accepted.answers;
    if single {
        let one = answers.pop().expect("one answer per event");
        (status, Json(one)).into_response()
    } else {
        (status, Json(answers)).into_response()
    }
}
