//! Shared by the connectors' `sliced` benches (issue 15; each includes this
//! file with `#[path]`): the arguments, the sandbox set-up and the measured
//! read, so the Stripe, Intercom and Salesforce benches print the same line.
//!
//! A bench starts a [`weft_sandbox::Sandbox`] with [`start_sandbox`], builds
//! its connector's source with its budget and calls [`measure`] once sliced
//! and, with `--sequential`, once more one request at a time.
//!
//! CPU is the whole process's (`/proc/self/stat`): it includes the in-process
//! sandbox rendering the pages, so weft's own share is lower.

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Utc};
use weft_conformance::read::read_stream;
use weft_core::Source;
use weft_sandbox::{Api, Control, Faults, Sandbox, SandboxConfig};

/// `[SIZE] [LATENCY_MS] [RATE] [--sequential]`, numbers in that order.
pub struct Args {
    /// Records in the sandbox (its `size`).
    pub size: usize,
    /// Latency the sandbox adds to every request.
    pub latency_ms: u64,
    /// The budget, in the bench's own unit (requests per second or minute).
    pub rate: u32,
    /// Also read one request at a time.
    pub sequential: bool,
}

impl Args {
    /// The command line's arguments, `rate` defaulting to `default_rate`.
    pub fn parse(default_rate: u32) -> Args {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
        Args {
            size: nums.first().copied().unwrap_or(100_000) as usize,
            latency_ms: nums.get(1).copied().unwrap_or(200),
            rate: nums.get(2).copied().unwrap_or(u64::from(default_rate)) as u32,
            sequential: args.iter().any(|a| a == "--sequential"),
        }
    }
}

/// Starts a sandbox from `config` with `latency_ms` on every request of `api`.
pub async fn start_sandbox(
    config: SandboxConfig,
    api: Api,
    latency_ms: u64,
) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start(config).await?;
    sandbox.control().set_faults(
        api,
        Faults {
            latency_ms,
            ..Faults::default()
        },
    );
    Ok(sandbox)
}

/// User + system CPU seconds of this process so far.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// One measured read.
pub struct Bench<'a> {
    /// The sandbox's control handle (its request log gives the busiest second).
    pub control: Control,
    /// The API the source reads.
    pub api: Api,
    /// The source, built with its budget.
    pub source: &'a dyn Source,
    /// The stream read.
    pub stream: &'a str,
    /// The extraction's start.
    pub started_at: DateTime<Utc>,
    /// The budget in requests per second (achieved rate is compared to it).
    pub budget_per_sec: f64,
    /// The records' key field (unique keys are counted).
    pub key: &'a str,
}

/// Reads the stream (one request at a time with `sequential`) and prints
/// records, unique keys, seconds, requests, the achieved rate against the
/// budget, 429s, peak in flight, slices, the busiest second the sandbox saw
/// and CPU seconds per 100k records.
pub async fn measure(b: &Bench<'_>, sequential: bool) -> Result<(), Box<dyn std::error::Error>> {
    let before = b.control.requests(b.api).len();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let read = read_stream(b.source, b.stream).started_at(b.started_at);
    let read = if sequential {
        read.max_in_flight(1).await
    } else {
        read.await
    };
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let read = read.into_result().map_err(|e| e.to_string())?;
    let requests = b.control.requests(b.api);
    let measured = &requests[before.min(requests.len())..];
    let busiest = weft_sandbox::busiest_second(measured);
    if std::env::var_os("WEFT_BENCH_TIMELINE").is_some() {
        timeline(measured);
    }
    let m = read.metrics;
    let records = read.records.len();
    let unique = read
        .records
        .iter()
        .filter_map(|r| r.get(b.key).map(ToString::to_string))
        .collect::<HashSet<_>>()
        .len();
    let achieved = m.requests as f64 / secs;
    println!(
        "{:<10} records={records} unique={unique} seconds={secs:.2} requests={} \
         achieved={achieved:.1}/s ({:.2} of {:.1}/s) 429s={} ({:.2}%) peak_in_flight={} \
         slices={} split={} busiest_second={busiest} cpu_s={cpu:.2} cpu_s_per_100k={:.2}",
        if sequential { "sequential" } else { "sliced" },
        m.requests,
        achieved / b.budget_per_sec,
        b.budget_per_sec,
        m.rate_limited,
        100.0 * m.rate_limited as f64 / m.requests.max(1) as f64,
        m.peak_in_flight,
        m.slices_planned,
        m.slices_split,
        cpu * 100_000.0 / records.max(1) as f64,
    );
    Ok(())
}

/// With `WEFT_BENCH_TIMELINE` set: each request's arrival (ms after the
/// first) and query, then requests per 250 ms.
fn timeline(requests: &[weft_sandbox::RecordedRequest]) {
    let Some(t0) = requests.iter().map(|r| r.at_ms).min() else {
        return;
    };
    let mut buckets = std::collections::BTreeMap::<u64, usize>::new();
    for r in requests {
        let q: String = r.query.chars().take(160).collect();
        println!("  +{:>5} ms {} {q}", r.at_ms - t0, r.path);
        *buckets.entry((r.at_ms - t0) / 250).or_default() += 1;
    }
    let line: Vec<String> = buckets
        .iter()
        .map(|(b, n)| format!("{}:{n}", b * 250))
        .collect();
    println!("  per 250 ms: {}", line.join(" "));
}
