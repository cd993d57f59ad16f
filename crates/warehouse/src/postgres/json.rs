//! Query results as JSON values.
//!
//! PostgreSQL renders each row as JSON itself (`row_to_json`, or
//! `json_build_array` for sync records), which covers every type it has:
//! booleans and numbers as JSON numbers, `json`/`jsonb` as nested JSON,
//! arrays as arrays, timestamps as ISO 8601 text (`2024-02-03T04:05:06+00:00`
//! for `timestamptz`, the session being UTC), `bytea` as `\x...` text.
//! `row_to_json` keeps the columns in order, duplicate names included; the
//! text is read here value by value. Integers beyond 64 bits come back as
//! strings holding their exact digits; other numbers as `f64`.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

/// The values of a JSON object, in order (duplicate keys kept).
pub(crate) fn object_values(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = de.deserialize_map(Ordered)?;
    de.end()?;
    raw.iter().map(|r| value(r)).collect()
}

/// The values of a JSON array.
pub(crate) fn array_values(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    let raw: Vec<Box<RawValue>> = serde_json::from_str(text)?;
    raw.iter().map(|r| value(r)).collect()
}

/// One value: numbers by the rules above, anything else as parsed.
fn value(raw: &RawValue) -> Result<Value, serde_json::Error> {
    let text = raw.get();
    let is_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if !is_number {
        return serde_json::from_str(text);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Ok(Value::from(u));
    }
    if !text.contains(['.', 'e', 'E']) {
        return Ok(Value::String(text.to_string()));
    }
    Ok(text
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Value::String(text.to_string()), Value::Number))
}

/// Collects an object's raw values in document order.
struct Ordered;

impl<'de> Visitor<'de> for Ordered {
    type Value = Vec<Box<RawValue>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((_, v)) = map.next_entry::<serde::de::IgnoredAny, Box<RawValue>>()? {
            out.push(v);
        }
        Ok(out)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Box<RawValue>>()? {
            out.push(v);
        }
        Ok(out)
    }
}
