//! PostgreSQL as the reverse-sync store: the diff runs in SQL.
//!
//! The same tables and rules as DuckDB's. `plan` materialises the model's
//! mapped columns with a row hash (`md5` of the mapped values joined by
//! `chr(31)`, each preceded by its destination field name, in mapping
//! order; a value is tagged `v` + its text, NULL is `n`, since PostgreSQL
//! text cannot hold DuckDB's `chr(0)` marker) and full-joins them with
//! `_weft."_weft_sync_snapshot_{sync}"` into a temporary plan table: keys
//! missing from the snapshot are creates, different hashes updates, snapshot
//! keys gone from the model deletes. Nothing of the model is pulled into
//! memory. `planned` pages that table by key (keyset paging, byte order);
//! `record` applies a batch's outcomes in one transaction.
//!
//! The plan table is temporary, so it lives as long as the warehouse's sync
//! connection (one connection, behind a lock, serves every sync call); a
//! `planned` call without a plan on it plans first.
//!
//! Jobs a target submitted and a run did not see finish live in
//! `_weft._weft_sync_jobs` (one row per sync and job reference, the
//! records as JSON) from `save_job` until `finish_job`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use tokio_postgres::Client;
use weft_core::{
    CoreError, PendingJob, RecordOutcome, SyncAction, SyncLogEntry, SyncPlan, SyncRecord, SyncSpec,
    SyncStore,
};

use super::json::array_values;
use super::sql::{ident, relation, storable};
use super::{PostgresWarehouse, pg};
use crate::WarehouseError;
use crate::sql::{mapped_columns, snapshot_table, value_column};
use crate::synclog::{entry, previous_sql, run_log_sql};

/// Key column of the plan table.
const KEY: &str = "__weft_key";
/// Row hash column of the plan table.
const HASH: &str = "__weft_hash";
/// Action column of the plan table.
const ACTION: &str = "__weft_action";

const TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS _weft._weft_sync_rejects (
    sync TEXT NOT NULL, run_id TEXT NOT NULL, "key" TEXT NOT NULL,
    "action" TEXT NOT NULL, reason TEXT NOT NULL, "row" TEXT NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS _weft._weft_sync_log (
    sync TEXT NOT NULL, run_id TEXT NOT NULL, "key" TEXT NOT NULL,
    "action" TEXT NOT NULL, result TEXT NOT NULL, reason TEXT, "at" TIMESTAMPTZ NOT NULL);
ALTER TABLE _weft._weft_sync_log ADD COLUMN IF NOT EXISTS sent TEXT;
ALTER TABLE _weft._weft_sync_log ADD COLUMN IF NOT EXISTS previous TEXT;
CREATE INDEX IF NOT EXISTS _weft_sync_log_by_key ON _weft._weft_sync_log (sync, "key", "at");
CREATE TABLE IF NOT EXISTS _weft._weft_sync_jobs (
    sync TEXT NOT NULL, job TEXT NOT NULL, run_id TEXT NOT NULL,
    target TEXT NOT NULL, records TEXT NOT NULL, submitted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sync, job));
"#;

/// The longest sync name: `_weft_sync_snapshot_{name}` must fit PostgreSQL's
/// 63-byte identifiers.
const MAX_SYNC_NAME: usize = 63 - "_weft_sync_snapshot_".len();

/// `[a-z0-9_]+`, so the name can be part of a table name.
fn check_sync_name(name: &str) -> Result<(), WarehouseError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SYNC_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(WarehouseError::InvalidName {
            what: "sync",
            name: name.to_string(),
            reason: format!(
                "use lower-case letters, digits and `_` only, at most {MAX_SYNC_NAME} of them"
            ),
        })
    }
}

/// The plan table's name (in `pg_temp`).
fn plan_name(sync: &str) -> String {
    format!("_weft_sync_plan_{sync}")
}

fn plan_table(sync: &str) -> String {
    format!("pg_temp.{}", ident(&plan_name(sync)))
}

async fn ensure_tables(client: &Client, sync: &str) -> Result<(), WarehouseError> {
    client
        .batch_execute(&format!(
            "{TABLES}CREATE TABLE IF NOT EXISTS {} (\"key\" TEXT PRIMARY KEY, \
             row_hash TEXT NOT NULL, synced_at TIMESTAMPTZ NOT NULL);",
            snapshot_table(sync)
        ))
        .await
        .map_err(pg("create sync tables", sync))
}

/// The row hash expression over the mapping (destination field, model column).
fn hash_expr(mapping: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = mapping
        .iter()
        .map(|(dest, col)| {
            let col = ident(col);
            format!(
                "'{}', CASE WHEN {col} IS NULL THEN 'n' ELSE 'v' || CAST({col} AS TEXT) END",
                dest.replace('\'', "''"),
            )
        })
        .collect();
    if parts.is_empty() {
        return "md5('')".to_string();
    }
    format!("md5(concat_ws(chr(31), {}))", parts.join(", "))
}

async fn plan(client: &Client, spec: &SyncSpec) -> Result<SyncPlan, WarehouseError> {
    check_sync_name(&spec.name)?;
    ensure_tables(client, &spec.name).await?;
    let model = relation(&spec.model)?;
    let pk = ident(&spec.primary_key);
    let shown = format!("sync {} ({})", spec.name, spec.model);

    let counts = client
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT CAST({pk} AS TEXT)) FROM {model} \
                 WHERE {pk} IS NOT NULL"
            ),
            &[],
        )
        .await
        .map_err(pg("read sync model", &shown))?;
    let (rows, distinct): (i64, i64) = (counts.get(0), counts.get(1));
    if rows != distinct {
        let key: String = client
            .query_one(
                &format!(
                    "SELECT CAST({pk} AS TEXT) FROM {model} WHERE {pk} IS NOT NULL \
                     GROUP BY 1 HAVING count(*) > 1 ORDER BY CAST({pk} AS TEXT) COLLATE \"C\" LIMIT 1"
                ),
                &[],
            )
            .await
            .map_err(pg("read sync model", &shown))?
            .get(0);
        return Err(WarehouseError::DuplicateKey {
            model: spec.model.clone(),
            column: spec.primary_key.clone(),
            key,
        });
    }

    let (select_cols, picked_cols) = mapped_columns(&spec.mapping);
    let plan = plan_table(&spec.name);
    let sql = format!(
        "DROP TABLE IF EXISTS {plan}; \
         CREATE TEMP TABLE {name} AS \
         WITH m AS (SELECT CAST({pk} AS TEXT) AS {KEY}, {hash} AS {HASH}{select_cols} \
                    FROM {model} WHERE {pk} IS NOT NULL), \
              s AS (SELECT \"key\", row_hash FROM {snapshot}) \
         SELECT CASE WHEN s.\"key\" IS NULL THEN 'create' \
                     WHEN m.{KEY} IS NULL THEN 'delete' ELSE 'update' END AS {ACTION}, \
                coalesce(m.{KEY}, s.\"key\") AS {KEY}, \
                coalesce(m.{HASH}, s.row_hash) AS {HASH}{picked_cols} \
         FROM m FULL OUTER JOIN s ON m.{KEY} = s.\"key\" \
         WHERE s.\"key\" IS NULL OR m.{KEY} IS NULL OR m.{HASH} <> s.row_hash; \
         CREATE INDEX ON {plan} ({ACTION}, {KEY} COLLATE \"C\"); ANALYZE {plan};",
        name = ident(&plan_name(&spec.name)),
        hash = hash_expr(&spec.mapping),
        snapshot = snapshot_table(&spec.name),
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(pg("plan sync", &shown))?;

    let mut plan = SyncPlan {
        model_rows: rows.max(0) as u64,
        ..SyncPlan::default()
    };
    let counts = client
        .query(
            &format!(
                "SELECT {ACTION}, count(*) FROM {} GROUP BY 1",
                plan_table(&spec.name)
            ),
            &[],
        )
        .await
        .map_err(pg("count sync plan", &shown))?;
    for row in counts {
        let (action, n): (String, i64) = (row.get(0), row.get(1));
        let n = n.max(0) as u64;
        match action.as_str() {
            "create" => plan.creates = n,
            "update" => plan.updates = n,
            _ => plan.deletes = n,
        }
    }
    Ok(plan)
}

async fn planned(
    client: &Client,
    spec: &SyncSpec,
    action: SyncAction,
    after_key: Option<&str>,
    limit: usize,
) -> Result<Vec<SyncRecord>, WarehouseError> {
    check_sync_name(&spec.name)?;
    let shown = format!("sync {} ({})", spec.name, spec.model);
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("pg_temp.{}", ident(&plan_name(&spec.name)))],
        )
        .await
        .map_err(pg("read sync plan", &shown))?
        .get(0);
    if !exists {
        plan(client, spec).await?;
    }
    let values: Vec<String> = (0..spec.mapping.len()).map(value_column).collect();
    let sql = format!(
        "SELECT {KEY}, {HASH}, json_build_array({})::text FROM {} \
         WHERE {ACTION} = $1 AND ($2::text IS NULL OR {KEY} COLLATE \"C\" > $2::text) \
         ORDER BY {KEY} COLLATE \"C\" LIMIT $3",
        values.join(", "),
        plan_table(&spec.name)
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(&sql, &[&action.to_string(), &after_key, &limit])
        .await
        .map_err(pg("read sync plan", &shown))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let key: String = row.get(0);
        let row_hash: String = row.get(1);
        let mut fields = BTreeMap::new();
        if action != SyncAction::Delete {
            let text: String = row.get(2);
            let values = array_values(&text).map_err(|source| WarehouseError::ResultJson {
                context: format!("{shown}, record {key}"),
                source,
            })?;
            for (dest, v) in spec.mapping.keys().zip(values) {
                fields.insert(dest.clone(), v);
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

async fn record(
    client: &mut Client,
    spec: &SyncSpec,
    run_id: &str,
    records: &[SyncRecord],
    outcomes: &[RecordOutcome],
) -> Result<(), WarehouseError> {
    check_sync_name(&spec.name)?;
    ensure_tables(client, &spec.name).await?;
    let shown = format!("sync {} run {run_id}", spec.name);
    let results: HashMap<&str, &Result<(), String>> = outcomes
        .iter()
        .map(|o| (o.key.as_str(), &o.result))
        .collect();
    let missing: Result<(), String> = Err("no outcome recorded for this record".to_string());
    let mut keys = Vec::with_capacity(records.len());
    let mut actions = Vec::with_capacity(records.len());
    let mut hashes = Vec::with_capacity(records.len());
    let mut oks = Vec::with_capacity(records.len());
    let mut reasons: Vec<Option<String>> = Vec::with_capacity(records.len());
    let mut rows: Vec<String> = Vec::with_capacity(records.len());
    for r in records {
        let result = results.get(r.key.as_str()).copied().unwrap_or(&missing);
        keys.push(storable(&r.key));
        actions.push(r.action.to_string());
        hashes.push(r.row_hash.clone());
        oks.push(result.is_ok());
        reasons.push(result.as_ref().err().map(|e| storable(e)));
        // The mapped fields sent, kept for every record (audit).
        rows.push(storable(
            &serde_json::to_string(&r.fields).unwrap_or_default(),
        ));
    }
    let err = || pg("record sync outcomes", &shown);
    let tx = client.transaction().await.map_err(err())?;
    // The batch goes into a work table, then into the snapshot, rejects and
    // log with set-based statements.
    tx.batch_execute(
        "CREATE TEMP TABLE _weft_sync_batch (\"key\" TEXT, \"action\" TEXT, \
         row_hash TEXT, ok BOOLEAN, reason TEXT, \"row\" TEXT, n BIGSERIAL) ON COMMIT DROP",
    )
    .await
    .map_err(err())?;
    tx.execute(
        "INSERT INTO pg_temp._weft_sync_batch (\"key\", \"action\", row_hash, ok, reason, \"row\") \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[])",
        &[&keys, &actions, &hashes, &oks, &reasons, &rows],
    )
    .await
    .map_err(err())?;
    let snapshot = snapshot_table(&spec.name);
    let batch = "pg_temp._weft_sync_batch";
    tx.batch_execute(&format!(
        "INSERT INTO {snapshot} (\"key\", row_hash, synced_at) \
           SELECT DISTINCT ON (\"key\") \"key\", row_hash, clock_timestamp() \
           FROM {batch} WHERE ok AND \"action\" <> 'delete' ORDER BY \"key\", n DESC \
         ON CONFLICT (\"key\") DO UPDATE SET row_hash = EXCLUDED.row_hash, \
           synced_at = EXCLUDED.synced_at; \
         DELETE FROM {snapshot} WHERE \"key\" IN \
           (SELECT \"key\" FROM {batch} WHERE ok AND \"action\" = 'delete');"
    ))
    .await
    .map_err(err())?;
    tx.execute(
        &format!(
            "INSERT INTO _weft._weft_sync_rejects SELECT $1, $2, \"key\", \"action\", reason, \
             \"row\", clock_timestamp() FROM {batch} WHERE NOT ok ORDER BY n"
        ),
        &[&spec.name, &run_id],
    )
    .await
    .map_err(err())?;
    // The pre-images are read before this batch's rows are in the log.
    tx.execute(
        &format!(
            "INSERT INTO _weft._weft_sync_log \
               (sync, run_id, \"key\", \"action\", result, reason, \"at\", sent, previous) \
             SELECT $1, $2, b.\"key\", b.\"action\", \
               CASE WHEN b.ok THEN 'ok' ELSE 'rejected' END, b.reason, clock_timestamp(), \
               b.\"row\", {} FROM {batch} AS b ORDER BY b.n",
            previous_sql("$1")
        ),
        &[&spec.name, &run_id],
    )
    .await
    .map_err(err())?;
    tx.commit().await.map_err(err())
}

async fn save_job(client: &Client, job: &PendingJob) -> Result<(), WarehouseError> {
    check_sync_name(&job.sync)?;
    ensure_tables(client, &job.sync).await?;
    let shown = format!("sync {} job {}", job.sync, job.job);
    let records = serde_json::to_string(&job.records).map_err(|e| WarehouseError::Corrupt {
        what: shown.clone(),
        reason: format!("records do not serialise as JSON: {e}"),
    })?;
    client
        .execute(
            "INSERT INTO _weft._weft_sync_jobs (sync, job, run_id, target, records, submitted_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (sync, job) DO UPDATE SET run_id = EXCLUDED.run_id, \
               target = EXCLUDED.target, records = EXCLUDED.records, \
               submitted_at = EXCLUDED.submitted_at",
            &[
                &job.sync,
                &storable(&job.job),
                &job.run_id,
                &job.target,
                &records,
                &job.submitted_at,
            ],
        )
        .await
        .map_err(pg("save sync job", &shown))?;
    Ok(())
}

async fn pending_jobs(client: &Client, sync: &str) -> Result<Vec<PendingJob>, WarehouseError> {
    check_sync_name(sync)?;
    ensure_tables(client, sync).await?;
    let rows = client
        .query(
            "SELECT job, run_id, target, records, submitted_at FROM _weft._weft_sync_jobs \
             WHERE sync = $1 ORDER BY submitted_at, job COLLATE \"C\"",
            &[&sync],
        )
        .await
        .map_err(pg("read sync jobs", &format!("sync {sync}")))?;
    rows.into_iter()
        .map(|row| {
            let job: String = row.get(0);
            let records: String = row.get(3);
            let records = serde_json::from_str(&records).map_err(|e| WarehouseError::Corrupt {
                what: format!("_weft._weft_sync_jobs: sync {sync} job {job}"),
                reason: format!("records are not the JSON weft wrote: {e}"),
            })?;
            Ok(PendingJob {
                sync: sync.to_string(),
                run_id: row.get(1),
                target: row.get(2),
                job,
                records,
                submitted_at: row.get(4),
            })
        })
        .collect()
}

async fn finish_job(client: &Client, sync: &str, job: &str) -> Result<(), WarehouseError> {
    check_sync_name(sync)?;
    ensure_tables(client, sync).await?;
    client
        .execute(
            "DELETE FROM _weft._weft_sync_jobs WHERE sync = $1 AND job = $2",
            &[&sync, &storable(job)],
        )
        .await
        .map_err(pg("finish sync job", &format!("sync {sync} job {job}")))?;
    Ok(())
}

async fn run_log(
    client: &Client,
    sync: &str,
    run_id: &str,
) -> Result<Vec<SyncLogEntry>, WarehouseError> {
    check_sync_name(sync)?;
    ensure_tables(client, sync).await?;
    let shown = format!("sync {sync}");
    let rows = client
        .query(&run_log_sql("$1", "$2"), &[&sync, &storable(run_id)])
        .await
        .map_err(pg("read sync log", &shown))?;
    rows.iter()
        .map(|r| {
            entry(
                &shown,
                r.get(0),
                r.get::<_, &str>(1),
                r.get::<_, &str>(2),
                r.get(3),
                r.get(4),
                r.get(5),
            )
        })
        .collect()
}

impl PostgresWarehouse {
    /// Runs `f` on the sync connection (opened on first use, reopened when
    /// it closed), mapping errors to [`CoreError::SyncStore`].
    async fn on_sync_conn<T>(
        &self,
        sync: &str,
        step: &'static str,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, WarehouseError>,
    ) -> Result<T, CoreError> {
        let result = async {
            let mut guard = self.inner.sync.lock().await;
            if guard.as_ref().is_none_or(Client::is_closed) {
                *guard = Some(self.inner.pool.connect().await?);
            }
            match guard.as_mut() {
                Some(client) => f(client).await,
                None => Err(WarehouseError::Poisoned {
                    warehouse: super::NAME,
                }),
            }
        }
        .await;
        result.map_err(|e| CoreError::SyncStore {
            sync: sync.to_string(),
            step,
            source: Box::new(e),
        })
    }
}

#[async_trait]
impl SyncStore for PostgresWarehouse {
    async fn plan(&self, spec: &SyncSpec) -> Result<SyncPlan, CoreError> {
        self.on_sync_conn(&spec.name, "plan", async |c| plan(c, spec).await)
            .await
    }

    async fn planned(
        &self,
        spec: &SyncSpec,
        action: SyncAction,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, CoreError> {
        self.on_sync_conn(&spec.name, "read planned records", async |c| {
            planned(c, spec, action, after_key, limit).await
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
        self.on_sync_conn(&spec.name, "record outcomes", async |c| {
            record(c, spec, run_id, records, outcomes).await
        })
        .await
    }

    async fn save_job(&self, job: &PendingJob) -> Result<(), CoreError> {
        self.on_sync_conn(&job.sync, "save job", async |c| save_job(c, job).await)
            .await
    }

    async fn pending_jobs(&self, sync: &str) -> Result<Vec<PendingJob>, CoreError> {
        self.on_sync_conn(sync, "read pending jobs", async |c| {
            pending_jobs(c, sync).await
        })
        .await
    }

    async fn finish_job(&self, sync: &str, job: &str) -> Result<(), CoreError> {
        self.on_sync_conn(sync, "finish job", async |c| finish_job(c, sync, job).await)
            .await
    }

    async fn run_log(&self, sync: &str, run_id: &str) -> Result<Vec<SyncLogEntry>, CoreError> {
        self.on_sync_conn(sync, "read the run's log", async |c| {
            run_log(c, sync, run_id).await
        })
        .await
    }
}
