//! specs/mailchimp.toml checked against Mailchimp's own API description
//! (specs/vendor/mailchimp/mailchimp.com.json).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use weft_conformance::openapi::{OpenApi, TimeEncoding, TypeRules, assert_fields_match};
use weft_core::WriteDisposition;

/// Mailchimp writes times as `date-time` strings.
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
    since_param: Option<String>,
    sort_field: Option<String>,
    #[serde(default)]
    archived: bool,
}

/// The `enum` of query parameter `name` of `op`.
fn enum_of(spec: &OpenApi, op: &serde_json::Value, name: &str) -> Vec<String> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| spec.resolve(p))
        .find(|p| p["name"] == name)
        .and_then(|p| p["schema"]["enum"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_stream_matches_mailchimps_response_schemas() {
    let spec = OpenApi::load("mailchimp/mailchimp.com.json").unwrap();
    let catalog = weft_mailchimp::catalog().unwrap();
    assert_eq!(catalog.connector, "mailchimp");
    assert_eq!(catalog.streams.len(), 6);
    for stream in &catalog.streams {
        let name = &stream.spec.name;
        let opts: Opts = stream.options().unwrap();
        let endpoint = stream.endpoint.as_deref().unwrap();
        let op = spec
            .operation(endpoint, "get")
            .unwrap_or_else(|| panic!("{name}: no GET {endpoint} in Mailchimp's spec"));
        // Paged with count + offset, the total in `total_items`.
        let params = spec.parameter_names(op);
        for p in ["count", "offset"] {
            assert!(params.contains(&p), "{name}: {params:?}");
        }
        assert_eq!(stream.pagination.as_deref(), Some("offset"), "{name}");
        let body = spec.response_properties(op);
        assert!(body.contains_key("total_items"), "{name}: no total_items");
        let items = &body[&opts.items];
        assert_eq!(items["type"], "array", "{name}: `{}`", opts.items);
        let props = spec.properties(&items["items"]);
        assert!(!props.is_empty(), "{name}");
        // Every declared field is Mailchimp's, typed compatibly, with a doc,
        // and every field of Mailchimp's record is declared.
        assert_fields_match(stream, &props, &TYPES, "Mailchimp's record", &[]);
        for key in &stream.spec.primary_key {
            assert!(props.contains_key(key), "{name}: key {key}");
        }
        assert_eq!(
            stream.spec.write_disposition,
            WriteDisposition::Merge,
            "{name}"
        );
        // A change filter is a real parameter, its sort field one Mailchimp
        // sorts by, and the cursor a date-time of the record.
        match (
            &stream.spec.cursor_field,
            &opts.since_param,
            &opts.sort_field,
        ) {
            (Some(cursor), Some(since), Some(sort)) => {
                assert!(params.contains(&since.as_str()), "{name}: {since}");
                assert!(
                    enum_of(&spec, op, "sort_field").contains(sort),
                    "{name}: sort_field {sort}"
                );
                assert_eq!(sort, cursor, "{name}");
                assert_eq!(props[cursor]["format"], "date-time", "{name}");
                assert!(
                    enum_of(&spec, op, "sort_dir").contains(&"DESC".to_string()),
                    "{name}"
                );
            }
            (None, None, None) => {}
            other => panic!("{name}: cursor, since_param and sort_field go together: {other:?}"),
        }
        if opts.archived {
            assert!(
                enum_of(&spec, op, "status").contains(&"archived".to_string()),
                "{name}"
            );
        }
        match &opts.parent {
            Some(parent) => {
                assert!(catalog.stream(parent).is_some(), "{name}: {parent}");
                // The parent's id is a path parameter and a field of the
                // record itself (no field of weft's own), first in the key.
                let field = match parent.as_str() {
                    "lists" => "list_id",
                    "campaigns" => "campaign_id",
                    other => panic!("{name}: unexpected parent {other}"),
                };
                assert!(
                    endpoint.contains(&format!("{{{field}}}")),
                    "{name}: {endpoint}"
                );
                assert!(props.contains_key(field), "{name}");
                assert_eq!(stream.spec.primary_key[0], field, "{name}");
            }
            None => assert!(!endpoint.contains('{'), "{name}"),
        }
    }
    let keys = |s: &str| catalog.stream(s).unwrap().spec.primary_key.clone();
    assert_eq!(keys("lists"), ["id"]);
    assert_eq!(keys("list_members"), ["list_id", "id"]);
    assert_eq!(keys("campaigns"), ["id"]);
    assert_eq!(keys("segments"), ["list_id", "id"]);
    assert_eq!(keys("interest_categories"), ["list_id", "id"]);
    assert_eq!(keys("unsubscribes"), ["campaign_id", "email_id"]);
    let cursor = |s: &str| catalog.stream(s).unwrap().spec.cursor_field.clone();
    assert_eq!(cursor("list_members").as_deref(), Some("last_changed"));
    assert_eq!(cursor("campaigns").as_deref(), Some("create_time"));
    assert_eq!(cursor("lists"), None);
}
