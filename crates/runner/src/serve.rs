//! `weft serve`: run each scheduled job at its times until told to stop.
//!
//! Each job has its own task: sleep to the next scheduled time (plus
//! jitter), take the job's lease for that time, run its pipelines, models
//! and syncs, release. A job still running when its next time comes does
//! not start again: the times it missed are counted (`skipped_overlap`).
//! Runners sharing a warehouse split the times between them through the
//! job's lease, which keeps the last time claimed: a time one runner took is
//! `ran_elsewhere` for the others. On shutdown no job starts, running ones
//! are cancelled at their next checkpoint (committed loads and cursors are
//! kept) and get `[runner] grace_secs` to stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use weft_core::CancellationToken;
use weft_warehouse::{Claim, RunRecord};

use crate::metrics::{Metrics, serve_http};
use crate::schedule::Job;
use crate::{RunOptions, RunnerError, Session, WeftConfig};

/// What `weft serve` was asked beyond the config.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Serve `/metrics`, `/healthz` and `/readyz` here (overrides `[runner] metrics`).
    pub metrics: Option<SocketAddr>,
}

/// What one job's scheduled times came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Times this runner ran the job and everything in it succeeded.
    pub ran: u64,
    /// Times this runner ran it and something failed.
    pub failed: u64,
    /// Times a shutdown stopped it at a checkpoint (committed work kept).
    pub cancelled: u64,
    /// Times skipped because the job was still running (here or elsewhere).
    pub skipped_overlap: u64,
    /// Times another runner sharing the warehouse ran.
    pub ran_elsewhere: u64,
}

/// What a `weft serve` did until it stopped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServeSummary {
    /// Per job.
    pub jobs: BTreeMap<String, JobCounts>,
    /// Whether every running job stopped within the grace period.
    pub stopped_in_grace: bool,
}

impl ServeSummary {
    /// One line per job.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, c) in &self.jobs {
            out.push_str(&format!(
                "job    {name:<32} ran {}, failed {}, cancelled {}, skipped (still running) {}, ran elsewhere {}\n",
                c.ran, c.failed, c.cancelled, c.skipped_overlap, c.ran_elsewhere
            ));
        }
        if !self.stopped_in_grace {
            out.push_str(
                "some jobs were still stopping when the grace period ended; their committed \
                 loads are kept and the next run resumes from them\n",
            );
        }
        out
    }
}

/// A running `weft serve`: its jobs' tasks and its metrics listener.
pub struct Server {
    metrics: Arc<Metrics>,
    metrics_addr: Option<SocketAddr>,
    tasks: Vec<(String, tokio::task::JoinHandle<JobCounts>)>,
    session: Arc<Session>,
    /// No new job starts once cancelled.
    stop: CancellationToken,
    /// Cancels running jobs at their next checkpoint.
    cancel: CancellationToken,
    /// Stops the metrics listener.
    listener: CancellationToken,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("jobs", &self.tasks.len())
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

impl Server {
    /// Opens the warehouse, starts the metrics listener (if asked) and one
    /// task per scheduled job.
    pub async fn start(config: &WeftConfig, options: ServeOptions) -> Result<Server, RunnerError> {
        let jobs = config.jobs().map_err(|reason| RunnerError::Config {
            path: "weft.toml".into(),
            reason,
        })?;
        if jobs.is_empty() {
            return Err(RunnerError::NothingScheduled);
        }
        let metrics = Arc::new(Metrics::new());
        let listener = CancellationToken::new();
        let metrics_addr = match options.metrics.or(config.runner.metrics) {
            Some(addr) => Some(serve_http(addr, Arc::clone(&metrics), listener.clone()).await?),
            None => None,
        };
        let session = Arc::new(Session::open(config, Some(Arc::clone(&metrics))).await?);
        session.stage.check().await?;
        // Streams with a freshness SLA are exported from the start, not
        // only once their pipeline has run again.
        if config.pipelines.iter().any(|p| p.has_freshness_sla()) {
            session.update_freshness(None, BTreeMap::new()).await;
        }
        let stop = CancellationToken::new();
        let cancel = CancellationToken::new();
        let jitter = Duration::from_secs(config.runner.jitter_secs);
        let tasks = jobs
            .into_iter()
            .map(|job| {
                let name = job.name.clone();
                let task = tokio::spawn(job_loop(
                    Arc::clone(&session),
                    job,
                    jitter,
                    stop.clone(),
                    cancel.clone(),
                ));
                (name, task)
            })
            .collect();
        metrics.set_ready(true);
        Ok(Server {
            session,
            metrics,
            metrics_addr,
            tasks,
            stop,
            cancel,
            listener,
            grace: Duration::from_secs(config.runner.grace_secs),
        })
    }

    /// Where the metrics are served, when they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs until `shutdown` is cancelled (or every schedule has no time
    /// left), then stops: no new job starts, running ones are cancelled at
    /// their next checkpoint and waited for up to the grace period.
    pub async fn run_until(self, shutdown: CancellationToken) -> ServeSummary {
        let names: Vec<String> = self.tasks.iter().map(|(n, _)| n.clone()).collect();
        let mut all = Box::pin(futures::future::join_all(
            self.tasks.into_iter().map(|(_, t)| t),
        ));
        let mut summary = ServeSummary::default();
        let results = tokio::select! {
            results = &mut all => Some(results),
            _ = shutdown.cancelled() => None,
        };
        let results = match results {
            Some(results) => Some(results),
            None => {
                tracing::info!(
                    grace_secs = self.grace.as_secs(),
                    "stopping: no new jobs; running ones stop at their next checkpoint"
                );
                self.metrics.set_ready(false);
                self.stop.cancel();
                self.cancel.cancel();
                tokio::time::timeout(self.grace, &mut all).await.ok()
            }
        };
        self.listener.cancel();
        self.session.close().await;
        summary.stopped_in_grace = results.is_some();
        for (name, result) in names.into_iter().zip(results.unwrap_or_default()) {
            match result {
                Ok(counts) => {
                    summary.jobs.insert(name, counts);
                }
                Err(e) => tracing::error!(job = %name, error = %e, "a job's task failed"),
            }
        }
        summary
    }
}

/// One job's schedule: sleep to each time, run, count the times missed.
async fn job_loop(
    session: Arc<Session>,
    job: Job,
    jitter: Duration,
    stop: CancellationToken,
    cancel: CancellationToken,
) -> JobCounts {
    let mut counts = JobCounts::default();
    let mut after = Utc::now();
    while let Some(next) = job.schedule.next_after(after) {
        let delay = if jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=jitter)
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default() + delay;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        let outcome = run_job(&session, &job, next, &cancel).await;
        let metrics = session.metrics.as_deref();
        let label = match &outcome {
            JobOutcome::Ran { ok: true } => {
                counts.ran += 1;
                "ran"
            }
            JobOutcome::Ran { ok: false } => {
                counts.failed += 1;
                "failed"
            }
            JobOutcome::Cancelled => {
                counts.cancelled += 1;
                "cancelled"
            }
            JobOutcome::NotStarted => {
                tracing::info!(job = %job.name, at = %next, "shutdown came before the job started");
                break;
            }
            JobOutcome::Elsewhere { holder } => {
                tracing::info!(job = %job.name, at = %next, by = %holder, "another runner ran this time");
                counts.ran_elsewhere += 1;
                "ran_elsewhere"
            }
            JobOutcome::StillRunning { holder } => {
                tracing::warn!(job = %job.name, at = %next, by = %holder, "the job is still running: this time is skipped");
                counts.skipped_overlap += 1;
                "skipped_overlap"
            }
        };
        if let Some(m) = metrics {
            m.job(&job.name, label, 1);
        }
        // Times that came while it ran are skipped, not queued.
        let now = Utc::now();
        let missed = job.schedule.count_between(next, now, u64::MAX);
        if missed > 0 {
            tracing::warn!(job = %job.name, missed, "the job ran past its next times: they are skipped");
            counts.skipped_overlap += missed;
            if let Some(m) = metrics {
                m.job(&job.name, "skipped_overlap", missed);
            }
        }
        after = now.max(next);
        if stop.is_cancelled() {
            break;
        }
    }
    counts
}

/// How one scheduled time of a job went.
enum JobOutcome {
    /// This runner ran it; `ok` when every part succeeded.
    Ran { ok: bool },
    /// A shutdown stopped it part-way, at a checkpoint.
    Cancelled,
    /// A shutdown came after its lease was taken but before any part began:
    /// nothing ran and nothing is recorded, so it is not counted.
    NotStarted,
    /// Another runner claimed this time.
    Elsewhere { holder: String },
    /// A run of the job (an earlier time) still holds its lease.
    StillRunning { holder: String },
}

/// Runs `job` for its time `slot`: its pipelines, then the models, then its
/// syncs, under the job's lease.
async fn run_job(
    session: &Session,
    job: &Job,
    slot: DateTime<Utc>,
    cancel: &CancellationToken,
) -> JobOutcome {
    let run_id = weft_core::new_load_id();
    let lease = match session
        .lease(&job.lease(), &run_id, Some(slot.timestamp_millis()))
        .await
    {
        Ok(Claim::Held(lease)) => lease,
        Ok(Claim::SlotTaken { holder }) => return JobOutcome::Elsewhere { holder },
        Err(weft_warehouse::WarehouseError::Running { holder, .. }) => {
            return JobOutcome::StillRunning { holder };
        }
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, "could not take the job's lease");
            return JobOutcome::Ran { ok: false };
        }
    };
    tracing::info!(job = %job.name, at = %slot, "job started");
    let mut ok = true;
    let mut cancelled = false;
    let mut started = false;
    let options = RunOptions::default();
    for name in &job.pipelines {
        if cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        let Ok(p) = session.config.pipeline(name) else {
            continue;
        };
        started = true;
        let record = RunRecord::start(name, "schedule").in_job(&job.name, slot);
        match session.pipeline(p, &options, record, cancel, &None).await {
            Ok(report) if stopped_by_cancel(&report) => cancelled = true,
            Ok(report) => ok &= report.succeeded(),
            Err(e) => {
                tracing::error!(job = %job.name, pipeline = %name, error = %e, "pipeline failed");
                ok = false;
            }
        }
    }
    if job.models
        && !cancel.is_cancelled()
        && let Err(e) = session.models().await
    {
        tracing::error!(job = %job.name, error = %e, "models failed");
        ok = false;
    }
    for name in &job.syncs {
        if cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        let Ok(sync) = session.config.sync(name) else {
            continue;
        };
        started = true;
        let record = RunRecord::start_sync(name, "schedule").in_job(&job.name, slot);
        let result = session.sync(sync, false, record).await;
        if let Some(e) = &result.error {
            tracing::error!(job = %job.name, sync = %name, error = %e, "sync failed");
            ok = false;
        }
    }
    session.release(lease).await;
    tracing::info!(job = %job.name, at = %slot, ok, "job ended");
    if cancelled && !started {
        JobOutcome::NotStarted
    } else if cancelled && ok {
        JobOutcome::Cancelled
    } else {
        JobOutcome::Ran { ok }
    }
}

/// Whether a pipeline's run stopped only because it was cancelled.
fn stopped_by_cancel(report: &weft_core::RunReport) -> bool {
    use weft_core::StreamStatus;
    report.error.is_none()
        && report
            .streams
            .iter()
            .any(|s| s.status == StreamStatus::Cancelled)
        && report
            .streams
            .iter()
            .all(|s| s.status != StreamStatus::Failed)
}
