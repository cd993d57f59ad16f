//! Sentinel credentials through every pipeline: none may leak.
//!
//! The `weft demo` story (Zoom + Salesforce + Stripe into DuckDB, then a
//! reverse sync to Mailchimp) runs against a sandbox whose every credential
//! (Stripe key, Zoom client secret, Salesforce client secret and refresh
//! token, Mailchimp key) carries one sentinel. It runs clean, under a 5xx
//! storm that retries, under a 5xx storm that gives up, and with every API
//! refusing the credentials. Then the sentinel (and its base64 forms, as in a
//! basic-auth header) is searched for in every log line (tracing at TRACE,
//! captured), every error, both report renderings (table and JSON), every
//! byte of every file weft wrote (stage, config, warehouse file) and every
//! VARCHAR column of every table in the warehouse, `_weft` tables included.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use weft_core::CancellationToken;
use weft_e2e::{Harness, query_rows};
use weft_runner::{RunOptions, RunOutcome};
use weft_sandbox::{Api, Faults, SandboxConfig};

/// The part every sentinel credential shares.
const CORE: &str = "7f3a9c2e51d4b8e6";

/// Every credential the story uses, each carrying [`CORE`].
fn credentials() -> SandboxConfig {
    SandboxConfig {
        size: 40,
        rate_limits: false,
        api_key: format!("sk_test_SENTINEL-{CORE}-stripe"),
        zoom_client_secret: format!("SENTINEL-{CORE}-zoom"),
        mailchimp_api_key: format!("SENTINEL-{CORE}-mailchimp-us6"),
        salesforce_client_secret: format!("SENTINEL-{CORE}-salesforce-secret"),
        salesforce_refresh_token: format!("SENTINEL-{CORE}-salesforce-refresh"),
        zendesk_token: format!("SENTINEL-{CORE}-zendesk-token"),
        ..SandboxConfig::default()
    }
}

/// What must never appear: the shared core, each credential whole, and the
/// part of its base64 encoding that does not depend on what precedes it (at
/// each of the three alignments), so `Basic base64(user:secret)` is caught too.
fn needles(config: &SandboxConfig) -> Vec<String> {
    let secrets = [
        &config.api_key,
        &config.zoom_client_secret,
        &config.mailchimp_api_key,
        &config.salesforce_client_secret,
        &config.salesforce_refresh_token,
        &config.zendesk_token,
    ];
    let mut out = vec![CORE.to_string()];
    for s in secrets {
        out.push(s.clone());
        for pad in 0..3usize {
            let mut bytes = vec![b'x'; pad];
            bytes.extend_from_slice(s.as_bytes());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            // Whole 3-byte groups made only of the secret's bytes.
            let first = pad.div_ceil(3);
            let last = (pad + s.len()) / 3;
            out.push(encoded[4 * first..4 * last].to_string());
        }
    }
    out
}

/// Log output, shared between the subscriber and the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures every event and span of weft and its HTTP stack at TRACE,
/// process-wide (the runner's tasks run on every worker thread). The sandbox's
/// own server-side logs are left out: it is the test's stand-in for the vendor.
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(
            "trace,weft_sandbox=off,axum=off,tower_http=off,wiremock=off",
        ))
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test in this binary installs a global subscriber");
    captured
}

/// Everything a run shows a person or a machine: the table, the JSON, the
/// errors, and the Debug rendering of the outcome.
fn shown(outcome: &RunOutcome) -> Vec<(String, String)> {
    let mut out = vec![
        ("report table".to_string(), outcome.render()),
        (
            "report JSON".to_string(),
            serde_json::to_string_pretty(outcome).unwrap(),
        ),
        ("report Debug".to_string(), format!("{outcome:?}")),
    ];
    for p in &outcome.pipelines {
        for s in &p.streams {
            if let Some(e) = &s.error {
                out.push((format!("error of {}/{}", p.pipeline, s.stream), e.clone()));
            }
        }
    }
    for s in &outcome.syncs {
        if let Some(e) = &s.error {
            out.push((format!("error of sync {}", s.sync), e.clone()));
        }
    }
    out
}

/// Every file under `dir` except the secret files the test itself wrote.
fn files_weft_wrote(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "sandbox-secrets") {
                continue;
            }
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The first needle found in `haystack`.
fn leak<'a>(haystack: &[u8], needles: &'a [String]) -> Option<&'a str> {
    needles
        .iter()
        .find(|n| haystack.windows(n.len()).any(|w| w == n.as_bytes()))
        .map(String::as_str)
}

/// Rewrites the demo config so every connector gives up fast (for the storms).
fn fast_retries(config_path: &Path) {
    let text = std::fs::read_to_string(config_path).unwrap();
    let http = "http = { max_attempts = 3, initial_backoff_ms = 1, max_backoff_ms = 5, \
                min_retry_after_ms = 1 }";
    let text = text
        .replace(
            "[pipelines.config]\n",
            &format!("[pipelines.config]\n{http}\n"),
        )
        .replace("[syncs.config]\n", &format!("[syncs.config]\n{http}\n"));
    assert_eq!(text.matches("max_attempts = 3").count(), 6, "{text}");
    std::fs::write(config_path, text).unwrap();
}

/// What one round did: each pipeline run on its own (a connector that cannot
/// even authenticate fails its whole `run` call, shown in `errors`), then the
/// models and the syncs.
struct Round {
    outcome: RunOutcome,
    /// Errors of `run` calls that could not start a pipeline (Display, then Debug).
    errors: Vec<String>,
}

impl Round {
    /// Everything the round showed: the outcome's renderings and errors, and the run errors.
    fn shown(&self) -> Vec<(String, String)> {
        let mut out = shown(&self.outcome);
        out.extend(
            self.errors
                .iter()
                .map(|e| ("error of a run".to_string(), e.clone())),
        );
        out
    }

    /// How many streams, syncs and whole runs failed.
    fn failures(&self) -> usize {
        self.errors.len() / 2
            + self
                .outcome
                .pipelines
                .iter()
                .flat_map(|p| &p.streams)
                .filter(|s| s.error.is_some())
                .count()
            + self
                .outcome
                .syncs
                .iter()
                .filter(|s| s.error.is_some())
                .count()
    }
}

async fn round(h: &Harness) -> Round {
    let config = h.config();
    let mut outcome = RunOutcome::default();
    let mut errors = Vec::new();
    for p in &config.pipelines {
        let options = RunOptions {
            pipeline: Some(p.name.clone()),
            full_refresh: true,
        };
        match weft_runner::run(&config, &options, CancellationToken::new(), None).await {
            Ok(o) => outcome.pipelines.extend(o.pipelines),
            Err(e) => {
                errors.push(e.to_string());
                errors.push(format!("{e:?}"));
            }
        }
    }
    let synced = weft_runner::sync(&config, None, false).await.unwrap();
    outcome.models = synced.models;
    outcome.syncs = synced.syncs;
    Round { outcome, errors }
}

fn set_faults(h: &Harness, faults: &Faults) {
    for api in [
        Api::Stripe,
        Api::Zoom,
        Api::Salesforce,
        Api::Mailchimp,
        Api::Zendesk,
    ] {
        h.sandbox.control().set_faults(api, faults.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_credentials_never_leak() {
    let logs = capture_logs();
    let config = credentials();
    let needles = needles(&config);
    let h = Harness::story_with(config, "upsert", None).await;
    fast_retries(&h.config_path);
    let db = h.warehouse_path();
    let mut outputs: Vec<(String, String)> = Vec::new();

    // 1. A clean run: every pipeline and the sync authenticate with the sentinels.
    let clean = round(&h).await;
    assert!(
        clean.errors.is_empty() && clean.outcome.succeeded(),
        "{}{:?}",
        clean.outcome.render(),
        clean.errors
    );
    for api in [
        Api::Stripe,
        Api::Zoom,
        Api::Salesforce,
        Api::Mailchimp,
        Api::Zendesk,
    ] {
        assert!(h.sandbox.control().request_count(api) > 0, "{api:?} unused");
    }
    let created = clean.outcome.syncs[0].report.as_ref().unwrap().created;
    assert!(created > 0, "the sync wrote members");
    assert_eq!(h.mailchimp_members().len() as u64, created);
    outputs.extend(clean.shown());

    // 2. A 5xx storm that the retries mostly ride out (retry warnings carry reasons).
    set_faults(
        &h,
        &Faults {
            error_rate: 0.3,
            ..Faults::default()
        },
    );
    let stormy = round(&h).await;
    let retries: u64 = stormy
        .outcome
        .pipelines
        .iter()
        .flat_map(|p| &p.streams)
        .map(|s| s.retries)
        .sum();
    assert!(
        retries > 0,
        "the storm caused retries: {}",
        stormy.outcome.render()
    );
    outputs.extend(stormy.shown());

    // Every person's name changes, so the next syncs have updates to send.
    let conn = duckdb::Connection::open(&db).unwrap();
    conn.execute_batch(
        "SET autoinstall_known_extensions = false; \
         UPDATE zoom.webinar_registrants SET first_name = 'Changed'; \
         UPDATE salesforce.\"Contact\" SET \"FirstName\" = 'Changed';",
    )
    .unwrap();
    drop(conn);

    // 3. A 5xx storm that never ends: every pipeline and the sync give up.
    set_faults(
        &h,
        &Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    );
    let down = round(&h).await;
    assert!(
        down.failures() >= 4,
        "{}{:?}",
        down.outcome.render(),
        down.errors
    );
    assert!(
        down.outcome.syncs[0].error.is_some(),
        "{}",
        down.outcome.render()
    );
    outputs.extend(down.shown());

    // 4. Every API refuses the credentials (401s, token endpoints included).
    set_faults(
        &h,
        &Faults {
            bad_auth: true,
            ..Faults::default()
        },
    );
    let refused = round(&h).await;
    assert!(
        refused.failures() >= 4,
        "{}{:?}",
        refused.outcome.render(),
        refused.errors
    );
    assert!(
        refused.outcome.syncs[0].error.is_some(),
        "{}",
        refused.outcome.render()
    );
    let errors: Vec<(String, String)> = refused
        .shown()
        .into_iter()
        .filter(|(what, _)| what.starts_with("error of"))
        .collect();
    assert!(errors.iter().all(|(_, e)| e.contains("401")), "{errors:#?}");
    outputs.extend(refused.shown());
    set_faults(&h, &Faults::default());

    // Logs: captured at TRACE, and not empty (the capture works).
    let log_text = logs.text();
    assert!(
        log_text.contains("http.request") && log_text.contains("retrying request"),
        "the capture saw the HTTP layer at work ({} bytes)",
        log_text.len()
    );
    for line in log_text.lines() {
        assert!(
            leak(line.as_bytes(), &needles).is_none(),
            "a log line leaks a secret: {line:.500}"
        );
    }

    // Reports and errors.
    for (what, text) in &outputs {
        if let Some(n) = leak(text.as_bytes(), &needles) {
            panic!("{what} leaks {n:?}: {text:.2000}");
        }
    }

    // The search finds what it looks for: the secret files the test wrote hold every credential.
    let secret_files = std::fs::read_dir(h.dir.path().join("sandbox-secrets")).unwrap();
    for f in secret_files {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(leak(&bytes, &needles).is_some());
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        "weft_zoom_client",
        credentials().zoom_client_secret
    ));
    assert!(
        leak(basic.as_bytes(), &needles).is_some(),
        "a basic-auth header is caught"
    );

    // Every byte of every file weft wrote: stage parts and manifests, the
    // config, the warehouse file.
    let files = files_weft_wrote(h.dir.path());
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "parquet")),
        "staged parts are scanned: {files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("weft.toml")));
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if let Some(n) = leak(&bytes, &needles) {
            panic!("{} leaks {n:?}", f.display());
        }
    }

    // Every text column of every table, `_weft` included.
    let columns = query_rows(
        &db,
        "SELECT table_schema, table_name, column_name FROM information_schema.columns \
         WHERE data_type = 'VARCHAR' ORDER BY ALL",
    );
    assert!(
        columns
            .iter()
            .any(|c| c[0] == "_weft" && c[1] == "_weft_state"),
        "the scan covers the _weft tables: {columns:?}"
    );
    assert!(columns.iter().any(|c| c[0] == "salesforce"));
    let conn = duckdb::Connection::open(&db).unwrap();
    conn.execute_batch("SET autoinstall_known_extensions = false;")
        .unwrap();
    let mut tables: std::collections::BTreeMap<(&str, &str), Vec<&str>> = Default::default();
    for c in &columns {
        tables.entry((&c[0], &c[1])).or_default().push(&c[2]);
    }
    for ((schema, table), cols) in &tables {
        let any_leak = cols
            .iter()
            .flat_map(|c| {
                needles
                    .iter()
                    .map(move |n| format!("contains(\"{c}\", '{n}')"))
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE {any_leak}");
        let leaks: i64 = conn.query_row(&sql, [], |r| r.get(0)).unwrap();
        assert_eq!(
            leaks, 0,
            "{schema}.{table} leaks a secret in one of {cols:?}"
        );
    }
    drop(conn);
    let mut out = std::io::stderr();
    writeln!(
        out,
        "secrets: scanned {} log bytes, {} outputs, {} files, {} text columns for {} needles",
        log_text.len(),
        outputs.len(),
        files.len(),
        columns.len(),
        needles.len()
    )
    .unwrap();
}
