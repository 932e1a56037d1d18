//! Runs of the dev server binary (a child process, so its CPU time and peak memory are its
//! own): a flood of events from 32 clients, or a steady rate, against 10 hooks or one.

use crate::receiver::{Receiver, event_body};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use webhooks_tests::dev_server::DevServer;

const ADMIN: &str = "bench-admin";
const INGEST: &str = "bench-ingest";
/// Hooks subscribed in every run but the single-hook flood.
pub const HOOKS: usize = 10;

/// Where the server keeps its data in a run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    File,
    Memory,
}

pub enum Load {
    /// `events` posted as fast as `in_flight` clients can.
    Flood { events: usize, in_flight: usize },
    /// `per_s` events a second for `seconds`, each posted on time whatever the server's pace.
    Rate { per_s: usize, seconds: usize },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunFigures {
    /// Hooks subscribed: each event is delivered to each.
    pub hooks: usize,
    /// The rate a steady run posted at, events/s; absent for a flood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_events_per_s: Option<usize>,
    pub events: usize,
    pub deliveries: usize,
    pub events_per_s: f64,
    pub deliveries_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_s_per_1000_deliveries: f64,
    pub peak_rss_mb: f64,
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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

/// Peak resident set size of a process, in MB (MiB).
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

async fn post(http: &reqwest::Client, url: &str, n: usize, accepted: &[OnceLock<Instant>]) {
    let r = http
        .post(url)
        .bearer_auth(INGEST)
        .json(&event_body(n))
        .send()
        .await
        .unwrap_or_else(|e| panic!("posting event {n}: {e}"));
    assert_eq!(r.status(), 202, "event {n} was not accepted");
    let _ = accepted[n].set(Instant::now());
}

/// Half the events/s a flood run carried from the first post to the last arrival (its
/// deliveries/s over its hooks), at least 1: a steady rate the server sustains with room.
/// Not the flood's `events_per_s`, the pace of the 202s, which can outrun the deliveries.
pub fn half_rate(flood: &RunFigures) -> usize {
    let delivered_events_per_s = flood.deliveries_per_s / flood.hooks.max(1) as f64;
    ((delivered_events_per_s / 2.0).round() as usize).max(1)
}

/// One run against a fresh server with `hook_count` hooks subscribed to `PostSignIn`.
pub async fn run(
    binary: &str,
    persistence: Persistence,
    hook_count: usize,
    load: Load,
) -> RunFigures {
    let receiver = Receiver::start().await;
    let data_dir = std::env::temp_dir().join(format!("webhooks-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let data = match persistence {
        Persistence::File => data_dir.to_string_lossy().into_owned(),
        Persistence::Memory => ":memory:".to_string(),
    };
    let mut server = DevServer::start(
        binary,
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", &data),
            ("RUST_LOG", "warn"),
        ],
    );
    server.ready().await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let mut hooks = Vec::new();
    for i in 0..hook_count {
        let created: serde_json::Value = http
            .post(format!("{base}/api/hooks"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": format!("bench {i}"), "events": ["PostSignIn"], "config": {"url": receiver.url(&format!("/in/{i}"))}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        hooks.push(created["id"].as_str().expect("a hook id").to_string());
    }

    let (events, rate) = match load {
        Load::Flood { events, .. } => (events, None),
        Load::Rate { per_s, seconds } => (per_s * seconds, Some(per_s)),
    };
    let expected = events * hook_count;
    let accepted: Arc<Vec<OnceLock<Instant>>> =
        Arc::new((0..events).map(|_| OnceLock::new()).collect());
    let url = format!("{base}/api/events");
    let pid = server.pid();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    match load {
        Load::Flood { in_flight, .. } => {
            let next = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..in_flight)
                .map(|_| {
                    let (http, url, next, accepted) =
                        (http.clone(), url.clone(), next.clone(), accepted.clone());
                    tokio::spawn(async move {
                        loop {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            if n >= events {
                                break;
                            }
                            post(&http, &url, n, &accepted).await;
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.unwrap();
            }
        }
        Load::Rate { per_s, .. } => {
            let mut sent = 0;
            let mut tasks = Vec::with_capacity(events);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while sent < events {
                tick.tick().await;
                let due = ((started.elapsed().as_secs_f64() * per_s as f64) as usize).min(events);
                for n in sent..due {
                    let (http, url, accepted) = (http.clone(), url.clone(), accepted.clone());
                    tasks.push(tokio::spawn(async move {
                        post(&http, &url, n, &accepted).await
                    }));
                }
                sent = due;
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    }
    let accepted_in = started.elapsed();
    while receiver.count() < expected {
        if started.elapsed() > Duration::from_secs(600) {
            eprintln!("deliveries stalled: {} of {expected}", receiver.count());
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let delivered_in = started.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss = peak_rss_mb(pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Err(e) = receiver.check_exactly_once(events, &hooks) {
        eprintln!("the run lost or duplicated deliveries: {e}");
        std::process::exit(1);
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&data_dir);

    let mut latencies: Vec<Duration> = receiver
        .log
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(n, at)| {
            let accepted = accepted[*n].get().expect("every event was accepted");
            at.saturating_duration_since(*accepted)
        })
        .collect();
    latencies.sort();
    RunFigures {
        hooks: hook_count,
        rate_events_per_s: rate,
        events,
        deliveries: expected,
        events_per_s: events as f64 / accepted_in.as_secs_f64(),
        deliveries_per_s: expected as f64 / delivered_in.as_secs_f64(),
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        cpu_s_per_1000_deliveries: cpu / expected as f64 * 1000.0,
        peak_rss_mb: rss,
    }
}

/// A bare reqwest client POSTing `requests` bodies of the same size to the same kind of
/// receiver, `in_flight` at a time: the most this machine can deliver.
pub async fn ceiling(requests: usize, in_flight: usize) -> f64 {
    let receiver = Receiver::start().await;
    let body = serde_json::to_vec(&event_body(0)).unwrap();
    let http = reqwest::Client::new();
    let url = receiver.url("/raw");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (http, url, next, body) = (http.clone(), url.clone(), next.clone(), body.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    http.post(&url).body(body.clone()).send().await.unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let rate = requests as f64 / started.elapsed().as_secs_f64();
    assert_eq!(receiver.count(), requests);
    rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood(hooks: usize, events_per_s: f64, deliveries_per_s: f64) -> RunFigures {
        RunFigures {
            hooks,
            rate_events_per_s: None,
            events: 10_000,
            deliveries: 10_000 * hooks,
            events_per_s,
            deliveries_per_s,
            p50_ms: 0.0,
            p99_ms: 0.0,
            cpu_s_per_1000_deliveries: 0.0,
            peak_rss_mb: 0.0,
        }
    }

    #[test]
    fn the_half_rate_is_half_the_events_delivered_per_second() {
        // 6,771 deliveries/s to 10 hooks carried 677.1 events/s; the 202s came faster.
        assert_eq!(half_rate(&flood(10, 2_500.0, 6_771.0)), 339);
        assert_eq!(half_rate(&flood(1, 9_000.0, 5_000.0)), 2_500);
    }

    #[test]
    fn the_half_rate_is_at_least_one_event_per_second() {
        assert_eq!(half_rate(&flood(10, 1.0, 3.0)), 1);
        assert_eq!(half_rate(&flood(0, 0.0, 0.0)), 1);
    }
}
