//! The benchmark (`scripts/bench`): the dev server binary loaded with events of about 1 KB —
//! a flood of 10,000 events from 32 clients to 10 hooks, persisted and in memory; a flood of
//! the same number of deliveries to 1 hook; two steady rates it sustains, 250 events/s and half
//! the persisted flood's, to 10 hooks — a bare client's ceiling, and the metered price of a
//! delivery on AWS; or, with `--cold-start`, the Lambda binaries' cold starts. The last line
//! printed is one JSON object with every figure.

mod coldstart;
mod cost;
mod local;
mod receiver;
mod rig;
mod usage;

use local::{HOOKS, Load, Persistence, RunFigures};
use serde_json::json;

/// The fixed steady rate, events/s to [`HOOKS`] hooks: 2,500 deliveries/s, well within what
/// the server sustains on the development machine.
const STEADY_EVENTS_PER_S: usize = 250;

struct Args {
    server: String,
    events: usize,
    in_flight: usize,
    rate: Option<usize>,
    /// Length of each steady run.
    seconds: usize,
    /// `local` or `cost`: one part of the run (for working on it); with `--cold-start`, one
    /// function.
    only: Option<String>,
    /// The directory of the release Lambda binaries: measure their cold starts instead.
    cold_start: Option<String>,
    /// Cold starts per function.
    runs: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench --server PATH [--events N] [--in-flight N] [--rate EVENTS_PER_S] [--seconds S] [--only local|flood|cost]\n       bench --cold-start --functions DIR [--runs N] [--only ingest|api|sender]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut args = Args {
        server: String::new(),
        events: 10_000,
        in_flight: 32,
        rate: None,
        seconds: 10,
        only: None,
        cold_start: None,
        runs: 20,
    };
    let mut cold_start = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        let mut number = || value().parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--server" => args.server = it.next().unwrap_or_else(|| usage()),
            "--events" => args.events = number(),
            "--in-flight" => args.in_flight = number(),
            "--rate" => args.rate = Some(number()),
            "--seconds" => args.seconds = number(),
            "--only" => args.only = Some(value()),
            "--cold-start" => cold_start = true,
            "--functions" => args.cold_start = Some(value()),
            "--runs" => args.runs = number().max(1),
            _ => usage(),
        }
    }
    if cold_start != args.cold_start.is_some() || (!cold_start && args.server.is_empty()) {
        usage();
    }
    args
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

fn row(name: &str, f: &RunFigures) {
    println!(
        "| {name} | {:.0} | {:.0} | {:.1} | {:.1} | {:.3} | {:.1} |",
        f.events_per_s,
        f.deliveries_per_s,
        f.p50_ms,
        f.p99_ms,
        f.cpu_s_per_1000_deliveries,
        f.peak_rss_mb
    );
}

/// Cold starts of each Lambda binary in `dir`: a table, then the JSON line.
async fn cold_starts(dir: &str, runs: usize, only: Option<&str>) {
    let bench = coldstart::Bench::start().await;
    println!(
        "| function | binary MB | init ms (median / max) | of which reading SSM ms | RSS after init MB | first invocation ms (median / max) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut figures = Vec::new();
    for function in coldstart::FUNCTIONS {
        if only.is_some_and(|o| o != function) {
            continue;
        }
        let c = bench
            .measure(std::path::Path::new(dir), function, runs)
            .await;
        println!(
            "| {} | {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
            c.function,
            c.binary_mb,
            c.init_ms.median,
            c.init_ms.max,
            c.init_aws_ms.median,
            c.init_aws_ms.max,
            c.rss_mb.median,
            c.rss_mb.max,
            c.first_invocation_ms.median,
            c.first_invocation_ms.max
        );
        figures.push(c);
    }
    let by_name: serde_json::Map<String, serde_json::Value> = figures
        .iter()
        .map(|c| (c.function.clone(), serde_json::to_value(c).unwrap()))
        .collect();
    let max_init_ms = figures.iter().map(|c| c.init_ms.max).fold(0.0, f64::max);
    println!(
        "{}",
        json!({"machine": machine(), "runs": runs, "max_init_ms": max_init_ms, "cold_start": by_name})
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    println!("machine: {}", machine());
    if let Some(dir) = &args.cold_start {
        cold_starts(dir, args.runs, args.only.as_deref()).await;
        return;
    }
    println!(
        "| run | events/s | deliveries/s | p50 ms | p99 ms | CPU-s per 1,000 deliveries | peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|");
    if let Some(rate) = args.rate {
        let steady = local::run(
            &args.server,
            Persistence::File,
            HOOKS,
            Load::Rate {
                per_s: rate,
                seconds: args.seconds,
            },
        )
        .await;
        row(
            &format!("steady {rate} events/s × {HOOKS} hooks, persisted"),
            &steady,
        );
        println!(
            "{}",
            json!({"machine": machine(), "rate_events_per_s": rate, "hooks": HOOKS, "steady_p50_ms": steady.p50_ms, "steady_p99_ms": steady.p99_ms, "steady": steady})
        );
        return;
    }

    if args.only.as_deref() == Some("cost") {
        let aws = cost::Bench::start().await;
        for case in cost::CASES {
            let c = aws.measure(case).await;
            println!("{}", serde_json::to_string_pretty(&c).unwrap());
        }
        return;
    }
    let flood = |events| Load::Flood {
        events,
        in_flight: args.in_flight,
    };
    let steady_at = |per_s| Load::Rate {
        per_s,
        seconds: args.seconds,
    };
    let file = local::run(&args.server, Persistence::File, HOOKS, flood(args.events)).await;
    row(&format!("flood, {HOOKS} hooks, persisted (default)"), &file);
    if args.only.as_deref() == Some("flood") {
        println!("{}", json!({"machine": machine(), "flood": file}));
        return;
    }
    let memory = local::run(&args.server, Persistence::Memory, HOOKS, flood(args.events)).await;
    row(&format!("flood, {HOOKS} hooks, :memory:"), &memory);
    // As many deliveries as the 10-hook flood, so the two compare.
    let single_hook = local::run(
        &args.server,
        Persistence::File,
        1,
        flood(args.events * HOOKS),
    )
    .await;
    row("flood, 1 hook, persisted", &single_hook);
    let steady = local::run(
        &args.server,
        Persistence::File,
        HOOKS,
        steady_at(STEADY_EVENTS_PER_S),
    )
    .await;
    row(
        &format!("steady {STEADY_EVENTS_PER_S} events/s × {HOOKS} hooks, persisted"),
        &steady,
    );
    let half = local::half_rate(&file);
    let steady_half = local::run(&args.server, Persistence::File, HOOKS, steady_at(half)).await;
    row(
        &format!("steady {half} events/s (half the persisted flood's) × {HOOKS} hooks, persisted"),
        &steady_half,
    );
    let ceiling = local::ceiling(args.events * HOOKS, args.in_flight).await;
    println!("bare reqwest POSTs/s to the same receiver (ceiling): {ceiling:.0}");
    let mut line = json!({
        "machine": machine(),
        "hooks": HOOKS,
        "events": file.events,
        "deliveries_per_s": file.deliveries_per_s,
        "events_per_s": file.events_per_s,
        "p50_ms": file.p50_ms,
        "p99_ms": file.p99_ms,
        "steady_p99_ms": steady.p99_ms,
        "cpu_s_per_1000_deliveries": file.cpu_s_per_1000_deliveries,
        "peak_rss_mb": file.peak_rss_mb,
        "ceiling_deliveries_per_s": ceiling,
        "share_of_ceiling": file.deliveries_per_s / ceiling,
        "memory": memory,
        "steady": steady,
        "steady_half": steady_half,
        "single_hook": single_hook,
    });
    if args.only.as_deref() == Some("local") {
        println!("{line}");
        return;
    }

    let aws = cost::Bench::start().await;
    let fan_out_1 = aws.measure(cost::FAN_OUT_1).await;
    let fan_out_10 = aws.measure(cost::FAN_OUT_10).await;
    let single = aws.measure(cost::SINGLE).await;
    let mut others = Vec::new();
    for case in [cost::WITH_IDS, cost::SINGLE_FAN_OUT_10, cost::LOW_RATE] {
        others.push(aws.measure(case).await);
    }
    println!();
    println!(
        "| AWS, per delivery (prices of {}) | WRU | RRU | DynamoDB requests | SQS requests | Lambda ms | $ per million: total | DynamoDB | SQS | Lambda | API Gateway |",
        aws.prices().as_of
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for c in [&fan_out_1, &fan_out_10, &single]
        .into_iter()
        .chain(&others)
    {
        println!(
            "| {}: fan-out {}, {} event(s) per request | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            c.case,
            c.fan_out,
            c.events_per_request,
            c.wru_per_delivery,
            c.rru_per_delivery,
            c.dynamodb_requests_per_delivery,
            c.sqs_requests_per_delivery,
            c.lambda_ms_per_delivery,
            c.usd_per_million_deliveries,
            c.usd_share.dynamodb,
            c.usd_share.sqs,
            c.usd_share.lambda,
            c.usd_share.api_gateway
        );
    }
    // One hook's busiest partition key at 5,000 deliveries a second, from the fan-out 1 case.
    let hottest = fan_out_1
        .hottest_partition
        .as_ref()
        .map_or(0.0, |h| h.wcu_per_s_at_5000_deliveries_per_s);
    if let Some(h) = &fan_out_1.hottest_partition {
        println!(
            "one hook at 5,000 deliveries/s: {:.0} write units/s on its busiest partition key ({}, {})",
            hottest, h.table, h.key_kind
        );
    }
    let cost = json!({
        "wru_per_delivery": fan_out_1.wru_per_delivery,
        "rru_per_delivery": fan_out_1.rru_per_delivery,
        "wru_per_delivery_fan_out_10": fan_out_10.wru_per_delivery,
        "rru_per_delivery_fan_out_10": fan_out_10.rru_per_delivery,
        "usd_per_million_deliveries": {
            "fan_out_1": fan_out_1.usd_per_million_deliveries,
            "fan_out_10": fan_out_10.usd_per_million_deliveries,
            "fan_out_1_one_event_per_request": single.usd_per_million_deliveries,
        },
        "log_usd_per_million_deliveries": {
            "fan_out_1": fan_out_1.logs.usd_per_million_deliveries,
            "fan_out_10": fan_out_10.logs.usd_per_million_deliveries,
        },
        "hottest_partition_wcu_per_s": hottest,
        "prices_as_of": aws.prices().as_of,
        "cost": ([&fan_out_1, &fan_out_10, &single].into_iter().chain(&others).collect::<Vec<_>>()),
    });
    if let (Some(line), Some(cost)) = (line.as_object_mut(), cost.as_object()) {
        line.extend(cost.clone());
    }
    println!("{line}");
}
