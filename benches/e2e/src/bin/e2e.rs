//! End-to-end benchmarks: sandbox Stripe customers -> weft -> stage -> DuckDB.
//!
//! ```text
//! cargo run --release -p weft-bench-e2e --bin e2e -- throughput 10000 100000 1000000
//! cargo run --release -p weft-bench-e2e --bin e2e -- rerun 10000
//! cargo run --release -p weft-bench-e2e --bin e2e -- rate 25 100
//! ```
//!
//! `throughput`: per size, the sandbox (rate limits off) runs in one child
//! process and weft in another, so weft's peak RSS (`VmHWM`) is its own.
//! `rerun`: a full load, then a run with nothing changed (wall time, requests),
//! then a run after 10 customers changed. `rate`: the sandbox limits Stripe to
//! R requests/s and weft's budget is R: achieved rate and 429s.
//! `peak_rss_mib` is `VmHWM` (code pages included: a debug build maps ~75 MiB
//! of them); `peak_anon_mib` is the peak of `RssAnon` sampled every 50 ms.
//! `WEFT_E2E_RSS_TRACE_MS=500` prints the memory over time;
//! `WEFT_E2E_MEMORY_LIMIT=64MB` changes DuckDB's `memory_limit` (default 32MB),
//! `WEFT_E2E_THREADS=2` DuckDB's threads (default: the runner's, 1),
//! `WEFT_E2E_CHECKPOINT_ROWS=50000` the rows per load (default 10000).
//! A bare list of sizes (`e2e 10000 100000`) means `throughput`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use weft_core::{CancellationToken, RunReport, StreamReport};
use weft_runner::{RunOptions, WeftConfig};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

type Error = Box<dyn std::error::Error>;

/// A field of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`), 0 when unknown.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The bench's `weft.toml`: one Stripe customers pipeline into DuckDB.
fn write_config(dir: &Path, base_url: &str, api_key: &str, rate: f64) -> Result<WeftConfig, Error> {
    let key = dir.join("key");
    std::fs::write(&key, api_key)?;
    let memory_limit =
        std::env::var("WEFT_E2E_MEMORY_LIMIT").unwrap_or_else(|_| "32MB".to_string());
    let checkpoint_rows =
        std::env::var("WEFT_E2E_CHECKPOINT_ROWS").unwrap_or_else(|_| "10000".to_string());
    let threads = std::env::var("WEFT_E2E_THREADS")
        .map(|t| format!("threads = {t}\n"))
        .unwrap_or_default();
    let text = format!(
        "[warehouse]\nkind = \"duckdb\"\npath = \"{}\"\nmemory_limit = \"{memory_limit}\"\n{threads}[stage]\nurl = \"{}\"\n[[pipelines]]\nname = \"stripe\"\nconnector = \"stripe\"\nstreams = [\"customers\"]\ncheckpoint_rows = {checkpoint_rows}\n[pipelines.config]\nbase_url = \"{base_url}\"\napi_key = {{ file = \"{}\" }}\nrequests_per_second = {rate}\n",
        dir.join("w.duckdb").display(),
        dir.join("stage").display(),
        key.display()
    );
    let path = dir.join("weft.toml");
    std::fs::write(&path, text)?;
    Ok(WeftConfig::load(&path)?)
}

/// One `weft run`: the customers stream report and the wall time in seconds.
async fn run_once(config: &WeftConfig) -> Result<(StreamReport, f64), Error> {
    let started = Instant::now();
    let outcome = weft_runner::run(
        config,
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let report: &RunReport = outcome.pipelines.first().ok_or("no pipeline report")?;
    let s = report.stream("customers").ok_or("no customers report")?;
    if let Some(e) = &s.error {
        return Err(format!("customers stream failed: {e}").into());
    }
    Ok((s.clone(), secs))
}

/// Child: serve the sandbox, print the Stripe base URL, and when standard
/// input closes print `requests=N sandbox_peak_rss_mib=M` and stop.
async fn serve_sandbox(size: usize) -> Result<(), Error> {
    let config = SandboxConfig {
        size,
        rate_limits: false,
        ..Default::default()
    };
    let sandbox = Sandbox::start(config).await?;
    println!("{}", sandbox.base_url(Api::Stripe));
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
    println!(
        "requests={} sandbox_peak_rss_mib={:.1}",
        sandbox.control().request_count(Api::Stripe),
        mib(status_kib("VmHWM:"))
    );
    sandbox.shutdown().await;
    Ok(())
}

/// Child: one full load from the sandbox at `base_url`; prints the result line.
async fn load(base_url: &str, size: usize) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let key = SandboxConfig::default().api_key;
    let config = write_config(dir.path(), base_url, &key, 1_000_000.0)?;
    let trace: Option<u64> = std::env::var("WEFT_E2E_RSS_TRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    let peak_anon = sample_rss(trace.unwrap_or(50), trace.is_some());
    let (s, secs) = run_once(&config).await?;
    let staged: u64 = walk_bytes(&dir.path().join("stage"));
    let db = std::fs::metadata(dir.path().join("w.duckdb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "size={size} rows={} seconds={secs:.2} records_per_s={:.0} requests={} bytes={} mb_per_s={:.1} staged_bytes={staged} duckdb_bytes={db} peak_rss_mib={:.1} peak_anon_mib={:.1}",
        s.rows,
        s.rows as f64 / secs,
        s.requests,
        s.bytes,
        s.bytes as f64 / secs / 1e6,
        mib(status_kib("VmHWM:")),
        mib(peak_anon
            .load(Ordering::Relaxed)
            .max(status_kib("RssAnon:")))
    );
    Ok(())
}

/// Samples `/proc/self/status` every `ms` milliseconds and keeps the peak of
/// `RssAnon` (heap and stacks: the process's own memory, without the mapped
/// code pages that `VmHWM` also counts); with `print`, prints
/// `rss t=… rss_mib=… anon_mib=… file_mib=… hwm_mib=…` lines to stderr too.
fn sample_rss(ms: u64, print: bool) -> Arc<AtomicU64> {
    let peak = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&peak);
    let started = Instant::now();
    std::thread::spawn(move || {
        loop {
            let anon = status_kib("RssAnon:");
            seen.fetch_max(anon, Ordering::Relaxed);
            if print {
                eprintln!(
                    "rss t={:.2} rss_mib={:.1} anon_mib={:.1} file_mib={:.1} hwm_mib={:.1}",
                    started.elapsed().as_secs_f64(),
                    mib(status_kib("VmRSS:")),
                    mib(anon),
                    mib(status_kib("RssFile:")),
                    mib(status_kib("VmHWM:"))
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    });
    peak
}

/// Total size of the files under `dir`.
fn walk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walk_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// Parent: per size, a sandbox child and a weft child.
fn throughput(sizes: &[String]) -> Result<(), Error> {
    let exe = std::env::current_exe()?;
    for size in sizes {
        let mut sandbox = Command::new(&exe)
            .args(["--sandbox", size])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = BufReader::new(sandbox.stdout.take().ok_or("sandbox stdout")?);
        let mut url = String::new();
        out.read_line(&mut url)?;
        let url = url.trim();
        if url.is_empty() {
            return Err("the sandbox child printed no URL".into());
        }
        let status = Command::new(&exe).args(["--load", url, size]).status()?;
        drop(sandbox.stdin.take());
        let mut tail = String::new();
        out.read_to_string(&mut tail)?;
        sandbox.wait()?;
        println!("  sandbox (separate process): {}", tail.trim());
        if !status.success() {
            return Err(format!("size {size} failed").into());
        }
    }
    Ok(())
}

/// A full load, then a no-change re-run, then a re-run after 10 updates.
async fn rerun(size: usize) -> Result<(), Error> {
    let config = SandboxConfig {
        size,
        rate_limits: false,
        ..Default::default()
    };
    let key = config.api_key.clone();
    let sandbox = Sandbox::start(config).await?;
    let control = sandbox.control();
    let dir = tempfile::tempdir()?;
    let config = write_config(
        dir.path(),
        &sandbox.base_url(Api::Stripe),
        &key,
        1_000_000.0,
    )?;
    let line = |label: &str, s: &StreamReport, secs: f64, served: u64| {
        println!(
            "{label:<10} size={size} rows={} seconds={secs:.3} requests={} sandbox_requests={served} cursor={}",
            s.rows,
            s.requests,
            s.cursor
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
    };
    let before = control.request_count(Api::Stripe);
    let (s, secs) = run_once(&config).await?;
    let after_full = control.request_count(Api::Stripe);
    line("full", &s, secs, after_full - before);
    let (s, secs) = run_once(&config).await?;
    let after_none = control.request_count(Api::Stripe);
    line("no-change", &s, secs, after_none - after_full);
    let ids = control.stripe_customer_ids();
    for id in ids.iter().step_by((ids.len() / 10).max(1)).take(10) {
        control.stripe_update_customer(id, serde_json::json!({"description": "changed"}))?;
    }
    let (s, secs) = run_once(&config).await?;
    line(
        "10-changed",
        &s,
        secs,
        control.request_count(Api::Stripe) - after_none,
    );
    sandbox.shutdown().await;
    Ok(())
}

/// The sandbox allows `rate` requests/s, weft's budget is `rate`; ~10 s of paging.
async fn rate(rate: u32) -> Result<(), Error> {
    let size = rate as usize * 10 * 100;
    let config = SandboxConfig {
        size,
        rate_limits: false,
        ..Default::default()
    };
    let key = config.api_key.clone();
    let sandbox = Sandbox::start(config).await?;
    sandbox
        .control()
        .set_rate_limit_per_sec(Api::Stripe, Some(rate));
    let dir = tempfile::tempdir()?;
    let config = write_config(
        dir.path(),
        &sandbox.base_url(Api::Stripe),
        &key,
        f64::from(rate),
    )?;
    let (s, secs) = run_once(&config).await?;
    let achieved = s.requests as f64 / secs;
    println!(
        "allowed={rate}/s size={size} rows={} requests={} seconds={secs:.2} achieved={achieved:.1}/s ratio={:.3} rate_limited_429={} ({:.2}%) retries={} wait_ms={}",
        s.rows,
        s.requests,
        achieved / f64::from(rate),
        s.rate_limited,
        100.0 * s.rate_limited as f64 / s.requests.max(1) as f64,
        s.retries,
        s.wait_ms
    );
    sandbox.shutdown().await;
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Runtime::new()?)
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("--sandbox") => {
            let size = rest.first().ok_or("--sandbox SIZE")?.parse()?;
            runtime()?.block_on(serve_sandbox(size))
        }
        Some("--load") => {
            let [url, size] = rest else {
                return Err("--load URL SIZE".into());
            };
            runtime()?.block_on(load(url, size.parse()?))
        }
        Some("throughput") if !rest.is_empty() => throughput(rest),
        Some("throughput") | None => throughput(&["10000".into(), "100000".into()]),
        Some("rerun") => {
            let size = rest.first().map_or(Ok(10_000), |s| s.parse())?;
            runtime()?.block_on(rerun(size))
        }
        Some("diff") => {
            let rows = rest.first().map_or(Ok(1_000_000), |s| s.parse())?;
            runtime()?.block_on(diff(rows))
        }
        Some("rate") => {
            let rates: Vec<u32> = if rest.is_empty() {
                vec![25]
            } else {
                rest.iter().map(|r| r.parse()).collect::<Result<_, _>>()?
            };
            let rt = runtime()?;
            for r in rates {
                rt.block_on(rate(r))?;
            }
            Ok(())
        }
        Some(_) => throughput(&args),
    }
}

/// The reverse-sync diff of a `rows`-row model with 1% changed rows, in
/// DuckDB: the plan (counts) plus every page of changed records, then a real
/// sync that must send exactly the changed rows.
async fn diff(rows: u64) -> Result<(), Error> {
    use weft_benches::sync::{Counting, people_model, people_sync};
    use weft_core::{SyncAction, SyncOptions, SyncStore, run_sync};
    use weft_warehouse::DuckDbWarehouse;

    let wh = DuckDbWarehouse::open_in_memory()?;
    if let Ok(threads) = std::env::var("WEFT_E2E_THREADS") {
        wh.set_threads(threads.parse()?)?;
    }
    let spec = people_sync();
    let target = Counting::default();
    wh.run_models(&[people_model(rows, false)])?;
    let started = Instant::now();
    let first = run_sync(&wh, &target, &spec, SyncOptions::default()).await?;
    println!(
        "initial sync: {} created in {:.2} s (snapshot written)",
        first.created,
        started.elapsed().as_secs_f64()
    );
    wh.run_models(&[people_model(rows, true)])?;
    for attempt in 1..=3 {
        let started = Instant::now();
        let plan = wh.plan(&spec).await?;
        let planned = started.elapsed().as_secs_f64();
        let (mut changed, mut pages, mut after) = (0usize, 0usize, None::<String>);
        loop {
            let page = wh
                .planned(&spec, SyncAction::Update, after.as_deref(), 1_000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            changed += page.len();
            pages += 1;
        }
        println!(
            "diff #{attempt}: model_rows={} creates={} updates={} deletes={} plan_s={planned:.3} \
             changed_records={changed} pages={pages} total_s={:.3}",
            plan.model_rows,
            plan.creates,
            plan.updates,
            plan.deletes,
            started.elapsed().as_secs_f64()
        );
    }
    target.clear();
    let started = Instant::now();
    let report = run_sync(&wh, &target, &spec, SyncOptions::default()).await?;
    let sent = target.sent();
    println!(
        "sync after the change: created={} updated={} deleted={} calls={} sent={sent:?} seconds={:.2}",
        report.created,
        report.updated,
        report.deleted,
        report.batches,
        started.elapsed().as_secs_f64()
    );
    if report.updated != rows / 100 || sent.values().sum::<u64>() != rows / 100 {
        return Err(format!("expected exactly {} updates sent", rows / 100).into());
    }
    Ok(())
}
