//! Large reverse-sync batches through Bulk API 2.0 ingest jobs, against the
//! sandbox: one job per batch, results mapped back by external id, rejects
//! with `sf__Error`, and a run cut off while its job runs resumed by the
//! next run without sending the batch again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use weft_conformance::MemorySyncStore;
use weft_conformance::sync_target::person_row;
use weft_core::{SecretRef, SyncOptions, SyncSpec, SyncStore, SyncWriteMode, run_sync};
use weft_http::BudgetRegistry;
use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceTarget};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

/// Batches with more writes than this use an ingest job.
const THRESHOLD: usize = 10;
const PEOPLE: usize = 25;

fn secret_file(value: &str) -> SecretRef {
    weft_conformance::secret_file(value).unwrap()
}

async fn start() -> (Sandbox, SalesforceTarget) {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let mut c = SalesforceConfig::new(
        sandbox.base_url(Api::Salesforce),
        SalesforceAuth::RefreshToken {
            client_id: weft_sandbox::DEFAULT_SALESFORCE_CLIENT_ID.into(),
            client_secret: secret_file(weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET),
            refresh_token: secret_file(weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN),
        },
    );
    c.object = Some("Contact".into());
    c.external_id_field = Some("External_Id__c".into());
    c.sync_bulk_threshold = THRESHOLD;
    c.bulk_poll_ms = 20;
    let target = SalesforceTarget::connect(&c, &BudgetRegistry::new())
        .await
        .unwrap();
    (sandbox, target)
}

fn spec() -> SyncSpec {
    SyncSpec {
        name: "sf_contacts".into(),
        model: "models.people".into(),
        primary_key: "key".into(),
        mode: SyncWriteMode::Upsert,
        mapping: [
            ("External_Id__c", "key"),
            ("Email", "email"),
            ("LastName", "name"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

fn email(i: usize) -> String {
    format!("bulk.person{i:03}@example.com")
}

/// (method, path suffix) of the sandbox's recorded writes, token calls left out.
fn writes(sandbox: &Sandbox) -> Vec<(String, String)> {
    sandbox
        .control()
        .writes(Api::Salesforce)
        .into_iter()
        .filter(|w| !w.path.contains("oauth2"))
        .map(|w| {
            let tail = w
                .path
                .split("/services/data/v59.0/")
                .nth(1)
                .unwrap_or(&w.path)
                .to_string();
            let tail = match tail.split('/').collect::<Vec<_>>().as_slice() {
                ["jobs", "ingest", _, rest @ ..] => format!("jobs/ingest/ID/{}", rest.join("/")),
                _ => tail,
            };
            (w.method, tail.trim_end_matches('/').to_string())
        })
        .collect()
}

/// LastName by lower-case external id, live records only.
fn held(sandbox: &Sandbox) -> BTreeMap<String, String> {
    sandbox
        .control()
        .salesforce_upserted("Contact")
        .unwrap()
        .into_iter()
        .filter(|c| c["IsDeleted"] == json!(false))
        .map(|c| {
            (
                c["External_Id__c"].as_str().unwrap().to_lowercase(),
                c["LastName"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const ONE_JOB: [(&str, &str); 3] = [
    ("POST", "jobs/ingest"),
    ("PUT", "jobs/ingest/ID/batches"),
    ("PATCH", "jobs/ingest/ID"),
];

fn one_job() -> Vec<(String, String)> {
    ONE_JOB
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

#[tokio::test]
async fn a_batch_above_the_threshold_is_one_ingest_job_mapped_back_by_external_id() {
    let (sandbox, target) = start().await;
    let store = MemorySyncStore::new();
    let mut expected = BTreeMap::new();
    for i in 0..PEOPLE {
        // A quote and a comma survive the CSV.
        let name = format!("O\"Person, {i}");
        store.put(&email(i), person_row(&email(i), &name));
        expected.insert(email(i), name);
    }
    store.put("bad-one", person_row("not-an-email", "Bad"));
    let r = run_sync(&store, &target, &spec(), SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((r.created, r.rejected, r.batches), (PEOPLE as u64, 1, 1));
    assert_eq!(writes(&sandbox), one_job(), "one job, no composite calls");
    let reason = store.rejects()["bad-one"].clone();
    assert!(reason.starts_with("INVALID_EMAIL_ADDRESS: "), "{reason}");
    assert_eq!(held(&sandbox), expected);
    assert!(store.jobs().is_empty(), "the finished job left the journal");

    // 12 renames (above the threshold): a second job, only updates in it.
    for i in 0..12 {
        let name = format!("Renamed {i}");
        store.put(&email(i), person_row(&email(i), &name));
        expected.insert(email(i), name);
    }
    let r = run_sync(&store, &target, &spec(), SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((r.created, r.updated, r.rejected), (0, 12, 1));
    // The reject is sent again first (1 create: a composite call), then the
    // 12 updates as one job.
    let composite = (
        "PATCH".to_string(),
        "composite/sobjects/Contact/External_Id__c".to_string(),
    );
    assert_eq!(
        writes(&sandbox),
        [one_job(), vec![composite.clone()], one_job()].concat()
    );
    assert_eq!(held(&sandbox), expected);

    // At or below the threshold: composite calls only (the reject's create,
    // then 3 updates), no job.
    for i in 0..3 {
        store.put(&email(i), person_row(&email(i), "Small"));
        expected.insert(email(i), "Small".into());
    }
    let r = run_sync(&store, &target, &spec(), SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((r.updated, r.rejected), (3, 1));
    assert_eq!(
        writes(&sandbox),
        [
            one_job(),
            vec![composite.clone()],
            one_job(),
            vec![composite.clone(), composite]
        ]
        .concat()
    );
    assert_eq!(held(&sandbox), expected);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_run_cut_off_while_its_ingest_job_runs_is_resumed_without_sending_again() {
    let (sandbox, target) = start().await;
    let control = sandbox.control();
    let store = MemorySyncStore::new();
    for i in 0..PEOPLE {
        store.put(&email(i), person_row(&email(i), &format!("Person {i}")));
    }
    control.salesforce_hold_ingest(true);
    let cut = tokio::time::timeout(
        Duration::from_millis(700),
        run_sync(&store, &target, &spec(), SyncOptions::default()),
    )
    .await;
    assert!(cut.is_err(), "the first run was cut off while polling");
    assert_eq!(writes(&sandbox), one_job());
    assert!(store.snapshot_keys().is_empty());
    let jobs = store.pending_jobs("sf_contacts").await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].target, "salesforce");
    assert_eq!(jobs[0].records.len(), PEOPLE);
    assert!(jobs[0].job.starts_with("750"), "{}", jobs[0].job);

    control.salesforce_hold_ingest(false);
    let r = run_sync(&store, &target, &spec(), SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (r.resumed, r.created, r.rejected, r.batches, r.plan.creates),
        (PEOPLE as u64, 0, 0, 0, 0)
    );
    assert_eq!(writes(&sandbox), one_job(), "nothing was sent again");
    assert_eq!(store.snapshot_keys().len(), PEOPLE);
    assert!(store.jobs().is_empty());
    let expected: BTreeMap<String, String> = (0..PEOPLE)
        .map(|i| (email(i), format!("Person {i}")))
        .collect();
    assert_eq!(held(&sandbox), expected);

    let again = run_sync(&store, &target, &spec(), SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((again.resumed, again.batches), (0, 0));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_job_cut_off_before_it_was_closed_is_aborted_and_sent_again() {
    let (sandbox, target) = start().await;
    let store = MemorySyncStore::new();
    for i in 0..PEOPLE {
        store.put(&email(i), person_row(&email(i), &format!("Person {i}")));
    }
    // Journal a job that exists at Salesforce but was never uploaded or
    // closed, as a run killed right after creating it leaves.
    let token = sandbox_token(&sandbox).await;
    let created: Value = reqwest::Client::new()
        .post(format!(
            "{}/services/data/v59.0/jobs/ingest",
            sandbox.base_url(Api::Salesforce)
        ))
        .bearer_auth(&token)
        .json(&json!({"object": "Contact", "operation": "upsert",
                      "externalIdFieldName": "External_Id__c", "contentType": "CSV"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let open = created["id"].as_str().unwrap().to_string();
    store
        .save_job(&weft_core::PendingJob {
            sync: "sf_contacts".into(),
            run_id: "earlier".into(),
            target: "salesforce".into(),
            job: open.clone(),
            records: Vec::new(),
            submitted_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let r = run_sync(&store, &target, &spec(), SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((r.resumed, r.created), (0, PEOPLE as u64));
    let w = writes(&sandbox);
    assert_eq!(
        w[..2],
        [
            ("POST".to_string(), "jobs/ingest".to_string()),
            ("PATCH".to_string(), "jobs/ingest/ID".to_string())
        ],
        "{w:?}"
    );
    let aborted: Value = reqwest::Client::new()
        .get(format!(
            "{}/services/data/v59.0/jobs/ingest/{open}",
            sandbox.base_url(Api::Salesforce)
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(aborted["state"], "Aborted");
    assert_eq!(held(&sandbox).len(), PEOPLE);
    assert!(store.jobs().is_empty());
    sandbox.shutdown().await;
}

/// An access token from the sandbox's refresh-token grant.
async fn sandbox_token(sandbox: &Sandbox) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!(
            "{}/services/oauth2/token",
            sandbox.base_url(Api::Salesforce)
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", weft_sandbox::DEFAULT_SALESFORCE_CLIENT_ID),
            (
                "client_secret",
                weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET,
            ),
            (
                "refresh_token",
                weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN,
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}
