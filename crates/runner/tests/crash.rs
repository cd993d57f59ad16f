//! A `weft run` child process SIGKILLed at seeded random points of its
//! work (after the k-th request the sandbox receives, k seeded between the
//! first and half of a whole run's requests (a run's count varies by a
//! fifth with how its reads split), so every kill lands while the
//! run is working whatever the machine's speed), then re-run: no row lost, none duplicated, no half-applied load visible — into
//! DuckDB with a local stage, and into PostgreSQL with an S3 stage (real
//! servers on loopback).
//!
//! It lives in the package that owns the `weft` binary, so cargo builds the
//! binary for it and `CARGO_BIN_EXE_weft` names it (on a clean target dir too).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use weft_e2e::{Harness, PgStack, max_unix_seconds, query_i64, query_strings};
use weft_sandbox::{Api, Faults, SandboxConfig};

/// The streams the crash test runs.
const CRASH_STREAMS: [&str; 4] = ["customers", "charges", "invoices", "events"];

/// Where a trial loads, and how the test reads back what landed.
enum Target<'a> {
    /// DuckDB `weft.duckdb` and a local stage, in the harness dir.
    DuckDb,
    /// PostgreSQL and an S3 bucket (a fresh database and prefix per trial).
    Postgres(&'a mut PgStack),
}

impl Target<'_> {
    async fn harness(&mut self, trial: u64, sandbox: SandboxConfig, extra: &str) -> Harness {
        match self {
            Target::DuckDb => Harness::stripe(sandbox, extra).await,
            Target::Postgres(stack) => {
                stack.use_database(&format!("crash_{trial}"));
                Harness::stripe_on(stack, sandbox, extra).await
            }
        }
    }

    fn i64(&self, h: &Harness, sql: &str) -> i64 {
        match self {
            Target::DuckDb => query_i64(&h.warehouse_path(), sql),
            Target::Postgres(stack) => stack.i64(sql),
        }
    }

    fn customers_state(&self, h: &Harness) -> serde_json::Value {
        self.committed_customers_state(h).unwrap()
    }

    /// The customers stream's committed state, if a load committed one.
    fn committed_customers_state(&self, h: &Harness) -> Option<serde_json::Value> {
        if matches!(self, Target::DuckDb) && !h.warehouse_path().exists() {
            return None;
        }
        let exists = "SELECT count(*) FROM information_schema.tables \
                      WHERE table_schema = '_weft' AND table_name = '_weft_state'";
        if self.i64(h, exists) == 0 {
            return None;
        }
        let sql = "SELECT state FROM _weft._weft_state WHERE stream='customers'";
        let mut texts = match self {
            Target::DuckDb => query_strings(&h.warehouse_path(), sql),
            Target::Postgres(stack) => stack.strings(sql),
        };
        texts.pop().map(|t| serde_json::from_str(&t).unwrap())
    }

    fn max_created(&self, h: &Harness) -> i64 {
        match self {
            Target::DuckDb => max_unix_seconds(&h.warehouse_path(), "stripe.customers", "created"),
            Target::Postgres(stack) => {
                stack.i64("SELECT extract(epoch FROM max(created))::bigint FROM stripe.customers")
            }
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kills `weft run` at seeded random moments and re-runs: no row lost, none duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_then_rerun_loses_and_duplicates_nothing() {
    trials(Target::DuckDb).await;
}

/// The same trials into PostgreSQL through an S3 stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_into_postgres_via_s3_loses_and_duplicates_nothing() {
    let mut stack = PgStack::start("crash_setup");
    trials(Target::Postgres(&mut stack)).await;
}

async fn trials(mut target: Target<'_>) {
    let trials = env_u64("WEFT_CRASH_TRIALS", 20);
    let seed = env_u64("WEFT_CRASH_SEED", 7);
    eprintln!("crash trials: {trials}, seed {seed}");
    let mut killed_mid_slices = 0;
    // Four streams (lists, the events feed), a commit every 200 rows and
    // 40 ms per request under a live key's 100 requests/s: the lists are
    // read in concurrent slices (~4 in flight), with many kill points.
    let sandbox = || SandboxConfig {
        size: 1_000,
        api_key: "sk_live_weft_crash".into(),
        faults: Faults {
            latency_ms: 40,
            ..Default::default()
        },
        ..Default::default()
    };
    let streams =
        "checkpoint_rows = 200\nstreams = [\"customers\", \"charges\", \"invoices\", \"events\"]";
    // How many requests a whole run makes (the same config, run once in process).
    let whole = {
        let h = target.harness(trials, sandbox(), streams).await;
        assert!(h.run_one().await.succeeded());
        h.sandbox.control().request_count(Api::Stripe)
    };
    assert!(whole >= 10, "a whole run made only {whole} requests");
    for trial in 0..trials {
        let h = target.harness(trial, sandbox(), streams).await;
        // A seeded pseudo-random kill point: after the k-th request, k in
        // 1..=half of a whole run's requests (runs vary by a fifth: 44 to 57
        // requests seen for the same config, with how the reads split).
        let x =
            (seed ^ trial.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x2545_f491_4f6c_dd1d);
        let kill_at = 1 + (x >> 33) % (whole / 2);
        eprintln!("trial {trial}: kill after request {kill_at} of ~{whole}");
        let control = h.sandbox.control();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["run", "--config"])
            .arg(&h.config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while control.request_count(Api::Stripe) < kill_at {
            // The kill must land while the run is still working: a run that
            // had already exited tests nothing.
            assert!(
                child.try_wait().unwrap().is_none(),
                "trial {trial}: the run ended after {} of the {kill_at} requests before the kill",
                control.request_count(Api::Stripe)
            );
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "trial {trial}: no progress"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = child.start_kill();
        let status = child.wait().await.unwrap();
        assert!(
            !status.success(),
            "trial {trial}: the killed run exited cleanly"
        );
        if target.committed_customers_state(&h).is_some_and(|s| {
            s["slices"]["windows"]
                .as_array()
                .is_some_and(|w| !w.is_empty())
        }) {
            killed_mid_slices += 1;
        }

        let report = h.run_one().await;
        assert!(report.succeeded(), "trial {trial}: {}", report.to_table());
        // ... and before it had committed everything: the re-run had rows left to load.
        let reloaded: u64 = report.streams.iter().map(|s| s.rows).sum();
        assert!(
            reloaded > 0,
            "trial {trial}: the kill after request {kill_at} came after every load was committed"
        );
        let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
        for s in CRASH_STREAMS {
            let n = target.i64(&h, &format!("SELECT count(*) FROM stripe.{s}"));
            let d = target.i64(&h, &format!("SELECT count(DISTINCT id) FROM stripe.{s}"));
            assert_eq!(n, d, "trial {trial}: {s} has duplicates");
        }
        assert_eq!(
            target.i64(&h, "SELECT count(*) FROM stripe.customers"),
            expected,
            "trial {trial}"
        );
        // Each committed load is recorded once, and no row belongs to a load
        // that was not recorded (no orphaned half-load is visible).
        assert_eq!(
            target.i64(
                &h,
                "SELECT count(*) - count(DISTINCT load_id) FROM _weft._weft_loads"
            ),
            0
        );
        for s in CRASH_STREAMS {
            let orphans = target.i64(
                &h,
                &format!(
                    "SELECT count(*) FROM stripe.{s} WHERE _weft_load_id NOT IN \
                     (SELECT load_id FROM _weft._weft_loads)"
                ),
            );
            assert_eq!(
                orphans, 0,
                "trial {trial}: {s} has rows of unrecorded loads"
            );
        }
        if let Target::Postgres(stack) = &target {
            // No staging table outlives its commit (temporary tables die with
            // the killed session; none may be a permanent one).
            assert_eq!(
                stack.i64(
                    "SELECT count(*) FROM pg_class WHERE relname LIKE '%staging%' \
                     AND relpersistence <> 't'"
                ),
                0,
                "trial {trial}: orphaned staging tables"
            );
        }
        assert_eq!(
            target.customers_state(&h)["created"].as_i64().unwrap(),
            target.max_created(&h),
            "trial {trial}: cursor"
        );
    }
    // The kills land inside sliced backfills, not only before or after them.
    eprintln!("{killed_mid_slices} of {trials} kills left slices to resume");
    if trials >= 10 {
        assert!(killed_mid_slices > 0, "no kill landed inside a sliced read");
    }
}
