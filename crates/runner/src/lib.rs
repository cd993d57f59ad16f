//! weft-runner: the `weft` command as a library.
//!
//! Reads `weft.toml`, builds each pipeline's source (a connector) and
//! destination (stage + warehouse), runs them, and reports. The binary in
//! `main.rs` is a thin clap layer over these functions, so the end-to-end tests
//! drive exactly what a user runs.

mod config;
mod connectors;
mod demo;
mod error;
mod progress;

use std::sync::Arc;

use weft_core::{CancellationToken, Pipeline, PipelineOptions, RunReport};
use weft_http::BudgetRegistry;
use weft_stage::Stage;
use weft_warehouse::{DuckDbWarehouse, LoadSpec, StagedDestination, Warehouse};

pub use config::{PipelineConfig, StageConfig, WarehouseConfig, WeftConfig};
pub use connectors::{CONNECTORS, build_source, catalog};
pub use demo::{DemoSummary, run_demo};
pub use error::RunnerError;
pub use progress::Progress;

/// What `weft run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only this pipeline (default: all).
    pub pipeline: Option<String>,
    /// Ignore saved cursors and read everything again.
    pub full_refresh: bool,
}

/// Opens the configured warehouse.
pub fn open_warehouse(config: &WeftConfig) -> Result<Arc<dyn Warehouse>, RunnerError> {
    match &config.warehouse {
        WarehouseConfig::Duckdb { path } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| RunnerError::Io {
                    what: "creating the warehouse directory",
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            Ok(Arc::new(DuckDbWarehouse::open(path)?))
        }
    }
}

/// Runs the selected pipelines one after another; returns one report per pipeline.
///
/// Stream failures are in the reports (see [`RunReport::succeeded`]); an `Err`
/// means a pipeline could not even start (bad config, unknown stream).
pub async fn run(
    config: &WeftConfig,
    options: &RunOptions,
    cancel: CancellationToken,
    progress: Option<Arc<Progress>>,
) -> Result<Vec<RunReport>, RunnerError> {
    let selected: Vec<&PipelineConfig> = match &options.pipeline {
        Some(name) => vec![config.pipeline(name)?],
        None => config.pipelines.iter().collect(),
    };
    let warehouse = open_warehouse(config)?;
    let stage = Stage::from_url(&config.stage.url)?;
    let budgets = BudgetRegistry::global();
    let mut reports = Vec::with_capacity(selected.len());
    for p in selected {
        let source = build_source(&p.name, &p.connector, &p.config, budgets)?;
        let destination = Arc::new(StagedDestination::new(
            stage.clone(),
            Arc::clone(&warehouse),
        ));
        let mut pipeline = Pipeline::new(p.name.clone(), source, destination)
            .with_options(PipelineOptions {
                streams: p.streams.clone(),
                full_refresh: options.full_refresh,
                concurrency: p.concurrency,
                cadence: p.cadence(),
                contract: p.contract,
                disposition: p.write_disposition,
            })
            .with_cancel(cancel.clone());
        if let Some(progress) = &progress {
            pipeline = pipeline.with_observer(progress.clone());
        }
        let report = pipeline.run().await?;
        if config.stage.keep_loads > 0 && report.succeeded() {
            for s in &report.streams {
                stage
                    .prune(&p.name, &s.stream, config.stage.keep_loads)
                    .await?;
            }
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Checks every selected pipeline's credentials and connectivity.
pub async fn check(
    config: &WeftConfig,
    pipeline: Option<&str>,
) -> Result<Vec<(String, Result<(), String>)>, RunnerError> {
    let selected: Vec<&PipelineConfig> = match pipeline {
        Some(name) => vec![config.pipeline(name)?],
        None => config.pipelines.iter().collect(),
    };
    let mut out = Vec::new();
    for p in selected {
        let result = match build_source(&p.name, &p.connector, &p.config, BudgetRegistry::global())
        {
            Ok(source) => source.check().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push((p.name.clone(), result));
    }
    Ok(out)
}

/// Re-loads a staged load into the warehouse without calling the API.
///
/// With `load_id` omitted, every staged load of the stream is replayed in order
/// (loads already in the warehouse are skipped by their id).
pub async fn replay(
    config: &WeftConfig,
    pipeline: &str,
    stream: &str,
    load_id: Option<&str>,
) -> Result<Vec<weft_core::LoadReceipt>, RunnerError> {
    let p = config.pipeline(pipeline)?;
    let catalog = catalog(&p.connector)?;
    let spec = catalog
        .stream(stream)
        .map(|s| s.spec.clone())
        .ok_or_else(|| weft_core::CoreError::UnknownStream {
            connector: p.connector.clone(),
            stream: stream.to_string(),
            available: catalog
                .streams
                .iter()
                .map(|s| s.spec.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let warehouse = open_warehouse(config)?;
    let stage = Stage::from_url(&config.stage.url)?;
    let load = LoadSpec {
        pipeline: pipeline.to_string(),
        stream: stream.to_string(),
        primary_key: spec.primary_key.clone(),
        cursor_field: spec.cursor_field.clone(),
        disposition: p.write_disposition.unwrap_or(spec.write_disposition),
    };
    let receipts = match load_id {
        Some(id) => vec![weft_warehouse::replay(warehouse, &stage, &load, id).await?],
        None => weft_warehouse::replay_stream(warehouse, &stage, &load).await?,
    };
    Ok(receipts)
}

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
