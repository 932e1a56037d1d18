//! A receiver on 127.0.0.1 that answers 200 only after a delay and timestamps every arrival,
//! so a test can kill a sender while its requests are in flight and then order what arrived
//! against what was recorded.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use webhooks::domain::clock::now_ms;

#[derive(Debug, Clone)]
pub struct Arrival {
    pub webhook_id: String,
    /// Unix milliseconds when the request reached the handler.
    pub at_ms: i64,
    pub body: Bytes,
}

struct Shared {
    delay: Duration,
    arrivals: Mutex<Vec<Arrival>>,
    in_flight: AtomicUsize,
}

#[derive(Clone)]
pub struct SlowReceiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SlowReceiver {
    pub async fn start(delay: Duration) -> Self {
        let shared = Arc::new(Shared {
            delay,
            arrivals: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(answer_slowly)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.arrivals.lock().unwrap().clone()
    }

    pub fn arrival_count(&self) -> usize {
        self.shared.arrivals.lock().unwrap().len()
    }

    /// Requests that arrived and are not answered yet.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer_slowly(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(&shared.in_flight);
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    shared.arrivals.lock().unwrap().push(Arrival {
        webhook_id,
        at_ms: now_ms(),
        body,
    });
    tokio::time::sleep(shared.delay).await;
    StatusCode::OK
}
