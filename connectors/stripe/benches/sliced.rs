//! Sliced reads on a slow API (issue 15): the sandbox answers every request
//! after a fixed latency and allows R requests/s; weft reads all Stripe
//! customers sliced (and, with `--sequential`, one request at a time, as
//! dlt `rest_api` and Singer `tap-stripe` page). Prints wall time, requests,
//! the achieved rate against R, 429s, peak in flight, the busiest second the
//! sandbox saw, and CPU seconds per 100k records.
//!
//! `cargo bench -p weft-stripe --bench sliced -- [SIZE=100000] [LATENCY_MS=200] [RATE=100] [--sequential]`
//!
//! CPU is the whole process's (`/proc/self/stat`): it includes the in-process
//! sandbox rendering the pages, so weft's own share is lower.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use weft_conformance::read::read_stream;
use weft_http::BudgetRegistry;
use weft_sandbox::{Api, DEFAULT_STRIPE_KEY, Faults, Sandbox, SandboxConfig};
use weft_stripe::{StripeConfig, StripeSource};

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

async fn run(
    sandbox: &Sandbox,
    rate: u32,
    sequential: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let control = sandbox.control();
    let key = weft_conformance::secret_file(DEFAULT_STRIPE_KEY)?;
    let mut config = StripeConfig::new(Some(sandbox.base_url(Api::Stripe)), key);
    config.settle_secs = 0;
    config.requests_per_second = Some(f64::from(rate));
    let source = StripeSource::new(config, &BudgetRegistry::new())?;
    let at = chrono::DateTime::from_timestamp(control.now(), 0).ok_or("clock")?;
    let before = control.requests(Api::Stripe).len();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let read = read_stream(&source, "customers").started_at(at);
    let read = if sequential {
        read.max_in_flight(1).await
    } else {
        read.await
    };
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let read = read.into_result().map_err(|e| e.to_string())?;
    let requests = control.requests(Api::Stripe);
    let busiest = weft_sandbox::busiest_second(&requests[before.min(requests.len())..]);
    let m = read.metrics;
    let records = read.records.len();
    let achieved = m.requests as f64 / secs;
    println!(
        "{:<10} records={records} seconds={secs:.2} requests={} achieved={achieved:.1}/s \
         ({:.2} of {rate}/s) 429s={} ({:.2}%) peak_in_flight={} slices={} split={} \
         busiest_second={busiest} cpu_s={cpu:.2} cpu_s_per_100k={:.2}",
        if sequential { "sequential" } else { "sliced" },
        m.requests,
        achieved / f64::from(rate),
        m.rate_limited,
        100.0 * m.rate_limited as f64 / m.requests.max(1) as f64,
        m.peak_in_flight,
        m.slices_planned,
        m.slices_split,
        cpu * 100_000.0 / records.max(1) as f64,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sequential = args.iter().any(|a| a == "--sequential");
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let size = nums.first().copied().unwrap_or(100_000) as usize;
    let latency_ms = nums.get(1).copied().unwrap_or(200);
    let rate = nums.get(2).copied().unwrap_or(100) as u32;
    let sandbox = Sandbox::start(SandboxConfig {
        size,
        ..SandboxConfig::default()
    })
    .await?;
    let control = sandbox.control();
    control.set_rate_limit_per_sec(Api::Stripe, Some(rate));
    control.set_faults(
        Api::Stripe,
        Faults {
            latency_ms,
            ..Faults::default()
        },
    );
    println!("customers={size} latency={latency_ms}ms sandbox_limit={rate}/s");
    run(&sandbox, rate, false).await?;
    if sequential {
        run(&sandbox, rate, true).await?;
    }
    sandbox.shutdown().await;
    Ok(())
}
