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
