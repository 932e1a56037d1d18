//! The operator console's files as the dev server serves them: the address, the security
//! headers, and the rules that make it safe by construction (no inline script, nothing from
//! the API parsed as HTML, the token in sessionStorage only).

use crate::support::memory_router;
use axum::body::Body;
use http::{Method, Request};
use webhooks::api::console::{CONTENT_SECURITY_POLICY, FILES};

async fn get(router: &axum::Router, path: &str) -> crate::support::Answer {
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    crate::support::send(router, req).await
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_and_no_token() {
    let (router, _, _) = memory_router();
    let bare = get(&router, "/console").await;
    let r = get(&router, "/console/").await;
    assert_eq!(bare.text(), r.text(), "either address serves the page");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        r.headers["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    let csp = CONTENT_SECURITY_POLICY;
    for directive in [
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert!(
        r.text()
            .contains(r#"<script type="module" src="app.js"></script>"#)
    );

    for (name, content_type, contents) in FILES {
        let r = get(&router, &format!("/console/{name}")).await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.headers["content-type"], *content_type, "{name}");
        assert_eq!(r.text(), *contents, "{name}");
    }
    let r = get(&router, "/console/secrets.json").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body_json()["code"], "route.not_found");
    let r = Request::builder()
        .method(Method::POST)
        .uri("/console/")
        .body(Body::empty())
        .unwrap();
    assert_eq!(crate::support::send(&router, r).await.status, 405);
    // The API behind it still wants its token.
    assert_eq!(get(&router, "/api/hooks").await.status, 401);
}

#[test]
fn the_console_renders_text_only_and_keeps_the_token_in_the_tab() {
    for (name, _, contents) in FILES {
        // Every script is a file of the console; no handler or style is inline.
        let lower = contents.to_ascii_lowercase();
        if name.ends_with(".html") {
            for tag in lower.match_indices("<script").map(|(i, _)| &lower[i..]) {
                let tag = &tag[..tag.find('>').unwrap()];
                assert!(tag.contains(" src="), "an inline script in {name}");
            }
            for attribute in [
                " onclick=",
                " onload=",
                " onerror=",
                " style=",
                "javascript:",
            ] {
                assert!(!lower.contains(attribute), "{attribute} in {name}");
            }
        }
        if name.ends_with(".js") {
            // Nothing is parsed as HTML or evaluated; no other storage holds the token.
            for sink in [
                "innerhtml",
                "outerhtml",
                "insertadjacenthtml",
                "document.write",
                "eval(",
                "new function",
                "localstorage",
                "document.cookie",
                "srcdoc",
            ] {
                assert!(!lower.contains(sink), "{sink} in {name}");
            }
        }
    }
    let api = FILES.iter().find(|(n, _, _)| *n == "api.js").unwrap().2;
    assert!(api.contains("sessionStorage"));
    assert!(api.contains("credentials: 'omit'"));
}
