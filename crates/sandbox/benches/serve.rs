//! How fast the sandbox serves Stripe customers over loopback (rate limits
//! off), and whether its memory depends on `--size`.
//!
//! `cargo bench -p weft-sandbox --bench serve` (target: >= 200k records/s on
//! one core; memory independent of size). The sandbox runs on its own thread
//! with a single-threaded runtime (one core at most). The client runs on the
//! main thread: [`PAGERS`] keep-alive connections page concurrently (each
//! with `starting_after`, from the newest customer, starting over at the
//! end), so the sandbox always has a request waiting; the client only finds
//! the last id (and counts records on a sample of pages), so its share of the
//! CPU stays small.
//!
//! Two figures per size: records per wall-clock second, and records per
//! second of CPU time used by the sandbox's thread (read from
//! `/proc/self/task/<tid>/stat`), which is what "one core" can serve even
//! when other processes share the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use weft_sandbox::{Api, Sandbox, SandboxConfig};

/// Concurrent connections paging the customers list.
const PAGERS: usize = 4;
/// Pages of 100 requested per size, over all pagers.
const PAGES: usize = 6_000;

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

/// CPU seconds (user + system) used so far by thread `tid` of this process.
fn thread_cpu_secs(tid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// Starts a sandbox on its own thread with a single-threaded runtime: the
/// sandbox gets at most one core. Returns its base URL, its thread id and a
/// stop handle.
fn start_on_own_thread(config: SandboxConfig) -> (String, String, std::sync::mpsc::Sender<()>) {
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sandbox".to_owned())
        .spawn(move || {
            let tid = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let sandbox = Sandbox::start(config).await.unwrap();
                url_tx.send((sandbox.base_url(Api::Stripe), tid)).unwrap();
                tokio::task::spawn_blocking(move || stop_rx.recv())
                    .await
                    .ok();
                sandbox.shutdown().await;
            });
        })
        .unwrap();
    let (url, tid) = url_rx.recv().unwrap();
    (url, tid, stop_tx)
}

const MARK: &str = "{\"id\":\"cus_";

/// The id of the last customer on a page, found from the end of the body.
fn last_id(body: &str) -> Option<String> {
    let at = body.rfind(MARK)? + "{\"id\":\"".len();
    let len = body[at..].find('"')?;
    Some(body[at..at + len].to_owned())
}

/// Requests `pages` pages of 100, from the newest customer, starting over
/// after the last page. Returns (records, bytes).
///
/// A page with `has_more` holds `limit` customers (Stripe's contract, which
/// `tests/stripe.rs` checks); the client counts them exactly on the last
/// page and on every 16th, and skips the full scan otherwise so that its CPU
/// goes to HTTP, not to searching 100 kB bodies.
async fn pager(client: reqwest::Client, url: String, key: String, pages: usize) -> (usize, usize) {
    let mut after: Option<String> = None;
    let (mut records, mut bytes) = (0, 0);
    for n in 0..pages {
        let mut req = client
            .get(&url)
            .bearer_auth(&key)
            .query(&[("limit", "100")]);
        if let Some(a) = &after {
            req = req.query(&[("starting_after", a.as_str())]);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
        let body = resp.bytes().await.unwrap();
        bytes += body.len();
        let body = std::str::from_utf8(&body).unwrap();
        let more = !body.ends_with("\"has_more\":false,\"url\":\"/v1/customers\"}");
        let count = if more && n % 16 != 0 {
            100
        } else {
            body.matches(MARK).count()
        };
        assert!(!more || count == 100, "{count} customers on a full page");
        records += count;
        after = if more { last_id(body) } else { None };
    }
    (records, bytes)
}

struct Run {
    records: usize,
    bytes: usize,
    wall: f64,
    server_cpu: f64,
}

async fn run(size: usize) -> Run {
    let config = SandboxConfig {
        size,
        rate_limits: false,
        ..Default::default()
    };
    let key = config.api_key.clone();
    let (base, tid, stop) = start_on_own_thread(config);
    let url = format!("{base}/v1/customers");
    let client = reqwest::Client::new();
    // Warm up: open the connections.
    futures::future::join_all(
        (0..PAGERS).map(|_| pager(client.clone(), url.clone(), key.clone(), 1)),
    )
    .await;
    let cpu0 = thread_cpu_secs(&tid);
    let started = Instant::now();
    let done = futures::future::join_all(
        (0..PAGERS).map(|_| pager(client.clone(), url.clone(), key.clone(), PAGES / PAGERS)),
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = thread_cpu_secs(&tid) - cpu0;
    stop.send(()).unwrap();
    Run {
        records: done.iter().map(|d| d.0).sum(),
        bytes: done.iter().map(|d| d.1).sum(),
        wall,
        server_cpu,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{PAGERS} connections, {PAGES} pages of 100 customers per size; sandbox on its own single-threaded runtime"
    );
    for size in [10_000usize, 1_000_000, 10_000_000] {
        let r = rt.block_on(run(size));
        println!(
            "size={size:>9} records={} wall_s={:.3} records_per_s={:.0} MB_per_s={:.1} sandbox_cpu_s={:.2} records_per_sandbox_cpu_s={:.0} rss_mib={:.1}",
            r.records,
            r.wall,
            r.records as f64 / r.wall,
            r.bytes as f64 / r.wall / 1e6,
            r.server_cpu,
            r.records as f64 / r.server_cpu,
            rss_kib() as f64 / 1024.0
        );
    }
}
