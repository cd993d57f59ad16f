//! Changes to existing objects, read from `/v1/events`.
//!
//! Events are listed newest first; the first event seen for an object is its
//! newest state, so older events for the same object are skipped (a set of ids
//! is all that is kept). `*.deleted` events set `_weft_deleted_at`.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::value::RawValue;
use weft_core::{CatalogStream, DELETED_AT, EventSender, JsonPage, ReadRequest, SourceEvent};
use weft_http::paginate;

use super::{StreamOptions, next_page, send};
use crate::StripeError;
use crate::client::StripeClient;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    #[serde(borrow)]
    data: EventData<'a>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

#[derive(Deserialize)]
struct ObjectHead {
    id: String,
    object: String,
}

/// Emits the newest state of every object of this stream changed since `since`.
pub(super) async fn read_changes(
    inner: &super::Inner,
    stream: &CatalogStream,
    options: &StreamOptions,
    since: i64,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), StripeError> {
    let name = &stream.spec.name;
    let mut first = inner
        .client
        .list("/v1/events")
        .query("created[gte]", since.to_string());
    for t in &options.events {
        first = first.query("types[]", t.clone());
    }
    let mut pages = paginate(
        inner.client.http.clone(),
        first,
        StripeClient::pagination(),
        Arc::clone(&request.metrics),
    );
    let mut seen = HashSet::new();
    while let Some(page) = next_page(&mut pages, request, name).await? {
        let shape = |reason: String| StripeError::Shape {
            stream: name.clone(),
            endpoint: "/v1/events".into(),
            page: page.number,
            reason,
        };
        let mut records = Vec::with_capacity(page.records.len());
        for raw in &page.records {
            let event: Event<'_> = serde_json::from_str(raw.get())
                .map_err(|e| shape(format!("event without type/created/data.object: {e}")))?;
            if !options.events.iter().any(|t| t == &event.kind) {
                continue;
            }
            let head: ObjectHead = serde_json::from_str(event.data.object.get())
                .map_err(|e| shape(format!("event object without id/object: {e}")))?;
            if head.object != options.object || !seen.insert(head.id) {
                continue;
            }
            let record = if event.kind.ends_with(".deleted") {
                mark_deleted(event.data.object, event.created).map_err(shape)?
            } else {
                event.data.object.to_owned()
            };
            records.push(record);
        }
        if !records.is_empty() {
            send(tx, SourceEvent::Page(JsonPage { records }), name).await?;
        }
    }
    Ok(())
}

/// Marks a listed object deleted at its `field` (Unix seconds) when that is
/// set; an object without it, or that does not parse, is passed on as it is
/// (the decoder quarantines what does not parse).
pub(super) fn mark_if_set(object: Box<RawValue>, field: &str) -> Box<RawValue> {
    let at = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(object.get())
        .ok()
        .and_then(|map| map.get(field).and_then(serde_json::Value::as_i64));
    match at {
        Some(at) => mark_deleted(&object, at).unwrap_or(object),
        None => object,
    }
}

/// Adds `_weft_deleted_at` (the event's time, RFC 3339 UTC) to an object.
fn mark_deleted(object: &RawValue, at: i64) -> Result<Box<RawValue>, String> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(object.get()).map_err(|e| format!("deleted object: {e}"))?;
    let when = DateTime::from_timestamp(at, 0)
        .ok_or_else(|| format!("event time {at} out of range"))?
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    map.insert(DELETED_AT.into(), serde_json::Value::String(when));
    let text = serde_json::to_string(&map).map_err(|e| e.to_string())?;
    RawValue::from_string(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn deleted_objects_get_a_utc_timestamp() {
        let raw = RawValue::from_string(r#"{"id":"cus_1","object":"customer"}"#.into()).unwrap();
        let out = mark_deleted(&raw, 1_700_000_000).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.get()).unwrap();
        assert_eq!(v[DELETED_AT], "2023-11-14T22:13:20Z");
        assert_eq!(v["id"], "cus_1");
    }

    #[test]
    fn listed_objects_are_marked_deleted_only_when_the_field_is_set() {
        let raw = |s: &str| RawValue::from_string(s.into()).unwrap();
        let ended = mark_if_set(raw(r#"{"id":"sub_1","ended_at":1700000000}"#), "ended_at");
        let v: serde_json::Value = serde_json::from_str(ended.get()).unwrap();
        assert_eq!(v[DELETED_AT], "2023-11-14T22:13:20Z");
        for live in [
            r#"{"id":"sub_2","ended_at":null}"#,
            r#"{"id":"sub_3"}"#,
            "[1]",
        ] {
            assert_eq!(mark_if_set(raw(live), "ended_at").get(), live);
        }
    }
}
