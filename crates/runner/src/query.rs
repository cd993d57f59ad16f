//! `weft query`: one SQL statement against the configured warehouse.

use serde_json::Value;
use weft_warehouse::QueryResult;

use crate::{RunnerError, WeftConfig, open_warehouse};

/// The widest a cell is printed; longer values end in `…`.
const MAX_CELL_CHARS: usize = 60;

/// Runs `sql` in the warehouse `config` names (DuckDB or PostgreSQL).
pub async fn query(config: &WeftConfig, sql: &str) -> Result<QueryResult, RunnerError> {
    let warehouse = open_warehouse(config).await?;
    Ok(warehouse.query(sql).await?)
}

/// A cell as printed: text as it is, `NULL`, other JSON values compact.
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_CELL_CHARS {
        let cut: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// `result` as an aligned text table with a header and a row count.
pub fn render_query(result: &QueryResult) -> String {
    let rows: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let mut widths: Vec<usize> = result.columns.iter().map(|c| c.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join(" | ").trim_end())
    };
    let mut out = String::new();
    if !result.columns.is_empty() {
        out.push_str(&line(&result.columns));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&format!("{}\n", rule.join("-+-")));
    }
    for row in &rows {
        out.push_str(&line(row));
    }
    let n = rows.len();
    out.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_and_count_rows() {
        let result = QueryResult {
            columns: vec!["email".into(), "n".into(), "meta".into()],
            rows: vec![
                vec![json!("a@example.com"), json!(1), json!({"k": [1, 2]})],
                vec![json!("b"), Value::Null, json!("x".repeat(70))],
            ],
        };
        let text = render_query(&result);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "email         | n    | meta");
        assert_eq!(
            lines[1],
            format!("{}-+-{}-+-{}", "-".repeat(13), "----", "-".repeat(60))
        );
        assert_eq!(lines[2], r#"a@example.com | 1    | {"k":[1,2]}"#);
        assert_eq!(
            lines[3],
            format!("b             | NULL | {}…", "x".repeat(59))
        );
        assert_eq!(lines[4], "(2 rows)");
        assert_eq!(render_query(&QueryResult::default()), "(0 rows)\n");
    }
}
