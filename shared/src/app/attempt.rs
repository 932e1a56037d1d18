//! One request to a hook endpoint: signed with the hook's keys of the moment, posted within its
//! time limit, and what came back classified. The sender's attempts, the synchronous calls and
//! the test button all go through [`perform`]; what each makes of the answer is its own (a
//! retry decision, a call's result, the button's error).

use crate::domain::answer::Answer;
use crate::domain::clock::now_ms;
use crate::domain::delivery::{Attempt, DeliveryId};
use crate::domain::health::Outcome;
use crate::domain::hook::{CustomHeaders, Hook, HookUrl};
use crate::domain::signing::sign;
use crate::net::client::DeliveryClient;
use std::time::Duration;

/// What to send, where, signed by whom.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The hook whose signing keys (the current one, and retired ones in their grace period)
    /// sign the request.
    pub hook: &'a Hook,
    /// Where it goes: the hook's URL, unless the test button names another.
    pub url: &'a HookUrl,
    /// The hook's custom headers, unless the test button names others.
    pub headers: &'a CustomHeaders,
    /// The `webhook-id`.
    pub id: &'a DeliveryId,
    pub body: &'a str,
    /// At most this long; the client's own timeout when `None` (and never longer than it).
    pub within: Option<Duration>,
}

impl<'a> Request<'a> {
    /// `body` to the hook's own endpoint, with its own headers, within the client's timeout.
    pub fn to_hook(hook: &'a Hook, id: &'a DeliveryId, body: &'a str) -> Self {
        Self {
            hook,
            url: &hook.url,
            headers: &hook.headers,
            id,
            body,
            within: None,
        }
    }
}

/// What one request got: when it started and the endpoint's answer.
#[derive(Debug, Clone)]
pub struct Performed {
    /// Unix milliseconds when it was signed and sent.
    pub started_at: i64,
    pub answer: Answer,
}

impl Performed {
    pub fn duration_ms(&self) -> u64 {
        self.answer.duration.as_millis() as u64
    }

    /// Unix milliseconds when the answer (or the failure) came.
    pub fn answered_at(&self) -> i64 {
        self.started_at + self.duration_ms() as i64
    }

    /// A 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.answer.succeeded()
    }

    /// How it counts in the hook's stats and health.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.answer.status, self.answer.error_kind)
    }

    /// The attempt as the delivery log records it, numbered `number`.
    pub fn attempt(&self, number: u32) -> Attempt {
        Attempt {
            number,
            started_at: self.started_at,
            duration_ms: self.duration_ms(),
            response_status: self.answer.status,
            response_body: self.answer.body.clone(),
            error_kind: self.answer.error_kind,
            error: self.answer.error.clone(),
        }
    }
}

/// Signs `request` with the hook's keys at this moment and posts it.
pub async fn perform(client: &DeliveryClient, request: Request<'_>) -> Performed {
    let started_at = now_ms();
    let signature = sign(
        &request.hook.signing_keys(started_at),
        &request.id.to_string(),
        started_at / 1000,
        request.body.as_bytes(),
    );
    let answer = match request.within {
        Some(limit) => {
            client
                .post_within(
                    request.url,
                    request.headers,
                    &signature,
                    request.body,
                    limit,
                )
                .await
        }
        None => {
            client
                .post(request.url, request.headers, &signature, request.body)
                .await
        }
    };
    Performed { started_at, answer }
}
