//! Embeds a weft pipeline in a service: the sandbox's Stripe (started
//! in-process, no network) -> a local Parquet stage -> DuckDB.
//!
//! `cargo run -p weft-examples --example embed_pipeline`

use std::path::Path;
use std::sync::Arc;

use weft_core::{Pipeline, PipelineOptions, RunReport, SecretRef};
use weft_sandbox::{Api, Sandbox, SandboxConfig};
use weft_stage::Stage;
use weft_stripe::{StripeConfig, StripeSource};
use weft_warehouse::{DuckDbWarehouse, StagedDestination};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Loads the sandbox's Stripe customers into `dir/weft.duckdb` through the
/// stage `dir/stage`; returns the run's report and the rows the table holds.
async fn run(dir: &Path, sandbox: &Sandbox, api_key: &str) -> Result<(RunReport, u64), Error> {
    // Secrets are references (an env var or a file), never inline values.
    let key_file = dir.join("stripe.key");
    std::fs::write(&key_file, api_key)?;
    let config = StripeConfig::new(
        Some(sandbox.base_url(Api::Stripe)),
        SecretRef::File { file: key_file },
    );
    let source = Arc::new(StripeSource::new(
        config,
        weft_http::BudgetRegistry::global(),
    )?);
    let warehouse = Arc::new(DuckDbWarehouse::open(&dir.join("weft.duckdb"))?);
    let stage = Stage::from_url(&dir.join("stage").display().to_string())?;
    let destination = Arc::new(StagedDestination::new(stage, warehouse.clone()));

    let report = Pipeline::new("stripe", source, destination)
        .with_options(PipelineOptions {
            streams: Some(vec!["customers".into()]),
            ..Default::default()
        })
        .run()
        .await?;
    let rows = warehouse.query_rows("SELECT count(*) FROM stripe.customers")?;
    let count = rows
        .first()
        .and_then(|r| r.first())
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    Ok((report, count))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = SandboxConfig {
        size: 500,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (report, rows) = run(dir.path(), &sandbox, &config.api_key).await?;
    println!("{}", report.to_table());
    println!("stripe.customers holds {rows} rows");
    sandbox.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn loads_every_customer_and_a_rerun_loads_none_again() {
        let config = SandboxConfig {
            size: 120,
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(config.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (report, rows) = run(dir.path(), &sandbox, &config.api_key).await.unwrap();
        assert!(report.succeeded());
        assert_eq!(report.stream("customers").unwrap().rows, 120);
        assert_eq!(rows, 120);
        // The cursor was committed with the rows: a second run reads nothing new.
        let (again, rows) = run(dir.path(), &sandbox, &config.api_key).await.unwrap();
        assert_eq!(again.stream("customers").unwrap().rows, 0);
        assert_eq!(rows, 120);
        sandbox.shutdown().await;
    }
}
