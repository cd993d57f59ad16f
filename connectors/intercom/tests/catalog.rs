//! specs/intercom.toml checked against Intercom's own OpenAPI (2.16).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use weft_conformance::openapi::{OpenApi, TimeEncoding, TypeRules, assert_fields_match};
use weft_core::WriteDisposition;

/// Intercom's times are Unix seconds (`integer`, `date-time` or a `*_at` name).
const TYPES: TypeRules = TypeRules {
    times: TimeEncoding::UnixSeconds,
    time_formats: &["date-time"],
    time_suffix: Some("_at"),
    money_as_integer: false,
    string_alternatives: false,
};

#[derive(serde::Deserialize)]
struct Opts {
    method: String,
    items: String,
    read: String,
    fallback: Option<String>,
    #[serde(default)]
    query: std::collections::BTreeMap<String, String>,
    child: Option<String>,
    child_items: Option<String>,
}

#[test]
fn every_stream_matches_intercoms_openapi() {
    let spec = OpenApi::load("intercom/2.16/api.intercom.io.json").unwrap();
    let catalog = weft_intercom::catalog().unwrap();
    assert_eq!(catalog.connector, "intercom");
    let names: Vec<&str> = catalog
        .streams
        .iter()
        .map(|s| s.spec.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "contacts",
            "companies",
            "conversations",
            "admins",
            "tags",
            "conversation_parts",
            "teams",
            "segments",
            "contact_attributes",
            "company_attributes"
        ]
    );
    for stream in &catalog.streams {
        let name = &stream.spec.name;
        let opts: Opts = stream.options().unwrap();
        let endpoint = stream.endpoint.as_deref().unwrap();
        let op = spec
            .operation(endpoint, &opts.method)
            .unwrap_or_else(|| panic!("{name}: no {} {endpoint}", opts.method));
        let body = spec.response_properties(op);
        let items = body
            .get(&opts.items)
            .unwrap_or_else(|| panic!("{name}: no `{}` in the response", opts.items));
        let mut props = spec.properties(&items["items"]);
        let mut own: &[&str] = &[];
        if opts.read == "parts" {
            // The parents are searched; the records are their children, read
            // from Intercom's `GET /conversations/{conversation_id}`.
            let child = opts.child.as_deref().unwrap();
            let vendor_path = child.replace("{id}", "{conversation_id}");
            let parent_op = spec
                .operation(&vendor_path, "get")
                .unwrap_or_else(|| panic!("{name}: no get {vendor_path}"));
            let mut at = serde_json::Value::Object(spec.response_properties(parent_op));
            let pointer = opts.child_items.as_deref().unwrap();
            let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
            for (i, key) in keys.iter().enumerate() {
                at = at[*key].clone();
                if i + 1 < keys.len() {
                    at = serde_json::Value::Object(spec.properties(&at));
                }
            }
            props = spec.properties(&at["items"]);
            own = &["conversation_id", "conversation_updated_at"];
            assert_eq!(
                stream.spec.cursor_field.as_deref(),
                Some("conversation_updated_at")
            );
        }
        assert!(props.len() > 3, "{name}");
        match opts.read.as_str() {
            "search" | "parts" => {
                // The request pages with `pagination.starting_after`; the answer says where next.
                let req = spec.request_properties(op);
                assert!(
                    req.contains_key("query") && req.contains_key("pagination"),
                    "{name}"
                );
                assert!(body.contains_key("pages"), "{name}");
                if opts.read == "search" {
                    assert_eq!(stream.spec.cursor_field.as_deref(), Some("updated_at"));
                }
            }
            "scroll" => {
                assert!(body.contains_key("scroll_param"), "{name}");
                // The fallback list serves the same records, paged by number.
                let list = spec.operation(opts.fallback.as_deref().unwrap(), "get");
                let params = spec.parameter_names(list.unwrap());
                assert!(
                    params.contains(&"page") && params.contains(&"per_page"),
                    "{params:?}"
                );
                let list_body = spec.response_properties(list.unwrap());
                assert_eq!(spec.properties(&list_body["data"]["items"]), props);
            }
            "list" => assert_eq!(stream.spec.cursor_field, None, "{name}"),
            other => panic!("{name}: read {other}"),
        }
        // Declared fields exist in Intercom's record with a compatible type and
        // a doc, and every field of Intercom's record is declared.
        assert_fields_match(stream, &props, &TYPES, "Intercom's record", own);
        // Every fixed query parameter is one the operation takes.
        let params = spec.parameter_names(op);
        for key in opts.query.keys() {
            assert!(
                params.contains(&key.as_str()),
                "{name}: `{key}` not in {params:?}"
            );
        }
        // Data attributes have no id (standard ones): their name is unique per model.
        let key = if endpoint == "/data_attributes" {
            "name"
        } else {
            "id"
        };
        assert_eq!(stream.spec.primary_key, [key], "{name}");
        assert!(props.contains_key(key), "{name}");
        assert_eq!(stream.spec.write_disposition, WriteDisposition::Merge);
    }
}
