//! Expectations on declared columns: `expect_not_null` and `expect_unique`
//! of `[pipelines.per_stream.NAME]`, counted by SQL in the warehouse after a
//! pipeline run's loads committed (through [`Warehouse::query_rows`] only,
//! so the same on DuckDB and PostgreSQL).
//!
//! - `expect_not_null = ["email"]`: the rows whose `email` IS NULL, not
//!   counting rows with `_weft_deleted_at` set when the table has it.
//! - `expect_unique = ["id"]`: each listed column on its own; the number of
//!   distinct non-NULL values that occur more than once.
//!
//! A failed expectation is a `quality P.S: …` notice of the stream; with
//! `on_quality_failure = "fail"` the stream also counts as failed. A column
//! the table does not have always fails the stream. Loads are never undone.
//! Every expectation counted, held or not, is a row of `_weft._weft_quality`
//! (kind `not_null` / `unique`, the count observed, status `ok`, `warn` or
//! `fail`).

use weft_core::{RunReport, StreamStatus};
use weft_warehouse::{QualityKind, QualityRow, QualityStatus, Warehouse};

use crate::config::QualityAction;
use crate::quality::{fail_stream, flag_notice};
use crate::{PipelineConfig, WarehouseConfig, WeftConfig};

/// The soft-delete column rows deleted at the source carry.
const DELETED_AT: &str = "_weft_deleted_at";

/// Quotes an identifier: `"` doubled inside double quotes.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal: `'…'` with quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `SELECT count(*)` of the rows of `schema.table` whose `column` IS NULL
/// (rows with `_weft_deleted_at` set left out when `soft_delete`).
pub(crate) fn null_count_sql(schema: &str, table: &str, column: &str, soft_delete: bool) -> String {
    let deleted = if soft_delete {
        format!(" AND {} IS NULL", ident(DELETED_AT))
    } else {
        String::new()
    };
    format!(
        "SELECT count(*) FROM {}.{} WHERE {} IS NULL{deleted}",
        ident(schema),
        ident(table),
        ident(column)
    )
}

/// `SELECT count(*)` of the non-NULL values of `column` in `schema.table`
/// that occur more than once.
pub(crate) fn duplicate_count_sql(schema: &str, table: &str, column: &str) -> String {
    let c = ident(column);
    format!(
        "SELECT count(*) FROM (SELECT {c} FROM {}.{} WHERE {c} IS NOT NULL GROUP BY {c} \
         HAVING count(*) > 1) AS dup",
        ident(schema),
        ident(table)
    )
}

/// The column names of `schema.table` (empty when it does not exist).
pub(crate) fn columns_sql(schema: &str, table: &str) -> String {
    format!(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = {} \
         AND table_name = {} ORDER BY ordinal_position",
        literal(schema),
        literal(table)
    )
}

/// The schema pipeline `name` loads into (PostgreSQL's `schema_prefix` first).
fn schema_of(config: &WeftConfig, name: &str) -> String {
    match &config.warehouse {
        WarehouseConfig::Postgres {
            schema_prefix: Some(prefix),
            ..
        } => format!("{prefix}{name}"),
        _ => name.to_string(),
    }
}

/// The first cell of a `count(*)` answer as a number.
fn count_of(rows: &[Vec<serde_json::Value>]) -> Result<u64, String> {
    let cell = rows.first().and_then(|r| r.first());
    cell.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
    .ok_or_else(|| format!("a count came back as {cell:?}"))
}

/// One expectation of a stream, counted (or why it could not be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// What it found, e.g. `email has 3 NULLs` (`email has no NULL` when
    /// it holds).
    pub(crate) message: String,
    /// Whether it fails the stream (its action is `fail`, or it could not
    /// be checked at all).
    pub(crate) fails: bool,
    /// Whether it is a finding of the report (a NULL or duplicate found,
    /// or no count); `false` when the expectation holds.
    pub(crate) flagged: bool,
    /// `not_null` or `unique`.
    pub(crate) kind: QualityKind,
    /// The column counted (`None` when the columns could not be read).
    pub(crate) column: Option<String>,
    /// The count (`None` when it could not be counted).
    pub(crate) observed: Option<u64>,
}

/// Counts the expectations of one stream in the warehouse.
async fn stream_findings(
    warehouse: &dyn Warehouse,
    schema: &str,
    table: &str,
    not_null: &[String],
    unique: &[String],
    action: QualityAction,
) -> Vec<Finding> {
    let fails = action == QualityAction::Fail;
    let error = |kind: QualityKind, column: Option<&String>, message: String| Finding {
        message,
        fails: true,
        flagged: true,
        kind,
        column: column.cloned(),
        observed: None,
    };
    let columns: Vec<String> = match warehouse.query_rows(&columns_sql(schema, table)).await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|r| r.first().and_then(|v| v.as_str().map(String::from)))
            .collect(),
        Err(e) => {
            let kind = if not_null.is_empty() {
                QualityKind::Unique
            } else {
                QualityKind::NotNull
            };
            return vec![error(
                kind,
                None,
                format!("could not read the columns: {e}"),
            )];
        }
    };
    // No table: nothing was ever loaded, so no row can break an expectation.
    if columns.is_empty() {
        return Vec::new();
    }
    let soft_delete = columns.iter().any(|c| c == DELETED_AT);
    let mut out = Vec::new();
    let checks = not_null
        .iter()
        .map(|c| ("expect_not_null", QualityKind::NotNull, c))
        .chain(
            unique
                .iter()
                .map(|c| ("expect_unique", QualityKind::Unique, c)),
        );
    for (key, kind, column) in checks {
        let is_null_check = kind == QualityKind::NotNull;
        if !columns.contains(column) {
            out.push(error(
                kind,
                Some(column),
                format!(
                    "{key} names column `{column}`, which table {schema}.{table} does not have"
                ),
            ));
            continue;
        }
        let sql = if is_null_check {
            null_count_sql(schema, table, column, soft_delete)
        } else {
            duplicate_count_sql(schema, table, column)
        };
        let n = match warehouse.query_rows(&sql).await {
            Ok(rows) => count_of(&rows),
            Err(e) => Err(e.to_string()),
        };
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        match n {
            Ok(n) => out.push(Finding {
                message: match (is_null_check, n) {
                    (true, 0) => format!("{column} has no NULL"),
                    (false, 0) => format!("{column} has no duplicated value"),
                    (true, n) => format!("{column} has {n} NULL{}", plural(n)),
                    (false, n) => format!("{column} has {n} duplicated value{}", plural(n)),
                },
                fails: fails && n > 0,
                flagged: n > 0,
                kind,
                column: Some(column.clone()),
                observed: Some(n),
            }),
            Err(e) => out.push(error(
                kind,
                Some(column),
                format!("{key} on `{column}` could not be counted: {e}"),
            )),
        }
    }
    out
}

/// Evaluates the expectations of `p`'s streams that committed in `report`
/// (succeeded or stopped at a quota) and writes each failure into the
/// report: a `quality P.S: …` notice, and for a failing one the stream's
/// status `Failed` with the reason in its error. Returns one quality row
/// per expectation counted (run `run_id`), held or not.
pub(crate) async fn check_expectations(
    config: &WeftConfig,
    warehouse: &dyn Warehouse,
    p: &PipelineConfig,
    run_id: &str,
    report: &mut RunReport,
) -> Vec<QualityRow> {
    let schema = schema_of(config, &p.name);
    let mut rows = Vec::new();
    for stream in &mut report.streams {
        let Some(settings) = p.per_stream.get(&stream.stream) else {
            continue;
        };
        if settings.expect_not_null.is_empty() && settings.expect_unique.is_empty() {
            continue;
        }
        if !matches!(
            stream.status,
            StreamStatus::Succeeded | StreamStatus::QuotaReached
        ) {
            continue;
        }
        let action = settings
            .on_quality_failure
            .or(p.on_quality_failure)
            .unwrap_or_default();
        let findings = stream_findings(
            warehouse,
            &schema,
            &stream.stream,
            &settings.expect_not_null,
            &settings.expect_unique,
            action,
        )
        .await;
        let mut failing = Vec::new();
        for f in findings {
            rows.push(QualityRow {
                run_id: run_id.to_string(),
                pipeline: p.name.clone(),
                stream: stream.stream.clone(),
                load_id: None,
                kind: f.kind,
                column: f.column.clone(),
                observed: f.observed.map(|n| n as f64),
                expected: Some(0.0),
                threshold: Some("0".to_string()),
                status: match (f.flagged, f.fails) {
                    (false, _) => QualityStatus::Ok,
                    (true, false) => QualityStatus::Warn,
                    (true, true) => QualityStatus::Fail,
                },
                message: f.message.clone(),
                checked_at: chrono::Utc::now(),
            });
            if !f.flagged {
                continue;
            }
            flag_notice(stream, &p.name, &f.message);
            if f.fails {
                failing.push(f.message);
            }
        }
        if !failing.is_empty() {
            fail_stream(
                stream,
                &format!(
                    "quality expectations failed (the loaded data stays committed): {}",
                    failing.join("; ")
                ),
            );
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_quote_identifiers_and_skip_soft_deleted_rows() {
        assert_eq!(
            null_count_sql("stripe", "customers", "email", false),
            r#"SELECT count(*) FROM "stripe"."customers" WHERE "email" IS NULL"#
        );
        assert_eq!(
            null_count_sql("sf", "Contact", "Email", true),
            r#"SELECT count(*) FROM "sf"."Contact" WHERE "Email" IS NULL AND "_weft_deleted_at" IS NULL"#
        );
        // Quotes inside names are doubled, so a name cannot end the identifier.
        assert_eq!(
            null_count_sql("p\"x", "t", "a\"; DROP TABLE t; --", false),
            r#"SELECT count(*) FROM "p""x"."t" WHERE "a""; DROP TABLE t; --" IS NULL"#
        );
        assert_eq!(
            duplicate_count_sql("stripe", "customers", "id"),
            r#"SELECT count(*) FROM (SELECT "id" FROM "stripe"."customers" WHERE "id" IS NOT NULL GROUP BY "id" HAVING count(*) > 1) AS dup"#
        );
        assert_eq!(
            columns_sql("o'b", "t"),
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'o''b' \
             AND table_name = 't' ORDER BY ordinal_position"
        );
    }

    #[test]
    fn counts_read_as_numbers_or_text() {
        use serde_json::json;
        assert_eq!(count_of(&[vec![json!(3)]]), Ok(3));
        assert_eq!(count_of(&[vec![json!("12")]]), Ok(12));
        assert!(count_of(&[]).is_err());
        assert!(count_of(&[vec![json!(null)]]).is_err());
    }

    #[test]
    fn expectations_and_their_action_parse_per_stream_and_pipeline() {
        let text = "[warehouse]\nkind = \"duckdb\"\npath = \"w.duckdb\"\n[[pipelines]]\n\
                    name = \"stripe\"\nconnector = \"stripe\"\non_quality_failure = \"fail\"\n\
                    [pipelines.per_stream.customers]\nexpect_not_null = [\"email\"]\n\
                    expect_unique = [\"id\", \"email\"]\n\
                    [pipelines.per_stream.charges]\non_quality_failure = \"warn\"\n";
        let config = WeftConfig::parse(text);
        let Ok(config) = config else {
            panic!("{config:?}");
        };
        let p = &config.pipelines[0];
        assert_eq!(p.on_quality_failure, Some(QualityAction::Fail));
        assert_eq!(p.per_stream["customers"].expect_not_null, ["email"]);
        assert_eq!(p.per_stream["customers"].expect_unique, ["id", "email"]);
        assert_eq!(p.per_stream["customers"].on_quality_failure, None);
        assert_eq!(
            p.per_stream["charges"].on_quality_failure,
            Some(QualityAction::Warn)
        );
        let bad = text.replace("\"fail\"", "\"abort\"");
        let err = WeftConfig::parse(&bad).err().unwrap_or_default();
        assert!(err.contains("unknown variant `abort`"), "{err}");
    }
}
