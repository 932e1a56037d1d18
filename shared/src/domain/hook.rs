//! Hooks: an endpoint, the events it wants, and how its requests are signed.
//! Every field is a parsed type, so a stored or received hook is valid by construction.

use crate::domain::catalog::EventName;
use crate::domain::ids::typed_id;
use crate::domain::signing::SigningKey;
use crate::domain::validation::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_HEADERS: usize = 20;
const MAX_HEADER_VALUE: usize = 4096;
const MAX_URL_LEN: usize = 2048;

typed_id!(
    /// A hook's id: `hook_` + ULID when generated; any `[A-Za-z0-9_-]{1,64}` when parsed.
    text HookId
);

impl HookId {
    pub fn generate() -> Self {
        Self(format!(
            "hook_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ))
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ValidationError::new("id", "is not a hook id"))
        }
    }
}

/// Which URL schemes hooks may use: `https`, plus `http` where configuration allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_http: bool,
}

/// An absolute endpoint URL: http(s) per policy, a host, no userinfo, no fragment. It is kept
/// and shown as written (a config-sync script sees what it wrote); its normalised form is
/// what requests go to and what compares.
#[derive(Debug, Clone)]
pub struct HookUrl {
    url: url::Url,
    written: Box<str>,
}

impl HookUrl {
    pub fn parse(s: &str, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let err = |m: &str| ValidationError::new("url", m);
        if s.len() > MAX_URL_LEN {
            return Err(err("is too long"));
        }
        let url = url::Url::parse(s).map_err(|_| err("must be an absolute URL"))?;
        let mut checked = Self::check(url, policy)?;
        checked.written = s.into();
        Ok(checked)
    }

    /// Enforces the policy on an already parsed URL (used again at send time).
    pub fn check(url: url::Url, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let err = |m: &str| ValidationError::new("url", m);
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_http => {}
            "http" => return Err(err("must use https")),
            _ => return Err(err("must be an http(s) URL")),
        }
        if url.host().is_none() {
            return Err(err("must have a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err("must not carry credentials"));
        }
        if url.fragment().is_some() {
            return Err(err("must not have a fragment"));
        }
        let written = url.as_str().into();
        Ok(Self { url, written })
    }

    /// The normalised URL: where requests go.
    pub fn as_url(&self) -> &url::Url {
        &self.url
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The normalised form (lower-case host, default port dropped, `/` for an empty path):
    /// two URLs that reach the same endpoint compare equal by it.
    pub fn normalized(&self) -> &str {
        self.url.as_str()
    }
}

impl PartialEq for HookUrl {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl Eq for HookUrl {}

impl Serialize for HookUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for HookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = String::deserialize(deserializer)?;
        let url = url::Url::parse(&written).map_err(serde::de::Error::custom)?;
        Ok(Self {
            url,
            written: written.into(),
        })
    }
}

/// Custom headers sent with every delivery. Values are secrets: Debug never shows them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomHeaders(Vec<(String, String)>);

impl fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| format!("{n}: ***")))
            .finish()
    }
}

impl CustomHeaders {
    pub fn parse(value: &Value) -> Result<Self, ValidationError> {
        let Value::Object(map) = value else {
            return Err(ValidationError::new("headers", "must be an object"));
        };
        if map.len() > MAX_HEADERS {
            return Err(ValidationError::new(
                "headers",
                format!("at most {MAX_HEADERS} headers"),
            ));
        }
        let mut out: Vec<(String, String)> = Vec::with_capacity(map.len());
        for (name, v) in map {
            let field = || format!("headers.{}", printable(name));
            if name.len() > 256 || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ValidationError::new(field(), "is not a valid header name"));
            }
            let lower = name.to_ascii_lowercase();
            if is_reserved_header(&lower) {
                return Err(ValidationError::new(field(), "may not be set by a hook"));
            }
            if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(ValidationError::new(field(), "is repeated"));
            }
            let Value::String(value) = v else {
                return Err(ValidationError::new(field(), "must be a string"));
            };
            if value.len() > MAX_HEADER_VALUE
                || value.chars().any(char::is_control)
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(ValidationError::new(
                    field(),
                    "value must be at most 4096 bytes without control characters",
                ));
            }
            out.push((name.clone(), value.clone()));
        }
        Ok(Self(out))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A field name safe to echo in an error: the caller's characters without control characters
/// or whitespace, at most 64 of them.
pub(crate) fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .take(64)
        .collect()
}

/// Headers a hook may not set: framing and hop-by-hop headers (sending them would break the
/// request) and the four signature headers the product sets on every request. Anything else
/// Logto accepts is accepted, `content-type` and `user-agent` included (they replace ours).
pub fn is_reserved_header(lower: &str) -> bool {
    matches!(
        lower,
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "upgrade"
            | "webhook-id"
            | "webhook-timestamp"
            | "webhook-signature"
            | "logto-signature-sha-256"
    )
}

/// Where a hook stands in the listing: by creation time, ties by id (listed newest first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HookPosition {
    pub created_at: i64,
    pub id: HookId,
}

impl HookPosition {
    pub fn of(hook: &Hook) -> Self {
        Self {
            created_at: hook.created_at,
            id: hook.id.clone(),
        }
    }

    /// A sort key that orders as the positions do: zero-padded milliseconds, then the id.
    pub fn sort_key(&self) -> String {
        format!("{:013}#{}", self.created_at.max(0), self.id)
    }

    pub fn parse_sort_key(key: &str) -> Option<Self> {
        let (at, id) = key.split_once('#')?;
        Some(Self {
            created_at: at.parse().ok()?,
            id: HookId::parse(id).ok()?,
        })
    }
}

/// An older key still signing during its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiredKey {
    pub key: SigningKey,
    /// Unix milliseconds after which the key stops signing.
    pub expires_at: i64,
}

/// A hook as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub id: HookId,
    pub name: String,
    /// What it is delivered: never empty for a hook of the API.
    pub events: Vec<EventName>,
    /// Logto's legacy single `event` as last written, returned as `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_event: Option<EventName>,
    /// `events` was set from the legacy `event` alone (Logto's `events: []`), so a later
    /// `event` moves it, as Logto's dispatcher then follows `event`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub events_from_legacy: bool,
    pub url: HookUrl,
    #[serde(default)]
    pub headers: CustomHeaders,
    pub signing_key: SigningKey,
    #[serde(default)]
    pub retired_keys: Vec<RetiredKey>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Unix milliseconds when it was disabled for its endpoint's failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
    /// Its own auto-disable window, instead of the deployment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_after: Option<DisableAfter>,
    /// Deliveries per second it may receive, across every sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Logto's deprecated `config.retries` (0 to 3): the re-tries after a delivery's first
    /// attempt, at the first delays of the retry schedule; unset, the whole schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u8>,
    /// Whether it is called while the caller waits (`POST /api/events?wait=true`).
    #[serde(default, skip_serializing_if = "HookMode::is_async")]
    pub mode: HookMode,
    /// How long a synchronous call may take (`config.timeoutMs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<SyncTimeout>,
}

/// How a hook is called: from the queue with retries, or while the caller waits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HookMode {
    #[default]
    Async,
    Sync,
}

impl HookMode {
    pub fn is_async(&self) -> bool {
        *self == HookMode::Async
    }

    pub fn parse(value: &Value) -> Result<Self, ValidationError> {
        match value.as_str() {
            Some("async") => Ok(HookMode::Async),
            Some("sync") => Ok(HookMode::Sync),
            _ => Err(ValidationError::new(
                "config.mode",
                "must be \"sync\" or \"async\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HookMode::Async => "async",
            HookMode::Sync => "sync",
        }
    }
}

/// Declares a whole number from 1 to `$max`, read from JSON at `$field` and refused with a
/// message naming the `$unit`; stored and serialised as the number.
macro_rules! bounded {
    ($(#[$meta:meta])* $name:ident, $max:expr, $field:literal, $unit:literal, $error:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "u32", into = "u32")]
        pub struct $name(u32);

        impl $name {
            pub fn parse(value: &Value) -> Result<Self, ValidationError> {
                value
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .and_then(|v| Self::try_from(v).ok())
                    .ok_or_else(|| {
                        ValidationError::new(
                            $field,
                            format!(concat!("must be a whole number of ", $unit, " from 1 to {}"), $max),
                        )
                    })
            }
        }

        impl TryFrom<u32> for $name {
            type Error = &'static str;
            fn try_from(v: u32) -> Result<Self, &'static str> {
                if (1..=$max).contains(&v) { Ok(Self(v)) } else { Err($error) }
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v.0
            }
        }
    };
}

bounded!(
    /// A synchronous call's time limit (`config.timeoutMs`): 1 to 10,000 ms, 3,000 by default.
    SyncTimeout,
    SyncTimeout::MAX_MS,
    "config.timeoutMs",
    "milliseconds",
    "a synchronous timeout is 1 to 10000 ms"
);

impl SyncTimeout {
    pub const DEFAULT_MS: u32 = 3_000;
    pub const MAX_MS: u32 = 10_000;

    pub fn ms(self) -> u32 {
        self.0
    }

    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.into())
    }
}

impl Default for SyncTimeout {
    fn default() -> Self {
        Self(Self::DEFAULT_MS)
    }
}

bounded!(
    /// A hook's delivery rate limit (`config.rateLimit`): deliveries per second, 1 to 1,000.
    RateLimit,
    RateLimit::MAX,
    "config.rateLimit",
    "deliveries per second",
    "a rate limit is 1 to 1000 deliveries per second"
);

impl RateLimit {
    pub const MAX: u32 = 1_000;

    pub fn per_second(self) -> u32 {
        self.0
    }

    /// Milliseconds between two deliveries at this rate.
    pub fn interval_ms(self) -> i64 {
        (1_000 / i64::from(self.0)).max(1)
    }
}

/// A hook's own auto-disable window (`config.disableAfter`): a duration such as `3d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisableAfter(String);

impl DisableAfter {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        crate::domain::duration::parse_duration(text)
            .map(|_| Self(text.trim().to_string()))
            .ok_or_else(|| {
                ValidationError::new(
                    "config.disableAfter",
                    "must be a duration such as 90s, 30m, 12h or 5d (up to 3650d)",
                )
            })
    }

    pub fn duration(&self) -> std::time::Duration {
        crate::domain::duration::parse_duration(&self.0).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisableAfter {
    type Error = ValidationError;
    fn try_from(text: String) -> Result<Self, ValidationError> {
        Self::parse(&text)
    }
}

impl From<DisableAfter> for String {
    fn from(d: DisableAfter) -> String {
        d.0
    }
}

impl Hook {
    /// Keys that sign a request at `now_ms`: the current key first.
    pub fn signing_keys(&self, now_ms: i64) -> Vec<&SigningKey> {
        std::iter::once(&self.signing_key)
            .chain(
                self.retired_keys
                    .iter()
                    .filter(|k| k.expires_at > now_ms)
                    .map(|k| &k.key),
            )
            .collect()
    }
}

impl Hook {
    /// The hook with a new signing key; the old one keeps signing for `grace_secs`.
    pub fn rotated(&self, grace_secs: u64, now_ms: i64) -> Hook {
        let mut next = self.clone();
        next.retired_keys.retain(|k| k.expires_at > now_ms);
        if grace_secs > 0 {
            next.retired_keys.push(RetiredKey {
                key: self.signing_key.clone(),
                expires_at: now_ms + (grace_secs as i64) * 1000,
            });
        }
        next.signing_key = SigningKey::generate();
        next.updated_at = now_ms.max(self.updated_at + 1);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook() -> Hook {
        Hook {
            id: HookId::generate(),
            name: "crm".into(),
            events: vec![EventName::PostSignIn],
            legacy_event: None,
            events_from_legacy: false,
            url: HookUrl::parse(
                "https://hooks.example.com/in",
                UrlPolicy { allow_http: false },
            )
            .unwrap(),
            headers: CustomHeaders::parse(&json!({"x-api-key": "s3cr3t"})).unwrap(),
            signing_key: SigningKey::generate(),
            retired_keys: Vec::new(),
            enabled: true,
            created_at: 5,
            updated_at: 5,
            disabled_reason: None,
            disabled_at: None,
            disable_after: None,
            rate_limit: None,
            retries: None,
            mode: HookMode::Async,
            timeout_ms: None,
        }
    }

    #[test]
    fn debug_hides_header_values_and_keys() {
        let h = hook();
        let dbg = format!("{h:?}");
        assert!(!dbg.contains("s3cr3t"));
        assert!(!dbg.contains(h.signing_key.expose()));
    }

    #[test]
    fn header_names_are_http_tokens_and_not_reserved() {
        for bad in [
            "bad name",
            "",
            "x:y",
            "caf\u{e9}",
            "Host",
            "webhook-id",
            "Connection",
            "Webhook-Signature",
            "logto-signature-sha-256",
        ] {
            let err = CustomHeaders::parse(&json!({ bad: "v" })).unwrap_err();
            assert!(err.field.starts_with("headers"), "{bad:?}");
        }
        assert!(CustomHeaders::parse(&json!({"X-Api-Key": "v", "x-trace_id!": "v"})).is_ok());
        // Logto accepts these, and sending them breaks nothing.
        assert!(
            CustomHeaders::parse(&json!({"Content-Type": "application/json; charset=utf-8", "webhook-source": "crm", "User-Agent": "Logto (https://logto.io/)"}))
                .is_ok()
        );
    }

    #[test]
    fn header_values_refuse_every_control_character() {
        let with = |v: &str| json!({"x-a": v});
        for c in [
            '\u{0}', '\t', '\n', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
        ] {
            let err = CustomHeaders::parse(&with(&format!("s3cr3t{c}"))).unwrap_err();
            assert_eq!(err.field, "headers.x-a", "{c:?}");
            assert!(
                !err.to_string().contains("s3cr3t"),
                "the value is not echoed"
            );
        }
        for ok in ["plain", "caf\u{e9}", "\u{a0}nbsp", "\u{2028}"] {
            assert!(CustomHeaders::parse(&with(ok)).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn retired_keys_sign_only_during_grace() {
        let mut h = hook();
        let old = SigningKey::generate();
        h.retired_keys.push(RetiredKey {
            key: old.clone(),
            expires_at: 100,
        });
        assert_eq!(h.signing_keys(99).len(), 2);
        assert_eq!(h.signing_keys(100).len(), 1);
        let rotated = h.rotated(60, 50);
        assert_eq!(rotated.signing_keys(50).len(), 3);
        assert_ne!(rotated.signing_key, h.signing_key);
        assert_eq!(rotated.signing_keys(50 + 60_000).len(), 1);
    }
}
