//! Sliced reads on a slow API (issue 15): the sandbox answers every request
//! after a fixed latency and allows R requests/s; weft reads all Stripe
//! customers sliced (and, with `--sequential`, one request at a time, as
//! dlt `rest_api` and Singer `tap-stripe` page). Prints wall time, requests,
//! the achieved rate against R, 429s, peak in flight, the busiest second the
//! sandbox saw, and CPU seconds per 100k records.
//!
//! `cargo bench -p weft-stripe --bench sliced -- [SIZE=100000] [LATENCY_MS=200] [RATE=100] [--sequential]`
//!
//! The same bench for Intercom contacts and Salesforce Contacts:
//! `cargo bench -p weft-intercom --bench sliced`, `cargo bench -p weft-salesforce --bench sliced`
//! (all three share `benches/common/sliced.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/sliced.rs"]
mod common;

use common::{Args, Bench, measure, start_sandbox};
use weft_http::BudgetRegistry;
use weft_sandbox::{Api, DEFAULT_STRIPE_KEY, Sandbox, SandboxConfig};
use weft_stripe::{StripeConfig, StripeSource};

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
    let started_at = chrono::DateTime::from_timestamp(control.now(), 0).ok_or("clock")?;
    let bench = Bench {
        control,
        api: Api::Stripe,
        source: &source,
        stream: "customers",
        started_at,
        budget_per_sec: f64::from(rate),
        key: "id",
    };
    measure(&bench, sequential).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(100);
    let config = SandboxConfig {
        size: args.size,
        ..SandboxConfig::default()
    };
    let sandbox = start_sandbox(config, Api::Stripe, args.latency_ms).await?;
    sandbox
        .control()
        .set_rate_limit_per_sec(Api::Stripe, Some(args.rate));
    println!(
        "customers={} latency={}ms sandbox_limit={}/s",
        args.size, args.latency_ms, args.rate
    );
    run(&sandbox, args.rate, false).await?;
    if args.sequential {
        run(&sandbox, args.rate, true).await?;
    }
    sandbox.shutdown().await;
    Ok(())
}
