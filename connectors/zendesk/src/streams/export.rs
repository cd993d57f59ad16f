//! Zendesk's incremental exports.
//!
//! Cursor-based (tickets, users, and ticket comments through the tickets'
//! export): the first run starts at `start_time`, then
//! follows `after_url` until `end_of_stream`; after every page the state is
//! `{"cursor": after_cursor}`, so a re-run (or a resumed run) asks for exactly
//! the records changed since. Deleted tickets come with status `deleted` and
//! get `_weft_deleted_at` (their `updated_at`, the deletion time).
//!
//! Time-based (organizations): pages start at the previous page's `end_time`,
//! so a page repeats the records of that second: those already emitted are
//! dropped (only the boundary second's ids are kept). The state is
//! `{"start_time": t}`, a safe watermark at least `settle_secs` old.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use weft_core::{
    CatalogStream, DELETED_AT, EventSender, ReadRequest, SourceEvent, StreamState, Watermark,
};
use weft_http::{Parent, fetch_children, paginate};

use super::{Inner, StreamOptions, endpoint, json_page, next_page, send};
use crate::ZendeskError;
use crate::client::{ExportStart, ZendeskClient};

/// Reads a cursor-based export, checkpointing its cursor after every page.
pub(super) async fn by_cursor(
    inner: &Inner,
    stream: &CatalogStream,
    opts: &StreamOptions,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), ZendeskError> {
    let name = &stream.spec.name;
    let path = endpoint(stream)?;
    let saved: Option<String> = request.state.as_ref().and_then(|s| s.get("cursor"));
    let start = match &saved {
        Some(c) => ExportStart::Cursor(c),
        None => ExportStart::Time(inner.config.start_time),
    };
    let mut pages = paginate(
        inner.client.exports.clone(),
        inner.client.export(path, start),
        ZendeskClient::export_pagination(&opts.items),
        Arc::clone(&request.metrics),
    );
    let children = match opts.read {
        super::Read::Children => Some(opts.child_list(name)?),
        _ => None,
    };
    let mut checkpointed = false;
    while let Some(page) = next_page(&mut pages, request, name).await? {
        let shape = |reason: String| ZendeskError::Shape {
            stream: name.clone(),
            endpoint: path.to_string(),
            page: page.number,
            reason,
        };
        let cursor = page
            .body_fields
            .get("after_cursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        let records = if stream.deletes {
            page.records
                .into_iter()
                .map(mark_deleted)
                .collect::<Result<Vec<_>, _>>()
                .map_err(shape)?
        } else {
            page.records
        };
        let had_records = !records.is_empty();
        let records = match &children {
            Some(list) => {
                let parents = live_parents(&records).map_err(shape)?;
                fetch_children(&inner.client.http, list, parents, &request.metrics).await?
            }
            None => records,
        };
        if !records.is_empty() {
            send(tx, json_page(records), name).await?;
        }
        match cursor {
            Some(c) => {
                send(tx, SourceEvent::Checkpoint(cursor_state(&c)), name).await?;
                checkpointed = true;
            }
            None if had_records => {
                return Err(shape("a page with records has no `after_cursor`".into()));
            }
            None => {}
        }
    }
    if !checkpointed {
        // Nothing moved: keep what was saved.
        let state = saved
            .as_deref()
            .map_or_else(|| StreamState(json!({})), cursor_state);
        send(tx, SourceEvent::Checkpoint(state), name).await?;
    }
    Ok(())
}

/// The parents whose children are read: every record but deleted tickets
/// (their comments are gone with them), with its `updated_at`.
fn live_parents(records: &[Box<RawValue>]) -> Result<Vec<Parent>, String> {
    let mut parents = Vec::with_capacity(records.len());
    for raw in records {
        let head: ParentHead<'_> =
            serde_json::from_str(raw.get()).map_err(|e| format!("record is not an object: {e}"))?;
        if head.status == Some("deleted") {
            continue;
        }
        let id = head.id;
        let key = head.updated_at.map_or(Value::Null, Value::from);
        parents.push(Parent { id, key });
    }
    Ok(parents)
}

#[derive(Deserialize)]
struct ParentHead<'a> {
    id: Value,
    #[serde(borrow, default)]
    status: Option<&'a str>,
    #[serde(default)]
    updated_at: Option<String>,
}

fn cursor_state(cursor: &str) -> StreamState {
    StreamState(json!({ "cursor": cursor }))
}

#[derive(Deserialize)]
struct TicketHead<'a> {
    #[serde(borrow, default)]
    status: Option<&'a str>,
    #[serde(default)]
    updated_at: Option<String>,
}

/// Adds `_weft_deleted_at` (its `updated_at`) to a ticket with status `deleted`.
fn mark_deleted(raw: Box<RawValue>) -> Result<Box<RawValue>, String> {
    let head: TicketHead<'_> =
        serde_json::from_str(raw.get()).map_err(|e| format!("record is not an object: {e}"))?;
    if head.status != Some("deleted") {
        return Ok(raw);
    }
    let at = head
        .updated_at
        .ok_or_else(|| "deleted ticket without `updated_at`".to_string())?;
    let mut map: serde_json::Map<String, Value> =
        serde_json::from_str(raw.get()).map_err(|e| format!("deleted ticket: {e}"))?;
    map.insert(DELETED_AT.into(), Value::String(at));
    let text = serde_json::to_string(&map).map_err(|e| e.to_string())?;
    RawValue::from_string(text).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct Head {
    id: Value,
    #[serde(default)]
    updated_at: Option<String>,
}

/// Reads the time-based export, dropping the repeated boundary records.
pub(super) async fn by_time(
    inner: &Inner,
    stream: &CatalogStream,
    opts: &StreamOptions,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), ZendeskError> {
    let name = &stream.spec.name;
    let path = endpoint(stream)?;
    let saved: Option<i64> = request.state.as_ref().and_then(|s| s.get("start_time"));
    let start = saved.unwrap_or(inner.config.start_time);
    let settle = i64::try_from(inner.config.settle_secs).unwrap_or(i64::MAX);
    let mut watermark = Watermark::new(saved, request.started_at.timestamp(), settle);
    let mut pages = paginate(
        inner.client.exports.clone(),
        inner.client.export(path, ExportStart::Time(start)),
        ZendeskClient::time_export_pagination(&opts.items),
        Arc::clone(&request.metrics),
    );
    // The last page's end time and the ids emitted with exactly that update time.
    let mut boundary: (Option<i64>, HashSet<String>) = (None, HashSet::new());
    while let Some(page) = next_page(&mut pages, request, name).await? {
        let shape = |reason: String| ZendeskError::Shape {
            stream: name.clone(),
            endpoint: path.to_string(),
            page: page.number,
            reason,
        };
        let end_time = page
            .body_fields
            .get("end_time")
            .and_then(Value::as_i64)
            .ok_or_else(|| shape("no integer `end_time`".into()))?;
        let mut next_ids = if boundary.0 == Some(end_time) {
            boundary.1.clone()
        } else {
            HashSet::new()
        };
        let mut kept = Vec::with_capacity(page.records.len());
        for raw in page.records {
            let head: Head = serde_json::from_str(raw.get())
                .map_err(|e| shape(format!("record without `id`: {e}")))?;
            let id = head.id.to_string();
            let at = head
                .updated_at
                .as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|d| d.timestamp())
                        .map_err(|e| shape(format!("record {id}: `updated_at` {t:?}: {e}")))
                })
                .transpose()?;
            if at.is_some() && at == boundary.0 && boundary.1.contains(&id) {
                continue;
            }
            if at == Some(end_time) {
                next_ids.insert(id);
            }
            kept.push(raw);
        }
        boundary = (Some(end_time), next_ids);
        watermark.observe(end_time);
        if !kept.is_empty() {
            send(tx, json_page(kept), name).await?;
        }
        let state = StreamState(json!({ "start_time": watermark.value().unwrap_or(start) }));
        send(tx, SourceEvent::Checkpoint(state), name).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_deleted_tickets_are_marked() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        let open = mark_deleted(raw(r#"{"id":1,"status":"open","updated_at":"x"}"#)).unwrap();
        assert_eq!(open.get(), r#"{"id":1,"status":"open","updated_at":"x"}"#);
        let gone = mark_deleted(raw(
            r#"{"id":2,"status":"deleted","updated_at":"2026-11-01T00:00:00Z"}"#,
        ))
        .unwrap();
        let v: Value = serde_json::from_str(gone.get()).unwrap();
        assert_eq!(v[DELETED_AT], "2026-11-01T00:00:00Z");
        assert!(mark_deleted(raw(r#"{"id":3,"status":"deleted"}"#)).is_err());
    }
}
