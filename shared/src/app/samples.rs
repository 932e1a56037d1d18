//! The test button: a signed sample of each chosen event, in the shape of Logto's test
//! payloads, sent at once to a hook's endpoint (or to one the operator names), and what each
//! got. Nothing is recorded, queued or counted; each sample has a `webhook-id` of its own.

use super::attempt::{self, Request};
use crate::domain::catalog::EventName;
use crate::domain::delivery::DeliveryId;
use crate::domain::event::sample_event;
use crate::domain::hook::{CustomHeaders, Hook, HookMode, HookUrl};
use crate::net::client::DeliveryClient;

/// Why a sample failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    /// The endpoint answered, with a status other than 2xx.
    #[error("the endpoint answered {status}")]
    Answered { status: u16, body: Option<String> },
    /// No answer: the request could not be sent or timed out.
    #[error("the sample was not sent: {0}")]
    NotSent(String),
}

/// What one sample got: `{event, status?, error?}`.
pub type SampleResult = serde_json::Value;

/// Samples that failed: the first failure (in the order of the events), and every sample's
/// result.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleFailure {
    pub first: SampleError,
    pub results: Vec<SampleResult>,
}

/// Sends a sample of each of `events` at once, signed with `hook`'s keys, to `url` with
/// `headers`; fails when any sample did.
pub async fn send(
    client: &DeliveryClient,
    hook: &Hook,
    url: &HookUrl,
    headers: &CustomHeaders,
    events: &[EventName],
) -> Result<(), SampleFailure> {
    let sends = events.iter().map(|event| async move {
        let body = sample_event(*event, time::OffsetDateTime::now_utc()).delivered_body(&hook.id);
        let id = DeliveryId::generate();
        // A synchronous hook's sample gets the time its calls get.
        let within =
            (hook.mode == HookMode::Sync).then(|| hook.timeout_ms.unwrap_or_default().duration());
        let request = Request {
            url,
            headers,
            within,
            ..Request::to_hook(hook, &id, &body)
        };
        let answer = attempt::perform(client, request).await.answer;
        let failure = (!answer.succeeded()).then(|| match answer.status {
            Some(status) => SampleError::Answered {
                status,
                body: answer.body.clone(),
            },
            None => SampleError::NotSent(
                answer
                    .error
                    .clone()
                    .unwrap_or_else(|| "no answer from the endpoint".into()),
            ),
        });
        let mut result = serde_json::json!({ "event": event.as_str() });
        if let Some(status) = answer.status {
            result["status"] = status.into();
        }
        if let Some(failure) = &failure {
            result["error"] = failure.to_string().into();
        }
        (result, failure)
    });
    let done = futures::future::join_all(sends).await;
    let first = done.iter().find_map(|(_, failure)| failure.clone());
    match first {
        None => Ok(()),
        Some(first) => Err(SampleFailure {
            first,
            results: done.into_iter().map(|(result, _)| result).collect(),
        }),
    }
}
