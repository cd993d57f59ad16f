//! The runner against the warehouse a team grows into: sandbox APIs -> an S3
//! bucket (SeaweedFS) -> PostgreSQL, both real servers on loopback. Exact
//! rows, keys and cursors; incremental re-runs; the demo story; two runners
//! on one database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use weft_core::CancellationToken;
use weft_e2e::{Harness, PgStack, secret_file};
use weft_runner::{RunOptions, RunOutcome, WeftConfig};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

async fn run(config: &WeftConfig) -> RunOutcome {
    weft_runner::run(
        config,
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap()
}

/// `weft.toml` for Stripe and Zendesk pipelines over `stack`, in `dir`.
fn stripe_and_zendesk(stack: &PgStack, sandbox: &Sandbox, dir: &std::path::Path) -> WeftConfig {
    let stripe_key = secret_file(dir, "stripe.key", weft_sandbox::DEFAULT_STRIPE_KEY);
    let zendesk_token = secret_file(dir, "zendesk.token", weft_sandbox::DEFAULT_ZENDESK_TOKEN);
    let text = format!(
        r#"
{target}

[[pipelines]]
name = "stripe"
connector = "stripe"
streams = ["customers", "charges", "invoices"]
[pipelines.config]
base_url = "{stripe}"
api_key = {{ file = "{stripe_key}" }}

[[pipelines]]
name = "zendesk"
connector = "zendesk"
streams = ["tickets", "users", "organizations"]
[pipelines.config]
base_url = "{zendesk}"
email = "{zendesk_email}"
api_token = {{ file = "{zendesk_token}" }}
requests_per_minute = 60000
incremental_requests_per_minute = 60000
"#,
        target = stack.config_toml(dir),
        stripe = sandbox.base_url(Api::Stripe),
        zendesk = sandbox.base_url(Api::Zendesk),
        zendesk_email = weft_sandbox::DEFAULT_ZENDESK_EMAIL,
    );
    let path = dir.join("weft.toml");
    std::fs::write(&path, text).unwrap();
    WeftConfig::load(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_and_zendesk_via_s3_into_postgres_then_only_changes() {
    let stack = PgStack::start("e2e");
    let sandbox = Sandbox::start(SandboxConfig {
        size: 150,
        rate_limits: false,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = stripe_and_zendesk(&stack, &sandbox, dir.path());
    let control = sandbox.control();

    let first = run(&config).await;
    assert!(first.succeeded(), "{}", first.render());
    // Exact rows and keys.
    let customers: BTreeSet<String> = control.stripe_customer_ids().into_iter().collect();
    let loaded: BTreeSet<String> = stack
        .strings("SELECT id FROM stripe.customers")
        .into_iter()
        .collect();
    assert_eq!(loaded, customers);
    assert_eq!(stack.i64("SELECT count(*) FROM stripe.customers"), 150);
    for t in ["stripe.charges", "stripe.invoices"] {
        assert_eq!(stack.i64(&format!("SELECT count(*) FROM {t}")), 150, "{t}");
        assert_eq!(
            stack.i64(&format!("SELECT count(DISTINCT id) FROM {t}")),
            150,
            "{t}"
        );
    }
    assert_eq!(stack.i64("SELECT count(*) FROM zendesk.tickets"), 150);
    assert_eq!(
        stack.strings("SELECT min(id) || '-' || max(id) FROM zendesk.tickets"),
        ["1-150"]
    );
    assert_eq!(stack.i64("SELECT count(*) FROM zendesk.users"), 150);
    assert_eq!(stack.i64("SELECT count(*) FROM zendesk.organizations"), 7);
    // One load row per stream that loaded, and a cursor for each stream.
    let loads = stack.i64("SELECT count(*) FROM _weft._weft_loads");
    let reported: u64 = first
        .pipelines
        .iter()
        .flat_map(|p| &p.streams)
        .map(|s| s.loads)
        .sum();
    assert_eq!(loads as u64, reported);
    assert_eq!(stack.i64("SELECT count(*) FROM _weft._weft_state"), 6);
    let cursor = stack.strings(
        "SELECT (state::jsonb ->> 'created')::bigint = \
         (SELECT extract(epoch FROM max(created))::bigint FROM stripe.customers) \
         FROM _weft._weft_state WHERE pipeline = 'stripe' AND stream = 'customers'",
    );
    assert_eq!(cursor, ["t"], "cursor = newest created");
    // The loads are in the bucket, one prefix per load.
    let staged = stack
        .stage()
        .list_loads("stripe", "customers")
        .await
        .unwrap();
    assert_eq!(staged.len(), 1);
    assert_eq!(
        stack.i64(&format!(
            "SELECT count(*) FROM stripe.customers WHERE _weft_load_id = '{}'",
            staged[0]
        )),
        150
    );

    // Change the world: rename a customer, delete a ticket, add two users.
    let ids = control.stripe_customer_ids();
    control.advance_clock(600);
    control
        .stripe_update_customer(&ids[10], serde_json::json!({"name": "Renamed Person"}))
        .unwrap();
    control.zendesk_delete_ticket(7).unwrap();
    let created = control.zendesk_create_users(2);
    control.advance_clock(600);

    let second = run(&config).await;
    assert!(second.succeeded(), "{}", second.render());
    let stripe = &second.pipelines[0];
    assert!(
        (1..=5).contains(&stripe.stream("customers").unwrap().rows),
        "only changes: {}",
        stripe.to_table()
    );
    assert_eq!(stack.i64("SELECT count(*) FROM stripe.customers"), 150);
    assert_eq!(
        stack.strings(&format!(
            "SELECT name FROM stripe.customers WHERE id = '{}'",
            ids[10]
        )),
        ["Renamed Person"]
    );
    assert_eq!(
        stack.strings("SELECT status || ':' || (_weft_deleted_at IS NOT NULL) FROM zendesk.tickets WHERE id = 7"),
        ["deleted:true"]
    );
    assert_eq!(stack.i64("SELECT count(*) FROM zendesk.tickets"), 150);
    assert_eq!(stack.i64("SELECT count(*) FROM zendesk.users"), 152);
    for id in created {
        assert_eq!(
            stack.i64(&format!(
                "SELECT count(*) FROM zendesk.users WHERE id = {id}"
            )),
            1
        );
    }
    // A third run with nothing changed loads nothing new.
    let rows_before = stack.i64("SELECT count(*) FROM stripe.customers");
    let third = run(&config).await;
    assert!(third.succeeded(), "{}", third.render());
    assert!(
        third.pipelines[0].stream("customers").unwrap().rows <= 5,
        "no full re-read: {}",
        third.pipelines[0].to_table()
    );
    assert_eq!(
        stack.i64("SELECT count(*) FROM stripe.customers"),
        rows_before
    );

    // `weft replay` into a fresh database rebuilds the tables from the bucket
    // alone, without calling the API.
    let original =
        stack.strings("SELECT id || '|' || coalesce(name, '') FROM stripe.customers ORDER BY id");
    let mut stack = stack;
    stack.use_database_keeping_stage("replayed");
    let replay_dir = tempfile::tempdir().unwrap();
    let replay_config = stripe_and_zendesk(&stack, &sandbox, replay_dir.path());
    let requests = control.request_count(Api::Stripe);
    let receipts = weft_runner::replay(&replay_config, "stripe", "customers", None)
        .await
        .unwrap();
    assert_eq!(receipts.len(), staged_after(&stack).await);
    assert!(receipts.iter().all(|r| !r.already_committed));
    assert_eq!(control.request_count(Api::Stripe), requests, "no API call");
    assert_eq!(
        stack.strings("SELECT id || '|' || coalesce(name, '') FROM stripe.customers ORDER BY id"),
        original
    );
    // Replaying again is a no-op: every load id is known.
    let again = weft_runner::replay(&replay_config, "stripe", "customers", None)
        .await
        .unwrap();
    assert!(again.iter().all(|r| r.already_committed));
    sandbox.shutdown().await;
}

/// How many loads of `stripe.customers` the bucket holds.
async fn staged_after(stack: &PgStack) -> usize {
    stack
        .stage()
        .list_loads("stripe", "customers")
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_story_runs_on_postgres() {
    let stack = PgStack::start("story");
    let h = Harness::story_on(&stack, 60, "upsert").await;
    let first = h.run_all().await;
    let people = stack.i64("SELECT count(*) FROM models.people");
    let distinct = stack.i64(
        r#"SELECT count(DISTINCT e) FROM (
               SELECT lower(trim(email)) AS e FROM zoom.webinar_registrants
               UNION ALL
               SELECT lower(trim("Email")) FROM salesforce."Contact" WHERE "_weft_deleted_at" IS NULL
           ) seen WHERE e IS NOT NULL AND e <> ''"#,
    );
    assert!(people > 0);
    assert_eq!(people, distinct, "one row per person by email");
    assert_eq!(
        stack.i64("SELECT count(DISTINCT email) FROM models.people"),
        people
    );
    assert!(stack.i64("SELECT count(*) FROM models.people WHERE sources = 'salesforce,zoom'") > 0);
    let sync = first.syncs[0].report.as_ref().unwrap();
    assert_eq!(sync.created as i64, people);
    assert_eq!(h.mailchimp_members().len() as i64, people);
    assert_eq!(
        stack.i64("SELECT count(*) FROM _weft._weft_sync_snapshot_mailchimp_people"),
        people
    );

    // A re-run with nothing changed sends nothing.
    let writes = h.sandbox.control().writes(Api::Mailchimp).len();
    let again = h.run_all().await;
    let sync = again.syncs[0].report.as_ref().unwrap();
    assert_eq!(
        (sync.plan.creates, sync.plan.updates, sync.plan.deletes),
        (0, 0, 0)
    );
    assert_eq!(sync.batches, 0);
    assert_eq!(h.sandbox.control().writes(Api::Mailchimp).len(), writes);
}

/// Two `weft run` processes for the same pipeline on one PostgreSQL: with no
/// wait the second reports who holds the pipeline and loads nothing; with a
/// wait both finish, one after the other. Rows are exact either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_postgres_never_run_a_pipeline_at_once() {
    let mut stack = PgStack::start("runners");
    for (round, wait) in [(0, "lock_wait_secs = 0"), (1, "lock_wait_secs = 120")] {
        stack.use_database(&format!("runners_{round}"));
        // 60 ms per request and 20 rows a page: a run of a few seconds.
        let sandbox = SandboxConfig {
            size: 400,
            faults: weft_sandbox::Faults {
                latency_ms: 60,
                ..Default::default()
            },
            ..SandboxConfig::default()
        };
        let h = Harness::stripe_on(
            &stack,
            sandbox,
            "streams = [\"customers\", \"charges\"]\ncheckpoint_rows = 50",
        )
        .await;
        let text = std::fs::read_to_string(&h.config_path).unwrap();
        let text = text.replace(
            "kind = \"postgres\"",
            &format!("kind = \"postgres\"\n{wait}"),
        );
        let text = text.replace("[pipelines.config]", "[pipelines.config]\npage_size = 20");
        std::fs::write(&h.config_path, text).unwrap();
        let spawn = || {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
                .args(["run", "--config"])
                .arg(&h.config_path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
                .wait_with_output()
        };
        let first = tokio::spawn(spawn());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let second = spawn().await.unwrap();
        let first = first.await.unwrap().unwrap();
        let said = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        assert!(first.status.success(), "first: {}", said(&first));
        if round == 0 {
            assert!(!second.status.success(), "second: {}", said(&second));
            assert!(
                said(&second).contains("pipeline `stripe` is running on host"),
                "second: {}",
                said(&second)
            );
        } else {
            assert!(second.status.success(), "second: {}", said(&second));
        }
        let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
        for t in ["stripe.customers", "stripe.charges"] {
            stack.assert_exact(t, expected);
        }
        assert_eq!(
            stack.i64("SELECT count(*) - count(DISTINCT load_id) FROM _weft._weft_loads"),
            0
        );
    }
}

/// `weft demo` into PostgreSQL: the URL comes from a secret ref (here a
/// file; on the command line `--postgres-url-env VAR`) and is written
/// nowhere; the story lands in the database, the audience gets everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_demo_loads_into_postgres_without_writing_its_url() {
    let pg = tokio::task::spawn_blocking(weft_testsvc::Postgres::start)
        .await
        .unwrap()
        .unwrap();
    // Trust authentication ignores the password; it stands for a real one.
    let url = pg
        .create_database("demo")
        .unwrap()
        .replacen("weft@", "weft:sentinel-pw-4711@", 1);
    let dir = tempfile::tempdir().unwrap();
    let url_file = secret_file(dir.path(), "pg.url", &url);
    let demo_dir = dir.path().join("demo");
    let warehouse = weft_runner::DemoWarehouse::Postgres(weft_core::SecretRef::File {
        file: url_file.into(),
    });
    let summary = weft_runner::run_demo(&demo_dir, 60, warehouse, CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.outcome.succeeded(), "{}", summary.render());
    let people = pg
        .psql("demo", "SELECT count(*) FROM models.people")
        .unwrap()
        .trim()
        .parse::<u64>()
        .unwrap();
    assert!(people > 0);
    assert_eq!(summary.people, people);
    assert_eq!(summary.audience_members as u64, people);
    let customers = pg
        .psql("demo", "SELECT count(*) FROM stripe.customers")
        .unwrap();
    assert_eq!(customers.trim(), "60");
    assert!(
        !demo_dir.join("weft.duckdb").exists(),
        "nothing went to DuckDB"
    );
    let rendered = summary.render();
    assert!(
        rendered.contains("warehouse  PostgreSQL (the URL in "),
        "{rendered}"
    );
    assert!(rendered.contains("weft query --config "), "{rendered}");
    // What the summary says to try works on PostgreSQL too.
    let config = weft_runner::WeftConfig::load(&summary.config_path).unwrap();
    let result = weft_runner::query(
        &config,
        "SELECT count(*) AS people, count(DISTINCT email) AS emails FROM models.people",
    )
    .await
    .unwrap();
    assert_eq!(result.columns, ["people", "emails"]);
    assert_eq!(
        result.rows,
        vec![vec![serde_json::json!(people), serde_json::json!(people)]]
    );
    let config = std::fs::read_to_string(&summary.config_path).unwrap();
    assert!(config.contains("kind = \"postgres\""), "{config}");
    for text in [&rendered, &config] {
        assert!(!text.contains("sentinel-pw-4711"), "the URL leaked: {text}");
    }
}

/// `_weft._weft_quality` on PostgreSQL: Zendesk `users` with `expect_unique
/// = ["id"]`, loaded four times (the sandbox's users, 30 new twice, then
/// nothing): every run records a `volume`, a `unique` and (its SLA) a
/// `freshness` row, and the zero-row run's volume row is `warn` with the
/// median and bounds of the runs before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_results_are_recorded_in_postgres() {
    let stack = PgStack::start("quality");
    let sandbox = Sandbox::start(SandboxConfig {
        size: 20,
        rate_limits: false,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(
        dir.path(),
        "zendesk.token",
        weft_sandbox::DEFAULT_ZENDESK_TOKEN,
    );
    let text = format!(
        r#"
{target}

[[pipelines]]
name = "zendesk"
connector = "zendesk"
streams = ["users"]
quality.volume_min_runs = 2
freshness_sla = "3650d"

[pipelines.per_stream.users]
expect_unique = ["id"]

[pipelines.config]
base_url = "{zendesk}"
email = "{email}"
api_token = {{ file = "{token}" }}
requests_per_minute = 60000
incremental_requests_per_minute = 60000
"#,
        target = stack.config_toml(dir.path()),
        zendesk = sandbox.base_url(Api::Zendesk),
        email = weft_sandbox::DEFAULT_ZENDESK_EMAIL,
    );
    let path = dir.path().join("weft.toml");
    std::fs::write(&path, text).unwrap();
    let config = WeftConfig::load(&path).unwrap();
    let control = sandbox.control();

    let mut rows = Vec::new();
    for new_users in [0, 30, 30, 0] {
        control.advance_clock(600);
        if new_users > 0 {
            control.zendesk_create_users(new_users);
        }
        control.advance_clock(600);
        let outcome = run(&config).await;
        assert!(outcome.succeeded(), "{}", outcome.render());
        rows.push(outcome.pipelines[0].stream("users").unwrap().rows);
    }
    assert_eq!(rows[1..], [30, 30, 0], "{rows:?}");
    // One volume and one unique row per run, in run order.
    let runs = stack.strings(
        "SELECT run_id FROM _weft._weft_runs WHERE pipeline = 'zendesk' \
         ORDER BY run_id COLLATE \"C\"",
    );
    assert_eq!(runs.len(), 4);
    let quality = stack.strings(
        "SELECT run_id || '|' || kind || '|' || coalesce(column_name, '-') || '|' || \
         observed || '|' || coalesce(expected::text, '-') || '|' || \
         coalesce(threshold, '-') || '|' || status FROM _weft._weft_quality \
         WHERE pipeline = 'zendesk' AND stream = 'users' AND kind <> 'freshness' \
         ORDER BY run_id COLLATE \"C\", kind COLLATE \"C\"",
    );
    let initial = rows[0];
    assert_eq!(quality.len(), 8, "{quality:?}");
    // Run 2 is judged against [30, initial]: the median of two is their mean.
    let judged = quality[5].clone();
    assert!(
        judged.starts_with(&format!(
            "{}|volume|-|30|{}|<= ",
            runs[2],
            (30 + initial) as f64 / 2.0
        )) && judged.ends_with("|ok"),
        "{judged}"
    );
    assert_eq!(
        quality,
        [
            format!("{}|unique|id|0|0|0|ok", runs[0]),
            format!("{}|volume|-|{initial}|-|-|ok", runs[0]),
            format!("{}|unique|id|0|0|0|ok", runs[1]),
            format!("{}|volume|-|30|-|-|ok", runs[1]),
            format!("{}|unique|id|0|0|0|ok", runs[2]),
            judged,
            format!("{}|unique|id|0|0|0|ok", runs[3]),
            // [30, 30, initial]: median 30, MAD 0.
            format!("{}|volume|-|0|30|<= 3 or >= 300|warn", runs[3]),
        ]
    );
    // Run 2's volume row names its (the newest) load of users; the
    // zero-row run committed none.
    let named = stack.strings(&format!(
        "SELECT coalesce((q.load_id = (SELECT max(load_id COLLATE \"C\") FROM _weft._weft_loads \
         WHERE stream = 'users'))::text, 'null') FROM _weft._weft_quality q \
         WHERE kind = 'volume' AND run_id IN ('{}', '{}') ORDER BY run_id COLLATE \"C\"",
        runs[2], runs[3]
    ));
    assert_eq!(named, ["true", "null"]);
    // The SLA's stream has a freshness row per run: fresh, age within it.
    let fresh = stack.strings(
        "SELECT status || '|' || expected || '|' || threshold || '|' || \
         (observed >= 0 AND observed <= expected)::text FROM _weft._weft_quality \
         WHERE kind = 'freshness' ORDER BY run_id COLLATE \"C\"",
    );
    assert_eq!(fresh, vec!["ok|315360000|<= 315360000|true"; 4]);
    let message = stack.strings(
        "SELECT message FROM _weft._weft_quality WHERE status = 'warn' AND kind = 'volume'",
    );
    assert_eq!(
        message,
        ["0 rows, far below the usual: usually 30 (median of 3 earlier runs, MAD 0)"]
    );
    sandbox.shutdown().await;
}
