//! A hook's delivery log (admin token): the recent-logs listing with its filters, and the
//! re-send of one delivery. `LogQuery` is the one parser of the listing's query.

use super::management::{Answer, Ids, ManagementHandler, This};
use super::paging::{Paging, decode_cursor, encode_cursor, next_link};
use super::views::delivery_log_json;
use super::{ApiError, DAY_MS, js_ms_param, query_param};
use crate::domain::catalog::EventName;
use crate::domain::clock::now_ms;
use crate::domain::delivery::{Delivery, DeliveryId, DeliveryStatus, Job};
use crate::domain::validation::ValidationError;
use crate::ports::{AttemptRecord, Count, DeliveryFilter, Page, StoreError};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::Value;

/// Most entries `Total-Number` counts exactly: as deep as `page` reaches.
const MAX_COUNTED: u64 = super::paging::MAX_PAGE_OFFSET as u64;

/// The query of `GET /api/hooks/{id}/recent-logs`: paging, the time window (the 24 hours up
/// to `endTime` by default), the event and the result. Logto's names (`start_time`,
/// `end_time`, `logKey`) are accepted beside ours.
#[derive(Debug)]
pub(crate) struct LogQuery {
    pub paging: Paging,
    /// Where the previous page ended, from the cursor.
    pub after: Option<DeliveryId>,
    /// A `logKey` no delivery can have: the answer is empty.
    pub matches_nothing: bool,
    pub filter: DeliveryFilter,
}

impl LogQuery {
    /// The query's values; `now` is the default `endTime`.
    pub(crate) fn parse(query: Option<&str>, now: i64) -> Result<Self, ApiError> {
        let paging = Paging::from_query(query)?;
        let given_end = time_param(query, "endTime", "end_time")?;
        let end = given_end.unwrap_or(now);
        // No bound given: the last 24 hours; an end alone has no lower bound, as in Logto.
        let default_start = if given_end.is_some() { 0 } else { end - DAY_MS };
        let start = time_param(query, "startTime", "start_time")?.unwrap_or(default_start);
        if start > end {
            return Err(ApiError::InvalidTimeWindow(ValidationError::new(
                "startTime",
                "must not be after endTime",
            )));
        }
        let mut matches_nothing = false;
        let event =
            match (query_param(query, "event"), query_param(query, "logKey")) {
                (None, None) => None,
                (Some(e), _) => Some(EventName::parse_any(&e).ok_or_else(|| {
                    ValidationError::new("event", "is not an event of the catalog")
                })?),
                // A key no delivery can have matches nothing, as in Logto.
                (None, Some(key)) => match key
                    .strip_prefix("TriggerHook.")
                    .and_then(EventName::parse_any)
                {
                    Some(event) => Some(event),
                    None => {
                        matches_nothing = true;
                        None
                    }
                },
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
        let after = paging.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(Self {
            paging,
            after,
            matches_nothing,
            filter: DeliveryFilter {
                from_ms: start,
                to_ms: end,
                event,
                statuses,
            },
        })
    }
}

impl ManagementHandler {
    pub(crate) async fn recent_logs(
        State(this): This,
        ids: Ids,
        uri: Uri,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> Answer {
        let hook = this.log_owner(&ids.hook).await?;
        let LogQuery {
            paging,
            mut after,
            matches_nothing,
            filter,
        } = LogQuery::parse(query.as_deref(), now_ms())?;
        if matches_nothing {
            let mut response = Json(Value::Array(Vec::new())).into_response();
            response.headers_mut().insert("total-number", 0.into());
            return Ok(response);
        }
        // `page` walks from the newest entry (bounded by MAX_PAGE_OFFSET); a cursor goes on
        // from where the previous page ended.
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
        let seen = (before + logs.len()) as u64;
        let total = match (&page.next, &paging.cursor) {
            // The whole listing fit: its length is the count.
            (None, None) => Count {
                counted: seen,
                exact: true,
            },
            // Counted, as Logto's console computes its pages from it.
            (next, _) => {
                let count = this
                    .store
                    .count_deliveries(&hook.id, &filter, MAX_COUNTED)
                    .await?;
                let at_least = seen + u64::from(next.is_some());
                Count {
                    counted: count.counted.max(at_least),
                    exact: count.exact,
                }
            }
        };
        let mut response = Json(Value::Array(logs)).into_response();
        let answer = response.headers_mut();
        answer.insert("total-number", total.counted.into());
        if !total.exact {
            answer.insert("total-number-is-capped", HeaderValue::from_static("true"));
        }
        if let Some(next) = &page.next
            && let Ok(link) =
                HeaderValue::from_str(&next_link(&uri, &headers, &encode_cursor(next)))
        {
            answer.insert(http::header::LINK, link);
        }
        Ok(response)
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
                expires_at: before.expires_at,
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

    async fn enqueue_now(&self, deliveries: &[&Delivery]) -> Result<(), ApiError> {
        let now = now_ms();
        let jobs: Vec<Job> = deliveries
            .iter()
            .map(|d| Job::for_delivery(d, now))
            .collect();
        self.queue.enqueue(&jobs).await?;
        Ok(())
    }
}

/// A time bound by our name or Logto's (our name wins when both are given).
fn time_param(
    query: Option<&str>,
    name: &'static str,
    logto: &'static str,
) -> Result<Option<i64>, ApiError> {
    match js_ms_param(query, name)? {
        Some(v) => Ok(Some(v)),
        None => js_ms_param(query, logto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::DeliveryId;

    const NOW: i64 = 1_795_000_000_000;

    fn parse(query: &str) -> Result<LogQuery, ApiError> {
        LogQuery::parse(Some(query), NOW)
    }

    fn field(result: Result<LogQuery, ApiError>) -> String {
        match result {
            Err(
                ApiError::Validation(e)
                | ApiError::InvalidPagination(e)
                | ApiError::InvalidTimeWindow(e),
            ) => e.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_default_window_is_the_last_day_of_every_entry() {
        let q = LogQuery::parse(None, NOW).unwrap();
        assert_eq!(q.filter, DeliveryFilter::between(NOW - DAY_MS, NOW));
        assert_eq!((q.paging.page, q.paging.size), (1, 20));
        assert!(q.after.is_none());
    }

    #[test]
    fn our_names_win_over_logtos() {
        let q = parse("start_time=5&end_time=50&startTime=10").unwrap();
        assert_eq!((q.filter.from_ms, q.filter.to_ms), (10, 50));
        // An end alone has no lower bound, as in Logto; decimals and exponents read as
        // JavaScript numbers do.
        let q = parse("endTime=100").unwrap();
        assert_eq!((q.filter.from_ms, q.filter.to_ms), (0, 100));
        let q = parse("start_time=1.795e12&end_time=1795000000000.9").unwrap();
        assert_eq!(
            (q.filter.from_ms, q.filter.to_ms),
            (1_795_000_000_000, 1_795_000_000_000)
        );
        assert_eq!(field(parse("startTime=60&endTime=50")), "startTime");
        assert_eq!(field(parse("end_time=soon")), "end_time");
    }

    #[test]
    fn the_event_by_name_or_by_logto_key() {
        let q = parse("logKey=TriggerHook.PostSignIn").unwrap();
        assert_eq!(q.filter.event, EventName::parse_any("PostSignIn"));
        let q = parse("event=PostRegister&logKey=TriggerHook.PostSignIn").unwrap();
        assert_eq!(q.filter.event, EventName::parse_any("PostRegister"));
        assert_eq!(field(parse("event=Nope")), "event");
        assert!(
            !parse("logKey=TriggerHook.PostSignIn")
                .unwrap()
                .matches_nothing
        );
        // Logto answers an unknown key with an empty list.
        assert!(parse("logKey=PostSignIn").unwrap().matches_nothing);
        assert!(parse("logKey=TriggerHook.Nope").unwrap().matches_nothing);
    }

    #[test]
    fn an_error_result_includes_dropped_deliveries() {
        let q = parse("result=Error").unwrap();
        assert_eq!(
            q.filter.statuses,
            Some(vec![DeliveryStatus::Error, DeliveryStatus::Dropped])
        );
        assert_eq!(field(parse("result=error")), "result");
    }

    #[test]
    fn the_cursor_is_decoded_after_the_filters_are_checked() {
        let at = DeliveryId::lowest_at(NOW);
        let q = parse(&format!("cursor={}", encode_cursor(&at))).unwrap();
        assert_eq!(q.after, Some(at));
        assert_eq!(field(parse("cursor=junk")), "cursor");
        assert_eq!(field(parse("cursor=junk&result=Maybe")), "result");
    }
}
