//! What one attempt got back from an endpoint: status, a capped body, or why there was no
//! answer. The retry decision and the delivery log read it; the HTTP client produces it.

use crate::domain::delivery::ErrorKind;
use std::time::{Duration, Instant};

/// What an attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub duration: Duration,
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub error: Option<String>,
    pub retry_after: Option<String>,
    /// The body was read to its end (or to the capture's limit) within the time limit.
    pub body_complete: bool,
}

impl Answer {
    pub fn succeeded(&self) -> bool {
        self.error_kind.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub(crate) fn failed(started: Instant, kind: ErrorKind, error: impl Into<String>) -> Self {
        Self {
            duration: started.elapsed(),
            status: None,
            body: None,
            error_kind: Some(kind),
            error: Some(error.into()),
            retry_after: None,
            body_complete: false,
        }
    }
}
