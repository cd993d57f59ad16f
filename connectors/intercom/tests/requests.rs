//! Request shapes and per-record outcomes against a wiremock Intercom.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weft_core::{RecordOutcome, SyncAction, SyncRecord, SyncTarget, SyncWriteMode};
use weft_http::{BudgetRegistry, HttpSettings};
use weft_intercom::{IntercomConfig, IntercomTarget};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "SENTINEL_INTERCOM_TOKEN";

fn target(server: &MockServer) -> IntercomTarget {
    let mut config = IntercomConfig::new(weft_conformance::secret_file(TOKEN).unwrap());
    config.base_url = Some(server.uri());
    config.http = Some(HttpSettings {
        max_attempts: 2,
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        ..HttpSettings::default()
    });
    IntercomTarget::new(&config, &BudgetRegistry::new()).unwrap()
}

fn record(key: &str, action: SyncAction, fields: &[(&str, Value)]) -> SyncRecord {
    SyncRecord {
        key: key.into(),
        action,
        row_hash: format!("h-{key}"),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn ann() -> SyncRecord {
    record(
        "ann@example.com",
        SyncAction::Create,
        &[
            ("email", json!("ann@example.com")),
            ("name", json!("Ann Lee")),
            ("custom_attributes.plan", json!("pro")),
        ],
    )
}

fn email_search(email: &str) -> Value {
    json!({"query": {"field": "email", "operator": "=", "value": email}})
}

fn list(contacts: Vec<Value>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "type": "list", "data": contacts, "total_count": contacts.len(),
        "pages": {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1}
    }))
}

fn results(v: Vec<RecordOutcome>) -> Vec<(String, Result<(), String>)> {
    let mut v: Vec<_> = v.into_iter().map(|o| (o.key, o.result)).collect();
    v.sort();
    v
}

async fn requests(server: &MockServer) -> Vec<(String, String, Value)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.url.path().to_string(),
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[tokio::test]
async fn unknown_email_is_created_as_a_user() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("intercom-version", "2.16"))
        .and(body_json(email_search("ann@example.com")))
        .respond_with(list(vec![]))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"type": "contact", "id": "c1"})),
        )
        .mount(&server)
        .await;
    let t = target(&server);
    assert_eq!((t.name(), t.max_batch()), ("intercom", 50));
    assert_eq!(t.required_fields(), vec!["email".to_string()]);
    let out = t.apply(SyncWriteMode::Upsert, vec![ann()]).await.unwrap();
    assert_eq!(results(out), vec![("ann@example.com".to_string(), Ok(()))]);
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1],
        (
            "POST".to_string(),
            "/contacts".to_string(),
            json!({"role": "user", "email": "ann@example.com", "name": "Ann Lee",
                   "custom_attributes": {"plan": "pro"}})
        )
    );
}

#[tokio::test]
async fn known_email_is_updated_and_external_id_wins() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .respond_with(list(vec![
            json!({"type": "contact", "id": "by-email", "email": "BOB@example.com"}),
            json!({"type": "contact", "id": "by-ext", "email": "old@example.com", "external_id": "u2"}),
        ]))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"type": "contact"})))
        .mount(&server)
        .await;
    let out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![record(
                "bob@example.com",
                SyncAction::Update,
                &[
                    ("email", json!("bob@example.com")),
                    ("external_id", json!("u2")),
                ],
            )],
        )
        .await
        .unwrap();
    assert_eq!(results(out), vec![("bob@example.com".to_string(), Ok(()))]);
    let reqs = requests(&server).await;
    assert_eq!(
        reqs[0].2,
        json!({"query": {"operator": "OR", "value": [
            {"field": "external_id", "operator": "=", "value": "u2"},
            {"field": "email", "operator": "=", "value": "bob@example.com"}
        ]}})
    );
    assert_eq!(
        reqs[1],
        (
            "PUT".to_string(),
            "/contacts/by-ext".to_string(),
            json!({"email": "bob@example.com", "external_id": "u2"})
        )
    );
}

#[tokio::test]
async fn conflict_on_create_searches_again_and_updates() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .respond_with(list(vec![]))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .respond_with(list(vec![
            json!({"type": "contact", "id": "c9", "email": "ann@example.com"}),
        ]))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "type": "error.list", "errors": [{"code": "conflict", "message": "A contact matching those details already exists with id=c9"}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/contacts/c9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"type": "contact"})))
        .expect(1)
        .mount(&server)
        .await;
    let out = target(&server)
        .apply(SyncWriteMode::Upsert, vec![ann()])
        .await
        .unwrap();
    assert_eq!(results(out), vec![("ann@example.com".to_string(), Ok(()))]);
    let paths: Vec<String> = requests(&server)
        .await
        .into_iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        paths,
        vec![
            "POST /contacts/search",
            "POST /contacts",
            "POST /contacts/search",
            "PUT /contacts/c9"
        ]
    );
}

#[tokio::test]
async fn client_errors_reject_one_record_with_intercoms_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .respond_with(list(vec![]))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .and(body_json(json!({"role": "user", "email": "bad@@example"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "error.list", "errors": [{"code": "parameter_invalid", "message": "Email is invalid"}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"type": "contact", "id": "c1"})),
        )
        .mount(&server)
        .await;
    let out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![
                ann(),
                record(
                    "bad@@example",
                    SyncAction::Create,
                    &[("email", json!("bad@@example"))],
                ),
                record("nomail", SyncAction::Create, &[("name", json!("x"))]),
                record(
                    "tagged",
                    SyncAction::Create,
                    &[("email", json!("t@example.com")), ("tags", json!("a"))],
                ),
            ],
        )
        .await
        .unwrap();
    let out = results(out);
    assert_eq!(out[0], ("ann@example.com".to_string(), Ok(())));
    assert_eq!(
        out[1],
        (
            "bad@@example".to_string(),
            Err("Email is invalid (parameter_invalid)".to_string())
        )
    );
    assert_eq!(
        out[2],
        (
            "nomail".to_string(),
            Err("`email` is missing or empty".to_string())
        )
    );
    assert!(
        out[3]
            .1
            .as_ref()
            .unwrap_err()
            .contains("`tags` is not an Intercom contact field")
    );
}

#[tokio::test]
async fn unauthorized_fails_the_batch_without_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]
        })))
        .mount(&server)
        .await;
    let err = target(&server)
        .apply(SyncWriteMode::Upsert, vec![ann()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("intercom: not authorized (HTTP 401)"),
        "{err}"
    );
    assert!(!err.contains("SENTINEL"), "{err}");
}

#[tokio::test]
async fn mirror_delete_unsubscribes_and_missing_contact_is_acknowledged() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(body_json(json!({"query":
            {"field": "email", "operator": "=", "value": "gone@example.com"}
        })))
        .respond_with(list(vec![
            json!({"type": "contact", "id": "c5", "email": "gone@example.com"}),
        ]))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .respond_with(list(vec![]))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/contacts/c5"))
        .and(body_json(json!({"unsubscribed_from_emails": true})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"type": "contact"})))
        .expect(1)
        .mount(&server)
        .await;
    let out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![
                record("gone@example.com", SyncAction::Delete, &[]),
                record("u-404", SyncAction::Delete, &[]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        results(out),
        vec![
            ("gone@example.com".to_string(), Ok(())),
            ("u-404".to_string(), Ok(()))
        ]
    );
}

#[tokio::test]
async fn a_dry_run_preview_lists_the_search_and_the_write_and_sends_nothing() {
    let server = MockServer::start().await;
    let shown: Vec<(String, String, Value)> = target(&server)
        .preview(
            SyncWriteMode::CreateOnly,
            &[ann(), record("gone@example.com", SyncAction::Delete, &[])],
        )
        .into_iter()
        .map(|q| (q.method, q.path, q.body))
        .collect();
    assert_eq!(shown.len(), 4, "{shown:#?}");
    assert_eq!(shown[0].0, "POST");
    assert_eq!(shown[0].1, "contacts/search");
    assert_eq!(shown[1].0, "POST");
    assert_eq!(shown[1].1, "contacts (when none is found)");
    assert_eq!(shown[1].2["email"], json!("ann@example.com"));
    assert_eq!(
        shown[2].2,
        json!({"query": {"field": "email", "operator": "=", "value": "gone@example.com"}})
    );
    assert_eq!(
        (shown[3].0.as_str(), shown[3].2.clone()),
        ("PUT", json!({"unsubscribed_from_emails": true}))
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
