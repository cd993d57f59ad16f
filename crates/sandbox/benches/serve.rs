//! How fast the sandbox serves Stripe customers over loopback (rate limits
//! off), and whether its memory depends on `--size`.
//!
//! `cargo bench -p weft-sandbox --bench serve` (target: >= 200k records/s on
//! one core; memory independent of size). The sandbox runs on its own
//! single-threaded runtime; the client parses only ids.
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

#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "built by serde_json, read below")]
struct Page {
    has_more: bool,
    data: Vec<Id>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "built by serde_json, read below")]
struct Id {
    id: String,
}

/// Starts a sandbox on its own thread with a single-threaded runtime: the
/// sandbox gets exactly one core.
fn start_on_own_thread(config: SandboxConfig) -> (String, std::sync::mpsc::Sender<()>) {
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sandbox = Sandbox::start(config).await.unwrap();
            url_tx.send(sandbox.base_url(Api::Stripe)).unwrap();
            tokio::task::spawn_blocking(move || stop_rx.recv())
                .await
                .ok();
            sandbox.shutdown().await;
        });
    });
    (url_rx.recv().unwrap(), stop_tx)
}

async fn page_through(size: usize, pages: usize) -> (usize, f64, u64) {
    let config = SandboxConfig {
        size,
        rate_limits: false,
        ..Default::default()
    };
    let key = config.api_key.clone();
    let (base, stop) = start_on_own_thread(config);
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
    stop.send(()).unwrap();
    (records, secs, bytes as u64)
}

fn main() {
    // The client on this thread, the sandbox on its own (one core each).
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
