//! A connector's catalog checked against the vendor's own OpenAPI description.
//!
//! [`OpenApi::load`] reads a description (JSON, or YAML) from the vendor specs
//! directory ([`specs_dir`]: the repository's `specs/vendor`, extracts of the
//! vendors' own files made by `specs/tools/extract_vendor.py`); [`OpenApi::properties`] gives a schema's
//! properties with `$ref`s followed and `allOf`/`anyOf`/`oneOf` parts merged;
//! [`field_mismatches`] (or [`assert_fields_match`]) compares a catalog
//! stream's declared fields with a vendor record's properties, both ways,
//! judging types with the vendor's [`TypeRules`]. What differs per vendor
//! (which operation and schema a stream reads, how it pages) stays in the
//! connector's test.
//!
//! ```no_run
//! use weft_conformance::openapi::{OpenApi, TimeEncoding, TypeRules, assert_fields_match};
//! # fn demo(catalog: &weft_core::Catalog) {
//! let spec = OpenApi::load("zendesk/openapi-src.json").unwrap();
//! let rules = TypeRules {
//!     times: TimeEncoding::Iso8601,
//!     time_formats: &["date-time"],
//!     time_suffix: Some("_at"),
//!     money_as_integer: false,
//!     string_alternatives: false,
//! };
//! for stream in &catalog.streams {
//!     let props = spec.properties(spec.schema("Ticket"));
//!     assert_fields_match(stream, &props, &rules, "Zendesk's record", &[]);
//! }
//! # }
//! ```

use std::path::PathBuf;

use serde_json::{Map, Value};
use weft_core::{CatalogStream, FieldType};

use crate::ConformanceError;

/// Where the vendors' API descriptions live, relative to the workspace root.
const SPECS_UNDER: &str = "specs/vendor";

/// The directory holding the vendors' API descriptions: `WEFT_SPECS_DIR` when
/// set, else `specs/vendor` in the nearest ancestor of the running package's
/// directory ([`crate::package_dir`]) — inside the repository, so a fresh
/// clone has it.
pub fn specs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEFT_SPECS_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = crate::package_dir();
    manifest
        .ancestors()
        .map(|dir| dir.join(SPECS_UNDER))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("../..").join(SPECS_UNDER))
}

/// How deep `$ref` chains and nested `allOf`/`anyOf`/`oneOf` parts are followed
/// (a guard against cyclic descriptions).
const MAX_DEPTH: usize = 32;

/// One vendor API description, parsed.
#[derive(Debug, Clone)]
pub struct OpenApi {
    doc: Value,
}

impl OpenApi {
    /// Loads `relative` (a path under [`specs_dir`]): JSON if it ends in
    /// `.json`, YAML otherwise.
    pub fn load(relative: &str) -> Result<OpenApi, ConformanceError> {
        let path = specs_dir().join(relative);
        let text = std::fs::read_to_string(&path).map_err(|source| ConformanceError::SpecRead {
            path: path.clone(),
            source,
        })?;
        let doc = if relative.ends_with(".json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
        };
        doc.map(|doc| OpenApi { doc })
            .map_err(|reason| ConformanceError::SpecParse { path, reason })
    }

    /// The whole description, for what the helpers here do not cover.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// The component schema `name` (`components.schemas.<name>`); `Null` if absent.
    pub fn schema(&self, name: &str) -> &Value {
        &self.doc["components"]["schemas"][name]
    }

    /// The operation `method` (lower case, `get`) of `path`, if the description has it.
    pub fn operation(&self, path: &str, method: &str) -> Option<&Value> {
        self.doc["paths"][path]
            .get(method)
            .filter(|op| op.is_object())
    }

    /// `schema` with its `$ref`s followed (local references only, `#/...`).
    pub fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..MAX_DEPTH {
            let Some(pointer) = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
            else {
                break;
            };
            schema = self.doc.pointer(pointer).unwrap_or(&Value::Null);
        }
        schema
    }

    /// The properties of `schema`: `$ref`s followed, the properties of its
    /// `allOf`/`anyOf`/`oneOf` parts merged in, its own properties last.
    pub fn properties(&self, schema: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        self.merge_properties(schema, MAX_DEPTH, &mut out);
        out
    }

    fn merge_properties(&self, schema: &Value, depth: usize, out: &mut Map<String, Value>) {
        let Some(depth) = depth.checked_sub(1) else {
            return;
        };
        let schema = self.resolve(schema);
        for key in ["allOf", "anyOf", "oneOf"] {
            for part in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.merge_properties(part, depth, out);
            }
        }
        if let Some(own) = schema.get("properties").and_then(Value::as_object) {
            out.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }

    /// The properties of an operation's `200` JSON response body.
    pub fn response_properties(&self, operation: &Value) -> Map<String, Value> {
        self.properties(&operation["responses"]["200"]["content"]["application/json"]["schema"])
    }

    /// The properties of an operation's JSON request body.
    pub fn request_properties(&self, operation: &Value) -> Map<String, Value> {
        self.properties(&operation["requestBody"]["content"]["application/json"]["schema"])
    }

    /// The names of an operation's parameters (query, path, header), in order.
    pub fn parameter_names<'a>(&'a self, operation: &'a Value) -> Vec<&'a str> {
        operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| self.resolve(p)["name"].as_str())
            .collect()
    }
}

/// How an API writes timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeEncoding {
    /// ISO 8601 strings: a time is declared [`FieldType::Timestamp`].
    Iso8601,
    /// Integer seconds since the epoch: a time is declared [`FieldType::UnixSeconds`].
    UnixSeconds,
}

/// How a vendor's property types map to weft's logical [`FieldType`]s.
#[derive(Debug, Clone)]
pub struct TypeRules {
    /// How the API writes timestamps.
    pub times: TimeEncoding,
    /// The property `format`s that mark a time (`date-time`, `unix-time`...).
    pub time_formats: &'static [&'static str],
    /// A name suffix (`_at`) that marks a time whatever the format says.
    pub time_suffix: Option<&'static str>,
    /// Money amounts are integers in minor units ([`FieldType::Money`] allowed).
    pub money_as_integer: bool,
    /// An `anyOf`/`oneOf` with a string alternative reads as a string
    /// (the vendor writes nullable or expandable strings that way).
    pub string_alternatives: bool,
}

impl TypeRules {
    /// Whether `declared` is a faithful reading of the vendor property `name`.
    pub fn compatible(&self, declared: FieldType, name: &str, prop: &Value) -> bool {
        let ty = prop.get("type").and_then(Value::as_str);
        let format = prop.get("format").and_then(Value::as_str);
        let time = format.is_some_and(|f| self.time_formats.contains(&f))
            || self.time_suffix.is_some_and(|s| name.ends_with(s));
        let iso_time = time && self.times == TimeEncoding::Iso8601;
        let unix_time = time && self.times == TimeEncoding::UnixSeconds;
        let composite = ["$ref", "allOf", "anyOf", "oneOf"]
            .iter()
            .any(|k| prop.get(*k).is_some());
        match declared {
            FieldType::String => {
                (ty == Some("string") && !iso_time)
                    || (self.string_alternatives && has_string_alternative(prop))
            }
            FieldType::Timestamp => ty == Some("string") && iso_time,
            FieldType::UnixSeconds => ty == Some("integer") && unix_time,
            FieldType::Integer => ty == Some("integer") && !unix_time,
            FieldType::Money => self.money_as_integer && ty == Some("integer"),
            FieldType::Number => ty == Some("number"),
            FieldType::Boolean => ty == Some("boolean"),
            FieldType::Json => composite || matches!(ty, Some("object" | "array")),
            FieldType::Date => false,
        }
    }
}

/// Whether an `anyOf`/`oneOf` property has an alternative of type `string`.
fn has_string_alternative(prop: &Value) -> bool {
    ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| prop.get(*k).and_then(Value::as_array))
        .flatten()
        .any(|alt| alt.get("type").and_then(Value::as_str) == Some("string"))
}

/// Every way `stream`'s declared fields and the vendor record's properties
/// `props` disagree, each a sentence naming the stream and field:
/// a declared field the record lacks, a type `rules` do not accept, a field
/// without a doc where the vendor documents it, a property not declared.
///
/// `record` names the vendor record in the sentences (`Stripe's `customer``);
/// `own_fields` are weft's own fields (not looked up in `props`).
pub fn field_mismatches(
    stream: &CatalogStream,
    props: &Map<String, Value>,
    rules: &TypeRules,
    record: &str,
    own_fields: &[&str],
) -> Vec<String> {
    let name = &stream.spec.name;
    let mut out = Vec::new();
    for f in &stream.fields {
        if own_fields.contains(&f.name.as_str()) {
            continue;
        }
        let Some(prop) = props.get(&f.name) else {
            out.push(format!("{name}.{} is not in {record}", f.name));
            continue;
        };
        if !rules.compatible(f.field_type, &f.name, prop) {
            out.push(format!(
                "{name}.{}: declared {}, {record} has {prop}",
                f.name, f.field_type
            ));
        }
        if f.doc.is_empty() && prop.get("description").is_some() {
            out.push(format!("{name}.{} lacks a doc", f.name));
        }
    }
    for key in props.keys() {
        if !stream.fields.iter().any(|f| &f.name == key) {
            out.push(format!("{name}: {record} has `{key}`, not declared"));
        }
    }
    out
}

/// Panics listing every [`field_mismatches`] of `stream`, if there is any.
#[track_caller]
pub fn assert_fields_match(
    stream: &CatalogStream,
    props: &Map<String, Value>,
    rules: &TypeRules,
    record: &str,
    own_fields: &[&str],
) {
    let problems = field_mismatches(stream, props, rules, record, own_fields);
    assert!(
        problems.is_empty(),
        "{} field mismatch(es) against {record}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISO: TypeRules = TypeRules {
        times: TimeEncoding::Iso8601,
        time_formats: &["date-time"],
        time_suffix: Some("_at"),
        money_as_integer: false,
        string_alternatives: false,
    };
    const UNIX: TypeRules = TypeRules {
        times: TimeEncoding::UnixSeconds,
        time_formats: &["unix-time"],
        time_suffix: None,
        money_as_integer: true,
        string_alternatives: true,
    };

    fn spec() -> OpenApi {
        OpenApi {
            doc: json!({"components": {"schemas": {
                "Base": {"properties": {"id": {"type": "integer", "description": "Id."}}},
                "Alias": {"$ref": "#/components/schemas/Base"},
                "Thing": {"allOf": [{"$ref": "#/components/schemas/Alias"}],
                          "oneOf": [{"properties": {"kind": {"type": "string"}}}],
                          "properties": {"updated_at": {"type": "string"}}}
            }}}),
        }
    }

    #[test]
    fn properties_follow_refs_and_merge_parts() {
        let s = spec();
        let props = s.properties(s.schema("Thing"));
        let keys: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "kind", "updated_at"]);
        assert_eq!(s.resolve(s.schema("Alias")), s.schema("Base"));
        assert!(s.properties(&json!({"$ref": "#/nowhere"})).is_empty());
    }

    #[test]
    fn times_follow_the_vendor_encoding() {
        let iso = json!({"type": "string", "format": "date-time"});
        assert!(ISO.compatible(FieldType::Timestamp, "x", &iso));
        assert!(!ISO.compatible(FieldType::String, "x", &iso));
        assert!(ISO.compatible(
            FieldType::Timestamp,
            "updated_at",
            &json!({"type": "string"})
        ));
        assert!(!ISO.compatible(FieldType::UnixSeconds, "x", &iso));
        let unix = json!({"type": "integer", "format": "unix-time"});
        assert!(UNIX.compatible(FieldType::UnixSeconds, "created", &unix));
        assert!(!UNIX.compatible(FieldType::Integer, "created", &unix));
        assert!(!UNIX.compatible(FieldType::Timestamp, "created", &unix));
        assert!(UNIX.compatible(FieldType::Money, "amount", &json!({"type": "integer"})));
        assert!(!ISO.compatible(FieldType::Money, "amount", &json!({"type": "integer"})));
        let alt = json!({"anyOf": [{"type": "string"}, {"$ref": "#/x"}]});
        assert!(UNIX.compatible(FieldType::String, "customer", &alt));
        assert!(!ISO.compatible(FieldType::String, "customer", &alt));
        assert!(ISO.compatible(FieldType::Json, "customer", &alt));
        assert!(!ISO.compatible(FieldType::Json, "n", &json!({"type": "number"})));
    }

    #[test]
    fn mismatches_name_each_disagreement_both_ways() {
        let stream = weft_core::Catalog::from_toml(
            "test",
            r#"
connector = "t"
[[streams]]
name = "things"
primary_key = ["id"]
fields = [
  { name = "id", type = "string", doc = "Id." },
  { name = "extra", type = "string", doc = "Not the vendor's." },
  { name = "parent_id", type = "string", doc = "weft's own." },
  { name = "kind", type = "string" },
]
"#,
        )
        .unwrap()
        .streams
        .remove(0);
        let s = spec();
        let props = s.properties(s.schema("Thing"));
        let problems = field_mismatches(&stream, &props, &ISO, "the record", &["parent_id"]);
        assert_eq!(
            problems,
            [
                r#"things.id: declared string, the record has {"description":"Id.","type":"integer"}"#,
                "things.extra is not in the record",
                "things: the record has `updated_at`, not declared",
            ]
        );
    }
}
