//! Run history: one row per pipeline run in `_weft._weft_runs`, written when
//! the run starts and again when it ends, the same plain SQL on every
//! warehouse (through [`Warehouse::query`]), so a new warehouse gets it free.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use weft_core::{RunReport, SyncReport};

use crate::WarehouseError;
use crate::sql::literal as text;
use crate::warehouse::Warehouse;

/// `CREATE TABLE` of the history (portable types; times are RFC 3339 text).
const CREATE: &str = "CREATE TABLE IF NOT EXISTS _weft._weft_runs (\
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, \"trigger\" TEXT NOT NULL, \
    host TEXT NOT NULL, pid BIGINT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, \
    status TEXT NOT NULL, \"rows\" BIGINT NOT NULL, rejects BIGINT NOT NULL, \
    requests BIGINT NOT NULL, rate_limited BIGINT NOT NULL, error TEXT)";

/// Columns added after the first release, for tables created before them.
const ADDED: [&str; 3] = [
    "ALTER TABLE _weft._weft_runs ADD COLUMN IF NOT EXISTS kind TEXT DEFAULT 'pipeline'",
    "ALTER TABLE _weft._weft_runs ADD COLUMN IF NOT EXISTS job TEXT",
    "ALTER TABLE _weft._weft_runs ADD COLUMN IF NOT EXISTS scheduled_at TEXT",
];

/// The columns [`Warehouse::runs`] reads, in [`RunRecord`] order.
const COLUMNS: &str = "run_id, kind, pipeline, job, \"trigger\", scheduled_at, host, pid, \
    started_at, finished_at, status, \"rows\", rejects, requests, rate_limited, error";

/// Creates the history table, or adds the columns a table made by an
/// earlier version lacks.
async fn ensure<W: Warehouse + ?Sized>(warehouse: &W) -> Result<(), WarehouseError> {
    warehouse.query(CREATE).await?;
    let present = warehouse
        .query_rows(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = '_weft' \
             AND table_name = '_weft_runs' AND column_name IN ('kind', 'job', 'scheduled_at')",
        )
        .await?;
    let present = present.first().and_then(|r| r.first()).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    if present != Some(ADDED.len() as u64) {
        for alter in ADDED {
            warehouse.query(alter).await?;
        }
    }
    Ok(())
}

/// What a run ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A pipeline: extract and load.
    Pipeline,
    /// A reverse sync: a model out to a tool.
    Sync,
}

impl RunKind {
    /// `pipeline` or `sync`, as stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Pipeline => "pipeline",
            RunKind::Sync => "sync",
        }
    }
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running (or killed before it could say otherwise).
    Running,
    /// Every stream succeeded (or stopped at its API quota, cleanly).
    Succeeded,
    /// A stream failed, or the pipeline could not start.
    Failed,
    /// Stopped by a signal; committed loads are kept.
    Cancelled,
    /// Left `running` by a runner that died: a later run of the pipeline
    /// took its lock.
    Abandoned,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Abandoned => "abandoned",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
            RunStatus::Abandoned,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `_weft._weft_runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The run's id (time-ordered, unique).
    pub run_id: String,
    /// A pipeline's run or a sync's.
    pub kind: RunKind,
    /// The pipeline's (or the sync's) name.
    pub pipeline: String,
    /// The scheduled job it ran in (`weft serve`), if any.
    pub job: Option<String>,
    /// What started it: `manual` (`weft run`, `weft sync`) or `schedule`.
    pub trigger: String,
    /// The scheduled time it ran for, when the schedule started it.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Host of the runner.
    pub host: String,
    /// Process id of the runner.
    pub pid: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (`None` while running).
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub status: RunStatus,
    /// Rows committed.
    pub rows: u64,
    /// Rows rejected.
    pub rejects: u64,
    /// API requests made.
    pub requests: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// The first error, when it failed (no secrets: the report's own text).
    pub error: Option<String>,
}

impl RunRecord {
    /// A run of `pipeline` starting now in this process.
    pub fn start(pipeline: &str, trigger: &str) -> Self {
        RunRecord {
            run_id: weft_core::new_load_id(),
            kind: RunKind::Pipeline,
            pipeline: pipeline.to_string(),
            job: None,
            trigger: trigger.to_string(),
            scheduled_at: None,
            host: host_name(),
            pid: std::process::id(),
            started_at: Utc::now(),
            finished_at: None,
            status: RunStatus::Running,
            rows: 0,
            rejects: 0,
            requests: 0,
            rate_limited: 0,
            error: None,
        }
    }

    /// A run of sync `sync` starting now in this process.
    pub fn start_sync(sync: &str, trigger: &str) -> Self {
        RunRecord {
            kind: RunKind::Sync,
            ..RunRecord::start(sync, trigger)
        }
    }

    /// The same run, as part of scheduled job `job` run for `scheduled_at`
    /// (trigger `schedule`).
    pub fn in_job(mut self, job: &str, scheduled_at: DateTime<Utc>) -> Self {
        self.job = Some(job.to_string());
        self.trigger = "schedule".to_string();
        self.scheduled_at = Some(scheduled_at);
        self
    }

    /// The sync run ended now: `report` when it ran, else why it failed.
    /// Rows are the records acknowledged, requests the batches sent.
    pub fn finish_sync(&mut self, outcome: Result<&SyncReport, &str>) {
        self.finished_at = Some(Utc::now());
        match outcome {
            Ok(r) => {
                self.status = RunStatus::Succeeded;
                self.rows = r.created + r.updated + r.deleted + r.resumed;
                self.rejects = r.rejected;
                self.requests = r.batches;
            }
            Err(e) => {
                self.status = RunStatus::Failed;
                self.error = Some(e.to_string());
            }
        }
    }

    /// The run was cancelled before it started its work.
    pub fn cancel(&mut self) {
        self.finished_at = Some(Utc::now());
        self.status = RunStatus::Cancelled;
    }

    /// The run ended now with `report`.
    pub fn finish(&mut self, report: &RunReport) {
        use weft_core::StreamStatus;
        self.finished_at = Some(Utc::now());
        let cancelled = report
            .streams
            .iter()
            .any(|s| s.status == StreamStatus::Cancelled);
        self.status = if report.succeeded() {
            RunStatus::Succeeded
        } else if cancelled
            && report.error.is_none()
            && report
                .streams
                .iter()
                .all(|s| s.status != StreamStatus::Failed)
        {
            RunStatus::Cancelled
        } else {
            RunStatus::Failed
        };
        self.rows = report.rows();
        self.rejects = report.streams.iter().map(|s| s.rejected).sum();
        self.requests = report.streams.iter().map(|s| s.requests).sum();
        self.rate_limited = report.streams.iter().map(|s| s.rate_limited).sum();
        self.error = report.error.clone().or_else(|| {
            report
                .streams
                .iter()
                .find_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.stream)))
        });
    }
}

/// The runner's host name: `WEFT_HOST` when set (a container's own name
/// says little), else the kernel's host name, else `unknown`.
pub(crate) fn host_name() -> String {
    std::env::var("WEFT_HOST")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

fn opt_text(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".to_string(), text)
}

fn time(t: &DateTime<Utc>) -> String {
    text(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn opt_time(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "NULL".to_string(), time)
}

/// Records that `run` started: earlier runs of the pipeline still marked
/// `running` are marked `abandoned` (the caller holds the pipeline's run
/// lock, so none of them is still going), then the run is inserted.
pub(crate) async fn begin<W: Warehouse + ?Sized>(
    warehouse: &W,
    run: &RunRecord,
) -> Result<(), WarehouseError> {
    ensure(warehouse).await?;
    warehouse
        .query(&format!(
            "UPDATE _weft._weft_runs SET status = 'abandoned' \
             WHERE pipeline = {} AND COALESCE(kind, 'pipeline') = {} AND status = 'running'",
            text(&run.pipeline),
            text(run.kind.as_str())
        ))
        .await?;
    warehouse
        .query(&format!(
            "INSERT INTO _weft._weft_runs ({COLUMNS}) VALUES \
             ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            text(&run.run_id),
            text(run.kind.as_str()),
            text(&run.pipeline),
            opt_text(run.job.as_deref()),
            text(&run.trigger),
            opt_time(run.scheduled_at.as_ref()),
            text(&run.host),
            run.pid,
            time(&run.started_at),
            opt_time(run.finished_at.as_ref()),
            text(run.status.as_str()),
            run.rows,
            run.rejects,
            run.requests,
            run.rate_limited,
            opt_text(run.error.as_deref()),
        ))
        .await?;
    Ok(())
}

/// Records how `run` ended.
pub(crate) async fn end<W: Warehouse + ?Sized>(
    warehouse: &W,
    run: &RunRecord,
) -> Result<(), WarehouseError> {
    warehouse
        .query(&format!(
            "UPDATE _weft._weft_runs SET finished_at = {}, status = {}, \"rows\" = {}, \
             rejects = {}, requests = {}, rate_limited = {}, error = {} WHERE run_id = {}",
            opt_time(run.finished_at.as_ref()),
            text(run.status.as_str()),
            run.rows,
            run.rejects,
            run.requests,
            run.rate_limited,
            opt_text(run.error.as_deref()),
            text(&run.run_id),
        ))
        .await?;
    Ok(())
}

/// The latest `limit` runs (of `pipeline`, or of all), newest first.
pub(crate) async fn list<W: Warehouse + ?Sized>(
    warehouse: &W,
    pipeline: Option<&str>,
    limit: usize,
) -> Result<Vec<RunRecord>, WarehouseError> {
    ensure(warehouse).await?;
    let filter = pipeline.map_or_else(String::new, |p| format!("WHERE pipeline = {}", text(p)));
    let rows = warehouse
        .query_rows(&format!(
            "SELECT {COLUMNS} FROM _weft._weft_runs {filter} ORDER BY run_id DESC LIMIT {limit}"
        ))
        .await?;
    rows.iter().map(|r| parse(r)).collect()
}

fn parse(row: &[serde_json::Value]) -> Result<RunRecord, WarehouseError> {
    let bad = |what: &str| WarehouseError::Corrupt {
        what: "_weft._weft_runs row".to_string(),
        reason: format!(
            "{what} is missing or malformed in {}",
            serde_json::Value::from(row.to_vec())
        ),
    };
    let s = |i: usize| row.get(i).and_then(|v| v.as_str());
    let n = |i: usize, what: &str| {
        row.get(i)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| bad(what))
    };
    let t = |v: &str| DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc));
    let opt_t = |i: usize, what: &str| match s(i) {
        Some(v) => t(v).map(Some).map_err(|_| bad(what)),
        None => Ok(None),
    };
    Ok(RunRecord {
        run_id: s(0).ok_or_else(|| bad("run_id"))?.to_string(),
        kind: match s(1) {
            Some("sync") => RunKind::Sync,
            _ => RunKind::Pipeline,
        },
        pipeline: s(2).ok_or_else(|| bad("pipeline"))?.to_string(),
        job: s(3).map(str::to_string),
        trigger: s(4).ok_or_else(|| bad("trigger"))?.to_string(),
        scheduled_at: opt_t(5, "scheduled_at")?,
        host: s(6).ok_or_else(|| bad("host"))?.to_string(),
        pid: u32::try_from(n(7, "pid")?).map_err(|_| bad("pid"))?,
        started_at: s(8)
            .and_then(|v| t(v).ok())
            .ok_or_else(|| bad("started_at"))?,
        finished_at: opt_t(9, "finished_at")?,
        status: s(10)
            .and_then(RunStatus::parse)
            .ok_or_else(|| bad("status"))?,
        rows: n(11, "rows")?,
        rejects: n(12, "rejects")?,
        requests: n(13, "requests")?,
        rate_limited: n(14, "rate_limited")?,
        error: s(15).map(str::to_string),
    })
}
