//! A progress bar per stream while attached to a terminal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use weft_core::{PipelineObserver, StreamMetrics, StreamReport, StreamStatus};

/// Shows one spinner per running stream (rows, requests, retries, 429s).
pub struct Progress {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

impl Progress {
    /// A new progress display on stderr.
    pub fn new() -> Arc<Self> {
        Arc::new(Progress {
            multi: MultiProgress::new(),
            bars: Mutex::new(Vec::new()),
        })
    }
}

impl PipelineObserver for Progress {
    fn stream_started(&self, stream: &str, metrics: Arc<StreamMetrics>) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<22} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(stream.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        let ticker = bar.clone();
        tokio::spawn(async move {
            while !ticker.is_finished() {
                let m = metrics.snapshot();
                ticker.set_message(format!(
                    "{} rows, {} requests, {} retries, {} 429s",
                    m.rows, m.requests, m.retries, m.rate_limited
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        if let Ok(mut bars) = self.bars.lock() {
            bars.push((stream.to_string(), bar));
        }
    }

    fn stream_finished(&self, report: &StreamReport) {
        let Ok(bars) = self.bars.lock() else { return };
        if let Some((_, bar)) = bars.iter().find(|(s, _)| s == &report.stream) {
            let status = match report.status {
                StreamStatus::Succeeded => "done",
                StreamStatus::Failed => "FAILED",
                StreamStatus::Cancelled => "cancelled",
                StreamStatus::QuotaReached => "quota reached",
            };
            bar.finish_with_message(format!("{status}: {} rows", report.rows));
        }
    }
}
