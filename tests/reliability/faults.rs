//! The fault storm: Stripe, Zendesk and Intercom behind 10% 5xx, 5% 429
//! (`Retry-After` in seconds, 0 and HTTP-date), connection resets and cut
//! bodies. The run must finish with exactly the rows a calm run gets — the
//! same tables, the same keys, each once — and its report must show the
//! retries it took.

use std::collections::BTreeMap;
use std::path::Path;

use weft_core::CancellationToken;
use weft_e2e::{query_i64, query_strings, secret_file};
use weft_runner::{RunOptions, RunOutcome, WeftConfig};
use weft_sandbox::{Api, Faults, RetryAfterStyle, Sandbox, SandboxConfig};

const SIZE: usize = 200;
const SCHEMAS: [&str; 3] = ["stripe", "zendesk", "intercom"];

/// The faults of the storm, for each of the three APIs.
fn storm() -> Faults {
    Faults {
        error_rate: 0.10,
        rate_limit_rate: 0.05,
        retry_after: RetryAfterStyle::Mixed,
        reset_rate: 0.02,
        truncate_rate: 0.02,
        ..Default::default()
    }
}

/// Runs the three pipelines against a sandbox (faults set before the run).
async fn run(sandbox: &Sandbox, dir: &Path) -> RunOutcome {
    let stripe_key = secret_file(dir, "stripe.key", weft_sandbox::DEFAULT_STRIPE_KEY);
    let zendesk_token = secret_file(dir, "zendesk.token", weft_sandbox::DEFAULT_ZENDESK_TOKEN);
    let intercom_token = secret_file(dir, "intercom.token", weft_sandbox::DEFAULT_INTERCOM_TOKEN);
    // Small pages so the storm hits many requests; more attempts than the
    // default so a long unlucky streak (0.19^12) cannot fail the test.
    let http = "http = { max_attempts = 12, initial_backoff_ms = 10, max_backoff_ms = 200 }";
    let text = format!(
        r#"
[warehouse]
kind = "duckdb"
path = "{db}"

[stage]
url = "{stage}"

[[pipelines]]
name = "stripe"
connector = "stripe"
[pipelines.config]
base_url = "{stripe}"
api_key = {{ file = "{stripe_key}" }}
page_size = 10
requests_per_second = 1000
{http}

[[pipelines]]
name = "zendesk"
connector = "zendesk"
[pipelines.config]
base_url = "{zendesk}"
email = "{zendesk_email}"
api_token = {{ file = "{zendesk_token}" }}
page_size = 20
requests_per_minute = 60000
incremental_requests_per_minute = 60000
{http}

[[pipelines]]
name = "intercom"
connector = "intercom"
[pipelines.config]
base_url = "{intercom}"
access_token = {{ file = "{intercom_token}" }}
page_size = 20
{http}
"#,
        db = dir.join("weft.duckdb").display(),
        stage = dir.join("stage").display(),
        stripe = sandbox.base_url(Api::Stripe),
        zendesk = sandbox.base_url(Api::Zendesk),
        zendesk_email = weft_sandbox::DEFAULT_ZENDESK_EMAIL,
        intercom = sandbox.base_url(Api::Intercom),
    );
    let path = dir.join("weft.toml");
    std::fs::write(&path, text).unwrap();
    let config = WeftConfig::load(&path).unwrap();
    weft_runner::run(
        &config,
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap()
}

/// Every loaded table of the three schemas with its sorted keys.
fn keys_by_table(db: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for schema in SCHEMAS {
        let tables = query_strings(
            db,
            &format!(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = '{schema}' ORDER BY 1"
            ),
        );
        for table in tables {
            let name = format!("{schema}.{table}");
            let key = key_of(&name);
            let keys = query_strings(db, &format!("SELECT {key}::VARCHAR FROM {name} ORDER BY 1"));
            out.insert(name, keys);
        }
    }
    out
}

/// The primary key column of a loaded table: `id`, but `name` for the
/// streams keyed by name (data attributes, whose standard ones have no id;
/// Zendesk tags).
fn key_of(table: &str) -> &'static str {
    match table {
        "intercom.contact_attributes" | "intercom.company_attributes" | "zendesk.tags" => "name",
        _ => "id",
    }
}

async fn sandbox(faults: Faults) -> Sandbox {
    Sandbox::start(SandboxConfig {
        size: SIZE,
        rate_limits: false,
        faults,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_storm_ends_with_exactly_the_rows_of_a_calm_run() {
    // The calm run: the expected tables and keys.
    let calm_dir = tempfile::tempdir().unwrap();
    let calm_sandbox = sandbox(Faults::default()).await;
    let calm = run(&calm_sandbox, calm_dir.path()).await;
    assert!(calm.succeeded(), "{}", calm.render());
    for r in &calm.pipelines {
        eprintln!("calm {}: {:.1} s", r.pipeline, r.seconds);
    }
    let expected = keys_by_table(&calm_dir.path().join("weft.duckdb"));

    // What the sandbox generates, by its documented formulas.
    let n = SIZE as i64;
    let stripe_customers = calm_sandbox.control().stripe_customer_ids().len() as i64;
    let known = [
        ("stripe.customers", stripe_customers),
        ("zendesk.tickets", n),
        ("zendesk.users", n),
        ("zendesk.organizations", (n / 20).max(3)),
        ("zendesk.ticket_fields", 9),
        ("zendesk.groups", 6),
        ("intercom.contacts", n),
        ("intercom.companies", (n / 10).max(5)),
        ("intercom.conversations", n / 2),
        ("intercom.admins", 4),
        ("intercom.tags", 6),
    ];
    for (table, count) in known {
        assert_eq!(
            expected.get(table).map(Vec::len),
            Some(count as usize),
            "calm run: {table}"
        );
    }
    assert!(expected.len() >= 20, "tables: {:?}", expected.keys());

    // The storm.
    let dir = tempfile::tempdir().unwrap();
    let stormy = sandbox(Faults::default()).await;
    for api in [Api::Stripe, Api::Zendesk, Api::Intercom] {
        stormy.control().set_faults(api, storm());
    }
    let outcome = run(&stormy, dir.path()).await;
    assert!(outcome.succeeded(), "{}", outcome.render());
    let db = dir.path().join("weft.duckdb");
    let got = keys_by_table(&db);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (table, keys) in &expected {
        assert_eq!(&got[table], keys, "{table}: keys differ from the calm run");
        let dupes = query_i64(
            &db,
            &format!(
                "SELECT count(*) - count(DISTINCT {key}) FROM {table}",
                key = key_of(table)
            ),
        );
        assert_eq!(dupes, 0, "{table} has duplicates");
    }
    // Every rejected record would be a loss here: the storm cuts transport,
    // never data.
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM _weft._weft_rejects"),
        0
    );

    // The report shows what the storm cost, per API.
    for report in &outcome.pipelines {
        let retries: u64 = report.streams.iter().map(|s| s.retries).sum();
        let limited: u64 = report.streams.iter().map(|s| s.rate_limited).sum();
        let requests: u64 = report.streams.iter().map(|s| s.requests).sum();
        let served = match report.pipeline.as_str() {
            "stripe" => stormy.control().request_count(Api::Stripe),
            "zendesk" => stormy.control().request_count(Api::Zendesk),
            _ => stormy.control().request_count(Api::Intercom),
        };
        eprintln!(
            "{}: {requests} requests, {retries} retries, {limited} rate limited in {:.1} s; the sandbox saw {served}",
            report.pipeline, report.seconds
        );
        assert!(retries > 0, "{}: no retries reported", report.pipeline);
        assert!(
            requests <= served,
            "{}: reported {requests} requests, the sandbox saw {served}",
            report.pipeline
        );
        let table = report.to_table();
        assert!(table.contains("retries"), "{table}");
    }
    let limited: u64 = outcome
        .pipelines
        .iter()
        .flat_map(|r| &r.streams)
        .map(|s| s.rate_limited)
        .sum();
    assert!(limited > 0, "no 429 reported in the storm");
}
