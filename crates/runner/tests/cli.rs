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
    assert_eq!(streams.len(), 15, "the Stripe catalog's streams");
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

/// The sandbox, served by a runtime of its own while the test runs the
/// binary, and the demo's config for it in `dir`.
fn sandbox_config(dir: &Path) -> (tokio::runtime::Runtime, weft_sandbox::Sandbox) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = weft_sandbox::SandboxConfig {
        size: 20,
        ..Default::default()
    };
    let sandbox = rt
        .block_on(weft_sandbox::Sandbox::start(config.clone()))
        .unwrap();
    weft_runner::write_demo_config(
        dir,
        &sandbox,
        &config,
        &weft_runner::DemoWarehouse::DuckDb,
        weft_core::SyncWriteMode::Upsert,
        None,
    )
    .unwrap();
    (rt, sandbox)
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn check_reports_each_part_and_fails_on_refused_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, sandbox) = sandbox_config(dir.path());
    let out = weft(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "stage: ok\nwarehouse: ok\nzoom: ok\nsalesforce: ok\nstripe: ok\n\
         sync mailchimp_people: ok\nsync zendesk_people: ok\nsync salesforce_contacts: ok\n"
    );

    // A mode a destination cannot honour is refused by check, naming it.
    let config_path = dir.path().join("weft.toml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    let zendesk = text.find("name = \"zendesk_people\"").unwrap();
    let refused = format!(
        "{}{}",
        &text[..zendesk],
        text[zendesk..].replacen("mode = \"upsert\"", "mode = \"update_only\"", 1)
    );
    std::fs::write(&config_path, &refused).unwrap();
    let out = weft(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with("sync zendesk_people: "))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        line.starts_with("sync zendesk_people: FAILED: ")
            && line.ends_with(
                "zendesk cannot sync in mode `update_only` (it supports: upsert, mirror)"
            ),
        "{line}"
    );
    assert!(
        stdout(&out).contains("sync mailchimp_people: ok\n"),
        "{}",
        stdout(&out)
    );
    // A Zoom registrants sync, with the Zoom pipeline's credentials: mirror
    // passes check, upsert is refused (Zoom cannot edit a registration).
    let zoom_config = {
        let start = text.find("[pipelines.config]\nbase_url = ").unwrap();
        let block = &text[start..];
        let end = block.find("\n\n").unwrap();
        block["[pipelines.config]\n".len()..end].to_string()
    };
    assert!(zoom_config.contains("client_secret"), "{zoom_config}");
    let webinar = sandbox.control().zoom_webinar_ids()[2];
    let zoom_sync = |mode: &str| {
        format!(
            "{text}\n[[syncs]]\nname = \"zoom_invites\"\nconnector = \"zoom\"\n\
             model = \"models.people\"\nprimary_key = \"email\"\nmode = \"{mode}\"\n\n\
             [syncs.mapping]\nemail = \"email\"\nfirst_name = \"first_name\"\n\n\
             [syncs.config]\n{zoom_config}\nwebinar_id = {webinar}\n"
        )
    };
    std::fs::write(&config_path, zoom_sync("mirror")).unwrap();
    let out = weft(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("sync salesforce_contacts: ok\nsync zoom_invites: ok\n"),
        "{}",
        stdout(&out)
    );
    std::fs::write(&config_path, zoom_sync("upsert")).unwrap();
    let out = weft(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with("sync zoom_invites: "))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        line.starts_with("sync zoom_invites: FAILED: ")
            && line
                .ends_with("zoom cannot sync in mode `upsert` (it supports: create_only, mirror)"),
        "{line}"
    );
    std::fs::write(&config_path, &text).unwrap();

    sandbox.control().set_faults(
        weft_sandbox::Api::Stripe,
        weft_sandbox::Faults {
            bad_auth: true,
            ..Default::default()
        },
    );
    let out = weft(dir.path(), &["check", "--pipeline", "stripe"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("stage: ok\nwarehouse: ok\nstripe: FAILED: "),
        "{text}"
    );
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains(weft_sandbox::DEFAULT_STRIPE_KEY), "{text}");

    let out = weft(dir.path(), &["check", "--pipeline", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    rt.block_on(sandbox.shutdown());
}

#[test]
fn runs_lists_each_run_and_replay_reloads_the_stage_into_a_fresh_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, sandbox) = sandbox_config(dir.path());
    let out = weft(dir.path(), &["runs"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("(no runs recorded)\n"),
        "{}",
        stdout(&out)
    );

    let first = json(&weft(
        dir.path(),
        &["run", "--pipeline", "stripe", "--json"],
    ));
    let stream_rows = |report: &serde_json::Value, stream: &str| {
        report["pipelines"][0]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stream"] == stream)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    let customers = stream_rows(&first, "customers");
    let charges = stream_rows(&first, "charges");
    assert_eq!(customers, 20);
    assert!(charges > 0);

    let runs = json(&weft(dir.path(), &["runs", "--json"]));
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["pipeline"], "stripe");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["trigger"], "manual");
    assert_eq!(runs[0]["rows"].as_u64(), Some(customers + charges));
    assert_eq!(runs[0]["rate_limited"].as_u64(), Some(0));
    assert!(runs[0]["requests"].as_u64().unwrap() >= 2);
    assert!(runs[0]["finished_at"].is_string());
    assert!(runs[0]["error"].is_null());

    // Nothing changed: the second run commits nothing, and lists first.
    let second = json(&weft(
        dir.path(),
        &["run", "--pipeline", "stripe", "--json"],
    ));
    assert_eq!(stream_rows(&second, "customers"), 0);
    let latest = json(&weft(
        dir.path(),
        &["runs", "--pipeline", "stripe", "--limit", "1", "--json"],
    ));
    assert_eq!(latest.as_array().unwrap().len(), 1);
    assert_eq!(latest[0]["rows"].as_u64(), Some(0));
    assert!(latest[0]["run_id"].as_str().unwrap() > runs[0]["run_id"].as_str().unwrap());
    let table = stdout(&weft(dir.path(), &["runs"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("run "), "{table}");
    assert!(
        lines[1].contains(" stripe ") && lines[1].contains(" succeeded "),
        "{table}"
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells[1..6],
        ["pipeline", "stripe", "-", "manual", "succeeded"],
        "{table}"
    );

    // A failed run is recorded with its error.
    sandbox.control().set_faults(
        weft_sandbox::Api::Stripe,
        weft_sandbox::Faults {
            bad_auth: true,
            ..Default::default()
        },
    );
    let failed = weft(dir.path(), &["run", "--pipeline", "stripe"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let latest = json(&weft(dir.path(), &["runs", "--limit", "1", "--json"]));
    assert_eq!(latest[0]["status"], "failed");
    assert!(
        latest[0]["error"].as_str().unwrap().contains("401"),
        "{latest}"
    );

    // Every staged load is already in the warehouse: replay is a no-op.
    let out = weft(
        dir.path(),
        &["replay", "--pipeline", "stripe", "--stream", "customers"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.is_empty());
    assert!(
        text.lines().all(|l| l.ends_with("(already loaded: no-op)")),
        "{text}"
    );

    // Into a fresh warehouse from the same stage: the same customers.
    let config = std::fs::read_to_string(dir.path().join("weft.toml")).unwrap();
    let fresh = config.replace("path = \"weft.duckdb\"", "path = \"fresh.duckdb\"");
    assert_ne!(fresh, config);
    std::fs::write(dir.path().join("fresh.toml"), fresh).unwrap();
    let out = weft(
        dir.path(),
        &[
            "replay",
            "--config",
            "fresh.toml",
            "--pipeline",
            "stripe",
            "--stream",
            "customers",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let loaded: u64 = stdout(&out)
        .lines()
        .map(|l| {
            assert!(!l.contains("no-op"), "{l}");
            l.split(": ")
                .nth(1)
                .unwrap()
                .trim_end_matches(" rows")
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(loaded, customers);
    let count = |config: &str| {
        json(&weft(
            dir.path(),
            &[
                "query",
                "--config",
                config,
                "--json",
                "SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM stripe.customers",
            ],
        ))["rows"][0]
            .clone()
    };
    assert_eq!(count("fresh.toml"), count("weft.toml"));
    assert_eq!(count("fresh.toml")[0].as_u64(), Some(customers));

    let out = weft(
        dir.path(),
        &["replay", "--pipeline", "stripe", "--stream", "nosuch"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));
    rt.block_on(sandbox.shutdown());
}

#[test]
fn demo_prints_a_clean_summary_and_logs_to_its_dir_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["demo", "--size", "20", "--dir"])
            .arg(&demo)
            .env_remove("WEFT_LOG")
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "",
        "stderr is not a terminal: logs go to the file"
    );
    let text = stdout(&out);
    let log = demo.canonicalize().unwrap().join("weft.log");
    assert!(
        text.ends_with(&format!("log        {}\n", log.display())),
        "{text}"
    );
    let people: u64 = text
        .split("people after dedupe: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(people > 0, "{text}");
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["level"].is_string()), "{logged}");
    assert!(!logged.contains(weft_sandbox::DEFAULT_STRIPE_KEY));
    assert!(!logged.contains(weft_sandbox::DEFAULT_MAILCHIMP_KEY));

    // The second demo sends nothing, and the audience still holds what the
    // first one sent: the simulated tools keep their state in the demo dir.
    let audience = |text: &str| -> u64 {
        text.split("Mailchimp audience holds ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let sent = audience(&text);
    assert!(sent > 0 && sent <= people, "{text}");
    assert!(
        text.contains(&format!("created {sent}, updated 0")),
        "{text}"
    );
    let saved = std::fs::read_to_string(demo.join("sandbox-state.json")).unwrap();
    assert!(!saved.contains(weft_sandbox::DEFAULT_MAILCHIMP_KEY));
    let again = run();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let text = stdout(&again);
    assert_eq!(audience(&text), sent, "{text}");
    assert!(text.contains("created 0, updated 0, deleted 0"), "{text}");
}

#[test]
fn new_connector_writes_a_renamed_copy_of_the_template_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = weft(dir.path(), &["new", "connector", "acme_crm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("wrote 9 files: "), "{text}");
    assert!(text.contains("cargo test -p weft-acme_crm"), "{text}");
    let root = dir.path();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let cargo = read("connectors/acme_crm/Cargo.toml");
    assert!(cargo.contains("name = \"weft-acme_crm\""), "{cargo}");
    let lib = read("connectors/acme_crm/src/lib.rs");
    assert!(lib.contains("pub use source::AcmeCrmSource;"), "{lib}");
    assert!(
        lib.contains("include_str!(\"../../../specs/acme_crm.toml\")"),
        "{lib}"
    );
    assert!(read("specs/acme_crm.toml").contains("connector = \"acme_crm\""));
    // Every file of the template, each renamed everywhere.
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors/template");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "src/config.rs",
        "src/client.rs",
        "src/source.rs",
        "src/error.rs",
        "tests/requests.rs",
        "tests/conformance.rs",
    ] {
        let written = read(&format!("connectors/acme_crm/{file}"));
        let original = std::fs::read_to_string(template.join(file)).unwrap();
        assert!(original.contains("emplate"), "{file}");
        assert!(
            !written.to_lowercase().contains("template"),
            "{file}: {written}"
        );
        assert_eq!(written.lines().count(), original.lines().count(), "{file}");
    }

    let again = weft(root, &["new", "connector", "acme_crm"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let bad = weft(root, &["new", "connector", "Acme"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("lowercase"), "{}", stderr(&bad));
    assert!(!root.join("connectors/Acme").exists());
}

/// `weft query --json SQL` in `dir`: its rows.
fn query_rows(dir: &Path, sql: &str) -> Vec<Vec<serde_json::Value>> {
    let out = weft(dir, &["query", "--json", sql]);
    let v = json(&out);
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().clone())
        .collect()
}

#[test]
fn a_history_stream_keeps_every_version_through_weft_run() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let (rt, sandbox) = sandbox_config(dir.path());
    let control = sandbox.control();
    let path = dir.path().join("weft.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let streams = "streams = [\"customers\", \"charges\"]\n";
    assert!(text.contains(streams), "{text}");
    let text = text.replacen(
        streams,
        &format!("{streams}\n[pipelines.per_stream.customers]\nwrite_disposition = \"history\"\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();

    let out = weft(dir.path(), &["run", "--pipeline", "stripe"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let ids = control.stripe_customer_ids();
    let n = ids.len() as u64;
    let counts = "SELECT count(*), count(DISTINCT id), \
                  count(*) FILTER (WHERE _weft_is_current) FROM stripe.customers";
    assert_eq!(
        query_rows(dir.path(), counts),
        [vec![json!(n), json!(n), json!(n)]]
    );

    // One customer renamed, one deleted: two versions each.
    let (renamed, deleted) = (ids[3].clone(), ids[7].clone());
    control.advance_clock(600);
    control
        .stripe_update_customer(&renamed, json!({"name": "Renamed Person"}))
        .unwrap();
    control.stripe_delete_customer(&deleted).unwrap();
    control.advance_clock(600);
    let out = weft(dir.path(), &["run", "--pipeline", "stripe"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        query_rows(dir.path(), counts),
        [vec![json!(n + 2), json!(n), json!(n - 1)]]
    );
    let versions = |id: &str| {
        query_rows(
            dir.path(),
            &format!(
                "SELECT name, CASE WHEN _weft_is_current THEN 1 ELSE 0 END, \
                 CASE WHEN _weft_deleted_at IS NULL THEN 0 ELSE 1 END, \
                 CASE WHEN _weft_valid_to IS NULL THEN 0 ELSE 1 END \
                 FROM stripe.customers WHERE id = '{id}' ORDER BY _weft_valid_from"
            ),
        )
    };
    let renamed_versions = versions(&renamed);
    assert_eq!(renamed_versions.len(), 2, "{renamed_versions:?}");
    assert_eq!(
        renamed_versions[1],
        vec![json!("Renamed Person"), json!(1), json!(0), json!(0)]
    );
    assert_eq!(&renamed_versions[0][1..], &[json!(0), json!(0), json!(1)]);
    assert_ne!(renamed_versions[0][0], json!("Renamed Person"));
    let deleted_versions = versions(&deleted);
    assert_eq!(deleted_versions.len(), 2, "{deleted_versions:?}");
    assert_eq!(&deleted_versions[0][1..], &[json!(0), json!(0), json!(1)]);
    assert_eq!(&deleted_versions[1][1..], &[json!(0), json!(1), json!(1)]);

    // A run with nothing changed re-reads its boundary and adds no version.
    control.advance_clock(600);
    let out = weft(dir.path(), &["run", "--pipeline", "stripe"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        query_rows(dir.path(), counts),
        [vec![json!(n + 2), json!(n), json!(n - 1)]]
    );
    rt.block_on(sandbox.shutdown());
}

/// `weft run --json` in `dir` (must succeed): the outcome.
fn run_json(dir: &Path) -> serde_json::Value {
    let out = weft(dir, &["run", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The report of sync `name` in a `weft run --json` outcome.
fn sync_report<'a>(outcome: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    outcome["syncs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sync"] == name)
        .map(|s| &s["report"])
        .unwrap()
}

#[test]
fn a_sync_run_is_rolled_back_to_the_values_it_replaced_and_only_once() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let (rt, sandbox) = sandbox_config(dir.path());
    let control = sandbox.control();
    let list = control.mailchimp_list_id();
    let member = |email: &str| {
        control
            .mailchimp_members(&list)
            .into_iter()
            .find(|m| m["email_address"] == email)
            .unwrap()
    };
    let first = run_json(dir.path());
    assert!(
        sync_report(&first, "mailchimp_people")["created"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Someone in Salesforce is renamed there (its newest change, so the
    // model takes it); the next run sends it.
    let picked = query_rows(
        dir.path(),
        "SELECT p.email, c.\"Id\", p.first_name FROM models.people p JOIN salesforce.\"Contact\" c \
         ON lower(trim(c.\"Email\")) = p.email WHERE p.sources LIKE '%salesforce%' \
         AND c.\"_weft_deleted_at\" IS NULL ORDER BY p.email LIMIT 1",
    );
    let (email, id, before) = (
        picked[0][0].as_str().unwrap().to_string(),
        picked[0][1].as_str().unwrap().to_string(),
        picked[0][2].clone(),
    );
    assert_eq!(member(&email)["merge_fields"]["FNAME"], before);
    control.advance_clock(60);
    control
        .salesforce_update("Contact", &id, json!({"FirstName": "Zebediah"}))
        .unwrap();
    let second = run_json(dir.path());
    let report = sync_report(&second, "mailchimp_people");
    assert_eq!(report["updated"], json!(1), "{report}");
    let run = report["run_id"].as_str().unwrap().to_string();
    assert_eq!(member(&email)["merge_fields"]["FNAME"], json!("Zebediah"));

    // A dry run lists the restore and sends nothing.
    let writes = control.writes(weft_sandbox::Api::Mailchimp).len();
    let args = [
        "sync",
        "rollback",
        "--sync",
        "mailchimp_people",
        "--run",
        run.as_str(),
    ];
    let out = weft(dir.path(), &[&args[..], &["--dry-run"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "rollback mailchimp_people run {run} (dry run): 1 acknowledged writes; would send 1, skipped 0\n"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("would update {email} ")), "{text}");
    assert_eq!(control.writes(weft_sandbox::Api::Mailchimp).len(), writes);

    // The rollback restores what the run replaced, in one write.
    let out = weft(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!(
            "rollback mailchimp_people run {run}: 1 acknowledged writes; restored 1, uncreated 0, recreated 0, rejected 0, skipped 0; run "
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(member(&email)["merge_fields"]["FNAME"], before);
    assert_eq!(
        control.writes(weft_sandbox::Api::Mailchimp).len(),
        writes + 1
    );
    // The log keeps the pre-image beside what was sent.
    let logged = query_rows(
        dir.path(),
        &format!(
            "SELECT sent, previous FROM _weft._weft_sync_log WHERE sync = 'mailchimp_people' \
             AND run_id = '{run}'"
        ),
    );
    let sent: serde_json::Value = serde_json::from_str(logged[0][0].as_str().unwrap()).unwrap();
    let previous: serde_json::Value = serde_json::from_str(logged[0][1].as_str().unwrap()).unwrap();
    assert_eq!(sent["merge_fields.FNAME"], json!("Zebediah"));
    assert_eq!(previous["merge_fields.FNAME"], before);
    // The rollback is a run of its own in the history.
    let runs = weft(dir.path(), &["runs"]);
    assert!(stdout(&runs).contains("rollback"), "{}", stdout(&runs));

    // A second rollback of the same run sends nothing: it was superseded.
    let out = weft(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("restored 0, uncreated 0, recreated 0, rejected 0, skipped 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "skipped update {email}: a later write changed it since"
        )),
        "{text}"
    );
    assert_eq!(
        control.writes(weft_sandbox::Api::Mailchimp).len(),
        writes + 1
    );
    assert_eq!(member(&email)["merge_fields"]["FNAME"], before);

    // An unknown run is an error naming it.
    let out = weft(
        dir.path(),
        &[
            "sync",
            "rollback",
            "--sync",
            "mailchimp_people",
            "--run",
            "nope",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no write of run `nope`"),
        "{}",
        stderr(&out)
    );
    rt.block_on(sandbox.shutdown());
}
