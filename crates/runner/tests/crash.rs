//! A `weft run` child process SIGKILLed at seeded random moments, then
//! re-run: no row lost, none duplicated, no half-applied load visible — into
//! DuckDB with a local stage, and into PostgreSQL with an S3 stage (real
//! servers on loopback).
//!
//! It lives in the package that owns the `weft` binary, so cargo builds the
//! binary for it and `CARGO_BIN_EXE_weft` names it (on a clean target dir too).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use weft_e2e::{Harness, PgStack, max_unix_seconds, query_i64, query_rows, query_strings};
use weft_sandbox::{Faults, SandboxConfig};

/// The streams the crash test runs.
const CRASH_STREAMS: [&str; 4] = ["customers", "charges", "invoices", "events"];

/// Where a trial loads, and how the test reads back what landed.
enum Target<'a> {
    /// DuckDB `weft.duckdb` and a local stage, in the harness dir.
    DuckDb,
    /// PostgreSQL and an S3 bucket (a fresh database and prefix per trial).
    Postgres(&'a mut PgStack),
}

impl Target<'_> {
    async fn harness(&mut self, trial: u64, sandbox: SandboxConfig, extra: &str) -> Harness {
        match self {
            Target::DuckDb => Harness::stripe(sandbox, extra).await,
            Target::Postgres(stack) => {
                stack.use_database(&format!("crash_{trial}"));
                Harness::stripe_on(stack, sandbox, extra).await
            }
        }
    }

    fn i64(&self, h: &Harness, sql: &str) -> i64 {
        match self {
            Target::DuckDb => query_i64(&h.warehouse_path(), sql),
            Target::Postgres(stack) => stack.i64(sql),
        }
    }

    fn customers_state(&self, h: &Harness) -> serde_json::Value {
        self.committed_customers_state(h).unwrap()
    }

    /// The customers stream's committed state, if a load committed one.
    fn committed_customers_state(&self, h: &Harness) -> Option<serde_json::Value> {
        if matches!(self, Target::DuckDb) && !h.warehouse_path().exists() {
            return None;
        }
        let exists = "SELECT count(*) FROM information_schema.tables \
                      WHERE table_schema = '_weft' AND table_name = '_weft_state'";
        if self.i64(h, exists) == 0 {
            return None;
        }
        let sql = "SELECT state FROM _weft._weft_state WHERE stream='customers'";
        let mut texts = match self {
            Target::DuckDb => query_strings(&h.warehouse_path(), sql),
            Target::Postgres(stack) => stack.strings(sql),
        };
        texts.pop().map(|t| serde_json::from_str(&t).unwrap())
    }

    /// How many recorded runs have `status` (0 before the history exists).
    fn runs_with_status(&self, h: &Harness, status: &str) -> i64 {
        if matches!(self, Target::DuckDb) && !h.warehouse_path().exists() {
            return 0;
        }
        let exists = "SELECT count(*) FROM information_schema.tables \
                      WHERE table_schema = '_weft' AND table_name = '_weft_runs'";
        if self.i64(h, exists) == 0 {
            return 0;
        }
        self.i64(
            h,
            &format!("SELECT count(*) FROM _weft._weft_runs WHERE status = '{status}'"),
        )
    }

    fn max_created(&self, h: &Harness) -> i64 {
        match self {
            Target::DuckDb => max_unix_seconds(&h.warehouse_path(), "stripe.customers", "created"),
            Target::Postgres(stack) => {
                stack.i64("SELECT extract(epoch FROM max(created))::bigint FROM stripe.customers")
            }
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kills `weft run` at seeded random moments and re-runs: no row lost, none duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_then_rerun_loses_and_duplicates_nothing() {
    trials(Target::DuckDb).await;
}

/// The same trials into PostgreSQL through an S3 stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_into_postgres_via_s3_loses_and_duplicates_nothing() {
    let mut stack = PgStack::start("crash_setup");
    trials(Target::Postgres(&mut stack)).await;
}

/// The crash trials' sandbox: four streams (lists, the events feed), 40 ms
/// per request under a live key's 100 requests/s, so the lists are read in
/// concurrent slices (~4 in flight) over a second or more.
fn crash_sandbox() -> SandboxConfig {
    SandboxConfig {
        size: 1_000,
        api_key: "sk_live_weft_crash".into(),
        faults: Faults {
            latency_ms: 40,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A commit every 200 rows: many kill points between commits.
const CRASH_EXTRA: &str =
    "checkpoint_rows = 200\nstreams = [\"customers\", \"charges\", \"invoices\", \"events\"]";

fn weft_run(h: &Harness) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["run", "--config"])
        .arg(&h.config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

async fn trials(mut target: Target<'_>) {
    let trials = env_u64("WEFT_CRASH_TRIALS", 20);
    let seed = env_u64("WEFT_CRASH_SEED", 7);
    eprintln!("crash trials: {trials}, seed {seed}");
    // How long a whole run takes on this machine now: kill points are drawn
    // inside it, so every kill lands while the run is working.
    let calibration = target.harness(trials, crash_sandbox(), CRASH_EXTRA).await;
    let started = std::time::Instant::now();
    let status = weft_run(&calibration).wait().await.unwrap();
    let mut whole_run = started.elapsed();
    assert!(status.success(), "the uninterrupted run failed: {status}");
    assert_eq!(target.runs_with_status(&calibration, "succeeded"), 1);
    eprintln!("an uninterrupted run takes {whole_run:?}");
    drop(calibration);
    let mut killed_mid_slices = 0;
    // Harness ids after the trials' and the calibration's, for re-drawn trials.
    let mut spare_id = trials + 1;
    for trial in 0..trials {
        // A seeded pseudo-random kill point between 5% and 60% of a whole run.
        let x =
            (seed ^ trial.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x2545_f491_4f6c_dd1d);
        let fraction = 0.05 + 0.55 * ((x >> 33) % 1000) as f64 / 1000.0;
        let mut attempt = 0;
        let h = loop {
            let id = if attempt == 0 { trial } else { spare_id };
            if attempt > 0 {
                spare_id += 1;
            }
            let h = target.harness(id, crash_sandbox(), CRASH_EXTRA).await;
            let kill_after = whole_run.mul_f64(fraction);
            eprintln!("trial {trial}: kill after {kill_after:?}");
            let mut child = weft_run(&h);
            tokio::time::sleep(kill_after).await;
            let exited = child.try_wait().unwrap().is_some();
            let _ = child.start_kill();
            let _ = child.wait().await;
            let ended: i64 = ["succeeded", "failed", "cancelled"]
                .iter()
                .map(|s| target.runs_with_status(&h, s))
                .sum();
            // The kill must land while the run is working: the child alive
            // and no run it recorded ended. A calibration taken on a busier
            // machine can place it after the end; then the whole run is
            // shorter than measured, and the trial is drawn again inside it.
            if !exited && ended == 0 {
                break h;
            }
            attempt += 1;
            assert!(
                attempt < 5,
                "trial {trial}: the run ended before its kill point {attempt} times"
            );
            whole_run = kill_after.mul_f64(0.8);
            eprintln!("trial {trial}: the run ended before the kill; whole run now {whole_run:?}");
        };
        let interrupted = target.runs_with_status(&h, "running");
        assert!(interrupted <= 1, "trial {trial}");
        if target.committed_customers_state(&h).is_some_and(|s| {
            s["slices"]["windows"]
                .as_array()
                .is_some_and(|w| !w.is_empty())
        }) {
            killed_mid_slices += 1;
        }

        let report = h.run_one().await;
        assert!(report.succeeded(), "trial {trial}: {}", report.to_table());
        // The killed run shows as abandoned once the re-run took its lock.
        assert_eq!(target.runs_with_status(&h, "abandoned"), interrupted);
        assert_eq!(target.runs_with_status(&h, "running"), 0);
        assert_eq!(target.runs_with_status(&h, "succeeded"), 1);
        let expected = h.sandbox.control().stripe_customer_ids().len() as i64;
        for s in CRASH_STREAMS {
            let n = target.i64(&h, &format!("SELECT count(*) FROM stripe.{s}"));
            let d = target.i64(&h, &format!("SELECT count(DISTINCT id) FROM stripe.{s}"));
            assert_eq!(n, d, "trial {trial}: {s} has duplicates");
        }
        assert_eq!(
            target.i64(&h, "SELECT count(*) FROM stripe.customers"),
            expected,
            "trial {trial}"
        );
        // Each committed load is recorded once, and no row belongs to a load
        // that was not recorded (no orphaned half-load is visible).
        assert_eq!(
            target.i64(
                &h,
                "SELECT count(*) - count(DISTINCT load_id) FROM _weft._weft_loads"
            ),
            0
        );
        for s in CRASH_STREAMS {
            let orphans = target.i64(
                &h,
                &format!(
                    "SELECT count(*) FROM stripe.{s} WHERE _weft_load_id NOT IN \
                     (SELECT load_id FROM _weft._weft_loads)"
                ),
            );
            assert_eq!(
                orphans, 0,
                "trial {trial}: {s} has rows of unrecorded loads"
            );
        }
        if let Target::Postgres(stack) = &target {
            // No staging table outlives its commit (temporary tables die with
            // the killed session; none may be a permanent one).
            assert_eq!(
                stack.i64(
                    "SELECT count(*) FROM pg_class WHERE relname LIKE '%staging%' \
                     AND relpersistence <> 't'"
                ),
                0,
                "trial {trial}: orphaned staging tables"
            );
        }
        assert_eq!(
            target.customers_state(&h)["created"].as_i64().unwrap(),
            target.max_created(&h),
            "trial {trial}: cursor"
        );
    }
    // The kills land inside sliced backfills, not only before or after them.
    eprintln!("{killed_mid_slices} of {trials} kills left slices to resume");
    if trials >= 10 {
        assert!(killed_mid_slices > 0, "no kill landed inside a sliced read");
    }
}

/// The demo's story in a sandbox of `size` people, loaded and modelled
/// in-process without its syncs (4 records per sync batch).
async fn loaded_story(size: usize) -> Harness {
    let h = Harness::story_with(
        SandboxConfig {
            size,
            ..SandboxConfig::default()
        },
        "upsert",
        Some(4),
    )
    .await;
    let mut config = h.config();
    config.syncs.clear();
    let loaded = weft_runner::run(
        &config,
        &weft_runner::RunOptions::default(),
        weft_core::CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert!(loaded.succeeded(), "{}", loaded.render());
    h
}

/// A seeded moment `from_ms` to `from_ms + span_ms` into a trial.
fn kill_point(seed: u64, trial: u64, from_ms: u64, span_ms: u64) -> std::time::Duration {
    let x = (seed ^ trial.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x2545_f491_4f6c_dd1d);
    std::time::Duration::from_millis(from_ms + (x >> 33) % span_ms)
}

/// Starts `weft sync --config config`, SIGKILLs it after `kill_after`, then
/// runs it again to the end (which must succeed). True when the kill landed
/// while the first one still ran.
async fn kill_then_rerun(
    config: &std::path::Path,
    kill_after: std::time::Duration,
    trial: u64,
) -> bool {
    let mut child = weft_sync_with(config);
    tokio::time::sleep(kill_after).await;
    let running = child.try_wait().unwrap().is_none();
    let _ = child.start_kill();
    let _ = child.wait().await;
    let status = weft_sync_with(config).wait().await.unwrap();
    assert!(
        status.success(),
        "trial {trial}: the re-run failed: {status}"
    );
    running
}

fn weft_sync_with(config: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["sync", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `weft sync` (the demo's Mailchimp, Zendesk and Salesforce syncs, 4
/// records per call, 25 ms per request) at seeded moments, then re-runs it:
/// every person of the model is a Mailchimp member once and a Zendesk user
/// with their name, every person only Zoom knew is one Salesforce Contact
/// (none created twice), each sync's snapshot holds exactly its model's
/// keys, and nothing is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_sync_then_rerun_sends_every_person_and_loses_nothing() {
    let trials = env_u64("WEFT_SYNC_CRASH_TRIALS", 6);
    let seed = env_u64("WEFT_CRASH_SEED", 7);
    let mut killed = 0;
    for trial in 0..trials {
        let h = loaded_story(120).await;
        let db = h.warehouse_path();
        let people: std::collections::BTreeMap<String, String> = weft_e2e::query_rows(
            &db,
            "SELECT email, full_name FROM models.people ORDER BY email",
        )
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
        assert!(people.len() > 50, "{}", people.len());
        let crm =
            weft_e2e::query_strings(&db, "SELECT email FROM models.crm_contacts ORDER BY email");
        assert!(!crm.is_empty(), "people only Zoom knew");
        let control = h.sandbox.control();
        for api in [
            weft_sandbox::Api::Mailchimp,
            weft_sandbox::Api::Zendesk,
            weft_sandbox::Api::Salesforce,
        ] {
            control.set_faults(
                api,
                Faults {
                    latency_ms: 25,
                    ..Faults::default()
                },
            );
        }
        // A seeded kill point between 0.2 s and 2 s into the sync.
        let kill_after = kill_point(seed, trial, 200, 1800);
        killed += u64::from(kill_then_rerun(&h.config_path, kill_after, trial).await);

        let members: Vec<String> = h
            .mailchimp_members()
            .iter()
            .map(|m| m["email_address"].as_str().unwrap().to_lowercase())
            .collect();
        let unique: std::collections::BTreeSet<&String> = members.iter().collect();
        assert_eq!(members.len(), unique.len(), "trial {trial}: a member twice");
        assert_eq!(
            unique.into_iter().cloned().collect::<Vec<_>>(),
            people.keys().cloned().collect::<Vec<_>>(),
            "trial {trial}: Mailchimp members"
        );
        for (email, name) in &people {
            let user = control
                .zendesk_user_by_email(email)
                .unwrap_or_else(|| panic!("trial {trial}: {email} is not a Zendesk user"));
            assert_eq!(user["name"].as_str(), Some(name.as_str()), "trial {trial}");
        }
        // Salesforce: one Contact per CRM model row, none created twice.
        let mut contacts: Vec<String> = control
            .salesforce_upserted("Contact")
            .unwrap()
            .iter()
            .map(|c| c["External_Id__c"].as_str().unwrap().to_lowercase())
            .collect();
        contacts.sort();
        assert_eq!(contacts, crm, "trial {trial}: Salesforce Contacts");
        let everyone: Vec<String> = people.keys().cloned().collect();
        for (sync, expected) in [
            ("mailchimp_people", &everyone),
            ("zendesk_people", &everyone),
            ("salesforce_contacts", &crm),
        ] {
            let keys = weft_e2e::query_strings(
                &db,
                &format!("SELECT \"key\" FROM _weft._weft_sync_snapshot_{sync} ORDER BY 1"),
            );
            assert_eq!(&keys, expected, "trial {trial}: {sync} snapshot");
        }
        assert_eq!(
            query_i64(&db, "SELECT count(*) FROM _weft._weft_sync_rejects"),
            0,
            "trial {trial}"
        );
        eprintln!(
            "sync trial {trial}: kill after {kill_after:?}, {} people",
            people.len()
        );
    }
    assert!(
        killed * 2 >= trials,
        "only {killed} of {trials} kills landed while the sync ran"
    );
}

/// The demo's config in `h` with its syncs replaced by the people synced to
/// Stripe customers, Intercom contacts and Zoom registrants of `webinar`
/// (4 records per batch), written beside it; returns its path.
fn record_by_record_config(h: &Harness, webinar: i64) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    let head = &text[..text.find("[[syncs]]").unwrap()];
    let zoom = {
        let start = text.find("[pipelines.config]\nbase_url = ").unwrap();
        let block = &text[start + "[pipelines.config]\n".len()..];
        block[..block.find("\n\n").unwrap()].to_string()
    };
    let secrets = h.dir.path().join("sandbox-secrets");
    let intercom = secrets.join("intercom.token");
    std::fs::write(&intercom, weft_sandbox::DEFAULT_INTERCOM_TOKEN).unwrap();
    let stripe_key = secrets.join("stripe.key");
    let sandbox = &h.sandbox;
    let stripe = sandbox.base_url(weft_sandbox::Api::Stripe);
    let intercom_url = sandbox.base_url(weft_sandbox::Api::Intercom);
    let text = format!(
        r#"{head}[[syncs]]
name = "stripe_people"
connector = "stripe"
model = "models.people"
primary_key = "email"
batch_size = 4

[syncs.mapping]
email = "email"
name = "full_name"

[syncs.config]
base_url = "{stripe}"
api_key = {{ file = {stripe_key:?} }}

[[syncs]]
name = "intercom_people"
connector = "intercom"
model = "models.people"
primary_key = "email"
batch_size = 4

[syncs.mapping]
email = "email"
name = "full_name"

[syncs.config]
base_url = "{intercom_url}"
access_token = {{ file = {intercom:?} }}

[[syncs]]
name = "zoom_people"
connector = "zoom"
model = "models.crm_contacts"
primary_key = "email"
mode = "mirror"
batch_size = 4

[syncs.mapping]
email = "email"
first_name = "first_name"
last_name = "last_name"

[syncs.config]
{zoom}
webinar_id = {webinar}
"#
    );
    let path = h.dir.path().join("weft-record-by-record.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Kills `weft sync` into the destinations written record by record (Stripe
/// customers, Intercom contacts, Zoom registrants; 4 records per batch, 25 ms
/// per request) at seeded moments, then re-runs it: every person is created
/// exactly once in each (Stripe's creates per email, Intercom's contacts per
/// email, Zoom's registrations per email), and each snapshot holds exactly
/// its model's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_record_by_record_syncs_create_nobody_twice() {
    use weft_sandbox::Api;
    let trials = env_u64("WEFT_SYNC_CRASH_TRIALS", 4);
    let seed = env_u64("WEFT_CRASH_SEED", 7) ^ 0x51;
    let mut killed = 0;
    for trial in 0..trials {
        let h = loaded_story(80).await;
        let db = h.warehouse_path();
        let people = query_strings(&db, "SELECT email FROM models.people ORDER BY email");
        let crm = query_strings(&db, "SELECT email FROM models.crm_contacts ORDER BY email");
        assert!(
            people.len() > 30 && !crm.is_empty(),
            "{} / {}",
            people.len(),
            crm.len()
        );
        let control = h.sandbox.control();
        let webinar = control.zoom_webinar_ids()[2];
        // What each destination held for these people before (the sandbox's
        // tools share people): they are updated, not created.
        let stripe_before: std::collections::BTreeSet<&String> = people
            .iter()
            .filter(|e| control.stripe_customer_by_email(e).is_some())
            .collect();
        let intercom_count = |people: &[String]| -> std::collections::BTreeMap<String, usize> {
            let mut n = std::collections::BTreeMap::new();
            for c in control
                .intercom_contact_ids()
                .iter()
                .filter_map(|id| control.intercom_contact(id))
            {
                if let Some(e) = c["email"].as_str().map(|e| e.trim().to_lowercase())
                    && people.binary_search(&e).is_ok()
                {
                    *n.entry(e).or_insert(0) += 1;
                }
            }
            n
        };
        let intercom_before = intercom_count(&people);
        let zoom_before: std::collections::BTreeSet<&String> = crm
            .iter()
            .filter(|e| {
                control
                    .zoom_registrant_by_email(webinar, e)
                    .unwrap()
                    .is_some()
            })
            .collect();
        let registrants_before = control.zoom_registrant_count(webinar).unwrap() as usize;
        let path = record_by_record_config(&h, webinar);
        for api in [Api::Stripe, Api::Intercom, Api::Zoom] {
            control.set_rate_limits(api, false);
            control.set_faults(
                api,
                Faults {
                    latency_ms: 25,
                    ..Faults::default()
                },
            );
        }
        let kill_after = kill_point(seed, trial, 300, 2500);
        killed += u64::from(kill_then_rerun(&path, kill_after, trial).await);

        for email in &people {
            let created = usize::from(!stripe_before.contains(email));
            assert_eq!(
                control.stripe_customer_creates(email),
                created,
                "trial {trial}: Stripe customers created for {email}"
            );
            assert!(control.stripe_customer_by_email(email).is_some());
        }
        let intercom_after = intercom_count(&people);
        for email in &people {
            let before = intercom_before.get(email).copied().unwrap_or(0);
            assert_eq!(
                intercom_after.get(email).copied().unwrap_or(0),
                before.max(1),
                "trial {trial}: Intercom contacts with {email}"
            );
        }
        for email in &crm {
            let r = control
                .zoom_registrant_by_email(webinar, email)
                .unwrap()
                .unwrap_or_else(|| panic!("trial {trial}: {email} is not registered"));
            assert_eq!(r["status"], "approved", "trial {trial}: {email}");
        }
        assert_eq!(
            control.zoom_registrant_count(webinar).unwrap() as usize,
            registrants_before + crm.len() - zoom_before.len(),
            "trial {trial}: Zoom registrations added"
        );
        for (sync, expected) in [
            ("stripe_people", &people),
            ("intercom_people", &people),
            ("zoom_people", &crm),
        ] {
            let keys = query_strings(
                &db,
                &format!("SELECT \"key\" FROM _weft._weft_sync_snapshot_{sync} ORDER BY 1"),
            );
            let rejects = query_rows(
                &db,
                &format!(
                    "SELECT \"key\", reason FROM _weft._weft_sync_rejects WHERE sync = '{sync}'"
                ),
            );
            assert_eq!(
                &keys, expected,
                "trial {trial}: {sync} snapshot; rejects {rejects:?}"
            );
        }
        eprintln!(
            "record-by-record trial {trial}: kill after {kill_after:?}, {} people, {} registrants",
            people.len(),
            crm.len()
        );
    }
    assert!(
        killed * 2 >= trials,
        "only {killed} of {trials} kills landed while the syncs ran"
    );
}
