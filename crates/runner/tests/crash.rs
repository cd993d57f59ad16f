//! A `weft run` child process SIGKILLed at seeded random moments, then
//! re-run: no row lost, none duplicated, no half-applied load visible.
//!
//! It lives in the package that owns the `weft` binary, so cargo builds the
//! binary for it and `CARGO_BIN_EXE_weft` names it (on a clean target dir too).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use weft_core::CancellationToken;
use weft_e2e::{Harness, max_unix_seconds, query_i64, query_strings};
use weft_runner::RunOptions;
use weft_sandbox::{Faults, SandboxConfig};

async fn run(h: &Harness) -> weft_core::RunReport {
    let mut reports = weft_runner::run(
        &h.config(),
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(reports.pipelines.len(), 1);
    reports.pipelines.remove(0)
}

/// The streams the crash test runs.
const CRASH_STREAMS: [&str; 4] = ["customers", "charges", "invoices", "events"];

/// Kills `weft run` at seeded random moments and re-runs: no row lost, none duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_then_rerun_loses_and_duplicates_nothing() {
    let trials: u64 = std::env::var("WEFT_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("WEFT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    eprintln!("crash trials: {trials}, seed {seed}");
    for trial in 0..trials {
        // Four streams (lists, the events feed), a commit every 200 rows and
        // 5 ms per request: a run of a few seconds with many kill points.
        let sandbox = SandboxConfig {
            size: 400,
            faults: Faults {
                latency_ms: 5,
                ..Default::default()
            },
            ..Default::default()
        };
        let h = Harness::stripe(
            sandbox,
            "checkpoint_rows = 200\nstreams = [\"customers\", \"charges\", \"invoices\", \"events\"]",
        )
        .await;
        let db = h.warehouse_path();
        // A seeded pseudo-random kill point between 0.2 s and 1.8 s.
        let x =
            (seed ^ trial.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x2545_f491_4f6c_dd1d);
        let kill_after = Duration::from_millis(200 + (x >> 33) % 1600);
        eprintln!("trial {trial}: kill after {kill_after:?}");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["run", "--config"])
            .arg(&h.config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(kill_after).await;
        let _ = child.start_kill();
        let _ = child.wait().await;

        let report = run(&h).await;
        assert!(report.succeeded(), "trial {trial}: {}", report.to_table());
        let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
        for s in CRASH_STREAMS {
            let n = query_i64(&db, &format!("SELECT count(*) FROM stripe.{s}"));
            let d = query_i64(&db, &format!("SELECT count(DISTINCT id) FROM stripe.{s}"));
            assert_eq!(n, d, "trial {trial}: {s} has duplicates");
        }
        assert_eq!(
            query_i64(&db, "SELECT count(*) FROM stripe.customers"),
            expected,
            "trial {trial}"
        );
        // Each committed load is recorded once, and no row belongs to a load
        // that was not recorded (no orphaned half-load is visible).
        assert_eq!(
            query_i64(
                &db,
                "SELECT count(*) - count(DISTINCT load_id) FROM _weft._weft_loads"
            ),
            0
        );
        for s in CRASH_STREAMS {
            let orphans = query_i64(
                &db,
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
        let max_created = max_unix_seconds(&db, "stripe.customers", "created");
        let state = query_strings(
            &db,
            "SELECT state FROM _weft._weft_state WHERE stream='customers'",
        );
        let state: serde_json::Value = serde_json::from_str(&state[0]).unwrap();
        assert_eq!(
            state["created"].as_i64().unwrap(),
            max_created,
            "trial {trial}: cursor"
        );
    }
}
