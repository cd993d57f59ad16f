//! Checks a served JSON value against an OpenAPI 3 JSON response schema:
//! every emitted field is a documented property (through `$ref`, `allOf`,
//! `oneOf` and `anyOf`), required properties are present and JSON types match
//! (`null` only where the schema says `nullable`).
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{Map, Value};

/// `specs/vendor/<rel>` of this checkout (the vendors' descriptions, cut
/// down to what weft uses), found from the package directory `cargo test`
/// gives the running binary (not the one fixed at build time, so a binary
/// reused from a checkout at another path reads this checkout's files).
/// `WEFT_SPECS_DIR` points elsewhere.
pub fn spec_path(rel: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("WEFT_SPECS_DIR") {
        return PathBuf::from(dir).join(rel);
    }
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../../specs/vendor")
        .join(rel)
}

/// Loads `specs/vendor/<rel>` (JSON).
pub fn load(rel: &str) -> Value {
    let path = spec_path(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The component schema `name` of `spec`; panics when the extract lacks it
/// (add it to specs/tools/vendor.toml and rerun the extractor).
pub fn component<'a>(spec: &'a Value, name: &str) -> &'a Value {
    let schema = &spec["components"]["schemas"][name];
    assert!(
        schema.is_object(),
        "schema {name} is not in the vendor extract: add it to specs/tools/vendor.toml"
    );
    schema
}

/// The `application/json` schema of `method path` answering `status`.
pub fn response_schema<'a>(spec: &'a Value, path: &str, method: &str, status: &str) -> &'a Value {
    let s =
        &spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(s.is_object(), "no schema for {method} {path} {status}");
    s
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .trim_start_matches("#/")
            .split('/')
            .fold(spec, |node, key| &node[key]),
        None => schema,
    }
}

/// Properties, required names and type of a schema, merging composition.
fn flatten(
    spec: &Value,
    schema: &Value,
    props: &mut Map<String, Value>,
    required: &mut Vec<String>,
) -> Option<String> {
    let schema = resolve(spec, schema);
    let mut ty = schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned);
    for key in ["allOf", "oneOf", "anyOf"] {
        for sub in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let t = flatten(spec, sub, props, required);
            ty = ty.or(t);
        }
    }
    if let Some(p) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in p {
            props.insert(k.clone(), v.clone());
        }
        ty = ty.or(Some("object".to_owned()));
    }
    if key_is_array(schema) {
        ty = Some("array".to_owned());
    }
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = r.as_str() {
            required.push(r.to_owned());
        }
    }
    ty
}

fn key_is_array(schema: &Value) -> bool {
    schema.get("items").is_some()
}

fn items<'a>(spec: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let schema = resolve(spec, schema);
    if let Some(i) = schema.get("items") {
        return Some(i);
    }
    ["allOf", "oneOf", "anyOf"].iter().find_map(|k| {
        schema
            .get(*k)
            .and_then(Value::as_array)
            .and_then(|subs| subs.iter().find_map(|s| items(spec, s)))
    })
}

/// Whether `schema` (or a part it is composed of) is `nullable`.
fn nullable(spec: &Value, schema: &Value) -> bool {
    let schema = resolve(spec, schema);
    schema["nullable"] == Value::Bool(true)
        || ["allOf", "oneOf", "anyOf"].iter().any(|k| {
            schema
                .get(*k)
                .and_then(Value::as_array)
                .is_some_and(|subs| subs.iter().any(|s| nullable(spec, s)))
        })
}

/// Every mismatch between `value` and `schema`, with its JSON path.
pub fn check(spec: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() && nullable(spec, schema) {
        return;
    }
    let mut props = Map::new();
    let mut required = Vec::new();
    let ty = flatten(spec, schema, &mut props, &mut required);
    let type_ok = match ty.as_deref() {
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!("{path}: expected {ty:?}, got {value}"));
        return;
    }
    match value {
        Value::Object(map) => {
            for r in &required {
                if !map.contains_key(r) {
                    errors.push(format!("{path}: required field {r} missing"));
                }
            }
            if props.is_empty() {
                return; // a free-form map (merge_fields, interests)
            }
            for (k, v) in map {
                match props.get(k) {
                    Some(s) => check(spec, s, v, &format!("{path}.{k}"), errors),
                    None => errors.push(format!("{path}.{k}: not in the schema")),
                }
            }
        }
        Value::Array(list) => {
            if let Some(item) = items(spec, schema) {
                for (i, v) in list.iter().enumerate() {
                    check(spec, item, v, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// Asserts `value` matches the response schema of `method path status`.
pub fn assert_matches(spec: &Value, path: &str, method: &str, status: &str, value: &Value) {
    let mut errors = Vec::new();
    check(
        spec,
        response_schema(spec, path, method, status),
        value,
        "$",
        &mut errors,
    );
    assert!(errors.is_empty(), "{method} {path}: {errors:#?}");
}
