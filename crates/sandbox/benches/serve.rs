//! How fast the sandbox serves Stripe customers over loopback (rate limits
//! off), and whether its memory depends on `--size`.
//!
//! `cargo bench -p weft-sandbox --bench serve` (target: >= 200k records/s on
//! one core; memory independent of size).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use weft_sandbox::{Api, Sandbox, SandboxConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn page_through(size: usize, pages: usize) -> (usize, f64, u64) {
    let config = SandboxConfig {
        size,
        rate_limits: false,
        ..Default::default()
    };
    let key = config.api_key.clone();
    let sandbox = Sandbox::start(config).await.unwrap();
    let base = sandbox.base_url(Api::Stripe);
    let client = reqwest::Client::new();
    let mut after: Option<String> = None;
    let mut records = 0usize;
    let mut bytes = 0usize;
    let started = Instant::now();
    for _ in 0..pages {
        let mut req = client
            .get(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .query(&[("limit", "100")]);
        if let Some(a) = &after {
            req = req.query(&[("starting_after", a.as_str())]);
        }
        let body = req.send().await.unwrap().bytes().await.unwrap();
        bytes += body.len();
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let data = page["data"].as_array().unwrap();
        records += data.len();
        after = data
            .last()
            .and_then(|c| c["id"].as_str())
            .map(str::to_string);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    sandbox.shutdown().await;
    (records, secs, bytes as u64)
}

fn main() {
    // One core for the sandbox and the client together.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for size in [10_000usize, 1_000_000, 10_000_000] {
        let (records, secs, bytes) = rt.block_on(page_through(size, 500));
        println!(
            "size={size:>9} records={records} seconds={secs:.3} records_per_s={:.0} MB_per_s={:.1} rss_mib={:.1}",
            records as f64 / secs,
            bytes as f64 / secs / 1e6,
            rss_kib() as f64 / 1024.0
        );
    }
}
