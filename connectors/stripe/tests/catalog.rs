//! specs/stripe.toml checked against Stripe's own OpenAPI (spec3.yaml, extracted to specs/vendor).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use weft_conformance::openapi::{OpenApi, TimeEncoding, TypeRules, assert_fields_match};

/// Stripe writes times as `unix-time` integers, amounts as integers in minor
/// units, and expandable or nullable strings as `anyOf` alternatives.
const TYPES: TypeRules = TypeRules {
    times: TimeEncoding::UnixSeconds,
    time_formats: &["unix-time"],
    time_suffix: None,
    money_as_integer: true,
    string_alternatives: true,
};

#[test]
fn every_stream_matches_the_vendor_spec() {
    let spec = OpenApi::load("stripe/spec3.json").unwrap();
    let catalog = weft_stripe::catalog().unwrap();
    assert_eq!(catalog.streams.len(), 15);
    #[derive(serde::Deserialize)]
    struct Opts {
        object: String,
        events: Vec<String>,
        #[serde(default)]
        list_params: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        deleted_at_field: Option<String>,
    }
    // Every event type Stripe documents (webhook endpoints list them all).
    let webhooks = spec.operation("/v1/webhook_endpoints", "post").unwrap();
    let event_types: Vec<String> = webhooks["requestBody"]["content"]
        ["application/x-www-form-urlencoded"]["schema"]["properties"]["enabled_events"]["items"]["enum"]
        .as_array()
        .expect("enabled_events enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(event_types.len() > 100);

    for stream in &catalog.streams {
        let opts: Opts = stream.options().unwrap();
        let endpoint = stream.endpoint.as_deref().unwrap();
        let list = spec.operation(endpoint, "get");
        assert!(list.is_some(), "{endpoint}: no GET in the spec");
        // Fixed list parameters are documented query parameters, with a
        // value the parameter's enum allows.
        for (key, value) in &opts.list_params {
            let params = list.unwrap()["parameters"].as_array().unwrap();
            let param = params
                .iter()
                .find(|p| p["name"] == key.as_str() && p["in"] == "query")
                .unwrap_or_else(|| panic!("{endpoint}: no query parameter `{key}`"));
            let allowed = param["schema"]["enum"].as_array().unwrap();
            assert!(
                allowed.iter().any(|v| v == value.as_str()),
                "{endpoint}: `{key}={value}` is not one of {allowed:?}"
            );
        }
        let props = spec.properties(spec.schema(&opts.object));
        assert!(!props.is_empty(), "{}", opts.object);
        // Declared fields exist in the vendor schema with a compatible type and
        // a doc, and every vendor property is declared.
        // The field that marks a listed object deleted is a declared Unix time.
        if let Some(field) = &opts.deleted_at_field {
            assert!(props.contains_key(field), "{}: no `{field}`", opts.object);
            let declared = stream.fields.iter().find(|f| &f.name == field).unwrap();
            assert_eq!(
                format!("{:?}", declared.field_type),
                "UnixSeconds",
                "{field}"
            );
            assert!(stream.deletes, "{}", stream.spec.name);
        }
        let record = format!("Stripe's `{}`", opts.object);
        assert_fields_match(stream, &props, &TYPES, &record, &[]);
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
