//! The saved state of an incremental Mailchimp stream.
//!
//! One cursor per listing (a listing is one paged `GET`: the campaigns, or
//! one audience's members, or its archived members), in Mailchimp's own
//! ISO 8601 form. A top-level stream saves `{"create_time": "<time>"}`; a
//! stream read per audience saves `{"last_changed": {"<list_id>": "<time>",
//! "<list_id>/archived": "<time>"}}`. While a listing is being read, each
//! checkpoint also says how far (`progress`: the listing, the next
//! `offset`, the largest cursor seen so far), so a resumed read continues
//! there instead of starting the listing again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weft_core::StreamState;

/// `secs` as Mailchimp writes times: `2026-11-01T00:00:00+00:00`.
pub(super) fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

/// An ISO 8601 time (with an offset) as unix seconds; `None` when it is
/// empty or not a time.
pub(super) fn parse_iso(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|d| d.timestamp())
}

/// How far into a listing the last checkpoint was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Progress {
    /// The listing's key (`""`, `"<list_id>"`, `"<list_id>/archived"`).
    pub(super) listing: String,
    /// The offset of the next page.
    pub(super) offset: u64,
    /// The largest cursor read so far in this listing (the first page's,
    /// as listings are read newest first).
    pub(super) max_seen: Option<String>,
}

/// The cursors of every listing read so far, and the listing in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Cursors {
    /// Listing key -> its watermark (unix seconds).
    pub(super) done: BTreeMap<String, i64>,
    /// The listing a checkpoint stopped inside, if any.
    pub(super) progress: Option<Progress>,
}

impl Cursors {
    /// The cursors of a saved state (`per_parent`: the stream is read per
    /// audience); no state is a first run.
    pub(super) fn from_state(
        state: Option<&StreamState>,
        cursor: &str,
        per_parent: bool,
    ) -> Result<Cursors, String> {
        let Some(state) = state else {
            return Ok(Cursors::default());
        };
        let mut done = BTreeMap::new();
        let time = |v: &Value| {
            v.as_str()
                .and_then(parse_iso)
                .ok_or_else(|| format!("saved `{cursor}` {v} is not an ISO 8601 time"))
        };
        match (state.0.get(cursor), per_parent) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::Object(m)), true) => {
                for (k, v) in m {
                    done.insert(k.clone(), time(v)?);
                }
            }
            (Some(v), false) => {
                done.insert(String::new(), time(v)?);
            }
            (Some(v), true) => {
                return Err(format!(
                    "saved `{cursor}` {v} is not an object of cursors per audience"
                ));
            }
        }
        let progress = match state.0.get("progress") {
            None | Some(Value::Null) => None,
            Some(p) => Some(
                serde_json::from_value(p.clone())
                    .map_err(|e| format!("saved `progress` {p}: {e}"))?,
            ),
        };
        Ok(Cursors { done, progress })
    }

    /// The state to save.
    pub(super) fn to_state(&self, cursor: &str, per_parent: bool) -> StreamState {
        let mut state = serde_json::Map::new();
        if per_parent {
            let map: serde_json::Map<String, Value> = self
                .done
                .iter()
                .map(|(k, t)| (k.clone(), Value::from(iso(*t))))
                .collect();
            state.insert(cursor.to_string(), Value::Object(map));
        } else if let Some(t) = self.done.get("") {
            state.insert(cursor.to_string(), Value::from(iso(*t)));
        }
        if let Some(p) = &self.progress {
            state.insert("progress".into(), json!(p));
        }
        StreamState(Value::Object(state))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_round_trip_in_mailchimps_form() {
        assert_eq!(iso(1_700_000_000), "2023-11-14T22:13:20+00:00");
        assert_eq!(parse_iso("2023-11-14T22:13:20+00:00"), Some(1_700_000_000));
        assert_eq!(parse_iso("2023-11-15T00:13:20+02:00"), Some(1_700_000_000));
        assert_eq!(parse_iso(""), None);
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn per_audience_cursors_and_progress_round_trip() {
        let mut c = Cursors::default();
        c.done.insert("a1".into(), 1_700_000_000);
        c.done.insert("a1/archived".into(), 1_600_000_000);
        c.progress = Some(Progress {
            listing: "b2".into(),
            offset: 2000,
            max_seen: Some(iso(1_700_000_500)),
        });
        let state = c.to_state("last_changed", true);
        assert_eq!(
            state.0,
            json!({
                "last_changed": {"a1": "2023-11-14T22:13:20+00:00", "a1/archived": "2020-09-13T12:26:40+00:00"},
                "progress": {"listing": "b2", "offset": 2000, "max_seen": "2023-11-14T22:21:40+00:00"},
            })
        );
        let back = Cursors::from_state(Some(&state), "last_changed", true).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_top_level_cursor_is_flat_and_bad_states_are_refused() {
        let mut c = Cursors::default();
        c.done.insert(String::new(), 1_700_000_000);
        let state = c.to_state("create_time", false);
        assert_eq!(state.0, json!({"create_time": "2023-11-14T22:13:20+00:00"}));
        assert_eq!(
            Cursors::from_state(Some(&state), "create_time", false).unwrap(),
            c
        );
        assert_eq!(
            Cursors::from_state(None, "create_time", false).unwrap(),
            Cursors::default()
        );
        let bad = StreamState(json!({"create_time": 5}));
        assert_eq!(
            Cursors::from_state(Some(&bad), "create_time", false).unwrap_err(),
            "saved `create_time` 5 is not an ISO 8601 time"
        );
        let flat = StreamState(json!({"last_changed": "2023-11-14T22:13:20+00:00"}));
        assert!(Cursors::from_state(Some(&flat), "last_changed", true).is_err());
    }
}
