//! End-to-end throughput and memory: sandbox Stripe customers -> weft -> stage -> DuckDB.
//!
//! `cargo run --release -p weft-bench-e2e --bin e2e -- 10000 100000 1000000`
//! Each size runs in a fresh child process so peak RSS (VmHWM) is per size.

use std::time::Instant;

use weft_core::CancellationToken;
use weft_runner::{RunOptions, WeftConfig};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn one(size: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = SandboxConfig {
        size,
        rate_limits: false,
        ..Default::default()
    };
    let key = dir.path().join("key");
    std::fs::write(&key, &config.api_key)?;
    let sandbox = Sandbox::start(config).await?;
    let text = format!(
        "[warehouse]\nkind = \"duckdb\"\npath = \"{}\"\nmemory_limit = \"64MB\"\n[stage]\nurl = \"{}\"\n[[pipelines]]\nname = \"stripe\"\nconnector = \"stripe\"\nstreams = [\"customers\"]\ncheckpoint_rows = 20000\n[pipelines.config]\nbase_url = \"{}\"\napi_key = {{ file = \"{}\" }}\nrequests_per_second = 1000000\n",
        dir.path().join("w.duckdb").display(),
        dir.path().join("stage").display(),
        sandbox.base_url(Api::Stripe),
        key.display()
    );
    let path = dir.path().join("weft.toml");
    std::fs::write(&path, text)?;
    let config = WeftConfig::load(&path)?;
    let started = Instant::now();
    let outcome = weft_runner::run(
        &config,
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let s = outcome.pipelines[0]
        .stream("customers")
        .ok_or("no customers report")?;
    println!(
        "size={size} rows={} seconds={secs:.2} records_per_s={:.0} requests={} bytes={} peak_rss_mib={:.1}",
        s.rows,
        s.rows as f64 / secs,
        s.requests,
        s.bytes,
        peak_rss_kib() as f64 / 1024.0
    );
    sandbox.shutdown().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [single] = args.as_slice()
        && let Some(size) = single.strip_prefix("--one=")
    {
        let rt = tokio::runtime::Runtime::new()?;
        return rt.block_on(one(size.parse()?));
    }
    let sizes = if args.is_empty() {
        vec!["10000".to_string(), "100000".to_string()]
    } else {
        args
    };
    let exe = std::env::current_exe()?;
    for size in sizes {
        let status = std::process::Command::new(&exe)
            .arg(format!("--one={size}"))
            .status()?;
        if !status.success() {
            return Err(format!("size {size} failed").into());
        }
    }
    Ok(())
}
