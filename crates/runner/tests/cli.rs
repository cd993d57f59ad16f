//! The `weft` binary's commands as a user types them: output and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn weft(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(dir)
        .env("WEFT_LOG", "error")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A config with a DuckDB warehouse and a local stage in `dir`, no pipelines.
fn duckdb_config(dir: &Path) {
    std::fs::write(
        dir.join("weft.toml"),
        "[warehouse]\nkind = \"duckdb\"\npath = \"w.duckdb\"\n[stage]\nurl = \"stage\"\n",
    )
    .unwrap();
}

#[test]
fn query_prints_a_table_json_and_fails_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    duckdb_config(dir.path());
    let made = weft(
        dir.path(),
        &[
            "query",
            "CREATE TABLE people AS SELECT 'p' || i AS email, i AS n FROM range(3) t(i)",
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));

    let out = weft(
        dir.path(),
        &["query", "SELECT email, n FROM people ORDER BY n"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "email | n\n------+--\np0    | 0\np1    | 1\np2    | 2\n(3 rows)\n"
    );

    let out = weft(
        dir.path(),
        &["query", "--json", "SELECT email FROM people WHERE n = 1"],
    );
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"columns": ["email"], "rows": [["p1"]]})
    );

    let out = weft(dir.path(), &["query", "SELECT nope FROM people"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.contains("nope"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn state_show_and_reset_on_a_fresh_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    duckdb_config(dir.path());
    let out = weft(dir.path(), &["state", "show", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    let out = weft(dir.path(), &["state", "reset", "--pipeline", "stripe"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "reset 0 cursor(s) of stripe\n");
}

#[test]
fn discover_lists_streams_and_refuses_an_unknown_connector() {
    let dir = tempfile::tempdir().unwrap();
    let out = weft(dir.path(), &["discover", "stripe", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let streams: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(streams.len(), 10);
    assert_eq!(streams[0]["name"], "customers");
    assert_eq!(streams[0]["primary_key"], serde_json::json!(["id"]));
    assert_eq!(streams[0]["cursor"], "created");

    let out = weft(dir.path(), &["discover", "stripe"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("customers  key=id  cursor=created  disposition=merge"),
        "{text}"
    );

    let out = weft(dir.path(), &["discover", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));
}

#[test]
fn a_missing_config_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = weft(dir.path(), &["query", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("weft.toml"), "{}", stderr(&out));
}
