//! SQL models on PostgreSQL: views and tables, each built in its own transaction.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::pg;
use super::sql::ident;
use crate::{Materialized, Model, ModelRun, WarehouseError};

/// Builds `models` in order; stops at the first failure, naming the model.
///
/// A view is `CREATE OR REPLACE VIEW`; when PostgreSQL refuses the
/// replacement (a column dropped, renamed or retyped) the view is dropped
/// and created again. A new table is created with `CREATE TABLE AS`; an
/// existing one whose columns (names and types, in order) are unchanged is
/// emptied and filled again (`TRUNCATE` + `INSERT`), so views on it — a
/// later model's, or a user's own — keep working. When its columns changed,
/// it is dropped `CASCADE` and created again: views on it are dropped too
/// (a later model view is created again in the same run; a warning names
/// the table). A relation of the other kind under the model's name is
/// dropped first.
pub(crate) async fn run(
    client: &mut Client,
    models: &[Model],
) -> Result<Vec<ModelRun>, WarehouseError> {
    let mut runs = Vec::with_capacity(models.len());
    for model in models {
        let (schema, table) = model.parts()?;
        let quoted = format!("{}.{}", ident(schema), ident(table));
        let err = || pg("run model", &model.name);
        let tx = client.transaction().await.map_err(err())?;
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))
            .await
            .map_err(err())?;
        let kind: Option<i8> = tx
            .query_opt(
                "SELECT c.relkind::\"char\" FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &table],
            )
            .await
            .map_err(err())?
            .map(|r| r.get(0));
        let is_view = kind == Some(b'v' as i8);
        let drop_existing = kind.map(|k| format!("DROP {} {quoted}", relation_kind(k)));
        let body = model.body();
        match model.materialized {
            Materialized::View => {
                if let Some(drop) = drop_existing.as_ref().filter(|_| !is_view) {
                    tx.batch_execute(drop).await.map_err(err())?;
                }
                tx.batch_execute("SAVEPOINT weft_model")
                    .await
                    .map_err(err())?;
                let create = format!("CREATE OR REPLACE VIEW {quoted} AS\n{body}\n");
                match tx.batch_execute(&create).await {
                    Ok(()) => {}
                    Err(e)
                        if is_view
                            && matches!(
                                e.code(),
                                Some(&SqlState::INVALID_TABLE_DEFINITION)
                                    | Some(&SqlState::DATATYPE_MISMATCH)
                            ) =>
                    {
                        tx.batch_execute(&format!(
                            "ROLLBACK TO SAVEPOINT weft_model; DROP VIEW {quoted}; \
                             CREATE VIEW {quoted} AS\n{body}\n"
                        ))
                        .await
                        .map_err(err())?;
                    }
                    Err(e) => return Err(err()(e)),
                }
            }
            Materialized::Table if kind == Some(b'r' as i8) => {
                rebuild_table(&tx, &quoted, body).await.map_err(err())?;
            }
            Materialized::Table => {
                if let Some(drop) = &drop_existing {
                    tx.batch_execute(drop).await.map_err(err())?;
                }
                tx.batch_execute(&format!("CREATE TABLE {quoted} AS\n{body}\n"))
                    .await
                    .map_err(err())?;
            }
        }
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {quoted}"), &[])
            .await
            .map_err(err())?
            .get(0);
        tx.commit().await.map_err(err())?;
        tracing::info!(model = %model.name, rows, "model built");
        runs.push(ModelRun {
            name: model.name.clone(),
            materialized: model.materialized,
            rows: rows.max(0) as u64,
        });
    }
    Ok(runs)
}

/// Rebuilds the existing table `quoted` from `body` inside `tx`: in place
/// when the columns are unchanged, else dropped (with its dependents) and
/// created again.
async fn rebuild_table(
    tx: &tokio_postgres::Transaction<'_>,
    quoted: &str,
    body: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE weft_model_shape ON COMMIT DROP AS \
         SELECT * FROM (\n{body}\n) weft_model LIMIT 0"
    ))
    .await?;
    let columns = "SELECT attname::text, format_type(atttypid, atttypmod) \
                   FROM pg_catalog.pg_attribute \
                   WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped \
                   ORDER BY attnum";
    let shape = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, String)> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let new = shape(tx.query(columns, &[&"pg_temp.weft_model_shape"]).await?);
    let old = shape(tx.query(columns, &[&quoted]).await?);
    tx.batch_execute("DROP TABLE pg_temp.weft_model_shape")
        .await?;
    if new == old {
        return tx
            .batch_execute(&format!(
                "TRUNCATE {quoted};\nINSERT INTO {quoted}\n{body}\n"
            ))
            .await;
    }
    tracing::warn!(
        table = quoted,
        "model columns changed: dropping the table and the views on it, then creating it again"
    );
    tx.batch_execute(&format!(
        "DROP TABLE {quoted} CASCADE;\nCREATE TABLE {quoted} AS\n{body}\n"
    ))
    .await
}

/// The `DROP` keyword of a `pg_class.relkind`.
fn relation_kind(kind: i8) -> &'static str {
    match kind as u8 {
        b'v' => "VIEW",
        b'm' => "MATERIALIZED VIEW",
        b'f' => "FOREIGN TABLE",
        _ => "TABLE",
    }
}
