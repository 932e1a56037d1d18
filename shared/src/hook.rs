//! Hooks: an endpoint, the events it wants, and how its requests are signed.
//! Every field is a parsed type, so a stored or received hook is valid by construction.

use crate::catalog::EventName;
use crate::signing::SigningKey;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_HEADERS: usize = 20;
const MAX_HEADER_VALUE: usize = 4096;
const MAX_URL_LEN: usize = 2048;

/// A hook's id: `hook_` + ULID when generated; any `[A-Za-z0-9_-]{1,64}` when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HookId(String);

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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HookId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<HookId> for String {
    fn from(id: HookId) -> String {
        id.0
    }
}

impl fmt::Display for HookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which URL schemes hooks may use: `https`, plus `http` where configuration allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_http: bool,
}

/// An absolute endpoint URL: http(s) per policy, a host, no userinfo, no fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HookUrl(url::Url);

impl HookUrl {
    pub fn parse(s: &str, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let err = |m: &str| ValidationError::new("url", m);
        if s.len() > MAX_URL_LEN {
            return Err(err("is too long"));
        }
        let url = url::Url::parse(s).map_err(|_| err("must be an absolute URL"))?;
        Self::check(url, policy)
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
        Ok(Self(url))
    }

    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
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
            if !is_token(name) {
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
            if value.len() > MAX_HEADER_VALUE || value.chars().any(char::is_control) {
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

    /// As the management API shows it to the admin who owns the hook.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect::<Map<_, _>>(),
        )
    }
}

fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Headers the product owns: framing, hop-by-hop, and the signature headers.
pub fn is_reserved_header(lower: &str) -> bool {
    matches!(
        lower,
        "host"
            | "content-length"
            | "content-type"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "upgrade"
    ) || lower.starts_with("webhook-")
        || lower.starts_with("logto-signature-")
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
    pub events: Vec<EventName>,
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

    /// The Logto-shaped JSON the management API answers with.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "name": self.name,
            "events": self.events,
            "config": { "url": self.url.as_str(), "headers": self.headers.to_json() },
            "signingKey": self.signing_key.expose(),
            "enabled": self.enabled,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        });
        if let Some(reason) = &self.disabled_reason {
            v["disabledReason"] = Value::String(reason.clone());
        }
        v
    }
}

/// Body of `POST /api/hooks`, validated.
#[derive(Debug)]
pub struct NewHook {
    pub name: String,
    pub events: Vec<EventName>,
    pub url: HookUrl,
    pub headers: CustomHeaders,
    pub enabled: bool,
    pub signing_key: Option<SigningKey>,
}

/// Body of `PATCH /api/hooks/{id}`, validated; absent fields stay as they are.
#[derive(Debug, Default)]
pub struct HookPatch {
    pub name: Option<String>,
    pub events: Option<Vec<EventName>>,
    pub config: Option<(HookUrl, CustomHeaders)>,
    pub enabled: Option<bool>,
}

const CREATE_FIELDS: &[&str] = &["name", "events", "config", "enabled", "signingKey"];
const PATCH_FIELDS: &[&str] = &["name", "events", "config", "enabled"];

impl NewHook {
    pub fn parse(body: &Value, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let obj = as_object(body, CREATE_FIELDS)?;
        let name = parse_name(obj.get("name").ok_or_else(|| required("name"))?)?;
        let events = parse_events(obj.get("events").ok_or_else(|| required("events"))?)?;
        let (url, headers) =
            parse_config(obj.get("config").ok_or_else(|| required("config"))?, policy)?;
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => true,
            Some(v) => parse_bool(v, "enabled")?,
        };
        let signing_key = match obj.get("signingKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                SigningKey::import(s)
                    .map_err(|e| ValidationError::new("signingKey", e.to_string()))?,
            ),
            Some(_) => return Err(ValidationError::new("signingKey", "must be a string")),
        };
        Ok(Self {
            name,
            events,
            url,
            headers,
            enabled,
            signing_key,
        })
    }

    pub fn into_hook(self, now_ms: i64) -> Hook {
        Hook {
            id: HookId::generate(),
            name: self.name,
            events: self.events,
            url: self.url,
            headers: self.headers,
            signing_key: self.signing_key.unwrap_or_else(SigningKey::generate),
            retired_keys: Vec::new(),
            enabled: self.enabled,
            created_at: now_ms,
            updated_at: now_ms,
            disabled_reason: None,
        }
    }
}

impl HookPatch {
    pub fn parse(body: &Value, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let obj = as_object(body, PATCH_FIELDS)?;
        Ok(Self {
            name: obj.get("name").map(parse_name).transpose()?,
            events: obj.get("events").map(parse_events).transpose()?,
            config: obj
                .get("config")
                .map(|c| parse_config(c, policy))
                .transpose()?,
            enabled: obj
                .get("enabled")
                .map(|v| parse_bool(v, "enabled"))
                .transpose()?,
        })
    }

    /// The hook after the patch; re-enabling clears `disabledReason`.
    pub fn apply(self, hook: &Hook, now_ms: i64) -> Hook {
        let mut next = hook.clone();
        if let Some(name) = self.name {
            next.name = name;
        }
        if let Some(events) = self.events {
            next.events = events;
        }
        if let Some((url, headers)) = self.config {
            next.url = url;
            next.headers = headers;
        }
        if let Some(enabled) = self.enabled {
            next.enabled = enabled;
            if enabled {
                next.disabled_reason = None;
            }
        }
        next.updated_at = now_ms.max(hook.updated_at + 1);
        next
    }
}

/// Body of `POST /api/hooks/{id}/test`: events to send a sample of, and an optional config
/// to try instead of the stored one.
#[derive(Debug)]
pub struct TestRequest {
    pub events: Vec<EventName>,
    pub config: Option<(HookUrl, CustomHeaders)>,
}

impl TestRequest {
    pub fn parse(body: &Value, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let obj = as_object(body, &["events", "config"])?;
        Ok(Self {
            events: parse_events(obj.get("events").ok_or_else(|| required("events"))?)?,
            config: obj
                .get("config")
                .map(|c| parse_config(c, policy))
                .transpose()?,
        })
    }
}

/// Body of `PATCH /api/hooks/{id}/signing-key`: how long the old key keeps signing.
pub fn parse_rotation(body: &Value) -> Result<u64, ValidationError> {
    let obj = as_object(body, &["expireAfterSeconds"])?;
    match obj.get("expireAfterSeconds") {
        None | Some(Value::Null) => Ok(DEFAULT_KEY_GRACE_SECS),
        Some(v) => v
            .as_u64()
            .filter(|s| *s <= MAX_KEY_GRACE_SECS)
            .ok_or_else(|| {
                ValidationError::new(
                    "expireAfterSeconds",
                    format!("must be an integer from 0 to {MAX_KEY_GRACE_SECS}"),
                )
            }),
    }
}

pub const DEFAULT_KEY_GRACE_SECS: u64 = 86_400;
pub const MAX_KEY_GRACE_SECS: u64 = 604_800;

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

fn required(field: &str) -> ValidationError {
    ValidationError::new(field, "is required")
}

fn as_object<'a>(
    body: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, ValidationError> {
    let Value::Object(obj) = body else {
        return Err(ValidationError::new("", "body must be a JSON object"));
    };
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ValidationError::new(
            printable(unknown),
            "is not a known field",
        ));
    }
    Ok(obj)
}

fn parse_name(v: &Value) -> Result<String, ValidationError> {
    match v {
        Value::String(s) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_CHARS => {
            if s.chars().any(char::is_control) {
                Err(ValidationError::new(
                    "name",
                    "must not contain control characters",
                ))
            } else {
                Ok(s.clone())
            }
        }
        _ => Err(ValidationError::new(
            "name",
            format!("must be a string of 1 to {MAX_NAME_CHARS} characters"),
        )),
    }
}

fn parse_events(v: &Value) -> Result<Vec<EventName>, ValidationError> {
    let Value::Array(items) = v else {
        return Err(ValidationError::new(
            "events",
            "must be an array of event names",
        ));
    };
    if items.is_empty() {
        return Err(ValidationError::new("events", "must not be empty"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("events[{i}]");
        let Value::String(s) = item else {
            return Err(ValidationError::new(field, "must be a string"));
        };
        let e = EventName::parse(s)
            .ok_or_else(|| ValidationError::new(&field, "is not an event of the catalog"))?;
        if out.contains(&e) {
            return Err(ValidationError::new(field, "is repeated"));
        }
        out.push(e);
    }
    Ok(out)
}

fn parse_config(v: &Value, policy: UrlPolicy) -> Result<(HookUrl, CustomHeaders), ValidationError> {
    let obj = as_object(v, &["url", "headers", "retries"]).map_err(|e| e.under("config"))?;
    let url = match obj.get("url") {
        Some(Value::String(s)) => HookUrl::parse(s, policy).map_err(|e| e.under("config"))?,
        Some(_) => return Err(ValidationError::new("config.url", "must be a string")),
        None => return Err(required("config.url")),
    };
    let headers = match obj.get("headers") {
        None | Some(Value::Null) => CustomHeaders::default(),
        Some(h) => CustomHeaders::parse(h).map_err(|e| e.under("config"))?,
    };
    Ok((url, headers))
}

fn parse_bool(v: &Value, field: &str) -> Result<bool, ValidationError> {
    v.as_bool()
        .ok_or_else(|| ValidationError::new(field, "must be a boolean"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HTTPS_ONLY: UrlPolicy = UrlPolicy { allow_http: false };
    const WITH_HTTP: UrlPolicy = UrlPolicy { allow_http: true };

    fn valid() -> Value {
        json!({"name": "crm", "events": ["PostSignIn", "User.Created"],
               "config": {"url": "https://hooks.example.com/in", "headers": {"x-api-key": "s3cr3t"}}})
    }

    #[test]
    fn parses_a_valid_hook() {
        let h = NewHook::parse(&valid(), HTTPS_ONLY).unwrap().into_hook(5);
        assert_eq!(
            h.events,
            vec![EventName::PostSignIn, EventName::UserCreated]
        );
        assert!(h.enabled);
        assert!(h.signing_key.expose().starts_with("whsec_"));
        assert_eq!(h.headers.len(), 1);
        assert!(h.id.as_str().starts_with("hook_"));
        let json = h.to_json();
        assert_eq!(json["config"]["url"], "https://hooks.example.com/in");
        assert_eq!(json["createdAt"], 5);
    }

    #[test]
    fn debug_hides_header_values_and_keys() {
        let h = NewHook::parse(&valid(), HTTPS_ONLY).unwrap().into_hook(5);
        let dbg = format!("{h:?}");
        assert!(!dbg.contains("s3cr3t"));
        assert!(!dbg.contains(h.signing_key.expose()));
    }

    #[test]
    fn rejects_every_bad_field_with_its_path() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), ""),
            (
                json!({"events": ["PostSignIn"], "config": {"url": "https://a.example"}}),
                "name",
            ),
            (
                json!({"name": "", "events": ["PostSignIn"], "config": {"url": "https://a.example"}}),
                "name",
            ),
            (
                json!({"name": "x".repeat(257), "events": ["PostSignIn"], "config": {"url": "https://a.example"}}),
                "name",
            ),
            (
                json!({"name": "n", "events": [], "config": {"url": "https://a.example"}}),
                "events",
            ),
            (
                json!({"name": "n", "events": ["Nope"], "config": {"url": "https://a.example"}}),
                "events[0]",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn", "PostSignIn"], "config": {"url": "https://a.example"}}),
                "events[1]",
            ),
            (json!({"name": "n", "events": ["PostSignIn"]}), "config"),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {}}),
                "config.url",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "http://a.example"}}),
                "config.url",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "ftp://a.example"}}),
                "config.url",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "/relative"}}),
                "config.url",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://u:p@a.example"}}),
                "config.url",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example/#frag"}}),
                "config.url",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": {"bad name": "v"}}}),
                "config.headers.badname",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": {"Host": "v"}}}),
                "config.headers.Host",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": {"webhook-id": "v"}}}),
                "config.headers.webhook-id",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": {"logto-signature-sha-256": "v"}}}),
                "config.headers.logto-signature-sha-256",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": {"Connection": "v"}}}),
                "config.headers.Connection",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": {"x-a": "v\r\nx-b: 1"}}}),
                "config.headers.x-a",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": {"x-a": 1}}}),
                "config.headers.x-a",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example"}, "enabled": "yes"}),
                "enabled",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example"}, "signingKey": "short"}),
                "signingKey",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example"}, "extra": 1}),
                "extra",
            ),
        ];
        for (body, field) in cases {
            let err = NewHook::parse(&body, HTTPS_ONLY).expect_err(&body.to_string());
            assert_eq!(err.field, field, "{body}");
        }
        let many: Map<String, Value> = (0..21).map(|i| (format!("x-{i}"), json!("v"))).collect();
        let body = json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "headers": many}});
        assert_eq!(
            NewHook::parse(&body, HTTPS_ONLY).unwrap_err().field,
            "config.headers"
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
    fn http_only_where_allowed() {
        let body = json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "http://127.0.0.1:9/x"}});
        assert!(NewHook::parse(&body, HTTPS_ONLY).is_err());
        assert!(NewHook::parse(&body, WITH_HTTP).is_ok());
    }

    #[test]
    fn patch_replaces_config_whole_and_reenabling_clears_reason() {
        let mut h = NewHook::parse(&valid(), HTTPS_ONLY).unwrap().into_hook(5);
        h.enabled = false;
        h.disabled_reason = Some("410".into());
        let patch = HookPatch::parse(
            &json!({"config": {"url": "https://b.example"}, "enabled": true}),
            HTTPS_ONLY,
        )
        .unwrap();
        let next = patch.apply(&h, 5);
        assert_eq!(next.url.as_str(), "https://b.example/");
        assert!(next.headers.is_empty());
        assert!(next.enabled && next.disabled_reason.is_none());
        assert_eq!(next.name, "crm");
        assert!(next.updated_at > h.updated_at);
        assert_eq!(
            HookPatch::parse(&json!({"signingKey": "x"}), HTTPS_ONLY)
                .unwrap_err()
                .field,
            "signingKey"
        );
    }

    #[test]
    fn retired_keys_sign_only_during_grace() {
        let mut h = NewHook::parse(&valid(), HTTPS_ONLY).unwrap().into_hook(5);
        let old = SigningKey::generate();
        h.retired_keys.push(RetiredKey {
            key: old.clone(),
            expires_at: 100,
        });
        assert_eq!(h.signing_keys(99).len(), 2);
        assert_eq!(h.signing_keys(100).len(), 1);
    }
}
