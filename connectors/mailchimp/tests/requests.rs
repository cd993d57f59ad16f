//! Request shapes and answer mapping against a wiremock Mailchimp.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};
use weft_core::{RecordOutcome, SyncAction, SyncRecord, SyncTarget, SyncWriteMode};
use weft_http::{BudgetRegistry, HttpSettings};
use weft_mailchimp::{MailchimpConfig, MailchimpTarget, NO_RESULT};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "SENTINELKEY0123-us6";

fn config(server: &MockServer) -> MailchimpConfig {
    let mut config = MailchimpConfig::new(weft_conformance::secret_file(KEY).unwrap(), "list1");
    config.base_url = Some(format!("{}/3.0", server.uri()));
    config.http = Some(HttpSettings {
        max_attempts: 3,
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        min_retry_after_ms: 1,
        ..HttpSettings::default()
    });
    config
}

fn target(server: &MockServer) -> MailchimpTarget {
    MailchimpTarget::new(&config(server), &BudgetRegistry::new()).unwrap()
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

fn person(email: &str, action: SyncAction) -> SyncRecord {
    record(
        &email.to_lowercase(),
        action,
        &[
            ("email_address", json!(email)),
            ("merge_fields.FNAME", json!("Ann")),
            ("merge_fields.LNAME", json!("Lee")),
        ],
    )
}

fn outcomes(mut v: Vec<RecordOutcome>) -> Vec<(String, Result<(), String>)> {
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v.into_iter().map(|o| (o.key, o.result)).collect()
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Answers every member as created (lowercased, as Mailchimp does).
struct EchoCreated;

impl Respond for EchoCreated {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let members: Vec<Value> = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| json!({"email_address": m["email_address"].as_str().unwrap().to_lowercase(), "status": "subscribed"}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "new_members": members, "updated_members": [], "errors": [],
            "total_created": members.len(), "total_updated": 0, "error_count": 0
        }))
    }
}

#[tokio::test]
async fn batch_subscribe_request_shape() {
    let server = MockServer::start().await;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anystring:{KEY}"))
    );
    Mock::given(method("POST"))
        .and(path("/3.0/lists/list1"))
        .and(header("authorization", auth.as_str()))
        .respond_with(EchoCreated)
        .expect(1)
        .mount(&server)
        .await;
    let t = target(&server);
    assert_eq!(t.name(), "mailchimp");
    assert_eq!(t.required_fields(), vec!["email_address".to_string()]);
    assert_eq!(t.max_batch(), 500);
    let out = t
        .apply(
            SyncWriteMode::Upsert,
            vec![
                record(
                    "ann@example.com",
                    SyncAction::Create,
                    &[
                        ("email_address", json!("ann@example.com")),
                        ("merge_fields.FNAME", json!("Ann")),
                        ("merge_fields.LNAME", Value::Null),
                        ("language", json!("fr")),
                        ("vip", json!(true)),
                    ],
                ),
                record(
                    "bob@example.com",
                    SyncAction::Update,
                    &[
                        ("email_address", json!("bob@example.com")),
                        ("merge_fields.FNAME", json!("Bob")),
                    ],
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes(out),
        vec![
            ("ann@example.com".to_string(), Ok(())),
            ("bob@example.com".to_string(), Ok(()))
        ]
    );
    let bodies = bodies(&server).await;
    assert_eq!(
        bodies,
        vec![json!({
            "update_existing": true,
            "members": [
                {
                    "email_address": "ann@example.com",
                    "status": "subscribed",
                    "status_if_new": "subscribed",
                    "merge_fields": {"FNAME": "Ann", "LNAME": ""},
                    "language": "fr",
                    "vip": true
                },
                {
                    // An update never resets the subscription status.
                    "email_address": "bob@example.com",
                    "status_if_new": "subscribed",
                    "merge_fields": {"FNAME": "Bob"}
                }
            ]
        })]
    );
}

#[tokio::test]
async fn twelve_hundred_records_go_in_calls_of_500_500_200() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/3.0/lists/list1"))
        .respond_with(EchoCreated)
        .expect(3)
        .mount(&server)
        .await;
    let records: Vec<SyncRecord> = (0..1200)
        .map(|i| person(&format!("p{i:04}@example.com"), SyncAction::Create))
        .collect();
    let out = target(&server)
        .apply(SyncWriteMode::Upsert, records)
        .await
        .unwrap();
    assert_eq!(out.len(), 1200);
    assert!(out.iter().all(|o| o.result.is_ok()));
    let sizes: Vec<usize> = bodies(&server)
        .await
        .iter()
        .map(|b| b["members"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![500, 500, 200]);
    let first = &bodies(&server).await[2]["members"][0];
    assert_eq!(first["email_address"], "p1000@example.com");
}

#[tokio::test]
async fn answers_map_per_member_case_insensitively_and_silence_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/3.0/lists/list1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "new_members": [{"email_address": "ann@example.com", "status": "subscribed"}],
            "updated_members": [{"email_address": "bob@example.com", "status": "subscribed"}],
            "errors": [{
                "email_address": "fake@example",
                "error": "fake@example looks fake or invalid, please enter a real email address.",
                "error_code": "ERROR_GENERIC"
            }],
            "total_created": 1, "total_updated": 1, "error_count": 1
        })))
        .mount(&server)
        .await;
    let out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![
                person("Ann@Example.COM", SyncAction::Create),
                person("bob@example.com", SyncAction::Update),
                person("fake@example", SyncAction::Create),
                person("dan@example.com", SyncAction::Create),
                record(
                    "eve@example.com",
                    SyncAction::Create,
                    &[("email_address", json!(""))],
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes(out),
        vec![
            ("ann@example.com".to_string(), Ok(())),
            ("bob@example.com".to_string(), Ok(())),
            ("dan@example.com".to_string(), Err(NO_RESULT.to_string())),
            (
                "eve@example.com".to_string(),
                Err("`email_address` is missing or empty".to_string())
            ),
            (
                "fake@example".to_string(),
                Err(
                    "fake@example looks fake or invalid, please enter a real email address."
                        .to_string()
                )
            ),
        ]
    );
    // The record without an email was never sent.
    let sent = bodies(&server).await[0]["members"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(sent, 4);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/3.0/lists/list1"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/3.0/lists/list1"))
        .respond_with(EchoCreated)
        .with_priority(2)
        .mount(&server)
        .await;
    let t = target(&server);
    let out = t
        .apply(
            SyncWriteMode::Upsert,
            vec![person("ann@example.com", SyncAction::Create)],
        )
        .await
        .unwrap();
    assert_eq!(outcomes(out), vec![("ann@example.com".to_string(), Ok(()))]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    let m = t.metrics().snapshot();
    assert_eq!((m.requests, m.retries), (2, 1));
}

#[tokio::test]
async fn unauthorized_fails_the_batch_naming_the_api_not_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/3.0/lists/list1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": "API Key Invalid",
            "status": 401,
            "detail": format!("Your API key may be invalid: {KEY}")
        })))
        .mount(&server)
        .await;
    let err = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![person("ann@example.com", SyncAction::Create)],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("mailchimp: not authorized (HTTP 401)"),
        "{err}"
    );
    assert!(err.contains("API Key Invalid"), "{err}");
    assert!(!err.contains("SENTINEL"), "{err}");
}

#[tokio::test]
async fn mirror_deletes_unsubscribe_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/3.0/lists/list1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "new_members": [],
            "updated_members": [{"email_address": "gone@example.com", "status": "unsubscribed"}],
            "errors": [], "total_created": 0, "total_updated": 1, "error_count": 0
        })))
        .mount(&server)
        .await;
    let out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![
                record("gone@example.com", SyncAction::Delete, &[]),
                record("42", SyncAction::Delete, &[]),
            ],
        )
        .await
        .unwrap();
    let out = outcomes(out);
    assert_eq!(out[1], ("gone@example.com".to_string(), Ok(())));
    assert_eq!(out[0].0, "42");
    assert!(
        out[0]
            .1
            .as_ref()
            .unwrap_err()
            .contains("primary key must be the email")
    );
    assert_eq!(
        bodies(&server).await,
        vec![json!({
            "update_existing": true,
            "members": [{"email_address": "gone@example.com", "status": "unsubscribed"}]
        })]
    );
}

#[tokio::test]
async fn nothing_sendable_means_no_call() {
    let server = MockServer::start().await;
    let out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![record(
                "x@example.com",
                SyncAction::Create,
                &[
                    ("email_address", json!("x@example.com")),
                    ("status", json!("active")),
                ],
            )],
        )
        .await
        .unwrap();
    assert!(
        out[0]
            .result
            .as_ref()
            .unwrap_err()
            .contains("`status` must be one of")
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
