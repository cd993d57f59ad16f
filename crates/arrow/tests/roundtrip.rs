//! Property: whatever records are sent, the columns hold exactly their values.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use weft_arrow::{FieldType, JsonDecoder, Schema, SchemaContract};

#[derive(Debug, Clone)]
struct Rec {
    s: Option<String>,
    i: Option<i64>,
    f: Option<f64>,
    b: Option<bool>,
    j: Option<Value>,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        proptest::option::of(any::<String>()),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        proptest::option::of(any::<bool>()),
        proptest::option::of(json_value()),
    )
        .prop_map(|(s, i, f, b, j)| Rec { s, i, f, b, j })
}

/// serde_json's reading of a JSON text (its float parsing is not exact for
/// every shortest representation, so values are compared as read from text).
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn record_text(id: usize, r: &Rec) -> String {
    let mut m = Map::new();
    m.insert("id".into(), json!(id.to_string()));
    // Absent and null both read back as null: send both forms.
    let mut put = |k: &str, v: Option<Value>| match v {
        Some(v) => {
            m.insert(k.into(), v);
        }
        None if id.is_multiple_of(2) => {
            m.insert(k.into(), Value::Null);
        }
        None => {}
    };
    put("s", r.s.clone().map(Value::String));
    put("i", r.i.map(Value::from));
    put("f", r.f.map(Value::from));
    put("b", r.b.map(Value::Bool));
    put("j", r.j.clone());
    serde_json::to_string(&Value::Object(m)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn columns_hold_the_values_sent(recs in prop::collection::vec(rec(), 1..40)) {
        let schema = Arc::new(Schema::new(vec![
            FieldType::String.field("id", false, ""),
            FieldType::String.field("s", true, ""),
            FieldType::Integer.field("i", true, ""),
            FieldType::Number.field("f", true, ""),
            FieldType::Boolean.field("b", true, ""),
            FieldType::Json.field("j", true, ""),
        ]));
        let mut d = JsonDecoder::new(schema, vec!["id".into()], SchemaContract::Freeze).unwrap();
        let page: Vec<Box<RawValue>> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| RawValue::from_string(record_text(i, r)).unwrap())
            .collect();
        let out = d.decode_page(&page).unwrap();
        prop_assert!(out.rejects.is_empty());
        let b = out.batch.unwrap();
        prop_assert_eq!(b.num_rows(), recs.len());

        let ids = b.column(0).as_string::<i32>();
        let s = b.column(1).as_string::<i32>();
        let i = b.column(2).as_primitive::<Int64Type>();
        let f = b.column(3).as_primitive::<Float64Type>();
        let bo = b.column(4).as_boolean();
        let j = b.column(5).as_string::<i32>();
        for (row, r) in recs.iter().enumerate() {
            prop_assert_eq!(ids.value(row), row.to_string());
            prop_assert_eq!(s.is_valid(row).then(|| s.value(row).to_string()), r.s.clone());
            prop_assert_eq!(i.is_valid(row).then(|| i.value(row)), r.i);
            prop_assert_eq!(f.is_valid(row).then(|| f.value(row)), r.f);
            prop_assert_eq!(bo.is_valid(row).then(|| bo.value(row)), r.b);
            // Compact JSON text, byte for byte what serde_json writes for the value...
            let expected_j = r.j.as_ref().filter(|v| !v.is_null()).map(|v| v.to_string());
            let got_j = j.is_valid(row).then(|| j.value(row).to_string());
            prop_assert_eq!(&got_j, &expected_j);
            // ...so it parses back to the value sent (as serde_json reads that text).
            if let (Some(got), Some(sent)) = (got_j, expected_j) {
                prop_assert_eq!(parse(&got), parse(&sent));
            }
        }
    }

    #[test]
    fn json_text_of_any_value_parses_back(v in json_value()) {
        let schema = Arc::new(Schema::new(vec![FieldType::Json.field("v", true, "")]));
        let mut d = JsonDecoder::new(schema, vec![], SchemaContract::Freeze).unwrap();
        let text = serde_json::to_string(&json!({ "v": v })).unwrap();
        let out = d.decode_page(&[RawValue::from_string(text).unwrap()]).unwrap();
        let col = out.batch.unwrap();
        let col = col.column(0).as_string::<i32>();
        if v.is_null() {
            prop_assert!(col.is_null(0));
        } else {
            prop_assert_eq!(col.value(0), v.to_string());
            prop_assert_eq!(parse(col.value(0)), parse(&v.to_string()));
        }
    }
}
