//! specs/zendesk.toml checked against Zendesk's own OpenAPI (openapi-src.yaml).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_yaml_ng::{Mapping, Value};
use weft_core::{FieldType, WriteDisposition};

fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/upstream-api-specs/zendesk/openapi-src.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap()
}

fn resolve<'a>(spec: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        schema = &spec["components"]["schemas"][name];
    }
    schema
}

/// The properties of a schema, with `allOf`/`anyOf`/`oneOf` parts merged.
fn properties(spec: &Value, schema: &Value) -> Mapping {
    let schema = resolve(spec, schema);
    let mut out = Mapping::new();
    for key in ["allOf", "anyOf", "oneOf"] {
        for part in schema
            .get(key)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            out.extend(properties(spec, part));
        }
    }
    if let Some(p) = schema.get("properties").and_then(Value::as_mapping) {
        out.extend(p.clone());
    }
    out
}

/// Whether a declared logical type is a faithful reading of a property.
/// Zendesk's times are ISO 8601 strings (`date-time`, `datetime`, or a `*_at` name).
fn compatible(t: FieldType, name: &str, prop: &Value) -> bool {
    let ty = prop.get("type").and_then(Value::as_str);
    let format = prop.get("format").and_then(Value::as_str);
    let composite = ["$ref", "allOf", "anyOf", "oneOf"]
        .iter()
        .any(|k| prop.get(*k).is_some());
    let time = matches!(format, Some("date-time" | "datetime")) || name.ends_with("_at");
    match t {
        FieldType::Timestamp => ty == Some("string") && time,
        FieldType::String => ty == Some("string") && !time,
        FieldType::Integer => ty == Some("integer"),
        FieldType::Number => ty == Some("number"),
        FieldType::Boolean => ty == Some("boolean"),
        FieldType::Json => composite || matches!(ty, Some("object" | "array")),
        FieldType::Money | FieldType::UnixSeconds | FieldType::Date => false,
    }
}

#[derive(serde::Deserialize)]
struct Opts {
    method: String,
    items: String,
    read: String,
}

#[test]
fn every_stream_matches_zendesks_openapi() {
    let spec = spec();
    let catalog = weft_zendesk::catalog().unwrap();
    assert_eq!(catalog.connector, "zendesk");
    let names: Vec<&str> = catalog
        .streams
        .iter()
        .map(|s| s.spec.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "tickets",
            "users",
            "organizations",
            "ticket_fields",
            "groups"
        ]
    );
    for stream in &catalog.streams {
        let name = &stream.spec.name;
        let opts: Opts = stream.options().unwrap();
        assert_eq!(opts.method, "get");
        let endpoint = stream.endpoint.as_deref().unwrap();
        let vendor_path = endpoint.strip_suffix(".json").unwrap();
        let op = &spec["paths"][vendor_path]["get"];
        assert!(
            op.is_mapping(),
            "{name}: no GET {vendor_path} in Zendesk's spec"
        );
        let body = properties(
            &spec,
            &op["responses"]["200"]["content"]["application/json"]["schema"],
        );
        let items = body
            .get(opts.items.as_str())
            .unwrap_or_else(|| panic!("{name}: no `{}` in the response", opts.items));
        assert_eq!(items["type"].as_str(), Some("array"), "{name}");
        let props = properties(&spec, &items["items"]);
        assert!(props.len() > 5, "{name}");
        // How it pages is what Zendesk's response offers.
        match opts.read.as_str() {
            "cursor_export" => {
                for k in ["after_cursor", "after_url", "end_of_stream"] {
                    assert!(body.contains_key(k), "{name}: no `{k}`");
                }
                assert!(endpoint.contains("/incremental/") && endpoint.contains("/cursor"));
            }
            "time_export" => {
                for k in ["end_time", "next_page", "end_of_stream"] {
                    assert!(body.contains_key(k), "{name}: no `{k}`");
                }
            }
            "list" => assert_eq!(stream.spec.cursor_field, None, "{name}"),
            other => panic!("{name}: read {other}"),
        }
        // Declared fields exist in Zendesk's record with a compatible type and a doc...
        for f in &stream.fields {
            let prop = props
                .get(f.name.as_str())
                .unwrap_or_else(|| panic!("{name}.{} is not in Zendesk's record", f.name));
            assert!(
                compatible(f.field_type, &f.name, prop),
                "{name}.{}: {} vs {prop:?}",
                f.name,
                f.field_type
            );
            assert!(
                !f.doc.is_empty() || prop.get("description").is_none(),
                "{name}.{} lacks a doc",
                f.name
            );
        }
        // ...and every field of Zendesk's record is declared.
        for key in props.keys() {
            let key = key.as_str().unwrap();
            assert!(
                stream.fields.iter().any(|f| f.name == key),
                "{name}: Zendesk's record has `{key}`, not declared"
            );
        }
        assert_eq!(stream.spec.primary_key, ["id"], "{name}");
        assert_eq!(stream.spec.write_disposition, WriteDisposition::Merge);
        if opts.read != "list" {
            assert_eq!(
                stream.spec.cursor_field.as_deref(),
                Some("updated_at"),
                "{name}"
            );
        }
    }
    assert!(catalog.stream("tickets").unwrap().deletes);
    let tickets = &catalog.stream("tickets").unwrap().spec.schema;
    assert!(tickets.field_with_name(weft_core::DELETED_AT).is_ok());
}
