//! weft-runner: the `weft` command as a library.
//!
//! Reads `weft.toml`, builds each pipeline's source (a connector) and
//! destination (stage + warehouse), runs them, and reports. The binary in
//! `main.rs` is a thin clap layer over these functions, so the end-to-end tests
//! drive exactly what a user runs.

mod budgets;
mod completeness;
mod config;
mod connectors;
mod demo;
mod error;
mod expectations;
mod metrics;
mod progress;
mod quality;
mod query;
mod scaffold;
mod schedule;
mod serve;
mod volume;

use std::sync::Arc;

#[cfg(feature = "postgres")]
use secrecy::ExposeSecret;
use serde::Serialize;
use weft_core::SyncStore;
use weft_core::{
    CancellationToken, Pipeline, PipelineOptions, RunReport, SyncOptions, SyncReport, run_sync,
};
use weft_http::BudgetRegistry;
#[cfg(feature = "duckdb")]
use weft_warehouse::DuckDbWarehouse;
#[cfg(feature = "postgres")]
use weft_warehouse::PostgresWarehouse;
use weft_warehouse::{
    Claim, Lease, LeaseOptions, LoadSpec, ModelRun, StagedDestination, Warehouse,
};

pub use completeness::{CompletenessVerdict, judge_completeness};
pub use config::{
    CheckAction, ModelsConfig, PipelineConfig, QualityAction, QualitySettings, RunnerSettings, Sla,
    StageConfig, StreamSettings, SyncConfig, WarehouseConfig, WeftConfig,
};
pub use connectors::{CONNECTORS, SYNC_TARGETS, build_source, build_sync_target, catalog};
pub use demo::{DemoSummary, DemoWarehouse, run_demo, write_demo_config};
pub use error::RunnerError;
pub use metrics::{Metrics, cursor_time};
pub use progress::Progress;
pub use quality::{
    ALL_STREAMS, Freshness, FreshnessBasis, format_duration, freshness, newest_time, parse_duration,
};
pub use query::{query, render_query};
pub use scaffold::{NewConnector, new_connector};
pub use schedule::{Job, JobConfig, Schedule};
pub use serve::{JobCounts, ServeOptions, ServeSummary, Server};
pub use volume::{
    Anomaly, MAD_LIMIT, MAD_SCALE, VolumeRules, VolumeVerdict, judge_volume, mad, median,
};
pub use weft_warehouse::{QualityKind, QualityRow, QualityStatus, RunKind, RunRecord, RunStatus};

/// What `weft run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only this pipeline (default: all).
    pub pipeline: Option<String>,
    /// Ignore saved cursors and read everything again.
    pub full_refresh: bool,
}

/// Opens the configured warehouse (an error naming the cargo feature when
/// this build of weft left that warehouse out).
pub async fn open_warehouse(config: &WeftConfig) -> Result<Arc<dyn Warehouse>, RunnerError> {
    match &config.warehouse {
        #[cfg(feature = "duckdb")]
        WarehouseConfig::Duckdb {
            path,
            memory_limit,
            threads,
        } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| RunnerError::Io {
                    what: "creating the warehouse directory",
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            let warehouse = DuckDbWarehouse::open(path)?;
            warehouse.set_memory_limit(memory_limit)?;
            warehouse.set_threads(*threads)?;
            Ok(Arc::new(warehouse))
        }
        #[cfg(feature = "postgres")]
        WarehouseConfig::Postgres {
            url, schema_prefix, ..
        } => {
            let url = url.resolve()?;
            let warehouse =
                PostgresWarehouse::connect(url.expose_secret(), schema_prefix.as_deref()).await?;
            Ok(Arc::new(warehouse))
        }
        #[allow(unreachable_patterns)]
        other => Err(RunnerError::WarehouseNotBuilt { kind: other.kind() }),
    }
}

/// What one `weft run` did: loads, then models, then syncs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunOutcome {
    /// One report per pipeline.
    pub pipelines: Vec<RunReport>,
    /// The models run after the loads.
    pub models: Vec<ModelRun>,
    /// The syncs run after the models.
    pub syncs: Vec<SyncResult>,
}

/// One sync's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SyncResult {
    /// Sync name.
    pub sync: String,
    /// What it did, when it ran.
    pub report: Option<SyncReport>,
    /// Why it failed, when it did (no secrets).
    pub error: Option<String>,
}

impl RunOutcome {
    /// Whether every stream and every sync succeeded.
    pub fn succeeded(&self) -> bool {
        self.pipelines.iter().all(RunReport::succeeded)
            && self.syncs.iter().all(|s| s.error.is_none())
    }

    /// Plain-text report: per-stream tables, models, syncs.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in &self.pipelines {
            // Failed expectations print as their own `quality P.S: …` lines.
            let mut shown = r.clone();
            let mut quality = Vec::new();
            for s in &mut shown.streams {
                s.notices.retain(|n| {
                    let is_quality = n.starts_with(quality::QUALITY_PREFIX);
                    if is_quality {
                        quality.push(n.clone());
                    }
                    !is_quality
                });
            }
            out.push_str(&shown.to_table());
            for q in quality {
                out.push_str(&q);
                out.push('\n');
            }
            out.push('\n');
        }
        for m in &self.models {
            out.push_str(&format!(
                "model  {:<32} {:>10} rows ({:?})\n",
                m.name, m.rows, m.materialized
            ));
        }
        for s in &self.syncs {
            match (&s.report, &s.error) {
                (Some(r), _) => out.push_str(&render_sync(r)),
                (None, Some(e)) => out.push_str(&format!("sync   {:<32} FAILED: {e}\n", s.sync)),
                (None, None) => {}
            }
        }
        out
    }
}

/// One line per sync: planned and acknowledged counts.
pub fn render_sync(r: &SyncReport) -> String {
    let mut out = format!(
        "sync   {:<32} {}model rows {}, planned +{} ~{} -{}; created {}, updated {}, deleted {}, rejected {}{} in {} calls{}\n",
        r.sync,
        if r.dry_run { "(dry run) " } else { "" },
        r.plan.model_rows,
        r.plan.creates,
        r.plan.updates,
        r.plan.deletes,
        r.created,
        r.updated,
        r.deleted,
        r.rejected,
        match r.resumed {
            0 => String::new(),
            n => format!(", resumed {n} (from an earlier run's jobs)"),
        },
        r.batches,
        if r.dry_run {
            String::new()
        } else {
            format!("; run {}", r.run_id)
        }
    );
    for s in &r.samples {
        let fields = serde_json::to_string(&s.fields).unwrap_or_default();
        out.push_str(&format!("       {:<7} {} {fields}\n", s.action, s.key));
    }
    for q in &r.requests {
        let body = if q.body.is_null() {
            String::new()
        } else {
            format!(" {}", serde_json::to_string(&q.body).unwrap_or_default())
        };
        out.push_str(&format!(
            "       would send {} {}{body}\n",
            q.method, q.path
        ));
    }
    out
}

/// Runs the selected pipelines one after another, then the models, then the syncs.
///
/// Stream and sync failures are in the outcome (see [`RunOutcome::succeeded`]);
/// an `Err` means something could not even start (bad config, unknown stream,
/// a model that does not run).
pub async fn run(
    config: &WeftConfig,
    options: &RunOptions,
    cancel: CancellationToken,
    progress: Option<Arc<Progress>>,
) -> Result<RunOutcome, RunnerError> {
    let selected: Vec<&PipelineConfig> = match &options.pipeline {
        Some(name) => vec![config.pipeline(name)?],
        None => config.pipelines.iter().collect(),
    };
    let session = Session::open(config, None).await?;
    // An unreachable bucket or refused credentials fail here, before any API call.
    session.stage.check().await?;
    let mut outcome = RunOutcome::default();
    for p in selected {
        let record = RunRecord::start(&p.name, "manual");
        let report = session
            .pipeline(p, options, record, &cancel, &progress)
            .await?;
        outcome.pipelines.push(report);
    }
    if options.pipeline.is_none() && !cancel.is_cancelled() {
        outcome.models = session.models().await?;
        for sync in &config.syncs {
            let record = RunRecord::start_sync(&sync.name, "manual");
            outcome.syncs.push(session.sync(sync, false, record).await);
        }
    }
    session.close().await;
    Ok(outcome)
}

/// `weft sync`: the models, then the syncs (or only `only`); `dry_run`
/// plans without sending (and records no run).
pub async fn sync(
    config: &WeftConfig,
    only: Option<&str>,
    dry_run: bool,
) -> Result<RunOutcome, RunnerError> {
    let selected: Vec<&SyncConfig> = match only {
        Some(name) => vec![config.sync(name)?],
        None => config.syncs.iter().collect(),
    };
    let session = Session::open(config, None).await?;
    let mut outcome = RunOutcome {
        models: session.models().await?,
        ..RunOutcome::default()
    };
    for sync in selected {
        let record = RunRecord::start_sync(&sync.name, "manual");
        outcome
            .syncs
            .push(session.sync(sync, dry_run, record).await);
    }
    Ok(outcome)
}

/// `weft sync rollback`: undoes run `run_id` of sync `name` at its
/// destination ([`weft_core::rollback_sync`]: pre-images restored, creates
/// deleted, deletes created again; writes changed since are skipped), as a
/// run of its own under the sync's lease, recorded in the run history with
/// trigger `rollback`. `dry_run` plans it and sends nothing (no lease, no
/// run recorded).
pub async fn rollback_sync(
    config: &WeftConfig,
    name: &str,
    run_id: &str,
    dry_run: bool,
) -> Result<weft_core::RollbackReport, RunnerError> {
    let sync = config.sync(name)?;
    let session = Session::open(config, None).await?;
    let target = build_sync_target(sync, BudgetRegistry::global()).await?;
    let spec = sync.spec();
    let store: &dyn SyncStore = session.warehouse.as_ref();
    if dry_run {
        let report = weft_core::rollback_sync(store, &*target, &spec, run_id, true).await;
        session.close().await;
        return Ok(report?);
    }
    let mut record = RunRecord::start_sync(name, "rollback");
    let lease = match session
        .lease(&format!("sync:{name}"), &record.run_id, None)
        .await
    {
        Ok(Claim::Held(lease)) => lease,
        Ok(Claim::SlotTaken { holder }) => {
            session.close().await;
            return Err(RunnerError::Core(weft_core::CoreError::SyncStore {
                sync: name.to_string(),
                step: "take the sync's lease",
                source: holder.into(),
            }));
        }
        Err(e) => {
            session.close().await;
            return Err(e.into());
        }
    };
    let result = async {
        session.warehouse.begin_run(&record).await?;
        let rolled = weft_core::rollback_sync(store, &*target, &spec, run_id, false).await;
        let as_sync = rolled.as_ref().map(|r| SyncReport {
            sync: r.sync.clone(),
            run_id: r.run_id.clone(),
            created: r.recreated,
            updated: r.restored,
            deleted: r.uncreated,
            rejected: r.rejected,
            batches: r.sent().div_ceil(target.max_batch().max(1) as u64),
            ..SyncReport::default()
        });
        let failure = rolled.as_ref().err().map(ToString::to_string);
        record.finish_sync(match (&as_sync, &failure) {
            (Ok(r), _) => Ok(r),
            (Err(_), Some(e)) => Err(e.as_str()),
            (Err(_), None) => Err("rollback failed"),
        });
        session.warehouse.end_run(&record).await?;
        Ok::<_, RunnerError>(rolled?)
    }
    .await;
    session.release(lease).await;
    session.close().await;
    result
}

/// `weft sync rollback`'s report: one line of counts, then each skipped
/// write with its reason (a dry run lists the records it would send).
pub fn render_rollback(r: &weft_core::RollbackReport) -> String {
    let done = if r.dry_run {
        format!("would send {}", r.planned.len())
    } else {
        format!(
            "restored {}, uncreated {}, recreated {}, rejected {}",
            r.restored, r.uncreated, r.recreated, r.rejected
        )
    };
    let mut out = format!(
        "rollback {} run {}{}: {} acknowledged writes; {done}, skipped {}{}\n",
        r.sync,
        r.of_run,
        if r.dry_run { " (dry run)" } else { "" },
        r.writes,
        r.skipped.len(),
        if r.dry_run {
            String::new()
        } else {
            format!("; run {}", r.run_id)
        }
    );
    for p in &r.planned {
        let fields = serde_json::to_string(&p.fields).unwrap_or_default();
        out.push_str(&format!("       would {} {} {fields}\n", p.action, p.key));
    }
    for s in &r.skipped {
        out.push_str(&format!(
            "       skipped {} {}: {}\n",
            s.action, s.key, s.reason
        ));
    }
    out
}

/// What runs of pipelines, models and syncs share: the config, the opened
/// warehouse and stage, and (under `weft serve`) the metrics.
pub(crate) struct Session {
    pub(crate) config: WeftConfig,
    pub(crate) warehouse: Arc<dyn Warehouse>,
    pub(crate) stage: weft_stage::Stage,
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// This runner's part in splitting account budgets with other runners
    /// of the warehouse (none when it has one process).
    sharing: Option<Arc<budgets::BudgetSharing>>,
}

impl Session {
    /// Opens the configured warehouse and stage.
    pub(crate) async fn open(
        config: &WeftConfig,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Session, RunnerError> {
        let warehouse = open_warehouse(config).await?;
        Ok(Session {
            sharing: budgets::BudgetSharing::start(&warehouse),
            warehouse,
            stage: config.stage.open()?,
            config: config.clone(),
            metrics,
        })
    }

    /// Leaves the shared budgets to the other runners (the end of a run or
    /// of `weft serve`).
    pub(crate) async fn close(&self) {
        if let Some(sharing) = &self.sharing {
            sharing.leave().await;
        }
    }

    /// Takes lease `name` for `run_id` (waiting `lock_wait_secs` for a run
    /// of another runner; a scheduled job passes its slot and waits not at all).
    pub(crate) async fn lease(
        &self,
        name: &str,
        run_id: &str,
        slot_ms: Option<i64>,
    ) -> Result<Claim, weft_warehouse::WarehouseError> {
        let options = LeaseOptions {
            ttl: self.config.runner.lease_ttl(),
            wait: if slot_ms.is_some() {
                std::time::Duration::ZERO
            } else {
                self.config.warehouse.lock_wait()
            },
            slot_ms,
        };
        let claim = Lease::acquire(Arc::clone(&self.warehouse), name, run_id, options).await;
        if let (Some(m), Ok(Claim::Held(_))) = (&self.metrics, &claim) {
            m.lease(name, true);
        }
        claim
    }

    /// Releases a lease taken with [`Session::lease`] (a failure is logged:
    /// the lease then expires on its own).
    pub(crate) async fn release(&self, lease: Lease) {
        let name = lease.name().to_string();
        if let Err(e) = lease.release().await {
            tracing::warn!(lease = %name, error = %e, "releasing the lease failed; it expires on its own");
        }
        if let Some(m) = &self.metrics {
            m.lease(&name, false);
        }
    }

    /// One pipeline's run, under its lease, recorded in the run history: a
    /// pipeline another runner is running, or whose source cannot be built
    /// or connected, fails only this pipeline.
    pub(crate) async fn pipeline(
        &self,
        p: &PipelineConfig,
        options: &RunOptions,
        mut record: RunRecord,
        cancel: &CancellationToken,
        progress: &Option<Arc<Progress>>,
    ) -> Result<RunReport, RunnerError> {
        let lease = match self
            .lease(&format!("pipeline:{}", p.name), &record.run_id, None)
            .await
        {
            Ok(Claim::Held(lease)) => lease,
            Ok(Claim::SlotTaken { holder }) => {
                return Ok(RunReport::not_started(p.name.clone(), holder));
            }
            Err(e) => return Ok(RunReport::not_started(p.name.clone(), e.to_string())),
        };
        // A lease lost to another runner stops this run at its next checkpoint.
        let cancel = cancel.child_token();
        let watch = tokio::spawn({
            let (lost, cancel) = (lease.lost(), cancel.clone());
            async move {
                lost.cancelled().await;
                cancel.cancel();
            }
        });
        let result = async {
            self.warehouse.begin_run(&record).await?;
            let report = self.run_pipeline(options, p, &cancel, progress).await;
            let (report, failure) = match report {
                Ok(mut report) => {
                    // The loads committed: judge the volumes, count the
                    // expectations, record both.
                    self.check_quality(p, &record.run_id, options.full_refresh, &mut report)
                        .await;
                    (report, None)
                }
                Err(e) => (
                    RunReport::not_started(p.name.clone(), e.to_string()),
                    Some(e),
                ),
            };
            record.finish(&report);
            self.warehouse.end_run(&record).await?;
            match failure {
                Some(e) => Err(e),
                None => Ok(report),
            }
        }
        .await;
        watch.abort();
        self.release(lease).await;
        let report = result?;
        log_pipeline_run(&report, &record);
        if let Some(m) = &self.metrics {
            m.pipeline_run(&report, &record.status.to_string());
            if p.has_freshness_sla() {
                let declared: Vec<String> =
                    report.streams.iter().map(|s| s.stream.clone()).collect();
                self.update_freshness(Some(p), [(p.name.clone(), declared)].into())
                    .await;
            }
        }
        Ok(report)
    }

    /// The quality checks of a pipeline run whose loads committed: each
    /// stream's volume against its history, its expectations, and the
    /// freshness of the streams with an SLA, written into `report` (notices,
    /// failed streams) and recorded in `_weft._weft_quality` (a failure to
    /// record them is logged; the run's result stands).
    async fn check_quality(
        &self,
        p: &PipelineConfig,
        run_id: &str,
        full_refresh: bool,
        report: &mut RunReport,
    ) {
        let warehouse = self.warehouse.as_ref();
        let mut rows = volume::check_volumes(warehouse, p, run_id, full_refresh, report).await;
        rows.extend(completeness::check_completeness(p, run_id, report));
        rows.extend(
            expectations::check_expectations(&self.config, warehouse, p, run_id, report).await,
        );
        if p.has_freshness_sla() {
            let declared: Vec<String> = report.streams.iter().map(|s| s.stream.clone()).collect();
            let declared = [(p.name.clone(), declared)].into();
            match freshness(&self.config, warehouse, Some(&p.name), &declared).await {
                Ok(streams) => rows.extend(quality::freshness_rows(run_id, &streams)),
                Err(e) => {
                    tracing::warn!(pipeline = %p.name, error = %e, "reading freshness failed")
                }
            }
        }
        if rows.is_empty() {
            return;
        }
        if let Err(e) = warehouse.record_quality(&rows).await {
            tracing::warn!(pipeline = %p.name, run_id, error = %e, "recording quality results failed");
        }
    }

    /// Sets the freshness metrics of the streams with an SLA (of `only`, or
    /// of every pipeline) from what the warehouse committed; a failure to
    /// read it is logged and leaves the metrics as they were.
    pub(crate) async fn update_freshness(
        &self,
        only: Option<&PipelineConfig>,
        declared: std::collections::BTreeMap<String, Vec<String>>,
    ) {
        let Some(m) = &self.metrics else {
            return;
        };
        let only = only.map(|p| p.name.as_str());
        match freshness(&self.config, self.warehouse.as_ref(), only, &declared).await {
            Ok(streams) => m.freshness(&streams),
            Err(e) => {
                tracing::warn!(error = %e, "reading the streams' freshness failed");
            }
        }
    }

    /// One pipeline's run, under its lease: build the source, take this
    /// runner's budget shares, extract and load, prune the stage.
    async fn run_pipeline(
        &self,
        options: &RunOptions,
        p: &PipelineConfig,
        cancel: &CancellationToken,
        progress: &Option<Arc<Progress>>,
    ) -> Result<RunReport, RunnerError> {
        let (config, stage, warehouse) = (&self.config, &self.stage, &self.warehouse);
        let source =
            match build_source(&p.name, &p.connector, &p.config, BudgetRegistry::global()).await {
                Ok(source) => source,
                Err(e) => return Ok(RunReport::not_started(p.name.clone(), e.to_string())),
            };
        // The source's budgets exist now: take this runner's share of each.
        if let Some(sharing) = &self.sharing {
            sharing.join().await;
        }
        let destination = Arc::new(StagedDestination::new(stage.clone(), Arc::clone(warehouse)));
        let mut pipeline = Pipeline::new(p.name.clone(), source, destination)
            .with_options(PipelineOptions {
                streams: p.streams.clone(),
                full_refresh: options.full_refresh,
                concurrency: p.concurrency,
                cadence: p.cadence(),
                contract: p.contract,
                disposition: p.write_disposition,
                stream_dispositions: p.stream_dispositions(),
                max_in_flight: p.max_concurrency,
            })
            .with_cancel(cancel.clone());
        if let Some(progress) = progress {
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
        Ok(report)
    }

    /// Builds the configured SQL models (none when `[models]` has no `dir`).
    pub(crate) async fn models(&self) -> Result<Vec<ModelRun>, RunnerError> {
        run_models(&self.config, self.warehouse.as_ref()).await
    }

    /// One sync's run, under its lease and recorded in the run history
    /// (a dry run takes no lease and records nothing).
    pub(crate) async fn sync(
        &self,
        sync: &SyncConfig,
        dry_run: bool,
        mut record: RunRecord,
    ) -> SyncResult {
        let started = std::time::Instant::now();
        let failed = |error: String| SyncResult {
            sync: sync.name.clone(),
            report: None,
            error: Some(error),
        };
        if dry_run {
            return match self.send(sync, true).await {
                Ok(report) => SyncResult {
                    sync: sync.name.clone(),
                    report: Some(report),
                    error: None,
                },
                Err(e) => failed(e),
            };
        }
        let lease = match self
            .lease(&format!("sync:{}", sync.name), &record.run_id, None)
            .await
        {
            Ok(Claim::Held(lease)) => lease,
            Ok(Claim::SlotTaken { holder }) => return failed(holder),
            Err(e) => return failed(e.to_string()),
        };
        let result = async {
            self.warehouse.begin_run(&record).await?;
            let sent = self.send(sync, false).await;
            record.finish_sync(sent.as_ref().map_err(String::as_str));
            self.warehouse.end_run(&record).await?;
            Ok::<_, RunnerError>(sent)
        }
        .await;
        self.release(lease).await;
        let result = match result {
            Ok(Ok(report)) => SyncResult {
                sync: sync.name.clone(),
                report: Some(report),
                error: None,
            },
            Ok(Err(e)) => failed(e),
            Err(e) => failed(e.to_string()),
        };
        if let Some(m) = &self.metrics {
            m.sync_run(
                &sync.name,
                result.report.as_ref(),
                &record.status.to_string(),
                started.elapsed().as_secs_f64(),
            );
        }
        result
    }

    /// Sends one sync's changes (or plans them, dry).
    async fn send(&self, sync: &SyncConfig, dry_run: bool) -> Result<SyncReport, String> {
        let target = build_sync_target(sync, BudgetRegistry::global())
            .await
            .map_err(|e| e.to_string())?;
        let options = SyncOptions {
            dry_run,
            batch_size: sync.batch_size,
        };
        let store: &dyn SyncStore = self.warehouse.as_ref();
        run_sync(store, &*target, &sync.spec(), options)
            .await
            .map_err(|e| e.to_string())
    }
}

/// One log line per pipeline run, with the figures of the run report.
fn log_pipeline_run(report: &RunReport, record: &RunRecord) {
    let sum = |f: fn(&weft_core::StreamReport) -> u64| report.streams.iter().map(f).sum::<u64>();
    tracing::info!(
        pipeline = %report.pipeline,
        run_id = %record.run_id,
        trigger = %record.trigger,
        status = %record.status,
        rows = report.rows(),
        rejects = sum(|s| s.rejected),
        requests = sum(|s| s.requests),
        retries = sum(|s| s.retries),
        rate_limited = sum(|s| s.rate_limited),
        wait_ms = sum(|s| s.wait_ms),
        staged_bytes = sum(|s| s.staged_bytes),
        seconds = report.seconds,
        error = record.error.as_deref().unwrap_or(""),
        "pipeline run ended"
    );
}

/// The latest `limit` runs recorded in the warehouse (of `pipeline`, or of
/// every pipeline), newest first: what `weft runs` prints.
pub async fn runs(
    config: &WeftConfig,
    pipeline: Option<&str>,
    limit: usize,
) -> Result<Vec<RunRecord>, RunnerError> {
    if let Some(name) = pipeline {
        config.pipeline(name)?;
    }
    let warehouse = open_warehouse(config).await?;
    Ok(warehouse.runs(pipeline, limit).await?)
}

/// `weft runs` as a table: one line per run, newest first.
pub fn render_runs(runs: &[RunRecord]) -> String {
    let mut out = format!(
        "{:<29} {:<8} {:<16} {:<16} {:<8} {:<10} {:<24} {:>8} {:>10} {:>8} {:>8} {:>6}\n",
        "run",
        "kind",
        "name",
        "job",
        "trigger",
        "status",
        "started",
        "seconds",
        "rows",
        "rejects",
        "requests",
        "429s"
    );
    for r in runs {
        let seconds = r.finished_at.map_or_else(
            || "-".to_string(),
            |end| {
                format!(
                    "{:.1}",
                    (end - r.started_at).num_milliseconds() as f64 / 1000.0
                )
            },
        );
        out.push_str(&format!(
            "{:<29} {:<8} {:<16} {:<16} {:<8} {:<10} {:<24} {:>8} {:>10} {:>8} {:>8} {:>6}\n",
            r.run_id,
            r.kind.as_str(),
            r.pipeline,
            r.job.as_deref().unwrap_or("-"),
            r.trigger,
            r.status.to_string(),
            r.started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            seconds,
            r.rows,
            r.rejects,
            r.requests,
            r.rate_limited
        ));
        if let Some(e) = &r.error {
            out.push_str(&format!("    error: {e}\n"));
        }
    }
    if runs.is_empty() {
        out.push_str("(no runs recorded)\n");
    }
    out
}

/// Runs the configured SQL models (none when `[models]` has no `dir`).
pub async fn run_models(
    config: &WeftConfig,
    warehouse: &dyn Warehouse,
) -> Result<Vec<ModelRun>, RunnerError> {
    let Some(dir) = &config.models.dir else {
        return Ok(Vec::new());
    };
    let models = weft_warehouse::load_models_dir(dir)?;
    Ok(warehouse.run_models(&models).await?)
}

/// Checks the stage (write, read back, delete a probe object), the warehouse
/// (connect) and every selected pipeline's credentials and connectivity; one
/// line each, named `stage`, `warehouse` and by pipeline; without a
/// pipeline named, also one line per sync (`sync NAME`: its mapping, mode and
/// the destination's own rules, checked without writing; Salesforce
/// describes the object it syncs to).
pub async fn check(config: &WeftConfig, pipeline: Option<&str>) -> Result<CheckLines, RunnerError> {
    Ok(check_parts(config, pipeline).await?.0)
}

/// What `weft check` prints: one (name, ok or why not) per part checked.
pub type CheckLines = Vec<(String, Result<(), String>)>;

/// [`check`]'s lines and the streams each source that could be built declares.
async fn check_parts(
    config: &WeftConfig,
    pipeline: Option<&str>,
) -> Result<(CheckLines, std::collections::BTreeMap<String, Vec<String>>), RunnerError> {
    let mut declared = std::collections::BTreeMap::new();
    let selected: Vec<&PipelineConfig> = match pipeline {
        Some(name) => vec![config.pipeline(name)?],
        None => config.pipelines.iter().collect(),
    };
    let mut out = Vec::new();
    let stage = match config.stage.open() {
        Ok(stage) => stage.check().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    out.push(("stage".to_string(), stage));
    let warehouse = open_warehouse(config).await.map(drop);
    out.push((
        "warehouse".to_string(),
        warehouse.map_err(|e| e.to_string()),
    ));
    for p in selected {
        let result =
            match build_source(&p.name, &p.connector, &p.config, BudgetRegistry::global()).await {
                Ok(source) => {
                    let names = source.streams().into_iter().map(|s| s.name).collect();
                    declared.insert(p.name.clone(), names);
                    source.check().await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
        out.push((p.name.clone(), result));
    }
    if pipeline.is_none() {
        // Syncs are checked without writing anything: the mapping, the mode
        // and the destination's own rules.
        for sync in &config.syncs {
            let result = build_sync_target(sync, BudgetRegistry::global())
                .await
                .map(drop)
                .map_err(|e| e.to_string());
            out.push((format!("sync {}", sync.name), result));
        }
    }
    Ok((out, declared))
}

/// `weft check --quality`: [`check`]'s lines, then the freshness of every
/// stream with an SLA (of `pipeline`, or of every pipeline; see
/// [`freshness`]), a pipeline-wide SLA covering the streams its source
/// declares when its config lists none. An unreachable warehouse is an
/// `Err`.
pub async fn check_quality(
    config: &WeftConfig,
    pipeline: Option<&str>,
) -> Result<(CheckLines, Vec<Freshness>), RunnerError> {
    let (lines, declared) = check_parts(config, pipeline).await?;
    let warehouse = open_warehouse(config).await?;
    let fresh = freshness(config, warehouse.as_ref(), pipeline, &declared).await?;
    Ok((lines, fresh))
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
    let spec = catalog.require(&p.connector, stream)?.spec.clone();
    let warehouse = open_warehouse(config).await?;
    let stage = config.stage.open()?;
    let load = LoadSpec {
        pipeline: pipeline.to_string(),
        stream: stream.to_string(),
        primary_key: spec.primary_key.clone(),
        cursor_field: spec.cursor_field.clone(),
        disposition: p
            .stream_dispositions()
            .get(stream)
            .copied()
            .or(p.write_disposition)
            .unwrap_or(spec.write_disposition),
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
