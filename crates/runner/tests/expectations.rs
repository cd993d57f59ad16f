//! Expectations on declared columns (`expect_not_null`, `expect_unique`),
//! counted in the warehouse after `weft run`'s loads committed: the report
//! names each failed one with its count, `on_quality_failure = "fail"`
//! makes the run exit non-zero (the data stays loaded), and a column the
//! table does not have is an error naming the stream and the column.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use weft_runner::WeftConfig;
use weft_sandbox::SandboxConfig;

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

/// The `quality …` lines of a run's report.
fn quality_lines(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("quality "))
        .map(String::from)
        .collect()
}

/// The demo config with `pipeline_line` after Salesforce's `connector = …`
/// and `contact` (the keys of `[pipelines.per_stream.Contact]`) at the end
/// of the Salesforce pipeline.
fn with_expectations(demo: &str, pipeline_line: &str, contact: &str) -> String {
    let head = "name = \"salesforce\"\nconnector = \"salesforce\"\n";
    assert!(demo.contains(head), "no salesforce pipeline");
    let text = demo.replacen(head, &format!("{head}{pipeline_line}\n"), 1);
    let stripe = "[[pipelines]]\nname = \"stripe\"";
    assert!(text.contains(stripe), "no stripe pipeline");
    text.replacen(
        stripe,
        &format!("[pipelines.per_stream.Contact]\n{contact}\n\n{stripe}"),
        1,
    )
}

/// One count from the warehouse, through the library's `weft query`.
fn count(rt: &tokio::runtime::Runtime, config: &Path, sql: &str) -> u64 {
    let config = WeftConfig::load(config).unwrap();
    let result = rt.block_on(weft_runner::query(&config, sql)).unwrap();
    result.rows[0][0].as_u64().unwrap()
}

#[test]
fn failed_expectations_are_reported_with_counts_and_fail_the_run_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = SandboxConfig {
        size: 20,
        ..Default::default()
    };
    let sandbox = rt
        .block_on(weft_sandbox::Sandbox::start(config.clone()))
        .unwrap();
    let config_path = weft_runner::write_demo_config(
        dir.path(),
        &sandbox,
        &config,
        &weft_runner::DemoWarehouse::DuckDb,
        weft_core::SyncWriteMode::Upsert,
        None,
    )
    .unwrap();
    let demo = std::fs::read_to_string(&config_path).unwrap();

    // Without expectations: no quality line.
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(quality_lines(&out).is_empty(), "{}", stdout(&out));

    // The sandbox leaves some contacts without a MailingState, and states
    // repeat; Ids are unique. Counted here independently of the runner.
    let nulls = count(
        &rt,
        &config_path,
        "SELECT count(*) FROM salesforce.\"Contact\" WHERE \"MailingState\" IS NULL \
         AND \"_weft_deleted_at\" IS NULL",
    );
    let repeated = count(
        &rt,
        &config_path,
        "SELECT count(*) FROM (SELECT \"MailingState\" FROM salesforce.\"Contact\" \
         WHERE \"MailingState\" IS NOT NULL GROUP BY 1 HAVING count(*) > 1) AS d",
    );
    let loaded = count(
        &rt,
        &config_path,
        "SELECT count(*) FROM salesforce.\"Contact\"",
    );
    assert!(nulls > 0 && nulls < loaded, "{nulls} of {loaded}");
    assert!(repeated > 0, "no repeated MailingState");
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let expected = [
        format!(
            "quality salesforce.Contact: MailingState has {nulls} NULL{}",
            plural(nulls)
        ),
        format!(
            "quality salesforce.Contact: MailingState has {repeated} duplicated value{}",
            plural(repeated)
        ),
    ];
    let contact = "expect_not_null = [\"MailingState\", \"Id\"]\n\
                   expect_unique = [\"Id\", \"MailingState\"]";

    // warn (the default): reported, the run succeeds.
    std::fs::write(&config_path, with_expectations(&demo, "", contact)).unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(quality_lines(&out), expected, "{}", stdout(&out));
    assert!(!stdout(&out).contains("FAILED"), "{}", stdout(&out));
    // Every expectation of the run is a row of _weft._weft_quality, held or not.
    let recorded = |rt: &tokio::runtime::Runtime| {
        let config = WeftConfig::load(&config_path).unwrap();
        rt.block_on(weft_runner::query(
            &config,
            "SELECT kind, column_name, observed, status, message FROM _weft._weft_quality \
             WHERE stream = 'Contact' AND kind IN ('not_null', 'unique') AND run_id = \
             (SELECT max(run_id) FROM _weft._weft_quality) ORDER BY kind, column_name",
        ))
        .unwrap()
        .rows
    };
    let rows_of = |flagged: &str| {
        use serde_json::json;
        vec![
            vec![
                json!("not_null"),
                json!("Id"),
                json!(0.0),
                json!("ok"),
                json!("Id has no NULL"),
            ],
            vec![
                json!("not_null"),
                json!("MailingState"),
                json!(nulls as f64),
                json!(flagged),
                json!(expected[0].trim_start_matches("quality salesforce.Contact: ")),
            ],
            vec![
                json!("unique"),
                json!("Id"),
                json!(0.0),
                json!("ok"),
                json!("Id has no duplicated value"),
            ],
            vec![
                json!("unique"),
                json!("MailingState"),
                json!(repeated as f64),
                json!(flagged),
                json!(expected[1].trim_start_matches("quality salesforce.Contact: ")),
            ],
        ]
    };
    assert_eq!(recorded(&rt), rows_of("warn"));

    // fail on the pipeline: the same lines, the stream fails, exit 1, and
    // the loaded rows stay committed.
    std::fs::write(
        &config_path,
        with_expectations(&demo, "on_quality_failure = \"fail\"", contact),
    )
    .unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(quality_lines(&out), expected, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "error  Contact: quality expectations failed (the loaded data stays committed): \
             MailingState has {nulls} NULL"
        )),
        "{text}"
    );
    assert_eq!(recorded(&rt), rows_of("fail"));
    let contact_row = text.lines().find(|l| l.starts_with("Contact ")).unwrap();
    assert!(contact_row.contains(" FAILED "), "{contact_row}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("Lead ") && l.contains(" ok ")),
        "{text}"
    );
    assert_eq!(
        count(
            &rt,
            &config_path,
            "SELECT count(*) FROM salesforce.\"Contact\""
        ),
        loaded
    );

    // A stream's own action overrides the pipeline's.
    let warn_here = format!("{contact}\non_quality_failure = \"warn\"");
    std::fs::write(
        &config_path,
        with_expectations(&demo, "on_quality_failure = \"fail\"", &warn_here),
    )
    .unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(quality_lines(&out), expected, "{}", stdout(&out));

    // Only expectations that hold: no line.
    std::fs::write(
        &config_path,
        with_expectations(
            &demo,
            "on_quality_failure = \"fail\"",
            "expect_not_null = [\"Id\"]\nexpect_unique = [\"Id\"]",
        ),
    )
    .unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(quality_lines(&out).is_empty(), "{}", stdout(&out));

    // An unknown column fails the stream even under warn, naming both.
    std::fs::write(
        &config_path,
        with_expectations(&demo, "", "expect_unique = [\"NoSuchColumn\"]"),
    )
    .unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        quality_lines(&out),
        [
            "quality salesforce.Contact: expect_unique names column `NoSuchColumn`, which table \
          salesforce.Contact does not have"
        ],
        "{}",
        stdout(&out)
    );
    rt.block_on(sandbox.shutdown());
}

/// `weft.toml` in `dir`: a Zendesk pipeline reading `users` from
/// `sandbox` (exact increments: Zendesk's export cursor), loading into
/// DuckDB, with `pipeline_lines` in the pipeline and `tail` after it.
fn zendesk_users(
    sandbox: &weft_sandbox::Sandbox,
    dir: &Path,
    pipeline_lines: &str,
    tail: &str,
) -> std::path::PathBuf {
    let token = dir.join("zendesk.token");
    std::fs::write(&token, weft_sandbox::DEFAULT_ZENDESK_TOKEN).unwrap();
    let text = format!(
        r#"
[warehouse]
kind = "duckdb"
path = "weft.duckdb"

[stage]
url = "stage"

[[pipelines]]
name = "zendesk"
connector = "zendesk"
streams = ["users"]
{pipeline_lines}

[pipelines.config]
base_url = "{base}"
email = "{email}"
api_token = {{ file = "{token}" }}
requests_per_minute = 60000
incremental_requests_per_minute = 60000

{tail}
"#,
        base = sandbox.base_url(weft_sandbox::Api::Zendesk),
        email = weft_sandbox::DEFAULT_ZENDESK_EMAIL,
        token = token.display(),
    );
    let path = dir.join("weft.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One run of pipeline `zendesk` through the library.
fn run_zendesk(rt: &tokio::runtime::Runtime, config: &Path) -> weft_core::RunReport {
    let config = WeftConfig::load(config).unwrap();
    let options = weft_runner::RunOptions {
        pipeline: Some("zendesk".to_string()),
        ..Default::default()
    };
    let outcome = rt
        .block_on(weft_runner::run(
            &config,
            &options,
            weft_core::CancellationToken::new(),
            None,
        ))
        .unwrap();
    outcome.pipelines.into_iter().next().unwrap()
}

/// The `quality …` notices of a run's report.
fn quality_notices(report: &weft_core::RunReport) -> Vec<String> {
    report
        .streams
        .iter()
        .flat_map(|s| s.notices.iter())
        .filter(|n| n.starts_with("quality "))
        .cloned()
        .collect()
}

/// The newest run's `volume` row of `zendesk.users` in
/// `_weft._weft_quality`: observed, expected, threshold, status, message,
/// load id, run id.
fn newest_volume_row(rt: &tokio::runtime::Runtime, config: &Path) -> Vec<serde_json::Value> {
    let config = WeftConfig::load(config).unwrap();
    let result = rt
        .block_on(weft_runner::query(
            &config,
            "SELECT observed, expected, threshold, status, message, load_id, run_id \
             FROM _weft._weft_quality WHERE pipeline = 'zendesk' AND stream = 'users' \
             AND kind = 'volume' ORDER BY run_id DESC LIMIT 1",
        ))
        .unwrap();
    result.rows.into_iter().next().unwrap()
}

/// Volume anomalies on DuckDB: Zendesk loads the sandbox's 20 users, then
/// 50 new ones per run; a run that loads none is flagged (a `quality`
/// notice and a `warn` row in `_weft._weft_quality`), the next normal run
/// is not, and with `quality.volume = "fail"` on the stream a zero-row run
/// fails (exit 1, the run recorded as failed, the row `fail`).
#[test]
fn a_zero_row_load_after_normal_ones_is_flagged_and_fails_the_run_when_asked() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sandbox = rt
        .block_on(weft_sandbox::Sandbox::start(SandboxConfig {
            size: 20,
            rate_limits: false,
            ..Default::default()
        }))
        .unwrap();
    let control = sandbox.control();
    let config_path = zendesk_users(&sandbox, dir.path(), "quality.volume_min_runs = 3", "");
    // 50 new users, well before the run.
    let grow = || {
        control.advance_clock(600);
        assert_eq!(control.zendesk_create_users(50).len(), 50);
        control.advance_clock(600);
    };

    // The first run loads the sandbox's users: nothing to judge by.
    let first = run_zendesk(&rt, &config_path);
    assert!(first.succeeded(), "{}", first.to_table());
    let initial = first.stream("users").unwrap().rows;
    assert!(initial > 0, "{}", first.to_table());
    let row = newest_volume_row(&rt, &config_path);
    assert_eq!(
        row[..5],
        [
            json!(initial as f64),
            json!(null),
            json!(null),
            json!("ok"),
            json!(format!(
                "{initial} rows; not judged: 0 earlier runs known, 3 needed"
            ))
        ]
    );
    // Three runs of 50 new users each; the third is judged against
    // [50, 50, initial]: median 50.
    for _ in 0..3 {
        grow();
        let report = run_zendesk(&rt, &config_path);
        assert!(report.succeeded(), "{}", report.to_table());
        assert_eq!(
            report.stream("users").unwrap().rows,
            50,
            "{}",
            report.to_table()
        );
        assert!(
            quality_notices(&report).is_empty(),
            "{:?}",
            quality_notices(&report)
        );
    }
    let row = newest_volume_row(&rt, &config_path);
    assert_eq!(
        row[..5],
        [
            json!(50.0),
            json!(50.0),
            json!("<= 5 or >= 500"),
            json!("ok"),
            json!("50 rows, usually 50 (median of 3 earlier runs, MAD 0)")
        ]
    );
    // The volume row names the run's newest load of the stream.
    let config = WeftConfig::load(&config_path).unwrap();
    let newest_load = rt
        .block_on(weft_runner::query(
            &config,
            "SELECT max(load_id) FROM _weft._weft_loads WHERE stream = 'users'",
        ))
        .unwrap()
        .rows[0][0]
        .clone();
    assert_eq!(row[5], newest_load);

    // Nothing new: 0 rows where there are usually 50 is flagged; the run
    // still succeeds (warn is the default), and no load names it.
    control.advance_clock(1200);
    let zero = run_zendesk(&rt, &config_path);
    assert!(zero.succeeded(), "{}", zero.to_table());
    assert_eq!(zero.stream("users").unwrap().rows, 0);
    let flagged = "0 rows, far below the usual: usually 50 (median of 4 earlier runs, MAD 0)";
    assert_eq!(
        quality_notices(&zero),
        [format!("quality zendesk.users: volume {flagged}")]
    );
    let row = newest_volume_row(&rt, &config_path);
    assert_eq!(
        row[..6],
        [
            json!(0.0),
            json!(50.0),
            json!("<= 5 or >= 500"),
            json!("warn"),
            json!(flagged),
            json!(null)
        ]
    );
    // The rendered report prints it as its own line.
    let outcome = weft_runner::RunOutcome {
        pipelines: vec![zero],
        ..Default::default()
    };
    assert!(
        outcome
            .render()
            .lines()
            .any(|l| l == format!("quality zendesk.users: volume {flagged}")),
        "{}",
        outcome.render()
    );

    // A normal run after it is not flagged: [0, 50, 50, 50, initial].
    grow();
    let normal = run_zendesk(&rt, &config_path);
    assert!(normal.succeeded(), "{}", normal.to_table());
    assert_eq!(normal.stream("users").unwrap().rows, 50);
    assert!(
        quality_notices(&normal).is_empty(),
        "{:?}",
        quality_notices(&normal)
    );
    let row = newest_volume_row(&rt, &config_path);
    assert_eq!(row[3], json!("ok"));
    assert_eq!(row[1], json!(50.0));

    // fail on the stream: a zero-row run exits 1, the stream FAILED with
    // the reason, the run recorded as failed, the row `fail`.
    zendesk_users(
        &sandbox,
        dir.path(),
        "quality.volume_min_runs = 3",
        "[pipelines.per_stream.users]\nquality.volume = \"fail\"",
    );
    control.advance_clock(1200);
    let out = weft(dir.path(), &["run", "--pipeline", "zendesk"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // [50, 0, 50, 50, 50, initial]: median 50, MAD 0.
    let flagged = "0 rows, far below the usual: usually 50 (median of 6 earlier runs, MAD 0)";
    assert_eq!(
        quality_lines(&out),
        [format!("quality zendesk.users: volume {flagged}")],
        "{}",
        stdout(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "error  users: volume anomaly (the loaded data stays committed): {flagged}"
        )),
        "{text}"
    );
    let row = newest_volume_row(&rt, &config_path);
    assert_eq!(row[3], json!("fail"));
    let config = WeftConfig::load(&config_path).unwrap();
    let runs = rt
        .block_on(weft_runner::runs(&config, Some("zendesk"), 1))
        .unwrap();
    assert_eq!(runs[0].status, weft_runner::RunStatus::Failed);
    assert_eq!(json!(runs[0].run_id), row[6]);
    rt.block_on(sandbox.shutdown());
}

/// The completeness rows of the newest run: (stream, observed, expected,
/// status), by stream.
fn completeness_rows(rt: &tokio::runtime::Runtime, config: &Path) -> Vec<Vec<serde_json::Value>> {
    let config = WeftConfig::load(config).unwrap();
    rt.block_on(weft_runner::query(
        &config,
        "SELECT stream, observed, expected, status FROM _weft._weft_quality \
         WHERE kind = 'completeness' AND run_id = (SELECT max(run_id) FROM _weft._weft_quality) \
         ORDER BY stream",
    ))
    .unwrap()
    .rows
}

#[test]
fn records_the_api_counted_but_did_not_page_are_flagged_as_missing() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = SandboxConfig {
        size: 20,
        ..Default::default()
    };
    let sandbox = rt
        .block_on(weft_sandbox::Sandbox::start(config.clone()))
        .unwrap();
    let control = sandbox.control();
    let config_path = weft_runner::write_demo_config(
        dir.path(),
        &sandbox,
        &config,
        &weft_runner::DemoWarehouse::DuckDb,
        weft_core::SyncWriteMode::Upsert,
        None,
    )
    .unwrap();
    let demo = std::fs::read_to_string(&config_path).unwrap();
    let contacts = control.salesforce_ids("Contact").unwrap();
    let hidden = [contacts[3].clone(), contacts[11].clone()];
    for id in &hidden {
        control.salesforce_hide_from_pages("Contact", id).unwrap();
    }
    let total = contacts.len() as u64;

    // warn (the default): the run succeeds, the report and the quality
    // table say how many the source counted and how many arrived.
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let message = format!(
        "{} rows loaded, but the source counted {total}: 2 missing (at most 0 allowed)",
        total - 2
    );
    assert_eq!(
        quality_lines(&out),
        [format!(
            "quality salesforce.Contact: completeness {message}"
        )],
        "{}",
        stdout(&out)
    );
    let loaded = count(
        &rt,
        &config_path,
        "SELECT count(*) FROM salesforce.\"Contact\"",
    );
    assert_eq!(loaded, total - 2);
    let rows = completeness_rows(&rt, &config_path);
    let contact = rows.iter().find(|r| r[0] == json!("Contact")).unwrap();
    assert_eq!(
        contact,
        &vec![
            json!("Contact"),
            json!((total - 2) as f64),
            json!(total as f64),
            json!("warn")
        ]
    );
    // Every other object the pipeline read was counted and arrived whole.
    assert!(rows.len() > 1, "{rows:?}");
    for row in rows.iter().filter(|r| r[0] != json!("Contact")) {
        assert_eq!((&row[1], &row[3]), (&row[2], &json!("ok")), "{row:?}");
    }

    // The hidden contacts change (so the next run's window counts them),
    // with one visible one; `fail` on the stream fails the run, 2 missing.
    control.advance_clock(60);
    for id in hidden.iter().chain([&contacts[5]]) {
        control
            .salesforce_update("Contact", id, json!({"Title": "Counted, not paged"}))
            .unwrap();
    }
    std::fs::write(
        &config_path,
        with_expectations(&demo, "", "quality.completeness = \"fail\""),
    )
    .unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let lines = quality_lines(&out);
    assert_eq!(lines.len(), 1, "{}", stdout(&out));
    assert!(
        lines[0].starts_with("quality salesforce.Contact: completeness ")
            && lines[0].contains(": 2 missing (at most 0 allowed)"),
        "{lines:?}"
    );
    assert!(
        stdout(&out).contains("error  Contact: incomplete read (the loaded data stays committed)"),
        "{}",
        stdout(&out)
    );
    let rows = completeness_rows(&rt, &config_path);
    let contact = rows.iter().find(|r| r[0] == json!("Contact")).unwrap();
    let (observed, expected) = (contact[1].as_f64().unwrap(), contact[2].as_f64().unwrap());
    assert_eq!(expected - observed, 2.0, "{contact:?}");
    assert!(observed >= 1.0, "{contact:?}");
    assert_eq!(contact[3], json!("fail"));
    assert_eq!(
        count(
            &rt,
            &config_path,
            "SELECT count(*) FROM salesforce.\"Contact\" WHERE \"Title\" = 'Counted, not paged'",
        ),
        1
    );

    // A tolerance of a share that covers the shortfall passes; `off` skips
    // the check (no completeness row for the stream).
    control.advance_clock(60);
    for id in &hidden {
        control
            .salesforce_update("Contact", id, json!({"Title": "Still hidden"}))
            .unwrap();
    }
    std::fs::write(
        &config_path,
        with_expectations(
            &demo,
            "",
            "quality.completeness = \"fail\"\nquality.completeness_tolerance = 1.0",
        ),
    )
    .unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(quality_lines(&out).is_empty(), "{}", stdout(&out));
    let rows = completeness_rows(&rt, &config_path);
    let contact = rows.iter().find(|r| r[0] == json!("Contact")).unwrap();
    assert_eq!(contact[3], json!("ok"), "{contact:?}");
    std::fs::write(
        &config_path,
        with_expectations(&demo, "", "quality.completeness = \"off\""),
    )
    .unwrap();
    let out = weft(dir.path(), &["run", "--pipeline", "salesforce"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let rows = completeness_rows(&rt, &config_path);
    assert!(rows.iter().all(|r| r[0] != json!("Contact")), "{rows:?}");
    rt.block_on(sandbox.shutdown());
}
