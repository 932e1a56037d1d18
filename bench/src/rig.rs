//! What the benchmark's AWS runs share: a moto server with an SDK configuration whose calls may
//! take up to 30 s (moto is slow under a cold start's load), and requests to the router in
//! process.

use axum::body::Body;
use http::Request;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;
use webhooks_tests::moto_server::{MotoServer, sdk_config};

/// A fresh moto server and an SDK configuration pointing at it.
pub async fn start() -> (MotoServer, aws_config::SdkConfig) {
    let moto = MotoServer::start().await;
    let sdk = sdk_config(
        &moto.endpoint,
        aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(30))
            .build(),
    )
    .await;
    (moto, sdk)
}

/// Posts `body` to `path` with the bearer `token`; the status and the JSON answer (`null` when
/// it is not JSON).
pub async fn call(app: &axum::Router, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}
