//! The receiver check: whether an endpoint verifies signatures, tolerates repeats and answers
//! in time. Here are the report and the rules that judge each answer; the requests are sent by
//! `app::receiver_check`.
//!
//! A receiver needs to verify only one of the two signature schemes. A request where only one
//! scheme's signature is wrong is judged per scheme (refused: pass; accepted: warn, it relies
//! on the other scheme); only a request whose every signature is wrong fails when accepted.

use crate::domain::hook::HookId;
use crate::domain::ids::typed_id;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

typed_id!(
    /// A ULID prefixed with `chk_`: a stored report's id, and the prefix of every check
    /// request's `webhook-id` (deliveries' are `msg_`, so the two never collide).
    ulid CheckId, "chk_", "checkId", "is not a check id"
);

/// The header every check request carries, so a receiver can tell checks from events.
pub const CHECK_HEADER: &str = "webhook-check";
/// The body field every check request carries (`true`).
pub const CHECK_FIELD: &str = "check";
/// A signed event answered 2xx within this long passes; slower ones warn.
pub const FAST_ANSWER_MS: u64 = 1_000;
/// Most bytes of an answer's body a report keeps.
pub const MAX_KEPT_BODY: usize = 512;
/// How far from now the stale and future timestamps are (seconds).
pub const SKEW_SECS: i64 = 600;
/// The size of the large body.
pub const LARGE_BODY_BYTES: usize = 64 * 1024;
/// How long a stored report is kept.
pub const REPORT_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Pass, warn or fail; a report's outcome is the worst of its checks'.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Pass,
    Warn,
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        }
    }
}

/// What a check sent: never a key; signature values shortened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SentRequest {
    pub method: String,
    /// Header names and shown values (custom headers' values hidden, signatures shortened).
    pub headers: BTreeMap<String, String>,
    pub body_bytes: usize,
    /// How the body differs from a correctly signed event, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_note: Option<String>,
}

/// What came back: status, time and a capped body, or why nothing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub time_ms: u64,
    /// Up to [`MAX_KEPT_BODY`] bytes of the answer's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why there was no answer (timeout, refused connection, blocked address…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A redirect's `Location` (never followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Received {
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn refused(&self) -> bool {
        self.status.is_some_and(|s| (400..500).contains(&s))
    }

    pub fn redirected(&self) -> bool {
        self.status.is_some_and(|s| (300..400).contains(&s))
    }

    /// "answered 401 in 12 ms", "no answer: …".
    pub fn describe(&self) -> String {
        match (self.status, &self.error) {
            (Some(status), _) => {
                let mut text = format!("answered {status} in {} ms", self.time_ms);
                if let Some(location) = &self.location {
                    text.push_str(&format!(" (redirect to {location}, never followed)"));
                }
                text
            }
            (None, Some(error)) => format!("no answer after {} ms: {error}", self.time_ms),
            (None, None) => format!("no answer after {} ms", self.time_ms),
        }
    }
}

/// Cuts `body` to [`MAX_KEPT_BODY`] bytes at a character boundary.
pub fn cap_body(body: &str) -> String {
    if body.len() <= MAX_KEPT_BODY {
        return body.to_string();
    }
    let mut end = MAX_KEPT_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

/// Shows a signature header's value without giving all of it: each entry's first 8 characters.
pub fn shorten_signature(value: &str) -> String {
    value
        .split_whitespace()
        .map(|sig| {
            let (prefix, rest) = sig.split_once(',').map_or(("", sig), |(v, s)| (v, s));
            let shown: String = rest.chars().take(8).collect();
            let more = if rest.chars().count() > 8 { "…" } else { "" };
            if prefix.is_empty() {
                format!("{shown}{more}")
            } else {
                format!("{prefix},{shown}{more}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
    pub request: SentRequest,
    pub response: Received,
}

/// A whole check of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub id: CheckId,
    /// The hook checked; `None` for a check of a URL from the command line.
    #[serde(default)]
    pub hook_id: Option<HookId>,
    /// The URL checked, without its query or user info (which may carry a credential).
    pub url: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub outcome: Outcome,
    /// Each request's time limit.
    pub timeout_ms: u64,
    pub checks: Vec<CheckResult>,
}

impl CheckReport {
    pub fn new(
        hook_id: Option<HookId>,
        url: String,
        created_at: i64,
        timeout_ms: u64,
        checks: Vec<CheckResult>,
    ) -> Self {
        Self {
            id: CheckId::generate(),
            hook_id,
            url,
            created_at,
            outcome: worst(&checks),
            timeout_ms,
            checks,
        }
    }

    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The report as a fixed-width table, one line per check.
    pub fn table(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let mut out = format!("receiver check of {}\n", self.url);
        for c in &self.checks {
            out.push_str(&format!(
                "{:<5} {:<width$}  {}\n",
                c.outcome.as_str().to_uppercase(),
                c.name,
                c.detail
            ));
        }
        out.push_str(&format!("outcome: {}\n", self.outcome.as_str()));
        out
    }
}

/// The worst outcome of `checks` (pass when there are none).
pub fn worst(checks: &[CheckResult]) -> Outcome {
    checks
        .iter()
        .map(|c| c.outcome)
        .max()
        .unwrap_or(Outcome::Pass)
}

/// A correctly signed request must be accepted: within [`FAST_ANSWER_MS`] passes, later warns,
/// anything but 2xx (or no answer within the limit) fails.
pub fn judge_accepted(what: &str, got: &Received) -> (Outcome, String) {
    if got.accepted() {
        if got.time_ms <= FAST_ANSWER_MS {
            (
                Outcome::Pass,
                format!("{what} was accepted: {}", got.describe()),
            )
        } else {
            (
                Outcome::Warn,
                format!(
                    "{what} was accepted, but slowly: {}; answer within {FAST_ANSWER_MS} ms and do the work afterwards",
                    got.describe()
                ),
            )
        }
    } else {
        (
            Outcome::Fail,
            format!("{what} must be accepted (2xx): {}", got.describe()),
        )
    }
}

/// How accepting a request that should have been refused counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfAccepted {
    /// Every signature on it is wrong: accepting it is a failure.
    Fail,
    /// Only `scheme`'s signature is wrong, the other one is valid: a warning.
    Warn { other: &'static str },
}

/// A request that must be refused: any 4xx passes; a 2xx fails or warns as `if_accepted`
/// says; a redirect, a 5xx or no answer warns (the request was not clearly refused).
pub fn judge_refused(what: &str, got: &Received, if_accepted: IfAccepted) -> (Outcome, String) {
    if got.refused() {
        return (
            Outcome::Pass,
            format!("{what} was refused: {}", got.describe()),
        );
    }
    if got.accepted() {
        return match if_accepted {
            IfAccepted::Fail => (
                Outcome::Fail,
                format!(
                    "{what} was accepted ({}); it must be refused with a 4xx",
                    got.describe()
                ),
            ),
            IfAccepted::Warn { other } => (
                Outcome::Warn,
                format!(
                    "{what} was accepted ({}): the receiver relies on the other scheme ({other})",
                    got.describe()
                ),
            ),
        };
    }
    (
        Outcome::Warn,
        format!("{what} should be refused with a 4xx: {}", got.describe()),
    )
}

/// The same `webhook-id` twice: both must be 2xx (a repeat is a retry, not an error).
pub fn judge_duplicate(first: &Received, second: &Received) -> (Outcome, String) {
    if !first.accepted() {
        return (
            Outcome::Fail,
            format!(
                "the first of two requests with one webhook-id was not accepted: {}",
                first.describe()
            ),
        );
    }
    if second.accepted() {
        (
            Outcome::Pass,
            format!(
                "a repeated webhook-id was accepted again: {}",
                second.describe()
            ),
        )
    } else {
        (
            Outcome::Fail,
            format!(
                "a repeated webhook-id must be answered 2xx (a repeat is a retry; skip its work, do not refuse it): {}",
                second.describe()
            ),
        )
    }
}

/// Whether any check's answer was a redirect (deliveries never follow one).
pub fn judge_redirects(checks: &[CheckResult]) -> (Outcome, String) {
    let redirected: Vec<String> = checks
        .iter()
        .filter(|c| c.response.redirected())
        .map(|c| {
            format!(
                "{} ({} to {})",
                c.name,
                c.response.status.unwrap_or_default(),
                c.response.location.as_deref().unwrap_or("no Location")
            )
        })
        .collect();
    if redirected.is_empty() {
        (Outcome::Pass, "no answer was a redirect".into())
    } else {
        (
            Outcome::Warn,
            format!(
                "redirects are never followed by deliveries; point the hook at the final URL: {}",
                redirected.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(status: Option<u16>, time_ms: u64) -> Received {
        Received {
            status,
            time_ms,
            ..Received::default()
        }
    }

    #[test]
    fn accepted_rule() {
        assert_eq!(judge_accepted("x", &got(Some(204), 10)).0, Outcome::Pass);
        assert_eq!(judge_accepted("x", &got(Some(200), 1_500)).0, Outcome::Warn);
        assert_eq!(judge_accepted("x", &got(Some(401), 10)).0, Outcome::Fail);
        assert_eq!(judge_accepted("x", &got(Some(301), 10)).0, Outcome::Fail);
        assert_eq!(judge_accepted("x", &got(None, 10_000)).0, Outcome::Fail);
    }

    #[test]
    fn refused_rule_per_scheme() {
        let warn = IfAccepted::Warn { other: "logto" };
        assert_eq!(
            judge_refused("x", &got(Some(401), 1), IfAccepted::Fail).0,
            Outcome::Pass
        );
        assert_eq!(
            judge_refused("x", &got(Some(400), 1), warn).0,
            Outcome::Pass
        );
        assert_eq!(
            judge_refused("x", &got(Some(200), 1), IfAccepted::Fail).0,
            Outcome::Fail
        );
        let (outcome, detail) = judge_refused("x", &got(Some(200), 1), warn);
        assert_eq!(outcome, Outcome::Warn);
        assert!(detail.contains("relies on the other scheme"), "{detail}");
        assert_eq!(
            judge_refused("x", &got(Some(500), 1), IfAccepted::Fail).0,
            Outcome::Warn
        );
        assert_eq!(
            judge_refused("x", &got(None, 1), IfAccepted::Fail).0,
            Outcome::Warn
        );
    }

    #[test]
    fn duplicate_and_redirect_rules() {
        assert_eq!(
            judge_duplicate(&got(Some(200), 1), &got(Some(200), 1)).0,
            Outcome::Pass
        );
        assert_eq!(
            judge_duplicate(&got(Some(200), 1), &got(Some(409), 1)).0,
            Outcome::Fail
        );
        let result = |status| CheckResult {
            name: "signed".into(),
            outcome: Outcome::Pass,
            detail: String::new(),
            request: SentRequest::default(),
            response: Received {
                status: Some(status),
                location: Some("https://elsewhere.example/".into()),
                ..Received::default()
            },
        };
        assert_eq!(judge_redirects(&[result(200)]).0, Outcome::Pass);
        let (outcome, detail) = judge_redirects(&[result(308)]);
        assert_eq!(outcome, Outcome::Warn);
        assert!(detail.contains("https://elsewhere.example/"));
    }

    #[test]
    fn worst_outcome_and_caps() {
        assert!(Outcome::Pass < Outcome::Warn && Outcome::Warn < Outcome::Fail);
        assert_eq!(worst(&[]), Outcome::Pass);
        let long = "é".repeat(MAX_KEPT_BODY);
        let capped = cap_body(&long);
        assert!(capped.len() <= MAX_KEPT_BODY + "…".len());
        assert_eq!(
            shorten_signature("v1,abcdefghijkl v1,xyz"),
            "v1,abcdefgh… v1,xyz"
        );
        assert_eq!(shorten_signature("0123456789abcdef"), "01234567…");
    }
}
