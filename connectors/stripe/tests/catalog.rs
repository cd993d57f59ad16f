//! specs/stripe.toml checked against Stripe's own OpenAPI (spec3.yaml).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_yaml_ng::Value;
use weft_core::FieldType;

fn spec3() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/upstream-api-specs/stripe/spec3.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap()
}

/// Whether a declared logical type is a faithful reading of an OpenAPI property.
fn compatible(t: FieldType, prop: &Value) -> bool {
    let alts = prop.get("anyOf").or_else(|| prop.get("oneOf"));
    let ty = prop.get("type").and_then(Value::as_str);
    match t {
        FieldType::String => {
            ty == Some("string")
                || alts.is_some_and(|a| {
                    a.as_sequence()
                        .unwrap()
                        .iter()
                        .any(|x| x.get("type").and_then(Value::as_str) == Some("string"))
                })
        }
        FieldType::Json => {
            prop.get("$ref").is_some() || matches!(ty, Some("object" | "array")) || alts.is_some()
        }
        FieldType::UnixSeconds => {
            ty == Some("integer") && prop.get("format").and_then(Value::as_str) == Some("unix-time")
        }
        FieldType::Integer | FieldType::Money => ty == Some("integer"),
        FieldType::Number => ty == Some("number"),
        FieldType::Boolean => ty == Some("boolean"),
        FieldType::Timestamp | FieldType::Date => false,
    }
}

#[test]
fn every_stream_matches_the_vendor_spec() {
    let spec = spec3();
    let schemas = &spec["components"]["schemas"];
    let paths = &spec["paths"];
    let catalog = weft_stripe::catalog().unwrap();
    assert_eq!(catalog.streams.len(), 10);
    #[derive(serde::Deserialize)]
    struct Opts {
        object: String,
        events: Vec<String>,
    }
    // Every event type Stripe documents (webhook endpoints list them all).
    let event_types: Vec<String> = paths["/v1/webhook_endpoints"]["post"]["requestBody"]["content"]
        ["application/x-www-form-urlencoded"]["schema"]["properties"]["enabled_events"]["items"]["enum"]
        .as_sequence()
        .expect("enabled_events enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(event_types.len() > 100);

    for stream in &catalog.streams {
        let opts: Opts = stream.options().unwrap();
        let endpoint = stream.endpoint.as_deref().unwrap();
        assert!(
            paths[endpoint]["get"].is_mapping(),
            "{endpoint}: no GET in spec3.yaml"
        );
        let component = &schemas[opts.object.as_str()];
        let props = component["properties"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{}", opts.object));
        // Declared fields exist in the vendor schema with a compatible type...
        for f in &stream.fields {
            let prop = props.get(f.name.as_str()).unwrap_or_else(|| {
                panic!(
                    "{}.{} is not in Stripe's `{}`",
                    stream.spec.name, f.name, opts.object
                )
            });
            assert!(
                compatible(f.field_type, prop),
                "{}.{}: {} vs {prop:?}",
                stream.spec.name,
                f.name,
                f.field_type
            );
            assert!(
                !f.doc.is_empty() || prop.get("description").is_none(),
                "{}.{} lacks a doc",
                stream.spec.name,
                f.name
            );
        }
        // ...and every vendor property is declared.
        for (name, _) in props {
            let name = name.as_str().unwrap();
            assert!(
                stream.fields.iter().any(|f| f.name == name),
                "{}: Stripe's `{}` has `{name}`, not declared",
                stream.spec.name,
                opts.object
            );
        }
        // Required vendor fields are not nullable in the vendor schema's sense: keys at least.
        assert_eq!(stream.spec.primary_key, vec!["id".to_string()]);
        assert_eq!(stream.spec.cursor_field.as_deref(), Some("created"));
        for e in &opts.events {
            assert!(
                event_types.contains(e),
                "{}: unknown event type {e}",
                stream.spec.name
            );
        }
    }
}
