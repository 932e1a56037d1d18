//! The test button: a signed sample of each chosen event sent at once to a hook's endpoint (or
//! to one the operator names), stopping at the first that fails. Nothing is recorded, queued or
//! counted; each sample has a `webhook-id` of its own.

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

/// Sends a sample of each of `events`, signed with `hook`'s keys, to `url` with `headers`.
pub async fn send(
    client: &DeliveryClient,
    hook: &Hook,
    url: &HookUrl,
    headers: &CustomHeaders,
    events: &[EventName],
) -> Result<(), SampleError> {
    for event in events {
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
        if answer.succeeded() {
            continue;
        }
        return Err(match answer.status {
            Some(status) => SampleError::Answered {
                status,
                body: answer.body,
            },
            None => SampleError::NotSent(
                answer
                    .error
                    .unwrap_or_else(|| "no answer from the endpoint".into()),
            ),
        });
    }
    Ok(())
}
