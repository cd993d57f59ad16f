//! Resumable jobs against the sandbox's Zendesk simulator: a run cut off
//! while its `create_or_update_many` job runs is resumed by the next run
//! from the job's results, without sending the users again; a job Zendesk
//! no longer knows is sent again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_conformance::MemorySyncStore;
use weft_core::{PendingJob, SyncOptions, SyncSpec, SyncStore, SyncWriteMode, run_sync};
use weft_http::{BudgetRegistry, HttpSettings, PollPolicy};
use weft_sandbox::{Api, DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_TOKEN, Sandbox, SandboxConfig};
use weft_zendesk::{ZendeskConfig, ZendeskTarget};

const USERS: usize = 60;

fn email(i: usize) -> String {
    format!("resume.person{i:03}@example.com")
}

async fn setup() -> (Sandbox, ZendeskTarget, MemorySyncStore, SyncSpec) {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 20,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let mut config = ZendeskConfig::new(
        "unused",
        DEFAULT_ZENDESK_EMAIL,
        weft_conformance::secret_file(DEFAULT_ZENDESK_TOKEN).unwrap(),
    );
    config.base_url = Some(sandbox.base_url(Api::Zendesk));
    config.requests_per_minute = 600_000;
    config.http = Some(HttpSettings {
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        min_retry_after_ms: 1,
        ..HttpSettings::default()
    });
    let target = ZendeskTarget::new(&config, &BudgetRegistry::new())
        .unwrap()
        .with_poll_policy(PollPolicy {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
            limit: Duration::from_secs(30),
        });
    let store = MemorySyncStore::new();
    for i in 0..USERS {
        let row = BTreeMap::from([
            ("key".to_string(), json!(email(i))),
            ("name".to_string(), json!(format!("Person {i}"))),
        ]);
        store.put(&email(i), row);
    }
    let spec = SyncSpec {
        name: "zendesk_people".to_string(),
        model: "models.people".to_string(),
        primary_key: "key".to_string(),
        mode: SyncWriteMode::Upsert,
        mapping: BTreeMap::from([
            ("email".to_string(), "key".to_string()),
            ("name".to_string(), "name".to_string()),
        ]),
    };
    (sandbox, target, store, spec)
}

/// The `create_or_update_many` calls the sandbox received, with their sizes.
fn bulk_calls(sandbox: &Sandbox) -> Vec<usize> {
    sandbox
        .control()
        .writes(Api::Zendesk)
        .iter()
        .filter(|w| w.path.starts_with("/api/v2/users/create_or_update_many"))
        .map(|w| {
            let body: Value = serde_json::from_str(&w.body).unwrap();
            body["users"].as_array().unwrap().len()
        })
        .collect()
}

#[tokio::test]
async fn a_run_cut_off_while_its_job_runs_is_resumed_without_sending_again() {
    let (sandbox, target, store, spec) = setup().await;
    let control = sandbox.control();
    let run = SyncOptions::default();

    // The job stays `working`: the first run polls until it is cut off.
    control.zendesk_hold_jobs(true);
    let cut = tokio::time::timeout(
        Duration::from_millis(500),
        run_sync(&store, &target, &spec, run),
    )
    .await;
    assert!(cut.is_err(), "the first run was cut off while polling");
    assert_eq!(bulk_calls(&sandbox), [USERS]);
    assert!(store.snapshot_keys().is_empty());
    let jobs = store.pending_jobs(&spec.name).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].target, "zendesk");
    assert_eq!(jobs[0].records.len(), USERS);
    assert_eq!(jobs[0].records[0].key, email(0));
    let job_id = jobs[0].job.clone();
    let polls_before = control.request_count(Api::Zendesk);

    // The job completes; the next run reads its results.
    control.zendesk_hold_jobs(false);
    let started = Instant::now();
    let report = run_sync(&store, &target, &spec, run).await.unwrap();
    let took = started.elapsed();
    println!(
        "resumed {} users from job {job_id} in {took:?} ({} request(s))",
        report.resumed,
        control.request_count(Api::Zendesk) - polls_before
    );
    assert_eq!(
        (
            report.resumed,
            report.created,
            report.rejected,
            report.batches,
            report.plan.creates
        ),
        (USERS as u64, 0, 0, 0, 0)
    );
    // One job status read, nothing sent: exactly one bulk call in all.
    assert_eq!(control.request_count(Api::Zendesk) - polls_before, 1);
    assert_eq!(bulk_calls(&sandbox), [USERS]);
    let expected: Vec<String> = {
        let mut keys: Vec<String> = (0..USERS).map(email).collect();
        keys.sort();
        keys
    };
    assert_eq!(store.snapshot_keys(), expected);
    assert!(store.pending_jobs(&spec.name).await.unwrap().is_empty());
    assert!(store.rejects().is_empty());
    for i in 0..USERS {
        let user = control.zendesk_user_by_email(&email(i)).unwrap();
        assert_eq!(user["name"], json!(format!("Person {i}")), "{}", email(i));
    }
    let log = store.log();
    assert_eq!(log.len(), USERS);
    assert!(
        log.iter()
            .all(|e| e.run_id == report.run_id && e.rejected.is_none())
    );

    // Nothing left to send or resume.
    let again = run_sync(&store, &target, &spec, run).await.unwrap();
    assert_eq!((again.resumed, again.batches, again.created), (0, 0, 0));
    assert_eq!(bulk_calls(&sandbox), [USERS]);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_job_zendesk_does_not_know_is_sent_again() {
    let (sandbox, target, store, spec) = setup().await;
    let planned = store
        .planned(&spec, weft_core::SyncAction::Create, None, 10)
        .await
        .unwrap();
    store
        .save_job(&PendingJob {
            sync: spec.name.clone(),
            run_id: "crashed".to_string(),
            target: "zendesk".to_string(),
            job: "0123456789abcdef0123456789abcdef".to_string(),
            records: planned,
            submitted_at: chrono::Utc::now(),
        })
        .await
        .unwrap();

    let report = run_sync(&store, &target, &spec, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (
            report.resumed,
            report.created,
            report.batches,
            report.plan.creates
        ),
        (0, USERS as u64, 1, USERS as u64)
    );
    assert_eq!(bulk_calls(&sandbox), [USERS]);
    assert_eq!(store.snapshot_keys().len(), USERS);
    assert!(store.pending_jobs(&spec.name).await.unwrap().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_resumed_jobs_rejects_map_to_their_records_by_index() {
    let (sandbox, target, store, spec) = setup().await;
    let control = sandbox.control();
    // Zendesk refuses to create a user without a name: person 7 (index 7).
    store.put(
        &email(7),
        BTreeMap::from([
            ("key".to_string(), json!(email(7))),
            ("name".to_string(), json!(" ")),
        ]),
    );
    control.zendesk_hold_jobs(true);
    let cut = tokio::time::timeout(
        Duration::from_millis(300),
        run_sync(&store, &target, &spec, SyncOptions::default()),
    )
    .await;
    assert!(cut.is_err());
    control.zendesk_hold_jobs(false);

    let report = run_sync(&store, &target, &spec, SyncOptions::default())
        .await
        .unwrap();
    // 59 acknowledged from the job; person 7 rejected there, then sent
    // again by this run's plan (one user) and rejected again.
    assert_eq!(
        (
            report.resumed,
            report.rejected,
            report.created,
            report.batches
        ),
        (USERS as u64 - 1, 2, 0, 1)
    );
    assert_eq!(bulk_calls(&sandbox), [USERS, 1]);
    let rejects = store.rejects();
    assert_eq!(rejects.keys().collect::<Vec<_>>(), [&email(7)]);
    assert_eq!(
        rejects[&email(7)],
        "InvalidValue: Name: is too short (minimum one character)"
    );
    assert_eq!(store.snapshot_keys().len(), USERS - 1);
    assert!(control.zendesk_user_by_email(&email(7)).is_none());
    assert_eq!(
        control.zendesk_user_by_email(&email(8)).unwrap()["name"],
        json!("Person 8")
    );
    sandbox.shutdown().await;
}

/// Organizations: a run cut off while its `update_many` job runs is resumed
/// from the job's results, matched by the ids journaled with the job.
#[tokio::test]
async fn an_organization_update_job_cut_off_is_resumed_by_the_journaled_ids() {
    let (sandbox, _users, store, mut spec) = setup().await;
    let control = sandbox.control();
    let mut config = ZendeskConfig::new(
        "unused",
        DEFAULT_ZENDESK_EMAIL,
        weft_conformance::secret_file(DEFAULT_ZENDESK_TOKEN).unwrap(),
    );
    config.base_url = Some(sandbox.base_url(Api::Zendesk));
    config.requests_per_minute = 600_000;
    config.sync_object = weft_zendesk::ZendeskObject::Organizations;
    let target = ZendeskTarget::new(&config, &BudgetRegistry::new())
        .unwrap()
        .with_poll_policy(PollPolicy {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
            limit: Duration::from_secs(30),
        });
    spec.mapping = BTreeMap::from([
        ("external_id".to_string(), "key".to_string()),
        ("name".to_string(), "name".to_string()),
    ]);
    let first = run_sync(&store, &target, &spec, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(first.created, USERS as u64);
    for i in 0..USERS {
        let row = BTreeMap::from([
            ("key".to_string(), json!(email(i))),
            ("name".to_string(), json!(format!("Renamed Org {i}"))),
        ]);
        store.put(&email(i), row);
    }
    control.zendesk_hold_jobs(true);
    let cut = tokio::time::timeout(
        Duration::from_millis(500),
        run_sync(&store, &target, &spec, SyncOptions::default()),
    )
    .await;
    assert!(cut.is_err(), "cut off while polling");
    let jobs = store.pending_jobs(&spec.name).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].job.contains("#ids="), "{}", jobs[0].job);
    control.zendesk_hold_jobs(false);
    let updates = |sb: &Sandbox| {
        sb.control()
            .writes(Api::Zendesk)
            .iter()
            .filter(|w| w.path.starts_with("/api/v2/organizations/update_many"))
            .count()
    };
    assert_eq!(updates(&sandbox), 1);
    let report = run_sync(&store, &target, &spec, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (
            report.resumed,
            report.updated,
            report.rejected,
            report.batches
        ),
        (USERS as u64, 0, 0, 0)
    );
    assert_eq!(updates(&sandbox), 1, "not sent again");
    assert!(store.pending_jobs(&spec.name).await.unwrap().is_empty());
    let org = control
        .zendesk_organization_by_external_id(&email(3))
        .unwrap();
    assert_eq!(org["name"], json!("Renamed Org 3"));
    sandbox.shutdown().await;
}
