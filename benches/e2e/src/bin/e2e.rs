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
//! `WEFT_E2E_CHECKPOINT_ROWS=50000` the rows per load (default 10000),
//! `WEFT_E2E_MAX_CONCURRENCY=8` the pipeline's `max_concurrency`;
//! `WEFT_E2E_LOAD_WRAP=heaptrack` runs the load child under a tool;
//! `WEFT_E2E_WEFT=target/release/weft` has the load child run that `weft`
//! binary (`weft run --config …`) and report its memory instead of loading
//! in-process: e.g. a runner built with `--no-default-features --features
//! postgres`, without DuckDB's code pages.
//! A bare list of sizes (`e2e 10000 100000`) means `throughput`.
//! `e2e --postgres-server` starts a PostgreSQL server, prints its URL and
//! stops it when standard input closes (benches/peer/compare.sh uses it).
//!
//! `WEFT_E2E_WAREHOUSE=postgres` runs `throughput` and `diff` against a real
//! PostgreSQL (and stages `throughput` in a real S3 bucket, SeaweedFS), both
//! started on loopback for the run: the load line adds `pg_cpu_s` (the
//! server's CPU time over the load: postmaster, its reaped backends and its
//! live workers, from `/proc`) and `pg_db_bytes`.

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
    // The warehouse and stage: a target the parent set up (PostgreSQL + S3),
    // else DuckDB and a local stage in `dir`.
    let target = std::env::var("WEFT_E2E_TARGET").unwrap_or_else(|_| {
        format!(
            "[warehouse]\nkind = \"duckdb\"\npath = \"{}\"\nmemory_limit = \"{memory_limit}\"\n{threads}[stage]\nurl = \"{}\"\n",
            dir.join("w.duckdb").display(),
            dir.join("stage").display(),
        )
    });
    let concurrency = std::env::var("WEFT_E2E_MAX_CONCURRENCY")
        .map(|n| format!("max_concurrency = {n}\n"))
        .unwrap_or_default();
    let text = format!(
        "{target}[[pipelines]]\nname = \"stripe\"\nconnector = \"stripe\"\nstreams = [\"customers\"]\ncheckpoint_rows = {checkpoint_rows}\n{concurrency}[pipelines.config]\nbase_url = \"{base_url}\"\napi_key = {{ file = \"{}\" }}\nrequests_per_second = {rate}\n",
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

/// Child (for benches/peer/compare.sh): start a PostgreSQL server on
/// loopback, print its URL, and stop it when standard input closes.
fn postgres_server() -> Result<(), Error> {
    let pg = weft_testsvc::Postgres::start()?;
    println!("{}", pg.url());
    std::io::stdout().flush()?;
    std::io::stdin().read_to_end(&mut Vec::new())?;
    drop(pg);
    Ok(())
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
    if let Some(weft) = std::env::var_os("WEFT_E2E_WEFT") {
        return load_with(Path::new(&weft), &dir.path().join("weft.toml"), size);
    }
    let trace: Option<u64> = std::env::var("WEFT_E2E_RSS_TRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    let peak_anon = sample_rss(trace.unwrap_or(50), trace.is_some());
    let (s, secs) = run_once(&config).await?;
    let staged = staged_bytes(&config).await?;
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

/// `WEFT_E2E_WEFT`: runs `weft run --config CONFIG` with that binary and
/// prints its wall time and memory, sampled from `/proc/PID/status` every
/// 20 ms (`VmHWM` only grows, so its last sample is the peak up to then).
fn load_with(weft: &Path, config: &Path, size: usize) -> Result<(), Error> {
    let started = Instant::now();
    let mut child = Command::new(weft)
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };
    let (mut hwm, mut anon) = (0, 0);
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            hwm = hwm.max(field(&text, "VmHWM:"));
            anon = anon.max(field(&text, "RssAnon:"));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} run failed: {status}", weft.display()).into());
    }
    println!(
        "size={size} binary={} seconds={secs:.2} records_per_s={:.0} peak_rss_mib={:.1} peak_anon_mib={:.1}",
        weft.display(),
        size as f64 / secs,
        mib(hwm),
        mib(anon)
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

/// Bytes of the staged Parquet parts of the customers stream (from the
/// loads' manifests, so a local and an S3 stage are counted alike).
async fn staged_bytes(config: &WeftConfig) -> Result<u64, Error> {
    let stage = config.stage.open()?;
    let mut bytes = 0;
    for load in stage.list_loads("stripe", "customers").await? {
        let manifest = stage.manifest("stripe", "customers", &load).await?;
        bytes += manifest.files.iter().map(|f| f.bytes).sum::<u64>();
    }
    Ok(bytes)
}

/// CPU seconds of process `pid` and of its children: its own, its reaped
/// children's (`cutime`, `cstime`) and its live children's, from `/proc`.
fn tree_cpu_secs(pid: u32) -> f64 {
    // Fields after the `(comm)`: state is 3, ppid 4, utime 14 .. cstime 17.
    fn stat(path: &Path) -> Option<(u32, [u64; 4])> {
        let text = std::fs::read_to_string(path).ok()?;
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
        Some((
            u32::try_from(num(4)?).ok()?,
            [num(14)?, num(15)?, num(16)?, num(17)?],
        ))
    }
    let ticks = 100.0; // USER_HZ on Linux
    let own = stat(&Path::new("/proc").join(pid.to_string()).join("stat"))
        .map_or(0, |(_, t)| t.iter().sum::<u64>());
    let live: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| stat(&e.path().join("stat")))
        .filter(|(ppid, _)| *ppid == pid)
        .map(|(_, t)| t[0] + t[1])
        .sum();
    (own + live) as f64 / ticks
}

/// `WEFT_E2E_WAREHOUSE=postgres`.
fn on_postgres() -> bool {
    std::env::var("WEFT_E2E_WAREHOUSE").is_ok_and(|w| w == "postgres")
}

/// Parent: per size, a sandbox child and a weft child.
fn throughput(sizes: &[String]) -> Result<(), Error> {
    let exe = std::env::current_exe()?;
    let mut servers = if on_postgres() {
        Some((
            weft_testsvc::Postgres::start()?,
            weft_testsvc::SeaweedS3::start()?,
        ))
    } else {
        None
    };
    let secrets = tempfile::tempdir()?;
    for size in sizes {
        // PostgreSQL + S3: a fresh database and bucket prefix per size.
        let stack = servers
            .take()
            .map(|(pg, s3)| weft_e2e::PgStack::on(pg, s3, &format!("bench_{size}")));
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
        // `WEFT_E2E_LOAD_WRAP=heaptrack` runs the load child under a tool.
        let mut child = match std::env::var("WEFT_E2E_LOAD_WRAP") {
            Ok(wrap) if !wrap.is_empty() => {
                let mut words = wrap.split_whitespace();
                let mut c = Command::new(words.next().ok_or("empty WEFT_E2E_LOAD_WRAP")?);
                c.args(words).arg(&exe);
                c
            }
            _ => Command::new(&exe),
        };
        child.args(["--load", url, size]);
        let pg_cpu_before = stack.as_ref().map(|s| {
            child.env("WEFT_E2E_TARGET", s.config_toml(secrets.path()));
            tree_cpu_secs(s.pg.pid())
        });
        let status = child.status()?;
        if let (Some(stack), Some(before)) = (&stack, pg_cpu_before) {
            // The run's backends have exited; give the postmaster a moment to reap them.
            std::thread::sleep(std::time::Duration::from_millis(500));
            println!(
                "  postgres: pg_cpu_s={:.2} pg_db_bytes={} rows={}",
                tree_cpu_secs(stack.pg.pid()) - before,
                stack.i64("SELECT pg_database_size(current_database())"),
                stack.i64("SELECT count(*) FROM stripe.customers"),
            );
        }
        drop(sandbox.stdin.take());
        let mut tail = String::new();
        out.read_to_string(&mut tail)?;
        sandbox.wait()?;
        println!("  sandbox (separate process): {}", tail.trim());
        if !status.success() {
            return Err(format!("size {size} failed").into());
        }
        servers = stack.map(|s| (s.pg, s.s3));
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
        Some("--postgres-server") => postgres_server(),
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
/// DuckDB (or PostgreSQL, see `WEFT_E2E_WAREHOUSE`): the plan (counts) plus
/// every page of changed records, then a real sync that must send exactly
/// the changed rows.
async fn diff(rows: u64) -> Result<(), Error> {
    use weft_benches::sync::{people_model, people_model_postgres};
    use weft_warehouse::{DuckDbWarehouse, PostgresWarehouse};

    if on_postgres() {
        let pg = weft_testsvc::Postgres::start()?;
        let wh = PostgresWarehouse::connect(&pg.url(), None).await?;
        println!("warehouse: PostgreSQL {}", wh.server());
        diff_on(&wh, rows, people_model_postgres).await
    } else {
        let wh = DuckDbWarehouse::open_in_memory()?;
        if let Ok(threads) = std::env::var("WEFT_E2E_THREADS") {
            wh.set_threads(threads.parse()?)?;
        }
        println!("warehouse: DuckDB (in memory)");
        diff_on(&wh, rows, people_model).await
    }
}

async fn diff_on(
    wh: &dyn weft_warehouse::Warehouse,
    rows: u64,
    model: fn(u64, bool) -> weft_warehouse::Model,
) -> Result<(), Error> {
    use weft_benches::sync::{Counting, people_sync};
    use weft_core::{SyncAction, SyncOptions, run_sync};

    let spec = people_sync();
    let target = Counting::default();
    let started = Instant::now();
    wh.run_models(&[model(rows, false)]).await?;
    println!(
        "model: {rows} rows built in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let first = run_sync(wh, &target, &spec, SyncOptions::default()).await?;
    println!(
        "initial sync: {} created in {:.2} s (snapshot written)",
        first.created,
        started.elapsed().as_secs_f64()
    );
    wh.run_models(&[model(rows, true)]).await?;
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
    let report = run_sync(wh, &target, &spec, SyncOptions::default()).await?;
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
