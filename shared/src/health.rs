//! Hook health as hourly aggregates: attempts, failures by kind and a fixed-bucket histogram of
//! attempt durations. The sender adds a batch's attempts once per hook and hour; the stats
//! endpoint sums at most 14 days of hours, never reading the delivery log.

use crate::delivery::ErrorKind;
use serde::{Deserialize, Serialize};

/// Upper bounds (milliseconds, inclusive) of the duration buckets; one more bucket holds the
/// rest. A percentile is reported as the upper bound of its bucket, or the last bound when it
/// falls in the open bucket.
pub const DURATION_BOUNDS_MS: [u64; 11] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
];
/// Number of duration buckets.
pub const BUCKETS: usize = DURATION_BOUNDS_MS.len() + 1;
/// Hours the stats endpoint covers at most (and the aggregates are kept).
pub const MAX_HOURS: i64 = 14 * 24;

/// Failed attempts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Failures {
    /// Answered with a 4xx status.
    #[serde(rename = "status4xx")]
    pub status_4xx: u64,
    /// Answered with a 5xx status.
    #[serde(rename = "status5xx")]
    pub status_5xx: u64,
    /// Answered with another status that is not 2xx (1xx, 3xx).
    pub status_other: u64,
    pub timeout: u64,
    pub connect: u64,
    pub tls: u64,
    /// Refused by the address policy before any connection.
    pub blocked: u64,
}

impl Failures {
    pub fn total(&self) -> u64 {
        self.status_4xx
            + self.status_5xx
            + self.status_other
            + self.timeout
            + self.connect
            + self.tls
            + self.blocked
    }

    fn merge(&mut self, o: &Failures) {
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
        self.status_other += o.status_other;
        self.timeout += o.timeout;
        self.connect += o.connect;
        self.tls += o.tls;
        self.blocked += o.blocked;
    }
}

/// What one attempt came to, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed(FailureKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Status4xx,
    Status5xx,
    StatusOther,
    Timeout,
    Connect,
    Tls,
    Blocked,
}

impl Outcome {
    /// Classifies an attempt from its status and error kind.
    pub fn of(status: Option<u16>, error: Option<ErrorKind>) -> Self {
        let kind = match (error, status) {
            (Some(ErrorKind::Timeout), _) => FailureKind::Timeout,
            (Some(ErrorKind::Connect), _) => FailureKind::Connect,
            (Some(ErrorKind::Tls), _) => FailureKind::Tls,
            (Some(ErrorKind::Blocked), _) => FailureKind::Blocked,
            (_, Some(s)) if (200..300).contains(&s) && error.is_none() => return Self::Succeeded,
            (_, Some(s)) if (400..500).contains(&s) => FailureKind::Status4xx,
            (_, Some(s)) if (500..600).contains(&s) => FailureKind::Status5xx,
            _ => FailureKind::StatusOther,
        };
        Self::Failed(kind)
    }
}

/// Attempts of one hook over some hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthCounts {
    pub attempts: u64,
    pub successes: u64,
    pub failures: Failures,
    /// Attempts per duration bucket (see [`DURATION_BOUNDS_MS`]).
    pub durations: [u64; BUCKETS],
    /// Unix milliseconds of the latest successful attempt's start.
    pub last_success_at: Option<i64>,
    /// Unix milliseconds of the latest failed attempt's start.
    pub last_failure_at: Option<i64>,
}

impl Default for HealthCounts {
    fn default() -> Self {
        Self {
            attempts: 0,
            successes: 0,
            failures: Failures::default(),
            durations: [0; BUCKETS],
            last_success_at: None,
            last_failure_at: None,
        }
    }
}

/// The bucket a duration falls in.
pub fn bucket_of(duration_ms: u64) -> usize {
    DURATION_BOUNDS_MS
        .iter()
        .position(|bound| duration_ms <= *bound)
        .unwrap_or(BUCKETS - 1)
}

impl HealthCounts {
    /// Adds one attempt that started at `at_ms`.
    pub fn record(&mut self, at_ms: i64, duration_ms: u64, outcome: Outcome) {
        self.attempts += 1;
        self.durations[bucket_of(duration_ms)] += 1;
        match outcome {
            Outcome::Succeeded => {
                self.successes += 1;
                self.last_success_at = self.last_success_at.max(Some(at_ms));
            }
            Outcome::Failed(kind) => {
                let f = &mut self.failures;
                *match kind {
                    FailureKind::Status4xx => &mut f.status_4xx,
                    FailureKind::Status5xx => &mut f.status_5xx,
                    FailureKind::StatusOther => &mut f.status_other,
                    FailureKind::Timeout => &mut f.timeout,
                    FailureKind::Connect => &mut f.connect,
                    FailureKind::Tls => &mut f.tls,
                    FailureKind::Blocked => &mut f.blocked,
                } += 1;
                self.last_failure_at = self.last_failure_at.max(Some(at_ms));
            }
        }
    }

    pub fn merge(&mut self, o: &HealthCounts) {
        self.attempts += o.attempts;
        self.successes += o.successes;
        self.failures.merge(&o.failures);
        for (mine, theirs) in self.durations.iter_mut().zip(o.durations) {
            *mine += theirs;
        }
        self.last_success_at = self.last_success_at.max(o.last_success_at);
        self.last_failure_at = self.last_failure_at.max(o.last_failure_at);
    }

    /// The duration at or below which a fraction `q` of the attempts finished, as the upper
    /// bound of its bucket; `None` without attempts.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.durations.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, count) in self.durations.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(DURATION_BOUNDS_MS[i.min(DURATION_BOUNDS_MS.len() - 1)]);
            }
        }
        DURATION_BOUNDS_MS.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_classified_by_error_then_status() {
        use FailureKind::*;
        let cases = [
            (Some(204), None, Outcome::Succeeded),
            (Some(404), Some(ErrorKind::Http), Outcome::Failed(Status4xx)),
            (Some(503), Some(ErrorKind::Http), Outcome::Failed(Status5xx)),
            (
                Some(302),
                Some(ErrorKind::Http),
                Outcome::Failed(StatusOther),
            ),
            (None, Some(ErrorKind::Timeout), Outcome::Failed(Timeout)),
            (None, Some(ErrorKind::Connect), Outcome::Failed(Connect)),
            (None, Some(ErrorKind::Tls), Outcome::Failed(Tls)),
            (None, Some(ErrorKind::Blocked), Outcome::Failed(Blocked)),
            (
                Some(200),
                Some(ErrorKind::Timeout),
                Outcome::Failed(Timeout),
            ),
            (None, None, Outcome::Failed(StatusOther)),
        ];
        for (status, error, expected) in cases {
            assert_eq!(Outcome::of(status, error), expected, "{status:?} {error:?}");
        }
    }

    #[test]
    fn buckets_hold_their_upper_bound() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(10), 0);
        assert_eq!(bucket_of(11), 1);
        assert_eq!(bucket_of(30_000), BUCKETS - 2);
        assert_eq!(bucket_of(30_001), BUCKETS - 1);
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = HealthCounts::default();
        assert_eq!(h.percentile(0.5), None);
        for _ in 0..90 {
            h.record(1, 40, Outcome::Succeeded);
        }
        for _ in 0..9 {
            h.record(2, 700, Outcome::Failed(FailureKind::Status5xx));
        }
        h.record(3, 60_000, Outcome::Failed(FailureKind::Timeout));
        assert_eq!(h.percentile(0.5), Some(50));
        assert_eq!(h.percentile(0.95), Some(1_000));
        assert_eq!(h.percentile(0.99), Some(1_000));
        assert_eq!(h.percentile(1.0), Some(30_000));
        assert_eq!((h.attempts, h.successes, h.failures.total()), (100, 90, 10));
        assert_eq!(h.last_success_at, Some(1));
        assert_eq!(h.last_failure_at, Some(3));
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_latest_times() {
        let mut a = HealthCounts::default();
        a.record(5, 1, Outcome::Succeeded);
        let mut b = HealthCounts::default();
        b.record(3, 20, Outcome::Succeeded);
        b.record(9, 20, Outcome::Failed(FailureKind::Blocked));
        a.merge(&b);
        assert_eq!(a.attempts, 3);
        assert_eq!(a.durations[0..2], [1, 2]);
        assert_eq!(a.last_success_at, Some(5));
        assert_eq!(a.last_failure_at, Some(9));
        assert_eq!(a.failures.blocked, 1);
    }
}
