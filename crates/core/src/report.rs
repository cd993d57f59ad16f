//! What a run did, per stream: rows, requests, retries, cursor, time, errors.

use std::fmt::Write as _;

use serde::Serialize;

use crate::MetricsSnapshot;

/// How a stream's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    /// Read to the end and committed.
    Succeeded,
    /// Failed; what was committed before the failure is kept.
    Failed,
    /// Interrupted; what was committed before the cancel is kept.
    Cancelled,
    /// Stopped cleanly at the API's daily quota; committed state is kept and
    /// the next run continues from it. Not a failure.
    QuotaReached,
}

/// One stream's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Stream name.
    pub stream: String,
    /// How it ended.
    pub status: StreamStatus,
    /// Rows committed.
    pub rows: u64,
    /// Records quarantined into `_weft_rejects`.
    pub rejected: u64,
    /// Response bytes received.
    pub bytes: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Retried requests.
    pub retries: u64,
    /// Responses that were rate limited (429).
    pub rate_limited: u64,
    /// Milliseconds spent waiting on budgets and backoff.
    pub wait_ms: u64,
    /// Loads committed.
    pub loads: u64,
    /// Parquet bytes staged by the committed loads.
    pub staged_bytes: u64,
    /// The committed cursor at the end of the run.
    pub cursor: Option<serde_json::Value>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The error, when the stream failed (no secrets: URLs are redacted upstream).
    pub error: Option<String>,
    /// Things worth knowing (fallbacks taken, columns added, quota reached).
    pub notices: Vec<String>,
    /// How a sliced read went, when the stream was read in slices.
    pub slices: Option<SliceReport>,
    /// The records the API said this run's window holds, when the source
    /// counted them (compared with `rows` + `rejected` by the completeness check).
    pub source_count: Option<u64>,
}

/// How a stream's sliced read used the rate budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SliceReport {
    /// Slices planned (initial windows plus those split off dense ones).
    pub planned: u64,
    /// Slices read to their end.
    pub done: u64,
    /// Dense slices split again.
    pub split: u64,
    /// Most requests in flight at once.
    pub peak_in_flight: u64,
    /// Requests per second achieved over the stream's run.
    pub requests_per_second: f64,
    /// The account budget's rate, when it has one.
    pub budget_rps: Option<f64>,
}

impl StreamReport {
    /// An empty report for a stream, to be filled in.
    pub fn new(stream: &str) -> Self {
        StreamReport {
            stream: stream.to_string(),
            status: StreamStatus::Succeeded,
            rows: 0,
            rejected: 0,
            bytes: 0,
            requests: 0,
            retries: 0,
            rate_limited: 0,
            wait_ms: 0,
            loads: 0,
            staged_bytes: 0,
            cursor: None,
            seconds: 0.0,
            error: None,
            notices: Vec::new(),
            slices: None,
            source_count: None,
        }
    }

    /// Copies the live counters; `seconds` must be set first for the slice rate.
    pub(crate) fn absorb(&mut self, m: MetricsSnapshot) {
        if m.slices_planned > 0 {
            self.slices = Some(SliceReport {
                planned: m.slices_planned,
                done: m.slices_done,
                split: m.slices_split,
                peak_in_flight: m.peak_in_flight,
                requests_per_second: if self.seconds > 0.0 {
                    m.requests as f64 / self.seconds
                } else {
                    0.0
                },
                budget_rps: (m.budget_milli_rps > 0).then(|| m.budget_milli_rps as f64 / 1000.0),
            });
        }
        self.source_count = m.source_count;
        self.rejected = m.rejected;
        self.bytes = m.bytes;
        self.requests = m.requests;
        self.retries = m.retries;
        self.rate_limited = m.rate_limited;
        self.wait_ms = m.wait_ms;
    }
}

/// A pipeline run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Pipeline name.
    pub pipeline: String,
    /// Per stream, in the order they were asked for.
    pub streams: Vec<StreamReport>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Why the pipeline could not start (no stream ran), if it could not.
    pub error: Option<String>,
}

impl RunReport {
    /// A pipeline that could not start (its source could not be built or
    /// connected): no stream ran.
    pub fn not_started(pipeline: impl Into<String>, error: impl Into<String>) -> Self {
        RunReport {
            pipeline: pipeline.into(),
            streams: Vec::new(),
            seconds: 0.0,
            error: Some(error.into()),
        }
    }

    /// Whether the pipeline started and every stream succeeded.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self.streams.iter().all(|s| {
                matches!(
                    s.status,
                    StreamStatus::Succeeded | StreamStatus::QuotaReached
                )
            })
    }

    /// Total rows committed across streams.
    pub fn rows(&self) -> u64 {
        self.streams.iter().map(|s| s.rows).sum()
    }

    /// The report for one stream.
    pub fn stream(&self, name: &str) -> Option<&StreamReport> {
        self.streams.iter().find(|s| s.stream == name)
    }

    /// A plain-text table, one line per stream, then errors and notices.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:>10} {:>8} {:>9} {:>8} {:>6} {:>8}  cursor",
            format!("{}/stream", self.pipeline),
            "status",
            "rows",
            "rejected",
            "requests",
            "retries",
            "429s",
            "seconds"
        );
        for s in &self.streams {
            let status = match s.status {
                StreamStatus::Succeeded => "ok",
                StreamStatus::Failed => "FAILED",
                StreamStatus::Cancelled => "cancelled",
                StreamStatus::QuotaReached => "quota",
            };
            let cursor = s
                .cursor
                .as_ref()
                .map_or_else(|| "-".to_string(), |c| c.to_string());
            let _ = writeln!(
                out,
                "{:<24} {:<10} {:>10} {:>8} {:>9} {:>8} {:>6} {:>8.2}  {}",
                s.stream,
                status,
                s.rows,
                s.rejected,
                s.requests,
                s.retries,
                s.rate_limited,
                s.seconds,
                cursor
            );
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "error  {}: not started: {e}", self.pipeline);
        }
        for s in &self.streams {
            if let Some(e) = &s.error {
                let _ = writeln!(out, "error  {}: {e}", s.stream);
            }
            if let Some(sl) = &s.slices {
                let budget = sl
                    .budget_rps
                    .map_or_else(|| "no rate limit".to_string(), |r| format!("budget {r}/s"));
                let _ = writeln!(
                    out,
                    "slices {}: {} planned, {} done, {} split; peak {} in flight; {:.1} requests/s ({budget})",
                    s.stream,
                    sl.planned,
                    sl.done,
                    sl.split,
                    sl.peak_in_flight,
                    sl.requests_per_second
                );
            }
            for n in &s.notices {
                let _ = writeln!(out, "note   {}: {n}", s.stream);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliced_stream_reports_its_slices_and_rate() {
        let mut s = StreamReport::new("customers");
        s.seconds = 2.0;
        s.absorb(MetricsSnapshot {
            requests: 150,
            slices_planned: 12,
            slices_done: 12,
            slices_split: 5,
            peak_in_flight: 9,
            budget_milli_rps: 100_000,
            ..MetricsSnapshot::default()
        });
        let sl = s.slices.unwrap();
        assert_eq!((sl.planned, sl.split, sl.peak_in_flight), (12, 5, 9));
        assert_eq!(sl.requests_per_second, 75.0);
        assert_eq!(sl.budget_rps, Some(100.0));
        let table = RunReport {
            pipeline: "stripe".into(),
            streams: vec![s],
            seconds: 2.0,
            error: None,
        }
        .to_table();
        assert!(
            table.contains(
                "slices customers: 12 planned, 12 done, 5 split; peak 9 in flight; \
                 75.0 requests/s (budget 100/s)"
            ),
            "{table}"
        );
        // A stream read without slices has no slice line.
        let mut plain = StreamReport::new("events");
        plain.absorb(MetricsSnapshot::default());
        assert!(plain.slices.is_none());
    }
}
