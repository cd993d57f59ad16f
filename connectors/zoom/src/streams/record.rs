//! Parent ids and the parent field added to child records.
//!
//! A child record gets its parent's id as an extra top-level field
//! (`webinar_id`), written into the raw JSON text in front of the record's
//! own fields: no re-serialisation of the record. The catalog test checks
//! that Zoom's record never has a field of that name.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The id of a parent record (a user or a webinar).
#[derive(Debug, Clone)]
pub(super) struct ParentId {
    /// The id as JSON (`"z8yB"` or `8541`), keeping its type for the child field.
    json: Box<RawValue>,
    /// The id as a URL path segment, percent-encoded.
    segment: String,
}

impl ParentId {
    /// The `id` of `record`: a non-empty string or an integer.
    pub(super) fn of(record: &RawValue) -> Result<ParentId, String> {
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            id: &'a RawValue,
        }
        let head: Head<'_> = serde_json::from_str(record.get())
            .map_err(|e| format!("parent record without an `id`: {e}"))?;
        let text = head.id.get();
        let value = if text.starts_with('"') {
            serde_json::from_str::<String>(text).map_err(|e| format!("parent `id`: {e}"))?
        } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            text.to_string()
        } else {
            return Err(format!(
                "parent `id` is neither a string nor an integer: {text}"
            ));
        };
        if value.is_empty() {
            return Err("parent `id` is empty".into());
        }
        Ok(ParentId {
            json: head.id.to_owned(),
            segment: encode_segment(&value),
        })
    }

    /// The id as JSON text.
    pub(super) fn json(&self) -> &str {
        self.json.get()
    }

    /// The id as a percent-encoded path segment.
    pub(super) fn segment(&self) -> &str {
        &self.segment
    }
}

/// `s` with every byte outside RFC 3986's unreserved set percent-encoded.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `record` (a JSON object) with `"name": value` added as its first field.
pub(super) fn with_field(
    record: &RawValue,
    name: &str,
    value: &ParentId,
) -> Result<Box<RawValue>, String> {
    let text = record.get().trim_start();
    let body = text
        .strip_prefix('{')
        .ok_or_else(|| "record is not a JSON object".to_string())?;
    let key = serde_json::to_string(name).map_err(|e| e.to_string())?;
    let out = if body.trim_start().starts_with('}') {
        format!("{{{key}:{}}}", value.json())
    } else {
        format!("{{{key}:{},{body}", value.json())
    };
    RawValue::from_string(out).map_err(|e| format!("record with `{name}` added: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn ids_keep_their_json_type_and_encode_as_segments() {
        let user = ParentId::of(&raw(r#"{"email":"a@x","id":"z8y B/=","n":{"id":1}}"#)).unwrap();
        assert_eq!(user.json(), r#""z8y B/=""#);
        assert_eq!(user.segment(), "z8y%20B%2F%3D");
        let webinar = ParentId::of(&raw(r#"{"id": 85412345678, "topic":"t"}"#)).unwrap();
        assert_eq!(
            (webinar.json(), webinar.segment()),
            ("85412345678", "85412345678")
        );
        assert!(ParentId::of(&raw(r#"{"id":""}"#)).is_err());
        assert!(ParentId::of(&raw(r#"{"id":null}"#)).is_err());
        assert!(ParentId::of(&raw(r#"{"uuid":"x"}"#)).is_err());
    }

    #[test]
    fn the_parent_field_goes_first_and_the_record_is_otherwise_untouched() {
        let webinar = ParentId::of(&raw(r#"{"id":42}"#)).unwrap();
        let out = with_field(&raw(r#"{"id":"r1","email":"a@x"}"#), "webinar_id", &webinar).unwrap();
        assert_eq!(out.get(), r#"{"webinar_id":42,"id":"r1","email":"a@x"}"#);
        let empty = with_field(&raw("{ }"), "webinar_id", &webinar).unwrap();
        assert_eq!(empty.get(), r#"{"webinar_id":42}"#);
        assert!(with_field(&raw("[1]"), "webinar_id", &webinar).is_err());
    }
}
