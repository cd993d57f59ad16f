//! SQL text every warehouse writes the same way: quoted identifiers, the
//! merge's delete step, and the sync plan's columns. Dialect-specific text
//! (types, the winner pick, DDL) stays in each backend's folder.

use std::collections::BTreeMap;

use crate::WarehouseError;

/// A SQL string literal: `'…'` with quotes doubled.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quotes an identifier: `"` doubled inside double quotes.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub(crate) fn table(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

/// A comma-separated list of quoted column names.
pub(crate) fn column_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(ident).collect::<Vec<_>>().join(", ")
}

/// A `schema.table` (or `table`) name, each part quoted.
pub(crate) fn relation(name: &str) -> Result<String, WarehouseError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.trim().is_empty()) {
        return Err(WarehouseError::InvalidName {
            what: "table",
            name: name.to_string(),
            reason: "expected `table` or `schema.table`".to_string(),
        });
    }
    Ok(parts.into_iter().map(ident).collect::<Vec<_>>().join("."))
}

/// `left.k = right.k AND ...` over key columns.
///
/// Null-safe (`IS NOT DISTINCT FROM`) unless `non_null` says the right-hand
/// side holds no NULL key: then plain `=` means the same (a NULL on the left
/// matches nothing either way) and lets the planner hash-join or use an index.
pub(crate) fn key_match(left: &str, right: &str, keys: &[String], non_null: bool) -> String {
    let op = if non_null {
        "="
    } else {
        "IS NOT DISTINCT FROM"
    };
    keys.iter()
        .map(|k| {
            let k = ident(k);
            format!("{left}.{k} {op} {right}.{k}")
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The merge's first step: delete the loaded rows of every staged key (the
/// staged table is `staging`), unless a loaded row has a cursor greater than
/// the key's greatest staged cursor (that loaded row is newer and stays).
pub(crate) fn merge_delete(
    table: &str,
    staging: &str,
    keys: &[String],
    cursor: Option<&str>,
    non_null: bool,
) -> String {
    let key_cols = column_list(keys.iter().map(String::as_str));
    let (staged_keys, fresh) = match cursor {
        // The winner's cursor is the greatest staged one (NULL when all are).
        Some(c) => {
            let c = ident(c);
            (
                format!(
                    "SELECT {key_cols}, max({c}) AS __weft_c FROM {staging} GROUP BY {key_cols}"
                ),
                format!(
                    " AND NOT EXISTS (SELECT 1 FROM {table} AS __weft_o WHERE {} \
                     AND __weft_o.{c} > __weft_s.__weft_c)",
                    key_match("__weft_o", "__weft_s", keys, non_null)
                ),
            )
        }
        None => (
            format!("SELECT DISTINCT {key_cols} FROM {staging}"),
            String::new(),
        ),
    };
    format!(
        "DELETE FROM {table} AS __weft_t WHERE EXISTS (SELECT 1 FROM ({staged_keys}) \
         AS __weft_s WHERE {}{fresh})",
        key_match("__weft_t", "__weft_s", keys, non_null)
    )
}

/// The merge's filter on staged rows `__weft_s` after [`merge_delete`]: a key
/// still loaded has a newer row, so its staged rows lose (` WHERE NOT EXISTS …`).
pub(crate) fn not_still_loaded(table: &str, keys: &[String], non_null: bool) -> String {
    format!(
        " WHERE NOT EXISTS (SELECT 1 FROM {table} AS __weft_t WHERE {})",
        key_match("__weft_t", "__weft_s", keys, non_null)
    )
}

/// A sync's snapshot table, `_weft._weft_sync_snapshot_{sync}`.
pub(crate) fn snapshot_table(sync: &str) -> String {
    format!("_weft.{}", ident(&format!("_weft_sync_snapshot_{sync}")))
}

/// The plan table's column holding mapped value `i`.
pub(crate) fn value_column(i: usize) -> String {
    ident(&format!("__weft_c{i}"))
}

/// The mapped model columns of a sync plan: `, "col" AS "__weft_c0", …` for
/// the model's select, and `, m."__weft_c0", …` for the plan's (both empty
/// when nothing is mapped).
pub(crate) fn mapped_columns(mapping: &BTreeMap<String, String>) -> (String, String) {
    let (mut select, mut picked) = (String::new(), String::new());
    for (i, col) in mapping.values().enumerate() {
        select.push_str(&format!(", {} AS {}", ident(col), value_column(i)));
        picked.push_str(&format!(", m.{}", value_column(i)));
    }
    (select, picked)
}

/// Parses a stream's saved state (JSON text in `_weft._weft_state`).
pub(crate) fn parse_state(
    pipeline: &str,
    stream: &str,
    text: &str,
) -> Result<serde_json::Value, WarehouseError> {
    serde_json::from_str(text).map_err(|source| WarehouseError::InvalidState {
        pipeline: pipeline.to_string(),
        stream: stream.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_quoted() {
        assert_eq!(ident(r#"we"ird col"#), r#""we""ird col""#);
        assert_eq!(table("stripe", "Custom__c"), r#""stripe"."Custom__c""#);
        assert_eq!(relation("models.people").unwrap(), r#""models"."people""#);
        assert_eq!(relation("people").unwrap(), r#""people""#);
        assert!(relation("a.b.c").is_err());
        assert!(relation("a.").is_err());
    }

    #[test]
    fn keys_match_null_safely_unless_none_is_null() {
        let keys = ["id".to_string(), "k".to_string()];
        assert_eq!(
            key_match("t", "s", &keys, false),
            r#"t."id" IS NOT DISTINCT FROM s."id" AND t."k" IS NOT DISTINCT FROM s."k""#
        );
        assert_eq!(key_match("t", "s", &keys[..1], true), r#"t."id" = s."id""#);
    }

    #[test]
    fn merge_delete_keeps_newer_loaded_rows() {
        let keys = ["id".to_string()];
        assert_eq!(
            merge_delete("x.t", "stg", &keys, Some("u"), false),
            r#"DELETE FROM x.t AS __weft_t WHERE EXISTS (SELECT 1 FROM (SELECT "id", max("u") AS __weft_c FROM stg GROUP BY "id") AS __weft_s WHERE __weft_t."id" IS NOT DISTINCT FROM __weft_s."id" AND NOT EXISTS (SELECT 1 FROM x.t AS __weft_o WHERE __weft_o."id" IS NOT DISTINCT FROM __weft_s."id" AND __weft_o."u" > __weft_s.__weft_c))"#
        );
        assert_eq!(
            merge_delete("x.t", "stg", &keys, None, true),
            r#"DELETE FROM x.t AS __weft_t WHERE EXISTS (SELECT 1 FROM (SELECT DISTINCT "id" FROM stg) AS __weft_s WHERE __weft_t."id" = __weft_s."id")"#
        );
    }

    #[test]
    fn mapped_columns_follow_the_mapping_order() {
        let mut mapping = BTreeMap::new();
        assert_eq!(mapped_columns(&mapping), (String::new(), String::new()));
        mapping.insert("email_address".to_string(), "email".to_string());
        mapping.insert("name".to_string(), "Full Name".to_string());
        assert_eq!(
            mapped_columns(&mapping),
            (
                r#", "email" AS "__weft_c0", "Full Name" AS "__weft_c1""#.to_string(),
                r#", m."__weft_c0", m."__weft_c1""#.to_string()
            )
        );
    }
}
