//! The receiver check (admin token): `POST /api/hooks/{id}/check` runs the suite against the
//! hook's endpoint and keeps the report; `GET /api/hooks/{id}/checks` lists the kept reports,
//! newest first, a page at a time (`page_size`, at most 100, and `cursor`; a `Link` header
//! names the next page while there is one).

use super::management::{Answer, Ids, ManagementHandler, This};
use super::paging::{Paging, decode_check_cursor, encode_check_cursor, next_link};
use super::{ApiError, query_param};
use crate::app::receiver_check::{Target, run};
use crate::domain::clock::now_ms;
use crate::domain::receiver_check::REPORT_RETENTION_MS;
use crate::domain::validation::ValidationError;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, Uri};

impl ManagementHandler {
    /// Checks the hook's endpoint now, keeps the report and answers it.
    pub(crate) async fn check(State(this): This, ids: Ids) -> Answer {
        let hook = this.load(&ids.hook).await?;
        let target = Target::for_hook(&hook, this.client.timeouts().total);
        let report = run(&this.client, &target).await;
        this.store
            .put_check(&report, report.created_at + REPORT_RETENTION_MS)
            .await?;
        tracing::info!(
            hook_id = %hook.id,
            check_id = %report.id,
            outcome = report.outcome.as_str(),
            "receiver checked"
        );
        Ok(Json(report).into_response())
    }

    /// The hook's kept reports, newest first.
    pub(crate) async fn checks(
        State(this): This,
        ids: Ids,
        uri: Uri,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> Answer {
        let query = query.as_deref();
        let paging = Paging::from_query(query)?;
        if query_param(query, "page").is_some() {
            return Err(ApiError::InvalidPagination(ValidationError::new(
                "page",
                "is not supported here; follow the cursor",
            )));
        }
        let after = paging
            .cursor
            .as_deref()
            .map(decode_check_cursor)
            .transpose()?;
        let hook = this.load(&ids.hook).await?;
        let page = this
            .store
            .page_checks(&hook.id, after.as_ref(), paging.size, now_ms())
            .await?;
        let mut response = Json(&page.items).into_response();
        if let Some(next) = &page.next
            && let Ok(link) =
                HeaderValue::from_str(&next_link(&uri, &headers, &encode_check_cursor(next)))
        {
            response.headers_mut().insert(http::header::LINK, link);
        }
        Ok(response)
    }
}
