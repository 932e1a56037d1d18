//! A minimal webhook receiver in Rust (axum).
//!
//! It verifies the Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`; a timestamp at most 5 minutes away; any `v1,` entry may match, so a
//! rotated key keeps working) and, when the request carries it, Logto's
//! `logto-signature-sha-256`; it answers a repeated `webhook-id` 200 without doing the work
//! again, and answers at once.
//!
//! `WEBHOOK_SECRET=whsec_... PORT=8080 cargo run` (`PORT=0` picks a free port; the bound port
//! is printed as `listening on PORT`). `BROKEN=no-timestamp` or `BROKEN=dup-error` breaks it on
//! purpose, for the receiver check's own tests.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

const TOLERANCE_SECS: i64 = 5 * 60;

struct Receiver {
    secret: String,
    broken: String,
    seen: Mutex<HashSet<String>>,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Receiver {
    fn standard_valid(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        let (Some(id), Some(timestamp), Some(signatures)) = (
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            header(headers, "webhook-signature"),
        ) else {
            return false;
        };
        let Ok(ts) = timestamp.parse::<i64>() else {
            return false;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if self.broken != "no-timestamp" && (now - ts).abs() > TOLERANCE_SECS {
            return false;
        }
        let encoded = self.secret.strip_prefix("whsec_").unwrap_or(&self.secret);
        let Ok(key) = STANDARD.decode(encoded) else {
            return false;
        };
        signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|sig| {
                let mut m = mac(&key);
                m.update(format!("{id}.{timestamp}.").as_bytes());
                m.update(body);
                m.verify_slice(&sig).is_ok()
            })
    }

    fn logto_valid(&self, signature: &str, body: &[u8]) -> bool {
        let Ok(sig) = hex::decode(signature) else {
            return false;
        };
        let mut m = mac(self.secret.as_bytes());
        m.update(body);
        m.verify_slice(&sig).is_ok()
    }
}

async fn receive(
    State(this): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if !this.standard_valid(&headers, &body) {
        return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid signature"}"#);
    }
    if let Some(logto) = header(&headers, "logto-signature-sha-256")
        && !this.logto_valid(logto, &body)
    {
        return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid signature"}"#);
    }
    let id = header(&headers, "webhook-id")
        .unwrap_or_default()
        .to_string();
    let first = this.seen.lock().unwrap().insert(id);
    if !first {
        if this.broken == "dup-error" {
            return (StatusCode::CONFLICT, r#"{"error":"already received"}"#);
        }
        return (StatusCode::OK, r#"{"duplicate":true}"#);
    }
    // Hand the event to a task or a queue here and answer at once.
    (StatusCode::OK, r#"{"received":true}"#)
}

#[tokio::main]
async fn main() {
    let secret = std::env::var("WEBHOOK_SECRET").expect("WEBHOOK_SECRET is required");
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let receiver = Arc::new(Receiver {
        secret,
        broken: std::env::var("BROKEN").unwrap_or_default(),
        seen: Mutex::new(HashSet::new()),
    });
    let app = Router::new()
        .fallback(post(receive))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("the port is free");
    println!("listening on {}", listener.local_addr().unwrap().port());
    axum::serve(listener, app).await.unwrap();
}
