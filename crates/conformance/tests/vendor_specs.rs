//! The vendor API extracts in `specs/vendor` are whole (every `$ref` resolves
//! inside its file, every path and schema `specs/tools/vendor.toml` selects is
//! there), and no test reads a file outside the repository.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use weft_conformance::openapi::{OpenApi, specs_dir};

fn workspace() -> PathBuf {
    weft_conformance::package_dir().join("../..")
}

#[derive(serde::Deserialize)]
struct Selection {
    file: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    source: String,
    paths: Vec<String>,
    schemas: Vec<String>,
}

fn selection() -> Selection {
    let text = std::fs::read_to_string(workspace().join("specs/tools/vendor.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

fn extract_name(source: &str) -> String {
    let stem = source.rsplit_once('.').map_or(source, |(stem, _)| stem);
    format!("{stem}.json")
}

/// Every local `$ref` under `node` that does not resolve in `doc`.
fn dangling(doc: &Value, node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str)
                && let Some(pointer) = r.strip_prefix('#')
                && doc.pointer(pointer).is_none()
            {
                out.push(r.to_string());
            }
            map.values().for_each(|v| dangling(doc, v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| dangling(doc, v, out)),
        _ => {}
    }
}

#[test]
fn every_selected_path_and_schema_is_in_its_extract_and_every_ref_resolves() {
    let selection = selection();
    assert_eq!(selection.file.len(), 6);
    for entry in &selection.file {
        let name = extract_name(&entry.source);
        let spec = OpenApi::load(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
        for path in &entry.paths {
            let (method, path) = path.rsplit_once(' ').unwrap_or(("", path));
            let item = &spec.doc()["paths"][path];
            assert!(item.is_object(), "{name}: no path {path}");
            if !method.is_empty() {
                assert!(
                    spec.operation(path, method).is_some(),
                    "{name}: no {method} {path}"
                );
            }
        }
        for schema in &entry.schemas {
            assert!(
                spec.schema(schema).is_object(),
                "{name}: no schema {schema}"
            );
        }
        let mut missing = Vec::new();
        dangling(spec.doc(), spec.doc(), &mut missing);
        assert!(missing.is_empty(), "{name}: dangling refs {missing:?}");
        // Nothing beyond the selection and what it references: the extract
        // has no path the selection does not name.
        let selected: Vec<&str> = entry
            .paths
            .iter()
            .map(|p| p.rsplit_once(' ').map_or(p.as_str(), |(_, p)| p))
            .collect();
        for path in spec.doc()["paths"].as_object().unwrap().keys() {
            assert!(
                selected.contains(&path.as_str()),
                "{name}: unselected path {path}"
            );
        }
    }
}

#[test]
fn the_specs_dir_is_inside_the_repository() {
    let dir = specs_dir().canonicalize().unwrap();
    let root = workspace().canonicalize().unwrap();
    if std::env::var_os("WEFT_SPECS_DIR").is_none() {
        assert_eq!(dir, root.join("specs/vendor"));
    }
    assert!(root.join("specs/vendor/SOURCES.md").is_file());
}

/// Rust sources under `dir` (skipping build output).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_test_reads_the_vendor_files_outside_the_repository() {
    let root = workspace();
    let mut files = Vec::new();
    for top in ["crates", "connectors", "tests", "benches"] {
        if root.join(top).is_dir() {
            rust_files(&root.join(top), &mut files);
        }
    }
    assert!(files.len() > 50, "{}", files.len());
    // Spelled in two parts so this file does not match itself.
    let outside = format!("{}/{}", "upstream-api-specs", "");
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains(&outside) || text.contains(&format!("{}{}", "../shared", "/"))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "read outside the repository: {offenders:?}"
    );
}
