//! The sync log's pre-images and a run's writes, read back for a rollback:
//! SQL both warehouses run (with their own placeholders) and the parsing of
//! its rows into [`SyncLogEntry`]s.

use std::collections::BTreeMap;

use weft_core::{SyncAction, SyncLogEntry};

use crate::WarehouseError;

/// The pre-image of the batch row `b` (of sync `sync_param`): the fields
/// sent by the key's latest acknowledged create or update logged before
/// it; NULL for a create, which replaces nothing.
pub(crate) fn previous_sql(sync_param: &str) -> String {
    format!(
        "CASE WHEN b.\"action\" = 'create' THEN NULL ELSE (SELECT p.sent FROM \
         _weft._weft_sync_log AS p WHERE p.sync = {sync_param} AND p.\"key\" = b.\"key\" \
         AND p.result = 'ok' AND p.\"action\" <> 'delete' ORDER BY p.\"at\" DESC LIMIT 1) END"
    )
}

/// A run's logged writes with their pre-images and whether a later
/// acknowledged write of the key exists, in key order; columns `key`,
/// `action`, `result`, `sent`, `previous`, `superseded`.
pub(crate) fn run_log_sql(sync_param: &str, run_param: &str) -> String {
    format!(
        "SELECT l.\"key\", l.\"action\", l.result, l.sent, l.previous, EXISTS (SELECT 1 FROM \
         _weft._weft_sync_log AS p WHERE p.sync = l.sync AND p.\"key\" = l.\"key\" AND \
         p.result = 'ok' AND p.\"at\" > l.\"at\") AS superseded FROM _weft._weft_sync_log AS l \
         WHERE l.sync = {sync_param} AND l.run_id = {run_param} ORDER BY l.\"key\""
    )
}

/// One row of [`run_log_sql`] as an entry; `shown` names the sync in errors.
pub(crate) fn entry(
    shown: &str,
    key: String,
    action: &str,
    result: &str,
    sent: Option<String>,
    previous: Option<String>,
    superseded: bool,
) -> Result<SyncLogEntry, WarehouseError> {
    let corrupt = |reason: String| WarehouseError::Corrupt {
        what: format!("{shown}: _weft._weft_sync_log row of key `{key}`"),
        reason,
    };
    let action = match action {
        "create" => SyncAction::Create,
        "update" => SyncAction::Update,
        "delete" => SyncAction::Delete,
        other => return Err(corrupt(format!("unknown action `{other}`"))),
    };
    let fields = |text: Option<String>,
                  what: &str|
     -> Result<Option<BTreeMap<String, serde_json::Value>>, WarehouseError> {
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| corrupt(format!("`{what}` is not a JSON object of fields: {e}")))
        })
        .transpose()
    };
    Ok(SyncLogEntry {
        action,
        acknowledged: result == "ok",
        sent: fields(sent, "sent")?.unwrap_or_default(),
        previous: fields(previous, "previous")?,
        superseded,
        key,
    })
}
