//! Salesforce records -> the JSON records the pipeline decodes.
//!
//! REST query records lose their `attributes` member and get datetimes in
//! RFC 3339 (`2024-01-15T10:00:00.000+0000` -> `2024-01-15T10:00:00.000Z`);
//! Bulk API CSV rows become JSON records typed by the describe types (an empty
//! cell is null). Rows with `IsDeleted: true` get `_weft_deleted_at` = their
//! cursor value. Each record comes back with its cursor in microseconds.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use weft_arrow::FieldType;
use weft_core::DELETED_AT;

use super::describe::ObjectStream;

/// A converted record and its cursor (Unix microseconds), if it has one.
pub(crate) type Converted = (Box<RawValue>, Option<i64>);

/// Parses a Salesforce datetime (`...+0000`, `...Z`, with or without millis).
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A cursor value as a SOQL datetime literal (millisecond precision, rounded down).
pub(crate) fn soql_datetime(micros: i64) -> String {
    let t = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Converts one REST query record.
pub(crate) fn rest_record(raw: &RawValue, object: &ObjectStream) -> Result<Converted, String> {
    let members: BTreeMap<&str, &RawValue> =
        serde_json::from_str(raw.get()).map_err(|e| format!("record is not a JSON object: {e}"))?;
    let mut out = String::with_capacity(raw.get().len());
    out.push('{');
    let mut cursor = None;
    let mut deleted = false;
    for (name, value) in &members {
        if *name == "attributes" {
            continue;
        }
        let ty = object.types.get(*name).copied();
        let text = value.get();
        let mut rewritten = None;
        if ty == Some(FieldType::Timestamp) && text.starts_with('"') {
            let s: &str =
                serde_json::from_str(text).map_err(|e| format!("`{name}` is not a string: {e}"))?;
            let t =
                parse_datetime(s).ok_or_else(|| format!("`{name}` = {s:?} is not a datetime"))?;
            if object.cursor.as_deref() == Some(*name) {
                cursor = Some(t.timestamp_micros());
            }
            rewritten = Some(Value::String(rfc3339(t)).to_string());
        }
        if *name == "IsDeleted" && text == "true" {
            deleted = true;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&Value::String((*name).to_string()).to_string());
        out.push(':');
        out.push_str(rewritten.as_deref().unwrap_or(text));
    }
    if deleted && let Some(c) = cursor {
        out.push_str(&format!(",\"{DELETED_AT}\":\"{}\"", micros_text(c)));
    }
    out.push('}');
    let record = RawValue::from_string(out).map_err(|e| format!("re-encoding the record: {e}"))?;
    Ok((record, cursor))
}

fn micros_text(micros: i64) -> String {
    rfc3339(DateTime::from_timestamp_micros(micros).unwrap_or_default())
}

/// Converts one Bulk API CSV row under `header`.
pub(crate) fn csv_record(
    header: &[std::borrow::Cow<'_, str>],
    row: &[std::borrow::Cow<'_, str>],
    object: &ObjectStream,
) -> Result<Converted, String> {
    if row.len() != header.len() {
        return Err(format!(
            "row has {} cells where the header has {}",
            row.len(),
            header.len()
        ));
    }
    let mut map = Map::with_capacity(header.len() + 1);
    let mut cursor = None;
    for (name, cell) in header.iter().zip(row) {
        let name = name.as_ref();
        let ty = object.types.get(name).copied().unwrap_or(FieldType::String);
        let value = if cell.is_empty() {
            Value::Null
        } else {
            let bad = || format!("`{name}` = {cell:?} is not a {}", ty.name());
            match ty {
                FieldType::Boolean => match cell.as_ref() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(bad()),
                },
                FieldType::Integer => Value::from(cell.parse::<i64>().map_err(|_| bad())?),
                FieldType::Number => {
                    let n = cell.parse::<f64>().map_err(|_| bad())?;
                    serde_json::Number::from_f64(n)
                        .map(Value::Number)
                        .ok_or_else(bad)?
                }
                FieldType::Timestamp => {
                    let t = parse_datetime(cell).ok_or_else(bad)?;
                    if object.cursor.as_deref() == Some(name) {
                        cursor = Some(t.timestamp_micros());
                    }
                    Value::String(rfc3339(t))
                }
                _ => Value::String(cell.to_string()),
            }
        };
        map.insert(name.to_string(), value);
    }
    if map.get("IsDeleted") == Some(&Value::Bool(true))
        && let Some(c) = cursor
    {
        map.insert(DELETED_AT.to_string(), Value::String(micros_text(c)));
    }
    let text = Value::Object(map).to_string();
    let record = RawValue::from_string(text).map_err(|e| format!("encoding the record: {e}"))?;
    Ok((record, cursor))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::borrow::Cow;

    use super::*;
    use crate::streams::describe::object_stream;

    fn contact() -> ObjectStream {
        let body = serde_json::json!({"name": "Contact", "fields": [
            {"name": "Id", "type": "id"},
            {"name": "Email", "type": "email"},
            {"name": "Score__c", "type": "double"},
            {"name": "Age__c", "type": "int"},
            {"name": "IsDeleted", "type": "boolean"},
            {"name": "SystemModstamp", "type": "datetime"}
        ]});
        object_stream(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn rest_records_drop_attributes_and_mark_deletions() {
        let raw = RawValue::from_string(
            r#"{"attributes":{"type":"Contact","url":"/x"},"Id":"003A","Email":null,"IsDeleted":true,"SystemModstamp":"2024-01-15T10:00:00.000+0000"}"#.into(),
        )
        .unwrap();
        let (rec, cursor) = rest_record(&raw, &contact()).unwrap();
        let v: Value = serde_json::from_str(rec.get()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Id": "003A", "Email": null, "IsDeleted": true,
                "SystemModstamp": "2024-01-15T10:00:00.000000Z",
                DELETED_AT: "2024-01-15T10:00:00.000000Z"
            })
        );
        assert_eq!(cursor, Some(1_705_312_800_000_000));
    }

    #[test]
    fn csv_rows_are_typed_by_describe() {
        let header: Vec<Cow<'_, str>> = [
            "Id",
            "Email",
            "Score__c",
            "Age__c",
            "IsDeleted",
            "SystemModstamp",
        ]
        .into_iter()
        .map(Cow::Borrowed)
        .collect();
        let row: Vec<Cow<'_, str>> = ["003B", "", "2.5", "41", "false", "2024-01-15T10:00:01.000Z"]
            .into_iter()
            .map(Cow::Borrowed)
            .collect();
        let (rec, cursor) = csv_record(&header, &row, &contact()).unwrap();
        let v: Value = serde_json::from_str(rec.get()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Id": "003B", "Email": null, "Score__c": 2.5, "Age__c": 41, "IsDeleted": false,
                "SystemModstamp": "2024-01-15T10:00:01.000000Z"
            })
        );
        assert_eq!(cursor, Some(1_705_312_801_000_000));
        let bad: Vec<Cow<'_, str>> = ["003B", "", "x", "41", "false", ""]
            .into_iter()
            .map(Cow::Borrowed)
            .collect();
        let e = csv_record(&header, &bad, &contact()).unwrap_err();
        assert!(e.contains("Score__c"), "{e}");
    }

    #[test]
    fn soql_literals_are_utc_millis() {
        assert_eq!(
            soql_datetime(1_705_312_800_123_456),
            "2024-01-15T10:00:00.123Z"
        );
    }
}
