//! Events as accepted by `POST /api/events`: parsed once at the edge into [`Event`],
//! which also renders the Logto-compatible body each subscribed hook receives.

use crate::catalog::{EventName, INTERACTION_KINDS};
use crate::hook::HookId;
use crate::validation::ValidationError;
use serde_json::{Map, Value};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most events one batch may carry.
pub const MAX_BATCH: usize = 100;
/// Largest accepted ingest body, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
const MAX_ID_LEN: usize = 128;

/// The event's identity: the caller's idempotency key, or one assigned at ingest.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub fn generate() -> Self {
        Self(format!("evt_{}", ulid::Ulid::new()))
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > MAX_ID_LEN {
            return Err(ValidationError::new(
                "id",
                format!("must be 1 to {MAX_ID_LEN} characters"),
            ));
        }
        if !s.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ValidationError::new(
                "id",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    /// True when the caller supplied `id` (an idempotency key).
    pub caller_id: bool,
    pub name: EventName,
    /// Unix milliseconds of `createdAt`.
    pub created_at_ms: i64,
    /// The delivered fields without `hookId`, serialized once: `{"event":…,"createdAt":…,…,"data":…}`.
    fields_json: String,
}

impl Event {
    /// The body one hook receives: `{"hookId": …}` followed by the event's fields, byte-identical
    /// for every attempt of that delivery.
    pub fn delivered_body(&self, hook: &HookId) -> String {
        let hook = serde_json::to_string(hook.as_str()).expect("a string serializes");
        format!("{{\"hookId\":{hook},{}", &self.fields_json[1..])
    }
}

/// A parsed `POST /api/events` body.
#[derive(Debug)]
pub enum IngestBody {
    Single(Event),
    Batch(Vec<Event>),
}

impl IngestBody {
    pub fn events(&self) -> &[Event] {
        match self {
            IngestBody::Single(e) => std::slice::from_ref(e),
            IngestBody::Batch(v) => v,
        }
    }
}

/// Parses and validates an ingest body, all or nothing.
pub fn parse_ingest(bytes: &[u8], now: OffsetDateTime) -> Result<IngestBody, ValidationError> {
    let Value::Object(obj) = crate::json::parse(bytes)? else {
        return Err(ValidationError::new(
            "",
            "body must be an event object or {\"events\": [...]}",
        ));
    };
    if obj.contains_key("events") && !obj.contains_key("event") {
        if obj.len() != 1 {
            return Err(ValidationError::new(
                "",
                "a batch body has only the `events` field",
            ));
        }
        let Some(Value::Array(items)) = obj.into_iter().next().map(|(_, v)| v) else {
            return Err(ValidationError::new("events", "must be an array"));
        };
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(ValidationError::new(
                "events",
                format!("must hold 1 to {MAX_BATCH} events"),
            ));
        }
        let events = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_event(item, now).map_err(|e| e.under(&format!("events[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(IngestBody::Batch(events));
    }
    parse_event(Value::Object(obj), now).map(IngestBody::Single)
}

fn parse_event(value: Value, now: OffsetDateTime) -> Result<Event, ValidationError> {
    let Value::Object(mut obj) = value else {
        return Err(ValidationError::new("", "must be an object"));
    };
    let name = match obj.remove("event") {
        Some(Value::String(s)) => EventName::parse(&s).ok_or_else(|| {
            ValidationError::new(
                "event",
                "is not an event of the catalog (GET /api/hook-events)",
            )
        })?,
        Some(_) => return Err(ValidationError::new("event", "must be a string")),
        None => return Err(ValidationError::new("event", "is required")),
    };
    if obj.contains_key("hookId") {
        return Err(ValidationError::new(
            "hookId",
            "is set by the server for each hook",
        ));
    }
    let (id, caller_id) = match obj.get("id") {
        None | Some(Value::Null) => (EventId::generate(), false),
        Some(Value::String(s)) => (EventId::parse(s)?, true),
        Some(_) => return Err(ValidationError::new("id", "must be a string")),
    };
    let (created_at, created_at_ms) = match obj.remove("createdAt") {
        None | Some(Value::Null) => {
            let text = now
                .to_offset(time::UtcOffset::UTC)
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .expect("the current time formats as RFC 3339");
            (text, unix_ms(now))
        }
        Some(Value::String(s)) => {
            let parsed = OffsetDateTime::parse(&s, &Rfc3339)
                .map_err(|_| ValidationError::new("createdAt", "must be an RFC 3339 date-time"))?;
            (s, unix_ms(parsed))
        }
        Some(_) => {
            return Err(ValidationError::new(
                "createdAt",
                "must be an RFC 3339 date-time string",
            ));
        }
    };
    match obj.get("userIp") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.parse::<std::net::IpAddr>().is_ok() => {}
        Some(_) => {
            return Err(ValidationError::new(
                "userIp",
                "must be an IPv4 or IPv6 address",
            ));
        }
    }
    match obj.get("interactionEvent") {
        Some(Value::String(s)) if INTERACTION_KINDS.contains(&s.as_str()) => {}
        Some(_) => {
            return Err(ValidationError::new(
                "interactionEvent",
                "must be one of Register, SignIn, ForgotPassword",
            ));
        }
        None => {
            if let Some(kind) = name.implied_interaction() {
                obj.insert("interactionEvent".into(), Value::String(kind.into()));
            }
        }
    }

    let mut fields = Map::with_capacity(obj.len() + 2);
    fields.insert("event".into(), Value::String(name.as_str().into()));
    fields.insert("createdAt".into(), Value::String(created_at));
    let data = obj.remove("data");
    fields.extend(obj);
    if let Some(data) = data {
        fields.insert("data".into(), data);
    }
    let fields_json = serde_json::to_string(&fields).expect("JSON values serialize");
    Ok(Event {
        id,
        caller_id,
        name,
        created_at_ms,
        fields_json,
    })
}

/// A representative event for `POST /api/hooks/{id}/test`.
pub fn sample_event(name: EventName, now: OffsetDateTime) -> Event {
    let mut fields = serde_json::json!({
        "event": name.as_str(),
        "sessionId": "sample_session",
        "userAgent": "Mozilla/5.0 (sample)",
        "userIp": "203.0.113.7",
    });
    if name.is_interaction() {
        fields["userId"] = "sample_user".into();
        fields["user"] = serde_json::json!({"id": "sample_user", "username": "sample", "primaryEmail": "sample@example.com"});
        fields["application"] = serde_json::json!({"id": "sample_app", "name": "Sample app"});
    } else {
        fields["data"] = serde_json::json!({"id": "sample_id", "name": "Sample"});
    }
    parse_event(fields, now).expect("the sample event is valid")
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-26 10:00:00 UTC);

    fn single(body: &str) -> Result<Event, ValidationError> {
        match parse_ingest(body.as_bytes(), NOW)? {
            IngestBody::Single(e) => Ok(e),
            IngestBody::Batch(_) => panic!("expected a single event"),
        }
    }

    fn hook() -> HookId {
        HookId::parse("hook_1").unwrap()
    }

    #[test]
    fn delivered_body_puts_hook_first_and_data_last() {
        let e = single(
            r#"{"data":{"id":"u1"},"event":"User.Created","createdAt":"2026-11-26T09:00:00Z","userId":"u1"}"#,
        )
        .unwrap();
        assert_eq!(
            e.delivered_body(&hook()),
            r#"{"hookId":"hook_1","event":"User.Created","createdAt":"2026-11-26T09:00:00Z","userId":"u1","data":{"id":"u1"}}"#
        );
        assert!(!e.caller_id);
        assert!(e.id.as_str().starts_with("evt_"));
        assert_eq!(e.created_at_ms, 1_795_683_600_000);
    }

    #[test]
    fn defaults_created_at_and_derives_interaction() {
        let e = single(r#"{"event":"PostSignIn","id":"evt_1","userIp":"203.0.113.7"}"#).unwrap();
        let body: Value = serde_json::from_str(&e.delivered_body(&hook())).unwrap();
        assert_eq!(body["createdAt"], "2026-11-26T10:00:00.000Z");
        assert_eq!(body["interactionEvent"], "SignIn");
        assert_eq!(body["id"], "evt_1");
        assert!(e.caller_id);
        assert_eq!(e.id.as_str(), "evt_1");
    }

    #[test]
    fn context_fields_pass_through_unchanged() {
        let e = single(r#"{"event":"Role.Created","custom":{"a":[1,2,{"b":null}]},"data":null}"#)
            .unwrap();
        let body: Value = serde_json::from_str(&e.delivered_body(&hook())).unwrap();
        assert_eq!(body["custom"], serde_json::json!({"a":[1,2,{"b":null}]}));
        assert_eq!(body["data"], Value::Null);
    }

    #[test]
    fn batch_is_all_or_nothing_with_a_field_path() {
        let err = parse_ingest(
            br#"{"events":[{"event":"PostSignIn"},{"event":"Nope"}]}"#,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.field, "events[1].event");
        let ok = parse_ingest(
            br#"{"events":[{"event":"PostSignIn"},{"event":"User.Deleted"}]}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(ok.events().len(), 2);
    }

    #[test]
    fn rejects_every_bad_input_class() {
        let cases: &[(&str, &str)] = &[
            ("not json", ""),
            ("[]", ""),
            ("{}", "event"),
            (r#"{"event":5}"#, "event"),
            (r#"{"event":"user.created"}"#, "event"),
            (
                r#"{"event":"PostSignIn","createdAt":"yesterday"}"#,
                "createdAt",
            ),
            (r#"{"event":"PostSignIn","createdAt":12}"#, "createdAt"),
            (r#"{"event":"PostSignIn","userIp":"300.1.1.1"}"#, "userIp"),
            (
                r#"{"event":"PostSignIn","interactionEvent":"Login"}"#,
                "interactionEvent",
            ),
            (r#"{"event":"PostSignIn","id":""}"#, "id"),
            (r#"{"event":"PostSignIn","id":7}"#, "id"),
            (r#"{"event":"PostSignIn","id":"has space"}"#, "id"),
            (r#"{"event":"PostSignIn","hookId":"x"}"#, "hookId"),
            (r#"{"events":[]}"#, "events"),
            (r#"{"events":{}}"#, "events"),
            (r#"{"events":[1]}"#, "events[0]"),
            (r#"{"events":[{"event":"PostSignIn"}],"other":1}"#, ""),
        ];
        for (body, field) in cases {
            let err = parse_ingest(body.as_bytes(), NOW).expect_err(body);
            assert_eq!(err.field, *field, "{body}");
        }
        let too_many = format!(
            "{{\"events\":[{}]}}",
            vec![r#"{"event":"PostSignIn"}"#; MAX_BATCH + 1].join(",")
        );
        assert_eq!(
            parse_ingest(too_many.as_bytes(), NOW).unwrap_err().field,
            "events"
        );
    }
}
