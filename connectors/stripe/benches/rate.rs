//! Rate budget: against a sandbox allowing R requests/s, how close does weft get
//! to R, and how many 429s does it draw? (issue 3: >= 0.95 R with <= 1% 429s)
//!
//! `cargo bench -p weft-stripe --bench rate` (rates as arguments: `-- 25 100`)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use weft_core::{CancellationToken, ReadRequest, SecretRef, Source, SourceEvent, StreamMetrics};
use weft_http::BudgetRegistry;
use weft_sandbox::{Api, Sandbox, SandboxConfig};
use weft_stripe::{StripeConfig, StripeSource};

async fn one(rate: u32, seconds: u32) -> Result<(), Box<dyn std::error::Error>> {
    // Small pages (10 records) so the budget, not rendering, sets the pace;
    // enough customers for `seconds` of paging at `rate` pages per second.
    let size = (rate * seconds * 10) as usize;
    let config = SandboxConfig {
        size,
        ..Default::default()
    };
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("key");
    std::fs::write(&key, &config.api_key)?;
    let sandbox = Sandbox::start(config).await?;
    sandbox
        .control()
        .set_rate_limit_per_sec(Api::Stripe, Some(rate));
    let mut cfg = StripeConfig::new(
        Some(sandbox.base_url(Api::Stripe)),
        SecretRef::File { file: key },
    );
    cfg.requests_per_second = Some(f64::from(rate));
    cfg.page_size = 10;
    let source = StripeSource::new(cfg, &BudgetRegistry::new())?;
    let spec = source
        .streams()
        .into_iter()
        .find(|s| s.name == "customers")
        .ok_or("no customers stream")?;
    let metrics = Arc::new(StreamMetrics::default());
    let started = Instant::now();
    let mut events = source.read(ReadRequest {
        spec,
        state: None,
        started_at: chrono::Utc::now(),
        metrics: metrics.clone(),
        cancel: CancellationToken::new(),
        max_in_flight: None,
    });
    let mut records = 0usize;
    while let Some(e) = events.next().await {
        if let SourceEvent::Page(p) = e.map_err(|e| e.to_string())? {
            records += p.records.len();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let m = metrics.snapshot();
    let achieved = m.requests as f64 / secs;
    println!(
        "allowed={rate}/s requests={} records={records} seconds={secs:.2} achieved={achieved:.1}/s ratio={:.3} rate_limited={} ({:.2}%) retries={}",
        m.requests,
        achieved / f64::from(rate),
        m.rate_limited,
        100.0 * m.rate_limited as f64 / m.requests.max(1) as f64,
        m.retries
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rates: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rates = if rates.is_empty() {
        vec![25, 100]
    } else {
        rates
    };
    for rate in rates {
        one(rate, 10).await?;
    }
    Ok(())
}
