//! Every source connector the runner registers, and every warehouse, runs
//! the shared suite: this test fails when one does not.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    weft_conformance::package_dir().join("../..")
}

/// The names in `pub const CONNECTORS: &[&str] = &[...];` of the runner
/// (read as text: the runner links DuckDB, this crate does not).
fn runner_connectors() -> Vec<String> {
    runner_list("CONNECTORS")
}

/// The names in the runner's `pub const {name}: &[&str] = &[...];`.
fn runner_list(name: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(workspace().join("crates/runner/src/connectors.rs")).unwrap();
    let start = text
        .find(&format!("pub const {name}:"))
        .unwrap_or_else(|| panic!("the runner declares {name}"));
    let list = &text[start..];
    let list = &list[list.find("= &[").unwrap() + 4..list.find("];").unwrap()];
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Fails unless `file` exists and calls `call`.
fn calls(file: &Path, call: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if text.contains(call) {
        Ok(())
    } else {
        Err(format!("{} does not call {call}", file.display()))
    }
}

#[test]
fn every_runner_connector_runs_the_source_suite() {
    let connectors = runner_connectors();
    assert!(
        ["stripe", "zoom", "salesforce"]
            .iter()
            .all(|c| connectors.iter().any(|n| n == c)),
        "{connectors:?}"
    );
    let missing: Vec<String> = connectors
        .iter()
        .filter_map(|name| {
            let file = workspace()
                .join("connectors")
                .join(name)
                .join("tests/conformance.rs");
            calls(&file, "weft_conformance::source::run_suite(").err()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "connectors not running the source suite:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_runner_sync_target_runs_the_sync_target_suite() {
    let targets = runner_list("SYNC_TARGETS");
    assert!(targets.iter().any(|t| t == "mailchimp"), "{targets:?}");
    let missing: Vec<String> = targets
        .iter()
        .filter_map(|name| {
            let file = workspace()
                .join("connectors")
                .join(name)
                .join("tests/conformance.rs");
            calls(&file, "weft_conformance::sync_target::run_suite(").err()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "sync targets not running the sync-target suite:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_warehouse_runs_the_destination_suite() {
    let src = workspace().join("crates/warehouse/src");
    let mut warehouses = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    if let Some(rest) = line.trim().strip_prefix("impl Warehouse for ") {
                        warehouses.push(rest.trim_end_matches('{').trim().to_string());
                    }
                }
            }
        }
    }
    assert!(
        warehouses.iter().any(|w| w == "DuckDbWarehouse"),
        "{warehouses:?}"
    );
    // DuckDB runs the suite in its existing test binary; other warehouses in
    // an integration test of weft-warehouse that calls `run_suite`.
    let duckdb = workspace().join("crates/warehouse/src/duckdb/tests.rs");
    calls(&duckdb, "weft_conformance::destination::run_suite(").unwrap();
    let mut suites = vec![std::fs::read_to_string(&duckdb).unwrap()];
    let tests_dir = workspace().join("crates/warehouse/tests");
    for entry in std::fs::read_dir(&tests_dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if text.contains("run_suite(") {
            suites.push(text);
        }
    }
    let uncovered: Vec<&String> = warehouses
        .iter()
        .filter(|w| !suites.iter().any(|t| t.contains(w.as_str())))
        .collect();
    assert!(
        uncovered.is_empty(),
        "warehouses whose tests do not run the destination suite: {uncovered:?}"
    );
}

#[test]
fn a_connector_without_the_suite_is_reported() {
    let dir = tempfile_dir();
    let file = dir.join("conformance.rs");
    std::fs::write(&file, "#[test] fn nothing() {}").unwrap();
    let err = calls(&file, "weft_conformance::source::run_suite(").unwrap_err();
    assert!(
        err.ends_with("does not call weft_conformance::source::run_suite("),
        "{err}"
    );
    let err = calls(&dir.join("absent.rs"), "x").unwrap_err();
    assert!(err.contains("absent.rs"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("weft-conformance-coverage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
