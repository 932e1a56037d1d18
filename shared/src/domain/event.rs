//! Events as accepted by `POST /api/events`: parsed once at the edge into [`Event`],
//! which also renders the Logto-compatible body each subscribed hook receives. The caller's
//! fields are copied as the raw JSON they were posted as (numbers, escapes, key order), never
//! re-encoded through numbers or strings.

use crate::domain::catalog::{EventName, INTERACTION_KINDS};
use crate::domain::hook::HookId;
use crate::domain::ids::typed_id;
use crate::domain::validation::ValidationError;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most events one batch may carry.
pub const MAX_BATCH: usize = 100;
/// Largest accepted ingest body, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
const MAX_ID_LEN: usize = 128;

typed_id!(
    /// The event's identity: the caller's idempotency key, or one assigned at ingest.
    text EventId
);

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

    /// The id under which a `wait=true` repeat claims the synchronous calls of this event when
    /// it was first accepted without waiting (a caller's id never has this form by chance).
    pub fn sync_calls(&self) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("sync#{hex}"))
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
    /// The delivered fields without `hookId`, serialized once, in the order they were posted.
    fields_json: String,
}

impl Event {
    /// The body one hook receives: `{"hookId": …}` followed by the event's fields, byte-identical
    /// for every attempt of that delivery.
    pub fn delivered_body(&self, hook: &HookId) -> String {
        delivered_body(&self.fields_json, hook)
    }

    /// The delivered fields without `hookId` (a JSON object), the same for every hook.
    pub fn fields_json(&self) -> &str {
        &self.fields_json
    }

    /// An event accepted before, as its jobs carried it: `fields_json` was validated then.
    pub fn accepted(id: EventId, name: EventName, created_at_ms: i64, fields_json: String) -> Self {
        Self {
            id,
            caller_id: true,
            name,
            created_at_ms,
            fields_json,
        }
    }
}

/// The body `hook` receives of an event whose delivered fields are `fields_json`.
pub fn delivered_body(fields_json: &str, hook: &HookId) -> String {
    let hook = serde_json::to_string(hook.as_str()).expect("a string serializes");
    match fields_json.get(1..) {
        Some(rest) if rest != "}" => format!("{{\"hookId\":{hook},{rest}"),
        _ => format!("{{\"hookId\":{hook}}}"),
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
    let Value::Object(obj) = crate::domain::json::parse(bytes)? else {
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
        let raw: RawBatch = serde_json::from_slice(bytes)
            .map_err(|e| ValidationError::new("events", format!("must be an array: {e}")))?;
        let events = items
            .into_iter()
            .zip(raw.events)
            .enumerate()
            .map(|(i, (item, raw))| {
                parse_event(item, raw.get(), now, Origin::Caller)
                    .map_err(|e| e.under(&format!("events[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(IngestBody::Batch(events));
    }
    let raw = std::str::from_utf8(bytes)
        .map_err(|_| ValidationError::new("", "body is not valid UTF-8"))?;
    parse_event(Value::Object(obj), raw, now, Origin::Caller).map(IngestBody::Single)
}

/// Parses a body a Logto instance relayed (one event, as Logto's dispatcher sends it) under
/// the event id `id`: Logto's `hookId` is dropped and every other member, `id` included, is
/// delivered as sent. Only a body that is not a JSON object, or whose `event` is missing or
/// unknown, is an error; the names of fields a caller could not have posted come second.
pub fn parse_relayed(
    bytes: &[u8],
    now: OffsetDateTime,
    id: EventId,
) -> Result<(Event, Vec<String>), ValidationError> {
    let Value::Object(mut obj) = crate::domain::json::parse(bytes)? else {
        return Err(ValidationError::new("", "body must be an event object"));
    };
    obj.remove("hookId");
    let raw = std::str::from_utf8(bytes)
        .map_err(|_| ValidationError::new("", "body is not valid UTF-8"))?;
    let mut unchecked = Vec::new();
    let event = parse_event_noting(
        Value::Object(obj),
        raw,
        now,
        Origin::Relayed(id),
        &mut unchecked,
    )?;
    Ok((event, unchecked))
}

/// Where an event comes from: a caller of `POST /api/events`, or a Logto instance through
/// the relay (whose body carries Logto's `hookId` and no idempotency key).
enum Origin {
    Caller,
    Relayed(EventId),
}

#[derive(serde::Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// An object's members as posted: keys decoded, values as their raw JSON text, in order.
struct RawFields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Members<'a> {
            type Value = RawFields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(RawFields(members))
            }
        }
        d.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// Writes a JSON object member by member.
struct ObjectWriter {
    out: String,
}

impl ObjectWriter {
    fn with_capacity(n: usize) -> Self {
        let mut out = String::with_capacity(n + 2);
        out.push('{');
        Self { out }
    }

    /// Appends `"key":value`, where `value` is JSON text.
    fn member(&mut self, key: &str, value: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        self.out.push_str(&quoted(key));
        self.out.push(':');
        self.out.push_str(value);
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The id lists of an `Organization.Membership.Updated` delta, each optional.
const MEMBERSHIP_DELTAS: &[&str] = &[
    "addedUserIds",
    "removedUserIds",
    "addedApplicationIds",
    "removedApplicationIds",
];

fn parse_event(
    value: Value,
    raw: &str,
    now: OffsetDateTime,
    origin: Origin,
) -> Result<Event, ValidationError> {
    parse_event_noting(value, raw, now, origin, &mut Vec::new())
}

/// Parses one event. From a caller, any rule broken refuses it; relayed from Logto, only a
/// missing or unknown `event` does: a field breaking another rule is delivered as sent and
/// its name added to `unchecked`, and the body's members are kept as they came.
fn parse_event_noting(
    value: Value,
    raw: &str,
    now: OffsetDateTime,
    origin: Origin,
    unchecked: &mut Vec<String>,
) -> Result<Event, ValidationError> {
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
    let relayed = matches!(origin, Origin::Relayed(_));
    // A rule broken: refused from a caller, noted when relayed.
    let mut broken = |e: ValidationError| -> Result<(), ValidationError> {
        if relayed {
            unchecked.push(e.field);
            Ok(())
        } else {
            Err(e)
        }
    };
    if obj.contains_key("hookId") {
        return Err(ValidationError::new(
            "hookId",
            "is set by the server for each hook",
        ));
    }
    let (id, caller_id) = match (origin, obj.get("id")) {
        (Origin::Relayed(id), _) => (id, true),
        (Origin::Caller, None | Some(Value::Null)) => (EventId::generate(), false),
        (Origin::Caller, Some(Value::String(s))) => (EventId::parse(s)?, true),
        (Origin::Caller, Some(_)) => return Err(ValidationError::new("id", "must be a string")),
    };
    // Normalised to `Date.toISOString()`'s form: UTC, milliseconds, `Z` (a relayed one is
    // delivered as sent).
    let created_at_ms = match obj.remove("createdAt") {
        None | Some(Value::Null) => unix_ms(now),
        Some(Value::String(s)) => match OffsetDateTime::parse(&s, &Rfc3339) {
            Ok(parsed) => unix_ms(parsed),
            Err(_) => {
                broken(ValidationError::new(
                    "createdAt",
                    "must be an RFC 3339 date-time",
                ))?;
                unix_ms(now)
            }
        },
        Some(_) => {
            broken(ValidationError::new(
                "createdAt",
                "must be an RFC 3339 date-time string",
            ))?;
            unix_ms(now)
        }
    };
    for field in ["userIp", "ip"] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.parse::<std::net::IpAddr>().is_ok() => {}
            Some(_) => broken(ValidationError::new(
                field,
                "must be an IPv4 or IPv6 address",
            ))?,
        }
    }
    let implied_interaction = match obj.get("interactionEvent") {
        Some(Value::String(s)) if INTERACTION_KINDS.contains(&s.as_str()) => None,
        Some(_) => {
            broken(ValidationError::new(
                "interactionEvent",
                "must be one of Register, SignIn, ForgotPassword",
            ))?;
            None
        }
        None if relayed => None,
        None => name.implied_interaction(),
    };
    if name == EventName::OrganizationMembershipUpdated {
        if let Some(v) = obj.get("organizationId")
            && !v.is_string()
        {
            broken(ValidationError::new("organizationId", "must be a string"))?;
        }
        for field in MEMBERSHIP_DELTAS {
            match obj.get(*field) {
                None => {}
                Some(Value::Array(ids)) if ids.iter().all(Value::is_string) => {}
                Some(_) => broken(ValidationError::new(*field, "must be an array of ids"))?,
            }
        }
    }

    // The posted members in their order and form; from a caller `createdAt` normalised, the
    // idempotency `id` left out, and what is implied written right after `event`; relayed,
    // every member but Logto's `hookId` as sent.
    let members = serde_json::from_str::<RawFields>(raw)
        .map_err(|e| ValidationError::new("", format!("must be an object: {e}")))?;
    let created_at = quoted(&crate::domain::clock::iso(created_at_ms));
    let posted_created_at = members
        .0
        .iter()
        .any(|(k, v)| k == "createdAt" && v.get() != "null");
    let mut fields = ObjectWriter::with_capacity(raw.len() + 64);
    for (key, value) in &members.0 {
        match key.as_str() {
            "hookId" if relayed => {}
            _ if relayed => fields.member(key, value.get()),
            "event" => {
                fields.member("event", &quoted(name.as_str()));
                if let Some(kind) = implied_interaction {
                    fields.member("interactionEvent", &quoted(kind));
                }
                if !posted_created_at {
                    fields.member("createdAt", &created_at);
                }
            }
            "createdAt" if posted_created_at => fields.member("createdAt", &created_at),
            "createdAt" => {}
            "id" => {}
            other => fields.member(other, value.get()),
        }
    }
    let fields_json = fields.finish();
    Ok(Event {
        id,
        caller_id,
        name,
        created_at_ms,
        fields_json,
    })
}

/// A sample event for `POST /api/hooks/{id}/test`, in the shape of Logto's test payloads
/// (`generateHookTestPayload`): `event`, `createdAt` and `userAgent`, then an interaction's
/// context (session, user, application) or a data event's (path, method, status, params,
/// data), with Logto's fake values.
pub fn sample_event(name: EventName, now: OffsetDateTime) -> Event {
    let created_at_ms = unix_ms(now);
    let mut fields = serde_json::json!({
        "event": name.as_str(),
        "createdAt": crate::domain::clock::iso(created_at_ms),
        "userAgent": "fake-user-agent",
    });
    let context = if name.is_interaction() {
        serde_json::json!({
            "sessionId": "fake-session-id",
            "userIp": "fake-user-ip",
            "userId": "fake-id",
            "user": {
                "id": "fake-id",
                "username": "fake-user",
                "primaryEmail": "fake-user@fake-service.com",
                "primaryPhone": "1234567890",
                "name": "Fake User",
                "avatar": "https://fake-service.com/avatars/fake-user.png",
                "customData": {"theme": "light"},
                "identities": {"google": {"userId": "fake-google-user-id"}},
                "profile": {},
                "applicationId": "fake-application-id",
                "isSuspended": false,
                "lastSignInAt": created_at_ms,
                "createdAt": created_at_ms,
                "updatedAt": created_at_ms,
            },
            "application": {
                "id": "fake-spa-application-id",
                "type": "SPA",
                "name": "Fake Application",
                "description": "Fake application data for testing",
            },
        })
    } else {
        serde_json::json!({
            "path": "/fake-path/:id",
            "method": "POST",
            "status": 200,
            "params": {"id": "fake-id"},
            "data": {"result": "success"},
        })
    };
    if let (Some(fields), Value::Object(context)) = (fields.as_object_mut(), context) {
        fields.extend(context);
    }
    Event::accepted(EventId::generate(), name, created_at_ms, fields.to_string())
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
    fn delivered_body_puts_hook_first_and_keeps_the_posted_order() {
        let e = single(
            r#"{"data":{"id":"u1"},"event":"User.Created","createdAt":"2026-11-26T10:00:00+01:00","userId":"u1"}"#,
        )
        .unwrap();
        assert_eq!(
            e.delivered_body(&hook()),
            r#"{"hookId":"hook_1","data":{"id":"u1"},"event":"User.Created","createdAt":"2026-11-26T09:00:00.000Z","userId":"u1"}"#
        );
        assert!(!e.caller_id);
        assert!(e.id.as_str().starts_with("evt_"));
        assert_eq!(e.created_at_ms, 1_795_683_600_000);
    }

    #[test]
    fn defaults_created_at_and_derives_interaction() {
        let e = single(r#"{"event":"PostSignIn","id":"evt_1","userIp":"203.0.113.7"}"#).unwrap();
        assert_eq!(
            e.delivered_body(&hook()),
            r#"{"hookId":"hook_1","event":"PostSignIn","interactionEvent":"SignIn","createdAt":"2026-11-26T10:00:00.000Z","userIp":"203.0.113.7"}"#,
            "the idempotency id is not delivered"
        );
        assert!(e.caller_id);
        assert_eq!(e.id.as_str(), "evt_1");
    }

    #[test]
    fn posted_values_arrive_byte_for_byte() {
        let fields = r#""big":12345678901234567890123,"one":1.0,"exp":1E+2,"neg":-0,"s":"caf\u00e9 \ud83d\ude00","nested":{"z":1,"a":[1.50,{"y":null}]},"data":{"b":1,"a":2}"#;
        let e = single(&format!(
            r#"{{"event":"Role.Created","createdAt":"2026-11-26T09:00:00.123456Z",{fields}}}"#
        ))
        .unwrap();
        assert_eq!(
            e.delivered_body(&hook()),
            format!(
                r#"{{"hookId":"hook_1","event":"Role.Created","createdAt":"2026-11-26T09:00:00.123Z",{fields}}}"#
            )
        );
        let batch = parse_ingest(
            format!(r#"{{"events":[{{"event":"Role.Deleted",{fields}}}]}}"#).as_bytes(),
            NOW,
        )
        .unwrap();
        assert!(
            batch.events()[0]
                .delivered_body(&hook())
                .ends_with(&format!("{fields}}}"))
        );
    }

    #[test]
    fn membership_deltas_are_ids() {
        let ok = single(
            r#"{"event":"Organization.Membership.Updated","organizationId":"org_1","addedUserIds":["u1"],"removedApplicationIds":[]}"#,
        )
        .unwrap();
        let body: Value = serde_json::from_str(&ok.delivered_body(&hook())).unwrap();
        assert_eq!(body["addedUserIds"], serde_json::json!(["u1"]));
        assert!(body.get("data").is_none());
        for (body, field) in [
            (
                r#"{"event":"Organization.Membership.Updated","addedUserIds":"u1"}"#,
                "addedUserIds",
            ),
            (
                r#"{"event":"Organization.Membership.Updated","removedUserIds":[1]}"#,
                "removedUserIds",
            ),
            (
                r#"{"event":"Organization.Membership.Updated","organizationId":7}"#,
                "organizationId",
            ),
        ] {
            assert_eq!(single(body).unwrap_err().field, field, "{body}");
        }
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
            (r#"{"event":"User.Created","ip":"localhost"}"#, "ip"),
            (r#"{"event":"User.Created","ip":7}"#, "ip"),
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
