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
    /// Starts a sandbox and writes a config for the Stripe pipeline (DuckDB
    /// `weft.duckdb`, local stage `stage/`).
    pub async fn stripe(sandbox: SandboxConfig, extra_pipeline_toml: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        Harness::stripe_in(dir, sandbox, extra_pipeline_toml, DUCKDB_LOCAL).await
    }

    /// [`Harness::stripe`] loading through `stack` (its `[warehouse]` and
    /// `[stage]`: PostgreSQL and an S3 bucket).
    pub async fn stripe_on(
        stack: &PgStack,
        sandbox: SandboxConfig,
        extra_pipeline_toml: &str,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let target = stack.config_toml(dir.path());
        Harness::stripe_in(dir, sandbox, extra_pipeline_toml, &target).await
    }

    async fn stripe_in(
        dir: tempfile::TempDir,
        sandbox: SandboxConfig,
        extra_pipeline_toml: &str,
        target_toml: &str,
    ) -> Harness {
        let key = dir.path().join("stripe.key");
        std::fs::write(&key, &sandbox.api_key).unwrap();
        let sandbox = Sandbox::start(sandbox).await.unwrap();
        let config_path = dir.path().join("weft.toml");
        std::fs::write(
            &config_path,
            format!(
                r#"
{target_toml}

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
        let config_path = weft_runner::write_demo_config(
            dir.path(),
            &sandbox,
            &config,
            &weft_runner::DemoWarehouse::DuckDb,
            mode,
            batch_size,
        )
        .unwrap();
        Harness {
            sandbox,
            dir,
            config_path,
        }
    }

    /// [`Harness::story`] loading into `stack`'s PostgreSQL through its S3
    /// bucket: the demo's configuration with its `[warehouse]` and `[stage]`
    /// swapped.
    pub async fn story_on(stack: &PgStack, size: usize, mode: &str) -> Harness {
        let h = Harness::story(size, mode).await;
        let text = std::fs::read_to_string(&h.config_path).unwrap();
        let local =
            "[warehouse]\nkind = \"duckdb\"\npath = \"weft.duckdb\"\n\n[stage]\nurl = \"stage\"\n";
        assert!(text.contains(local), "the demo config changed shape");
        let text = text.replace(local, &stack.config_toml(h.dir.path()));
        std::fs::write(&h.config_path, text).unwrap();
        h
    }

    /// Runs the config's one pipeline (what `weft run` does) and returns its report.
    pub async fn run_one(&self) -> weft_core::RunReport {
        let mut outcome = self.run().await;
        assert_eq!(outcome.pipelines.len(), 1);
        outcome.pipelines.remove(0)
    }

    /// Runs every pipeline, then the models, then the syncs (what `weft run`
    /// does) and checks every stream and sync succeeded.
    pub async fn run_all(&self) -> weft_runner::RunOutcome {
        let outcome = self.run().await;
        assert!(outcome.succeeded(), "{}", outcome.render());
        outcome
    }

    /// `weft run` with this config and default options.
    async fn run(&self) -> weft_runner::RunOutcome {
        weft_runner::run(
            &self.config(),
            &weft_runner::RunOptions::default(),
            weft_core::CancellationToken::new(),
            None,
        )
        .await
        .unwrap()
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

/// Writes a secret `value` to `dir/name`; returns the path for a `{ file = … }` ref.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    path.display().to_string()
}

/// The `[warehouse]` and `[stage]` of the DuckDB harnesses.
const DUCKDB_LOCAL: &str = r#"
[warehouse]
kind = "duckdb"
path = "weft.duckdb"

[stage]
url = "stage"
"#;

/// A real PostgreSQL server and a real S3 server (SeaweedFS) on loopback, a
/// fresh database and bucket prefix per test, and read-back of what landed.
pub struct PgStack {
    /// The PostgreSQL server.
    pub pg: weft_testsvc::Postgres,
    /// The S3 server.
    pub s3: weft_testsvc::SeaweedS3,
    /// The database the config loads into.
    pub db: String,
    /// The stage URL (`s3://bucket/db`).
    pub stage_url: String,
}

impl PgStack {
    /// Starts both servers and creates database `db` (also the stage prefix).
    pub fn start(db: &str) -> PgStack {
        let pg = weft_testsvc::Postgres::start().unwrap();
        let s3 = weft_testsvc::SeaweedS3::start().unwrap();
        PgStack::on(pg, s3, db)
    }

    /// A new database `db` (and stage prefix) on running servers.
    pub fn on(pg: weft_testsvc::Postgres, s3: weft_testsvc::SeaweedS3, db: &str) -> PgStack {
        pg.create_database(db).unwrap();
        let stage_url = format!("{}/{db}", s3.url());
        PgStack {
            pg,
            s3,
            db: db.to_string(),
            stage_url,
        }
    }

    /// Switches to a new database `db` on the same server, loading from the
    /// same stage (a replay target).
    pub fn use_database_keeping_stage(&mut self, db: &str) {
        self.pg.create_database(db).unwrap();
        self.db = db.to_string();
    }

    /// Switches to a new database `db` (and stage prefix) on the same servers.
    pub fn use_database(&mut self, db: &str) {
        self.pg.create_database(db).unwrap();
        self.stage_url = format!("{}/{db}", self.s3.url());
        self.db = db.to_string();
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        let url = self.pg.url();
        let server = url
            .rsplit_once('/')
            .map_or(url.as_str(), |(server, _)| server);
        format!("{server}/{}", self.db)
    }

    /// `[warehouse]` (kind postgres) and `[stage]` (the bucket) tables, their
    /// secrets written as files into `dir`.
    pub fn config_toml(&self, dir: &Path) -> String {
        let url = secret_file(dir, "pg.url", &self.url());
        let key = secret_file(dir, "s3.key", self.s3.access_key_id());
        let secret_key = secret_file(dir, "s3.secret", self.s3.secret_access_key());
        format!(
            r#"
[warehouse]
kind = "postgres"
url = {{ file = "{url}" }}

[stage]
url = "{stage}"
endpoint = "{endpoint}"
region = "{region}"
allow_http = true
access_key_id = {{ file = "{key}" }}
secret_access_key = {{ file = "{secret_key}" }}
"#,
            stage = self.stage_url,
            endpoint = self.s3.endpoint(),
            region = self.s3.region(),
        )
    }

    /// Asserts `table` holds `expected` rows, each id once.
    pub fn assert_exact(&self, table: &str, expected: i64) {
        assert_eq!(
            self.i64(&format!("SELECT count(*) FROM {table}")),
            expected,
            "{table}: rows"
        );
        assert_eq!(
            self.i64(&format!("SELECT count(DISTINCT id) FROM {table}")),
            expected,
            "{table}: distinct ids"
        );
    }

    /// How many loads are committed (0 before the first).
    pub fn committed_loads(&self) -> i64 {
        let exists = "SELECT count(*) FROM information_schema.tables \
                      WHERE table_schema = '_weft' AND table_name = '_weft_loads'";
        if self.i64(exists) == 0 {
            return 0;
        }
        self.i64("SELECT count(*) FROM _weft._weft_loads")
    }

    /// Runs one query returning a single i64.
    pub fn i64(&self, sql: &str) -> i64 {
        let out = self.pg.psql(&self.db, sql).unwrap();
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{sql}: {out:?}: {e}"))
    }

    /// Runs one query; each row's columns joined by `|`, NULL as empty.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        let out = self.pg.psql(&self.db, sql).unwrap();
        out.lines().map(str::to_string).collect()
    }

    /// The stage, opened with the stack's credentials.
    pub fn stage(&self) -> weft_stage::Stage {
        let options = weft_stage::S3Options {
            endpoint: Some(self.s3.endpoint()),
            region: Some(self.s3.region().to_string()),
            access_key_id: Some(self.s3.access_key_id().to_string().into()),
            secret_access_key: Some(self.s3.secret_access_key().to_string().into()),
            allow_http: Some(true),
            multipart_threshold_bytes: None,
        };
        weft_stage::Stage::s3(&self.stage_url, &options).unwrap()
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
