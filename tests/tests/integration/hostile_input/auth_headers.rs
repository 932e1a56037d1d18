//! `Authorization` and `Content-Type` headers, checked in order on every route.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    Ingest,
}

/// RFC 7235 `Bearer <token>`: the scheme case-insensitive, separated by spaces.
fn role_of(header: Option<&[u8]>) -> Option<Role> {
    let raw = header?;
    if !raw.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\t') {
        return None;
    }
    let s = std::str::from_utf8(raw).ok()?.trim_matches([' ', '\t']);
    let (scheme, token) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    match token.trim_matches([' ', '\t']) {
        ADMIN => Some(Role::Admin),
        INGEST => Some(Role::Ingest),
        _ => None,
    }
}

#[derive(Debug, Clone)]
enum ContentType {
    Missing,
    Json(&'static str),
    Other(&'static str),
    Unclear(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
enum Route {
    PostEvent,
    ListHooks,
    CreateHook,
    Catalog,
}

#[derive(Debug, Clone)]
struct HeaderCase {
    auth: Option<Vec<u8>>,
    content_type: ContentType,
    route: Route,
}

fn auth_header() -> BoxedStrategy<Option<Vec<u8>>> {
    let scheme = prop_oneof![
        3 => select(vec!["Bearer", "bearer", "BEARER", "bEaReR"]),
        1 => select(vec!["Basic", "Token", "", "Bearer:", "Bearer\u{0}"]),
    ];
    let separator = prop_oneof![
        3 => select(vec![" ", "  ", " \t"]),
        1 => select(vec!["\t", ""]),
    ];
    let token = prop_oneof![
        3 => select(vec![ADMIN, ADMIN, INGEST]),
        1 => select(vec![
            "",
            "wrong",
            "admin-test-tokenx",
            "xadmin-test-token",
            "ADMIN-TEST-TOKEN",
            "admin-test-token admin-test-token",
            "ingest-test-toke",
        ]),
    ];
    assert_eq!(
        (ADMIN, INGEST),
        ("admin-test-token", "ingest-test-token"),
        "the near misses above are written against these tokens"
    );
    let padding = select(vec!["", "", " ", "\t"]);
    let composed = (padding.clone(), scheme, separator, token, padding).prop_map(
        |(a, scheme, sep, token, b)| Some(format!("{a}{scheme}{sep}{token}{b}").into_bytes()),
    );
    let spliced = (
        select(vec![ADMIN, INGEST]),
        any::<Index>(),
        prop_oneof![any::<u8>(), 0x80u8..=0xff],
    )
        .prop_map(|(token, at, b)| {
            let mut bytes = format!("Bearer {token}").into_bytes();
            bytes.insert(7 + at.index(token.len() + 1), b);
            Some(bytes)
        });
    prop_oneof![
        1 => Just(None),
        12 => composed,
        2 => spliced,
        2 => vec(any::<u8>(), 0..48).prop_map(Some),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<ContentType> {
    prop_oneof![
        2 => Just(ContentType::Missing),
        6 => select(vec![
            "application/json", "Application/JSON", "application/json; charset=utf-8",
            "application/json;charset=UTF-8", " application/json ", "application/cloudevents+json",
            "application/vnd.api+json",
        ]).prop_map(ContentType::Json),
        3 => select(vec![
            "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "", "application/jsonx", "json", "application/xml", "application/json-patch",
        ]).prop_map(ContentType::Other),
        2 => prop_oneof![
            vec(any::<u8>(), 0..40),
            any::<u8>().prop_map(|b| [b"application/json".as_slice(), &[b]].concat()),
        ].prop_map(ContentType::Unclear),
    ]
    .boxed()
}

fn header_case() -> BoxedStrategy<HeaderCase> {
    (
        auth_header(),
        content_type(),
        select(vec![
            Route::PostEvent,
            Route::ListHooks,
            Route::CreateHook,
            Route::Catalog,
        ]),
    )
        .prop_map(|(auth, content_type, route)| HeaderCase {
            auth,
            content_type,
            route,
        })
        .boxed()
}

async fn check_headers(
    client: &DeliveryClient,
    hook: &Hook,
    case: HeaderCase,
) -> Result<Outcome, TestCaseError> {
    let store = SqliteStore::in_memory();
    store.create_hook(hook).await.expect("the hook is stored");
    let queue = SqliteQueue::in_memory(Duration::from_secs(60), 5);
    let mut headers = HeaderMap::new();
    let auth = case
        .auth
        .as_deref()
        .and_then(|b| HeaderValue::from_bytes(b).ok());
    let sent_auth = auth.as_ref().map(HeaderValue::as_bytes);
    if let Some(v) = &auth {
        headers.insert(AUTHORIZATION, v.clone());
    }
    // Events are read only from a body declared as JSON; other routes take a missing type.
    let missing_ok = !matches!(case.route, Route::PostEvent);
    let json_ok = match &case.content_type {
        ContentType::Missing => Some(missing_ok),
        ContentType::Json(_) => Some(true),
        ContentType::Other(_) => Some(false),
        ContentType::Unclear(_) => None,
    };
    let ct = match &case.content_type {
        ContentType::Missing => None,
        ContentType::Json(s) | ContentType::Other(s) => Some(s.as_bytes()),
        ContentType::Unclear(b) => Some(b.as_slice()),
    };
    let json_ok = match ct.map(HeaderValue::from_bytes) {
        Some(Ok(v)) => {
            headers.insert(CONTENT_TYPE, v);
            json_ok
        }
        Some(Err(_)) | None => Some(missing_ok),
    };
    let (method, path, body, need_admin, reads_body) = match case.route {
        Route::PostEvent => (
            Method::POST,
            "/api/events",
            json!({"event": "PostSignIn"}),
            false,
            true,
        ),
        Route::ListHooks => (Method::GET, "/api/hooks", Value::Null, true, false),
        Route::Catalog => (Method::GET, "/api/hook-events", Value::Null, true, false),
        Route::CreateHook => (
            Method::POST,
            "/api/hooks",
            json!({"name": "h", "events": ["PostSignIn"],
                   "config": {"url": "https://hooks.example.com/h"}}),
            true,
            true,
        ),
    };
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let req = request(method, path, headers, body);
    let r = send(&app(store, queue, client, false), req).await;
    let role = role_of(sent_auth);
    let success = match case.route {
        Route::PostEvent => StatusCode::ACCEPTED,
        Route::CreateHook => StatusCode::CREATED,
        Route::ListHooks | Route::Catalog => StatusCode::OK,
    };
    match (role, need_admin) {
        (None, _) => {
            prop_assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", text(&r));
            prop_assert_eq!(
                r.headers.get(WWW_AUTHENTICATE).map(HeaderValue::as_bytes),
                Some(b"Bearer".as_slice())
            );
            rejection(&r)?;
        }
        (Some(Role::Ingest), true) => {
            prop_assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
            rejection(&r)?;
        }
        (Some(_), _) => match (reads_body, json_ok) {
            (false, _) | (true, Some(true)) => prop_assert_eq!(r.status, success, "{}", text(&r)),
            (true, Some(false)) => {
                prop_assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", text(&r));
                rejection(&r)?;
            }
            (true, None) => {
                if r.status != success {
                    prop_assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", text(&r));
                    rejection(&r)?;
                }
            }
        },
    }
    Ok(outcome(&r, success))
}

#[test]
fn authorization_and_content_type_headers_are_checked_in_order() {
    let rt = runtime();
    let client = DeliveryClient::from_settings(&local_settings());
    let hook = subscriber();
    run("auth and content-type headers", header_case(), |case| {
        rt.block_on(check_headers(&client, &hook, case))
    });
}
