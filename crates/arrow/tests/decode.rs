//! Page decoding: every logical type, evolution, each contract, rejects and order.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int64Type, TimestampMicrosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use chrono::NaiveDate;
use serde_json::value::RawValue;
use weft_arrow::{
    ArrowConvError, DataType, FieldType, JsonDecoder, Reject, Schema, SchemaContract, SchemaRef,
    field_type_of, is_json_field,
};

fn raws(lines: &[&str]) -> Vec<Box<RawValue>> {
    lines
        .iter()
        .map(|l| RawValue::from_string((*l).to_string()).unwrap())
        .collect()
}

fn schema(fields: &[(&str, FieldType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t, nullable)| t.field(n, *nullable, ""))
            .collect::<Vec<_>>(),
    ))
}

/// id (pk, string), name (string), balance (money, nullable), score (number, not null).
fn accounts(contract: SchemaContract) -> JsonDecoder {
    let s = schema(&[
        ("id", FieldType::String, false),
        ("name", FieldType::String, true),
        ("balance", FieldType::Money, true),
    ]);
    JsonDecoder::new(s, vec!["id".into()], contract).unwrap()
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(name).unwrap().as_string::<i32>();
    col.iter().map(|v| v.map(str::to_string)).collect()
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let col = batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>();
    col.iter().collect()
}

fn ids(batch: &RecordBatch) -> Vec<String> {
    strings(batch, "id")
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

fn reject(record: &str, reason: &str, field: Option<&str>, row_loaded: bool) -> Reject {
    Reject {
        record: record.to_string(),
        reason: reason.to_string(),
        field: field.map(str::to_string),
        row_loaded,
    }
}

#[test]
fn every_logical_type_decodes() {
    let s = schema(&[
        ("id", FieldType::String, false),
        ("n", FieldType::Integer, true),
        ("x", FieldType::Number, true),
        ("ok", FieldType::Boolean, true),
        ("cents", FieldType::Money, true),
        ("created", FieldType::UnixSeconds, true),
        ("updated", FieldType::Timestamp, true),
        ("day", FieldType::Date, true),
        ("meta", FieldType::Json, true),
    ]);
    let mut d = JsonDecoder::new(s.clone(), vec!["id".into()], SchemaContract::Evolve).unwrap();
    let page = raws(&[
        r#"{"id":"a\"b\\c\u00e9","n":42,"x":1.5,"ok":true,"cents":-500,"created":1700000000,"updated":"2024-05-01T12:34:56.789Z","day":"2024-02-29","meta":{"a":[1,2.50,"x\ny"],"b":{"c":null},"u":"\u00e9\u0001"}}"#,
        r#"{"id":"2","n":-9223372036854775808,"x":3,"ok":false,"cents":0,"created":0,"updated":"2024-05-01T14:34:56.789+02:00","day":"1970-01-01","meta":[true,false,null,"q\"t"]}"#,
        r#"{"id":"3","x":-1e3,"meta":"he said \"hi\"\t"}"#,
        r#"{"id":"4","n":null,"meta":12.50}"#,
        r#"{"id":"5","meta":null}"#,
    ]);
    let out = d.decode_page(&page).unwrap();
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    assert!(out.new_fields.is_empty());
    let b = out.batch.unwrap();
    assert_eq!(b.schema(), s);
    assert_eq!(b.schema(), *d.schema());
    assert_eq!(b.num_rows(), 5);

    assert_eq!(
        strings(&b, "id"),
        ["a\"b\\cé", "2", "3", "4", "5"].map(|s| Some(s.to_string()))
    );
    assert_eq!(ints(&b, "n"), [Some(42), Some(i64::MIN), None, None, None]);
    let x: Vec<_> = b
        .column_by_name("x")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(x, [Some(1.5), Some(3.0), Some(-1000.0), None, None]);
    let ok: Vec<_> = b
        .column_by_name("ok")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(ok, [Some(true), Some(false), None, None, None]);
    assert_eq!(ints(&b, "cents"), [Some(-500), Some(0), None, None, None]);

    let created = b.column_by_name("created").unwrap();
    assert_eq!(created.data_type(), &FieldType::UnixSeconds.data_type());
    let created: Vec<_> = created
        .as_primitive::<TimestampSecondType>()
        .iter()
        .collect();
    assert_eq!(created, [Some(1_700_000_000), Some(0), None, None, None]);

    let updated = b.column_by_name("updated").unwrap();
    assert_eq!(
        updated.data_type(),
        &DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()))
    );
    let updated: Vec<_> = updated
        .as_primitive::<TimestampMicrosecondType>()
        .iter()
        .collect();
    assert_eq!(
        updated,
        [
            Some(1_714_566_896_789_000),
            Some(1_714_566_896_789_000),
            None,
            None,
            None
        ]
    );

    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let leap = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let days: Vec<_> = b
        .column_by_name("day")
        .unwrap()
        .as_primitive::<Date32Type>()
        .iter()
        .collect();
    assert_eq!(
        days,
        [
            Some((leap - epoch).num_days() as i32),
            Some(0),
            None,
            None,
            None
        ]
    );

    assert!(is_json_field(b.schema().field_with_name("meta").unwrap()));
    assert_eq!(
        strings(&b, "meta"),
        [
            Some(r#"{"a":[1,2.50,"x\ny"],"b":{"c":null},"u":"é\u0001"}"#.to_string()),
            Some(r#"[true,false,null,"q\"t"]"#.to_string()),
            Some(r#""he said \"hi\"\t""#.to_string()),
            Some("12.50".to_string()),
            None,
        ]
    );
    // JSON text parses back to the value that was sent.
    let sent: serde_json::Value = serde_json::from_str(page[0].get()).unwrap();
    let kept: serde_json::Value =
        serde_json::from_str(&strings(&b, "meta")[0].clone().unwrap()).unwrap();
    assert_eq!(kept, sent["meta"]);
}

#[test]
fn unix_seconds_load_from_year_1_to_year_9999() {
    let s = schema(&[
        ("id", FieldType::String, false),
        ("t", FieldType::UnixSeconds, true),
    ]);
    let mut d = JsonDecoder::new(s, vec!["id".into()], SchemaContract::Evolve).unwrap();
    let out = d
        .decode_page(&raws(&[
            r#"{"id":"first","t":-62135596800}"#,
            r#"{"id":"last","t":253402300799}"#,
            r#"{"id":"before_1970","t":-86400}"#,
        ]))
        .unwrap();
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    let b = out.batch.unwrap();
    let t: Vec<_> = b
        .column_by_name("t")
        .unwrap()
        .as_primitive::<TimestampSecondType>()
        .iter()
        .collect();
    assert_eq!(
        t,
        [Some(-62_135_596_800), Some(253_402_300_799), Some(-86_400)]
    );
}

#[test]
fn values_of_the_wrong_kind_are_rejected_with_the_expected_type() {
    let cases: &[(FieldType, &str, &str)] = &[
        (FieldType::Integer, "12.0", "expected integer, got 12.0"),
        (FieldType::Integer, "1e3", "expected integer, got 1e3"),
        (FieldType::Integer, "\"12\"", "expected integer, got \"12\""),
        (
            FieldType::Integer,
            "99999999999999999999",
            "expected integer, got 99999999999999999999",
        ),
        (
            FieldType::Money,
            "12.5",
            "expected money (integer minor units), got 12.5",
        ),
        (FieldType::Number, "\"1.5\"", "expected number, got \"1.5\""),
        (FieldType::Boolean, "1", "expected boolean, got 1"),
        (
            FieldType::String,
            "{\"a\":1}",
            "expected string, got {\"a\":1}",
        ),
        (FieldType::String, "7", "expected string, got 7"),
        (
            FieldType::UnixSeconds,
            "1.5",
            "expected unix_seconds (integer seconds, years 1 to 9999), got 1.5",
        ),
        (
            FieldType::UnixSeconds,
            "\"2024-01-01T00:00:00Z\"",
            "expected unix_seconds (integer seconds, years 1 to 9999), got \"2024-01-01T00:00:00Z\"",
        ),
        (
            FieldType::UnixSeconds,
            "1700000000000",
            "expected unix_seconds (integer seconds, years 1 to 9999), got 1700000000000",
        ),
        (
            FieldType::UnixSeconds,
            "253402300800",
            "expected unix_seconds (integer seconds, years 1 to 9999), got 253402300800",
        ),
        (
            FieldType::UnixSeconds,
            "-62135596801",
            "expected unix_seconds (integer seconds, years 1 to 9999), got -62135596801",
        ),
        (
            FieldType::Timestamp,
            "\"yesterday\"",
            "expected timestamp (RFC 3339 string), got \"yesterday\"",
        ),
        (
            FieldType::Timestamp,
            "1700000000",
            "expected timestamp (RFC 3339 string), got 1700000000",
        ),
        (
            FieldType::Date,
            "\"2024-13-01\"",
            "expected date (YYYY-MM-DD string), got \"2024-13-01\"",
        ),
    ];
    for (ty, value, why) in cases {
        let s = schema(&[("id", FieldType::String, false), ("v", *ty, true)]);
        let mut d = JsonDecoder::new(s, vec!["id".into()], SchemaContract::Evolve).unwrap();
        let bad = format!(r#"{{"id":"bad","v":{value}}}"#);
        let out = d.decode_page(&raws(&[r#"{"id":"good"}"#, &bad])).unwrap();
        assert_eq!(ids(&out.batch.unwrap()), ["good"], "{ty} {value}");
        assert_eq!(
            out.rejects,
            [reject(&bad, &format!("field `v`: {why}"), Some("v"), false)],
            "{ty} {value}"
        );
    }
}

#[test]
fn long_bad_values_are_shortened_in_reasons() {
    let mut d = accounts(SchemaContract::DiscardRow);
    let long = "x".repeat(500);
    let bad = format!(r#"{{"id":"1","balance":"{long}"}}"#);
    let out = d.decode_page(&raws(&[&bad])).unwrap();
    assert!(out.batch.is_none());
    let reason = &out.rejects[0].reason;
    assert!(reason.starts_with("field `balance`: expected money (integer minor units), got \"xxx"));
    assert!(reason.ends_with('…'));
    assert!(reason.len() < 200, "{reason}");
}

#[test]
fn evolution_adds_columns_that_later_pages_keep() {
    let mut d = accounts(SchemaContract::Evolve);
    let page1 = raws(&[
        r#"{"id":"1","name":"a","nickname":"al","score":1,"mixed":1,"nothing":null}"#,
        r#"{"id":"2","score":2.5,"tags":["x",{"y":1}],"mixed":"one","nothing":null}"#,
    ]);
    let out = d.decode_page(&page1).unwrap();
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    let added: Vec<(String, Option<FieldType>, bool)> = out
        .new_fields
        .iter()
        .map(|f| (f.name().clone(), field_type_of(f), f.is_nullable()))
        .collect();
    // Keys of a record in name order, records in page order; null-only `nothing` waits.
    assert_eq!(
        added,
        [
            ("mixed".to_string(), Some(FieldType::Json), true),
            ("nickname".to_string(), Some(FieldType::String), true),
            ("score".to_string(), Some(FieldType::Number), true),
            ("tags".to_string(), Some(FieldType::Json), true),
        ]
    );
    let names: Vec<&str> = d
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "id", "name", "balance", "mixed", "nickname", "score", "tags"
        ]
    );
    let b = out.batch.unwrap();
    assert_eq!(b.schema(), *d.schema());
    assert_eq!(ids(&b), ["1", "2"]);
    assert_eq!(
        strings(&b, "mixed"),
        [Some("1".into()), Some("\"one\"".into())]
    );
    assert_eq!(strings(&b, "nickname"), [Some("al".into()), None]);
    let score: Vec<_> = b
        .column_by_name("score")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(score, [Some(1.0), Some(2.5)]);
    assert_eq!(strings(&b, "tags"), [None, Some(r#"["x",{"y":1}]"#.into())]);

    // A later page without the new fields still has their columns.
    let out = d
        .decode_page(&raws(&[r#"{"id":"3","balance":7}"#]))
        .unwrap();
    assert!(out.new_fields.is_empty());
    let b = out.batch.unwrap();
    assert_eq!(b.schema(), *d.schema());
    assert_eq!(b.num_columns(), 7);
    assert_eq!(ints(&b, "balance"), [Some(7)]);
    assert_eq!(strings(&b, "nickname"), [None]);

    // A page that fits the evolved schema as-is, and `nothing` gaining a value.
    let out = d
        .decode_page(&raws(&[
            r#"{"id":"4","nickname":"d","score":3}"#,
            r#"{"id":"5","nothing":true}"#,
        ]))
        .unwrap();
    assert_eq!(out.new_fields.len(), 1);
    assert_eq!(out.new_fields[0].name(), "nothing");
    assert_eq!(field_type_of(&out.new_fields[0]), Some(FieldType::Boolean));
    let b = out.batch.unwrap();
    assert_eq!(b.num_columns(), 8);
    assert_eq!(strings(&b, "nickname"), [Some("d".into()), None]);
    let nothing: Vec<_> = b
        .column_by_name("nothing")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(nothing, [None, Some(true)]);
}

#[test]
fn evolved_fields_still_reject_bad_values_of_other_records() {
    let mut d = accounts(SchemaContract::Evolve);
    let bad = r#"{"id":"2","balance":"lots","extra":2}"#;
    let out = d
        .decode_page(&raws(&[r#"{"id":"1","extra":1}"#, bad, r#"{"id":"3"}"#]))
        .unwrap();
    assert_eq!(out.new_fields.len(), 1);
    assert_eq!(field_type_of(&out.new_fields[0]), Some(FieldType::Integer));
    let b = out.batch.unwrap();
    assert_eq!(ids(&b), ["1", "3"]);
    assert_eq!(ints(&b, "extra"), [Some(1), None]);
    assert_eq!(
        out.rejects,
        [reject(
            bad,
            "field `balance`: expected money (integer minor units), got \"lots\"",
            Some("balance"),
            false
        )]
    );
}

const UNKNOWN: &str = r#"{"id":"2","name":"b","extra":{"k":1}}"#;

#[test]
fn unknown_field_under_freeze_fails_the_page() {
    let mut d = accounts(SchemaContract::Freeze);
    let err = d
        .decode_page(&raws(&[r#"{"id":"1"}"#, UNKNOWN]))
        .unwrap_err();
    match err {
        ArrowConvError::Frozen { index, reason } => {
            assert_eq!(index, 1);
            assert_eq!(reason, "unknown field `extra`");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(d.schema().fields().len(), 3);
}

#[test]
fn unknown_field_under_discard_row_rejects_the_record() {
    let mut d = accounts(SchemaContract::DiscardRow);
    let out = d
        .decode_page(&raws(&[r#"{"id":"1"}"#, UNKNOWN, r#"{"id":"3"}"#]))
        .unwrap();
    assert_eq!(ids(&out.batch.unwrap()), ["1", "3"]);
    assert_eq!(
        out.rejects,
        [reject(
            UNKNOWN,
            "unknown field `extra`",
            Some("extra"),
            false
        )]
    );
    assert!(out.new_fields.is_empty());
    assert_eq!(d.schema().fields().len(), 3);
}

#[test]
fn unknown_field_under_discard_value_is_dropped_and_noted() {
    let mut d = accounts(SchemaContract::DiscardValue);
    let out = d
        .decode_page(&raws(&[r#"{"id":"1"}"#, UNKNOWN, r#"{"id":"3"}"#]))
        .unwrap();
    let b = out.batch.unwrap();
    assert_eq!(b.num_columns(), 3);
    assert_eq!(ids(&b), ["1", "2", "3"]);
    assert_eq!(strings(&b, "name"), [None, Some("b".into()), None]);
    assert_eq!(
        out.rejects,
        [reject(
            UNKNOWN,
            "unknown field `extra` dropped",
            Some("extra"),
            true
        )]
    );
    assert!(out.new_fields.is_empty());
}

const BAD_VALUE: &str = r#"{"id":"2","name":"b","balance":"abc"}"#;
const BAD_REASON: &str = "field `balance`: expected money (integer minor units), got \"abc\"";

#[test]
fn bad_value_under_evolve_and_discard_row_rejects_the_record() {
    for contract in [SchemaContract::Evolve, SchemaContract::DiscardRow] {
        let mut d = accounts(contract);
        let out = d
            .decode_page(&raws(&[r#"{"id":"1","balance":5}"#, BAD_VALUE]))
            .unwrap();
        let b = out.batch.unwrap();
        assert_eq!(ids(&b), ["1"], "{contract}");
        assert_eq!(ints(&b, "balance"), [Some(5)]);
        assert_eq!(
            out.rejects,
            [reject(BAD_VALUE, BAD_REASON, Some("balance"), false)],
            "{contract}"
        );
    }
}

#[test]
fn bad_value_under_discard_value_is_nulled_and_noted() {
    let mut d = accounts(SchemaContract::DiscardValue);
    let out = d
        .decode_page(&raws(&[r#"{"id":"1","balance":5}"#, BAD_VALUE]))
        .unwrap();
    let b = out.batch.unwrap();
    assert_eq!(ids(&b), ["1", "2"]);
    assert_eq!(ints(&b, "balance"), [Some(5), None]);
    assert_eq!(strings(&b, "name"), [None, Some("b".into())]);
    assert_eq!(
        out.rejects,
        [reject(
            BAD_VALUE,
            &format!("{BAD_REASON}; value set to null"),
            Some("balance"),
            true
        )]
    );
}

#[test]
fn bad_value_in_a_required_field_under_discard_value_rejects_the_record() {
    let s = schema(&[
        ("id", FieldType::String, false),
        ("kind", FieldType::String, false),
    ]);
    let mut d = JsonDecoder::new(s, vec!["id".into()], SchemaContract::DiscardValue).unwrap();
    let bad_kind = r#"{"id":"1","kind":3}"#;
    let bad_id = r#"{"id":2,"kind":"k"}"#;
    let out = d
        .decode_page(&raws(&[bad_kind, bad_id, r#"{"id":"3","kind":"k"}"#]))
        .unwrap();
    assert_eq!(ids(&out.batch.unwrap()), ["3"]);
    assert_eq!(
        out.rejects,
        [
            reject(
                bad_kind,
                "field `kind`: expected string, got 3",
                Some("kind"),
                false
            ),
            reject(
                bad_id,
                "field `id`: expected string, got 2",
                Some("id"),
                false
            ),
        ]
    );
}

#[test]
fn bad_value_under_freeze_fails_the_page() {
    let mut d = accounts(SchemaContract::Freeze);
    let err = d
        .decode_page(&raws(&[r#"{"id":"0"}"#, r#"{"id":"1"}"#, BAD_VALUE]))
        .unwrap_err();
    assert!(
        matches!(&err, ArrowConvError::Frozen { index: 2, reason } if reason == BAD_REASON),
        "{err}"
    );
}

#[test]
fn missing_or_null_primary_key_rejects_the_record() {
    let missing = r#"{"name":"no id"}"#;
    let null = r#"{"id":null,"name":"null id"}"#;
    for contract in [
        SchemaContract::Evolve,
        SchemaContract::DiscardRow,
        SchemaContract::DiscardValue,
    ] {
        let mut d = accounts(contract);
        let out = d
            .decode_page(&raws(&[missing, r#"{"id":"1"}"#, null]))
            .unwrap();
        assert_eq!(ids(&out.batch.unwrap()), ["1"], "{contract}");
        assert_eq!(
            out.rejects,
            [
                reject(missing, "missing primary key field `id`", Some("id"), false),
                reject(null, "missing primary key field `id`", Some("id"), false),
            ],
            "{contract}"
        );
    }
    let mut d = accounts(SchemaContract::Freeze);
    let err = d.decode_page(&raws(&[r#"{"id":"1"}"#, null])).unwrap_err();
    assert!(
        matches!(&err, ArrowConvError::Frozen { index: 1, reason } if reason == "missing primary key field `id`"),
        "{err}"
    );
}

#[test]
fn primary_key_declared_nullable_is_still_required() {
    let s = schema(&[
        ("id", FieldType::Integer, true),
        ("name", FieldType::String, true),
    ]);
    let mut d = JsonDecoder::new(s, vec!["id".into()], SchemaContract::Evolve).unwrap();
    let out = d
        .decode_page(&raws(&[r#"{"id":1}"#, r#"{"name":"x"}"#]))
        .unwrap();
    assert_eq!(ints(&out.batch.unwrap(), "id"), [Some(1)]);
    assert_eq!(
        out.rejects,
        [reject(
            r#"{"name":"x"}"#,
            "missing primary key field `id`",
            Some("id"),
            false
        )]
    );
}

#[test]
fn records_that_are_not_objects_are_rejected() {
    let mut d = accounts(SchemaContract::DiscardValue);
    let page = raws(&[
        r#"[{"id":"x"}]"#,
        r#"{"id":"1"}"#,
        r#""id""#,
        "null",
        "5",
        "true",
    ]);
    let out = d.decode_page(&page).unwrap();
    assert_eq!(ids(&out.batch.unwrap()), ["1"]);
    let expected: Vec<Reject> = [r#"[{"id":"x"}]"#, r#""id""#, "null", "5", "true"]
        .iter()
        .map(|r| reject(r, "record is not a JSON object", None, false))
        .collect();
    assert_eq!(out.rejects, expected);

    let mut d = accounts(SchemaContract::Freeze);
    let err = d.decode_page(&raws(&[r#"{"id":"1"}"#, "[]"])).unwrap_err();
    assert!(
        matches!(err, ArrowConvError::Frozen { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn order_is_preserved_around_rejects() {
    let mut d = accounts(SchemaContract::DiscardRow);
    let lines: Vec<String> = (0..50)
        .map(|i| match i % 7 {
            3 => format!(r#"{{"id":"{i}","balance":1.5}}"#),
            5 => format!(r#"{{"name":"{i}"}}"#),
            6 => format!(r#"{{"id":"{i}","surprise":true}}"#),
            _ => format!(r#"{{"id":"{i}","balance":{i}}}"#),
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = d.decode_page(&raws(&refs)).unwrap();
    let kept: Vec<String> = (0..50)
        .filter(|i| i % 7 < 3 || i % 7 == 4)
        .map(|i| i.to_string())
        .collect();
    let b = out.batch.unwrap();
    assert_eq!(ids(&b), kept);
    assert_eq!(
        ints(&b, "balance"),
        kept.iter()
            .map(|i| Some(i.parse::<i64>().unwrap()))
            .collect::<Vec<_>>()
    );
    let rejected: Vec<&str> = out.rejects.iter().map(|r| r.record.as_str()).collect();
    let expected: Vec<&str> = refs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 == 3 || i % 7 >= 5)
        .map(|(_, r)| *r)
        .collect();
    assert_eq!(rejected, expected);
}

#[test]
fn pages_of_any_size_and_empty_pages() {
    let mut d = accounts(SchemaContract::Evolve);
    assert!(d.decode_page(&[]).unwrap().batch.is_none());
    for n in [1usize, 3, 1000, 2500, 7] {
        let lines: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"id":"{i}","balance":{i}}}"#))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = d.decode_page(&raws(&refs)).unwrap();
        let b = out.batch.unwrap();
        assert_eq!(b.num_rows(), n);
        assert_eq!(ints(&b, "balance")[n - 1], Some(n as i64 - 1));
    }
    // A page of nothing but rejects has no batch.
    let out = d.decode_page(&raws(&[r#"{"name":"x"}"#])).unwrap();
    assert!(out.batch.is_none());
    assert_eq!(out.rejects.len(), 1);
}

#[test]
fn whitespace_inside_records_is_fine() {
    let mut d = accounts(SchemaContract::Evolve);
    let out = d
        .decode_page(&raws(&[
            "{\n  \"id\": \"1\",\n  \"balance\": 2\n}",
            "{ \"id\" : \"2\" }",
        ]))
        .unwrap();
    assert_eq!(ids(&out.batch.unwrap()), ["1", "2"]);
}

#[test]
fn construction_checks_the_schema() {
    let s = schema(&[("id", FieldType::String, false)]);
    let err = JsonDecoder::new(s.clone(), vec!["key".into()], SchemaContract::Evolve).unwrap_err();
    assert!(
        matches!(&err, ArrowConvError::UnknownPrimaryKey { field } if field == "key"),
        "{err}"
    );

    let dup = schema(&[
        ("id", FieldType::String, false),
        ("id", FieldType::Integer, true),
    ]);
    let err = JsonDecoder::new(dup, vec![], SchemaContract::Evolve).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid schema declaration: field `id` is declared twice"
    );
}

#[test]
fn plain_arrow_fields_use_arrow_json_decoders() {
    let s = Arc::new(Schema::new(vec![
        arrow_schema::Field::new("id", DataType::Utf8, false),
        arrow_schema::Field::new("n", DataType::Int32, true),
    ]));
    let mut d = JsonDecoder::new(s, vec!["id".into()], SchemaContract::Evolve).unwrap();
    let out = d.decode_page(&raws(&[r#"{"id":"a","n":3}"#])).unwrap();
    let b = out.batch.unwrap();
    let n = b.column(1).as_primitive::<arrow_array::types::Int32Type>();
    assert_eq!(n.value(0), 3);
    assert_eq!(n.len(), 1);
}

#[test]
fn json_values_nested_deeper_than_the_stack_allows_decode() {
    // 100,000 levels: far deeper than any recursion on a 2 MB thread stack survives.
    let depth = 100_000;
    let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let s = schema(&[
                ("id", FieldType::String, false),
                ("doc", FieldType::Json, true),
            ]);
            let mut d = JsonDecoder::new(s, vec!["id".into()], SchemaContract::Evolve).unwrap();
            let page = d
                .decode_page(&raws(&[&format!(r#"{{"id":"a","doc":{deep}}}"#)]))
                .unwrap();
            let batch = page.batch.unwrap();
            strings(&batch, "doc")[0].clone().unwrap()
        })
        .unwrap();
    let text = handle.join().expect("decoding must not overflow the stack");
    assert_eq!(text, format!("{}1{}", "[".repeat(depth), "]".repeat(depth)));
}

#[test]
fn fields_no_column_can_take_are_dropped_with_a_note_under_evolve() {
    // Warehouses match column names without case: `NAME` cannot sit next to
    // `name`, `Tier` next to `tier`, and a column needs a name.
    let mut d = accounts(SchemaContract::Evolve);
    let upper = r#"{"id":"2","NAME":"b"}"#;
    let pair = r#"{"id":"3","tier":"gold","Tier":"silver"}"#;
    let empty = r#"{"id":"4","":"v"}"#;
    let out = d
        .decode_page(&raws(&[r#"{"id":"1","name":"a"}"#, upper, pair, empty]))
        .unwrap();
    let b = out.batch.unwrap();
    assert_eq!(ids(&b), ["1", "2", "3", "4"]);
    assert_eq!(strings(&b, "name"), [Some("a".into()), None, None, None]);
    let names: Vec<&str> = out.new_fields.iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["Tier"]);
    assert_eq!(
        strings(&b, "Tier"),
        [None, None, Some("silver".into()), None]
    );
    assert_eq!(
        out.rejects,
        [
            reject(
                upper,
                "field `NAME` differs from column `name` only in case and cannot be a column; value dropped",
                Some("NAME"),
                true
            ),
            reject(
                pair,
                "field `tier` differs from column `Tier` only in case and cannot be a column; value dropped",
                Some("tier"),
                true
            ),
            reject(
                empty,
                "a field with an empty name cannot be a column; value dropped",
                Some(""),
                true
            ),
        ]
    );
}

#[test]
fn fields_named_like_engine_columns_are_dropped_with_a_note() {
    // The pipeline stamps `_weft_load_id` and `_weft_extracted_at` itself: a
    // source field of either name (in any case) must not become a column.
    let mut d = accounts(SchemaContract::Evolve);
    let load = r#"{"id":"1","_weft_load_id":"evil"}"#;
    let at = r#"{"id":"2","_WEFT_EXTRACTED_AT":"2020-01-01"}"#;
    let out = d.decode_page(&raws(&[load, at])).unwrap();
    let b = out.batch.unwrap();
    assert_eq!(ids(&b), ["1", "2"]);
    assert!(out.new_fields.is_empty());
    assert_eq!(b.schema().index_of("_weft_load_id").ok(), None);
    assert_eq!(
        out.rejects,
        [
            reject(
                load,
                "field `_weft_load_id` is named like a column weft writes itself; value dropped",
                Some("_weft_load_id"),
                true
            ),
            reject(
                at,
                "field `_WEFT_EXTRACTED_AT` is named like a column weft writes itself; value dropped",
                Some("_WEFT_EXTRACTED_AT"),
                true
            ),
        ]
    );
}
