//! Shared helpers for weft's workspace end-to-end tests: a sandbox plus a
//! config written into a temp dir, and read-back of what landed in DuckDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use weft_sandbox::{Api, Sandbox, SandboxConfig};

/// A sandbox and a `weft.toml` pointing at it, in a temp dir.
pub struct Harness {
    /// The running sandbox.
    pub sandbox: Sandbox,
    /// The temp dir (kept alive for the harness' lifetime).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config_path: PathBuf,
}

impl Harness {
    /// Starts a sandbox and writes a config for the Stripe pipeline.
    pub async fn stripe(sandbox: SandboxConfig, extra_pipeline_toml: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("stripe.key");
        std::fs::write(&key, &sandbox.api_key).unwrap();
        let sandbox = Sandbox::start(sandbox).await.unwrap();
        let config_path = dir.path().join("weft.toml");
        std::fs::write(
            &config_path,
            format!(
                r#"
[warehouse]
kind = "duckdb"
path = "weft.duckdb"

[stage]
url = "stage"

[[pipelines]]
name = "stripe"
connector = "stripe"
{extra_pipeline_toml}

[pipelines.config]
base_url = "{}"
api_key = {{ file = "{}" }}
"#,
                sandbox.base_url(Api::Stripe),
                key.display()
            ),
        )
        .unwrap();
        Harness {
            sandbox,
            dir,
            config_path,
        }
    }

    /// Starts a sandbox of `size` people and writes the `weft demo` story's
    /// config (Zoom + Salesforce + Stripe into DuckDB, the dedupe model
    /// `models/demo/01_people.sql`, a sync of `models.people` to the Mailchimp
    /// audience in `mode`). The sandbox keeps running, so its state (and the
    /// warehouse's) persists across runs of the same harness.
    pub async fn story(size: usize, mode: &str) -> Harness {
        Harness::story_batched(size, mode, None).await
    }

    /// [`Harness::story`] with the sync's `batch_size` set (records per API call).
    pub async fn story_batched(size: usize, mode: &str, batch_size: Option<usize>) -> Harness {
        let config = SandboxConfig {
            size,
            ..SandboxConfig::default()
        };
        Harness::story_with(config, mode, batch_size).await
    }

    /// [`Harness::story_batched`] over a sandbox built from `config` (its
    /// credentials become the config's secrets).
    pub async fn story_with(
        config: SandboxConfig,
        mode: &str,
        batch_size: Option<usize>,
    ) -> Harness {
        let mode: weft_core::SyncWriteMode =
            serde_json::from_value(serde_json::Value::String(mode.to_string())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::start(config.clone()).await.unwrap();
        // Exactly the configuration `weft demo` writes.
        let config_path =
            weft_runner::write_demo_config(dir.path(), &sandbox, &config, mode, batch_size)
                .unwrap();
        Harness {
            sandbox,
            dir,
            config_path,
        }
    }

    /// Runs every pipeline, then the models, then the syncs (what `weft run`
    /// does) and checks every stream and sync succeeded.
    pub async fn run_all(&self) -> weft_runner::RunOutcome {
        let outcome = weft_runner::run(
            &self.config(),
            &weft_runner::RunOptions::default(),
            weft_core::CancellationToken::new(),
            None,
        )
        .await
        .unwrap();
        assert!(outcome.succeeded(), "{}", outcome.render());
        outcome
    }

    /// Every member of the sandbox's Mailchimp audience, as the API renders them.
    pub fn mailchimp_members(&self) -> Vec<serde_json::Value> {
        let control = self.sandbox.control();
        control.mailchimp_members(&control.mailchimp_list_id())
    }

    /// The parsed config.
    pub fn config(&self) -> weft_runner::WeftConfig {
        weft_runner::WeftConfig::load(&self.config_path).unwrap()
    }

    /// The DuckDB file.
    pub fn warehouse_path(&self) -> PathBuf {
        self.dir.path().join("weft.duckdb")
    }
}

/// Opens the DuckDB file without extension auto-install (no network, ever).
fn open(db: &Path) -> duckdb::Connection {
    let conn = duckdb::Connection::open(db).unwrap();
    conn.execute_batch(
        "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;",
    )
    .unwrap();
    conn
}

/// The newest value of a TIMESTAMPTZ column as Unix seconds (computed without
/// DuckDB's ICU extension, which is not bundled).
pub fn max_unix_seconds(db: &Path, table: &str, column: &str) -> i64 {
    let text = query_strings(db, &format!("SELECT max({column})::VARCHAR FROM {table}"));
    let text = format!("{}00", text[0]);
    chrono::DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%z")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp()
}

/// Runs one SQL query returning a single i64.
pub fn query_i64(db: &Path, sql: &str) -> i64 {
    let conn = open(db);
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs one SQL query returning every row, each column cast to text by the
/// caller (`SELECT a::VARCHAR, ...`); NULL reads as an empty string.
#[allow(clippy::let_and_return)] // the rows borrow `stmt`: they must be collected before it drops
pub fn query_rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = open(db);
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows = stmt
        .query_map([], |r| {
            let n = r.as_ref().column_count();
            (0..n)
                .map(|i| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.unwrap())
        .collect();
    rows
}

/// Runs one SQL query returning the first column of every row as text.
#[allow(clippy::let_and_return)] // the rows borrow `stmt`: they must be collected before it drops
pub fn query_strings(db: &Path, sql: &str) -> Vec<String> {
    let conn = open(db);
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .map(|r| r.unwrap().unwrap_or_default())
        .collect();
    rows
}
