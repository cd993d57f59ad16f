//! specs/zendesk.toml checked against Zendesk's own OpenAPI (openapi-src.yaml, extracted to specs/vendor).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use weft_conformance::openapi::{OpenApi, TimeEncoding, TypeRules, assert_fields_match};
use weft_core::WriteDisposition;

/// Zendesk's times are ISO 8601 strings (`date-time`, `datetime`, or a `*_at` name).
const TYPES: TypeRules = TypeRules {
    times: TimeEncoding::Iso8601,
    time_formats: &["date-time", "datetime"],
    time_suffix: Some("_at"),
    money_as_integer: false,
    string_alternatives: false,
};

#[derive(serde::Deserialize)]
struct Opts {
    method: String,
    items: String,
    read: String,
    child: Option<String>,
    child_items: Option<String>,
    parent_fields: Option<(String, String)>,
}

#[test]
fn every_stream_matches_zendesks_openapi() {
    let spec = OpenApi::load("zendesk/openapi-src.json").unwrap();
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
            "groups",
            "ticket_comments",
            "brands",
            "ticket_forms",
            "user_fields",
            "organization_fields",
            "group_memberships",
            "organization_memberships",
            "macros",
            "satisfaction_ratings",
            "ticket_metrics",
        ]
    );
    for stream in &catalog.streams {
        let name = &stream.spec.name;
        let opts: Opts = stream.options().unwrap();
        assert_eq!(opts.method, "get");
        let endpoint = stream.endpoint.as_deref().unwrap();
        let vendor_path = endpoint.strip_suffix(".json").unwrap();
        let op = spec
            .operation(vendor_path, "get")
            .unwrap_or_else(|| panic!("{name}: no GET {vendor_path} in Zendesk's spec"));
        let body = spec.response_properties(op);
        let items = body
            .get(&opts.items)
            .unwrap_or_else(|| panic!("{name}: no `{}` in the response", opts.items));
        assert_eq!(items["type"].as_str(), Some("array"), "{name}");
        let mut props = spec.properties(&items["items"]);
        let mut own: Vec<&str> = Vec::new();
        if opts.read == "children" {
            // The parents come from the export; the records are each one's
            // child list, as Zendesk's own `GET` of it describes them.
            let child = opts.child.as_deref().unwrap();
            let vendor_child = child
                .strip_suffix(".json")
                .unwrap()
                .replace("{id}", "{ticket_id}");
            let child_op = spec
                .operation(&vendor_child, "get")
                .unwrap_or_else(|| panic!("{name}: no GET {vendor_child}"));
            let child_body = spec.response_properties(child_op);
            let child_items = opts.child_items.as_deref().unwrap();
            props = spec.properties(&child_body[child_items]["items"]);
            let (id, key) = opts.parent_fields.as_ref().unwrap();
            own = vec![id.as_str(), key.as_str()];
            assert_eq!(stream.spec.cursor_field.as_deref(), Some(key.as_str()));
        }
        assert!(props.len() > 5, "{name}");
        // How it pages is what Zendesk's response offers.
        match opts.read.as_str() {
            "cursor_export" | "children" => {
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
        // Declared fields exist in Zendesk's record with a compatible type and
        // a doc, and every field of Zendesk's record is declared.
        assert_fields_match(stream, &props, &TYPES, "Zendesk's record", &own);
        assert_eq!(stream.spec.primary_key, ["id"], "{name}");
        assert_eq!(stream.spec.write_disposition, WriteDisposition::Merge);
        if opts.read != "list" && opts.read != "children" {
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
