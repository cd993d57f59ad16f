//! The warehouse contract: commit a staged load atomically, read state back.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use weft_core::{LoadReceipt, LoadTarget, SyncStore, WriteDisposition};
use weft_stage::{Manifest, Stage};

use crate::runs::RunRecord;
use crate::{Model, ModelRun, QualityRow, WarehouseError};

/// How a load is applied: the target table and the stream's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSpec {
    /// Pipeline name: the target schema.
    pub pipeline: String,
    /// Stream name: the target table.
    pub stream: String,
    /// Primary key columns (merge de-duplicates by them; empty = append).
    pub primary_key: Vec<String>,
    /// Cursor column: among rows with the same key, the greatest cursor wins.
    pub cursor_field: Option<String>,
    /// Merge, append or replace.
    pub disposition: WriteDisposition,
}

impl LoadSpec {
    /// The spec of a [`LoadTarget`].
    pub fn from_target(target: &LoadTarget) -> Self {
        LoadSpec {
            pipeline: target.pipeline.clone(),
            stream: target.spec.name.clone(),
            primary_key: target.spec.primary_key.clone(),
            cursor_field: target.spec.cursor_field.clone(),
            disposition: target.disposition,
        }
    }
}

/// One row of `_weft._weft_loads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadRow {
    /// The load's id.
    pub load_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Stream name.
    pub stream: String,
    /// Rows applied to the target table.
    pub rows: u64,
    /// Staged part files read.
    pub files: u64,
    /// Staged bytes read.
    pub bytes: u64,
    /// Rejects recorded.
    pub rejects: u64,
    /// When staging of the load started.
    pub started_at: DateTime<Utc>,
    /// When the load was committed.
    pub committed_at: DateTime<Utc>,
}

/// One row of `_weft._weft_state`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateRow {
    /// Pipeline name.
    pub pipeline: String,
    /// Stream name.
    pub stream: String,
    /// The committed state.
    pub state: serde_json::Value,
    /// The load that committed it.
    pub load_id: String,
    /// When it was committed.
    pub updated_at: DateTime<Utc>,
}

/// What a query returned: its column names and its rows, values as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueryResult {
    /// Column names, in order (empty for a statement that returns no rows).
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// A warehouse that commits staged loads.
///
/// Contract: [`Warehouse::commit_load`] reads the load's files from the
/// [`Stage`] as this warehouse reads best (DuckDB fetches them to local disk;
/// PostgreSQL streams them into `COPY`; a cloud warehouse would `COPY INTO`
/// from the bucket), then applies the rows, records the load, its rejects and
/// the manifest's state in one transaction, or changes nothing. A load id
/// already recorded is a no-op returning `already_committed = true`, so a
/// load can be replayed from the stage any number of times.
///
/// Every warehouse is also the [`SyncStore`] of reverse syncs: the diff of a
/// model against its snapshot runs inside the warehouse, as SQL.
#[async_trait]
pub trait Warehouse: SyncStore + Send + Sync {
    /// The warehouse kind (`duckdb`, `postgres`), used in errors and reports.
    fn name(&self) -> &'static str;

    /// Commits the staged load `manifest` describes, reading its files from `stage`.
    async fn commit_load(
        &self,
        stage: &Stage,
        manifest: &Manifest,
        spec: &LoadSpec,
    ) -> Result<LoadReceipt, WarehouseError>;

    /// The committed state of a stream (`None` when absent or JSON null).
    async fn state(
        &self,
        pipeline: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, WarehouseError>;

    /// Forgets the state of one stream, or of every stream of the pipeline;
    /// returns how many were removed.
    async fn reset_state(
        &self,
        pipeline: &str,
        stream: Option<&str>,
    ) -> Result<u64, WarehouseError>;

    /// Every committed state, ordered by pipeline and stream.
    async fn list_state(&self) -> Result<Vec<StateRow>, WarehouseError>;

    /// The committed loads of a pipeline, oldest first.
    async fn loads(&self, pipeline: &str) -> Result<Vec<LoadRow>, WarehouseError>;

    /// The committed loads of a pipeline whose ids sort at or after
    /// `from_load_id` byte-wise, in id order: load ids and run ids are
    /// time-ordered and drawn from the same clock, so these are the loads
    /// of the run with id `from_load_id` and of every run since.
    async fn loads_since(
        &self,
        pipeline: &str,
        from_load_id: &str,
    ) -> Result<Vec<LoadRow>, WarehouseError>;

    /// Appends quality results to `_weft._weft_quality`, all or none.
    async fn record_quality(&self, rows: &[QualityRow]) -> Result<(), WarehouseError>;

    /// The latest `limit` quality results of a pipeline, newest run first
    /// (within a run by stream, kind and column).
    async fn quality(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<QualityRow>, WarehouseError>;

    /// Builds SQL models in order (`CREATE OR REPLACE VIEW|TABLE`, creating
    /// the schema); stops at the first failure, naming the model.
    async fn run_models(&self, models: &[Model]) -> Result<Vec<ModelRun>, WarehouseError>;

    /// Runs a query (or any statement) and returns its column names and rows
    /// as JSON values (for `weft query`, tests and tools).
    async fn query(&self, sql: &str) -> Result<QueryResult, WarehouseError>;

    /// Whether several runner processes can use this warehouse at once
    /// (then they split each API account's rate through it; see
    /// [`crate::hold_budgets`]). A server warehouse can; an embedded file
    /// has one writer.
    fn shared_by_processes(&self) -> bool {
        true
    }

    /// A SQL expression for the warehouse clock's now, in unix
    /// milliseconds: leases compare times in it, so runners on hosts whose
    /// clocks drift still agree.
    fn clock_ms_sql(&self) -> &'static str {
        "CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000 AS BIGINT)"
    }

    /// The rows of [`Warehouse::query`].
    async fn query_rows(&self, sql: &str) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError> {
        self.query(sql).await.map(|r| r.rows)
    }

    /// Every row of `schema.table` as column name -> value (empty when the
    /// table does not exist), through [`Warehouse::query_rows`] and
    /// `information_schema`, for tests and the CLI.
    async fn table_rows(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Vec<BTreeMap<String, serde_json::Value>>, WarehouseError> {
        let literal = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let names: Vec<String> = self
            .query_rows(&format!(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = {} \
                 AND table_name = {} ORDER BY ordinal_position",
                literal(schema),
                literal(table)
            ))
            .await?
            .into_iter()
            .filter_map(|r| r.first().and_then(|v| v.as_str().map(String::from)))
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .query_rows(&format!(
                "SELECT * FROM {}",
                crate::sql::table(schema, table)
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| names.iter().cloned().zip(r).collect())
            .collect())
    }

    /// Records in `_weft._weft_runs` that `run` started (marking the
    /// pipeline's earlier runs still `running` as `abandoned`: call it while
    /// holding the pipeline's [`crate::Lease`]).
    async fn begin_run(&self, run: &RunRecord) -> Result<(), WarehouseError> {
        crate::runs::begin(self, run).await
    }

    /// Records how `run` ended.
    async fn end_run(&self, run: &RunRecord) -> Result<(), WarehouseError> {
        crate::runs::end(self, run).await
    }

    /// The latest `limit` runs, of `pipeline` or of every pipeline, newest first.
    async fn runs(
        &self,
        pipeline: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, WarehouseError> {
        crate::runs::list(self, pipeline, limit).await
    }
}
