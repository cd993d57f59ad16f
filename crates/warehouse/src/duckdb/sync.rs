//! DuckDB as the reverse-sync store: the diff runs in SQL.
//!
//! `plan` materialises the model's mapped columns with a row hash
//! (`md5` of the mapped values joined by `chr(31)`, NULL as `chr(0)`, each
//! preceded by its destination field name, in mapping order) and full-joins
//! them with `_weft."_weft_sync_snapshot_{sync}"` into a temporary plan table:
//! keys missing from the snapshot are creates, different hashes updates,
//! snapshot keys gone from the model deletes. `planned` pages that table by
//! key; `record` applies a batch's outcomes in one transaction.
//!
//! Jobs a target submitted and a run did not see finish live in
//! `_weft._weft_sync_jobs` (one row per sync and job reference, the
//! records as JSON) from `save_job` until `finish_job`.

use std::collections::{BTreeMap, HashMap};

use ::duckdb::{Connection, params};
use async_trait::async_trait;
use weft_core::{
    CoreError, PendingJob, RecordOutcome, SyncAction, SyncLogEntry, SyncPlan, SyncRecord, SyncSpec,
    SyncStore,
};

use super::{DuckDbWarehouse, db, json_value};
use crate::WarehouseError;
use crate::sql::{ident, mapped_columns, relation, snapshot_table, value_column};
use crate::synclog::{entry, previous_sql, run_log_sql};

#[cfg(test)]
mod tests;

/// Key column of the plan table.
const KEY: &str = "__weft_key";
/// Row hash column of the plan table.
const HASH: &str = "__weft_hash";
/// Action column of the plan table.
const ACTION: &str = "__weft_action";

const TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS _weft._weft_sync_rejects (
    sync VARCHAR NOT NULL, run_id VARCHAR NOT NULL, "key" VARCHAR NOT NULL,
    "action" VARCHAR NOT NULL, reason VARCHAR NOT NULL, "row" VARCHAR NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS _weft._weft_sync_log (
    sync VARCHAR NOT NULL, run_id VARCHAR NOT NULL, "key" VARCHAR NOT NULL,
    "action" VARCHAR NOT NULL, result VARCHAR NOT NULL, reason VARCHAR, "at" TIMESTAMPTZ NOT NULL);
ALTER TABLE _weft._weft_sync_log ADD COLUMN IF NOT EXISTS sent VARCHAR;
ALTER TABLE _weft._weft_sync_log ADD COLUMN IF NOT EXISTS previous VARCHAR;
CREATE TABLE IF NOT EXISTS _weft._weft_sync_jobs (
    sync VARCHAR NOT NULL, job VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
    target VARCHAR NOT NULL, records VARCHAR NOT NULL, submitted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sync, job));
"#;

/// `[a-z0-9_]+`, so the name can be part of a table name.
fn check_sync_name(name: &str) -> Result<(), WarehouseError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(WarehouseError::InvalidName {
            what: "sync",
            name: name.to_string(),
            reason: "use lower-case letters, digits and `_` only".to_string(),
        })
    }
}

/// The plan table: temporary, so it lives as long as the connection.
fn plan_table(sync: &str) -> String {
    ident(&format!("_weft_sync_plan_{sync}"))
}

fn ensure_tables(conn: &Connection, sync: &str) -> Result<(), WarehouseError> {
    conn.execute_batch(&format!(
        "{TABLES}CREATE TABLE IF NOT EXISTS {} (\"key\" VARCHAR PRIMARY KEY, \
         row_hash VARCHAR NOT NULL, synced_at TIMESTAMPTZ NOT NULL);",
        snapshot_table(sync)
    ))
    .map_err(db("create sync tables", sync))
}

/// The row hash expression over the mapping (destination field, model column).
fn hash_expr(mapping: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = mapping
        .iter()
        .map(|(dest, col)| {
            format!(
                "'{}', coalesce(CAST({} AS VARCHAR), chr(0))",
                dest.replace('\'', "''"),
                ident(col)
            )
        })
        .collect();
    if parts.is_empty() {
        return "md5('')".to_string();
    }
    format!("md5(concat_ws(chr(31), {}))", parts.join(", "))
}

fn plan_blocking(conn: &Connection, spec: &SyncSpec) -> Result<SyncPlan, WarehouseError> {
    check_sync_name(&spec.name)?;
    ensure_tables(conn, &spec.name)?;
    let model = relation(&spec.model)?;
    let pk = ident(&spec.primary_key);
    let shown = format!("sync {} ({})", spec.name, spec.model);

    let (rows, distinct): (i64, i64) = conn
        .query_row(
            &format!(
                "SELECT count(*), count(DISTINCT CAST({pk} AS VARCHAR)) FROM {model} \
                 WHERE {pk} IS NOT NULL"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db("read sync model", &shown))?;
    if rows != distinct {
        let key: String = conn
            .query_row(
                &format!(
                    "SELECT CAST({pk} AS VARCHAR) FROM {model} WHERE {pk} IS NOT NULL \
                     GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1"
                ),
                [],
                |r| r.get(0),
            )
            .map_err(db("read sync model", &shown))?;
        return Err(WarehouseError::DuplicateKey {
            model: spec.model.clone(),
            column: spec.primary_key.clone(),
            key,
        });
    }

    let (select_cols, picked_cols) = mapped_columns(&spec.mapping);
    let sql = format!(
        "CREATE OR REPLACE TEMP TABLE {plan} AS \
         WITH m AS (SELECT CAST({pk} AS VARCHAR) AS {KEY}, {hash} AS {HASH}{select_cols} \
                    FROM {model} WHERE {pk} IS NOT NULL), \
              s AS (SELECT \"key\", row_hash FROM {snapshot}) \
         SELECT CASE WHEN s.\"key\" IS NULL THEN 'create' \
                     WHEN m.{KEY} IS NULL THEN 'delete' ELSE 'update' END AS {ACTION}, \
                coalesce(m.{KEY}, s.\"key\") AS {KEY}, \
                coalesce(m.{HASH}, s.row_hash) AS {HASH}{picked_cols} \
         FROM m FULL OUTER JOIN s ON m.{KEY} = s.\"key\" \
         WHERE s.\"key\" IS NULL OR m.{KEY} IS NULL OR m.{HASH} <> s.row_hash",
        plan = plan_table(&spec.name),
        hash = hash_expr(&spec.mapping),
        snapshot = snapshot_table(&spec.name),
    );
    conn.execute_batch(&sql).map_err(db("plan sync", &shown))?;

    let mut plan = SyncPlan {
        model_rows: rows.max(0) as u64,
        ..SyncPlan::default()
    };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {ACTION}, count(*) FROM {} GROUP BY 1",
            plan_table(&spec.name)
        ))
        .map_err(db("count sync plan", &shown))?;
    let counts = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db("count sync plan", &shown))?;
    for (action, n) in counts {
        let n = n.max(0) as u64;
        match action.as_str() {
            "create" => plan.creates = n,
            "update" => plan.updates = n,
            _ => plan.deletes = n,
        }
    }
    Ok(plan)
}

fn planned_blocking(
    conn: &Connection,
    spec: &SyncSpec,
    action: SyncAction,
    after_key: Option<&str>,
    limit: usize,
) -> Result<Vec<SyncRecord>, WarehouseError> {
    check_sync_name(&spec.name)?;
    let shown = format!("sync {} ({})", spec.name, spec.model);
    let exists: i64 = conn
        .query_row(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
            params![format!("_weft_sync_plan_{}", spec.name)],
            |r| r.get(0),
        )
        .map_err(db("read sync plan", &shown))?;
    if exists == 0 {
        plan_blocking(conn, spec)?;
    }
    let values: Vec<String> = (0..spec.mapping.len()).map(value_column).collect();
    let mut cols = format!("{KEY}, {HASH}");
    for v in &values {
        cols.push_str(", ");
        cols.push_str(v);
    }
    let sql = format!(
        "SELECT {cols} FROM {} WHERE {ACTION} = ? AND (CAST(? AS VARCHAR) IS NULL OR {KEY} > ?) \
         ORDER BY {KEY} LIMIT ?",
        plan_table(&spec.name)
    );
    let mut stmt = conn.prepare(&sql).map_err(db("read sync plan", &shown))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(params![action.to_string(), after_key, after_key, limit])
        .map_err(db("read sync plan", &shown))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db("read sync plan", &shown))? {
        let key: String = row.get(0).map_err(db("read sync plan", &shown))?;
        let row_hash: String = row.get(1).map_err(db("read sync plan", &shown))?;
        let mut fields = BTreeMap::new();
        if action != SyncAction::Delete {
            for (i, dest) in spec.mapping.keys().enumerate() {
                let v = row.get_ref(i + 2).map_err(db("read sync plan", &shown))?;
                fields.insert(dest.clone(), json_value(v));
            }
        }
        out.push(SyncRecord {
            key,
            action,
            row_hash,
            fields,
        });
    }
    Ok(out)
}

fn record_blocking(
    conn: &Connection,
    spec: &SyncSpec,
    run_id: &str,
    records: &[SyncRecord],
    outcomes: &[RecordOutcome],
) -> Result<(), WarehouseError> {
    check_sync_name(&spec.name)?;
    ensure_tables(conn, &spec.name)?;
    let shown = format!("sync {} run {run_id}", spec.name);
    let results: HashMap<&str, &Result<(), String>> = outcomes
        .iter()
        .map(|o| (o.key.as_str(), &o.result))
        .collect();
    let missing: Result<(), String> = Err("no outcome recorded for this record".to_string());
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(db("begin", &shown))?;
    let result = (|| {
        // The batch goes through the appender into a work table, then into
        // the snapshot, rejects and log with set-based statements.
        let work = format!("_weft_sync_batch_{}", spec.name);
        let quoted = format!("_weft.{}", ident(&work));
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TABLE {quoted} (\"key\" VARCHAR, \"action\" VARCHAR, \
             row_hash VARCHAR, ok BOOLEAN, reason VARCHAR, \"row\" VARCHAR)"
        ))?;
        {
            let mut appender = conn.appender_to_db(&work, "_weft")?;
            for r in records {
                let result = results.get(r.key.as_str()).copied().unwrap_or(&missing);
                // The mapped fields sent, kept for every record (audit).
                let row = serde_json::to_string(&r.fields).unwrap_or_default();
                appender.append_row(params![
                    r.key,
                    r.action.to_string(),
                    r.row_hash,
                    result.is_ok(),
                    result.as_ref().err(),
                    row
                ])?;
            }
            appender.flush()?;
        }
        let snapshot = snapshot_table(&spec.name);
        conn.execute_batch(&format!(
            "INSERT OR REPLACE INTO {snapshot} SELECT \"key\", row_hash, current_timestamp \
               FROM {quoted} WHERE ok AND \"action\" <> 'delete'; \
             DELETE FROM {snapshot} WHERE \"key\" IN \
               (SELECT \"key\" FROM {quoted} WHERE ok AND \"action\" = 'delete');"
        ))?;
        conn.execute(
            &format!(
                "INSERT INTO _weft._weft_sync_rejects SELECT ?, ?, \"key\", \"action\", reason, \
                 \"row\", current_timestamp FROM {quoted} WHERE NOT ok"
            ),
            params![spec.name, run_id],
        )?;
        // The pre-images are read before this batch's rows are in the log.
        conn.execute(
            &format!(
                "INSERT INTO _weft._weft_sync_log \
                   (sync, run_id, \"key\", \"action\", result, reason, \"at\", sent, previous) \
                 SELECT ?, ?, b.\"key\", b.\"action\", \
                   CASE WHEN b.ok THEN 'ok' ELSE 'rejected' END, b.reason, current_timestamp, \
                   b.\"row\", {} FROM {quoted} AS b",
                previous_sql("?")
            ),
            params![spec.name, run_id, spec.name],
        )?;
        conn.execute_batch(&format!("DROP TABLE {quoted}"))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(db("commit", &shown)),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(db("record sync outcomes", &shown)(e))
        }
    }
}

fn save_job_blocking(conn: &Connection, job: &PendingJob) -> Result<(), WarehouseError> {
    check_sync_name(&job.sync)?;
    ensure_tables(conn, &job.sync)?;
    let shown = format!("sync {} job {}", job.sync, job.job);
    let records = serde_json::to_string(&job.records).map_err(|e| WarehouseError::Corrupt {
        what: shown.clone(),
        reason: format!("records do not serialise as JSON: {e}"),
    })?;
    conn.execute(
        "INSERT OR REPLACE INTO _weft._weft_sync_jobs \
           (sync, job, run_id, target, records, submitted_at) \
         VALUES (?, ?, ?, ?, ?, ?::TIMESTAMPTZ)",
        params![
            job.sync,
            job.job,
            job.run_id,
            job.target,
            records,
            job.submitted_at.to_rfc3339()
        ],
    )
    .map_err(db("save sync job", &shown))?;
    Ok(())
}

fn pending_jobs_blocking(conn: &Connection, sync: &str) -> Result<Vec<PendingJob>, WarehouseError> {
    check_sync_name(sync)?;
    ensure_tables(conn, sync)?;
    let shown = format!("sync {sync}");
    let mut stmt = conn
        .prepare(
            "SELECT job, run_id, target, records, epoch_us(submitted_at::TIMESTAMP) \
             FROM _weft._weft_sync_jobs WHERE sync = ? ORDER BY submitted_at, job",
        )
        .map_err(db("read sync jobs", &shown))?;
    let rows = stmt
        .query_map(params![sync], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db("read sync jobs", &shown))?;
    rows.into_iter()
        .map(|(job, run_id, target, records, at)| {
            let context = format!("sync {sync} job {job}");
            let records = serde_json::from_str(&records).map_err(|e| WarehouseError::Corrupt {
                what: format!("_weft._weft_sync_jobs: {context}"),
                reason: format!("records are not the JSON weft wrote: {e}"),
            })?;
            let submitted_at = chrono::DateTime::from_timestamp_micros(at).ok_or_else(|| {
                WarehouseError::Corrupt {
                    what: format!("_weft._weft_sync_jobs: {context}"),
                    reason: format!("submitted_at {at} µs is out of range"),
                }
            })?;
            Ok(PendingJob {
                sync: sync.to_string(),
                run_id,
                target,
                job,
                records,
                submitted_at,
            })
        })
        .collect()
}

fn run_log_blocking(
    conn: &Connection,
    sync: &str,
    run_id: &str,
) -> Result<Vec<SyncLogEntry>, WarehouseError> {
    check_sync_name(sync)?;
    ensure_tables(conn, sync)?;
    let shown = format!("sync {sync}");
    let mut stmt = conn
        .prepare(&run_log_sql("?", "?"))
        .map_err(db("read sync log", &shown))?;
    let rows = stmt
        .query_map(params![sync, run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db("read sync log", &shown))?;
    rows.into_iter()
        .map(|(key, action, result, sent, previous, superseded)| {
            entry(&shown, key, &action, &result, sent, previous, superseded)
        })
        .collect()
}

fn finish_job_blocking(conn: &Connection, sync: &str, job: &str) -> Result<(), WarehouseError> {
    check_sync_name(sync)?;
    ensure_tables(conn, sync)?;
    conn.execute(
        "DELETE FROM _weft._weft_sync_jobs WHERE sync = ? AND job = ?",
        params![sync, job],
    )
    .map_err(db("finish sync job", &format!("sync {sync} job {job}")))?;
    Ok(())
}

impl DuckDbWarehouse {
    async fn blocking<T, F>(&self, sync: &str, step: &'static str, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, WarehouseError> + Send + 'static,
    {
        let this = self.clone();
        let target = format!("sync {sync}");
        let result = tokio::task::spawn_blocking(move || {
            let conn = this.lock()?;
            f(&conn)
        })
        .await
        .map_err(|source| WarehouseError::Task { target, source })
        .and_then(|r| r);
        result.map_err(|e| CoreError::SyncStore {
            sync: sync.to_string(),
            step,
            source: Box::new(e),
        })
    }
}

#[async_trait]
impl SyncStore for DuckDbWarehouse {
    async fn plan(&self, spec: &SyncSpec) -> Result<SyncPlan, CoreError> {
        let owned = spec.clone();
        self.blocking(&spec.name, "plan", move |conn| plan_blocking(conn, &owned))
            .await
    }

    async fn planned(
        &self,
        spec: &SyncSpec,
        action: SyncAction,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, CoreError> {
        let owned = spec.clone();
        let after = after_key.map(str::to_string);
        self.blocking(&spec.name, "read planned records", move |conn| {
            planned_blocking(conn, &owned, action, after.as_deref(), limit)
        })
        .await
    }

    async fn record(
        &self,
        spec: &SyncSpec,
        run_id: &str,
        records: &[SyncRecord],
        outcomes: &[RecordOutcome],
    ) -> Result<(), CoreError> {
        let owned = spec.clone();
        let run_id = run_id.to_string();
        let records = records.to_vec();
        let outcomes = outcomes.to_vec();
        self.blocking(&spec.name, "record outcomes", move |conn| {
            record_blocking(conn, &owned, &run_id, &records, &outcomes)
        })
        .await
    }

    async fn save_job(&self, job: &PendingJob) -> Result<(), CoreError> {
        let owned = job.clone();
        self.blocking(&job.sync, "save job", move |conn| {
            save_job_blocking(conn, &owned)
        })
        .await
    }

    async fn pending_jobs(&self, sync: &str) -> Result<Vec<PendingJob>, CoreError> {
        let owned = sync.to_string();
        self.blocking(sync, "read pending jobs", move |conn| {
            pending_jobs_blocking(conn, &owned)
        })
        .await
    }

    async fn finish_job(&self, sync: &str, job: &str) -> Result<(), CoreError> {
        let (owned, job) = (sync.to_string(), job.to_string());
        self.blocking(sync, "finish job", move |conn| {
            finish_job_blocking(conn, &owned, &job)
        })
        .await
    }

    async fn run_log(&self, sync: &str, run_id: &str) -> Result<Vec<SyncLogEntry>, CoreError> {
        let (owned, run_id) = (sync.to_string(), run_id.to_string());
        self.blocking(sync, "read the run's log", move |conn| {
            run_log_blocking(conn, &owned, &run_id)
        })
        .await
    }
}
