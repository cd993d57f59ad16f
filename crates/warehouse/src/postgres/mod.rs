//! The PostgreSQL warehouse (version 15 or newer; tested on 15).
//!
//! # Commits
//!
//! [`PostgresWarehouse::commit_load`](crate::Warehouse::commit_load) runs one
//! transaction (READ COMMITTED) that:
//!
//! 1. takes `pg_advisory_xact_lock(hashtext(pipeline || '.' || stream))`, so
//!    two runners committing the same stream take turns, then returns
//!    `already_committed = true` (changing nothing) when the load id is in
//!    `_weft._weft_loads`;
//! 2. creates the target schema (`{prefix}{pipeline}`) and table
//!    `"{prefix}{pipeline}"."{stream}"` if missing (a merge table also gets a
//!    unique `NULLS NOT DISTINCT` index on its key), or adds the load's new
//!    columns as nullable (`ALTER TABLE ... ADD COLUMN IF NOT EXISTS`);
//! 3. streams every staged Parquet part from the stage's object store (one
//!    batch at a time, never through local disk) into a `TEMP` staging table
//!    (`ON COMMIT DROP`) with `COPY ... FROM STDIN (FORMAT BINARY)`, the
//!    batches encoded by pgpq, each row numbered in staged order
//!    (`__weft_seq`);
//! 4. applies merge / append / replace with the same rules as DuckDB (see
//!    below), records the load in `_weft._weft_loads`, the manifest's
//!    rejects (streamed from its `rejects.parquet`) and any quarantined rows
//!    in `_weft._weft_rejects`, and upserts `_weft._weft_state`;
//! 5. commits. Any error rolls everything back: rows, new columns, tables,
//!    rejects and state.
//!
//! A merge keeps, per key, the staged row with the greatest cursor (NULL
//! cursors last, ties to the last staged row): `DISTINCT ON (keys) ...
//! ORDER BY keys, cursor DESC NULLS LAST, __weft_seq DESC`. The winners go
//! in with one `INSERT ... ON CONFLICT (keys) DO UPDATE SET ... WHERE
//! (loaded.cursor > EXCLUDED.cursor) IS NOT TRUE` on the table's unique
//! `NULLS NOT DISTINCT` key index, so keys match null-safely (NULL equals
//! NULL in every key column) and a loaded row with a greater cursor stays;
//! an updated row takes every staged column, and the table's other columns
//! go back to their defaults, exactly as a deleted and re-inserted row.
//! Tables from an older weft (a plain key index) are migrated by the first
//! merge, in its transaction (see `keys.rs`). A table that already holds
//! two rows of a key (appended before the stream became a merge) cannot
//! have that index: it is merged the older way, deleting the loaded rows of
//! every staged key unless a loaded row of that key has a greater cursor
//! than the staged maximum (`DELETE ... WHERE EXISTS`), then inserting the
//! winners of the keys no longer loaded; there keys match null-safely
//! (`IS NOT DISTINCT FROM`, ANDed across key columns), and when no staged
//! key is NULL the same match is written `=`, which PostgreSQL can
//! hash-join or answer from the key index. Append inserts every staged row;
//! replace deletes the table's rows first (`DELETE`, not `TRUNCATE`, so
//! readers keep seeing the old rows until the commit).
//!
//! Rows PostgreSQL cannot store are quarantined, not loaded: a text value
//! (or text array element) with a NUL byte, a JSON value holding the escape
//! `\u0000`, a text or bytea value over PostgreSQL's 1 GB field limit, or a
//! date, timestamp or time of day outside PostgreSQL's ranges (Arrow's are
//! wider: a date of year 6,000,000, a timestamp of 100,000 BC) makes its row
//! a reject (`row_loaded = false`, the reason naming the column) recorded in
//! the same transaction.
//!
//! # Types
//!
//! | Arrow | PostgreSQL |
//! | --- | --- |
//! | `Boolean` | `BOOLEAN` |
//! | `Int8`, `Int16`, `UInt8` | `SMALLINT` |
//! | `Int32`, `UInt16` | `INTEGER` |
//! | `Int64`, `UInt32` | `BIGINT` |
//! | `UInt64` | `NUMERIC(20,0)` |
//! | `Float16`, `Float32` | `REAL` |
//! | `Float64` | `DOUBLE PRECISION` |
//! | `Decimal32/64/128/256(p, s)` | `NUMERIC(p,s)` (encoded by weft, exactly) |
//! | `Utf8`, `LargeUtf8`, `Utf8View`, dictionary of text | `TEXT` |
//! | the same, marked JSON (`arrow.json` extension, [`weft_arrow::is_json_field`]) | `JSONB` |
//! | `Binary`, `LargeBinary`, `FixedSizeBinary` | `BYTEA` |
//! | `Date32`, `Date64` | `DATE` |
//! | `Time32`, `Time64` | `TIME` (nanoseconds truncated to microseconds) |
//! | `Timestamp(_, Some(tz))` | `TIMESTAMPTZ` (nanoseconds truncated to microseconds) |
//! | `Timestamp(_, None)` | `TIMESTAMP` (likewise) |
//! | `Duration` | `INTERVAL` |
//! | `List` / `LargeList` of `Utf8`, `LargeUtf8`, `Utf8View` | `TEXT[]` |
//! | `List` / `LargeList` of booleans, integers, floats, binary, `Date32`, `Timestamp(_, None)` | the element's type `[]` |
//!
//! Anything else (`Null`, structs, maps, unions, nested lists, lists of
//! decimals or zoned timestamps) is [`WarehouseError::UnsupportedType`],
//! naming the table and column, before anything is written.
//!
//! # Reading
//!
//! [`query_rows`](crate::Warehouse::query_rows) wraps the query as
//! `SELECT row_to_json(q) FROM (<sql>) q`, so PostgreSQL renders every
//! column as JSON, in column order (see the `json` module for the rules); a
//! statement that cannot be a subquery (`SHOW`, DDL) falls back to the
//! simple query protocol and returns text. Sessions run in UTC.
//!
//! # Connections
//!
//! A small pool: each call takes an idle client or opens one, and gives it
//! back when done (at most 4 are kept idle), so loads of different streams
//! commit in parallel on their own connections; a client whose commit failed
//! is closed, never reused. Reverse sync uses one dedicated connection
//! behind a lock, because its plan table is a temporary table of that
//! session. TLS: see [`PostgresWarehouse::connect`].

mod conn;
mod copy;
mod json;
mod keys;
mod limits;
mod load;
mod models;
mod quality;
mod source;
mod sql;
mod sync;
#[cfg(test)]
mod tests;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use weft_core::LoadReceipt;
use weft_stage::{Manifest, Stage};

use crate::sql::parse_state;
use crate::{
    LoadRow, LoadSpec, Model, ModelRun, QualityRow, QueryResult, StateRow, Warehouse,
    WarehouseError,
};
use conn::Pool;
use sql::{DDL_LOCK, INIT, table, trim_sql};

const NAME: &str = "postgres";
/// Column holding the staged order of each row.
const SEQ: &str = "__weft_seq";
/// The commit transaction's temporary staging table, qualified.
const STAGING: &str = "pg_temp.\"_weft_staging\"";

/// PostgreSQL as a [`Warehouse`] (and reverse-sync store).
///
/// Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct PostgresWarehouse {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    /// Prepended to pipeline names to make target schema names.
    prefix: String,
    /// The reverse-sync connection (its temporary plan tables live on it).
    sync: tokio::sync::Mutex<Option<Client>>,
    /// Merge tables whose unique key index cannot be built (duplicate keys).
    duplicates: keys::Duplicates,
}

/// Maps a tokio-postgres error to [`WarehouseError::Postgres`].
fn pg(step: &'static str, target: &str) -> impl FnOnce(tokio_postgres::Error) -> WarehouseError {
    let target = target.to_string();
    move |source| WarehouseError::Postgres {
        step,
        target,
        source,
    }
}

/// A tokio-postgres error on one line: the server's message with its
/// SQLSTATE, detail, hint and context (which names the `COPY` line and
/// column), or the client-side error.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return with_causes(e);
    };
    let mut out = format!("{}: {} [{}]", db.severity(), db.message(), db.code().code());
    for (label, part) in [
        ("detail", db.detail()),
        ("hint", db.hint()),
        ("context", db.where_()),
    ] {
        if let Some(text) = part {
            out.push_str(&format!("; {label}: {}", text.replace('\n', " / ")));
        }
    }
    out
}

/// An error and its causes, `: `-separated (tokio-postgres keeps the
/// cause of, say, a failed TLS handshake out of its message).
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

impl PostgresWarehouse {
    /// Connects to the server at `url` and creates schema `_weft` and its
    /// tables if missing.
    ///
    /// `url` is a `postgres://user:password@host:port/db?...` URL or a
    /// libpq-style `key=value` string. `sslmode=require` connects with TLS
    /// (rustls), verifying the certificate against the system's roots and
    /// the Mozilla roots, or against `sslrootcert=FILE` alone when given (a
    /// PEM file; URL form only); `verify-ca` and `verify-full` mean the same
    /// here. `disable` and `prefer` (the default) connect without TLS.
    /// Errors show the URL without its password.
    ///
    /// `schema_prefix` (e.g. `weft_`) is prepended to pipeline names to make
    /// the target schemas: pipeline `stripe` loads into `weft_stripe`. The
    /// `_weft` tables record the pipeline name without it.
    pub async fn connect(url: &str, schema_prefix: Option<&str>) -> Result<Self, WarehouseError> {
        let pool = Pool::new(url)?;
        let mut client = pool.get().await?;
        let shown = pool.shown.clone();
        let tx = client
            .transaction()
            .await
            .map_err(pg("create _weft tables", &shown))?;
        // Concurrent first connections would race on CREATE ... IF NOT EXISTS.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext('_weft'))",
            &[&DDL_LOCK],
        )
        .await
        .map_err(pg("create _weft tables", &shown))?;
        tx.batch_execute(INIT)
            .await
            .map_err(pg("create _weft tables", &shown))?;
        tx.batch_execute(quality::CREATE)
            .await
            .map_err(pg("create _weft tables", &shown))?;
        tx.commit()
            .await
            .map_err(pg("create _weft tables", &shown))?;
        pool.put(client);
        Ok(PostgresWarehouse {
            inner: Arc::new(Inner {
                pool,
                prefix: schema_prefix.unwrap_or_default().to_string(),
                sync: tokio::sync::Mutex::new(None),
                duplicates: keys::Duplicates::default(),
            }),
        })
    }

    /// The server, as `postgres://user@host:port/db` (no password).
    pub fn server(&self) -> &str {
        &self.inner.pool.shown
    }

    /// The schema a pipeline loads into (the prefix and the pipeline name).
    pub fn schema_of(&self, pipeline: &str) -> String {
        format!("{}{pipeline}", self.inner.prefix)
    }

    /// Runs `op` on a pooled client, giving the client back afterwards.
    async fn read<T>(
        &self,
        op: impl AsyncFnOnce(&mut Client) -> Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        let mut client = self.inner.pool.get().await?;
        let result = op(&mut client).await;
        self.inner.pool.put(client);
        result
    }
}

#[async_trait]
impl Warehouse for PostgresWarehouse {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn commit_load(
        &self,
        stage: &Stage,
        manifest: &Manifest,
        spec: &LoadSpec,
    ) -> Result<LoadReceipt, WarehouseError> {
        let shown = format!("{}.{}", spec.pipeline, spec.stream);
        let target = format!("load {} of {shown}", manifest.load_id);
        let mut client = self.inner.pool.get().await?;
        let tx = client.transaction().await.map_err(pg("begin", &target))?;
        let schema = self.schema_of(&spec.pipeline);
        let load = load::Load {
            tx: &tx,
            stage,
            manifest,
            spec,
            table: table(&schema, &spec.stream),
            schema,
            shown,
            duplicates: &self.inner.duplicates,
        };
        // On an error the transaction is dropped (rolled back) with the client.
        let receipt = load.run().await?;
        if receipt.already_committed {
            tx.rollback().await.map_err(pg("rollback", &target))?;
        } else {
            tx.commit().await.map_err(pg("commit", &target))?;
        }
        self.inner.pool.put(client);
        tracing::info!(
            load_id = %receipt.load_id,
            table = %format!("{}.{}", spec.pipeline, spec.stream),
            rows = receipt.rows,
            already_committed = receipt.already_committed,
            "load committed"
        );
        Ok(receipt)
    }

    async fn state(
        &self,
        pipeline: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, WarehouseError> {
        let shown = format!("_weft_state {pipeline}.{stream}");
        let row = self
            .read(async |c| {
                c.query_opt(
                    "SELECT state FROM _weft._weft_state WHERE pipeline = $1 AND stream = $2",
                    &[&pipeline, &stream],
                )
                .await
                .map_err(pg("read state", &shown))
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let value = parse_state(pipeline, stream, row.get(0))?;
        Ok((!value.is_null()).then_some(value))
    }

    async fn reset_state(
        &self,
        pipeline: &str,
        stream: Option<&str>,
    ) -> Result<u64, WarehouseError> {
        let shown = format!("_weft_state {pipeline}.{}", stream.unwrap_or("*"));
        self.read(async |c| {
            match stream {
                Some(s) => {
                    c.execute(
                        "DELETE FROM _weft._weft_state WHERE pipeline = $1 AND stream = $2",
                        &[&pipeline, &s],
                    )
                    .await
                }
                None => {
                    c.execute(
                        "DELETE FROM _weft._weft_state WHERE pipeline = $1",
                        &[&pipeline],
                    )
                    .await
                }
            }
            .map_err(pg("reset state", &shown))
        })
        .await
    }

    async fn list_state(&self) -> Result<Vec<StateRow>, WarehouseError> {
        let rows = self
            .read(async |c| {
                c.query(
                    "SELECT pipeline, stream, state, load_id, updated_at FROM _weft._weft_state \
                     ORDER BY pipeline COLLATE \"C\", stream COLLATE \"C\"",
                    &[],
                )
                .await
                .map_err(pg("list state", "_weft._weft_state"))
            })
            .await?;
        rows.iter()
            .map(|r| {
                let (pipeline, stream): (String, String) = (r.get(0), r.get(1));
                Ok(StateRow {
                    state: parse_state(&pipeline, &stream, r.get(2))?,
                    pipeline,
                    stream,
                    load_id: r.get(3),
                    updated_at: r.get::<_, DateTime<Utc>>(4),
                })
            })
            .collect()
    }

    async fn loads(&self, pipeline: &str) -> Result<Vec<LoadRow>, WarehouseError> {
        let rows = self
            .read(async |c| {
                c.query(
                    "SELECT load_id, pipeline, stream, \"rows\", \"files\", \"bytes\", rejects, \
                     started_at, committed_at FROM _weft._weft_loads WHERE pipeline = $1 \
                     ORDER BY committed_at, load_id COLLATE \"C\"",
                    &[&pipeline],
                )
                .await
                .map_err(pg("list loads", pipeline))
            })
            .await?;
        let count = |r: &tokio_postgres::Row, i: usize| r.get::<_, i64>(i).max(0) as u64;
        Ok(rows
            .iter()
            .map(|r| LoadRow {
                load_id: r.get(0),
                pipeline: r.get(1),
                stream: r.get(2),
                rows: count(r, 3),
                files: count(r, 4),
                bytes: count(r, 5),
                rejects: count(r, 6),
                started_at: r.get(7),
                committed_at: r.get(8),
            })
            .collect())
    }

    async fn loads_since(
        &self,
        pipeline: &str,
        from_load_id: &str,
    ) -> Result<Vec<LoadRow>, WarehouseError> {
        self.read_loads_since(pipeline, from_load_id).await
    }

    async fn record_quality(&self, rows: &[QualityRow]) -> Result<(), WarehouseError> {
        self.insert_quality(rows).await
    }

    async fn quality(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<QualityRow>, WarehouseError> {
        self.read_quality(pipeline, limit).await
    }

    async fn run_models(&self, models: &[Model]) -> Result<Vec<ModelRun>, WarehouseError> {
        let mut client = self.inner.pool.get().await?;
        let runs = models::run(&mut client, models).await?;
        self.inner.pool.put(client);
        Ok(runs)
    }

    async fn query(&self, sql: &str) -> Result<QueryResult, WarehouseError> {
        self.read(async |c| query(c, sql).await).await
    }
}

/// Rows of `sql` as JSON values (see the module doc).
async fn query(client: &Client, sql: &str) -> Result<QueryResult, WarehouseError> {
    let body = trim_sql(sql);
    let wrapped = format!("SELECT row_to_json(__weft_q)::text FROM (\n{body}\n) AS __weft_q");
    let columns = async || match client.prepare(body).await {
        Ok(stmt) => Ok(stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect()),
        Err(e) => Err(pg("query: columns", "query")(e)),
    };
    match client.query(&wrapped, &[]).await {
        Ok(rows) => Ok(QueryResult {
            columns: columns().await?,
            rows: rows
                .iter()
                .map(|r| {
                    let text: String = r.get(0);
                    json::object_values(&text).map_err(|source| WarehouseError::ResultJson {
                        context: "query".to_string(),
                        source,
                    })
                })
                .collect::<Result<_, _>>()?,
        }),
        Err(e) if e.code() == Some(&SqlState::SYNTAX_ERROR) => {
            // Not a query that can be a subquery (SHOW, DDL, ...): run it as
            // it is and return its values as text.
            let messages = client
                .simple_query(sql)
                .await
                .map_err(pg("query", "query"))?;
            let mut result = QueryResult::default();
            for m in &messages {
                match m {
                    tokio_postgres::SimpleQueryMessage::RowDescription(cols)
                        if result.columns.is_empty() =>
                    {
                        result.columns = cols.iter().map(|c| c.name().to_string()).collect();
                    }
                    tokio_postgres::SimpleQueryMessage::Row(row) => result.rows.push(
                        (0..row.len())
                            .map(|i| {
                                row.get(i).map_or(serde_json::Value::Null, |v| {
                                    serde_json::Value::String(v.to_string())
                                })
                            })
                            .collect(),
                    ),
                    _ => {}
                }
            }
            Ok(result)
        }
        Err(e) => Err(pg("query", "query")(e)),
    }
}
