//! Freshness SLAs: `weft check --quality` against what the warehouse
//! committed (DuckDB through the binary, PostgreSQL through the library), and
//! the freshness gauges `weft serve` exports.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use weft_core::CancellationToken;
use weft_e2e::{Harness, PgStack};
use weft_runner::{FreshnessBasis, RunOptions, ServeOptions, Server, WeftConfig};
use weft_sandbox::SandboxConfig;

fn weft(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(dir)
        .env("WEFT_LOG", "error")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `fresh …` lines of a `weft check --quality`, each cut before its
/// `(` (ages move with the clock).
fn verdicts(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("fresh "))
        .map(|l| l.split(" (").next().unwrap().to_string())
        .collect()
}

/// The demo config for `sandbox` with `slas` added: `(pipeline, line)`
/// pairs inserted after each pipeline's `connector = …`, then `tail` (TOML
/// of the last pipeline, stripe) before the syncs.
fn with_slas(text: &str, slas: &[(&str, &str)], tail: &str) -> String {
    let mut text = text.to_string();
    for (pipeline, line) in slas {
        let head = format!("name = \"{pipeline}\"\nconnector = \"{pipeline}\"\n");
        assert!(text.contains(&head), "no pipeline {pipeline}");
        text = text.replacen(&head, &format!("{head}{line}\n"), 1);
    }
    let syncs = text.find("[[syncs]]").unwrap();
    format!("{}{tail}\n{}", &text[..syncs], &text[syncs..])
}

/// Loads Salesforce and Stripe from the sandbox (Zoom never runs), then
/// checks freshness: generous SLAs pass, an SLA shorter than Salesforce's
/// settle time (its cursor is always at least 60 s behind the extraction's
/// start) names each Salesforce stream stale, and Zoom, never loaded, is
/// stale whatever its SLA. Stripe's SLA is only on `customers`, so
/// `charges` has no line.
#[test]
fn check_quality_names_stale_and_never_loaded_streams_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = SandboxConfig {
        size: 20,
        ..Default::default()
    };
    let sandbox = rt
        .block_on(weft_sandbox::Sandbox::start(config.clone()))
        .unwrap();
    let config_path = weft_runner::write_demo_config(
        dir.path(),
        &sandbox,
        &config,
        &weft_runner::DemoWarehouse::DuckDb,
        weft_core::SyncWriteMode::Upsert,
        None,
    )
    .unwrap();
    let demo = std::fs::read_to_string(&config_path).unwrap();

    // Without any SLA, --quality says so and checks the rest as before.
    let out = weft(dir.path(), &["check", "--quality", "--pipeline", "stripe"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "stage: ok\nwarehouse: ok\nstripe: ok\nfresh: no stream has a freshness_sla\n"
    );

    for pipeline in ["salesforce", "stripe"] {
        let out = weft(dir.path(), &["run", "--pipeline", pipeline]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let customers = "[pipelines.per_stream.customers]\nfreshness_sla = \"3650d\"\n";
    std::fs::write(
        &config_path,
        with_slas(
            &demo,
            &[("salesforce", "freshness_sla = \"3650d\"")],
            customers,
        ),
    )
    .unwrap();
    let out = weft(dir.path(), &["check", "--quality"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // Salesforce lists no streams: its SLA covers the objects it reads.
    assert_eq!(
        verdicts(&out),
        [
            "fresh salesforce.Contact: ok",
            "fresh salesforce.Account: ok",
            "fresh salesforce.Lead: ok",
            "fresh stripe.customers: ok",
        ]
    );
    let customers_line = stdout(&out)
        .lines()
        .find(|l| l.starts_with("fresh stripe.customers: "))
        .unwrap()
        .to_string();
    assert!(
        customers_line.contains(", sla 3650d; cursor 20"),
        "{customers_line}"
    );
    // The same line comes from the library (age as of its own clock).
    let loaded = WeftConfig::load(&config_path).unwrap();
    let (_, fresh) = rt
        .block_on(weft_runner::check_quality(&loaded, Some("stripe")))
        .unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].stream, "customers");
    assert!(matches!(fresh[0].basis, Some(FreshnessBasis::Cursor(_))));

    std::fs::write(
        &config_path,
        with_slas(
            &demo,
            &[
                ("salesforce", "freshness_sla = \"30s\""),
                ("zoom", "freshness_sla = \"3650d\""),
            ],
            customers,
        ),
    )
    .unwrap();
    let out = weft(dir.path(), &["check", "--quality"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // Every connectivity check still passed: the exit is the freshness.
    assert!(!stdout(&out).contains("FAILED"), "{}", stdout(&out));
    assert_eq!(
        verdicts(&out),
        [
            "fresh zoom.users: STALE",
            "fresh zoom.webinars: STALE",
            "fresh zoom.webinar_registrants: STALE",
            "fresh salesforce.Contact: STALE",
            "fresh salesforce.Account: STALE",
            "fresh salesforce.Lead: STALE",
            "fresh stripe.customers: ok",
        ]
    );
    let text = stdout(&out);
    assert!(
        text.contains("fresh zoom.users: STALE (never loaded, sla 3650d)\n"),
        "{text}"
    );
    let contact = text
        .lines()
        .find(|l| l.starts_with("fresh salesforce.Contact: STALE (age "))
        .unwrap();
    assert!(contact.contains(", sla 30s; cursor 20"), "{contact}");

    // --pipeline narrows the freshness lines too.
    let out = weft(dir.path(), &["check", "--quality", "--pipeline", "stripe"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(verdicts(&out), ["fresh stripe.customers: ok"]);
    rt.block_on(sandbox.shutdown());
}

/// The value of the one series `name{labels}` in a metrics text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map(|v| v.parse().unwrap())
}

/// `weft serve` exports each SLA'd stream's SLA and freshness from what
/// the warehouse committed, from its start (before any scheduled run),
/// and a stream never loaded has its SLA and no freshness.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_the_freshness_and_sla_of_each_stream_from_the_start() {
    let h = Harness::stripe(
        SandboxConfig {
            size: 20,
            ..SandboxConfig::default()
        },
        // Yearly: no scheduled run happens while the test looks.
        "streams = [\"customers\", \"charges\"]\nfreshness_sla = \"2h\"\nschedule = \"0 0 1 1 *\"",
    )
    .await;
    let loaded = WeftConfig::load(&h.config_path).unwrap();
    let outcome = weft_runner::run(
        &loaded,
        &RunOptions {
            pipeline: Some("stripe".into()),
            full_refresh: false,
        },
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert!(outcome.succeeded(), "{}", outcome.render());
    // A third stream with its own SLA that was never loaded.
    let text = std::fs::read_to_string(&h.config_path).unwrap().replace(
        "streams = [\"customers\", \"charges\"]",
        "streams = [\"customers\", \"charges\", \"invoices\"]",
    );
    std::fs::write(
        &h.config_path,
        format!("{text}\n[pipelines.per_stream.invoices]\nfreshness_sla = \"1d\"\n"),
    )
    .unwrap();

    let server = Server::start(&h.config(), ServeOptions { metrics: None })
        .await
        .unwrap();
    let before = chrono::Utc::now();
    let text = server.metrics().render();
    let after = chrono::Utc::now();
    let stop = CancellationToken::new();
    stop.cancel();
    let summary = server.run_until(stop).await;
    assert_eq!(summary.jobs["stripe"].ran, 0, "{summary:?}");

    for (stream, sla) in [
        ("customers", 7_200.0),
        ("charges", 7_200.0),
        ("invoices", 86_400.0),
    ] {
        let series =
            format!("weft_stream_freshness_sla_seconds{{pipeline=\"stripe\",stream=\"{stream}\"}}");
        assert_eq!(sample(&text, &series), Some(sla), "{series} in\n{text}");
    }
    // The freshness is the age of the newest committed cursor, as `weft
    // check --quality` finds it.
    let fresh = weft_runner::freshness(
        &h.config(),
        weft_runner::open_warehouse(&h.config())
            .await
            .unwrap()
            .as_ref(),
        Some("stripe"),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(fresh.len(), 3);
    for f in &fresh[..2] {
        let series = format!(
            "weft_stream_freshness_seconds{{pipeline=\"stripe\",stream=\"{}\"}}",
            f.stream
        );
        let exported = sample(&text, &series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        // Exported as of the scrape: between the ages before and after it.
        let basis = f.basis.unwrap().at();
        let age_at =
            |t: chrono::DateTime<chrono::Utc>| (t - basis).num_milliseconds() as f64 / 1000.0;
        assert!(
            age_at(before) - 0.001 <= exported && exported <= age_at(after) + 0.001,
            "{series} {exported} not in {}..{}",
            age_at(before),
            age_at(after)
        );
    }
    assert_eq!(fresh[2].stream, "invoices");
    assert_eq!(fresh[2].basis, None);
    assert!(
        !text.contains("weft_stream_freshness_seconds{pipeline=\"stripe\",stream=\"invoices\"}"),
        "{text}"
    );
}

/// On PostgreSQL the same warehouse tables give the same verdicts: the
/// loaded stream is fresh by its cursor, a listed stream never loaded is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_on_postgres_reads_cursors_and_never_loaded_streams() {
    let stack = PgStack::start("freshness");
    let h = Harness::stripe_on(
        &stack,
        SandboxConfig {
            size: 20,
            ..SandboxConfig::default()
        },
        "streams = [\"customers\"]\nfreshness_sla = \"3650d\"",
    )
    .await;
    let loaded = h.config();
    let outcome = weft_runner::run(
        &loaded,
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert!(outcome.succeeded(), "{}", outcome.render());
    let text = std::fs::read_to_string(&h.config_path).unwrap().replace(
        "streams = [\"customers\"]",
        "streams = [\"customers\", \"charges\"]",
    );
    std::fs::write(&h.config_path, text).unwrap();
    let (lines, fresh) = weft_runner::check_quality(&h.config(), None).await.unwrap();
    assert!(lines.iter().all(|(_, r)| r.is_ok()), "{lines:?}");
    let now = chrono::Utc::now();
    let verdicts: Vec<(String, bool)> = fresh
        .iter()
        .map(|f| (f.stream.clone(), f.is_stale(now)))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("customers".to_string(), false),
            ("charges".to_string(), true)
        ]
    );
    assert!(matches!(fresh[0].basis, Some(FreshnessBasis::Cursor(_))));
    assert_eq!(fresh[1].basis, None);
}
