//! Prometheus metrics of `weft serve`, and the HTTP listener that serves
//! them with `/healthz` and `/readyz`.
//!
//! Counters are fed from the same run reports `weft run --json` prints, so
//! the two always agree. Labels are pipeline, stream, sync, job and lease
//! names from the config — never a URL, key or credential.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use weft_core::{RunReport, SyncReport};

use crate::RunnerError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    pipeline: String,
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    name: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    kind: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    sync: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    lease: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

fn run_seconds_histogram() -> Histogram {
    // 0.25 s to about 2.3 h.
    Histogram::new(exponential_buckets(0.25, 2.0, 16))
}

/// Every figure `weft serve` exports.
pub struct Metrics {
    registry: Registry,
    rows: Family<StreamLabels, Counter>,
    rejects: Family<StreamLabels, Counter>,
    requests: Family<StreamLabels, Counter>,
    retries: Family<StreamLabels, Counter>,
    rate_limited: Family<StreamLabels, Counter>,
    wait_seconds: Family<StreamLabels, FloatCounter>,
    response_bytes: Family<StreamLabels, Counter>,
    staged_bytes: Family<StreamLabels, Counter>,
    loads: Family<StreamLabels, Counter>,
    cursor_timestamp: Family<StreamLabels, FloatGauge>,
    freshness: Family<StreamLabels, FloatGauge>,
    freshness_sla: Family<StreamLabels, FloatGauge>,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<NameLabels, Histogram, fn() -> Histogram>,
    last_success: Family<NameLabels, FloatGauge>,
    sync_records: Family<SyncLabels, Counter>,
    jobs: Family<JobLabels, Counter>,
    leases: Family<LeaseLabels, Gauge>,
    /// Unix seconds of each stream's newest committed cursor, for freshness.
    cursors: Mutex<HashMap<StreamLabels, f64>>,
    ready: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty set of metrics, registered under `weft_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("weft");
        let m = Metrics {
            rows: Family::default(),
            rejects: Family::default(),
            requests: Family::default(),
            retries: Family::default(),
            rate_limited: Family::default(),
            wait_seconds: Family::default(),
            response_bytes: Family::default(),
            staged_bytes: Family::default(),
            loads: Family::default(),
            cursor_timestamp: Family::default(),
            freshness: Family::default(),
            freshness_sla: Family::default(),
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(run_seconds_histogram),
            last_success: Family::default(),
            sync_records: Family::default(),
            jobs: Family::default(),
            leases: Family::default(),
            cursors: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            registry: Registry::default(),
        };
        registry.register("rows", "Rows committed", m.rows.clone());
        registry.register("rejects", "Records quarantined", m.rejects.clone());
        registry.register("requests", "API requests sent", m.requests.clone());
        registry.register("retries", "API requests retried", m.retries.clone());
        registry.register(
            "rate_limited",
            "API responses that were 429",
            m.rate_limited.clone(),
        );
        registry.register(
            "budget_wait_seconds",
            "Seconds spent waiting on rate budgets and backoff",
            m.wait_seconds.clone(),
        );
        registry.register(
            "response_bytes",
            "API response bytes received",
            m.response_bytes.clone(),
        );
        registry.register(
            "staged_bytes",
            "Parquet bytes staged by committed loads",
            m.staged_bytes.clone(),
        );
        registry.register("loads", "Loads committed", m.loads.clone());
        registry.register(
            "stream_cursor_timestamp_seconds",
            "Unix time of the stream's newest committed cursor",
            m.cursor_timestamp.clone(),
        );
        registry.register(
            "stream_freshness_seconds",
            "Seconds since the stream's newest committed cursor (else its last \
             committed load, for a stream with a freshness SLA)",
            m.freshness.clone(),
        );
        registry.register(
            "stream_freshness_sla_seconds",
            "The stream's freshness SLA (freshness_sla) in seconds",
            m.freshness_sla.clone(),
        );
        registry.register(
            "runs",
            "Pipeline and sync runs, by how they ended",
            m.runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Wall time of pipeline and sync runs",
            m.run_seconds.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time the pipeline or sync last succeeded",
            m.last_success.clone(),
        );
        registry.register(
            "sync_records",
            "Records a sync's destination acknowledged, by action",
            m.sync_records.clone(),
        );
        registry.register(
            "job_runs",
            "Scheduled times of each job: ran, skipped_overlap (still running), \
             ran_elsewhere (another runner took it), failed",
            m.jobs.clone(),
        );
        registry.register(
            "lease_held",
            "1 while this runner holds the lease",
            m.leases.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a pipeline run: its streams' figures, its status and time.
    pub fn pipeline_run(&self, report: &RunReport, status: &str) {
        for s in &report.streams {
            let l = StreamLabels {
                pipeline: report.pipeline.clone(),
                stream: s.stream.clone(),
            };
            self.rows.get_or_create(&l).inc_by(s.rows);
            self.rejects.get_or_create(&l).inc_by(s.rejected);
            self.requests.get_or_create(&l).inc_by(s.requests);
            self.retries.get_or_create(&l).inc_by(s.retries);
            self.rate_limited.get_or_create(&l).inc_by(s.rate_limited);
            self.wait_seconds
                .get_or_create(&l)
                .inc_by(s.wait_ms as f64 / 1000.0);
            self.response_bytes.get_or_create(&l).inc_by(s.bytes);
            self.staged_bytes.get_or_create(&l).inc_by(s.staged_bytes);
            self.loads.get_or_create(&l).inc_by(s.loads);
            let newest = s.cursor.as_ref().and_then(crate::quality::newest_time);
            if let Some(t) = newest.map(|t| t.timestamp_millis() as f64 / 1000.0) {
                self.cursor_timestamp.get_or_create(&l).set(t);
                if let Ok(mut cursors) = self.cursors.lock() {
                    cursors.insert(l, t);
                }
            }
        }
        self.ended("pipeline", &report.pipeline, status, report.seconds);
    }

    /// Sets each stream's freshness SLA and what its age is measured from
    /// (the age itself is computed as of each scrape). A stream never
    /// loaded has its SLA and no freshness.
    pub fn freshness(&self, streams: &[crate::Freshness]) {
        for f in streams
            .iter()
            .filter(|f| f.stream != crate::quality::ALL_STREAMS)
        {
            let l = StreamLabels {
                pipeline: f.pipeline.clone(),
                stream: f.stream.clone(),
            };
            self.freshness_sla
                .get_or_create(&l)
                .set(f.sla.as_secs_f64());
            if let Some(basis) = f.basis
                && let Ok(mut cursors) = self.cursors.lock()
            {
                cursors.insert(l, basis.at().timestamp_millis() as f64 / 1000.0);
            }
        }
    }

    /// Counts a sync run.
    pub fn sync_run(&self, sync: &str, report: Option<&SyncReport>, status: &str, seconds: f64) {
        if let Some(r) = report {
            for (action, n) in [
                ("created", r.created),
                ("updated", r.updated),
                ("deleted", r.deleted),
                ("rejected", r.rejected),
                ("resumed", r.resumed),
            ] {
                self.sync_records
                    .get_or_create(&SyncLabels {
                        sync: sync.to_string(),
                        action: action.to_string(),
                    })
                    .inc_by(n);
            }
        }
        self.ended("sync", sync, status, seconds);
    }

    fn ended(&self, kind: &str, name: &str, status: &str, seconds: f64) {
        self.runs
            .get_or_create(&RunLabels {
                kind: kind.to_string(),
                name: name.to_string(),
                status: status.to_string(),
            })
            .inc();
        let l = NameLabels {
            kind: kind.to_string(),
            name: name.to_string(),
        };
        self.run_seconds.get_or_create(&l).observe(seconds);
        if status == "succeeded" {
            self.last_success
                .get_or_create(&l)
                .set(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
    }

    /// Counts one scheduled time of `job` by its `outcome`.
    pub fn job(&self, job: &str, outcome: &str, n: u64) {
        self.jobs
            .get_or_create(&JobLabels {
                job: job.to_string(),
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }

    /// Sets whether this runner holds lease `name`.
    pub fn lease(&self, name: &str, held: bool) {
        self.leases
            .get_or_create(&LeaseLabels {
                lease: name.to_string(),
            })
            .set(i64::from(held));
    }

    /// Marks the runner ready (serving its schedules) or not (starting, draining).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the runner is ready.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The Prometheus text exposition, freshness computed as of now.
    pub fn render(&self) -> String {
        let now = Utc::now().timestamp_millis() as f64 / 1000.0;
        if let Ok(cursors) = self.cursors.lock() {
            for (l, t) in cursors.iter() {
                self.freshness.get_or_create(l).set((now - t).max(0.0));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The time a cursor stands at, in unix seconds: the first value in it that
/// reads as a time (RFC 3339 text, or unix seconds, milliseconds or
/// microseconds of the years 2001 to 2286), searched depth first.
pub fn cursor_time(cursor: &serde_json::Value) -> Option<f64> {
    use serde_json::Value;
    match cursor {
        Value::Object(map) => map.values().find_map(cursor_time),
        Value::Array(items) => items.iter().find_map(cursor_time),
        other => scalar_time(other),
    }
}

/// A text or number read as a time, in unix seconds (see [`cursor_time`]).
pub(crate) fn scalar_time(value: &serde_json::Value) -> Option<f64> {
    use serde_json::Value;
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis() as f64 / 1000.0),
        Value::Number(n) => {
            let v = n.as_f64()?;
            if (1e9..1e10).contains(&v) {
                Some(v)
            } else if (1e12..1e13).contains(&v) {
                Some(v / 1000.0)
            } else if (1e15..1e16).contains(&v) {
                Some(v / 1e6)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `stop`;
/// returns the address bound (port 0 picks a free one).
pub async fn serve_http(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: weft_core::CancellationToken,
) -> Result<SocketAddr, RunnerError> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunnerError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| RunnerError::Listen { addr, source })?;
    let m = Arc::clone(&metrics);
    let r = Arc::clone(&metrics);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = Arc::clone(&m);
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let r = Arc::clone(&r);
                async move {
                    if r.ready() {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use weft_core::StreamReport;

    #[test]
    fn cursor_times_are_found_in_any_shape() {
        use serde_json::json;
        assert_eq!(cursor_time(&json!({"created": 1_700_000_000})), Some(1.7e9));
        assert_eq!(
            cursor_time(&json!(1_700_000_000_500i64)),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            cursor_time(&json!({"v": 2, "updated_at": "2023-11-14T22:13:20Z"})),
            Some(1.7e9)
        );
        assert_eq!(
            cursor_time(&json!({"cursor_us": 1_700_000_000_000_000i64})),
            Some(1.7e9)
        );
        assert_eq!(cursor_time(&json!({"page": 3, "token": "abc"})), None);
    }

    #[test]
    fn freshness_sets_the_sla_and_measures_the_age_from_its_basis() {
        use std::time::Duration;
        let m = Metrics::new();
        let at = Utc::now() - chrono::Duration::seconds(3_600);
        let f = |stream: &str, basis| crate::Freshness {
            pipeline: "stripe".into(),
            stream: stream.into(),
            sla: Duration::from_secs(7_200),
            basis,
        };
        m.freshness(&[
            f("customers", Some(crate::FreshnessBasis::Load(at))),
            f("charges", None),
            f(crate::quality::ALL_STREAMS, None),
        ]);
        let text = m.render();
        for line in [
            "weft_stream_freshness_sla_seconds{pipeline=\"stripe\",stream=\"customers\"} 7200.0",
            "weft_stream_freshness_sla_seconds{pipeline=\"stripe\",stream=\"charges\"} 7200.0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        let age: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "weft_stream_freshness_seconds{pipeline=\"stripe\",stream=\"customers\"} ",
                )
            })
            .unwrap()
            .parse()
            .unwrap();
        // An hour old as of the scrape (which follows the set).
        assert!((3_600.0..7_200.0).contains(&age), "{age}");
        // Never loaded: an SLA, no freshness; the `*` placeholder: nothing.
        assert!(
            !text.contains("weft_stream_freshness_seconds{pipeline=\"stripe\",stream=\"charges\"}")
        );
        assert!(!text.contains("stream=\"*\""), "{text}");
    }

    #[test]
    fn a_run_report_becomes_counters_with_the_same_figures() {
        let m = Metrics::new();
        let mut s = StreamReport::new("customers");
        s.rows = 120;
        s.requests = 7;
        s.rate_limited = 2;
        s.wait_ms = 1500;
        s.cursor = Some(serde_json::json!({"created": 1_700_000_000}));
        let report = RunReport {
            pipeline: "stripe".into(),
            streams: vec![s],
            seconds: 2.0,
            error: None,
        };
        m.pipeline_run(&report, "succeeded");
        m.pipeline_run(&report, "succeeded");
        m.job("stripe", "skipped_overlap", 3);
        m.lease("pipeline:stripe", true);
        let text = m.render();
        for line in [
            "weft_rows_total{pipeline=\"stripe\",stream=\"customers\"} 240",
            "weft_requests_total{pipeline=\"stripe\",stream=\"customers\"} 14",
            "weft_rate_limited_total{pipeline=\"stripe\",stream=\"customers\"} 4",
            "weft_budget_wait_seconds_total{pipeline=\"stripe\",stream=\"customers\"} 3.0",
            "weft_runs_total{kind=\"pipeline\",name=\"stripe\",status=\"succeeded\"} 2",
            "weft_run_duration_seconds_count{kind=\"pipeline\",name=\"stripe\"} 2",
            "weft_job_runs_total{job=\"stripe\",outcome=\"skipped_overlap\"} 3",
            "weft_lease_held{lease=\"pipeline:stripe\"} 1",
            "weft_stream_cursor_timestamp_seconds{pipeline=\"stripe\",stream=\"customers\"} 1700000000.0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            text.contains(
                "weft_stream_freshness_seconds{pipeline=\"stripe\",stream=\"customers\"}"
            )
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
