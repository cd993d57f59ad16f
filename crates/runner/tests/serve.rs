//! `weft serve`: schedules firing against the sandbox, overlong jobs not
//! started twice, metrics equal to the run history, SIGTERM within the grace
//! period, two runners on one PostgreSQL splitting the times, and a killed
//! runner's lease taken over once it expires.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use weft_core::CancellationToken;
use weft_e2e::{Harness, PgStack, query_i64, query_rows};
use weft_runner::{ServeOptions, Server};
use weft_sandbox::{Faults, SandboxConfig};

/// A sandbox whose requests take `latency_ms`.
fn slow_sandbox(size: usize, latency_ms: u64) -> SandboxConfig {
    SandboxConfig {
        size,
        faults: Faults {
            latency_ms,
            ..Default::default()
        },
        ..SandboxConfig::default()
    }
}

/// Adds a `[runner]` table to the harness config.
fn with_runner(h: &Harness, runner: &str) {
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    std::fs::write(&h.config_path, format!("{text}\n[runner]\n{runner}\n")).unwrap();
}

/// Runs an in-process `weft serve` for `secs` seconds, then stops it.
async fn serve_for(h: &Harness, secs: f64) -> (weft_runner::ServeSummary, String) {
    let server = Server::start(
        &h.config(),
        ServeOptions {
            metrics: Some("127.0.0.1:0".parse().unwrap()),
        },
    )
    .await
    .unwrap();
    let addr = server.metrics_addr().unwrap();
    let metrics = server.metrics();
    let shutdown = CancellationToken::new();
    let stopper = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            // The endpoints answer while it serves.
            let client = reqwest::Client::new();
            let get = |path: &str| client.get(format!("http://{addr}{path}")).send();
            assert_eq!(get("/healthz").await.unwrap().status(), 200);
            assert_eq!(get("/readyz").await.unwrap().status(), 200);
            let text = get("/metrics").await.unwrap().text().await.unwrap();
            assert_parseable(&text);
            shutdown.cancel();
        })
    };
    let summary = server.run_until(shutdown).await;
    stopper.await.unwrap();
    (summary, metrics.render())
}

/// Every sample line is `name{labels} value`, and the text ends with `# EOF`.
fn assert_parseable(text: &str) {
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("weft_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line:?}"
        );
        assert!(!line.contains("sk_test"), "a secret in the metrics: {line}");
    }
}

/// The value of one series, summed over the series whose labels contain `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

/// (status, scheduled_at, started_at, finished_at) of each recorded run, by start.
fn runs(db: &std::path::Path) -> Vec<Vec<String>> {
    query_rows(
        db,
        "SELECT status, scheduled_at, started_at, coalesce(finished_at, ''), \"trigger\", job \
         FROM _weft._weft_runs ORDER BY started_at",
    )
}

/// A schedule firing every second runs the pipeline again and again; the
/// history has one row per run, each for its own scheduled time; the
/// metrics say the same rows and requests as the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_every_second_runs_the_pipeline_and_metrics_match_the_history() {
    let h = Harness::stripe(
        slow_sandbox(60, 0),
        "streams = [\"customers\"]\nschedule = \"* * * * * *\"",
    )
    .await;
    let (summary, text) = serve_for(&h, 4.5).await;
    let counts = &summary.jobs["stripe"];
    assert!(summary.stopped_in_grace);
    assert!(counts.ran >= 2, "{counts:?}");
    assert_eq!((counts.failed, counts.ran_elsewhere), (0, 0), "{counts:?}");

    let db = h.warehouse_path();
    let history = runs(&db);
    // The stop may cancel a run that was under way.
    assert_eq!(
        history.len() as u64,
        counts.ran + counts.cancelled,
        "{history:?}"
    );
    let slots: BTreeSet<&String> = history.iter().map(|r| &r[1]).collect();
    assert_eq!(slots.len(), history.len(), "a scheduled time ran twice");
    let succeeded = history.iter().filter(|r| r[0] == "succeeded").count() as u64;
    assert_eq!(succeeded, counts.ran, "{history:?}");
    for r in &history {
        assert_eq!((r[4].as_str(), r[5].as_str()), ("schedule", "stripe"));
    }
    let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM stripe.customers"),
        expected
    );
    assert_eq!(
        query_i64(&db, "SELECT count(DISTINCT id) FROM stripe.customers"),
        expected
    );

    // The counters are the run reports' figures, which the history keeps.
    let rows = query_i64(&db, "SELECT sum(\"rows\") FROM _weft._weft_runs");
    let requests = query_i64(&db, "SELECT sum(requests) FROM _weft._weft_runs");
    assert_eq!(
        rows, expected,
        "the first run loads everyone, the others nothing new"
    );
    let labels = "pipeline=\"stripe\",stream=\"customers\"";
    assert_eq!(metric(&text, "weft_rows_total", labels), rows as f64);
    assert_eq!(
        metric(&text, "weft_requests_total", labels),
        requests as f64
    );
    assert_eq!(
        metric(
            &text,
            "weft_runs_total",
            "name=\"stripe\",status=\"succeeded\""
        ),
        counts.ran as f64
    );
    assert_eq!(
        metric(
            &text,
            "weft_job_runs_total",
            "job=\"stripe\",outcome=\"ran\""
        ),
        counts.ran as f64
    );
    assert_eq!(
        metric(&text, "weft_run_duration_seconds_count", "name=\"stripe\""),
        history.len() as f64
    );
    assert!(metric(&text, "weft_staged_bytes_total", labels) > 0.0);
    assert!(
        metric(
            &text,
            "weft_last_success_timestamp_seconds",
            "name=\"stripe\""
        ) > 1.7e9
    );
    assert_eq!(
        metric(&text, "weft_lease_held", "lease=\"pipeline:stripe\""),
        0.0
    );
}

/// A job that runs longer than its interval is not started again while it
/// runs: the times it overlaps are counted as skipped, and no two recorded
/// runs overlap in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_job_is_not_started_twice() {
    // 150 ms per request, 10 rows a page, one page at a time: ~2 s a run.
    let h = Harness::stripe(
        slow_sandbox(120, 150),
        "streams = [\"customers\"]\nschedule = \"* * * * * *\"\nmax_concurrency = 1",
    )
    .await;
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    std::fs::write(
        &h.config_path,
        text.replace("[pipelines.config]", "[pipelines.config]\npage_size = 10"),
    )
    .unwrap();
    let (summary, _) = serve_for(&h, 6.0).await;
    let counts = &summary.jobs["stripe"];
    assert!(counts.ran >= 1, "{counts:?}");
    assert!(counts.skipped_overlap >= 1, "{counts:?}");
    let history = runs(&h.warehouse_path());
    assert_eq!(
        history.len() as u64,
        counts.ran + counts.failed + counts.cancelled,
        "{counts:?} {history:?}"
    );
    for pair in history.windows(2) {
        assert!(
            !pair[0][3].is_empty() && pair[0][3] <= pair[1][2],
            "two runs at once: {pair:?}"
        );
    }
}

fn weft_serve(config: &std::path::Path, host: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--config"])
        .arg(config)
        .env("WEFT_HOST", host)
        .env("WEFT_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `f` every 100 ms until it is true or `limit` passes.
async fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The runs in PostgreSQL: (pipeline, scheduled_at, started_at, finished_at, status, pid, host).
fn pg_runs(stack: &PgStack) -> Vec<Vec<String>> {
    let exists = "SELECT count(*) FROM information_schema.tables \
                  WHERE table_schema = '_weft' AND table_name = '_weft_runs'";
    if stack.i64(exists) == 0 {
        return Vec::new();
    }
    stack
        .strings(
            "SELECT pipeline, coalesce(scheduled_at, ''), started_at, coalesce(finished_at, ''), \
             status, pid, host FROM _weft._weft_runs ORDER BY pipeline, started_at",
        )
        .into_iter()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// A Stripe pipeline into `stack` running every second whose runs take
/// several seconds (100 ms a request, 20 rows a page, a commit every 40
/// rows), with `runner` as its `[runner]` table.
async fn slow_load_on(stack: &PgStack, extra: &str, runner: &str) -> Harness {
    let h = Harness::stripe_on(
        stack,
        slow_sandbox(400, 100),
        &format!("schedule = \"* * * * * *\"\ncheckpoint_rows = 40\n{extra}"),
    )
    .await;
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    std::fs::write(
        &h.config_path,
        text.replace("[pipelines.config]", "[pipelines.config]\npage_size = 20"),
    )
    .unwrap();
    with_runner(&h, runner);
    h
}

/// SIGTERM while a scheduled load runs: `weft serve` exits 0 within its
/// grace period, what it committed is intact, and the next run resumes and
/// completes with every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_load_stops_within_the_grace_period() {
    let mut stack = PgStack::start("sigterm");
    stack.use_database("sigterm_0");
    let h = slow_load_on(
        &stack,
        "streams = [\"customers\", \"charges\"]",
        "grace_secs = 10",
    )
    .await;
    let mut child = weft_serve(&h.config_path, "term-host");
    // Wait until a scheduled run is loading (it has committed a load).
    let loading = until(Duration::from_secs(30), || {
        stack.committed_loads() > 0 && pg_runs(&stack).iter().any(|r| r[4] == "running")
    })
    .await;
    assert!(loading, "no scheduled run started loading");
    let committed_before = stack.i64("SELECT count(*) FROM _weft._weft_loads");
    let sent = Instant::now();
    signal(&child, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("weft serve did not exit")
        .unwrap();
    let took = sent.elapsed();
    let out = child.wait_with_output().await.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success(), "exit {status}: {said}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // Nothing committed was lost, no run is left running.
    assert!(stack.i64("SELECT count(*) FROM _weft._weft_loads") >= committed_before);
    let history = pg_runs(&stack);
    assert!(
        history.iter().all(|r| r[4] != "running"),
        "a run was left running: {history:?}"
    );
    assert!(
        history.iter().any(|r| r[4] == "cancelled"),
        "the interrupted run is not cancelled: {history:?}"
    );
    // The next run resumes: every row once, no load twice.
    let report = h.run_one().await;
    assert!(report.succeeded(), "{}", report.to_table());
    let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
    for t in ["stripe.customers", "stripe.charges"] {
        stack.assert_exact(t, expected);
    }
    assert_eq!(
        stack.i64("SELECT count(*) - count(DISTINCT load_id) FROM _weft._weft_loads"),
        0
    );
}

/// Two `weft serve` processes on one PostgreSQL with four pipelines on
/// one schedule: each scheduled time of each pipeline runs once, never two
/// runs of a pipeline at once, and the rows are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_split_the_scheduled_times_and_run_each_once() {
    let mut stack = PgStack::start("two_serve");
    stack.use_database("two_serve_0");
    let h = Harness::stripe_on(
        &stack,
        slow_sandbox(80, 20),
        "streams = [\"customers\"]\nschedule = \"*/2 * * * * *\"",
    )
    .await;
    // Four pipelines: the harness' one and three more on the same account.
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    let first = &text[text.find("[[pipelines]]").unwrap()..];
    let mut all = text.clone();
    for n in 2..=4 {
        all.push_str(&first.replace("name = \"stripe\"", &format!("name = \"stripe{n}\"")));
    }
    std::fs::write(&h.config_path, all).unwrap();
    let mut a = weft_serve(&h.config_path, "runner-a");
    let mut b = weft_serve(&h.config_path, "runner-b");
    tokio::time::sleep(Duration::from_secs(9)).await;
    signal(&a, "-TERM");
    signal(&b, "-TERM");
    for child in [&mut a, &mut b] {
        let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
            .await
            .expect("weft serve did not exit")
            .unwrap();
        assert!(status.success(), "{status}");
    }
    let history = pg_runs(&stack);
    let mut by_pipeline: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
    for r in &history {
        by_pipeline.entry(&r[0]).or_default().push(r);
    }
    assert_eq!(by_pipeline.len(), 4, "{history:?}");
    let mut hosts = BTreeSet::new();
    for (pipeline, runs) in &by_pipeline {
        let slots: BTreeSet<&String> = runs.iter().map(|r| &r[1]).collect();
        assert_eq!(
            slots.len(),
            runs.len(),
            "{pipeline}: a time ran twice: {runs:?}"
        );
        assert!(runs.len() >= 2, "{pipeline}: {runs:?}");
        for pair in runs.windows(2) {
            assert!(
                !pair[0][3].is_empty() && pair[0][3] <= pair[1][2],
                "{pipeline}: two runs at once: {pair:?}"
            );
        }
        hosts.extend(runs.iter().map(|r| r[6].clone()));
    }
    eprintln!("runs per host: {hosts:?}");
    assert_eq!(hosts.len(), 2, "one runner did all the work: {hosts:?}");
    // Finish whatever the stop cancelled, then count.
    let outcome = weft_runner::run(
        &h.config(),
        &weft_runner::RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert!(outcome.succeeded(), "{}", outcome.render());
    let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
    for p in ["stripe", "stripe2", "stripe3", "stripe4"] {
        let t = format!("{p}.customers");
        stack.assert_exact(&t, expected);
    }
}

/// SIGKILL the runner that is loading: the other runner (another host)
/// takes the lease once it expires, marks the killed run abandoned, and
/// finishes the load; nothing lost, nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runners_lease_is_taken_over_after_it_expires() {
    let mut stack = PgStack::start("takeover");
    stack.use_database("takeover_0");
    let h = slow_load_on(
        &stack,
        "streams = [\"customers\"]\nmax_concurrency = 2",
        "lease_secs = 3",
    )
    .await;
    let mut a = weft_serve(&h.config_path, "runner-a");
    let loading = until(Duration::from_secs(30), || stack.committed_loads() > 0).await;
    assert!(loading, "runner a never committed a load");
    let mut b = weft_serve(&h.config_path, "runner-b");
    signal(&a, "-KILL");
    let killed_at = chrono::Utc::now();
    let _ = a.wait().await;
    let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
    let finished = until(Duration::from_secs(60), || {
        pg_runs(&stack)
            .iter()
            .any(|r| r[6] == "runner-b" && r[4] == "succeeded")
    })
    .await;
    signal(&b, "-TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), b.wait()).await;
    let history = pg_runs(&stack);
    assert!(finished, "runner b never finished: {history:?}");
    let a_runs: Vec<_> = history.iter().filter(|r| r[6] == "runner-a").collect();
    assert_eq!(a_runs.len(), 1, "{history:?}");
    assert_eq!(a_runs[0][4], "abandoned", "{history:?}");
    // Runner b ran nothing until a's lease expired (3 s after its last heartbeat).
    let first_b = history
        .iter()
        .filter(|r| r[6] == "runner-b")
        .map(|r| chrono::DateTime::parse_from_rfc3339(&r[2]).unwrap())
        .min()
        .unwrap();
    let waited = first_b.signed_duration_since(killed_at).num_milliseconds();
    assert!(waited >= 1_500, "b took over {waited} ms after the kill");
    stack.assert_exact("stripe.customers", expected);
    assert_eq!(
        stack.i64("SELECT count(*) - count(DISTINCT load_id) FROM _weft._weft_loads"),
        0
    );
}

/// Two runners reading one Stripe account (two pipelines, one key, 25
/// requests/s documented) through one PostgreSQL never exceed the
/// account's rate together, in any one-second window at the sandbox; a lone
/// runner afterwards gets (nearly) all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_account_split_its_rate() {
    let mut stack = PgStack::start("budget_share");
    stack.use_database("budget_share_0");
    let h = Harness::stripe_on(&stack, slow_sandbox(1_000, 40), "streams = [\"customers\"]").await;
    // Pipelines a, b and c: the same account, each its own schema.
    let text = std::fs::read_to_string(&h.config_path)
        .unwrap()
        .replace("[pipelines.config]", "[pipelines.config]\npage_size = 10");
    let first = text[text.find("[[pipelines]]").unwrap()..].to_string();
    let mut all = text[..text.find("[[pipelines]]").unwrap()].to_string();
    for name in ["a", "b", "c"] {
        all.push_str(&first.replace("name = \"stripe\"", &format!("name = \"{name}\"")));
    }
    std::fs::write(&h.config_path, all).unwrap();
    let run = |pipeline: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["run", "--pipeline", pipeline, "--config"])
            .arg(&h.config_path)
            .env("WEFT_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
            .wait_with_output()
    };
    let (a, b) = tokio::join!(run("a"), run("b"));
    for (name, out) in [("a", a.unwrap()), ("b", b.unwrap())] {
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let control = h.sandbox.control();
    let together = control.requests(weft_sandbox::Api::Stripe);
    let busiest = weft_sandbox::busiest_second(&together);
    eprintln!(
        "two runners: {} requests, busiest second {busiest}",
        together.len()
    );
    assert!(
        busiest <= 25,
        "two runners sent {busiest} requests in one second"
    );
    // They did read at the same time.
    let spans: Vec<Vec<String>> = pg_runs(&stack);
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(
        spans[0][2] < spans[1][3] && spans[1][2] < spans[0][3],
        "the runs did not overlap: {spans:?}"
    );
    assert_eq!(
        stack.i64("SELECT sum(rate_limited) FROM _weft._weft_runs"),
        0,
        "the account answered 429"
    );
    assert_eq!(
        stack.i64("SELECT count(*) FROM _weft._weft_budget_holders"),
        0,
        "a runner left its budget rows behind"
    );
    // Alone, a runner takes the whole rate again.
    let out = run("c").await.unwrap();
    assert!(out.status.success());
    let alone = &control.requests(weft_sandbox::Api::Stripe)[together.len()..];
    let busiest = weft_sandbox::busiest_second(alone);
    eprintln!(
        "one runner: {} requests, busiest second {busiest}",
        alone.len()
    );
    assert!(
        busiest >= 20,
        "a lone runner sent only {busiest} requests in its busiest second"
    );
    let expected = control.stripe_customer_ids().len() as i64;
    for p in ["a", "b", "c"] {
        assert_eq!(
            stack.i64(&format!("SELECT count(*) FROM {p}.customers")),
            expected
        );
    }
}
