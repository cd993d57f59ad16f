//! The headline story (issue 5) against the sandbox: Zoom registrants +
//! Salesforce contacts -> DuckDB -> the dedupe model `models.people` -> a
//! Mailchimp audience, with the sandbox kept running across runs so the
//! vendors' state and the warehouse's snapshot persist between them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use weft_core::{
    BoxError, CancellationToken, CoreError, RecordOutcome, SyncOptions, SyncRecord, SyncReport,
    SyncTarget, run_sync,
};
use weft_e2e::{Harness, query_i64, query_rows, query_strings};
use weft_http::BudgetRegistry;
use weft_runner::{RunOptions, RunOutcome};
use weft_sandbox::Api;

const SYNC: &str = "mailchimp_people";
const SNAPSHOT: &str = "_weft._weft_sync_snapshot_mailchimp_people";

/// Every distinct normalised email the model reads (non-deleted contacts).
const DISTINCT_EMAILS: &str = r#"
SELECT count(DISTINCT e) FROM (
    SELECT lower(trim(email)) AS e FROM zoom.webinar_registrants
    UNION ALL
    SELECT lower(trim("Email")) FROM salesforce."Contact" WHERE "_weft_deleted_at" IS NULL
) WHERE e IS NOT NULL AND e <> ''"#;

/// The sync's report from a run.
fn report(outcome: &RunOutcome) -> &SyncReport {
    // The Mailchimp sync, then the Zendesk users sync, then Salesforce Contacts.
    assert_eq!(outcome.syncs.len(), 3);
    assert_eq!(outcome.syncs[1].sync, "zendesk_people");
    assert_eq!(outcome.syncs[2].sync, "salesforce_contacts");
    for s in &outcome.syncs[1..] {
        assert!(s.report.is_some(), "{} failed: {:?}", s.sync, s.error);
    }
    let sync = &outcome.syncs[0];
    assert_eq!(sync.sync, SYNC);
    sync.report
        .as_ref()
        .unwrap_or_else(|| panic!("sync failed: {:?}", sync.error))
}

/// The model's rows: email -> (first_name, last_name).
fn model(db: &Path) -> BTreeMap<String, (String, String)> {
    query_rows(
        db,
        "SELECT email, first_name, last_name FROM models.people ORDER BY email",
    )
    .into_iter()
    .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
    .collect()
}

/// The audience: email -> (status, FNAME, LNAME).
fn audience(h: &Harness) -> BTreeMap<String, (String, String, String)> {
    let members = h.mailchimp_members();
    let text = |m: &Value, path: &str| {
        m.pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let out: BTreeMap<_, _> = members
        .iter()
        .map(|m| {
            (
                text(m, "/email_address"),
                (
                    text(m, "/status"),
                    text(m, "/merge_fields/FNAME"),
                    text(m, "/merge_fields/LNAME"),
                ),
            )
        })
        .collect();
    assert_eq!(out.len(), members.len(), "a member appears twice");
    out
}

fn snapshot_keys(db: &Path) -> BTreeSet<String> {
    query_strings(db, &format!("SELECT \"key\" FROM {SNAPSHOT}"))
        .into_iter()
        .collect()
}

fn mailchimp_writes(h: &Harness) -> usize {
    h.sandbox.control().writes(Api::Mailchimp).len()
}

/// Loads every pipeline and runs the models, without syncing.
async fn load_and_model(h: &Harness) {
    let config = h.config();
    for p in &config.pipelines {
        let options = RunOptions {
            pipeline: Some(p.name.clone()),
            ..RunOptions::default()
        };
        let outcome = weft_runner::run(&config, &options, CancellationToken::new(), None)
            .await
            .unwrap();
        assert!(outcome.succeeded(), "{}", outcome.render());
        assert!(outcome.syncs.is_empty());
    }
    let warehouse = weft_runner::open_warehouse(&config).await.unwrap();
    let models = weft_runner::run_models(&config, warehouse.as_ref())
        .await
        .unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["models.people", "models.crm_contacts"]);
}

/// The first run of a story: everyone in the model becomes a member.
async fn first_run(h: &Harness) -> BTreeMap<String, (String, String)> {
    let outcome = h.run_all().await;
    let db = h.warehouse_path();
    let people = model(&db);
    let r = report(&outcome);
    assert_eq!(r.plan.creates, people.len() as u64);
    assert_eq!(r.created, people.len() as u64);
    assert_eq!((r.updated, r.deleted, r.rejected), (0, 0, 0));
    people
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_keeps_one_row_and_one_member_per_person() {
    let h = Harness::story(80, "upsert").await;
    let outcome = h.run_all().await;
    let db = h.warehouse_path();

    let distinct = query_i64(&db, DISTINCT_EMAILS);
    let people = query_i64(&db, "SELECT count(*) FROM models.people");
    assert_eq!(people, distinct);
    assert_eq!(
        query_i64(&db, "SELECT count(DISTINCT email) FROM models.people"),
        people
    );
    let model_run = outcome
        .models
        .iter()
        .find(|m| m.name == "models.people")
        .unwrap();
    assert_eq!(model_run.rows as i64, people);
    // The sources overlap: some people are in both, so rows were merged.
    let registrants = query_i64(
        &db,
        "SELECT count(*) FROM zoom.webinar_registrants WHERE email IS NOT NULL",
    );
    let contacts = query_i64(
        &db,
        r#"SELECT count(*) FROM salesforce."Contact" WHERE "_weft_deleted_at" IS NULL"#,
    );
    let both = query_i64(
        &db,
        "SELECT count(*) FROM models.people WHERE sources = 'salesforce,zoom'",
    );
    assert!(both > 0, "no person is in both Zoom and Salesforce");
    assert!(registrants + contacts > people);

    // A person Zoom knows by a nickname and Salesforce by the formal name
    // (Barry / Bartholomew) is one row and one member.
    let pair = query_rows(
        &db,
        r#"SELECT z.e, z.first_name, c."FirstName"
           FROM (SELECT DISTINCT lower(trim(email)) AS e, first_name FROM zoom.webinar_registrants) z
           JOIN salesforce."Contact" c ON lower(trim(c."Email")) = z.e
           WHERE c."_weft_deleted_at" IS NULL AND z.first_name <> c."FirstName"
           ORDER BY z.e LIMIT 1"#,
    );
    assert_eq!(pair.len(), 1, "no nickname/formal-name pair in the sandbox");
    let (email, zoom_name, sf_name) = (&pair[0][0], &pair[0][1], &pair[0][2]);
    let rows = query_rows(
        &db,
        &format!("SELECT first_name, sources FROM models.people WHERE email = '{email}'"),
    );
    assert_eq!(rows.len(), 1, "{email} is not one row");
    assert!(
        rows[0][0] == *zoom_name || rows[0][0] == *sf_name,
        "{email}: model name {} is neither {zoom_name} nor {sf_name}",
        rows[0][0]
    );
    assert_eq!(rows[0][1], "salesforce,zoom");
    let members: Vec<Value> = h
        .mailchimp_members()
        .into_iter()
        .filter(|m| {
            m["email_address"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .collect();
    assert_eq!(members.len(), 1, "{email} is not one member");
    assert_eq!(members[0]["merge_fields"]["FNAME"], json!(rows[0][0]));
    assert_eq!(h.mailchimp_members().len() as i64, people);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_fills_the_audience_and_second_run_sends_nothing() {
    let h = Harness::story(80, "upsert").await;
    let people = first_run(&h).await;
    let db = h.warehouse_path();

    // The audience holds exactly the model's rows, names as merge fields.
    let members = audience(&h);
    assert_eq!(members.len(), people.len());
    for (email, (first, last)) in &people {
        let (status, fname, lname) = members
            .get(email)
            .unwrap_or_else(|| panic!("{email} is not a member"));
        assert_eq!(status, "subscribed", "{email}");
        assert_eq!((fname, lname), (first, last), "{email}");
    }
    assert_eq!(
        snapshot_keys(&db),
        people.keys().cloned().collect::<BTreeSet<_>>()
    );
    // Zendesk holds every person as a user, by email, with the full name.
    let control = h.sandbox.control();
    for (email, (first, last)) in &people {
        let user = control
            .zendesk_user_by_email(email)
            .unwrap_or_else(|| panic!("{email} is not a Zendesk user"));
        let full = format!("{first} {last}");
        assert_eq!(user["name"].as_str(), Some(full.trim()), "{email}");
    }

    // Salesforce now holds a Contact for each person only Zoom knew (with
    // a last name), keyed by the email as external id, and no one else.
    let crm: BTreeMap<String, (String, String)> = query_rows(
        &db,
        "SELECT email, coalesce(first_name, ''), last_name FROM models.crm_contacts",
    )
    .into_iter()
    .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
    .collect();
    assert!(!crm.is_empty(), "the demo has people only Zoom knows");
    let written: BTreeMap<String, (String, String)> = control
        .salesforce_upserted("Contact")
        .unwrap()
        .into_iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (
                text("External_Id__c"),
                (text("FirstName"), text("LastName")),
            )
        })
        .collect();
    assert_eq!(written, crm);
    let salesforce = written.len();

    // Nothing changed: nothing planned, nothing sent.
    let zendesk_requests = control.request_count(Api::Zendesk);
    let writes = mailchimp_writes(&h);
    let requests = h.sandbox.control().request_count(Api::Mailchimp);
    let second = h.run_all().await;
    let r = report(&second);
    assert_eq!((r.plan.creates, r.plan.updates, r.plan.deletes), (0, 0, 0));
    assert_eq!(r.plan.model_rows, people.len() as u64);
    assert_eq!((r.created, r.updated, r.rejected, r.batches), (0, 0, 0, 0));
    assert_eq!(mailchimp_writes(&h), writes);
    assert_eq!(h.sandbox.control().request_count(Api::Mailchimp), requests);
    assert_eq!(audience(&h), members);
    let zendesk = second.syncs[1].report.as_ref().unwrap();
    assert_eq!(
        (zendesk.plan.creates, zendesk.plan.updates, zendesk.batches),
        (0, 0, 0)
    );
    assert_eq!(control.request_count(Api::Zendesk), zendesk_requests);
    // The new Contacts were read back: those people left the CRM model, and
    // the Salesforce sync sent nothing.
    let crm_sync = second.syncs[2].report.as_ref().unwrap();
    assert_eq!(
        (
            crm_sync.plan.creates,
            crm_sync.plan.updates,
            crm_sync.batches
        ),
        (0, 0, 0)
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM models.crm_contacts"),
        0,
        "Salesforce has everyone now"
    );
    assert_eq!(
        control.salesforce_upserted("Contact").unwrap().len(),
        salesforce
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_one_contact_sends_exactly_one_update() {
    let h = Harness::story(80, "upsert").await;
    first_run(&h).await;
    let db = h.warehouse_path();
    let control = h.sandbox.control();

    // Someone in both tools: after the rename Salesforce holds the latest name.
    let picked = query_rows(
        &db,
        r#"SELECT p.email, c."Id", p.last_name FROM models.people p
           JOIN salesforce."Contact" c ON lower(trim(c."Email")) = p.email
           WHERE p.sources = 'salesforce,zoom' AND c."_weft_deleted_at" IS NULL
           ORDER BY p.email LIMIT 1"#,
    );
    assert_eq!(picked.len(), 1);
    let (email, id, last) = (&picked[0][0], &picked[0][1], &picked[0][2]);
    let before = audience(&h);
    control.advance_clock(60);
    control
        .salesforce_update("Contact", id, json!({"FirstName": "Zebediah"}))
        .unwrap();

    let writes = mailchimp_writes(&h);
    let outcome = h.run_all().await;
    let r = report(&outcome);
    assert_eq!((r.plan.creates, r.plan.updates), (0, 1));
    assert_eq!((r.created, r.updated, r.rejected), (0, 1, 0));
    assert_eq!(r.batches, 1);
    assert_eq!(mailchimp_writes(&h), writes + 1);
    assert_eq!(model(&db)[email], ("Zebediah".to_string(), last.clone()));

    let after = audience(&h);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(e, m)| before.get(*e) != Some(*m))
        .map(|(e, _)| e)
        .collect();
    assert_eq!(changed, vec![email]);
    assert_eq!(after[email].1, "Zebediah");
    assert_eq!(after[email].2, *last);
    assert_eq!(after.len(), before.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_mode_unsubscribes_a_deleted_contact() {
    let h = Harness::story(80, "mirror").await;
    let people = first_run(&h).await;
    let db = h.warehouse_path();
    let control = h.sandbox.control();

    // A contact no Zoom registrant shares an email with: deleting it takes
    // the person out of the model.
    let picked = query_rows(
        &db,
        r#"SELECT c."Id", lower(trim(c."Email")) AS e FROM salesforce."Contact" c
           WHERE c."_weft_deleted_at" IS NULL
             AND lower(trim(c."Email")) NOT IN
                 (SELECT lower(trim(email)) FROM zoom.webinar_registrants WHERE email IS NOT NULL)
           ORDER BY e LIMIT 1"#,
    );
    assert_eq!(picked.len(), 1);
    let (id, email) = (&picked[0][0], &picked[0][1]);
    assert!(people.contains_key(email));
    control.advance_clock(60);
    control.salesforce_delete("Contact", id).unwrap();

    let writes = mailchimp_writes(&h);
    let outcome = h.run_all().await;
    let r = report(&outcome);
    assert_eq!((r.plan.creates, r.plan.updates, r.plan.deletes), (0, 0, 1));
    assert_eq!((r.created, r.updated, r.deleted, r.rejected), (0, 0, 1, 0));
    assert_eq!(mailchimp_writes(&h), writes + 1);
    assert!(!model(&db).contains_key(email));
    assert_eq!(model(&db).len(), people.len() - 1);

    let members = audience(&h);
    assert_eq!(members.len(), people.len(), "unsubscribed, not removed");
    assert_eq!(members[email].0, "unsubscribed");
    let unsubscribed: Vec<&String> = members
        .iter()
        .filter(|(_, m)| m.0 != "subscribed")
        .map(|(e, _)| e)
        .collect();
    assert_eq!(unsubscribed, vec![email]);
    let snapshot = snapshot_keys(&db);
    assert!(!snapshot.contains(email));
    assert_eq!(snapshot.len(), people.len() - 1);
    assert_eq!(
        query_rows(
            &db,
            &format!(
                "SELECT \"action\", result FROM _weft._weft_sync_log \
                 WHERE \"key\" = '{email}' AND sync = '{SYNC}' ORDER BY \"at\""
            ),
        ),
        vec![
            vec!["create".to_string(), "ok".to_string()],
            vec!["delete".to_string(), "ok".to_string()],
        ]
    );

    // The delete is not sent again.
    let again = h.run_all().await;
    let r = report(&again);
    assert_eq!((r.plan.creates, r.plan.updates, r.plan.deletes), (0, 0, 0));
    assert_eq!(mailchimp_writes(&h), writes + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_email_is_rejected_recorded_and_retried() {
    let h = Harness::story(60, "upsert").await;
    let people = first_run(&h).await;
    let db = h.warehouse_path();
    let control = h.sandbox.control();

    let email = "ivy.invalid@fake.com";
    let reason = format!("{email} looks fake or invalid, please enter a real email address.");
    control.advance_clock(60);
    control
        .salesforce_create(
            "Contact",
            json!({"FirstName": "Ivy", "LastName": "Invalid", "Email": email}),
        )
        .unwrap();

    let writes = mailchimp_writes(&h);
    let outcome = h.run_all().await;
    let r = report(&outcome);
    assert_eq!((r.plan.creates, r.plan.updates), (1, 0));
    assert_eq!((r.created, r.updated, r.rejected), (0, 0, 1));
    assert_eq!(mailchimp_writes(&h), writes + 1);
    assert_eq!(model(&db).len(), people.len() + 1);
    let rejects = query_rows(
        &db,
        "SELECT sync, \"key\", \"action\", reason FROM _weft._weft_sync_rejects",
    );
    assert_eq!(
        rejects,
        vec![vec![
            SYNC.to_string(),
            email.to_string(),
            "create".to_string(),
            reason.clone()
        ]]
    );
    assert!(!snapshot_keys(&db).contains(email));
    assert_eq!(snapshot_keys(&db).len(), people.len());
    assert!(!audience(&h).contains_key(email));

    // Not in the snapshot, so planned and sent again, and rejected again.
    let again = h.run_all().await;
    let r = report(&again);
    assert_eq!((r.plan.creates, r.plan.updates), (1, 0));
    assert_eq!((r.created, r.rejected), (0, 1));
    assert_eq!(mailchimp_writes(&h), writes + 2);
    assert_eq!(
        query_rows(
            &db,
            "SELECT \"key\", reason, count(DISTINCT run_id)::VARCHAR, count(*)::VARCHAR \
             FROM _weft._weft_sync_rejects GROUP BY ALL"
        ),
        vec![vec![
            email.to_string(),
            reason,
            "2".to_string(),
            "2".to_string()
        ]]
    );
    assert!(!snapshot_keys(&db).contains(email));
    assert_eq!(audience(&h).len(), people.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_and_calls_nothing() {
    let h = Harness::story(60, "upsert").await;
    let people = first_run(&h).await;
    let db = h.warehouse_path();
    let control = h.sandbox.control();

    // One rename and one new contact.
    let picked = query_rows(
        &db,
        r#"SELECT lower(trim("Email")), "Id" FROM salesforce."Contact"
           WHERE "_weft_deleted_at" IS NULL ORDER BY 1 LIMIT 1"#,
    );
    let (renamed, id) = (&picked[0][0], &picked[0][1]);
    control.advance_clock(60);
    control
        .salesforce_update("Contact", id, json!({"FirstName": "Quentin"}))
        .unwrap();
    let added = "new.person@example.com";
    control
        .salesforce_create(
            "Contact",
            json!({"FirstName": "New", "LastName": "Person", "Email": added}),
        )
        .unwrap();
    load_and_model(&h).await;
    assert_eq!(model(&db).len(), people.len() + 1);

    let config = h.config();
    let writes = mailchimp_writes(&h);
    let requests = control.request_count(Api::Mailchimp);
    let before = audience(&h);
    let results = weft_runner::sync(&config, Some(SYNC), true)
        .await
        .unwrap()
        .syncs;
    assert_eq!(results.len(), 1);
    let r = results[0].report.as_ref().unwrap();
    assert!(r.dry_run);
    assert_eq!((r.plan.creates, r.plan.updates, r.plan.deletes), (1, 1, 0));
    assert_eq!((r.created, r.updated, r.rejected, r.batches), (0, 0, 0, 0));
    let samples: Vec<(String, String, Value)> = r
        .samples
        .iter()
        .map(|s| (s.action.to_string(), s.key.clone(), json!(s.fields)))
        .collect();
    assert_eq!(
        samples,
        vec![
            (
                "create".to_string(),
                added.to_string(),
                json!({"email_address": added, "merge_fields.FNAME": "New", "merge_fields.LNAME": "Person"})
            ),
            (
                "update".to_string(),
                renamed.clone(),
                json!({
                    "email_address": renamed,
                    "merge_fields.FNAME": "Quentin",
                    "merge_fields.LNAME": people[renamed].1,
                })
            ),
        ]
    );
    // The requests it would send: one batch call per action.
    let list = format!("lists/{}", control.mailchimp_list_id());
    let shown: Vec<(&str, &str, Value, Value)> = r
        .requests
        .iter()
        .map(|q| {
            (
                q.method.as_str(),
                q.path.as_str(),
                q.body["members"][0]["email_address"].clone(),
                q.body["update_existing"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            ("POST", list.as_str(), json!(added), json!(true)),
            ("POST", list.as_str(), json!(renamed), json!(true)),
        ]
    );
    // The sandbox saw nothing: no write, no request at all.
    assert_eq!(mailchimp_writes(&h), writes);
    assert_eq!(control.request_count(Api::Mailchimp), requests);
    assert_eq!(audience(&h), before);
    assert_eq!(snapshot_keys(&db).len(), people.len());
    assert_eq!(
        query_i64(
            &db,
            &format!("SELECT count(*) FROM _weft._weft_sync_log WHERE sync = '{SYNC}'")
        ),
        people.len() as i64
    );

    // The plan still stands: a real run sends exactly it.
    let outcome = h.run_all().await;
    let r = report(&outcome);
    assert_eq!((r.created, r.updated, r.rejected), (1, 1, 0));
    // Creates and updates go in separate batches.
    assert_eq!(r.batches, 2);
    assert_eq!(mailchimp_writes(&h), writes + 2);
    assert_eq!(audience(&h)[renamed].1, "Quentin");
}

/// A target that dies on its second batch after Mailchimp applied it: the
/// members exist, but the sync never recorded them (a kill mid-batch).
struct KilledOnSecondBatch {
    inner: Arc<dyn SyncTarget>,
    calls: AtomicUsize,
}

#[async_trait]
impl SyncTarget for KilledOnSecondBatch {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn required_fields(&self) -> Vec<String> {
        self.inner.required_fields()
    }

    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    fn modes(&self) -> &'static [weft_core::SyncWriteMode] {
        self.inner.modes()
    }

    async fn apply(
        &self,
        mode: weft_core::SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let outcomes = self.inner.apply(mode, records).await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            return Err("killed after Mailchimp applied the batch".into());
        }
        Ok(outcomes)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_mid_batch_resumes_without_duplicates() {
    const BATCH: usize = 20;
    let h = Harness::story_batched(100, "upsert", Some(BATCH)).await;
    load_and_model(&h).await;
    let db = h.warehouse_path();
    let people = model(&db);
    assert!(people.len() > 3 * BATCH, "{} people", people.len());

    let config = h.config();
    let sync = config.sync(SYNC).unwrap();
    let target = KilledOnSecondBatch {
        inner: weft_runner::build_sync_target(sync, BudgetRegistry::global())
            .await
            .unwrap(),
        calls: AtomicUsize::new(0),
    };
    let killed = {
        let warehouse = weft_runner::open_warehouse(&config).await.unwrap();
        let options = SyncOptions {
            dry_run: false,
            batch_size: sync.batch_size,
        };
        run_sync(&*warehouse, &target, &sync.spec(), options).await
    };
    match killed {
        Err(CoreError::SyncTarget {
            records, first_key, ..
        }) => {
            assert_eq!(records, BATCH);
            assert_eq!(first_key, *people.keys().nth(BATCH).unwrap());
        }
        other => panic!("expected the second batch to fail, got {other:?}"),
    }
    assert_eq!(target.calls.load(Ordering::SeqCst), 2);
    // Mailchimp holds two batches; the snapshot only the first (acknowledged
    // and recorded) one.
    let first: BTreeSet<String> = people.keys().take(BATCH).cloned().collect();
    assert_eq!(snapshot_keys(&db), first);
    assert_eq!(audience(&h).len(), 2 * BATCH);

    // Re-run: the lost batch is sent again, as an upsert.
    let writes = mailchimp_writes(&h);
    let outcome = h.run_all().await;
    let r = report(&outcome);
    let rest = (people.len() - BATCH) as u64;
    assert_eq!((r.plan.creates, r.plan.updates), (rest, 0));
    assert_eq!((r.created, r.rejected), (rest, 0));
    assert_eq!(r.batches, rest.div_ceil(BATCH as u64));
    assert_eq!(mailchimp_writes(&h), writes + r.batches as usize);

    // No member twice, and the snapshot is exactly what Mailchimp holds.
    let members = audience(&h);
    assert_eq!(members.len(), people.len());
    let emails: BTreeSet<String> = members.keys().cloned().collect();
    assert_eq!(emails, people.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(snapshot_keys(&db), emails);
    for (email, (first, last)) in &people {
        assert_eq!((&members[email].1, &members[email].2), (first, last));
    }
}
