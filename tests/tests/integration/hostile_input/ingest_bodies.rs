//! `POST /api/events` against generated event bodies: 202 only when every rule holds.

use super::*;

fn event_name(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = select(&CATALOG[..]).prop_map(|n| Field::ok(json!(n)));
    if valid_only {
        return valid.boxed();
    }
    let mangled = (select(&CATALOG[..]), 0..5u8)
        .prop_map(|(n, how)| match how {
            0 => n.to_lowercase(),
            1 => n.to_uppercase(),
            2 => format!("{n} "),
            3 => n.replace('.', "_"),
            _ => format!("x{n}"),
        })
        .prop_filter("outside the catalog", |s| !CATALOG.contains(&s.as_str()));
    let junk = string_of("abcDEF.PostSign", 0..=24)
        .prop_filter("outside the catalog", |s| !CATALOG.contains(&s.as_str()));
    prop_oneof![
        10 => valid,
        1 => mangled.prop_map(|s| Field::bad(Some(json!(s)), "event")),
        1 => junk.prop_map(|s| Field::bad(Some(json!(s)), "event")),
        1 => prop_oneof![Just(Value::Null), not_string()]
            .prop_map(|v| Field::bad(Some(v), "event")),
        1 => Just(Field::bad(None, "event")),
    ]
    .boxed()
}

fn event_id(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        3 => Just(Field::absent()),
        1 => Just(Field::ok(Value::Null)),
        1 => printable(1..=8).prop_map(|s| Field::ok(json!(s))),
        1 => printable(120..=128).prop_map(|s| Field::ok(json!(s))),
    ];
    if valid_only {
        return valid.boxed();
    }
    let bad = |s: String| Field::bad(Some(json!(s)), "id");
    prop_oneof![
        12 => valid,
        1 => Just(bad(String::new())),
        1 => printable(129..=160).prop_map(bad),
        1 => (printable(1..=6), printable(1..=6)).prop_map(move |(a, b)| bad(format!("{a} {b}"))),
        1 => (printable(0..=6), select(vec!['é', '\t', '\u{0}', '日']))
            .prop_map(move |(a, c)| bad(format!("{a}{c}"))),
        1 => not_string().prop_map(|v| Field::bad(Some(v), "id")),
    ]
    .boxed()
}

/// RFC 3339 date-times built from their parts.
fn rfc3339() -> BoxedStrategy<String> {
    let offset = prop_oneof![
        2 => Just("Z".to_string()),
        1 => (any::<bool>(), 0u8..=23, 0u8..=59)
            .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
    ];
    let fraction = option::of(string_of("0123456789", 1..=9)).prop_map(|f| match f {
        Some(f) => format!(".{f}"),
        None => String::new(),
    });
    (
        0u16..=9999,
        1u8..=12,
        1u8..=28,
        0u8..=23,
        0u8..=59,
        0u8..=59,
        fraction,
        offset,
    )
        .prop_map(|(y, mo, d, h, mi, s, f, o)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{o}")
        })
        .boxed()
}

fn created_at(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        3 => Just(Field::absent()),
        1 => Just(Field::ok(Value::Null)),
        3 => rfc3339().prop_map(|s| Field::ok(json!(s))),
    ];
    if valid_only {
        return valid.boxed();
    }
    let near_miss = (rfc3339(), 0u8..7, 0u8..=99).prop_map(|(s, how, n)| match how {
        0 => format!("{}{:02}{}", &s[..5], 13 + n % 87, &s[7..]),
        1 => format!("{}{:02}{}", &s[..8], 32 + n % 68, &s[10..]),
        2 => format!("{}{:02}{}", &s[..11], 24 + n % 76, &s[13..]),
        3 => format!("{}{:02}{}", &s[..14], 60 + n % 40, &s[16..]),
        4 => s[..19].to_string(),
        5 => format!("{}-02-30{}", &s[..4], &s[10..]),
        _ => s[2..].to_string(),
    });
    let bad = |s: String| Field::bad(Some(json!(s)), "createdAt");
    prop_oneof![
        8 => valid,
        2 => near_miss.prop_map(bad),
        1 => string_of("abcdefyesterday ", 0..=16).prop_map(bad),
        1 => not_string().prop_map(|v| Field::bad(Some(v), "createdAt")),
    ]
    .boxed()
}

fn user_ip(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        2 => Just(Field::absent()),
        1 => Just(Field::ok(Value::Null)),
        1 => any::<[u8; 4]>().prop_map(|o| Field::ok(json!(Ipv4Addr::from(o).to_string()))),
        1 => any::<[u16; 8]>().prop_map(|s| Field::ok(json!(Ipv6Addr::from(s).to_string()))),
    ];
    if valid_only {
        return valid.boxed();
    }
    let bad = |s: String| Field::bad(Some(json!(s)), "userIp");
    let bad_octet = (any::<[u8; 4]>(), 0usize..4, 256u16..=999).prop_map(|(o, i, big)| {
        let mut parts: Vec<String> = o.iter().map(u8::to_string).collect();
        parts[i] = big.to_string();
        parts.join(".")
    });
    prop_oneof![
        8 => valid,
        1 => bad_octet.prop_map(bad),
        1 => string_of("ghijklmnopqrstuvwxyz", 0..=8).prop_map(bad),
        1 => any::<[u8; 4]>().prop_map(move |o| bad(format!("{}:80", Ipv4Addr::from(o)))),
        1 => not_string().prop_map(|v| Field::bad(Some(v), "userIp")),
    ]
    .boxed()
}

fn interaction(valid_only: bool) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        3 => Just(Field::absent()),
        1 => select(&INTERACTION_KINDS[..]).prop_map(|k| Field::ok(json!(k))),
    ];
    if valid_only {
        return valid.boxed();
    }
    prop_oneof![
        8 => valid,
        1 => string_of("abcdefghinrstuw", 0..=8)
            .prop_map(|s| Field::bad(Some(json!(s)), "interactionEvent")),
        1 => prop_oneof![Just(Value::Null), not_string()]
            .prop_map(|v| Field::bad(Some(v), "interactionEvent")),
    ]
    .boxed()
}

fn hook_id(valid_only: bool) -> BoxedStrategy<Field> {
    if valid_only {
        return Just(Field::absent()).boxed();
    }
    prop_oneof![
        15 => Just(Field::absent()),
        1 => json_value().prop_map(|v| Field::bad(Some(v), "hookId")),
    ]
    .boxed()
}

const EVENT_KEYS: [&str; 8] = [
    "event",
    "events",
    "id",
    "createdAt",
    "userIp",
    "interactionEvent",
    "hookId",
    "data",
];

fn context_key() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec![
            "userId",
            "sessionId",
            "userAgent",
            "user",
            "application"
        ])
        .prop_map(str::to_string),
        string_of("abcxyzABC_$", 1..=10),
    ]
    .prop_filter("not an event field", |k| !EVENT_KEYS.contains(&k.as_str()))
    .boxed()
}

#[derive(Debug, Clone)]
struct GenEvent {
    value: Value,
    bad: Vec<String>,
    caller_id: Option<String>,
}

fn gen_event(valid_only: bool) -> BoxedStrategy<GenEvent> {
    let object = (
        event_name(valid_only),
        event_id(valid_only),
        created_at(valid_only),
        user_ip(valid_only),
        interaction(valid_only),
        hook_id(valid_only),
        option::of(json_value()),
        vec((context_key(), json_value()), 0..3),
    )
        .prop_map(|(event, id, created, ip, kind, hook, data, extras)| {
            let mut obj = Map::new();
            let mut bad = Vec::new();
            let caller_id = match (&id.value, id.bad.is_empty()) {
                (Some(Value::String(s)), true) => Some(s.clone()),
                _ => None,
            };
            let named = [
                ("event", event),
                ("id", id),
                ("createdAt", created),
                ("userIp", ip),
                ("interactionEvent", kind),
                ("hookId", hook),
            ];
            for (key, field) in named {
                bad.extend(field.bad);
                if let Some(v) = field.value {
                    obj.insert(key.to_string(), v);
                }
            }
            for (k, v) in extras {
                obj.insert(k, v);
            }
            if let Some(d) = data {
                obj.insert("data".into(), d);
            }
            GenEvent {
                value: Value::Object(obj),
                bad,
                caller_id,
            }
        });
    if valid_only {
        return object.boxed();
    }
    prop_oneof![
        12 => object,
        1 => not_object().prop_map(|value| GenEvent {
            value,
            bad: vec![String::new()],
            caller_id: None,
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum IngestCase {
    Bytes(Vec<u8>),
    Mutated(Vec<u8>),
    Single(GenEvent),
    Batch {
        items: Vec<GenEvent>,
        extra: Option<(String, Value)>,
    },
    NotObject(Value),
}

/// What the handler must answer.
enum Expect {
    Accept {
        single: bool,
        ids: Vec<Option<String>>,
    },
    Reject(Vec<String>),
    /// Raw bytes: no oracle beyond "valid JSON with catalog events, or a 4xx".
    Unknown,
}

impl IngestCase {
    fn render(self) -> (Vec<u8>, Expect) {
        match self {
            IngestCase::Bytes(b) | IngestCase::Mutated(b) => (b, Expect::Unknown),
            IngestCase::NotObject(v) => (
                v.to_string().into_bytes(),
                Expect::Reject(vec![String::new()]),
            ),
            IngestCase::Single(e) => {
                let bytes = e.value.to_string().into_bytes();
                let expect = if e.bad.is_empty() {
                    Expect::Accept {
                        single: true,
                        ids: vec![e.caller_id],
                    }
                } else {
                    Expect::Reject(e.bad)
                };
                (bytes, expect)
            }
            IngestCase::Batch { items, extra } => {
                let mut bad = Vec::new();
                let mut body = Map::new();
                if let Some((k, v)) = extra {
                    bad.push(String::new());
                    body.insert(k, v);
                }
                if items.is_empty() || items.len() > 100 {
                    bad.push("events".into());
                }
                for (i, e) in items.iter().enumerate() {
                    let at = format!("events[{i}]");
                    bad.extend(e.bad.iter().map(|p| join(&at, p)));
                }
                let ids = items.iter().map(|e| e.caller_id.clone()).collect();
                body.insert(
                    "events".into(),
                    Value::Array(items.into_iter().map(|e| e.value).collect()),
                );
                let bytes = Value::Object(body).to_string().into_bytes();
                let expect = if bad.is_empty() {
                    Expect::Accept { single: false, ids }
                } else {
                    Expect::Reject(bad)
                };
                (bytes, expect)
            }
        }
    }
}

fn batch_size() -> BoxedStrategy<usize> {
    prop_oneof![8 => 1usize..=6, 1 => 95usize..=105, 1 => 106usize..=120].boxed()
}

fn ingest_case() -> BoxedStrategy<IngestCase> {
    let any_event = gen_event(false);
    let valid_event = gen_event(true);
    let valid_batch = batch_size().prop_flat_map(move |n| vec(valid_event.clone(), n));
    let mixed_batch = (vec(gen_event(true), 0..=4), vec(any_event.clone(), 0..=3))
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
        .prop_shuffle();
    let extra = (
        context_key().prop_filter("not `event`", |k| k != "event"),
        json_value(),
    );
    let edits = vec(
        (
            any::<Index>(),
            0u8..3,
            select(b"\"{}[],:\\\0\xff0 e".to_vec()),
        ),
        1..4,
    );
    let mutated = (gen_event(true), edits).prop_map(|(e, edits)| {
        let mut bytes = e.value.to_string().into_bytes();
        for (at, op, b) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => {
                    bytes.remove(i);
                }
                1 if i < bytes.len() => bytes[i] = b,
                _ => bytes.insert(i, b),
            }
        }
        IngestCase::Mutated(bytes)
    });
    let near_limit = (gen_event(true), 0usize..2048).prop_map(|(mut e, k)| {
        let size = e.value.to_string().len();
        let pad = (MAX_BODY - 1024 + k).saturating_sub(size + 14);
        e.value["padding"] = json!("p".repeat(pad));
        IngestCase::Single(e)
    });
    prop_oneof![
        1 => near_limit,
        6 => vec(any::<u8>(), 0..200).prop_map(IngestCase::Bytes),
        6 => mutated,
        12 => any_event.prop_map(IngestCase::Single),
        6 => valid_batch.prop_map(|items| IngestCase::Batch { items, extra: None }),
        6 => (mixed_batch, option::weighted(0.2, extra))
            .prop_map(|(items, extra)| IngestCase::Batch { items, extra }),
        3 => not_object().prop_map(IngestCase::NotObject),
    ]
    .boxed()
}

/// Whether `body` is an event object, or a batch of them, naming only catalog events.
fn names_only_catalog_events(body: &Value) -> bool {
    let known = |e: &Value| e["event"].as_str().is_some_and(|n| CATALOG.contains(&n));
    match body.get("events") {
        Some(Value::Array(items)) if body.get("event").is_none() => items.iter().all(known),
        _ => known(body),
    }
}

async fn check_ingest(
    client: &DeliveryClient,
    hook: &Hook,
    case: IngestCase,
) -> Result<Outcome, TestCaseError> {
    let store = SqliteStore::in_memory();
    store.create_hook(hook).await.expect("the hook is stored");
    let queue = SqliteQueue::in_memory(Duration::from_secs(60), 5);
    let app = app(store, queue.clone(), client, false);
    let (bytes, expect) = case.render();
    let headers = json_headers(INGEST);
    let req = request(Method::POST, "/api/events", headers, bytes.clone());
    let r = send(&app, req).await;
    if r.status != StatusCode::ACCEPTED {
        rejection(&r)?;
        prop_assert!(queue.is_empty(), "a rejected body queued jobs");
    }
    if bytes.len() > MAX_BODY {
        prop_assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        return Ok(Outcome::Rejected);
    }
    match expect {
        Expect::Unknown => {
            // RFC 8259 syntax, numbers of any size (IgnoredAny never converts them).
            let parsed = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes);
            if r.status == StatusCode::ACCEPTED {
                parsed.map_err(|e| fail(format!("accepted a body that is not JSON: {e}")))?;
                // Event names only: a number beyond f64 reads as 0 here.
                let body = webhooks::domain::json::parse(&bytes).unwrap_or(Value::Null);
                prop_assert!(
                    names_only_catalog_events(&body),
                    "accepted events outside the catalog: {}",
                    body
                );
                prop_assert!(!queue.is_empty(), "accepted without queueing a job");
            } else if parsed.is_err() {
                // Not JSON: refused as such, unless a repeated key came before the syntax error.
                let repeated_key = r.status == StatusCode::BAD_REQUEST
                    && rejection(&r)?["message"]
                        .as_str()
                        .is_some_and(|m| m.ends_with("is a repeated key"));
                if !repeated_key {
                    rejected_at(&r, &[String::new()])?;
                }
            }
        }
        Expect::Reject(paths) => rejected_at(&r, &paths)?,
        Expect::Accept { single, ids } => {
            prop_assert_eq!(r.status, StatusCode::ACCEPTED, "{}", text(&r));
            let answer: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let answers = if single {
                vec![answer.clone()]
            } else {
                answer
                    .as_array()
                    .cloned()
                    .ok_or_else(|| fail(format!("a batch answer is a list: {answer}")))?
            };
            prop_assert_eq!(answers.len(), ids.len(), "{}", answer);
            for (a, id) in answers.iter().zip(&ids) {
                prop_assert_eq!(&a["deliveries"], &json!(1), "{}", answer);
                let got = a["id"].as_str().unwrap_or_default();
                match id {
                    Some(id) => prop_assert_eq!(got, id.as_str()),
                    None => prop_assert!(got.starts_with("evt_"), "{}", answer),
                }
            }
            let generated = ids.iter().filter(|i| i.is_none()).count();
            let distinct: HashSet<&String> = ids.iter().flatten().collect();
            prop_assert_eq!(
                queue.len(),
                generated + distinct.len(),
                "one job per accepted event"
            );
        }
    }
    Ok(outcome(&r, StatusCode::ACCEPTED))
}

#[test]
fn ingest_answers_hostile_bodies_with_202_only_when_valid() {
    let rt = runtime();
    let hook = subscriber();
    let client = DeliveryClient::from_settings(&local_settings());
    run("ingest bodies", ingest_case(), |case| {
        rt.block_on(check_ingest(&client, &hook, case))
    });
}
