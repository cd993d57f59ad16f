//! The reverse-sync destination: composite upsert requests, batching,
//! per-record rejects and describe validation against a wiremock
//! Salesforce; mode enforcement and mirror deletes against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weft_conformance::MemorySyncStore;
use weft_conformance::sync_target::person_row;
use weft_core::{
    SecretRef, SyncAction, SyncOptions, SyncRecord, SyncSpec, SyncTarget, SyncWriteMode, run_sync,
};
use weft_http::{BudgetRegistry, HttpSettings};
use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceError, SalesforceTarget};
use weft_sandbox::{Api, Sandbox, SandboxConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const V: &str = "/services/data/v59.0";
const UPSERT: &str = "/services/data/v59.0/composite/sobjects/Contact/External_Id__c";

fn secret_file(value: &str) -> SecretRef {
    weft_conformance::secret_file(value).unwrap()
}

fn config(server: &MockServer) -> SalesforceConfig {
    let mut c = SalesforceConfig::new(
        server.uri(),
        SalesforceAuth::RefreshToken {
            client_id: "app-id".into(),
            client_secret: secret_file("CLIENT_SECRET_SENTINEL"),
            refresh_token: secret_file("REFRESH_SENTINEL"),
        },
    );
    c.object = Some("Contact".into());
    c.external_id_field = Some("External_Id__c".into());
    c.http = Some(HttpSettings {
        initial_backoff_ms: 1,
        max_backoff_ms: 2,
        max_attempts: 1,
        ..HttpSettings::default()
    });
    c
}

async fn mount_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok", "instance_url": server.uri(), "token_type": "Bearer"
        })))
        .mount(server)
        .await;
}

fn field(name: &str, kind: &str, writable: bool, external: bool) -> Value {
    json!({"name": name, "type": kind, "createable": writable, "updateable": writable,
           "externalId": external})
}

async fn mount_describe(server: &MockServer) {
    let body = json!({"name": "Contact", "fields": [
        field("Id", "id", false, false),
        field("Name", "string", false, false),
        field("LastName", "string", true, false),
        field("Email", "email", true, false),
        field("External_Id__c", "string", true, true),
    ]});
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/describe")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

async fn target(server: &MockServer) -> SalesforceTarget {
    mount_token(server).await;
    mount_describe(server).await;
    SalesforceTarget::connect(&config(server), &BudgetRegistry::new())
        .await
        .unwrap()
}

fn record(key: &str, name: &str) -> SyncRecord {
    SyncRecord {
        key: key.into(),
        action: SyncAction::Create,
        row_hash: "h".into(),
        fields: BTreeMap::from([
            ("External_Id__c".to_string(), json!(key)),
            ("Email".to_string(), json!(key)),
            ("LastName".to_string(), json!(name)),
        ]),
    }
}

fn spec(mode: SyncWriteMode, mapping: &[(&str, &str)]) -> SyncSpec {
    SyncSpec {
        name: "people".into(),
        model: "models.people".into(),
        primary_key: "key".into(),
        mode,
        mapping: mapping
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Answers a composite upsert with one success per record sent, except
/// records whose `LastName` is `Bad` (an `INVALID_EMAIL_ADDRESS` failure).
struct PerRecord;

impl Respond for PerRecord {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let results: Vec<Value> = body["records"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(n, r)| match r["LastName"] == json!("Bad") {
                true => json!({"id": null, "success": false, "errors": [{
                    "statusCode": "INVALID_EMAIL_ADDRESS",
                    "message": "Email: invalid email address: x", "fields": ["Email"]}]}),
                false => json!({"id": format!("003{n:015}"), "success": true, "errors": [],
                                "created": true}),
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(results)
    }
}

async fn upserts(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PATCH" && r.url.path() == UPSERT)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn upserts_are_composite_patches_by_external_id() {
    let server = MockServer::start().await;
    let t = target(&server).await;
    Mock::given(method("PATCH"))
        .and(path(UPSERT))
        .respond_with(PerRecord)
        .mount(&server)
        .await;
    let out = t
        .apply(
            SyncWriteMode::Upsert,
            vec![record("a@x.com", "Ann"), record("b@x.com", "Bob")],
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].key.as_str(), &out[0].result), ("a@x.com", &Ok(())));
    assert_eq!((out[1].key.as_str(), &out[1].result), ("b@x.com", &Ok(())));
    let bodies = upserts(&server).await;
    assert_eq!(
        bodies,
        vec![json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "Email": "a@x.com",
             "External_Id__c": "a@x.com", "LastName": "Ann"},
            {"attributes": {"type": "Contact"}, "Email": "b@x.com",
             "External_Id__c": "b@x.com", "LastName": "Bob"}
        ]})]
    );
    assert_eq!(t.required_fields(), vec!["External_Id__c".to_string()]);
}

#[tokio::test]
async fn four_hundred_fifty_records_are_three_calls() {
    let server = MockServer::start().await;
    let t = target(&server).await;
    Mock::given(method("PATCH"))
        .and(path(UPSERT))
        .respond_with(PerRecord)
        .mount(&server)
        .await;
    let records: Vec<SyncRecord> = (0..450)
        .map(|i| record(&format!("p{i}@x.com"), &format!("P{i}")))
        .collect();
    let out = t.apply(SyncWriteMode::Upsert, records).await.unwrap();
    assert_eq!(out.len(), 450);
    assert!(out.iter().all(|o| o.result.is_ok()));
    assert_eq!(out[449].key, "p449@x.com");
    let sizes: Vec<usize> = upserts(&server)
        .await
        .iter()
        .map(|b| b["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
    // The 201st record opens the second call.
    let second = &upserts(&server).await[1];
    assert_eq!(second["records"][0]["External_Id__c"], json!("p200@x.com"));
}

#[tokio::test]
async fn a_failed_record_is_a_reject_with_its_status_code() {
    let server = MockServer::start().await;
    let t = target(&server).await;
    Mock::given(method("PATCH"))
        .and(path(UPSERT))
        .respond_with(PerRecord)
        .mount(&server)
        .await;
    let mut no_key = record("c@x.com", "Cy");
    no_key.fields.insert("External_Id__c".into(), Value::Null);
    let out = t
        .apply(
            SyncWriteMode::Upsert,
            vec![record("a@x.com", "Ann"), record("x", "Bad"), no_key],
        )
        .await
        .unwrap();
    assert_eq!(out[0].result, Ok(()));
    assert_eq!(out[1].key, "x");
    assert_eq!(
        out[1].result,
        Err("INVALID_EMAIL_ADDRESS: Email: invalid email address: x".to_string())
    );
    // Rejected locally, never sent.
    assert_eq!(
        out[2].result,
        Err("`External_Id__c` is missing or empty".to_string())
    );
    assert_eq!(
        upserts(&server).await[0]["records"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_failed_call_fails_the_whole_batch() {
    let server = MockServer::start().await;
    let t = target(&server).await;
    Mock::given(method("PATCH"))
        .and(path(UPSERT))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!([
            {"errorCode": "JSON_PARSER_ERROR", "message": "bad body"}
        ])))
        .mount(&server)
        .await;
    let e = t
        .apply(SyncWriteMode::Upsert, vec![record("a@x.com", "Ann")])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("400"), "{e}");
    assert!(!e.contains("REFRESH_SENTINEL"), "{e}");
}

#[tokio::test]
async fn connect_names_a_field_that_is_not_an_external_id() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_describe(&server).await;
    let mut c = config(&server);
    c.external_id_field = Some("Email".into());
    let e = SalesforceTarget::connect(&c, &BudgetRegistry::new())
        .await
        .err()
        .unwrap();
    assert!(matches!(e, SalesforceError::Field { ref field, .. } if field == "Email"));
    assert!(e.to_string().contains("is not an external id field"), "{e}");
    c.external_id_field = Some("Nope__c".into());
    let e = SalesforceTarget::connect(&c, &BudgetRegistry::new())
        .await
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "salesforce Contact: field `Nope__c` does not exist on Contact"
    );
    c.object = None;
    let e = SalesforceTarget::connect(&c, &BudgetRegistry::new())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`object`"), "{e}");
}

#[tokio::test]
async fn check_names_unknown_and_read_only_fields() {
    let server = MockServer::start().await;
    let t = target(&server).await;
    let ok = [
        ("External_Id__c", "key"),
        ("Email", "email"),
        ("LastName", "name"),
    ];
    for &mode in SyncWriteMode::ALL {
        t.check(&spec(mode, &ok)).unwrap();
    }
    let e = t
        .check(&spec(
            SyncWriteMode::Upsert,
            &[("External_Id__c", "key"), ("Nickname__c", "name")],
        ))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "sync `people` to salesforce: `Nickname__c` is not a field of Contact"
    );
    let e = t
        .check(&spec(
            SyncWriteMode::Upsert,
            &[("External_Id__c", "key"), ("Name", "name")],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`Name` of Contact is neither createable nor updateable"),
        "{e}"
    );
    let e = t
        .check(&spec(
            SyncWriteMode::Upsert,
            &[("External_Id__c", "email"), ("LastName", "name")],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`External_Id__c` must be mapped from the primary key `key`"),
        "{e}"
    );
    // Nothing was written while checking.
    assert!(upserts(&server).await.is_empty());
}

// ---- against the sandbox ----------------------------------------------

const MAPPING: [(&str, &str); 3] = [
    ("External_Id__c", "key"),
    ("Email", "email"),
    ("LastName", "name"),
];

async fn sandbox_target(sandbox: &Sandbox) -> SalesforceTarget {
    SalesforceTarget::connect(&sandbox_config(sandbox), &BudgetRegistry::new())
        .await
        .unwrap()
}

/// Contacts upserted by `External_Id__c` on the sandbox's org.
fn sandbox_config(sandbox: &Sandbox) -> SalesforceConfig {
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
    c
}

async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig {
        size: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
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

#[tokio::test]
async fn create_only_and_update_only_are_enforced_by_salesforce_data() {
    let sandbox = start().await;
    let t = sandbox_target(&sandbox).await;
    let seed = MemorySyncStore::new();
    seed.put("a@x.com", person_row("a@x.com", "Original A"));
    let r = run_sync(
        &seed,
        &t,
        &spec(SyncWriteMode::Upsert, &MAPPING),
        SyncOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.created, 1);

    let store = MemorySyncStore::new();
    store.put("a@x.com", person_row("a@x.com", "Changed A"));
    store.put("b@x.com", person_row("b@x.com", "New B"));
    let r = run_sync(
        &store,
        &t,
        &spec(SyncWriteMode::CreateOnly, &MAPPING),
        SyncOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((r.created, r.rejected), (1, 1));
    let reason = store.rejects()["a@x.com"].clone();
    assert!(reason.starts_with("create_only: Contact 003"), "{reason}");
    assert_eq!(
        held(&sandbox),
        BTreeMap::from([
            ("a@x.com".to_string(), "Original A".to_string()),
            ("b@x.com".to_string(), "New B".to_string()),
        ])
    );

    // In weft's snapshot but not at Salesforce: update_only must not create it.
    let other = MemorySyncStore::new();
    other.seed_snapshot("c@x.com");
    other.put("c@x.com", person_row("c@x.com", "Never Created"));
    other.put("a@x.com", person_row("a@x.com", "Updated A"));
    other.seed_snapshot("a@x.com");
    let r = run_sync(
        &other,
        &t,
        &spec(SyncWriteMode::UpdateOnly, &MAPPING),
        SyncOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((r.updated, r.rejected), (1, 1));
    assert_eq!(
        other.rejects()["c@x.com"],
        "update_only: no Contact has External_Id__c = c@x.com; not created"
    );
    let now = held(&sandbox);
    assert_eq!(now.get("a@x.com").map(String::as_str), Some("Updated A"));
    assert!(!now.contains_key("c@x.com"));
}

#[tokio::test]
async fn mirror_deletes_by_id_and_acknowledges_unknown_keys() {
    let sandbox = start().await;
    let t = sandbox_target(&sandbox).await;
    let store = MemorySyncStore::new();
    for (k, n) in [("a@x.com", "A"), ("b@x.com", "B")] {
        store.put(k, person_row(k, n));
    }
    // In the snapshot, never at Salesforce: its delete has nothing to do.
    store.seed_snapshot("ghost@x.com");
    run_sync(
        &store,
        &t,
        &spec(SyncWriteMode::Upsert, &MAPPING),
        SyncOptions::default(),
    )
    .await
    .unwrap();
    store.remove("a@x.com");
    let r = run_sync(
        &store,
        &t,
        &spec(SyncWriteMode::Mirror, &MAPPING),
        SyncOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((r.deleted, r.rejected), (2, 0), "{:?}", store.rejects());
    assert_eq!(
        held(&sandbox),
        BTreeMap::from([("b@x.com".to_string(), "B".to_string())])
    );
    let deletes: Vec<_> = sandbox
        .control()
        .writes(Api::Salesforce)
        .into_iter()
        .filter(|w| w.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "one DELETE call for the one Id found");
    assert_eq!(deletes[0].path, format!("{V}/composite/sobjects"));
}

#[tokio::test]
async fn mirror_update_sets_fields_instead_of_deleting() {
    let sandbox = start().await;
    let mut c = sandbox_config(&sandbox);
    c.mirror_update = Some(BTreeMap::from([(
        "Title".to_string(),
        json!("Former customer"),
    )]));
    let t = SalesforceTarget::connect(&c, &BudgetRegistry::new())
        .await
        .unwrap();
    let store = MemorySyncStore::new();
    for (k, n) in [("a@x.com", "A"), ("b@x.com", "B")] {
        store.put(k, person_row(k, n));
    }
    store.seed_snapshot("ghost@x.com");
    run_sync(
        &store,
        &t,
        &spec(SyncWriteMode::Upsert, &MAPPING),
        SyncOptions::default(),
    )
    .await
    .unwrap();
    store.remove("a@x.com");
    let mirror = spec(SyncWriteMode::Mirror, &MAPPING);
    let preview = t.preview(
        SyncWriteMode::Mirror,
        &[SyncRecord {
            key: "a@x.com".into(),
            action: SyncAction::Delete,
            row_hash: String::new(),
            fields: BTreeMap::new(),
        }],
    );
    assert_eq!(preview.len(), 1);
    assert_eq!(
        preview[0].body["records"][0],
        json!({"attributes": {"type": "Contact"}, "External_Id__c": "a@x.com",
               "Title": "Former customer"})
    );
    let r = run_sync(&store, &t, &mirror, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((r.deleted, r.rejected), (2, 0), "{:?}", store.rejects());
    // Both records are still live; the one that left the model has the title.
    assert_eq!(held(&sandbox).len(), 2);
    let contacts = sandbox.control().salesforce_upserted("Contact").unwrap();
    let title = |k: &str| {
        contacts
            .iter()
            .find(|c| c["External_Id__c"] == k)
            .map(|c| c["Title"].clone())
            .unwrap()
    };
    assert_eq!(title("a@x.com"), json!("Former customer"));
    assert_eq!(title("b@x.com"), Value::Null);
    assert!(
        !sandbox
            .control()
            .writes(Api::Salesforce)
            .iter()
            .any(|w| w.method == "DELETE"),
        "nothing deleted"
    );
    // The ghost was not created by the update.
    assert!(
        contacts
            .iter()
            .all(|c| c["External_Id__c"] != "ghost@x.com")
    );

    // A mirror_update field that cannot be updated is refused by check.
    c.mirror_update = Some(BTreeMap::from([("Name".to_string(), json!("x"))]));
    let bad = SalesforceTarget::connect(&c, &BudgetRegistry::new())
        .await
        .unwrap();
    let err = weft_core::check_sync(&bad, &mirror)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mirror_update: `Name` of Contact is not updateable"),
        "{err}"
    );
    sandbox.shutdown().await;
}

/// `DELETE composite/sobjects?ids=...` on the sandbox, with a fresh token.
async fn sandbox_delete(sandbox: &Sandbox, ids: &[&str], all_or_none: bool) -> Value {
    use weft_http::{Auth, HttpClient, RequestSpec};
    let base = sandbox.base_url(Api::Salesforce);
    let metrics = weft_core::StreamMetrics::default();
    let login = HttpClient::builder("sf-test", url::Url::parse(&base).unwrap())
        .auth(Auth::None)
        .build()
        .unwrap();
    let token: Value = login
        .get_json(
            &RequestSpec::post_form(
                "/services/oauth2/token",
                vec![
                    ("grant_type".into(), "refresh_token".into()),
                    (
                        "client_id".into(),
                        weft_sandbox::DEFAULT_SALESFORCE_CLIENT_ID.into(),
                    ),
                    (
                        "client_secret".into(),
                        weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET.into(),
                    ),
                    (
                        "refresh_token".into(),
                        weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN.into(),
                    ),
                ],
            ),
            &metrics,
        )
        .await
        .unwrap();
    let api = HttpClient::builder(
        "sf-test",
        url::Url::parse(&format!("{base}/services/data/v59.0")).unwrap(),
    )
    .auth(Auth::Bearer(
        token["access_token"].as_str().unwrap().to_string().into(),
    ))
    .build()
    .unwrap();
    let mut req = RequestSpec::get("composite/sobjects")
        .query("ids", ids.join(","))
        .query("allOrNone", all_or_none.to_string());
    req.method = "DELETE".parse().unwrap();
    api.get_json(&req, &metrics).await.unwrap()
}

#[tokio::test]
async fn sandbox_composite_delete_answers_each_id() {
    let sandbox = start().await;
    let ids = sandbox.control().salesforce_ids("Contact").unwrap();
    let (live, other) = (ids[0].as_str(), ids[1].as_str());
    let bogus = "003000000000000AAA";
    // allOrNone: one bad id keeps every record.
    let r = sandbox_delete(&sandbox, &[live, bogus], true).await;
    assert_eq!(r[0]["success"], json!(false));
    assert_eq!(
        r[0]["errors"][0]["statusCode"],
        json!("ALL_OR_NONE_OPERATION_ROLLED_BACK")
    );
    assert_eq!(
        r[1]["errors"][0]["statusCode"],
        json!("INVALID_CROSS_REFERENCE_KEY")
    );
    assert!(
        sandbox
            .control()
            .salesforce_ids("Contact")
            .unwrap()
            .contains(&ids[0])
    );
    // Each id on its own.
    let r = sandbox_delete(&sandbox, &[live, bogus], false).await;
    assert_eq!(r[0], json!({"id": live, "success": true, "errors": []}));
    assert_eq!(r[1]["id"], json!(bogus));
    assert_eq!(r[1]["success"], json!(false));
    let now = sandbox.control().salesforce_ids("Contact").unwrap();
    assert!(!now.contains(&ids[0]));
    assert!(now.contains(&ids[1]));
    let r = sandbox_delete(&sandbox, &[live, other], false).await;
    assert_eq!(r[0]["errors"][0]["statusCode"], json!("ENTITY_IS_DELETED"));
    assert_eq!(r[1]["success"], json!(true));
}

#[tokio::test]
async fn a_dry_run_preview_shows_the_composite_calls_and_sends_nothing() {
    let server = MockServer::start().await;
    let t = target(&server).await;
    let before = server.received_requests().await.unwrap().len();
    let records: Vec<SyncRecord> = (0..250)
        .map(|i| record(&format!("p{i}@x.com"), "P"))
        .collect();
    let shown = t.preview(SyncWriteMode::Upsert, &records);
    let calls: Vec<(String, String, usize)> = shown
        .iter()
        .map(|q| {
            (
                q.method.clone(),
                q.path.clone(),
                q.body["records"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    let path = "composite/sobjects/Contact/External_Id__c".to_string();
    assert_eq!(
        calls,
        vec![
            ("PATCH".to_string(), path.clone(), 200),
            ("PATCH".to_string(), path, 50)
        ]
    );
    assert_eq!(shown[0].body["allOrNone"], json!(false));
    assert_eq!(
        shown[0].body["records"][0]["attributes"]["type"],
        json!("Contact")
    );
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}
