//! SQL text for PostgreSQL: identifier quoting, the `_weft` tables, key matching.

use crate::WarehouseError;
pub(crate) use crate::sql::{column_list, ident, relation, table};

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); longer ones
/// are silently truncated by the server, so weft refuses them instead.
pub(crate) const MAX_IDENT_BYTES: usize = 63;

/// Serialises the creation of `_weft` (and of a load's target schema) among
/// concurrent connections: the first key of a two-key advisory lock.
pub(crate) const DDL_LOCK: i32 = 0x7765_6674; // "weft"

/// The `_weft` tables, created at connect (same columns as DuckDB's).
pub(crate) const INIT: &str = r#"
CREATE SCHEMA IF NOT EXISTS _weft;
CREATE TABLE IF NOT EXISTS _weft._weft_loads (
    load_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, stream TEXT NOT NULL,
    "rows" BIGINT NOT NULL, "files" BIGINT NOT NULL, "bytes" BIGINT NOT NULL,
    rejects BIGINT NOT NULL, started_at TIMESTAMPTZ NOT NULL, committed_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS _weft._weft_state (
    pipeline TEXT NOT NULL, stream TEXT NOT NULL, state TEXT NOT NULL,
    load_id TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pipeline, stream));
CREATE TABLE IF NOT EXISTS _weft._weft_rejects (
    pipeline TEXT NOT NULL, stream TEXT NOT NULL, load_id TEXT NOT NULL,
    record TEXT NOT NULL, reason TEXT NOT NULL, field TEXT,
    row_loaded BOOLEAN NOT NULL, rejected_at TIMESTAMPTZ NOT NULL);
"#;

/// Checks a name PostgreSQL must store as given: at most 63 bytes (longer
/// names would be truncated, and could collide) and no NUL byte.
pub(crate) fn check_ident(what: &'static str, name: &str) -> Result<(), WarehouseError> {
    let reason = if name.is_empty() {
        "it is empty".to_string()
    } else if name.len() > MAX_IDENT_BYTES {
        format!(
            "it is {} bytes long; PostgreSQL keeps at most {MAX_IDENT_BYTES}",
            name.len()
        )
    } else if name.contains('\0') {
        "it contains a NUL byte".to_string()
    } else {
        return Ok(());
    };
    Err(WarehouseError::InvalidName {
        what,
        name: name.to_string(),
        reason,
    })
}

/// Text PostgreSQL can store: a NUL byte becomes the six characters `\u0000`
/// (used for rejects and sync log text, which are diagnostics).
pub(crate) fn storable(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\\u0000")
    } else {
        text.to_string()
    }
}

/// SQL text without trailing whitespace and semicolons.
pub(crate) fn trim_sql(sql: &str) -> &str {
    let mut s = sql.trim_end();
    while let Some(rest) = s.strip_suffix(';') {
        s = rest.trim_end();
    }
    s
}
