//! The benchmark: the local pipeline (dev server, embedded store and queue, sender) against a
//! fast receiver on 127.0.0.1, next to a bare reqwest client POSTing to the same receiver.
//! Run with `scripts/bench` (release build); prints one table.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use webhooks::config::{Defaults, Settings};
use webhooks::local::{LocalConfig, LocalServer};

const ADMIN: &str = "bench-admin";
const INGEST: &str = "bench-ingest";

#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<String, Instant>>,
    count: std::sync::atomic::AtomicUsize,
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(id) = v["id"].as_str()
    {
        arrivals.at.lock().unwrap().insert(id.to_string(), now);
    }
    arrivals
        .count
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

/// CPU seconds (user + system) this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);

    let arrivals = Arc::new(Arrivals::default());
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });

    let server = LocalServer::start(LocalConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_tokens: ADMIN.into(),
        ingest_tokens: INGEST.into(),
        data_dir: None,
        settings: Settings::from_lookup(Defaults::local(), |_| None).unwrap(),
        workers: 4,
    })
    .await
    .unwrap();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench", "events": ["PostSignIn"], "config": {"url": format!("http://{receiver}/in")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(concurrency));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(events);
    for n in 0..events {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let http = http.clone();
        let url = format!("{base}/api/events");
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("bench_{n}");
            sent.lock().unwrap().insert(id.clone(), Instant::now());
            let r = http
                .post(url)
                .bearer_auth(INGEST)
                .json(&json!({"event": "PostSignIn", "id": id, "userId": "u"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accepted_in = started.elapsed();
    while arrivals.count.load(std::sync::atomic::Ordering::Relaxed) < events {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "deliveries stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_in = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let sent = sent.lock().unwrap().clone();
    let at = arrivals.at.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, s)| at.get(id).map(|a| a.saturating_duration_since(*s)))
        .collect();
    latencies.sort();
    server.stop().await;

    // The physical ceiling: a bare client POSTing the same size of body to the same receiver.
    let body = serde_json::to_vec(&json!({"hookId": "hook_x", "event": "PostSignIn", "createdAt": "2026-11-26T10:00:00.000Z", "id": "bench_raw", "userId": "u", "interactionEvent": "SignIn"})).unwrap();
    let before = arrivals.count.load(std::sync::atomic::Ordering::Relaxed);
    let raw_started = Instant::now();
    let mut tasks = Vec::with_capacity(events);
    for _ in 0..events {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let http = http.clone();
        let body = body.clone();
        let url = format!("http://{receiver}/raw");
        tasks.push(tokio::spawn(async move {
            http.post(url).body(body).send().await.unwrap();
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let raw_in = raw_started.elapsed();
    assert_eq!(
        arrivals.count.load(std::sync::atomic::Ordering::Relaxed) - before,
        events
    );

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| events accepted/s | {:.0} |",
        events as f64 / accepted_in.as_secs_f64()
    );
    println!(
        "| deliveries/s | {:.0} |",
        events as f64 / delivered_in.as_secs_f64()
    );
    println!(
        "| event→delivery p50 | {:.1} ms |",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "| event→delivery p99 | {:.1} ms |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| CPU-seconds per 1,000 deliveries (whole process: client, server, sender, receiver) | {:.3} |",
        cpu / events as f64 * 1000.0
    );
    println!("| peak RSS | {:.1} MiB |", peak_rss_mib());
    println!(
        "| bare reqwest POSTs/s to the same receiver | {:.0} |",
        events as f64 / raw_in.as_secs_f64()
    );
    println!(
        "({events} events, 1 hook, {concurrency} concurrent clients, {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
}
