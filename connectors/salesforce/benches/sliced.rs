//! Sliced reads on a slow API (issue 15), Salesforce Contacts over REST: the
//! sandbox answers every request after a fixed latency and allows RATE
//! requests/s (default 25, the connector's default org budget: Salesforce
//! documents no per-second rate, only a daily allocation and 25 concurrent
//! long-running requests per production org); weft's budget is the same
//! RATE. weft reads every Contact with REST query pages (Bulk API off),
//! sliced on `SystemModstamp` (and, with `--sequential`, one request at a
//! time). Prints the same line as the Stripe bench
//! (`connectors/stripe/benches/sliced.rs`). Pages hold 2,000 records
//! (Salesforce's default and maximum `batchSize`).
//!
//! `cargo bench -p weft-salesforce --bench sliced -- [SIZE=100000] [LATENCY_MS=200] [RATE=25] [--sequential]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../stripe/benches/common/sliced.rs"]
mod common;

use common::{Args, Bench, measure, start_sandbox};
use weft_http::BudgetRegistry;
use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceSource};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

async fn run(
    sandbox: &Sandbox,
    rate: u32,
    sequential: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let control = sandbox.control();
    let secret = weft_conformance::secret_file;
    let mut config = SalesforceConfig::new(
        sandbox.base_url(Api::Salesforce),
        SalesforceAuth::RefreshToken {
            client_id: weft_sandbox::DEFAULT_SALESFORCE_CLIENT_ID.into(),
            client_secret: secret(weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET)?,
            refresh_token: secret(weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN)?,
        },
    );
    config.objects = vec!["Contact".into()];
    config.settle_secs = 0;
    // REST query pages only: a Bulk API 2.0 job is not what is measured.
    config.bulk_threshold = u64::MAX;
    config.requests_per_second = Some(f64::from(rate));
    // Login and describe happen here, before the measured read.
    let source = SalesforceSource::connect(config, &BudgetRegistry::new()).await?;
    let started_at = chrono::DateTime::from_timestamp(control.now(), 0).ok_or("clock")?;
    let bench = Bench {
        control,
        api: Api::Salesforce,
        source: &source,
        stream: "Contact",
        started_at,
        budget_per_sec: f64::from(rate),
        key: "Id",
    };
    measure(&bench, sequential).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(25);
    let config = SandboxConfig {
        size: args.size,
        // Room for both reads within the daily allocation.
        salesforce_daily_api_requests: 10_000_000,
        ..SandboxConfig::default()
    };
    let sandbox = start_sandbox(config, Api::Salesforce, args.latency_ms).await?;
    sandbox
        .control()
        .set_rate_limit_per_sec(Api::Salesforce, Some(args.rate));
    println!(
        "Contacts={} latency={}ms sandbox_limit={}/s",
        args.size, args.latency_ms, args.rate
    );
    run(&sandbox, args.rate, false).await?;
    if args.sequential {
        run(&sandbox, args.rate, true).await?;
    }
    sandbox.shutdown().await;
    Ok(())
}
