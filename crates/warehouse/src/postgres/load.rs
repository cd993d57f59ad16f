//! One commit: everything a load changes, inside one transaction.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use futures::TryStreamExt;
use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;
use weft_core::{LoadReceipt, Reject, WriteDisposition};
use weft_stage::{Manifest, Stage, StageError};

use super::copy::{Stager, open_parquet};
use super::keys::{self, Duplicates, Index};
use super::sql::{DDL_LOCK, check_ident, column_list, ident, storable};
use super::types::{Column, plan_columns};
use super::{SEQ, STAGING, pg};
use crate::sql::{HistoryLoad, history_apply, history_columns, merge_delete, not_still_loaded};
use crate::{LoadSpec, WarehouseError};

/// Rejects inserted per statement.
const REJECTS_PER_INSERT: usize = 5_000;

/// One commit in progress (inside the open transaction).
pub(crate) struct Load<'a> {
    pub(crate) tx: &'a Transaction<'a>,
    pub(crate) stage: &'a Stage,
    pub(crate) manifest: &'a Manifest,
    pub(crate) spec: &'a LoadSpec,
    /// The target schema (the pipeline with the warehouse's prefix).
    pub(crate) schema: String,
    /// Quoted `"schema"."stream"`.
    pub(crate) table: String,
    /// `pipeline.stream`, for errors and logs.
    pub(crate) shown: String,
    /// Tables whose unique key index cannot be built (see the `keys` module).
    pub(crate) duplicates: &'a Duplicates,
}

impl Load<'_> {
    async fn exec(&self, step: &'static str, sql: &str) -> Result<u64, WarehouseError> {
        self.tx
            .execute(sql, &[])
            .await
            .map_err(pg(step, &self.shown))
    }

    pub(crate) async fn run(&self) -> Result<LoadReceipt, WarehouseError> {
        let m = self.manifest;
        let mut receipt = LoadReceipt {
            load_id: m.load_id.clone(),
            rows: 0,
            rejects: m.rejects,
            files: m.files.len() as u64,
            bytes: m.bytes(),
            already_committed: false,
        };
        // Two runners committing the same stream take turns here; the
        // second then finds the first one's load id.
        self.tx
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext($1 || '.' || $2))",
                &[&self.spec.pipeline, &self.spec.stream],
            )
            .await
            .map_err(pg("lock stream", &self.shown))?;
        if let Some(previous) = self.previous().await? {
            receipt.rows = previous;
            receipt.already_committed = true;
            return Ok(receipt);
        }
        check_ident("schema", &self.schema)?;
        check_ident("table", &self.spec.stream)?;
        let fields = m.schema.fields();
        for f in fields {
            check_ident("column", f.name())?;
            if f.name() == SEQ {
                return Err(WarehouseError::InvalidName {
                    what: "column",
                    name: f.name().clone(),
                    reason: format!("`{SEQ}` is reserved for weft's staging"),
                });
            }
        }
        let columns = plan_columns(fields, &self.shown)?;
        let has_rows = !m.files.is_empty() && !fields.is_empty();
        let merge = self.merging();
        if has_rows && merge {
            for k in &self.spec.primary_key {
                self.require(&columns, "primary key", k)?;
            }
            if let Some(c) = &self.spec.cursor_field {
                self.require(&columns, "cursor", c)?;
            }
        }
        self.ensure_schema().await?;
        if !columns.is_empty() {
            self.ensure_table(&columns).await?;
            if self.spec.disposition == WriteDisposition::History {
                for sql in history_columns(&self.table) {
                    self.exec("add version columns", &sql).await?;
                }
            }
        }
        let mut quarantined = 0u64;
        if has_rows {
            quarantined = self.stage_rows(&columns).await?;
            receipt.rows = self.apply(&columns).await?;
        } else if self.spec.disposition == WriteDisposition::Replace && self.table_exists().await? {
            self.exec("replace", &format!("DELETE FROM {}", self.table))
                .await?;
        }
        if let Some(rel) = &m.rejects_file {
            self.copy_rejects(rel).await?;
        }
        receipt.rejects += quarantined;
        self.record(&receipt).await?;
        Ok(receipt)
    }

    /// A merge by key (a merge without keys appends).
    fn merging(&self) -> bool {
        self.spec.disposition == WriteDisposition::Merge && !self.spec.primary_key.is_empty()
    }

    /// Rows of this load when it was committed before.
    async fn previous(&self) -> Result<Option<u64>, WarehouseError> {
        let row = self
            .tx
            .query_opt(
                "SELECT \"rows\" FROM _weft._weft_loads WHERE load_id = $1",
                &[&self.manifest.load_id],
            )
            .await
            .map_err(pg("check load", &self.shown))?;
        Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64))
    }

    /// The target table's columns (empty when it does not exist).
    async fn columns(&self) -> Result<Vec<String>, WarehouseError> {
        let rows = self
            .tx
            .query(
                "SELECT a.attname::text FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 \
                 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&self.schema, &self.spec.stream],
            )
            .await
            .map_err(pg("read columns", &self.shown))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn table_exists(&self) -> Result<bool, WarehouseError> {
        let row = self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2)",
                &[&self.schema, &self.spec.stream],
            )
            .await
            .map_err(pg("read columns", &self.shown))?;
        Ok(row.get(0))
    }

    /// Creates the target schema; concurrent first loads of a pipeline's
    /// streams take turns (`CREATE SCHEMA IF NOT EXISTS` alone can race).
    async fn ensure_schema(&self) -> Result<(), WarehouseError> {
        let exists: bool = self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
                &[&self.schema],
            )
            .await
            .map_err(pg("create schema", &self.shown))?
            .get(0);
        if exists {
            return Ok(());
        }
        self.tx
            .execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&DDL_LOCK, &self.schema],
            )
            .await
            .map_err(pg("create schema", &self.shown))?;
        self.exec(
            "create schema",
            &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&self.schema)),
        )
        .await?;
        Ok(())
    }

    /// Creates the target table, or adds the load's new columns (nullable).
    ///
    /// A merge table gets a unique `NULLS NOT DISTINCT` index on its key
    /// when created (see the `keys` module).
    async fn ensure_table(&self, columns: &[Column]) -> Result<(), WarehouseError> {
        if !self.table_exists().await? {
            let cols: Vec<String> = columns
                .iter()
                .map(|c| format!("{} {}", ident(c.name()), c.pg_type))
                .collect();
            self.exec(
                "create table",
                &format!("CREATE TABLE {} ({})", self.table, cols.join(", ")),
            )
            .await?;
            let keys = &self.spec.primary_key;
            if self.merging() && keys.iter().all(|k| columns.iter().any(|c| c.name() == k)) {
                keys::create_for_new_table(
                    self.tx,
                    &self.schema,
                    &self.spec.stream,
                    &self.table,
                    keys,
                    &self.shown,
                )
                .await?;
            }
            return Ok(());
        }
        let existing = self.columns().await?;
        let added: Vec<&Column> = columns
            .iter()
            .filter(|c| !existing.iter().any(|e| e == c.name()))
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        for c in &added {
            tracing::info!(table = %self.shown, column = %c.name(), ty = %c.pg_type, "adding column");
        }
        let clauses: Vec<String> = added
            .iter()
            .map(|c| format!("ADD COLUMN IF NOT EXISTS {} {}", ident(c.name()), c.pg_type))
            .collect();
        self.exec(
            "add column",
            &format!("ALTER TABLE {} {}", self.table, clauses.join(", ")),
        )
        .await?;
        Ok(())
    }

    /// Streams every part into a temporary staging table (dropped at commit
    /// or rollback); returns the rows quarantined as rejects.
    async fn stage_rows(&self, columns: &[Column]) -> Result<u64, WarehouseError> {
        let mut cols: Vec<String> = columns
            .iter()
            .map(|c| format!("{} {}", ident(c.name()), c.pg_type))
            .collect();
        cols.push(format!("{} BIGINT NOT NULL", ident(SEQ)));
        self.exec(
            "create staging",
            &format!(
                "CREATE TEMP TABLE {STAGING} ({}) ON COMMIT DROP",
                cols.join(", ")
            ),
        )
        .await?;
        let names = column_list(columns.iter().map(Column::name).chain([SEQ]));
        let copy = format!("COPY {STAGING} ({names}) FROM STDIN (FORMAT BINARY)");
        let mut stager = Stager::new(columns, copy, &self.shown);
        let mut quarantined = 0u64;
        for file in &self.manifest.files {
            let rejects = stager.copy_part(self.tx, self.stage, file).await?;
            quarantined += rejects.len() as u64;
            self.insert_rejects(&rejects).await?;
        }
        // Statistics for the merge's joins (temporary tables get none
        // otherwise), on the columns they read: the keys, the cursor and the
        // staged order. Analyzing every column cost as much as the COPY
        // (about 100 ms per 10,000 Stripe customers, most of it in the JSONB
        // columns); an append or replace joins nothing.
        if self.merging() {
            let keys = self.spec.primary_key.iter().map(String::as_str);
            let cursor = self.spec.cursor_field.as_deref();
            let mut analyzed: Vec<&str> = Vec::new();
            for c in keys.chain(cursor).chain([SEQ]) {
                if !analyzed.contains(&c) {
                    analyzed.push(c);
                }
            }
            let analyzed = column_list(analyzed);
            self.exec(
                "analyze staging",
                &format!("ANALYZE {STAGING} ({analyzed})"),
            )
            .await?;
        }
        Ok(quarantined)
    }

    /// Applies the staged rows to the target table; returns the rows inserted
    /// or replaced.
    ///
    /// Same rules as DuckDB's: a merge keeps, per key (NULL keys match NULL
    /// keys), the staged row with the greatest cursor (NULL cursors last; on
    /// a tie the last staged row). When a loaded row of that key has a
    /// greater cursor the staged row loses; otherwise it replaces every
    /// loaded row of its key (columns the load lacks become their default,
    /// NULL for weft's tables, as for an inserted row).
    ///
    /// With a unique key index (see the `keys` module) that is one
    /// `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE (loaded cursor >
    /// staged cursor) IS NOT TRUE` of the winners; a table holding duplicate
    /// keys is merged by deleting the staged keys' rows, then inserting.
    async fn apply(&self, columns: &[Column]) -> Result<u64, WarehouseError> {
        let names = column_list(columns.iter().map(Column::name));
        let seq = ident(SEQ);
        let keys = &self.spec.primary_key;
        if self.spec.disposition == WriteDisposition::History {
            return self.apply_history(columns).await;
        }
        if !self.merging() {
            if self.spec.disposition == WriteDisposition::Replace {
                self.exec("replace", &format!("DELETE FROM {}", self.table))
                    .await?;
                self.duplicates.forget(&self.table);
            }
            return self
                .insert_rows(&format!(
                    "INSERT INTO {} ({names}) SELECT {names} FROM {STAGING}",
                    self.table
                ))
                .await;
        }
        let cursor = self.spec.cursor_field.as_deref();
        let key_cols = column_list(keys.iter().map(String::as_str));
        let upsert = keys::ensure_unique(
            self.tx,
            &self.schema,
            &self.spec.stream,
            &self.table,
            keys,
            self.duplicates,
            &self.shown,
        )
        .await?;
        // Into an empty table every staged key is new: nothing to replace.
        let loaded = self.has_rows().await?;
        let order = match cursor {
            Some(c) => format!("{key_cols}, {} DESC NULLS LAST, {seq} DESC", ident(c)),
            None => format!("{key_cols}, {seq} DESC"),
        };
        // The winners are picked on (key, cursor, seq) alone, then the full
        // rows are read once, in staged (physical) order; `filter` drops the
        // staged rows of keys that stay loaded.
        let winners = |filter: &str| {
            format!(
                "SELECT {names} FROM {STAGING} WHERE {seq} IN \
                 (SELECT DISTINCT ON ({key_cols}) {seq} FROM {STAGING} AS __weft_s{filter} \
                 ORDER BY {order})"
            )
        };
        if !loaded {
            return self
                .exec(
                    "merge: insert",
                    &format!("INSERT INTO {} ({names}) {}", self.table, winners("")),
                )
                .await;
        }
        if upsert {
            let sets = self.upsert_sets(columns).await?;
            let newer = cursor
                .map(|c| {
                    let c = ident(c);
                    format!(" WHERE (__weft_t.{c} > EXCLUDED.{c}) IS NOT TRUE")
                })
                .unwrap_or_default();
            return self
                .exec(
                    "merge: upsert",
                    &format!(
                        "INSERT INTO {} AS __weft_t ({names}) {} \
                         ON CONFLICT ({key_cols}) DO UPDATE SET {sets}{newer}",
                        self.table,
                        winners("")
                    ),
                )
                .await;
        }
        let non_null = !self.staged_null_keys().await?;
        // The staged keys are looked up in the target through its key
        // index. With the default random_page_cost (4, a spinning disk)
        // the planner prefers scanning the whole target for each load
        // (measured: 10,000 staged rows into 500,000 loaded, delete +
        // insert 320 ms -> 87 ms), which makes a backfill quadratic. The
        // setting ends with the transaction.
        self.exec("merge: plan", "SET LOCAL random_page_cost = 1.1")
            .await?;
        self.exec(
            "merge: delete",
            &merge_delete(&self.table, STAGING, keys, cursor, non_null),
        )
        .await?;
        // A key still loaded after the delete has a newer row: its staged rows lose.
        let not_loaded = if cursor.is_some() {
            not_still_loaded(&self.table, keys, non_null)
        } else {
            String::new()
        };
        self.exec(
            "merge: insert",
            &format!(
                "INSERT INTO {} ({names}) {}",
                self.table,
                winners(&not_loaded)
            ),
        )
        .await
    }

    /// Applies the staged rows as new versions of a `history` table (the
    /// same statements as DuckDB's: [`history_apply`]); returns the
    /// versions inserted.
    async fn apply_history(&self, columns: &[Column]) -> Result<u64, WarehouseError> {
        let keys = &self.spec.primary_key;
        if keys.is_empty() {
            return Err(WarehouseError::HistoryWithoutKey {
                table: self.shown.clone(),
            });
        }
        for k in keys {
            self.require(columns, "primary key", k)?;
        }
        let cursor = self.spec.cursor_field.as_deref();
        if let Some(c) = cursor {
            self.require(columns, "cursor", c)?;
        }
        let names: Vec<&str> = columns.iter().map(Column::name).collect();
        let steps = history_apply(&HistoryLoad {
            table: &self.table,
            staging: STAGING,
            columns: &names,
            keys,
            cursor,
            seq: SEQ,
        });
        let mut inserted = 0;
        for (step, sql) in &steps {
            let n = self.exec(step, sql).await?;
            if *step == "history: insert" {
                inserted = n;
            }
        }
        Ok(inserted)
    }

    /// The upsert's `SET` list: every staged column but the keys from the
    /// staged row, every other (not generated) column of the table to its
    /// default, so the row ends as the delete + insert would leave it.
    async fn upsert_sets(&self, columns: &[Column]) -> Result<String, WarehouseError> {
        let keys = &self.spec.primary_key;
        let mut sets: Vec<String> = columns
            .iter()
            .map(Column::name)
            .filter(|c| !keys.iter().any(|k| k == c))
            .map(|c| format!("{0} = EXCLUDED.{0}", ident(c)))
            .collect();
        let rows = self
            .tx
            .query(
                "SELECT a.attname::text FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 \
                 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
                &[&self.schema, &self.spec.stream],
            )
            .await
            .map_err(pg("read columns", &self.shown))?;
        for r in &rows {
            let name: String = r.get(0);
            if !columns.iter().any(|c| c.name() == name) {
                sets.push(format!("{} = DEFAULT", ident(&name)));
            }
        }
        if sets.is_empty() {
            // Every column is a key: the row is replaced by itself.
            sets = keys
                .iter()
                .map(|k| format!("{0} = EXCLUDED.{0}", ident(k)))
                .collect();
        }
        Ok(sets.join(", "))
    }

    /// Appends (or replaces with) the staged rows by `insert`. Should they
    /// put two rows of a key under weft's unique key index (the stream
    /// stopped being a merge), the index is demoted to a plain one and the
    /// rows are inserted as before (see the `keys` module).
    async fn insert_rows(&self, insert: &str) -> Result<u64, WarehouseError> {
        let unique: Option<Index> =
            keys::indexes(self.tx, &self.schema, &self.spec.stream, &self.shown)
                .await?
                .into_iter()
                .find(Index::weft_unique);
        let Some(index) = unique else {
            return self.exec("insert", insert).await;
        };
        self.exec("insert", "SAVEPOINT __weft_insert").await?;
        match self.tx.execute(insert, &[]).await {
            Ok(n) => {
                self.exec("insert", "RELEASE SAVEPOINT __weft_insert")
                    .await?;
                Ok(n)
            }
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    && e.as_db_error().and_then(|d| d.constraint())
                        == Some(index.name.as_str()) =>
            {
                self.exec("insert", "ROLLBACK TO SAVEPOINT __weft_insert")
                    .await?;
                keys::demote(self.tx, &self.schema, &self.table, &index, &self.shown).await?;
                self.exec("insert", insert).await
            }
            Err(e) => Err(pg("insert", &self.shown)(e)),
        }
    }

    /// Whether any staged row has a NULL in a key column.
    async fn staged_null_keys(&self) -> Result<bool, WarehouseError> {
        let any_null = self
            .spec
            .primary_key
            .iter()
            .map(|k| format!("{} IS NULL", ident(k)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let row = self
            .tx
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {STAGING} WHERE {any_null})"),
                &[],
            )
            .await
            .map_err(pg("check keys", &self.shown))?;
        Ok(row.get(0))
    }

    /// Whether the target table holds any row (as this transaction sees it).
    async fn has_rows(&self) -> Result<bool, WarehouseError> {
        let row = self
            .tx
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", self.table),
                &[],
            )
            .await
            .map_err(pg("check rows", &self.shown))?;
        Ok(row.get(0))
    }

    fn require(
        &self,
        columns: &[Column],
        role: &'static str,
        column: &str,
    ) -> Result<(), WarehouseError> {
        if columns.iter().any(|c| c.name() == column) {
            Ok(())
        } else {
            Err(WarehouseError::MissingColumn {
                table: self.shown.clone(),
                role,
                column: column.to_string(),
            })
        }
    }

    /// Streams the manifest's rejects file into `_weft._weft_rejects`.
    async fn copy_rejects(&self, rel: &str) -> Result<(), WarehouseError> {
        let mut batches = open_parquet(self.stage, rel).await?;
        while let Some(batch) = batches
            .try_next()
            .await
            .map_err(|source| StageError::Parquet {
                path: rel.to_string(),
                source,
            })?
        {
            let rejects = rejects_of(&batch, rel)?;
            self.insert_rejects(&rejects).await?;
        }
        Ok(())
    }

    async fn insert_rejects(&self, rejects: &[Reject]) -> Result<(), WarehouseError> {
        for chunk in rejects.chunks(REJECTS_PER_INSERT) {
            let record: Vec<String> = chunk.iter().map(|r| storable(&r.record)).collect();
            let reason: Vec<String> = chunk.iter().map(|r| storable(&r.reason)).collect();
            let field: Vec<Option<String>> = chunk
                .iter()
                .map(|r| r.field.as_deref().map(storable))
                .collect();
            let loaded: Vec<bool> = chunk.iter().map(|r| r.row_loaded).collect();
            self.tx
                .execute(
                    "INSERT INTO _weft._weft_rejects \
                     SELECT $1, $2, $3, r.record, r.reason, r.field, r.row_loaded, clock_timestamp() \
                     FROM unnest($4::text[], $5::text[], $6::text[], $7::bool[]) \
                     AS r(record, reason, field, row_loaded)",
                    &[
                        &self.spec.pipeline,
                        &self.spec.stream,
                        &self.manifest.load_id,
                        &record,
                        &reason,
                        &field,
                        &loaded,
                    ],
                )
                .await
                .map_err(pg("insert rejects", &self.shown))?;
        }
        Ok(())
    }

    /// Records the load and upserts the state.
    async fn record(&self, receipt: &LoadReceipt) -> Result<(), WarehouseError> {
        let m = self.manifest;
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.tx
            .execute(
                "INSERT INTO _weft._weft_loads VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp())",
                &[
                    &m.load_id,
                    &self.spec.pipeline,
                    &self.spec.stream,
                    &to_i64(receipt.rows),
                    &to_i64(receipt.files),
                    &to_i64(receipt.bytes),
                    &to_i64(receipt.rejects),
                    &m.started_at,
                ],
            )
            .await
            .map_err(pg("record load", &self.shown))?;
        if let Some(state) = &m.state {
            self.tx
                .execute(
                    "INSERT INTO _weft._weft_state VALUES ($1, $2, $3, $4, clock_timestamp()) \
                     ON CONFLICT (pipeline, stream) DO UPDATE SET state = EXCLUDED.state, \
                     load_id = EXCLUDED.load_id, updated_at = EXCLUDED.updated_at",
                    &[
                        &self.spec.pipeline,
                        &self.spec.stream,
                        &state.to_string(),
                        &m.load_id,
                    ],
                )
                .await
                .map_err(pg("save state", &self.shown))?;
        }
        Ok(())
    }
}

/// The rejects of one batch of a `rejects.parquet`.
fn rejects_of(batch: &RecordBatch, path: &str) -> Result<Vec<Reject>, WarehouseError> {
    let format = |reason: String| StageError::RejectsFormat {
        path: path.to_string(),
        reason,
    };
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .filter(|c| c.data_type() == &DataType::Utf8)
            .map(|c| c.as_string::<i32>())
            .ok_or_else(|| format(format!("column `{name}` missing or not text")))
    };
    let record = text("record")?;
    let reason = text("reason")?;
    let field = text("field")?;
    let loaded = batch
        .column_by_name("row_loaded")
        .and_then(|c| c.as_boolean_opt())
        .ok_or_else(|| format("column `row_loaded` missing or not boolean".to_string()))?;
    Ok((0..batch.num_rows())
        .map(|i| Reject {
            record: record.value(i).to_string(),
            reason: reason.value(i).to_string(),
            field: (!field.is_null(i)).then(|| field.value(i).to_string()),
            row_loaded: loaded.value(i),
        })
        .collect())
}
