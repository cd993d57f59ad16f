//! SQL models: named `SELECT`s the warehouse materialises as views or tables.
//!
//! A models directory holds `.sql` files run in file-name order; the file
//! `NN_name.sql` becomes `models.name`. A first line `-- materialized: table`
//! makes a table (the default is a view). [`crate::Warehouse::run_models`]
//! creates each one with `CREATE OR REPLACE`.

use std::path::Path;

use serde::Serialize;

use crate::WarehouseError;

/// Schema that models from a directory are created in.
pub const MODELS_SCHEMA: &str = "models";

/// How a model is materialised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Materialized {
    /// A view: computed when read.
    #[default]
    View,
    /// A table: computed when the models run.
    Table,
}

/// One SQL model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    /// `schema.table`, e.g. `models.people`.
    pub name: String,
    /// The `SELECT` (no trailing semicolon needed).
    pub sql: String,
    /// View or table.
    pub materialized: Materialized,
}

/// What running one model did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRun {
    /// `schema.table`.
    pub name: String,
    /// View or table.
    pub materialized: Materialized,
    /// Rows the model returns after the run.
    pub rows: u64,
}

impl Model {
    /// The model's `(schema, table)`; `schema` defaults to [`MODELS_SCHEMA`].
    pub fn parts(&self) -> Result<(&str, &str), WarehouseError> {
        let (schema, table) = self
            .name
            .split_once('.')
            .unwrap_or((MODELS_SCHEMA, self.name.as_str()));
        let ok =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok(schema) && ok(table) {
            Ok((schema, table))
        } else {
            Err(WarehouseError::InvalidName {
                what: "model",
                name: self.name.clone(),
                reason: "expected `schema.table` of letters, digits and `_`".to_string(),
            })
        }
    }

    /// The SQL body without trailing whitespace and semicolons.
    pub fn body(&self) -> &str {
        self.sql.trim().trim_end_matches(';').trim_end()
    }
}

/// Reads every `.sql` file of `dir`, in file-name order, as models.
///
/// `01_people.sql` becomes `models.people` (a leading `NN_` is dropped); a
/// first line `-- materialized: table` (or `view`) picks the materialisation.
pub fn load_models_dir(dir: &Path) -> Result<Vec<Model>, WarehouseError> {
    let shown = dir.display().to_string();
    let io = |e: std::io::Error| WarehouseError::ModelFile {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
            files.push(path);
        }
    }
    files.sort();
    files.iter().map(|p| load_model_file(p)).collect()
}

fn load_model_file(path: &Path) -> Result<Model, WarehouseError> {
    let shown = path.display().to_string();
    let fail = |reason: String| WarehouseError::ModelFile {
        path: shown.clone(),
        reason,
    };
    let sql = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| fail("file name is not UTF-8".to_string()))?;
    let name = match stem.split_once('_') {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => stem,
    };
    let materialized = match sql
        .lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("--"))
        .and_then(|l| l.trim().strip_prefix("materialized:"))
        .map(str::trim)
    {
        None => Materialized::View,
        Some(m) if m.eq_ignore_ascii_case("view") => Materialized::View,
        Some(m) if m.eq_ignore_ascii_case("table") => Materialized::Table,
        Some(other) => {
            return Err(fail(format!(
                "`-- materialized: {other}` is neither `table` nor `view`"
            )));
        }
    };
    let model = Model {
        name: format!("{MODELS_SCHEMA}.{name}"),
        sql,
        materialized,
    };
    model.parts()?;
    if model.body().is_empty() {
        return Err(fail("the file has no SQL".to_string()));
    }
    Ok(model)
}

/// Runs models on a DuckDB connection, each in its own transaction.
#[cfg(feature = "duckdb")]
pub(crate) fn run_duckdb(
    conn: &::duckdb::Connection,
    models: &[Model],
) -> Result<Vec<ModelRun>, WarehouseError> {
    let mut runs = Vec::with_capacity(models.len());
    for model in models {
        let err = |source| WarehouseError::DuckDb {
            step: "run model",
            target: model.name.clone(),
            source,
        };
        let (schema, table) = model.parts()?;
        let quoted = format!("{}.{}", ident(schema), ident(table));
        conn.execute_batch("BEGIN TRANSACTION").map_err(err)?;
        let result = (|| {
            conn.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))?;
            // CREATE OR REPLACE cannot turn a view into a table or back.
            let (kind, catalog) = match model.materialized {
                Materialized::View => (
                    "TABLE",
                    "SELECT count(*) FROM duckdb_tables() \
                     WHERE database_name = current_database() AND schema_name = ? AND table_name = ?",
                ),
                Materialized::Table => (
                    "VIEW",
                    "SELECT count(*) FROM duckdb_views() \
                     WHERE database_name = current_database() AND schema_name = ? AND view_name = ?",
                ),
            };
            let existing: i64 =
                conn.query_row(catalog, ::duckdb::params![schema, table], |r| r.get(0))?;
            if existing > 0 {
                conn.execute_batch(&format!("DROP {kind} {quoted}"))?;
            }
            let what = match model.materialized {
                Materialized::View => "VIEW",
                Materialized::Table => "TABLE",
            };
            conn.execute_batch(&format!(
                "CREATE OR REPLACE {what} {quoted} AS\n{}\n",
                model.body()
            ))?;
            conn.query_row(&format!("SELECT count(*) FROM {quoted}"), [], |r| {
                r.get::<_, i64>(0)
            })
        })();
        match result {
            Ok(rows) => {
                conn.execute_batch("COMMIT").map_err(err)?;
                tracing::info!(model = %model.name, rows, "model built");
                runs.push(ModelRun {
                    name: model.name.clone(),
                    materialized: model.materialized,
                    rows: rows.max(0) as u64,
                });
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(err(e));
            }
        }
    }
    Ok(runs)
}

#[cfg(feature = "duckdb")]
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(all(test, feature = "duckdb"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::DuckDbWarehouse;

    fn demo_dir() -> std::path::PathBuf {
        weft_conformance::package_dir().join("../../models/demo")
    }

    #[test]
    fn a_models_dir_is_read_in_order_with_names_and_materialisation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("02_b.sql"), "SELECT 2 AS x;\n").unwrap();
        std::fs::write(
            dir.path().join("01_a.sql"),
            "-- materialized: table\nSELECT 1 AS x",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a model").unwrap();
        let models = load_models_dir(dir.path()).unwrap();
        let names: Vec<_> = models
            .iter()
            .map(|m| (m.name.as_str(), m.materialized))
            .collect();
        assert_eq!(
            names,
            [
                ("models.a", Materialized::Table),
                ("models.b", Materialized::View)
            ]
        );
        assert_eq!(models[1].body(), "SELECT 2 AS x");

        std::fs::write(
            dir.path().join("03_c.sql"),
            "-- materialized: cube\nSELECT 1",
        )
        .unwrap();
        let err = load_models_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("03_c.sql") && err.contains("cube"), "{err}");
    }

    #[test]
    fn models_build_views_and_tables_and_switch_between_them() {
        let wh = DuckDbWarehouse::open_in_memory().unwrap();
        let mut model = Model {
            name: "models.numbers".to_string(),
            sql: "SELECT * FROM range(3) t(n);".to_string(),
            materialized: Materialized::View,
        };
        let runs = wh.run_models(std::slice::from_ref(&model)).unwrap();
        assert_eq!(runs[0].rows, 3);
        model.materialized = Materialized::Table;
        let runs = wh.run_models(std::slice::from_ref(&model)).unwrap();
        assert_eq!(
            (runs[0].name.as_str(), runs[0].materialized, runs[0].rows),
            ("models.numbers", Materialized::Table, 3)
        );
        assert_eq!(
            wh.query_rows(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'models' \
                 AND table_name = 'numbers'"
            )
            .unwrap(),
            vec![vec![json!(1)]]
        );
        model.materialized = Materialized::View;
        wh.run_models(std::slice::from_ref(&model)).unwrap();
        assert_eq!(
            wh.query_rows("SELECT sum(n) FROM models.numbers").unwrap(),
            vec![vec![json!(3)]]
        );
    }

    #[test]
    fn a_failing_model_names_itself_and_duckdbs_message() {
        let wh = DuckDbWarehouse::open_in_memory().unwrap();
        let bad = Model {
            name: "models.broken".to_string(),
            sql: "SELECT nope FROM nowhere".to_string(),
            materialized: Materialized::View,
        };
        let err = wh.run_models(&[bad]).unwrap_err().to_string();
        assert!(err.contains("models.broken"), "{err}");
        assert!(err.contains("nowhere"), "{err}");
    }

    #[test]
    fn the_demo_model_keeps_one_row_per_normalised_email_with_the_latest_name() {
        let wh = DuckDbWarehouse::open_in_memory().unwrap();
        wh.reader()
            .unwrap()
            .execute_batch(
                "CREATE SCHEMA zoom; CREATE SCHEMA salesforce;
                 CREATE TABLE zoom.webinar_registrants (webinar_id BIGINT, id VARCHAR,
                     email VARCHAR, first_name VARCHAR, last_name VARCHAR, create_time TIMESTAMPTZ);
                 CREATE TABLE salesforce.\"Contact\" (\"Id\" VARCHAR, \"Email\" VARCHAR,
                     \"FirstName\" VARCHAR, \"LastName\" VARCHAR, \"LastModifiedDate\" TIMESTAMPTZ,
                     \"_weft_deleted_at\" TIMESTAMPTZ);
                 INSERT INTO zoom.webinar_registrants VALUES
                   (1, 'r1', ' Barry.Smith@Example.com ', 'Barry', 'Smith', '2024-03-01 10:00:00+00'),
                   (2, 'r2', 'ann@example.com', 'Ann', 'Lee', '2024-01-01 10:00:00+00'),
                   (2, 'r3', 'ANN@example.com', 'Annie', 'Lee', '2024-02-01 10:00:00+00'),
                   (2, 'r4', NULL, 'No', 'Email', '2024-02-01 10:00:00+00');
                 INSERT INTO salesforce.\"Contact\" VALUES
                   ('003A', 'barry.smith@example.com', 'Bartholomew', 'Smith', '2024-04-01 09:00:00+00', NULL),
                   ('003B', 'cy@example.com', 'Cy', 'Young', '2024-01-05 00:00:00+00', NULL),
                   ('003C', 'gone@example.com', 'Gone', 'Away', '2024-01-05 00:00:00+00', '2024-02-01 00:00:00+00');",
            )
            .unwrap();
        let models = load_models_dir(&demo_dir()).unwrap();
        let names: Vec<(&str, Materialized)> = models
            .iter()
            .map(|m| (m.name.as_str(), m.materialized))
            .collect();
        assert_eq!(
            names,
            [
                ("models.people", Materialized::Table),
                ("models.crm_contacts", Materialized::View)
            ]
        );
        let runs = wh.run_models(&models).unwrap();
        assert_eq!(runs[0].rows, 3);
        // Only Ann is known to Zoom alone (with a last name).
        assert_eq!(runs[1].rows, 1);
        assert_eq!(
            wh.query_rows("SELECT email, first_name, last_name FROM models.crm_contacts")
                .unwrap(),
            vec![vec![json!("ann@example.com"), json!("Annie"), json!("Lee")]]
        );
        let rows = wh
            .query_rows(
                "SELECT email, first_name, last_name, sources, \
                 CAST(epoch(CAST(updated_at AS TIMESTAMP)) AS BIGINT) FROM models.people ORDER BY email",
            )
            .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    json!("ann@example.com"),
                    json!("Annie"),
                    json!("Lee"),
                    json!("zoom"),
                    json!(1_706_781_600)
                ],
                vec![
                    json!("barry.smith@example.com"),
                    json!("Bartholomew"),
                    json!("Smith"),
                    json!("salesforce,zoom"),
                    json!(1_711_962_000)
                ],
                vec![
                    json!("cy@example.com"),
                    json!("Cy"),
                    json!("Young"),
                    json!("salesforce"),
                    json!(1_704_412_800)
                ],
            ]
        );
    }
}
