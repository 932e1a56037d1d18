//! What becomes of a delivery after one attempt, as a pure function of the answer, the attempt
//! number, the schedule and the time, so every branch of the retry policy is a table test.

use crate::domain::answer::Answer;
use crate::domain::delivery::{DeliveryStatus, ErrorKind};
use crate::domain::retry::{RetrySchedule, clamp_retry_after, jitter_with, parse_retry_after};
use std::time::{SystemTime, UNIX_EPOCH};

pub const GONE_REASON: &str = "endpoint answered 410 Gone";
pub const BLOCKED_REASON: &str = "destination address is not allowed";
pub const EXHAUSTED_REASON: &str = "all attempts failed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Retry at this unix millisecond.
    RetryAt(i64),
    /// The delivery ends without success; `disable_hook` when the endpoint is gone.
    Failed {
        reason: &'static str,
        disable_hook: bool,
    },
}

impl Decision {
    pub fn status(self) -> DeliveryStatus {
        match self {
            Decision::Delivered => DeliveryStatus::Success,
            Decision::RetryAt(_) => DeliveryStatus::Pending,
            Decision::Failed { .. } => DeliveryStatus::Error,
        }
    }
}

/// Decides after attempt `number` got `answer` at `now`; `u` in [0, 1] places the retry
/// within the schedule's ±20 % jitter.
pub fn decide(
    answer: &Answer,
    number: u32,
    schedule: &RetrySchedule,
    now: SystemTime,
    u: f64,
) -> Decision {
    if answer.succeeded() {
        return Decision::Delivered;
    }
    if answer.error_kind == Some(ErrorKind::Blocked) {
        return Decision::Failed {
            reason: BLOCKED_REASON,
            disable_hook: false,
        };
    }
    if answer.status == Some(410) {
        return Decision::Failed {
            reason: GONE_REASON,
            disable_hook: true,
        };
    }
    let Some(base) = schedule.delay_before(number + 1) else {
        return Decision::Failed {
            reason: EXHAUSTED_REASON,
            disable_hook: false,
        };
    };
    let mut delay = jitter_with(base, u);
    if matches!(answer.status, Some(429 | 503))
        && let Some(requested) = answer
            .retry_after
            .as_deref()
            .and_then(|v| parse_retry_after(v, now))
    {
        delay = clamp_retry_after(delay, requested);
    }
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Decision::RetryAt(now_ms + delay.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Status, error kind, Retry-After, attempt number, jitter u, expected decision.
    type Row = (
        Option<u16>,
        Option<ErrorKind>,
        Option<&'static str>,
        u32,
        f64,
        Decision,
    );

    fn answer(status: Option<u16>, kind: Option<ErrorKind>, retry_after: Option<&str>) -> Answer {
        Answer {
            duration: Duration::from_millis(5),
            status,
            body: None,
            error_kind: kind,
            error: None,
            retry_after: retry_after.map(str::to_string),
            body_complete: true,
        }
    }

    #[test]
    fn every_outcome_of_an_attempt() {
        let schedule = RetrySchedule::parse("10s,100s").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |s: i64| Decision::RetryAt(1_000_000 + s);
        let http = Some(ErrorKind::Http);
        let gone = Decision::Failed {
            reason: GONE_REASON,
            disable_hook: true,
        };
        let blocked = Decision::Failed {
            reason: BLOCKED_REASON,
            disable_hook: false,
        };
        let exhausted = Decision::Failed {
            reason: EXHAUSTED_REASON,
            disable_hook: false,
        };
        let table: [Row; 15] = [
            (Some(200), None, None, 1, 0.5, Decision::Delivered),
            (Some(204), None, None, 3, 0.5, Decision::Delivered),
            (Some(500), http, None, 1, 0.5, at(10_000)),
            (Some(500), http, None, 1, 0.0, at(8_000)),
            (Some(500), http, None, 1, 1.0, at(12_000)),
            (Some(500), http, None, 2, 0.5, at(100_000)),
            (Some(500), http, None, 3, 0.5, exhausted),
            (Some(302), http, None, 1, 0.5, at(10_000)),
            (None, Some(ErrorKind::Timeout), None, 1, 0.5, at(10_000)),
            (None, Some(ErrorKind::Connect), None, 2, 0.5, at(100_000)),
            (Some(410), http, None, 1, 0.5, gone),
            (Some(410), http, None, 3, 0.5, gone),
            (None, Some(ErrorKind::Blocked), None, 1, 0.5, blocked),
            // Retry-After stretches the delay up to twice the scheduled one, only on 429/503.
            (Some(429), http, Some("15"), 1, 0.5, at(15_000)),
            (Some(500), http, Some("15"), 1, 0.5, at(10_000)),
        ];
        for (status, kind, retry_after, number, u, expected) in table {
            let got = decide(
                &answer(status, kind, retry_after),
                number,
                &schedule,
                now,
                u,
            );
            assert_eq!(
                got, expected,
                "{status:?} {kind:?} {retry_after:?} attempt {number}"
            );
        }
        let capped = decide(
            &answer(Some(503), http, Some("3600")),
            1,
            &schedule,
            now,
            0.5,
        );
        assert_eq!(
            capped,
            at(20_000),
            "Retry-After is capped at twice the delay"
        );
        let short = decide(&answer(Some(503), http, Some("1")), 1, &schedule, now, 0.5);
        assert_eq!(short, at(10_000), "Retry-After never shortens the delay");
    }

    #[test]
    fn statuses_follow_decisions() {
        assert_eq!(Decision::Delivered.status(), DeliveryStatus::Success);
        assert_eq!(Decision::RetryAt(1).status(), DeliveryStatus::Pending);
        let failed = Decision::Failed {
            reason: GONE_REASON,
            disable_hook: true,
        };
        assert_eq!(failed.status(), DeliveryStatus::Error);
    }
}
