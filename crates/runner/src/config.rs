//! `weft.toml`: the warehouse, the stage and the pipelines.
//!
//! The engine owns each pipeline's outer fields (`name`, `connector`,
//! `streams`, cadence, contract); the connector owns what is under `config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use weft_core::{Cadence, SchemaContract, SyncSpec, SyncWriteMode, WriteDisposition};

use crate::RunnerError;
use crate::schedule::{Job, JobConfig, Schedule};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeftConfig {
    /// Where loads land.
    pub warehouse: WarehouseConfig,
    /// Where Parquet is staged before loading.
    #[serde(default)]
    pub stage: StageConfig,
    /// The pipelines, each one connector into one warehouse schema.
    #[serde(default)]
    pub pipelines: Vec<PipelineConfig>,
    /// SQL models run in the warehouse after the loads.
    #[serde(default)]
    pub models: ModelsConfig,
    /// Reverse syncs: models out to SaaS tools, after the models.
    #[serde(default)]
    pub syncs: Vec<SyncConfig>,
    /// Scheduled chains of pipelines -> models -> syncs (`weft serve`).
    #[serde(default)]
    pub jobs: Vec<JobConfig>,
    /// Leases, shutdown and scheduling settings of the runner itself.
    #[serde(default)]
    pub runner: RunnerSettings,
}

/// `[runner]`: how runs share a warehouse and how `weft serve` behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerSettings {
    /// A run's lease lasts this long without a heartbeat (renewed every
    /// third of it): a killed runner's pipelines are taken over this long
    /// after it died (at once by a runner on the same host). Default 30.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// `weft serve` on SIGTERM/SIGINT: how long running jobs get to stop at
    /// a checkpoint before the process exits anyway. Default 30.
    #[serde(default = "default_grace_secs")]
    pub grace_secs: u64,
    /// `weft serve`: each scheduled run starts up to this many seconds late,
    /// at random, so many jobs on one schedule do not start in one burst.
    /// Default 0.
    #[serde(default)]
    pub jitter_secs: u64,
    /// `weft serve`: where to serve `/metrics`, `/healthz` and `/readyz`
    /// (e.g. `127.0.0.1:9464`); `--metrics` overrides it. Default: not served.
    #[serde(default)]
    pub metrics: Option<std::net::SocketAddr>,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            lease_secs: default_lease_secs(),
            grace_secs: default_grace_secs(),
            jitter_secs: 0,
            metrics: None,
        }
    }
}

impl RunnerSettings {
    /// The lease time to live.
    pub fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_secs)
    }
}

fn default_lease_secs() -> u64 {
    30
}

fn default_grace_secs() -> u64 {
    30
}

/// Where the SQL models are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// A directory of `.sql` files run in file-name order (`01_people.sql` ->
    /// `models.people`); relative to the config file.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// One reverse sync: a model's rows out to a destination connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Sync name (its snapshot table is `_weft._weft_sync_snapshot_{name}`).
    pub name: String,
    /// Destination connector: `mailchimp` or `intercom`.
    pub connector: String,
    /// The model (table or view) to send, e.g. `models.people`.
    pub model: String,
    /// The model's primary key column.
    pub primary_key: String,
    /// `upsert` (default), `update_only`, `create_only` or `mirror`.
    #[serde(default)]
    pub mode: SyncWriteMode,
    /// Destination field = model column, e.g. `email_address = "email"`.
    pub mapping: BTreeMap<String, String>,
    /// Records per API call (capped by the destination's maximum).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Cron schedule for `weft serve` (the models, then this sync).
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule`; default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The destination connector's own settings.
    #[serde(default)]
    pub config: toml::Table,
}

impl SyncConfig {
    /// The engine's view of this sync.
    pub fn spec(&self) -> SyncSpec {
        SyncSpec {
            name: self.name.clone(),
            model: self.model.clone(),
            primary_key: self.primary_key.clone(),
            mode: self.mode,
            mapping: self.mapping.clone(),
        }
    }
}

/// Which warehouse, as a tagged `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WarehouseConfig {
    /// Embedded DuckDB in one file.
    Duckdb {
        /// Database file (relative paths are relative to the config file).
        path: PathBuf,
        /// DuckDB's memory cap (e.g. `"512MB"`); its cache of table data
        /// stays under it, so memory does not grow with the warehouse.
        #[serde(default = "default_memory_limit")]
        memory_limit: String,
        /// Threads DuckDB runs a query on. Default 1: a load commits while
        /// the pipeline extracts the next one on the other cores, and a
        /// multi-threaded DuckDB burns CPU waiting for its tasks. Raise it for
        /// heavy models.
        #[serde(default = "default_threads")]
        threads: u32,
    },
    /// PostgreSQL 15 or later, which several runners (and your BI tools) share.
    Postgres {
        /// The connection URL, as a secret reference (it may hold a
        /// password): `url = { env = "WEFT_PG_URL" }`. `sslmode=require` in
        /// the URL connects over TLS (rustls).
        url: weft_core::SecretRef,
        /// Prepended to every pipeline's schema name (`weft_` loads pipeline
        /// `stripe` into schema `weft_stripe`); `_weft` and `models` stay as they are.
        #[serde(default)]
        schema_prefix: Option<String>,
        /// How long a run waits for a pipeline another runner is running
        /// (then that pipeline fails with who holds it); default 0: fail at once.
        #[serde(default)]
        lock_wait_secs: u64,
    },
}

impl WarehouseConfig {
    /// The `kind` as configured: `duckdb` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            WarehouseConfig::Duckdb { .. } => "duckdb",
            WarehouseConfig::Postgres { .. } => "postgres",
        }
    }

    /// How long a run waits for a pipeline's run lock.
    pub fn lock_wait(&self) -> std::time::Duration {
        match self {
            WarehouseConfig::Duckdb { .. } => std::time::Duration::ZERO,
            WarehouseConfig::Postgres { lock_wait_secs, .. } => {
                std::time::Duration::from_secs(*lock_wait_secs)
            }
        }
    }
}

/// The staging area.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// A local path, `file://…`, or `s3://bucket/prefix` (relative paths are
    /// relative to the config file).
    #[serde(default = "default_stage_url")]
    pub url: String,
    /// Loads kept per stream after a successful run (older staged loads are pruned); 0 keeps all.
    #[serde(default)]
    pub keep_loads: usize,
    /// S3: the endpoint of an S3-compatible server (MinIO, SeaweedFS, R2...);
    /// default `AWS_ENDPOINT`, else AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3: the bucket's region; default `AWS_REGION` / `AWS_DEFAULT_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    /// S3: the access key id, as a secret reference (`{ env = "…" }` or
    /// `{ file = "…" }`); default `AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub access_key_id: Option<weft_core::SecretRef>,
    /// S3: the secret access key, as a secret reference; default `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: Option<weft_core::SecretRef>,
    /// S3: allow a plain `http://` endpoint (a server on loopback); default `AWS_ALLOW_HTTP`.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// S3: staged files larger than this are uploaded in parts (at least 5 MiB; default 8 MiB).
    #[serde(default)]
    pub multipart_threshold_bytes: Option<usize>,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            url: default_stage_url(),
            keep_loads: 0,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: None,
            multipart_threshold_bytes: None,
        }
    }
}

impl StageConfig {
    /// Opens the stage: a local directory, or a bucket with these settings
    /// (each S3 key left out falls back to its `AWS_*` variable).
    pub fn open(&self) -> Result<weft_stage::Stage, crate::RunnerError> {
        let is_s3 = self.url.starts_with("s3://") || self.url.starts_with("s3a://");
        if !is_s3 {
            return Ok(weft_stage::Stage::from_url(&self.url)?);
        }
        let secret = |r: &Option<weft_core::SecretRef>| {
            r.as_ref().map(weft_core::SecretRef::resolve).transpose()
        };
        let options = weft_stage::S3Options {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: secret(&self.access_key_id)?,
            secret_access_key: secret(&self.secret_access_key)?,
            allow_http: self.allow_http,
            multipart_threshold_bytes: self.multipart_threshold_bytes,
        };
        Ok(weft_stage::Stage::s3(&self.url, &options)?)
    }
}

fn default_threads() -> u32 {
    1
}

fn default_memory_limit() -> String {
    "512MB".into()
}

fn default_stage_url() -> String {
    "stage".into()
}

/// One pipeline: a connector, its streams, how they load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Pipeline name; also the warehouse schema its tables land in.
    pub name: String,
    /// Connector name (`weft discover` lists them).
    pub connector: String,
    /// Streams to run; omitted = all.
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    /// Streams run at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Requests each stream's sliced read keeps in flight at most; omitted =
    /// sized from the account's rate budget x the observed latency.
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Commit after this many rows (at the next source checkpoint).
    #[serde(default)]
    pub checkpoint_rows: Option<u64>,
    /// Commit after this many bytes of Arrow data.
    #[serde(default)]
    pub checkpoint_bytes: Option<u64>,
    /// Commit after this many seconds.
    #[serde(default)]
    pub checkpoint_secs: Option<u64>,
    /// Schema contract: `evolve` (default), `freeze`, `discard_row`, `discard_value`.
    #[serde(default)]
    pub contract: SchemaContract,
    /// Overrides every stream's write disposition: `merge`, `append`,
    /// `replace`, `history` (a stream's own `write_disposition` wins).
    #[serde(default)]
    pub write_disposition: Option<WriteDisposition>,
    /// Cron schedule for `weft serve`, e.g. `"*/15 * * * *"` (six fields
    /// with seconds first for short intervals: `"*/10 * * * * *"`).
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule` (e.g. `Europe/Berlin`); default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The most every stream of this pipeline may lag (`"30m"`, `"2h"`,
    /// `"1d"`): the age of its newest committed cursor (else of its last
    /// committed load); `weft check --quality` fails naming the streams older
    /// than this. Default: no SLA.
    #[serde(default)]
    pub freshness_sla: Option<Sla>,
    /// Settings of single streams, by stream name:
    /// `[pipelines.per_stream.charges]` with `freshness_sla = "30m"`.
    #[serde(default)]
    pub per_stream: BTreeMap<String, StreamSettings>,
    /// What a failed `expect_not_null` / `expect_unique` of a stream does
    /// after its load committed: `warn` (default: a `quality` line in the
    /// report) or `fail` (the stream counts as failed; its data stays
    /// committed). A stream's own `on_quality_failure` overrides this.
    #[serde(default)]
    pub on_quality_failure: Option<QualityAction>,
    /// Quality checks of every stream of this pipeline (`quality.volume =
    /// "fail"`); a stream's own `quality` overrides each key it sets.
    #[serde(default)]
    pub quality: QualitySettings,
    /// The connector's own settings.
    #[serde(default)]
    pub config: toml::Table,
}

/// `[pipelines.per_stream.NAME]`: what one stream overrides of its pipeline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// This stream's freshness SLA (overrides the pipeline's `freshness_sla`).
    #[serde(default)]
    pub freshness_sla: Option<Sla>,
    /// Columns that must hold no NULL (rows with `_weft_deleted_at` set are
    /// not counted), checked in the warehouse after the load committed.
    #[serde(default)]
    pub expect_not_null: Vec<String>,
    /// Columns whose non-NULL values must each be unique, every listed
    /// column on its own (not the listed columns together).
    #[serde(default)]
    pub expect_unique: Vec<String>,
    /// Overrides the pipeline's `on_quality_failure` for this stream.
    #[serde(default)]
    pub on_quality_failure: Option<QualityAction>,
    /// Overrides the pipeline's `quality` keys for this stream.
    #[serde(default)]
    pub quality: QualitySettings,
    /// This stream's write disposition (overrides the pipeline's and the
    /// connector's): `merge`, `append`, `replace` or `history`.
    #[serde(default)]
    pub write_disposition: Option<WriteDisposition>,
}

/// `quality` of a pipeline or of one stream (`[pipelines.quality]`, or
/// `quality.volume = "fail"` in `[pipelines.per_stream.NAME]`): the checks
/// run after a pipeline run's loads committed. Every key is optional; a
/// stream's key overrides its pipeline's, which overrides the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySettings {
    /// The volume check (rows a run loaded against the stream's history):
    /// `warn` (default: flag it in the report and `_weft._weft_quality`),
    /// `fail` (also fail the stream) or `off`.
    #[serde(default)]
    pub volume: Option<CheckAction>,
    /// How many earlier runs of the pipeline a stream's volume is compared
    /// with: the newest this many (default 20).
    #[serde(default)]
    pub volume_runs: Option<usize>,
    /// Earlier runs needed before a volume is judged at all (default 5).
    #[serde(default)]
    pub volume_min_runs: Option<usize>,
    /// How far from the usual a volume must be to be flagged: at most the
    /// median / this, or at least the median x this (default 10), and
    /// outside 3 scaled MADs of the median.
    #[serde(default)]
    pub volume_factor: Option<f64>,
    /// The completeness check (records taken in against the source's own
    /// count, where it counts): `warn` (default), `fail` or `off`.
    #[serde(default)]
    pub completeness: Option<CheckAction>,
    /// The share of the source's count that may be missing before the
    /// completeness check flags it, from 0 (default: none) to 1.
    #[serde(default)]
    pub completeness_tolerance: Option<f64>,
}

impl QualitySettings {
    /// Each key of `self`, else of `base`.
    pub fn or(self, base: QualitySettings) -> QualitySettings {
        QualitySettings {
            volume: self.volume.or(base.volume),
            volume_runs: self.volume_runs.or(base.volume_runs),
            volume_min_runs: self.volume_min_runs.or(base.volume_min_runs),
            volume_factor: self.volume_factor.or(base.volume_factor),
            completeness: self.completeness.or(base.completeness),
            completeness_tolerance: self.completeness_tolerance.or(base.completeness_tolerance),
        }
    }

    /// Why these settings cannot be used, naming the key.
    fn check(&self) -> Result<(), String> {
        if self.volume_runs == Some(0) {
            return Err("quality.volume_runs must be at least 1".to_string());
        }
        if self.volume_min_runs == Some(0) {
            return Err("quality.volume_min_runs must be at least 1".to_string());
        }
        if let Some(f) = self.volume_factor
            && !(f.is_finite() && f > 1.0)
        {
            return Err(format!(
                "quality.volume_factor must be a number greater than 1, not {f}"
            ));
        }
        if let Some(t) = self.completeness_tolerance
            && !(0.0..=1.0).contains(&t)
        {
            return Err(format!(
                "quality.completeness_tolerance must be a share from 0 to 1 (0.01 = 1%), not {t}"
            ));
        }
        Ok(())
    }
}

/// What a quality check (`quality.volume`) does: `off`, `warn` (flag it)
/// or `fail` (flag it and fail the stream; its loads stay committed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckAction {
    /// Do not check.
    Off,
    /// Check; a flagged result is a `quality` line of the report.
    #[default]
    Warn,
    /// Check; a flagged result also fails the stream.
    Fail,
}

/// What a failed expectation does: `warn` (report it) or `fail` (also
/// count the stream as failed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityAction {
    /// Report the failure; the run still succeeds.
    #[default]
    Warn,
    /// Report the failure and fail the stream (its loads stay committed).
    Fail,
}

/// A freshness SLA, written as a duration: `"45s"`, `"30m"`, `"2h"`,
/// `"1d"`, `"1w"`, `"1h30m"` (see [`crate::parse_duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla(pub std::time::Duration);

impl<'de> Deserialize<'de> for Sla {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::quality::parse_duration(&text)
            .map(Sla)
            .map_err(serde::de::Error::custom)
    }
}

fn default_concurrency() -> usize {
    4
}

impl PipelineConfig {
    /// The commit cadence from the checkpoint fields and defaults.
    pub fn cadence(&self) -> Cadence {
        let d = Cadence::default();
        Cadence {
            rows: self.checkpoint_rows.unwrap_or(d.rows),
            bytes: self.checkpoint_bytes.unwrap_or(d.bytes),
            seconds: self.checkpoint_secs.unwrap_or(d.seconds),
        }
    }

    /// The streams with their own `write_disposition`, by name.
    pub fn stream_dispositions(&self) -> BTreeMap<String, WriteDisposition> {
        self.per_stream
            .iter()
            .filter_map(|(name, s)| s.write_disposition.map(|d| (name.clone(), d)))
            .collect()
    }
}

impl WeftConfig {
    /// Reads and validates a config file; relative paths become relative to it.
    pub fn load(path: &Path) -> Result<WeftConfig, RunnerError> {
        let text = std::fs::read_to_string(path).map_err(|e| RunnerError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut config = WeftConfig::parse(&text).map_err(|reason| RunnerError::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.rebase(base);
        Ok(config)
    }

    /// Parses config text (paths left as written).
    pub fn parse(text: &str) -> Result<WeftConfig, String> {
        let config: WeftConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut names = std::collections::HashSet::new();
        for p in &config.pipelines {
            if !names.insert(p.name.as_str()) {
                return Err(format!("pipeline `{}` is defined twice", p.name));
            }
            if p.name.is_empty() || p.name.starts_with('_') {
                return Err(format!(
                    "pipeline name `{}` must be non-empty and not start with `_`",
                    p.name
                ));
            }
            if p.max_concurrency == Some(0) {
                return Err(format!(
                    "pipeline `{}`: max_concurrency must be at least 1",
                    p.name
                ));
            }
            p.quality
                .check()
                .map_err(|e| format!("pipeline `{}`: {e}", p.name))?;
            for (name, s) in &p.per_stream {
                s.quality.check().map_err(|e| {
                    format!("pipeline `{}`: [pipelines.per_stream.{name}] {e}", p.name)
                })?;
            }
            if let Some(streams) = &p.streams
                && let Some(name) = p.per_stream.keys().find(|s| !streams.contains(s))
            {
                return Err(format!(
                    "pipeline `{}`: [pipelines.per_stream.{name}] names a stream not in its \
                     streams ({})",
                    p.name,
                    streams.join(", ")
                ));
            }
        }
        let mut syncs = std::collections::HashSet::new();
        for s in &config.syncs {
            if !syncs.insert(s.name.as_str()) {
                return Err(format!("sync `{}` is defined twice", s.name));
            }
        }
        if config.runner.lease_secs == 0 {
            return Err("[runner] lease_secs must be at least 1".to_string());
        }
        config.jobs()?;
        Ok(config)
    }

    /// The scheduled jobs: one per `[[jobs]]`, per pipeline with a
    /// `schedule` and per sync with one. Errors name what is wrong where.
    pub fn jobs(&self) -> Result<Vec<Job>, String> {
        let mut jobs = Vec::new();
        for p in &self.pipelines {
            if let Some(expr) = &p.schedule {
                jobs.push(Job {
                    name: p.name.clone(),
                    schedule: Schedule::parse(expr, p.timezone.as_deref())
                        .map_err(|e| format!("pipeline `{}`: {e}", p.name))?,
                    pipelines: vec![p.name.clone()],
                    models: false,
                    syncs: Vec::new(),
                });
            }
        }
        for s in &self.syncs {
            if let Some(expr) = &s.schedule {
                jobs.push(Job {
                    name: s.name.clone(),
                    schedule: Schedule::parse(expr, s.timezone.as_deref())
                        .map_err(|e| format!("sync `{}`: {e}", s.name))?,
                    pipelines: Vec::new(),
                    models: true,
                    syncs: vec![s.name.clone()],
                });
            }
        }
        for j in &self.jobs {
            let schedule = Schedule::parse(&j.schedule, j.timezone.as_deref())
                .map_err(|e| format!("job `{}`: {e}", j.name))?;
            for p in &j.pipelines {
                if !self.pipelines.iter().any(|c| &c.name == p) {
                    return Err(format!("job `{}`: no pipeline is named `{p}`", j.name));
                }
            }
            for s in &j.syncs {
                if !self.syncs.iter().any(|c| &c.name == s) {
                    return Err(format!("job `{}`: no sync is named `{s}`", j.name));
                }
            }
            let models = j.models.unwrap_or(!j.syncs.is_empty());
            if j.pipelines.is_empty() && j.syncs.is_empty() && !models {
                return Err(format!(
                    "job `{}` runs nothing: list pipelines or syncs",
                    j.name
                ));
            }
            jobs.push(Job {
                name: j.name.clone(),
                schedule,
                pipelines: j.pipelines.clone(),
                models,
                syncs: j.syncs.clone(),
            });
        }
        let mut names = std::collections::HashSet::new();
        for j in &jobs {
            if !names.insert(j.name.as_str()) {
                return Err(format!(
                    "job name `{}` is used twice (a [[jobs]] table, a scheduled pipeline \
                     or a scheduled sync)",
                    j.name
                ));
            }
        }
        Ok(jobs)
    }

    fn rebase(&mut self, base: &Path) {
        if let WarehouseConfig::Duckdb { path, .. } = &mut self.warehouse
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
        if !self.stage.url.contains("://") && Path::new(&self.stage.url).is_relative() {
            self.stage.url = base.join(&self.stage.url).display().to_string();
        }
        if let Some(dir) = &mut self.models.dir
            && dir.is_relative()
        {
            *dir = base.join(&*dir);
        }
    }

    /// The sync with this name.
    pub fn sync(&self, name: &str) -> Result<&SyncConfig, RunnerError> {
        self.syncs
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| RunnerError::UnknownSync {
                name: name.to_string(),
                available: self
                    .syncs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The pipeline with this name.
    pub fn pipeline(&self, name: &str) -> Result<&PipelineConfig, RunnerError> {
        self.pipelines
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| RunnerError::UnknownPipeline {
                name: name.to_string(),
                available: self
                    .pipelines
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const README_EXAMPLE: &str = r#"
[warehouse]
kind = "duckdb"            # later: postgres, snowflake, ...
path = "weft.duckdb"

[stage]
url = "stage"              # a local path, file://…, or s3://bucket/prefix

[[pipelines]]
name = "stripe"
connector = "stripe"
streams = ["customers", "charges"]   # omitted = all streams

[pipelines.config]
base_url = "http://127.0.0.1:12111"  # omitted = the vendor's real URL
api_key = { env = "STRIPE_API_KEY" } # or { file = "…" }
"#;

    #[test]
    fn parses_the_readme_example_and_rebases_paths() {
        let mut c = WeftConfig::parse(README_EXAMPLE).unwrap();
        c.rebase(Path::new("/etc/weft"));
        let WarehouseConfig::Duckdb {
            path,
            memory_limit,
            threads,
        } = &c.warehouse
        else {
            panic!("the README example is a DuckDB warehouse");
        };
        assert_eq!(*threads, 1);
        assert_eq!(memory_limit, "512MB");
        assert_eq!(path, Path::new("/etc/weft/weft.duckdb"));
        assert_eq!(c.stage.url, "/etc/weft/stage");
        let p = c.pipeline("stripe").unwrap();
        assert_eq!(p.streams.as_deref().unwrap(), ["customers", "charges"]);
        assert_eq!(p.concurrency, 4);
        assert_eq!(p.max_concurrency, None);
        assert_eq!(p.contract, SchemaContract::Evolve);
        let capped = README_EXAMPLE.replace(
            "connector = \"stripe\"\n",
            "connector = \"stripe\"\nmax_concurrency = 8\n",
        );
        let capped = WeftConfig::parse(&capped).unwrap();
        assert_eq!(capped.pipeline("stripe").unwrap().max_concurrency, Some(8));
        let zero = README_EXAMPLE.replace(
            "connector = \"stripe\"\n",
            "connector = \"stripe\"\nmax_concurrency = 0\n",
        );
        let err = WeftConfig::parse(&zero).unwrap_err();
        assert!(err.contains("max_concurrency must be at least 1"), "{err}");
        assert!(p.config.contains_key("api_key"));
        assert!(c.pipeline("nope").is_err());
    }

    #[test]
    fn schedules_become_jobs_and_bad_ones_name_their_place() {
        let text = format!(
            "{README_EXAMPLE}\n[[jobs]]\nname = \"nightly\"\nschedule = \"0 2 * * *\"\n\
             timezone = \"Europe/Berlin\"\npipelines = [\"stripe\"]\n"
        )
        .replace(
            "connector = \"stripe\"\n",
            "connector = \"stripe\"\nschedule = \"*/10 * * * * *\"\n",
        );
        let c = WeftConfig::parse(&text).unwrap();
        let jobs = c.jobs().unwrap();
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["stripe", "nightly"]);
        assert_eq!(jobs[0].pipelines, ["stripe"]);
        assert!(!jobs[1].models, "no syncs: no models by default");
        assert_eq!(jobs[1].schedule.expression(), "0 2 * * *");
        let bad = text.replace("*/10 * * * * *", "*/10 * * *");
        let err = WeftConfig::parse(&bad).unwrap_err();
        assert!(
            err.starts_with("pipeline `stripe`: schedule `*/10 * * *` has 4 fields"),
            "{err}"
        );
        let bad = text.replace("pipelines = [\"stripe\"]", "pipelines = [\"strip\"]");
        let err = WeftConfig::parse(&bad).unwrap_err();
        assert_eq!(err, "job `nightly`: no pipeline is named `strip`");
        let bad = text.replace("name = \"nightly\"", "name = \"stripe\"");
        let err = WeftConfig::parse(&bad).unwrap_err();
        assert!(err.contains("job name `stripe` is used twice"), "{err}");
        let bad = text.replace("Europe/Berlin", "Europe/Nowhere");
        let err = WeftConfig::parse(&bad).unwrap_err();
        assert!(
            err.starts_with("job `nightly`: timezone `Europe/Nowhere`"),
            "{err}"
        );
    }

    #[test]
    fn freshness_slas_parse_on_the_pipeline_and_per_stream() {
        let text = README_EXAMPLE.replace(
            "connector = \"stripe\"\n",
            "connector = \"stripe\"\nfreshness_sla = \"2h\"\n",
        );
        let text = format!("{text}\n[pipelines.per_stream.charges]\nfreshness_sla = \"30m\"\n");
        let c = WeftConfig::parse(&text).unwrap();
        let p = c.pipeline("stripe").unwrap();
        assert_eq!(
            p.freshness_sla,
            Some(Sla(std::time::Duration::from_secs(7_200)))
        );
        assert_eq!(
            p.per_stream["charges"].freshness_sla,
            Some(Sla(std::time::Duration::from_secs(1_800)))
        );
        assert_eq!(
            WeftConfig::parse(README_EXAMPLE).unwrap().pipelines[0].freshness_sla,
            None
        );
        let bad = text.replace("\"2h\"", "\"2 hours\"");
        let err = WeftConfig::parse(&bad).unwrap_err();
        assert!(
            err.contains("duration `2 hours`: a number has no unit"),
            "{err}"
        );
        let bad = text.replace("per_stream.charges", "per_stream.refunds");
        let err = WeftConfig::parse(&bad).unwrap_err();
        assert!(
            err.contains(
                "pipeline `stripe`: [pipelines.per_stream.refunds] names a stream not in its \
                 streams (customers, charges)"
            ),
            "{err}"
        );
        let bad = format!("{text}freshness = \"1h\"\n");
        assert!(WeftConfig::parse(&bad).unwrap_err().contains("freshness"));
    }

    #[test]
    fn refuses_unknown_fields_and_duplicate_pipelines() {
        let bad = README_EXAMPLE.replace("streams = [", "streamz = [");
        assert!(WeftConfig::parse(&bad).unwrap_err().contains("streamz"));
        let dup =
            format!("{README_EXAMPLE}\n[[pipelines]]\nname = \"stripe\"\nconnector = \"stripe\"\n");
        assert!(
            WeftConfig::parse(&dup)
                .unwrap_err()
                .contains("defined twice")
        );
    }
}
