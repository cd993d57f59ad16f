//! SQL text every warehouse writes the same way: quoted identifiers, the
//! merge's delete step, the `history` load's steps, and the sync plan's
//! columns. Dialect-specific text
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

/// A `history` table's version columns: when the version became the
/// record's (the commit that loaded it), when it stopped being (NULL while
/// current), and whether it is the record's live version.
pub(crate) const VALID_FROM: &str = "_weft_valid_from";
/// See [`VALID_FROM`].
pub(crate) const VALID_TO: &str = "_weft_valid_to";
/// See [`VALID_FROM`].
pub(crate) const IS_CURRENT: &str = "_weft_is_current";

/// `ALTER TABLE … ADD COLUMN IF NOT EXISTS` of each version column of a
/// `history` table (same types in DuckDB and PostgreSQL).
pub(crate) fn history_columns(table: &str) -> Vec<String> {
    [
        (VALID_FROM, "TIMESTAMPTZ"),
        (VALID_TO, "TIMESTAMPTZ"),
        (IS_CURRENT, "BOOLEAN"),
    ]
    .into_iter()
    .map(|(c, ty)| {
        format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {ty}",
            ident(c)
        )
    })
    .collect()
}

/// What a `history` load needs to know about its staged rows.
pub(crate) struct HistoryLoad<'a> {
    /// The target table, quoted.
    pub(crate) table: &'a str,
    /// The staging table, quoted.
    pub(crate) staging: &'a str,
    /// The staged columns (the target has them all).
    pub(crate) columns: &'a [&'a str],
    /// The primary key (at least one column).
    pub(crate) keys: &'a [String],
    /// The cursor column, if the stream has one.
    pub(crate) cursor: Option<&'a str>,
    /// The staging table's row-order column.
    pub(crate) seq: &'a str,
}

/// The statements of a `history` (SCD type 2) load, in order, each with its
/// step name; the last but two inserts the new versions (its row count is
/// the load's rows). Run inside the load's transaction, where `now()` is
/// the commit's one time:
///
/// 1. the winners: per key, the staged row a merge would keep (greatest
///    cursor, NULLs last, ties to the last staged);
/// 2. each of their keys' latest version (greatest `_weft_valid_from`);
/// 3. winners that change nothing are dropped: the latest version is newer
///    (greater cursor), or it is current and every stream column (weft's
///    own `_weft_*` columns aside) holds the same value, NULL-safely, or it
///    ended by a delete and the winner is deleted too;
/// 4. the current versions of the remaining keys are closed (`valid_to` =
///    now, not current);
/// 5. the remaining winners are inserted from now: current, or, when the
///    source reported them deleted (`_weft_deleted_at`), closed at once — a
///    zero-length version that records the delete;
/// 6. the work tables are dropped.
pub(crate) fn history_apply(h: &HistoryLoad<'_>) -> Vec<(&'static str, String)> {
    const WINNERS: &str = "__weft_versions";
    const LATEST: &str = "__weft_latest";
    let (table, staging) = (h.table, h.staging);
    let names = column_list(h.columns.iter().copied());
    let key_cols = column_list(h.keys.iter().map(String::as_str));
    let seq = ident(h.seq);
    let order = match h.cursor {
        Some(c) => format!("{} DESC NULLS LAST, {seq} DESC", ident(c)),
        None => format!("{seq} DESC"),
    };
    let deletes = h.columns.contains(&weft_core::DELETED_AT);
    let deleted_at = ident(weft_core::DELETED_AT);
    let (from, to, current) = (ident(VALID_FROM), ident(VALID_TO), ident(IS_CURRENT));
    let stale = match h.cursor {
        Some(c) => format!("__weft_o.{0} > __weft_s.{0}", ident(c)),
        None => "FALSE".to_string(),
    };
    let same: Vec<String> = h
        .columns
        .iter()
        .filter(|c| !c.starts_with("_weft_"))
        .map(|c| format!("__weft_o.{0} IS NOT DISTINCT FROM __weft_s.{0}", ident(c)))
        .collect();
    let same = if same.is_empty() {
        "TRUE".to_string()
    } else {
        same.join(" AND ")
    };
    let (live, dead) = if deletes {
        (
            format!("__weft_s.{deleted_at} IS NULL"),
            format!("__weft_s.{deleted_at} IS NOT NULL"),
        )
    } else {
        ("TRUE".to_string(), "FALSE".to_string())
    };
    let (valid_to, is_current) = if deletes {
        (
            format!("CASE WHEN {deleted_at} IS NULL THEN NULL ELSE now() END"),
            format!("{deleted_at} IS NULL"),
        )
    } else {
        ("NULL".to_string(), "TRUE".to_string())
    };
    vec![
        (
            "history: winners",
            format!("DROP TABLE IF EXISTS {WINNERS}"),
        ),
        (
            "history: winners",
            format!(
                "CREATE TEMP TABLE {WINNERS} AS SELECT {names} FROM (SELECT {names}, \
                 row_number() OVER (PARTITION BY {key_cols} ORDER BY {order}) AS __weft_rn \
                 FROM {staging}) AS __weft_x WHERE __weft_rn = 1"
            ),
        ),
        ("history: latest", format!("DROP TABLE IF EXISTS {LATEST}")),
        (
            "history: latest",
            format!(
                "CREATE TEMP TABLE {LATEST} AS SELECT {names}, {current} FROM (SELECT {names}, \
                 {current}, row_number() OVER (PARTITION BY {key_cols} ORDER BY {from} DESC \
                 NULLS LAST) AS __weft_rn FROM {table} AS __weft_t WHERE EXISTS (SELECT 1 FROM {WINNERS} \
                 AS __weft_s WHERE {})) AS __weft_x WHERE __weft_rn = 1",
                key_match("__weft_t", "__weft_s", h.keys, false)
            ),
        ),
        (
            "history: unchanged",
            format!(
                "DELETE FROM {WINNERS} AS __weft_s WHERE EXISTS (SELECT 1 FROM {LATEST} AS \
                 __weft_o WHERE {} AND (({stale}) OR (__weft_o.{current} AND {live} AND {same}) \
                 OR (NOT __weft_o.{current} AND {dead})))",
                key_match("__weft_o", "__weft_s", h.keys, false)
            ),
        ),
        (
            "history: close",
            format!(
                "UPDATE {table} SET {to} = now(), {current} = FALSE WHERE {table}.{current} \
                 AND EXISTS (SELECT 1 FROM {WINNERS} AS __weft_s WHERE {})",
                key_match(table, "__weft_s", h.keys, false)
            ),
        ),
        (
            "history: insert",
            format!(
                "INSERT INTO {table} ({names}, {from}, {to}, {current}) SELECT {names}, now(), \
                 {valid_to}, {is_current} FROM {WINNERS}"
            ),
        ),
        ("history: drop", format!("DROP TABLE {WINNERS}")),
        ("history: drop", format!("DROP TABLE {LATEST}")),
    ]
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
