//! Hook health as hourly aggregates: attempts, failures by kind and a fixed-bucket histogram of
//! attempt durations. The sender adds a batch's attempts once per hook and hour; the stats
//! endpoint sums at most 14 days of hours, never reading the delivery log.

use crate::domain::delivery::ErrorKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// Whether a hook is failing: since when (the first failure after its latest success) and
/// how many attempts failed since. Kept per hook, updated once per sender batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HookHealth {
    pub failing_since: Option<i64>,
    pub failed_attempts: u64,
    /// Start of the latest successful attempt on record; failures before it do not count.
    pub last_success_at: Option<i64>,
    /// When the latest `Hook.FailingSince` notice was sent: one per window at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noticed_at: Option<i64>,
}

/// A change of a hook's failure state that synchronous calls made where no health keeper
/// runs (the ingest function): queued for the sender, which sends its notices and disables the
/// hook when the policy, or a 410 answered at `gone_at`, says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthChange {
    pub health_of: crate::domain::hook::HookId,
    pub before: HookHealth,
    pub after: HookHealth,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_at: Option<i64>,
    pub due_at: i64,
}

/// One batch's attempts of one hook, as the failure state needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchHealth {
    /// Start of the batch's latest successful attempt.
    pub last_success_at: Option<i64>,
    /// Failed attempts that started after it (all of them without a success).
    pub failures_after: u64,
    /// Start of the first of those.
    pub first_failure_after: Option<i64>,
}

impl BatchHealth {
    /// From `(started_at, succeeded)` of each attempt, in any order.
    pub fn of(attempts: &[(i64, bool)]) -> Self {
        let last_success_at = attempts.iter().filter(|a| a.1).map(|a| a.0).max();
        let after: Vec<i64> = attempts
            .iter()
            .filter(|a| !a.1 && last_success_at.is_none_or(|s| a.0 > s))
            .map(|a| a.0)
            .collect();
        Self {
            last_success_at,
            failures_after: after.len() as u64,
            first_failure_after: after.iter().min().copied(),
        }
    }
}

impl HookHealth {
    /// Whether a `Hook.FailingSince` notice was sent for the current failure (so its end is
    /// worth a `Hook.Recovered`).
    pub fn noticed_this_failure(&self) -> bool {
        matches!((self.failing_since, self.noticed_at), (Some(since), Some(at)) if at >= since)
    }

    /// The state after `batch`. A success later than the one on record resets the window to
    /// the failures after it; failures count only when they follow the success on record. A
    /// batch whose latest success is older than the one on record changes nothing.
    pub fn apply(&self, batch: &BatchHealth) -> HookHealth {
        let newer = |at: i64| self.last_success_at.is_none_or(|l| l < at);
        match (batch.last_success_at, batch.first_failure_after) {
            (Some(s), _) if newer(s) => HookHealth {
                failing_since: batch.first_failure_after,
                failed_attempts: batch.failures_after,
                last_success_at: Some(s),
                noticed_at: self.noticed_at,
            },
            (None, Some(first)) if newer(first) => HookHealth {
                failing_since: Some(self.failing_since.unwrap_or(first)),
                failed_attempts: self.failed_attempts + batch.failures_after,
                last_success_at: self.last_success_at,
                noticed_at: self.noticed_at,
            },
            _ => self.clone(),
        }
    }
}

/// When a failing hook is disabled: after failing for `disable_after` (or the hook's own
/// window) with at least `min_attempts` failed attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    pub disable_after: Duration,
    pub min_attempts: u64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            disable_after: Duration::from_secs(5 * 86_400),
            min_attempts: 20,
        }
    }
}

impl HealthPolicy {
    /// Whether a hook in state `health`, with its own window `window` if it has one, is to be
    /// disabled at `now_ms`.
    pub fn disables(&self, health: &HookHealth, window: Option<Duration>, now_ms: i64) -> bool {
        let window = window.unwrap_or(self.disable_after).as_millis() as i64;
        health
            .failing_since
            .is_some_and(|since| now_ms - since >= window)
            && health.failed_attempts >= self.min_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_the_failures_after_its_latest_success() {
        let b = BatchHealth::of(&[(5, false), (3, true), (9, false), (7, true), (8, false)]);
        assert_eq!(
            b,
            BatchHealth {
                last_success_at: Some(7),
                failures_after: 2,
                first_failure_after: Some(8),
            }
        );
        let only_failures = BatchHealth::of(&[(4, false), (2, false)]);
        assert_eq!(only_failures.first_failure_after, Some(2));
        assert_eq!(only_failures.failures_after, 2);
        assert_eq!(only_failures.last_success_at, None);
    }

    #[test]
    fn failures_open_a_window_that_a_later_success_closes() {
        let healthy = HookHealth::default();
        let failing = healthy.apply(&BatchHealth::of(&[(10, false), (12, false)]));
        assert_eq!(failing.failing_since, Some(10));
        assert_eq!(failing.failed_attempts, 2);
        let still = failing.apply(&BatchHealth::of(&[(20, false)]));
        assert_eq!((still.failing_since, still.failed_attempts), (Some(10), 3));
        let recovered = still.apply(&BatchHealth::of(&[(30, true)]));
        assert_eq!(recovered.failing_since, None);
        assert_eq!(recovered.failed_attempts, 0);
        // Failures that started before the success on record do not reopen the window.
        assert_eq!(recovered.apply(&BatchHealth::of(&[(25, false)])), recovered);
        // Nor does an older success change anything.
        let again = recovered.apply(&BatchHealth::of(&[(40, false)]));
        assert_eq!(again.apply(&BatchHealth::of(&[(29, true)])), again);
        // A success followed by failures in one batch leaves those failures counted.
        let mixed = again.apply(&BatchHealth::of(&[(50, true), (51, false)]));
        assert_eq!((mixed.failing_since, mixed.failed_attempts), (Some(51), 1));
    }

    #[test]
    fn the_latest_notice_outlives_failures_and_recoveries() {
        let noticed = HookHealth {
            noticed_at: Some(12),
            ..HookHealth::default().apply(&BatchHealth::of(&[(10, false)]))
        };
        let recovered = noticed.apply(&BatchHealth::of(&[(20, true)]));
        assert_eq!(recovered.failing_since, None);
        assert_eq!(recovered.noticed_at, Some(12));
        let failing = recovered.apply(&BatchHealth::of(&[(30, false)]));
        assert_eq!(
            (failing.failing_since, failing.noticed_at),
            (Some(30), Some(12))
        );
        assert!(noticed.noticed_this_failure());
        assert!(!failing.noticed_this_failure());
    }

    #[test]
    fn a_hook_is_disabled_after_its_window_and_enough_failures() {
        let policy = HealthPolicy {
            disable_after: Duration::from_secs(3),
            min_attempts: 3,
        };
        let h = |since, attempts| HookHealth {
            failing_since: Some(since),
            failed_attempts: attempts,
            ..HookHealth::default()
        };
        assert!(!policy.disables(&h(0, 3), None, 2_999));
        assert!(policy.disables(&h(0, 3), None, 3_000));
        assert!(!policy.disables(&h(0, 2), None, 60_000));
        assert!(!policy.disables(&HookHealth::default(), None, i64::MAX));
        assert!(!policy.disables(&h(0, 3), Some(Duration::from_secs(10)), 9_999));
        assert!(policy.disables(&h(0, 3), Some(Duration::from_secs(1)), 1_000));
    }

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
