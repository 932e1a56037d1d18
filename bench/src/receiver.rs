//! The benchmark's receiver on 127.0.0.1: answers 204 at once and notes which event reached
//! which hook when, so a run can prove nothing was lost or duplicated.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Default)]
pub struct Log {
    /// (event number, hook id) → arrivals.
    pub seen: Mutex<HashMap<(usize, String), u32>>,
    /// (event number, arrival time) of every delivery.
    pub arrivals: Mutex<Vec<(usize, Instant)>>,
    pub count: AtomicUsize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub log: Arc<Log>,
}

async fn receive(State(log): State<Arc<Log>>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(n) = v["userId"]
            .as_str()
            .and_then(|u| u.strip_prefix('u'))
            .and_then(|n| n.parse::<usize>().ok())
    {
        let hook = v["hookId"].as_str().unwrap_or_default().to_string();
        *log.seen.lock().unwrap().entry((n, hook)).or_default() += 1;
        log.arrivals.lock().unwrap().push((n, now));
    }
    log.count.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Self {
        let log = Arc::new(Log::default());
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.log.count.load(Ordering::Relaxed)
    }

    /// Checks that each of `events` reached each of `hooks` exactly once; the error says how
    /// many were lost and duplicated.
    pub fn check_exactly_once(&self, events: usize, hooks: &[String]) -> Result<(), String> {
        let seen = self.log.seen.lock().unwrap();
        let mut lost = 0;
        let mut duplicated = 0;
        for n in 0..events {
            for hook in hooks {
                match seen.get(&(n, hook.clone())).copied().unwrap_or(0) {
                    0 => lost += 1,
                    1 => {}
                    more => duplicated += more as usize - 1,
                }
            }
        }
        let stray = seen.len().saturating_sub(events * hooks.len() - lost);
        if lost + duplicated + stray > 0 {
            return Err(format!(
                "{lost} deliveries lost, {duplicated} duplicated, {stray} unexpected"
            ));
        }
        Ok(())
    }
}

/// Text that compresses about as well as real profile data does (hex digests: about half).
fn varied_text(n: usize, len: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut text = String::with_capacity(len + 64);
    let mut i = 0u32;
    while text.len() < len {
        let digest = Sha256::new()
            .chain_update(n.to_le_bytes())
            .chain_update(i.to_le_bytes())
            .finalize();
        text.push_str(&hex::encode(digest));
        i += 1;
    }
    text.truncate(len);
    text
}

/// A body of about 1 KB: the event, its number as `userId`, and a profile.
pub fn event_body(n: usize) -> serde_json::Value {
    serde_json::json!({
        "event": "PostSignIn",
        "userId": format!("u{n}"),
        "userIp": "203.0.113.7",
        "user": {
            "id": format!("u{n}"),
            "username": format!("user{n}"),
            "primaryEmail": format!("user{n}@example.com"),
            "name": "Benchmark User",
            "customData": {"bio": varied_text(n, 700)}
        }
    })
}
