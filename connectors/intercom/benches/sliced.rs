//! Sliced reads on a slow API (issue 15), Intercom contacts: the sandbox
//! answers every request after a fixed latency and enforces Intercom's
//! documented per-app limit (RATE requests per minute, default 10,000,
//! counted per 10-second window: a sixth of it each); weft's budget is the
//! same RATE. weft reads every contact through the search endpoint, sliced
//! on `updated_at` (and, with `--sequential`, one request at a time).
//! Prints the same line as the Stripe bench (`connectors/stripe/benches/sliced.rs`).
//!
//! `cargo bench -p weft-intercom --bench sliced -- [SIZE=100000] [LATENCY_MS=200] [RATE_PER_MIN=10000] [--sequential]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../stripe/benches/common/sliced.rs"]
mod common;

use common::{Args, Bench, measure, start_sandbox};
use weft_http::BudgetRegistry;
use weft_intercom::{IntercomConfig, IntercomSource};
use weft_sandbox::{Api, DEFAULT_INTERCOM_TOKEN, Sandbox, SandboxConfig};

async fn run(
    sandbox: &Sandbox,
    per_min: u32,
    sequential: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let control = sandbox.control();
    let token = weft_conformance::secret_file(DEFAULT_INTERCOM_TOKEN)?;
    let mut config = IntercomConfig::new(token);
    config.base_url = Some(sandbox.base_url(Api::Intercom));
    config.settle_secs = 0;
    config.requests_per_minute = per_min;
    let source = IntercomSource::new(&config, &BudgetRegistry::new())?;
    let started_at = chrono::DateTime::from_timestamp(control.now(), 0).ok_or("clock")?;
    let bench = Bench {
        control,
        api: Api::Intercom,
        source: &source,
        stream: "contacts",
        started_at,
        budget_per_sec: f64::from(per_min) / 60.0,
        key: "id",
    };
    measure(&bench, sequential).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(10_000);
    // The documented limit on (the sandbox's default), at RATE per minute.
    let config = SandboxConfig {
        size: args.size,
        intercom_requests_per_min: args.rate,
        ..SandboxConfig::default()
    };
    let sandbox = start_sandbox(config, Api::Intercom, args.latency_ms).await?;
    println!(
        "contacts={} latency={}ms sandbox_limit={}/min (per 10 s window)",
        args.size, args.latency_ms, args.rate
    );
    run(&sandbox, args.rate, false).await?;
    if args.sequential {
        run(&sandbox, args.rate, true).await?;
    }
    sandbox.shutdown().await;
    Ok(())
}
