//! The HTTP edge: the one router every entry point serves, and the dev server's listener.
//! Refusals come in a fixed order (route, token, method, size, content type), each a JSON
//! error with a code; a 405 lists the served methods in `Allow`.

use crate::support::{ADMIN, Answer, INGEST, memory_router, send};
use axum::Router;
use axum::body::Body;
use http::{Method, Request};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhooks::domain::event::MAX_BODY_BYTES;
use webhooks::startup::local::{LocalConfig, LocalServer};

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    send(router, req.body(Body::from(body)).unwrap()).await
}

fn code(r: &Answer) -> String {
    assert_eq!(
        r.headers["content-type"],
        "application/json",
        "{}",
        r.text()
    );
    r.body_json()["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn allow(r: &Answer) -> BTreeSet<&str> {
    r.headers
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn refusals_come_in_order_route_token_method_size_content_type() {
    let (router, _store, queue) = memory_router();
    let json = "application/json";
    let r = call(&router, Method::GET, "/api/nope", None, "", vec![]).await;
    assert_eq!(
        (r.status.as_u16(), code(&r)),
        (404, "route.not_found".into())
    );
    let r = call(&router, Method::PUT, "/api/hooks", None, "", vec![]).await;
    assert_eq!(
        (r.status.as_u16(), code(&r)),
        (401, "auth.unauthorized".into())
    );
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = call(&router, Method::PUT, "/api/hooks", Some(INGEST), "", vec![]).await;
    assert_eq!(
        (r.status.as_u16(), code(&r)),
        (403, "auth.forbidden".into())
    );
    let r = call(
        &router,
        Method::GET,
        "/api/events",
        Some("wrong"),
        "",
        vec![],
    )
    .await;
    assert_eq!(
        r.status, 401,
        "the token is checked before the method on ingest too"
    );

    let big = vec![b'x'; MAX_BODY_BYTES + 1];
    let r = call(
        &router,
        Method::PUT,
        "/api/hooks",
        Some(ADMIN),
        "text/plain",
        big.clone(),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), code(&r)),
        (405, "route.method_not_allowed".into())
    );
    for path in ["/api/events", "/api/hooks"] {
        let token = if path == "/api/events" { INGEST } else { ADMIN };
        let r = call(
            &router,
            Method::POST,
            path,
            Some(token),
            "text/plain",
            big.clone(),
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), code(&r)),
            (413, "request.too_large".into()),
            "{path}"
        );
        let small = b"{}".to_vec();
        let r = call(
            &router,
            Method::POST,
            path,
            Some(token),
            "text/plain",
            small,
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), code(&r)),
            (415, "request.unsupported_media_type".into()),
            "{path}"
        );
    }
    let at_limit = json!({"event": "PostSignIn", "pad": "x".repeat(MAX_BODY_BYTES - 40)});
    let mut body = at_limit.to_string().into_bytes();
    body.resize(MAX_BODY_BYTES, b' ');
    let r = call(
        &router,
        Method::POST,
        "/api/events",
        Some(INGEST),
        json,
        body,
    )
    .await;
    assert_eq!(
        r.status,
        202,
        "a body of exactly the limit is read: {}",
        r.text()
    );
    assert!(queue.is_empty(), "no hook, no job");
}

#[tokio::test]
async fn method_not_allowed_lists_the_served_methods() {
    let (router, _store, _queue) = memory_router();
    let id = "hook_0000000000000000000000000";
    let hook = format!("/api/hooks/{id}");
    let retry = format!("/api/hooks/{id}/deliveries/msg_1/retry");
    let cases: [(&str, Method, &str, &[&str]); 5] = [
        ("/api/events", Method::GET, INGEST, &["POST"]),
        ("/api/hook-events", Method::POST, ADMIN, &["GET", "HEAD"]),
        (
            "/api/hooks",
            Method::DELETE,
            ADMIN,
            &["GET", "HEAD", "POST"],
        ),
        (
            &hook,
            Method::POST,
            ADMIN,
            &["DELETE", "GET", "HEAD", "PATCH", "PUT"],
        ),
        (&retry, Method::GET, ADMIN, &["POST"]),
    ];
    for (path, method, token, served) in cases {
        let r = call(&router, method.clone(), path, Some(token), "", vec![]).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(code(&r), "route.method_not_allowed");
        assert_eq!(
            allow(&r),
            served.iter().copied().collect(),
            "{method} {path}"
        );
    }
    let r = call(&router, Method::HEAD, "/api/hooks", Some(ADMIN), "", vec![]).await;
    assert_eq!(r.status, 200, "HEAD is served wherever GET is");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn trailing_slashes_are_ignored_and_the_query_kept() {
    let (router, _store, _queue) = memory_router();
    for path in ["/api/hooks/", "/api/hooks//", "/api/hook-events/"] {
        let r = call(&router, Method::GET, path, Some(ADMIN), "", vec![]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = call(
        &router,
        Method::GET,
        "/api/hooks/?page_size=0",
        Some(ADMIN),
        "",
        vec![],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.body_json()["data"]["field"], "page_size");
    let event = br#"{"event":"PostSignIn"}"#.to_vec();
    let r = call(
        &router,
        Method::POST,
        "/api/events/",
        Some(INGEST),
        "application/json",
        event,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    for path in [
        "/",
        "//",
        "/api",
        "/api/",
        "//api/hooks",
        "/api/hooks/x/y/z/",
    ] {
        let r = call(&router, Method::GET, path, Some(ADMIN), "", vec![]).await;
        assert_eq!(
            (r.status.as_u16(), code(&r)),
            (404, "route.not_found".into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn ids_that_name_nothing_are_typed_not_found() {
    let (router, _store, _queue) = memory_router();
    for path in [
        "/api/hooks/nope",
        "/api/hooks/hook_%FF",
        "/api/hooks/hook_0000000000000000000000000/recent-logs",
    ] {
        let r = call(&router, Method::GET, path, Some(ADMIN), "", vec![]).await;
        assert_eq!(
            (r.status.as_u16(), code(&r)),
            (404, "hook.not_found".into()),
            "{path}"
        );
    }
}

fn local_config() -> LocalConfig {
    LocalConfig {
        workers: 1,
        ..crate::support::local_config(crate::support::local_settings())
    }
}

/// Writes `requests` on one connection and reads until the server closes it.
async fn exchange(addr: std::net::SocketAddr, requests: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(requests.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON body of the last answer in `raw`, checked to match its content length.
fn last_json(raw: &str) -> (u16, Value) {
    let start = raw.rfind("HTTP/1.1 ").expect("an answer");
    let (head, body) = raw[start..].split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_dev_server_answers_an_unparsable_request_with_a_json_error() {
    let server = LocalServer::start(local_config()).await.unwrap();
    let auth = format!("authorization: Bearer {ADMIN}\r\n");
    let cases = [
        // http cannot parse this target, so hyper answers before any service runs.
        (
            format!("GET api/hooks HTTP/1.1\r\nhost: x\r\n{auth}\r\n"),
            400,
            "request.malformed",
        ),
        (
            "GET /api/hooks HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n".to_string(),
            400,
            "request.malformed",
        ),
        // After a good request on the same connection, too.
        (
            format!(
                "GET /api/hooks HTTP/1.1\r\nhost: x\r\n{auth}\r\nGET api/hooks HTTP/1.1\r\n\r\n"
            ),
            400,
            "request.malformed",
        ),
        // This one parses (as authority-form), so the router refuses it.
        (
            format!("GET api HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}\r\n"),
            404,
            "route.not_found",
        ),
    ];
    for (request, status, code) in &cases {
        let raw = exchange(server.addr, request).await;
        let (answered, body) = last_json(&raw);
        assert_eq!(answered, *status, "{request:?}: {raw}");
        assert_eq!(body["code"], *code, "{request:?}: {raw}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let raw = exchange(
        server.addr,
        &format!("GET /api/hooks HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}\r\n"),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n[]"), "{raw}");
    server.stop().await;
}
