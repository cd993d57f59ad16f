//! The embedded DuckDB warehouse.
//!
//! A commit streams the staged Parquet parts (read in Rust, one batch at a
//! time) through DuckDB's Arrow appender into a TEMP staging table (memory,
//! spilled to DuckDB's temp directory past `memory_limit`; never compressed
//! into the database file), then applies merge / append / replace to
//! `"{pipeline}"."{stream}"` and records the load, its rejects and the state,
//! all inside one transaction. The staging table is dropped in that
//! transaction, and a rollback (or a crash) removes it too.

mod quality;
mod sql;
mod sync;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use ::duckdb::types::ValueRef;
use ::duckdb::{Connection, params};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, new_null_array};
use arrow_schema::{Field, Fields, Schema};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use weft_core::{LoadReceipt, WriteDisposition};
use weft_stage::{LocalLoad, Manifest, Stage, StageError, read_local_part, read_local_rejects};

use crate::sql::{
    HistoryLoad, column_list, history_apply, history_columns, ident, merge_delete,
    not_still_loaded, parse_state, table,
};
use crate::{
    LoadRow, LoadSpec, Model, ModelRun, QualityRow, QueryResult, StateRow, Warehouse,
    WarehouseError,
};
use sql::column_type;

const NAME: &str = "duckdb";
/// Name of the connection's temporary staging table (inside the commit transaction only).
const STAGING: &str = "_weft_staging";
/// Catalog and schema of temporary tables.
const TEMP: (&str, &str) = ("temp", "main");
/// The staging table, qualified.
const STAGED: &str = "temp.main._weft_staging";
/// Column holding the staged file order of each row.
const SEQ: &str = "__weft_seq";

const INIT: &str = r#"
SET autoinstall_known_extensions = false;
CREATE SCHEMA IF NOT EXISTS _weft;
CREATE TABLE IF NOT EXISTS _weft._weft_loads (
    load_id VARCHAR PRIMARY KEY, pipeline VARCHAR NOT NULL, stream VARCHAR NOT NULL,
    "rows" BIGINT NOT NULL, "files" BIGINT NOT NULL, "bytes" BIGINT NOT NULL,
    rejects BIGINT NOT NULL, started_at TIMESTAMPTZ NOT NULL, committed_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS _weft._weft_state (
    pipeline VARCHAR NOT NULL, stream VARCHAR NOT NULL, state VARCHAR NOT NULL,
    load_id VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS _weft._weft_rejects (
    pipeline VARCHAR NOT NULL, stream VARCHAR NOT NULL, load_id VARCHAR NOT NULL,
    record VARCHAR NOT NULL, reason VARCHAR NOT NULL, field VARCHAR,
    row_loaded BOOLEAN NOT NULL, rejected_at TIMESTAMPTZ NOT NULL);
"#;

/// The catalog a database file is attached as (see [`DuckDbWarehouse::open`]).
const FILE_CATALOG: &str = "weft";

/// Rows per row group in a database file weft opens (DuckDB's default is 122,880).
///
/// Each automatic checkpoint rewrites a table's last, partly filled row
/// group, so a loaded table costs memory and time in proportion to this
/// size; 32,768 measured -25% peak memory and -20% time for 1M rows.
const ROW_GROUP_ROWS: u64 = 32_768;

/// DuckDB as a [`Warehouse`]: one connection behind a mutex.
#[derive(Debug, Clone)]
pub struct DuckDbWarehouse {
    conn: Arc<Mutex<Connection>>,
    json_type: bool,
    /// The attached file's catalog, which every connection must `USE`.
    catalog: Option<&'static str>,
}

fn db(step: &'static str, target: &str) -> impl FnOnce(::duckdb::Error) -> WarehouseError {
    let target = target.to_string();
    move |source| WarehouseError::DuckDb {
        step,
        target,
        source,
    }
}

/// Whether DuckDB's `message` says another process holds the file's lock,
/// and if so that process's id, when it can be read.
///
/// DuckDB says `IO Error: Could not set lock on file "F": Conflicting lock
/// is held in EXE (PID N) by user U. See also ...` (`in PID N` when it
/// cannot name the executable). Its other lock failures (no locks on this
/// file system, a lock held by this very process) are not this.
fn lock_conflict(message: &str) -> Option<Option<u32>> {
    const HELD: &str = "Conflicting lock is held in ";
    const PID: &str = "PID ";
    if !message.contains("Could not set lock on file") {
        return None;
    }
    let holder = message.get(message.find(HELD)? + HELD.len()..)?;
    // The last `PID `: the executable's path comes before it.
    let pid = holder.rfind(PID).and_then(|at| {
        let rest = holder.get(at + PID.len()..)?;
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest.get(..end)?.parse().ok()
    });
    Some(pid)
}

impl DuckDbWarehouse {
    /// Opens (or creates) a DuckDB database file and its `_weft` tables.
    ///
    /// The file is attached with 32,768 rows per row group (DuckDB's default
    /// is 122,880; smaller groups make each automatic checkpoint cheaper); it
    /// stays an ordinary DuckDB file that any DuckDB client opens. Work beyond
    /// the memory limit spills to `<path>.tmp`, as DuckDB's own default.
    ///
    /// DuckDB lets one process open a file: when another holds it, this
    /// fails with [`WarehouseError::InUse`].
    pub fn open(path: &Path) -> Result<Self, WarehouseError> {
        let shown = path.display().to_string();
        let conn = Connection::open_in_memory().map_err(db("open", &shown))?;
        let file = path.to_str().ok_or_else(|| WarehouseError::InvalidName {
            what: "database path",
            name: shown.clone(),
            reason: "expected a UTF-8 path".to_string(),
        })?;
        // Spill next to the file, as DuckDB does for a database it opens
        // itself (an in-memory connection would spill into `./.tmp`).
        let quoted = file.replace('\'', "''");
        conn.execute_batch(&format!(
            "ATTACH '{quoted}' AS {FILE_CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_ROWS}); \
             USE {FILE_CATALOG}; SET temp_directory = '{quoted}.tmp';"
        ))
        .map_err(|source| match lock_conflict(&source.to_string()) {
            Some(pid) => WarehouseError::InUse {
                path: path.to_path_buf(),
                pid,
            },
            None => db("open", &shown)(source),
        })?;
        Self::init(conn, &shown, Some(FILE_CATALOG))
    }

    /// An in-memory database (tests, dry runs).
    pub fn open_in_memory() -> Result<Self, WarehouseError> {
        Self::init(
            Connection::open_in_memory().map_err(db("open", ":memory:"))?,
            ":memory:",
            None,
        )
    }

    fn init(
        conn: Connection,
        shown: &str,
        catalog: Option<&'static str>,
    ) -> Result<Self, WarehouseError> {
        conn.execute_batch(INIT)
            .map_err(db("create _weft tables", shown))?;
        conn.execute_batch(quality::CREATE)
            .map_err(db("create _weft tables", shown))?;
        let json_type = conn.execute_batch("SELECT '1'::JSON").is_ok();
        Ok(DuckDbWarehouse {
            conn: Arc::new(Mutex::new(conn)),
            json_type,
            catalog,
        })
    }

    /// Sets the threads DuckDB runs a query on (`SET threads`).
    ///
    /// One thread suits loading: the pipeline extracts on other cores while a
    /// load commits, and a multi-threaded DuckDB spins waiting for its tasks.
    pub fn set_threads(&self, threads: u32) -> Result<(), WarehouseError> {
        self.set(
            "threads",
            &threads.to_string(),
            threads > 0,
            "at least one thread",
        )
    }

    /// Caps DuckDB's memory (its buffer pool caches table data up to this,
    /// then spills to the database file / temp directory), e.g. `"256MB"`.
    pub fn set_memory_limit(&self, limit: &str) -> Result<(), WarehouseError> {
        let valid = !limit.is_empty()
            && limit
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b' ');
        self.set(
            "memory_limit",
            limit,
            valid,
            "a size such as `512MB` or `2GB`",
        )
    }

    /// `SET setting = 'value'` when `valid` (checked by the caller, so the
    /// value is safe to quote), else an error saying the `expected` form.
    fn set(
        &self,
        setting: &'static str,
        value: &str,
        valid: bool,
        expected: &str,
    ) -> Result<(), WarehouseError> {
        if !valid {
            return Err(WarehouseError::InvalidName {
                what: setting,
                name: value.to_string(),
                reason: format!("expected {expected}"),
            });
        }
        self.lock()?
            .execute_batch(&format!("SET {setting} = '{value}'"))
            .map_err(db("set", setting))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, WarehouseError> {
        self.conn
            .lock()
            .map_err(|_| WarehouseError::Poisoned { warehouse: NAME })
    }

    /// A new connection to the same database (for long reads that must not
    /// hold the shared connection's lock).
    pub(crate) fn reader(&self) -> Result<Connection, WarehouseError> {
        let conn = self
            .lock()?
            .try_clone()
            .map_err(db("open reader connection", NAME))?;
        if let Some(catalog) = self.catalog {
            conn.execute_batch(&format!("USE {catalog}"))
                .map_err(db("open reader connection", NAME))?;
        }
        Ok(conn)
    }
}

/// The blocking operations behind [`Warehouse`]: DuckDB is in-process, so
/// each trait method runs one of these on a blocking thread.
impl DuckDbWarehouse {
    /// Commits a staged load whose files are on local disk (the blocking half
    /// of [`Warehouse::commit_load`], which fetches them from the stage).
    pub fn commit_local(
        &self,
        manifest: &Manifest,
        files: &LocalLoad,
        spec: &LoadSpec,
    ) -> Result<LoadReceipt, WarehouseError> {
        let conn = self.lock()?;
        let target = format!(
            "load {} of {}.{}",
            manifest.load_id, spec.pipeline, spec.stream
        );
        conn.execute_batch("BEGIN TRANSACTION")
            .map_err(db("begin", &target))?;
        let load = Load {
            conn: &conn,
            json_type: self.json_type,
            manifest,
            spec,
            table: table(&spec.pipeline, &spec.stream),
            shown: format!("{}.{}", spec.pipeline, spec.stream),
        };
        let result = load.run(files);
        let end = match &result {
            Ok(r) if !r.already_committed => {
                conn.execute_batch("COMMIT").map_err(db("commit", &target))
            }
            _ => conn
                .execute_batch("ROLLBACK")
                .map_err(db("rollback", &target)),
        };
        match (result, end) {
            (Ok(receipt), Ok(())) => {
                tracing::info!(
                    load_id = %receipt.load_id,
                    table = %load.shown,
                    rows = receipt.rows,
                    already_committed = receipt.already_committed,
                    "load committed"
                );
                Ok(receipt)
            }
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Blocking [`Warehouse::state`].
    pub fn state(
        &self,
        pipeline: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, WarehouseError> {
        let conn = self.lock()?;
        let shown = format!("_weft_state {pipeline}.{stream}");
        let mut stmt = conn
            .prepare("SELECT state FROM _weft._weft_state WHERE pipeline = ? AND stream = ?")
            .map_err(db("read state", &shown))?;
        let mut rows = stmt
            .query(params![pipeline, stream])
            .map_err(db("read state", &shown))?;
        let Some(row) = rows.next().map_err(db("read state", &shown))? else {
            return Ok(None);
        };
        let text: String = row.get(0).map_err(db("read state", &shown))?;
        let value = parse_state(pipeline, stream, &text)?;
        Ok((!value.is_null()).then_some(value))
    }

    /// Blocking [`Warehouse::reset_state`].
    pub fn reset_state(&self, pipeline: &str, stream: Option<&str>) -> Result<u64, WarehouseError> {
        let conn = self.lock()?;
        let shown = format!("_weft_state {pipeline}.{}", stream.unwrap_or("*"));
        let n = match stream {
            Some(s) => conn.execute(
                "DELETE FROM _weft._weft_state WHERE pipeline = ? AND stream = ?",
                params![pipeline, s],
            ),
            None => conn.execute(
                "DELETE FROM _weft._weft_state WHERE pipeline = ?",
                params![pipeline],
            ),
        }
        .map_err(db("reset state", &shown))?;
        Ok(n as u64)
    }

    /// Blocking [`Warehouse::list_state`].
    pub fn list_state(&self) -> Result<Vec<StateRow>, WarehouseError> {
        let conn = self.lock()?;
        let step = db_step("list state");
        let mut stmt = conn
            .prepare(
                "SELECT pipeline, stream, state, load_id, epoch_us(updated_at::TIMESTAMP) \
                 FROM _weft._weft_state ORDER BY pipeline, stream",
            )
            .map_err(step)?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_step("list state"))?;
        raw.into_iter()
            .map(|(pipeline, stream, state, load_id, at)| {
                Ok(StateRow {
                    state: parse_state(&pipeline, &stream, &state)?,
                    pipeline,
                    stream,
                    load_id,
                    updated_at: micros(at),
                })
            })
            .collect()
    }

    /// Blocking [`Warehouse::loads`].
    pub fn loads(&self, pipeline: &str) -> Result<Vec<LoadRow>, WarehouseError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare(
                "SELECT load_id, pipeline, stream, \"rows\", \"files\", \"bytes\", rejects, \
                 epoch_us(started_at::TIMESTAMP), epoch_us(committed_at::TIMESTAMP) \
                 FROM _weft._weft_loads WHERE pipeline = ? ORDER BY committed_at, load_id",
            )
            .map_err(db("list loads", pipeline))?;
        stmt.query_map(params![pipeline], |r| {
            Ok(LoadRow {
                load_id: r.get(0)?,
                pipeline: r.get(1)?,
                stream: r.get(2)?,
                rows: r.get::<_, i64>(3)?.max(0) as u64,
                files: r.get::<_, i64>(4)?.max(0) as u64,
                bytes: r.get::<_, i64>(5)?.max(0) as u64,
                rejects: r.get::<_, i64>(6)?.max(0) as u64,
                started_at: micros(r.get(7)?),
                committed_at: micros(r.get(8)?),
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db("list loads", pipeline))
    }

    /// Blocking [`Warehouse::run_models`].
    pub fn run_models(&self, models: &[Model]) -> Result<Vec<ModelRun>, WarehouseError> {
        let conn = self.lock()?;
        crate::models::run_duckdb(&conn, models)
    }

    /// Blocking [`Warehouse::query_rows`].
    pub fn query_rows(&self, sql: &str) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError> {
        self.query(sql).map(|r| r.rows)
    }

    /// Blocking [`Warehouse::query`].
    pub fn query(&self, sql: &str) -> Result<QueryResult, WarehouseError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(sql).map_err(db("query", "query"))?;
        let mut rows = stmt.query([]).map_err(db("query", "query"))?;
        let columns = rows.as_ref().map_or_else(Vec::new, |s| s.column_names());
        let width = columns.len();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db("query", "query"))? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(json_value(row.get_ref(i).map_err(db("query", "query"))?));
            }
            out.push(values);
        }
        Ok(QueryResult { columns, rows: out })
    }
}

/// Runs `op` on a clone of the warehouse on a blocking thread.
async fn blocking<T, F>(wh: &DuckDbWarehouse, what: String, op: F) -> Result<T, WarehouseError>
where
    T: Send + 'static,
    F: FnOnce(&DuckDbWarehouse) -> Result<T, WarehouseError> + Send + 'static,
{
    let wh = wh.clone();
    tokio::task::spawn_blocking(move || op(&wh))
        .await
        .map_err(|source| WarehouseError::Task {
            target: what,
            source,
        })?
}

#[async_trait]
impl Warehouse for DuckDbWarehouse {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Fetches the load's files to local disk (a remote stage's into a
    /// temporary directory, removed afterwards; a local stage's are read in
    /// place), then commits them on a blocking thread.
    async fn commit_load(
        &self,
        stage: &Stage,
        manifest: &Manifest,
        spec: &LoadSpec,
    ) -> Result<LoadReceipt, WarehouseError> {
        let temp = if stage.local_dir().is_some() {
            None
        } else {
            Some(
                tempfile::Builder::new()
                    .prefix("weft-load-")
                    .tempdir()
                    .map_err(|source| WarehouseError::TempDir {
                        load_id: manifest.load_id.clone(),
                        source,
                    })?,
            )
        };
        let dir = temp
            .as_ref()
            .map_or_else(std::env::temp_dir, |t| t.path().to_path_buf());
        let files = stage.fetch_to_local(manifest, &dir).await?;
        let what = format!(
            "load {} of {}/{}",
            manifest.load_id, spec.pipeline, spec.stream
        );
        let (manifest, spec) = (manifest.clone(), spec.clone());
        let receipt = blocking(self, what, move |wh| {
            wh.commit_local(&manifest, &files, &spec)
        })
        .await;
        drop(temp);
        receipt
    }

    async fn state(
        &self,
        pipeline: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, WarehouseError> {
        let (p, s) = (pipeline.to_string(), stream.to_string());
        let what = format!("state of {pipeline}/{stream}");
        blocking(self, what, move |wh| wh.state(&p, &s)).await
    }

    async fn reset_state(
        &self,
        pipeline: &str,
        stream: Option<&str>,
    ) -> Result<u64, WarehouseError> {
        let (p, s) = (pipeline.to_string(), stream.map(str::to_string));
        let what = format!("reset state of {pipeline}");
        blocking(self, what, move |wh| wh.reset_state(&p, s.as_deref())).await
    }

    async fn list_state(&self) -> Result<Vec<StateRow>, WarehouseError> {
        blocking(self, "list state".into(), |wh| wh.list_state()).await
    }

    async fn loads(&self, pipeline: &str) -> Result<Vec<LoadRow>, WarehouseError> {
        let p = pipeline.to_string();
        let what = format!("loads of {pipeline}");
        blocking(self, what, move |wh| wh.loads(&p)).await
    }

    async fn loads_since(
        &self,
        pipeline: &str,
        from_load_id: &str,
    ) -> Result<Vec<LoadRow>, WarehouseError> {
        let (p, from) = (pipeline.to_string(), from_load_id.to_string());
        let what = format!("loads of {pipeline}");
        blocking(self, what, move |wh| wh.loads_since(&p, &from)).await
    }

    async fn record_quality(&self, rows: &[QualityRow]) -> Result<(), WarehouseError> {
        let rows = rows.to_vec();
        blocking(self, "record quality".into(), move |wh| {
            wh.record_quality(&rows)
        })
        .await
    }

    async fn quality(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<QualityRow>, WarehouseError> {
        let p = pipeline.to_string();
        let what = format!("quality of {pipeline}");
        blocking(self, what, move |wh| wh.quality(&p, limit)).await
    }

    async fn run_models(&self, models: &[Model]) -> Result<Vec<ModelRun>, WarehouseError> {
        let models = models.to_vec();
        blocking(self, "run models".into(), move |wh| wh.run_models(&models)).await
    }

    async fn query(&self, sql: &str) -> Result<QueryResult, WarehouseError> {
        let sql = sql.to_string();
        blocking(self, "query".into(), move |wh| wh.query(&sql)).await
    }

    fn shared_by_processes(&self) -> bool {
        // One process opens the file at a time.
        false
    }

    fn clock_ms_sql(&self) -> &'static str {
        // EXTRACT on a TIMESTAMPTZ needs the ICU extension; epoch_ms does not.
        "epoch_ms(CURRENT_TIMESTAMP)"
    }
}

fn db_step(step: &'static str) -> impl FnOnce(::duckdb::Error) -> WarehouseError {
    db(step, "_weft._weft_state")
}

fn micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A DuckDB value as JSON: numbers, text, booleans; timestamps as RFC 3339.
fn json_value(v: ValueRef<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(b),
        ValueRef::TinyInt(i) => i.into(),
        ValueRef::SmallInt(i) => i.into(),
        ValueRef::Int(i) => i.into(),
        ValueRef::BigInt(i) => i.into(),
        ValueRef::UTinyInt(i) => i.into(),
        ValueRef::USmallInt(i) => i.into(),
        ValueRef::UInt(i) => i.into(),
        ValueRef::UBigInt(i) => i.into(),
        ValueRef::HugeInt(i) => {
            i64::try_from(i).map_or_else(|_| Value::String(i.to_string()), Value::from)
        }
        ValueRef::Float(f) => f64::from(f).into(),
        ValueRef::Double(f) => f.into(),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Timestamp(unit, t) => Value::String(micros(unit.to_micros(t)).to_rfc3339()),
        ValueRef::Date32(d) => Value::String(
            chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                .map_or_else(|| d.to_string(), |d| d.to_string()),
        ),
        other => Value::String(format!("{other:?}")),
    }
}

/// One commit in progress (inside the open transaction).
struct Load<'a> {
    conn: &'a Connection,
    json_type: bool,
    manifest: &'a Manifest,
    spec: &'a LoadSpec,
    /// Quoted `"pipeline"."stream"`.
    table: String,
    /// `pipeline.stream`, for errors and logs.
    shown: String,
}

impl Load<'_> {
    fn exec(&self, step: &'static str, sql: &str) -> Result<usize, WarehouseError> {
        self.conn.execute(sql, []).map_err(db(step, &self.shown))
    }

    fn run(&self, files: &LocalLoad) -> Result<LoadReceipt, WarehouseError> {
        let m = self.manifest;
        let mut receipt = LoadReceipt {
            load_id: m.load_id.clone(),
            rows: 0,
            rejects: m.rejects,
            files: m.files.len() as u64,
            bytes: m.bytes(),
            already_committed: false,
        };
        if let Some(previous) = self.previous()? {
            receipt.rows = previous;
            receipt.already_committed = true;
            return Ok(receipt);
        }
        self.exec(
            "create schema",
            &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&self.spec.pipeline)),
        )?;
        let fields = m.schema.fields();
        if !fields.is_empty() {
            self.ensure_table(fields)?;
        }
        if !files.parts.is_empty() && !fields.is_empty() {
            self.stage_rows(fields, &files.parts)?;
            receipt.rows = self.apply(fields)?;
            self.exec("drop staging", &format!("DROP TABLE {STAGED}"))?;
        } else if self.spec.disposition == WriteDisposition::Replace && self.table_exists()? {
            self.exec("replace", &format!("DELETE FROM {}", self.table))?;
        }
        if let Some(path) = &files.rejects {
            self.insert_rejects(path)?;
        }
        self.record(receipt.rows)?;
        Ok(receipt)
    }

    /// Rows of this load when it was committed before.
    fn previous(&self) -> Result<Option<u64>, WarehouseError> {
        let mut stmt = self
            .conn
            .prepare("SELECT \"rows\" FROM _weft._weft_loads WHERE load_id = ?")
            .map_err(db("check load", &self.shown))?;
        let mut rows = stmt
            .query(params![self.manifest.load_id])
            .map_err(db("check load", &self.shown))?;
        match rows.next().map_err(db("check load", &self.shown))? {
            Some(row) => Ok(Some(
                row.get::<_, i64>(0)
                    .map_err(db("check load", &self.shown))?
                    .max(0) as u64,
            )),
            None => Ok(None),
        }
    }

    /// Lower-cased names of the target table's columns (empty when it does not exist).
    fn columns(&self) -> Result<Vec<String>, WarehouseError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT lower(column_name) FROM information_schema.columns \
                 WHERE table_catalog = current_database() AND table_schema = ? \
                 AND table_name = ? ORDER BY ordinal_position",
            )
            .map_err(db("read columns", &self.shown))?;
        stmt.query_map(params![self.spec.pipeline, self.spec.stream], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(db("read columns", &self.shown))
    }

    fn table_exists(&self) -> Result<bool, WarehouseError> {
        Ok(!self.columns()?.is_empty())
    }

    /// Creates the target table, or adds the manifest's new columns (nullable).
    fn ensure_table(&self, fields: &Fields) -> Result<(), WarehouseError> {
        let existing = self.columns()?;
        if existing.is_empty() {
            let cols = fields
                .iter()
                .map(|f| {
                    Ok(format!(
                        "{} {}",
                        ident(f.name()),
                        column_type(f, self.json_type, &self.shown)?
                    ))
                })
                .collect::<Result<Vec<_>, WarehouseError>>()?;
            self.exec(
                "create table",
                &format!("CREATE TABLE {} ({})", self.table, cols.join(", ")),
            )?;
            return self.ensure_history_columns();
        }
        for f in fields {
            if existing.contains(&f.name().to_lowercase()) {
                continue;
            }
            let ty = column_type(f, self.json_type, &self.shown)?;
            tracing::info!(table = %self.shown, column = %f.name(), %ty, "adding column");
            self.exec(
                "add column",
                &format!(
                    "ALTER TABLE {} ADD COLUMN {} {ty}",
                    self.table,
                    ident(f.name())
                ),
            )?;
        }
        self.ensure_history_columns()
    }

    /// A `history` table's version columns, added when missing.
    fn ensure_history_columns(&self) -> Result<(), WarehouseError> {
        if self.spec.disposition == WriteDisposition::History {
            for sql in history_columns(&self.table) {
                self.exec("add version columns", &sql)?;
            }
        }
        Ok(())
    }

    /// Streams every part file into the staging table, numbering rows in file order.
    fn stage_rows(
        &self,
        fields: &Fields,
        parts: &[std::path::PathBuf],
    ) -> Result<(), WarehouseError> {
        let mut cols = fields
            .iter()
            .map(|f| {
                Ok(format!(
                    "{} {}",
                    ident(f.name()),
                    column_type(f, false, &self.shown)?
                ))
            })
            .collect::<Result<Vec<_>, WarehouseError>>()?;
        cols.push(format!("{} BIGINT", ident(SEQ)));
        self.exec(
            "create staging",
            &format!(
                "CREATE OR REPLACE TEMP TABLE {STAGED} ({})",
                cols.join(", ")
            ),
        )?;
        let mut aligned: Vec<Field> = fields
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        aligned.push(Field::new(SEQ, arrow_schema::DataType::Int64, false));
        let schema = Arc::new(Schema::new(aligned));
        let mut appender = self
            .conn
            .appender_to_catalog_and_db(STAGING, TEMP.0, TEMP.1)
            .map_err(db("stage rows", &self.shown))?;
        let mut seq = 0i64;
        for part in parts {
            for batch in read_local_part(part)? {
                let batch = batch?;
                let n = batch.num_rows();
                let mut columns: Vec<ArrayRef> = fields
                    .iter()
                    .map(|f| {
                        batch
                            .column_by_name(f.name())
                            .cloned()
                            .unwrap_or_else(|| new_null_array(f.data_type(), n))
                    })
                    .collect();
                columns.push(Arc::new(Int64Array::from_iter_values(seq..seq + n as i64)));
                seq += n as i64;
                let row = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|source| {
                    StageError::Arrow {
                        path: part.display().to_string(),
                        source,
                    }
                })?;
                appender
                    .append_record_batch(row)
                    .map_err(db("stage rows", &self.shown))?;
            }
        }
        appender.flush().map_err(db("stage rows", &self.shown))?;
        Ok(())
    }

    /// Applies the staged rows to the target table; returns the rows inserted.
    ///
    /// A merge keeps, per key (NULL keys match NULL keys), the staged row with
    /// the greatest cursor (NULL cursors last; on a tie the last staged row).
    /// When a loaded row of that key has a greater cursor the staged row
    /// loses; otherwise it replaces every loaded row of its key.
    fn apply(&self, fields: &Fields) -> Result<u64, WarehouseError> {
        let names = column_list(fields.iter().map(|f| f.name().as_str()));
        let seq = ident(SEQ);
        let keys = &self.spec.primary_key;
        if self.spec.disposition == WriteDisposition::History {
            return self.apply_history(fields);
        }
        let merge = self.spec.disposition == WriteDisposition::Merge && !keys.is_empty();
        if !merge {
            if self.spec.disposition == WriteDisposition::Replace {
                self.exec("replace", &format!("DELETE FROM {}", self.table))?;
            }
            let n = self.exec(
                "insert",
                &format!(
                    "INSERT INTO {} ({names}) SELECT {names} FROM {STAGED}",
                    self.table
                ),
            )?;
            return Ok(n as u64);
        }
        for k in keys {
            self.require(fields, "primary key", k)?;
        }
        let cursor = self.spec.cursor_field.as_deref();
        if let Some(c) = cursor {
            self.require(fields, "cursor", c)?;
        }
        let key_cols = column_list(keys.iter().map(String::as_str));
        // Into an empty table every staged key is new: nothing to replace.
        let loaded = self.has_rows()?;
        if loaded {
            self.exec(
                "merge: delete",
                &merge_delete(&self.table, STAGED, keys, cursor, false),
            )?;
        }
        // A key still loaded after the delete has a newer row: its staged rows lose.
        let not_loaded = if loaded && cursor.is_some() {
            not_still_loaded(&self.table, keys, false)
        } else {
            String::new()
        };
        let order = match cursor {
            Some(c) => format!("{} DESC NULLS LAST, {seq} DESC", ident(c)),
            None => format!("{seq} DESC"),
        };
        // The winners are picked on (key, cursor, seq) alone, then the full
        // rows are read once, in staged order: a scan keeps insertion order
        // (`preserve_insertion_order`), so no sort holds the load in memory.
        let n = self.exec(
            "merge: insert",
            &format!(
                "INSERT INTO {} ({names}) SELECT {names} FROM {STAGED} WHERE {seq} IN \
                 (SELECT {seq} FROM {STAGED} AS __weft_s{not_loaded} \
                 QUALIFY row_number() OVER (PARTITION BY {key_cols} ORDER BY {order}) = 1)",
                self.table
            ),
        )?;
        Ok(n as u64)
    }

    /// Applies the staged rows as new versions of a `history` table
    /// ([`history_apply`]); returns the versions inserted.
    fn apply_history(&self, fields: &Fields) -> Result<u64, WarehouseError> {
        let keys = &self.spec.primary_key;
        if keys.is_empty() {
            return Err(WarehouseError::HistoryWithoutKey {
                table: self.shown.clone(),
            });
        }
        for k in keys {
            self.require(fields, "primary key", k)?;
        }
        let cursor = self.spec.cursor_field.as_deref();
        if let Some(c) = cursor {
            self.require(fields, "cursor", c)?;
        }
        let columns: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        let steps = history_apply(&HistoryLoad {
            table: &self.table,
            staging: STAGED,
            columns: &columns,
            keys,
            cursor,
            seq: SEQ,
        });
        let mut inserted = 0;
        for (step, sql) in &steps {
            let n = self.exec(step, sql)?;
            if *step == "history: insert" {
                inserted = n as u64;
            }
        }
        Ok(inserted)
    }

    /// Whether the target table holds any row (as this transaction sees it).
    fn has_rows(&self) -> Result<bool, WarehouseError> {
        self.conn
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", self.table),
                [],
                |r| r.get(0),
            )
            .map_err(db("check rows", &self.shown))
    }

    fn require(
        &self,
        fields: &Fields,
        role: &'static str,
        column: &str,
    ) -> Result<(), WarehouseError> {
        if fields.iter().any(|f| f.name() == column) {
            Ok(())
        } else {
            Err(WarehouseError::MissingColumn {
                table: self.shown.clone(),
                role,
                column: column.to_string(),
            })
        }
    }

    fn insert_rejects(&self, path: &Path) -> Result<(), WarehouseError> {
        let rejects = read_local_rejects(path)?;
        let mut stmt = self
            .conn
            .prepare(
                "INSERT INTO _weft._weft_rejects VALUES (?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            )
            .map_err(db("insert rejects", &self.shown))?;
        for r in &rejects {
            stmt.execute(params![
                self.spec.pipeline,
                self.spec.stream,
                self.manifest.load_id,
                r.record,
                r.reason,
                r.field,
                r.row_loaded
            ])
            .map_err(db("insert rejects", &self.shown))?;
        }
        Ok(())
    }

    /// Records the load and upserts the state.
    fn record(&self, rows: u64) -> Result<(), WarehouseError> {
        let m = self.manifest;
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "INSERT INTO _weft._weft_loads VALUES (?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ, current_timestamp)",
                params![
                    m.load_id,
                    self.spec.pipeline,
                    self.spec.stream,
                    to_i64(rows),
                    to_i64(m.files.len() as u64),
                    to_i64(m.bytes()),
                    to_i64(m.rejects),
                    m.started_at.to_rfc3339(),
                ],
            )
            .map_err(db("record load", &self.shown))?;
        if let Some(state) = &m.state {
            self.conn
                .execute(
                    "DELETE FROM _weft._weft_state WHERE pipeline = ? AND stream = ?",
                    params![self.spec.pipeline, self.spec.stream],
                )
                .map_err(db("save state", &self.shown))?;
            self.conn
                .execute(
                    "INSERT INTO _weft._weft_state VALUES (?, ?, ?, ?, current_timestamp)",
                    params![
                        self.spec.pipeline,
                        self.spec.stream,
                        state.to_string(),
                        m.load_id
                    ],
                )
                .map_err(db("save state", &self.shown))?;
        }
        Ok(())
    }
}
