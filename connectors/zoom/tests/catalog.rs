//! specs/zoom.toml checked against Zoom's own API descriptions (Users.json, Meetings.json).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Map, Value};
use weft_core::{FieldType, WriteDisposition};

fn spec(file: &str) -> Value {
    let path = format!(
        "{}/../../../shared/upstream-api-specs/zoom/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The properties of a schema, with `allOf` parts merged.
fn properties(schema: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(properties(part));
    }
    if let Some(p) = schema["properties"].as_object() {
        out.extend(p.clone());
    }
    out
}

/// Whether a declared logical type is a faithful reading of a property.
fn compatible(t: FieldType, prop: &Value) -> bool {
    let ty = prop["type"].as_str();
    let format = prop["format"].as_str();
    match t {
        FieldType::String => ty == Some("string") && format != Some("date-time"),
        FieldType::Timestamp => ty == Some("string") && format == Some("date-time"),
        FieldType::Integer => ty == Some("integer"),
        FieldType::Number => ty == Some("number"),
        FieldType::Boolean => ty == Some("boolean"),
        FieldType::Json => matches!(ty, Some("object" | "array")),
        FieldType::Money | FieldType::UnixSeconds | FieldType::Date => false,
    }
}

#[derive(serde::Deserialize)]
struct Opts {
    items: String,
    parent: Option<String>,
    parent_field: Option<String>,
}

#[test]
fn every_stream_matches_zooms_response_schemas() {
    let specs = [spec("Users.json"), spec("Meetings.json")];
    let catalog = weft_zoom::catalog().unwrap();
    assert_eq!(catalog.connector, "zoom");
    assert_eq!(catalog.streams.len(), 5);
    let mut item_props = std::collections::HashMap::new();
    for stream in &catalog.streams {
        let name = &stream.spec.name;
        let opts: Opts = stream.options().unwrap();
        let endpoint = stream.endpoint.as_deref().unwrap();
        let vendor_path = endpoint
            .strip_prefix("/v2")
            .expect("endpoints start with /v2");
        let op = specs
            .iter()
            .map(|s| &s["paths"][vendor_path]["get"])
            .find(|op| op.is_object())
            .unwrap_or_else(|| panic!("{name}: no GET {vendor_path} in Zoom's spec"));
        // Paged with page_size + next_page_token.
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(params.contains(&"page_size"), "{name}: {params:?}");
        let body = properties(&op["responses"]["200"]["content"]["application/json"]["schema"]);
        assert!(
            body.contains_key("next_page_token"),
            "{name}: no next_page_token"
        );
        let items = &body[&opts.items];
        assert_eq!(
            items["type"], "array",
            "{name}: `{}` is not an array",
            opts.items
        );
        let props = properties(&items["items"]);
        assert!(!props.is_empty(), "{name}");

        // Declared fields exist in Zoom's record with a compatible type and a doc...
        for f in &stream.fields {
            if Some(&f.name) == opts.parent_field.as_ref() {
                continue;
            }
            let prop = props
                .get(&f.name)
                .unwrap_or_else(|| panic!("{name}.{} is not in Zoom's record", f.name));
            assert!(
                compatible(f.field_type, prop),
                "{name}.{}: {} vs {prop}",
                f.name,
                f.field_type
            );
            assert!(
                !f.doc.is_empty() || prop["description"].is_null(),
                "{name}.{} lacks a doc",
                f.name
            );
        }
        // ...and every field of Zoom's record is declared.
        for key in props.keys() {
            assert!(
                stream.fields.iter().any(|f| &f.name == key),
                "{name}: Zoom's record has `{key}`, not declared"
            );
        }
        // A parent field is weft's own: not a Zoom field, typed like the parent's id.
        match (&opts.parent, &opts.parent_field) {
            (Some(parent), Some(field)) => {
                assert!(
                    !props.contains_key(field),
                    "{name}: Zoom already has `{field}`"
                );
                let parent_props: &Map<String, Value> = &item_props[parent];
                let declared = stream.fields.iter().find(|f| &f.name == field).unwrap();
                assert!(
                    compatible(declared.field_type, &parent_props["id"]),
                    "{name}.{field}"
                );
                assert_eq!(stream.spec.primary_key[0], *field);
                assert!(endpoint.contains("{webinarId}"), "{name}: {endpoint}");
            }
            (Some(parent), None) => {
                assert!(
                    item_props.contains_key(parent),
                    "{name}: parent {parent} undeclared"
                );
                assert!(endpoint.contains("{userId}"), "{name}: {endpoint}");
            }
            (None, None) => assert!(!endpoint.contains('{'), "{name}"),
            (None, Some(_)) => panic!("{name}: a parent field without a parent"),
        }
        // No change filter in Zoom's lists: full refresh merged on the key.
        assert_eq!(stream.spec.cursor_field, None, "{name}");
        assert_eq!(
            stream.spec.write_disposition,
            WriteDisposition::Merge,
            "{name}"
        );
        for key in &stream.spec.primary_key {
            assert!(
                stream.fields.iter().any(|f| &f.name == key),
                "{name}: key {key}"
            );
        }
        item_props.insert(name.clone(), props);
    }
    let keys = |s: &str| catalog.stream(s).unwrap().spec.primary_key.clone();
    assert_eq!(keys("users"), ["id"]);
    assert_eq!(keys("webinar_registrants"), ["webinar_id", "id"]);
    assert_eq!(keys("past_webinar_participants"), ["webinar_id", "user_id"]);
}
