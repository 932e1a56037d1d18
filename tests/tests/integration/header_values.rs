//! Custom header values (§6) refuse every Unicode control character, C0 and C1 alike (NEL,
//! U+0085, is a line break to some parsers), wherever a hook's headers are set, without
//! echoing the value.

use crate::support::{ADMIN, memory_router, request, send};
use http::Method;
use serde_json::json;

const SECRET: &str = "s3cr3t-header-value";

fn controls() -> impl Iterator<Item = char> {
    ('\u{0}'..='\u{1f}').chain('\u{7f}'..='\u{9f}')
}

#[tokio::test]
async fn every_control_character_is_refused_in_a_header_value() {
    let (router, _store, _queue) = memory_router();
    let url = "http://127.0.0.1:9/in";
    let base = json!({"name": "h", "events": ["PostSignIn"], "config": {"url": url}});
    let r = send(
        &router,
        request(Method::POST, "/api/hooks", ADMIN, Some(base)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let hook = r.body_json();
    let id = hook["id"].as_str().unwrap();

    let mut refused = 0;
    for c in controls() {
        let headers = json!({"x-a": format!("{SECRET}{c}tail")});
        let config = json!({"url": url, "headers": headers});
        let attempts = [
            (
                Method::POST,
                "/api/hooks".to_string(),
                json!({"name": "h", "events": ["PostSignIn"], "config": config}),
            ),
            (
                Method::PATCH,
                format!("/api/hooks/{id}"),
                json!({"config": config}),
            ),
            (
                Method::POST,
                format!("/api/hooks/{id}/test"),
                json!({"events": ["PostSignIn"], "config": config}),
            ),
        ];
        for (method, path, body) in attempts {
            let r = send(&router, request(method.clone(), &path, ADMIN, Some(body))).await;
            assert_eq!(r.status, 400, "{method} {path} with {c:?}: {}", r.text());
            assert_eq!(r.body_json()["data"]["field"], "config.headers.x-a");
            assert!(!r.text().contains(SECRET), "the value was echoed");
            refused += 1;
        }
    }
    assert_eq!(refused, 65 * 3);
    let after = send(
        &router,
        request(Method::GET, &format!("/api/hooks/{id}"), ADMIN, None),
    )
    .await;
    assert_eq!(after.body_json(), hook);
    let list = send(&router, request(Method::GET, "/api/hooks", ADMIN, None)).await;
    assert_eq!(list.body_json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn printable_unicode_is_still_accepted() {
    let (router, _store, _queue) = memory_router();
    for value in [
        "plain",
        "caf\u{e9}",
        "\u{a0}non-breaking",
        "emoji \u{1f600}",
    ] {
        let body = json!({"name": "h", "events": ["PostSignIn"],
                          "config": {"url": "http://127.0.0.1:9/in", "headers": {"x-a": value}}});
        let r = send(
            &router,
            request(Method::POST, "/api/hooks", ADMIN, Some(body)),
        )
        .await;
        assert_eq!(r.status, 201, "{value:?}: {}", r.text());
    }
}
