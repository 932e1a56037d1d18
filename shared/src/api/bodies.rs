//! The management API's request bodies, parsed once at the edge into domain values: a new
//! hook, a patch, a test-button request and a key rotation. Bodies are Logto's: the fields a
//! hook is read with (`id`, `createdAt`, `signingKey`, …) are ignored when sent back, the
//! legacy single `event` is taken for `events`, and any other unknown field is refused.

use crate::domain::catalog::EventName;
use crate::domain::hook::{
    CustomHeaders, DisableAfter, Hook, HookId, HookMode, HookUrl, MAX_NAME_CHARS, RateLimit,
    SyncTimeout, UrlPolicy, printable,
};
use crate::domain::signing::SigningKey;
use crate::domain::validation::ValidationError;
use serde_json::{Map, Value};

/// Body of `POST /api/hooks`, validated.
#[derive(Debug)]
pub struct NewHook {
    /// Empty when not given, as in Logto.
    pub name: String,
    pub events: Vec<EventName>,
    /// Logto's legacy `event`, and whether `events` came from it alone.
    pub legacy_event: Option<EventName>,
    pub events_from_legacy: bool,
    pub url: HookUrl,
    pub headers: CustomHeaders,
    pub enabled: bool,
    pub signing_key: Option<SigningKey>,
    pub disable_after: Option<DisableAfter>,
    pub rate_limit: Option<RateLimit>,
    pub retries: Option<u8>,
    pub mode: HookMode,
    pub timeout_ms: Option<SyncTimeout>,
}

/// Body of `PATCH /api/hooks/{id}`, validated; absent fields stay as they are.
#[derive(Debug, Default)]
pub struct HookPatch {
    pub name: Option<String>,
    pub events: Option<Vec<EventName>>,
    /// Logto's legacy `event`: `Some(None)` clears it.
    pub legacy_event: Option<Option<EventName>>,
    pub config: Option<(HookUrl, CustomHeaders)>,
    /// Set with `config` (which replaces the whole config).
    pub disable_after: Option<DisableAfter>,
    pub rate_limit: Option<RateLimit>,
    pub retries: Option<u8>,
    pub mode: HookMode,
    pub timeout_ms: Option<SyncTimeout>,
    pub enabled: Option<bool>,
}

const CREATE_FIELDS: &[&str] = &["name", "event", "events", "config", "enabled", "signingKey"];
const PATCH_FIELDS: &[&str] = &["name", "event", "events", "config", "enabled"];
/// Fields a hook is read with that only the server sets: ignored in a request body, so a
/// fetched hook (of this product or of Logto) can be sent back as it is.
const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "tenantId",
    "createdAt",
    "updatedAt",
    "executionStats",
    "disabledReason",
    "disabledAt",
];
/// Read-only on update: a key is changed by rotation only.
const READ_ONLY_ON_PATCH: &[&str] = &["signingKey"];

/// A hook body without a usable `events` or `event`: Logto's `hook.missing_events`.
pub const MISSING_EVENTS: &str = "at least one event is required (events, or the legacy event)";

impl NewHook {
    pub fn parse(body: &Value, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let obj = as_object(body, CREATE_FIELDS, READ_ONLY_FIELDS)?;
        let name = obj
            .get("name")
            .map(parse_name)
            .transpose()?
            .unwrap_or_default();
        let fields = parse_event_fields(obj)?;
        let legacy_event = fields.event.flatten();
        let events_from_legacy = fields.events.is_none();
        let events = fields
            .events
            .or_else(|| legacy_event.map(|e| vec![e]))
            .ok_or_else(required_events)?;
        let config = obj.get("config").ok_or_else(|| required("config"))?;
        let (url, headers) = parse_config(config, policy)?;
        let disable_after = parse_disable_after(config)?;
        let rate_limit = parse_rate_limit(config)?;
        let retries = parse_retries(config)?;
        let (mode, timeout_ms) = parse_mode(config)?;
        settings_apply(config, mode)?;
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
            legacy_event,
            events_from_legacy,
            url,
            headers,
            enabled,
            signing_key,
            disable_after,
            rate_limit,
            retries,
            mode,
            timeout_ms,
        })
    }

    pub fn into_hook(self, now_ms: i64) -> Hook {
        self.into_hook_with_id(HookId::generate(), now_ms)
    }

    pub fn into_hook_with_id(self, id: HookId, now_ms: i64) -> Hook {
        Hook {
            id,
            name: self.name,
            events: self.events,
            legacy_event: self.legacy_event,
            events_from_legacy: self.events_from_legacy,
            url: self.url,
            headers: self.headers,
            signing_key: self.signing_key.unwrap_or_else(SigningKey::generate),
            retired_keys: Vec::new(),
            enabled: self.enabled,
            created_at: now_ms,
            updated_at: now_ms,
            disabled_reason: None,
            disabled_at: None,
            disable_after: self.disable_after,
            rate_limit: self.rate_limit,
            retries: self.retries,
            mode: self.mode,
            timeout_ms: self.timeout_ms,
        }
    }
}

impl HookPatch {
    pub fn parse(body: &Value, policy: UrlPolicy) -> Result<Self, ValidationError> {
        let ignored = [READ_ONLY_FIELDS, READ_ONLY_ON_PATCH].concat();
        let obj = as_object(body, PATCH_FIELDS, &ignored)?;
        let (mode, timeout_ms) = obj
            .get("config")
            .map(parse_mode)
            .transpose()?
            .unwrap_or_default();
        if let Some(config) = obj.get("config") {
            settings_apply(config, mode)?;
        }
        let fields = parse_event_fields(obj)?;
        Ok(Self {
            name: obj.get("name").map(parse_name).transpose()?,
            events: fields.events,
            legacy_event: fields.event,
            config: obj
                .get("config")
                .map(|c| parse_config(c, policy))
                .transpose()?,
            disable_after: obj
                .get("config")
                .map(parse_disable_after)
                .transpose()?
                .flatten(),
            rate_limit: obj
                .get("config")
                .map(parse_rate_limit)
                .transpose()?
                .flatten(),
            retries: obj.get("config").map(parse_retries).transpose()?.flatten(),
            mode,
            timeout_ms,
            enabled: obj
                .get("enabled")
                .map(|v| parse_bool(v, "enabled"))
                .transpose()?,
        })
    }

    /// The hook after the patch; re-enabling clears `disabledReason`. The legacy `event`
    /// alone changes what is delivered only while `events` follows it, as in Logto.
    pub fn apply(self, hook: &Hook, now_ms: i64) -> Hook {
        let mut next = hook.clone();
        if let Some(name) = self.name {
            next.name = name;
        }
        if let Some(event) = self.legacy_event {
            next.legacy_event = event;
        }
        match self.events {
            // A fetched hook sent back keeps following its legacy event.
            Some(events) => {
                next.events_from_legacy =
                    hook.events_from_legacy && next.legacy_event.is_some_and(|e| events == [e]);
                next.events = events;
            }
            None => match (self.legacy_event, hook.events_from_legacy) {
                (Some(Some(event)), true) => next.events = vec![event],
                // Logto's hook would then have no event at all; it keeps what it had.
                (Some(None), true) => next.events_from_legacy = false,
                _ => {}
            },
        }
        if let Some((url, headers)) = self.config {
            next.url = url;
            next.headers = headers;
            next.disable_after = self.disable_after;
            next.rate_limit = self.rate_limit;
            next.retries = self.retries;
            next.mode = self.mode;
            next.timeout_ms = self.timeout_ms;
        }
        if let Some(enabled) = self.enabled {
            next.enabled = enabled;
            if enabled {
                next.disabled_reason = None;
                next.disabled_at = None;
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
        let obj = as_object(body, &["events", "config"], &[])?;
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
    let obj = as_object(body, &["expireAfterSeconds"], &[])?;
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

fn required(field: &str) -> ValidationError {
    ValidationError::new(field, "is required")
}

fn required_events() -> ValidationError {
    ValidationError::new("events", MISSING_EVENTS)
}

/// A body's `events` and Logto's legacy single `event`, each as given.
struct EventFields {
    events: Option<Vec<EventName>>,
    /// `Some(None)`: `event: null`.
    event: Option<Option<EventName>>,
}

/// `events` and the legacy `event`; `events` decides what is delivered when both are given,
/// as in Logto's dispatcher.
fn parse_event_fields(obj: &Map<String, Value>) -> Result<EventFields, ValidationError> {
    Ok(EventFields {
        events: obj.get("events").map(parse_events).transpose()?,
        event: match obj.get("event") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(event) => Some(Some(parse_event(event)?)),
        },
    })
}

fn parse_event(v: &Value) -> Result<EventName, ValidationError> {
    let Value::String(s) = v else {
        return Err(ValidationError::new("event", "must be an event name"));
    };
    EventName::parse(s)
        .ok_or_else(|| ValidationError::new("event", "is not an event of the catalog"))
}

/// A JSON object whose keys are `allowed` or `ignored` (read-only fields sent back).
fn as_object<'a>(
    body: &'a Value,
    allowed: &[&str],
    ignored: &[&str],
) -> Result<&'a Map<String, Value>, ValidationError> {
    let Value::Object(obj) = body else {
        return Err(ValidationError::new("", "body must be a JSON object"));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && !ignored.contains(&k.as_str()))
    {
        return Err(ValidationError::new(
            printable(unknown),
            "is not a known field",
        ));
    }
    Ok(obj)
}

fn parse_name(v: &Value) -> Result<String, ValidationError> {
    match v {
        // Empty is Logto's default name, kept as it is.
        Value::String(s) if s.chars().count() <= MAX_NAME_CHARS => {
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
            format!("must be a string of at most {MAX_NAME_CHARS} characters"),
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
        // A repeated name is dropped, as Logto does.
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn parse_config(v: &Value, policy: UrlPolicy) -> Result<(HookUrl, CustomHeaders), ValidationError> {
    let obj = as_object(
        v,
        &[
            "url",
            "headers",
            "retries",
            "disableAfter",
            "rateLimit",
            "mode",
            "timeoutMs",
        ],
        &[],
    )
    .map_err(|e| e.under("config"))?;
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

/// `config.disableAfter`, checked by [`parse_config`] to be in a config object.
fn parse_disable_after(config: &Value) -> Result<Option<DisableAfter>, ValidationError> {
    match config.get("disableAfter") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DisableAfter::parse(s).map(Some),
        Some(_) => Err(ValidationError::new(
            "config.disableAfter",
            "must be a duration string such as 5d",
        )),
    }
}

/// `config.mode` (async when absent) and `config.timeoutMs`.
fn parse_mode(config: &Value) -> Result<(HookMode, Option<SyncTimeout>), ValidationError> {
    let mode = match config.get("mode") {
        None | Some(Value::Null) => HookMode::Async,
        Some(v) => HookMode::parse(v)?,
    };
    let timeout = match config.get("timeoutMs") {
        None | Some(Value::Null) => None,
        Some(v) => Some(SyncTimeout::parse(v)?),
    };
    Ok((mode, timeout))
}

/// Refuses a setting that does nothing in the hook's mode: `timeoutMs` limits synchronous
/// calls only; `rateLimit` and `retries` shape queued deliveries only.
fn settings_apply(config: &Value, mode: HookMode) -> Result<(), ValidationError> {
    let set = |field: &str| config.get(field).is_some_and(|v| !v.is_null());
    match mode {
        HookMode::Async if set("timeoutMs") => Err(ValidationError::new(
            "config.timeoutMs",
            "applies to synchronous hooks only (config.mode \"sync\")",
        )),
        HookMode::Sync => match ["rateLimit", "retries"].into_iter().find(|f| set(f)) {
            Some(field) => Err(ValidationError::new(
                format!("config.{field}"),
                "applies to asynchronous hooks only: synchronous calls are neither queued nor retried",
            )),
            None => Ok(()),
        },
        HookMode::Async => Ok(()),
    }
}

/// Logto's deprecated `config.retries`: 0 to 3.
fn parse_retries(config: &Value) -> Result<Option<u8>, ValidationError> {
    match config.get("retries") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= 3)
            .map(|n| Some(n as u8))
            .ok_or_else(|| {
                ValidationError::new("config.retries", "must be an integer from 0 to 3")
            }),
    }
}

/// `config.rateLimit`, deliveries per second.
fn parse_rate_limit(config: &Value) -> Result<Option<RateLimit>, ValidationError> {
    match config.get("rateLimit") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => RateLimit::parse(v).map(Some),
    }
}

fn parse_bool(v: &Value, field: &str) -> Result<bool, ValidationError> {
    v.as_bool()
        .ok_or_else(|| ValidationError::new(field, "must be a boolean"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::EventName;
    use serde_json::Map;
    use serde_json::json;

    const HTTPS_ONLY: UrlPolicy = UrlPolicy { allow_http: false };
    const WITH_HTTP: UrlPolicy = UrlPolicy { allow_http: true };

    #[test]
    fn a_hook_may_carry_its_own_disable_window() {
        let mut body = valid();
        body["config"]["disableAfter"] = json!("36h");
        let hook = NewHook::parse(&body, HTTPS_ONLY).unwrap().into_hook(1);
        let window = hook.disable_after.clone().expect("kept");
        assert_eq!(window.as_str(), "36h");
        assert_eq!(window.duration().as_secs(), 36 * 3_600);
        for bad in [json!("36"), json!(36), json!("0d"), json!("1w")] {
            body["config"]["disableAfter"] = bad.clone();
            let e = NewHook::parse(&body, HTTPS_ONLY).unwrap_err();
            assert_eq!(e.field, "config.disableAfter", "{bad}");
        }
        // A config without it goes back to the deployment's window.
        let patch = HookPatch::parse(
            &json!({"config": {"url": "https://hooks.example.com/in"}}),
            HTTPS_ONLY,
        )
        .unwrap();
        assert_eq!(patch.apply(&hook, 2).disable_after, None);
        let patch = HookPatch::parse(&json!({"name": "n"}), HTTPS_ONLY).unwrap();
        assert_eq!(patch.apply(&hook, 2).disable_after, Some(window));
    }

    #[test]
    fn a_rate_limit_is_a_whole_number_of_deliveries_per_second() {
        let mut body = valid();
        body["config"]["rateLimit"] = json!(5);
        let hook = NewHook::parse(&body, HTTPS_ONLY).unwrap().into_hook(1);
        let limit = hook.rate_limit.expect("kept");
        assert_eq!((limit.per_second(), limit.interval_ms()), (5, 200));
        for bad in [json!(0), json!(1001), json!(2.5), json!("5"), json!(-1)] {
            body["config"]["rateLimit"] = bad.clone();
            let e = NewHook::parse(&body, HTTPS_ONLY).unwrap_err();
            assert_eq!(e.field, "config.rateLimit", "{bad}");
        }
    }

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
        let json = crate::api::views::hook_json(&h);
        assert_eq!(json["config"]["url"], "https://hooks.example.com/in");
        assert_eq!(json["createdAt"], 5);
    }

    #[test]
    fn an_empty_name_is_kept_and_repeated_events_are_dropped_as_logto_does() {
        let hook = NewHook::parse(
            &json!({"name": "", "events": ["PostSignIn", "User.Created", "PostSignIn"],
                    "config": {"url": "https://a.example"}}),
            HTTPS_ONLY,
        )
        .unwrap()
        .into_hook(1);
        assert_eq!(hook.name, "");
        assert_eq!(
            hook.events,
            vec![EventName::PostSignIn, EventName::UserCreated]
        );
        let patch = HookPatch::parse(&json!({"name": ""}), HTTPS_ONLY).unwrap();
        assert_eq!(patch.apply(&hook, 2).name, "");
    }

    #[test]
    fn rejects_every_bad_field_with_its_path() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), ""),
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
            (json!({"name": "n", "events": ["PostSignIn"]}), "config"),
            (
                json!({"name": "n", "config": {"url": "https://a.example"}}),
                "events",
            ),
            (
                json!({"name": "n", "event": "Nope", "config": {"url": "https://a.example"}}),
                "event",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "event": 3, "config": {"url": "https://a.example"}}),
                "event",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "retries": 4}}),
                "config.retries",
            ),
            (
                json!({"name": "n", "events": ["PostSignIn"], "config": {"url": "https://a.example", "extra": 1}}),
                "config.extra",
            ),
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
        assert_eq!(next.url.as_str(), "https://b.example", "as written");
        assert_eq!(next.url.normalized(), "https://b.example/");
        assert!(next.headers.is_empty());
        assert!(next.enabled && next.disabled_reason.is_none());
        assert_eq!(next.name, "crm");
        assert!(next.updated_at > h.updated_at);
        // As in Logto, a key sent with a patch is ignored: rotation changes it.
        let same = HookPatch::parse(&json!({"signingKey": "x"}), HTTPS_ONLY)
            .unwrap()
            .apply(&next, 6);
        assert_eq!(same.signing_key, next.signing_key);
        assert_eq!(
            HookPatch::parse(&json!({"extra": 1}), HTTPS_ONLY)
                .unwrap_err()
                .field,
            "extra"
        );
    }

    #[test]
    fn a_fetched_hook_can_be_sent_back_as_it_is() {
        let h = NewHook::parse(&valid(), HTTPS_ONLY).unwrap().into_hook(5);
        let mut fetched = crate::api::views::hook_json(&h);
        fetched["executionStats"] = json!({"requestCount": 1, "successCount": 1});
        fetched["disabledReason"] = json!("x");
        fetched["tenantId"] = json!("default");
        let patch = HookPatch::parse(&fetched, HTTPS_ONLY).unwrap();
        let next = patch.apply(&h, 6);
        assert_eq!((next.id.clone(), next.created_at), (h.id.clone(), 5));
        assert_eq!(next.events, h.events);
        assert_eq!(next.signing_key, h.signing_key);
        // And created again: the read-only fields are ignored, the key is imported.
        let copy = NewHook::parse(&fetched, HTTPS_ONLY).unwrap().into_hook(7);
        assert_ne!(copy.id, h.id);
        assert_eq!((copy.created_at, &copy.signing_key), (7, &h.signing_key));
    }

    #[test]
    fn logto_bodies_parse_name_event_and_retries_as_logto_does() {
        let url = json!({"url": "https://a.example", "retries": 3});
        let h = NewHook::parse(&json!({"event": "PostRegister", "config": url}), HTTPS_ONLY)
            .unwrap()
            .into_hook(1);
        assert_eq!(h.name, "", "name is optional");
        assert_eq!(h.events, vec![EventName::PostRegister], "legacy event");
        assert_eq!(h.retries, Some(3));
        let json = crate::api::views::hook_json(&h);
        assert_eq!(json["config"]["retries"], 3);
        assert_eq!(json["event"], "PostRegister");
        // While `events` follows the legacy field, a patch of `event` moves it, round trip
        // or not.
        let patch = |body: Value| HookPatch::parse(&body, HTTPS_ONLY).unwrap();
        let moved = patch(json!({"event": "PostSignIn"})).apply(&h, 2);
        assert_eq!(moved.events, vec![EventName::PostSignIn]);
        let fetched = crate::api::views::hook_json(&moved);
        let back = patch(fetched).apply(&moved, 3);
        assert!(back.events_from_legacy);
        let moved = patch(json!({"event": "User.Deleted"})).apply(&back, 4);
        assert_eq!(moved.events, vec![EventName::UserDeleted]);
        // `events` wins over the legacy field, which is then only kept and returned.
        let both = json!({"event": "PostSignIn", "events": ["User.Created"], "config": {"url": "https://a.example"}});
        let h = NewHook::parse(&both, HTTPS_ONLY).unwrap().into_hook(1);
        assert_eq!(h.events, vec![EventName::UserCreated]);
        let kept = patch(json!({"event": "PostRegister"})).apply(&h, 2);
        assert_eq!(kept.events, vec![EventName::UserCreated]);
        assert_eq!(crate::api::views::hook_json(&kept)["event"], "PostRegister");
        let cleared = patch(json!({"event": null})).apply(&kept, 3);
        assert_eq!(
            (cleared.legacy_event, &cleared.events),
            (None, &kept.events)
        );
        let e = NewHook::parse(&json!({"config": {"url": "https://a.example"}}), HTTPS_ONLY)
            .unwrap_err();
        assert_eq!(e.message, MISSING_EVENTS);
    }
}
