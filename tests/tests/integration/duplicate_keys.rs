//! Repeated JSON keys in request bodies. serde_json keeps the last one while many receivers
//! keep the first, so a body that says two things is refused (400 naming the key) on every
//! route that reads JSON, and changes nothing.

use crate::support::{ADMIN, Answer, INGEST, memory_router, send};
use axum::Router;
use axum::body::Body;
use http::{Method, Request};
use serde_json::{Value, json};

async fn raw(router: &Router, method: Method, path: &str, token: &str, body: &str) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(router, req).await
}

fn assert_repeated(r: &Answer, field: &str, body: &str) {
    assert_eq!(r.status, 400, "{body}: {}", r.text());
    let answer = r.body_json();
    assert_eq!(answer["code"], "guard.invalid_input", "{body}");
    assert_eq!(answer["data"]["field"], field, "{body}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("repeated"), "{body}: {message}");
}

#[tokio::test]
async fn ingest_refuses_a_repeated_key_anywhere_and_queues_nothing() {
    let (router, _store, queue) = memory_router();
    let hook = json!({"name": "all", "events": ["PostSignIn", "User.Deleted"],
                      "config": {"url": "http://127.0.0.1:9/in"}});
    let r = raw(
        &router,
        Method::POST,
        "/api/hooks",
        ADMIN,
        &hook.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let cases = [
        (r#"{"event":"PostSignIn","event":"User.Deleted"}"#, "event"),
        (
            r#"{"event":"User.Deleted","userId":"a","userId":"b"}"#,
            "userId",
        ),
        (
            r#"{"event":"User.Deleted","data":{"id":"u_1","id":"u_2"}}"#,
            "data.id",
        ),
        (
            r#"{"event":"User.Deleted","data":[{"a":1},{"a":1,"a":1}]}"#,
            "data[1].a",
        ),
        (
            r#"{"event":"User.Deleted","id":"evt_1","id":"evt_2"}"#,
            "id",
        ),
        (
            r#"{"events":[{"event":"PostSignIn"}],"events":[{"event":"User.Deleted"}]}"#,
            "events",
        ),
        (
            r#"{"events":[{"event":"PostSignIn"},{"event":"PostSignIn","event":"User.Deleted"}]}"#,
            "events[1].event",
        ),
    ];
    for (body, field) in cases {
        let r = raw(&router, Method::POST, "/api/events", INGEST, body).await;
        assert_repeated(&r, field, body);
        assert!(queue.is_empty(), "{body} queued a job");
    }

    // The same key at different levels, or differing in case, is not a repeat.
    let fine = r#"{"event":"User.Deleted","Event":"x","data":{"event":"y","data":{"event":"z"}}}"#;
    let r = raw(&router, Method::POST, "/api/events", INGEST, fine).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(queue.len(), 1);
}

#[tokio::test]
async fn management_bodies_refuse_a_repeated_key_and_change_nothing() {
    let (router, _store, queue) = memory_router();
    let create = r#"{"name":"a","events":["PostSignIn"],"config":{"url":"http://127.0.0.1:9/in","headers":{"x-a":"1"}}}"#;
    let r = raw(&router, Method::POST, "/api/hooks", ADMIN, create).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let hook = r.body_json();
    let id = hook["id"].as_str().unwrap();
    let at = |suffix: &str| format!("/api/hooks/{id}{suffix}");

    let cases: Vec<(Method, String, &str, &str)> = vec![
        (
            Method::POST,
            "/api/hooks".into(),
            r#"{"name":"a","name":"b","events":["PostSignIn"],"config":{"url":"http://127.0.0.1:9/in"}}"#,
            "name",
        ),
        (
            Method::POST,
            "/api/hooks".into(),
            r#"{"name":"a","events":["PostSignIn"],"config":{"url":"http://127.0.0.1:9/in","headers":{"x-a":"1","x-a":"2"}}}"#,
            "config.headers.x-a",
        ),
        (
            Method::PATCH,
            at(""),
            r#"{"enabled":true,"enabled":false}"#,
            "enabled",
        ),
        (
            Method::PATCH,
            at(""),
            r#"{"config":{"url":"http://127.0.0.1:9/a","url":"http://127.0.0.1:9/b"}}"#,
            "config.url",
        ),
        (
            Method::PATCH,
            at("/signing-key"),
            r#"{"expireAfterSeconds":0,"expireAfterSeconds":60}"#,
            "expireAfterSeconds",
        ),
        (
            Method::POST,
            at("/test"),
            r#"{"events":["PostSignIn"],"events":["User.Deleted"]}"#,
            "events",
        ),
        (
            Method::POST,
            at("/recover"),
            r#"{"since":0,"since":1}"#,
            "since",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = raw(&router, method.clone(), &path, ADMIN, body).await;
        assert_repeated(&r, field, body);
    }
    let after = raw(&router, Method::GET, &at(""), ADMIN, "").await;
    assert_eq!(after.body_json(), hook, "a refused body changed the hook");
    let list = raw(&router, Method::GET, "/api/hooks", ADMIN, "").await;
    assert_eq!(list.body_json(), Value::Array(vec![hook]));
    assert!(queue.is_empty());
}
