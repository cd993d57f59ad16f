//! specs/zoom.toml checked against Zoom's own API descriptions (Users.json, Meetings.json).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Map, Value};
use weft_conformance::openapi::{OpenApi, TimeEncoding, TypeRules, assert_fields_match};
use weft_core::WriteDisposition;

/// Zoom writes times as `date-time` strings.
const TYPES: TypeRules = TypeRules {
    times: TimeEncoding::Iso8601,
    time_formats: &["date-time"],
    time_suffix: None,
    money_as_integer: false,
    string_alternatives: false,
};

#[derive(serde::Deserialize)]
struct Opts {
    items: String,
    parent: Option<String>,
    parent_field: Option<String>,
}

#[test]
fn every_stream_matches_zooms_response_schemas() {
    let specs = [
        OpenApi::load("zoom/Users.json").unwrap(),
        OpenApi::load("zoom/Meetings.json").unwrap(),
    ];
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
        let (spec, op) = specs
            .iter()
            .find_map(|s| Some((s, s.operation(vendor_path, "get")?)))
            .unwrap_or_else(|| panic!("{name}: no GET {vendor_path} in Zoom's spec"));
        // Paged with page_size + next_page_token.
        let params = spec.parameter_names(op);
        assert!(params.contains(&"page_size"), "{name}: {params:?}");
        let body = spec.response_properties(op);
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
        let props = spec.properties(&items["items"]);
        assert!(!props.is_empty(), "{name}");

        // Declared fields exist in Zoom's record with a compatible type and a
        // doc, and every field of Zoom's record is declared (the parent field
        // is weft's own).
        let own: Vec<&str> = opts.parent_field.iter().map(String::as_str).collect();
        assert_fields_match(stream, &props, &TYPES, "Zoom's record", &own);
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
                    TYPES.compatible(declared.field_type, field, &parent_props["id"]),
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
