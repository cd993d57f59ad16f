//! specs/intercom.toml checked against Intercom's own OpenAPI (2.16).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_yaml_ng::{Mapping, Value};
use weft_core::{FieldType, WriteDisposition};

fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/upstream-api-specs/intercom/2.16/api.intercom.io.yaml"
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
/// Intercom's times are Unix seconds (`integer`, `date-time` or a `*_at` name).
fn compatible(t: FieldType, name: &str, prop: &Value) -> bool {
    let ty = prop.get("type").and_then(Value::as_str);
    let format = prop.get("format").and_then(Value::as_str);
    let composite = ["$ref", "allOf", "anyOf", "oneOf"]
        .iter()
        .any(|k| prop.get(*k).is_some());
    let time = format == Some("date-time") || name.ends_with("_at");
    match t {
        FieldType::UnixSeconds => ty == Some("integer") && time,
        FieldType::Integer => ty == Some("integer") && !time,
        FieldType::String => ty == Some("string"),
        FieldType::Number => ty == Some("number"),
        FieldType::Boolean => ty == Some("boolean"),
        FieldType::Json => composite || matches!(ty, Some("object" | "array")),
        FieldType::Money | FieldType::Timestamp | FieldType::Date => false,
    }
}

#[derive(serde::Deserialize)]
struct Opts {
    method: String,
    items: String,
    read: String,
    fallback: Option<String>,
}

#[test]
fn every_stream_matches_intercoms_openapi() {
    let spec = spec();
    let catalog = weft_intercom::catalog().unwrap();
    assert_eq!(catalog.connector, "intercom");
    let names: Vec<&str> = catalog
        .streams
        .iter()
        .map(|s| s.spec.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["contacts", "companies", "conversations", "admins", "tags"]
    );
    for stream in &catalog.streams {
        let name = &stream.spec.name;
        let opts: Opts = stream.options().unwrap();
        let endpoint = stream.endpoint.as_deref().unwrap();
        let op = &spec["paths"][endpoint][opts.method.as_str()];
        assert!(op.is_mapping(), "{name}: no {} {endpoint}", opts.method);
        let body = properties(
            &spec,
            &op["responses"]["200"]["content"]["application/json"]["schema"],
        );
        let items = body
            .get(opts.items.as_str())
            .unwrap_or_else(|| panic!("{name}: no `{}` in the response", opts.items));
        let props = properties(&spec, &items["items"]);
        assert!(props.len() > 3, "{name}");
        match opts.read.as_str() {
            "search" => {
                // The request pages with `pagination.starting_after`; the answer says where next.
                let req = properties(
                    &spec,
                    &op["requestBody"]["content"]["application/json"]["schema"],
                );
                assert!(
                    req.contains_key("query") && req.contains_key("pagination"),
                    "{name}"
                );
                assert!(body.contains_key("pages"), "{name}");
                assert_eq!(stream.spec.cursor_field.as_deref(), Some("updated_at"));
            }
            "scroll" => {
                assert!(body.contains_key("scroll_param"), "{name}");
                // The fallback list serves the same records, paged by number.
                let list = &spec["paths"][opts.fallback.as_deref().unwrap()]["get"];
                let params: Vec<&str> = list["parameters"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p.get("name").and_then(Value::as_str))
                    .collect();
                assert!(
                    params.contains(&"page") && params.contains(&"per_page"),
                    "{params:?}"
                );
                let list_body = properties(
                    &spec,
                    &list["responses"]["200"]["content"]["application/json"]["schema"],
                );
                assert_eq!(properties(&spec, &list_body["data"]["items"]), props);
            }
            "list" => assert_eq!(stream.spec.cursor_field, None, "{name}"),
            other => panic!("{name}: read {other}"),
        }
        for f in &stream.fields {
            let prop = props
                .get(f.name.as_str())
                .unwrap_or_else(|| panic!("{name}.{} is not in Intercom's record", f.name));
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
        for key in props.keys() {
            let key = key.as_str().unwrap();
            assert!(
                stream.fields.iter().any(|f| f.name == key),
                "{name}: Intercom's record has `{key}`, not declared"
            );
        }
        assert_eq!(stream.spec.primary_key, ["id"], "{name}");
        assert_eq!(stream.spec.write_disposition, WriteDisposition::Merge);
    }
}
