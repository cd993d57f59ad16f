//! Reverse-sync request shapes against a wiremock Stripe.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weft_core::{RecordOutcome, SyncAction, SyncRecord, SyncSpec, SyncTarget, SyncWriteMode};
use weft_http::{BudgetRegistry, HttpSettings};
use weft_stripe::{StripeConfig, StripeTarget};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk_test_WIREMOCK_SENTINEL";

fn target(server: &MockServer) -> StripeTarget {
    let key = weft_conformance::secret_file(KEY).unwrap();
    let mut config = StripeConfig::new(Some(server.uri()), key);
    config.http = Some(HttpSettings {
        max_attempts: 2,
        initial_backoff_ms: 1,
        max_backoff_ms: 2,
        ..HttpSettings::default()
    });
    StripeTarget::new(&config, &BudgetRegistry::new()).unwrap()
}

fn record(action: SyncAction, email: &str, row_hash: &str, fields: &[(&str, Value)]) -> SyncRecord {
    let mut all: BTreeMap<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if action != SyncAction::Delete {
        all.entry("email".into()).or_insert_with(|| json!(email));
    }
    SyncRecord {
        key: email.into(),
        action,
        row_hash: row_hash.into(),
        fields: all,
    }
}

fn customer(id: &str, email: &str, created: i64) -> Value {
    json!({"id": id, "object": "customer", "email": email, "created": created})
}

fn search_result(data: Vec<Value>) -> Value {
    json!({"object": "search_result", "data": data, "has_more": false, "next_page": null, "url": "/v1/customers/search"})
}

/// Mounts a search for `email` answering `data`.
async fn search(server: &MockServer, email: &str, data: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path("/v1/customers/search"))
        .and(query_param("query", format!("email:'{email}'").as_str()))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(search_result(data)))
        .mount(server)
        .await;
}

async fn posts(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect()
}

fn form(r: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn idempotency_key(r: &Request) -> String {
    r.headers
        .get("idempotency-key")
        .expect("an Idempotency-Key header")
        .to_str()
        .unwrap()
        .to_string()
}

fn ok(key: &str) -> RecordOutcome {
    RecordOutcome {
        key: key.into(),
        result: Ok(()),
    }
}

#[tokio::test]
async fn upsert_searches_by_email_and_updates_the_newest_customer_with_metadata() {
    let server = MockServer::start().await;
    search(
        &server,
        "ann@x.com",
        vec![
            customer("cus_old", "ann@x.com", 100),
            customer("cus_new", "Ann@X.com", 200),
            customer("cus_mid", "ann@x.com", 150),
        ],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers/cus_new"))
        .respond_with(ResponseTemplate::new(200).set_body_json(customer(
            "cus_new",
            "ann@x.com",
            200,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let r = record(
        SyncAction::Create,
        "ann@x.com",
        "h1",
        &[
            ("name", json!("Ann")),
            ("metadata.plan", json!("pro")),
            ("address.country", json!("NO")),
        ],
    );
    let out = target(&server)
        .apply(SyncWriteMode::Upsert, vec![r])
        .await
        .unwrap();
    assert_eq!(out, vec![ok("ann@x.com")]);
    let posts = posts(&server).await;
    assert_eq!(posts.len(), 1, "an update only, no create");
    assert_eq!(posts[0].url.path(), "/v1/customers/cus_new");
    assert_eq!(
        form(&posts[0]),
        vec![
            ("address[country]".to_string(), "NO".to_string()),
            ("email".into(), "ann@x.com".into()),
            ("metadata[plan]".into(), "pro".into()),
            ("name".into(), "Ann".into()),
        ]
    );
    assert!(idempotency_key(&posts[0]).starts_with("weft-"));
    assert_eq!(
        posts[0].headers.get("authorization").unwrap(),
        format!("Bearer {KEY}").as_str()
    );
}

#[tokio::test]
async fn search_quotes_are_escaped() {
    let server = MockServer::start().await;
    search(
        &server,
        r"o\'neil@x.com",
        vec![customer("cus_1", "o'neil@x.com", 1)],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers/cus_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_1"})))
        .expect(1)
        .mount(&server)
        .await;
    let out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![record(SyncAction::Update, "o'neil@x.com", "h", &[])],
        )
        .await
        .unwrap();
    assert_eq!(out, vec![ok("o'neil@x.com")]);
}

#[tokio::test]
async fn creates_only_when_not_found_with_a_key_stable_per_record_and_row_hash() {
    let server = MockServer::start().await;
    search(&server, "bob@x.com", vec![]).await;
    // A customer with another email in the answer is not a match.
    search(
        &server,
        "eve@x.com",
        vec![customer("cus_9", "eve2@x.com", 1)],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(customer("cus_2", "bob@x.com", 5)))
        .expect(4)
        .mount(&server)
        .await;
    let t = target(&server);
    let bob = |hash: &str| {
        record(
            SyncAction::Create,
            "bob@x.com",
            hash,
            &[("name", json!("Bob"))],
        )
    };
    for r in [bob("h1"), bob("h1"), bob("h2")] {
        let out = t.apply(SyncWriteMode::Upsert, vec![r]).await.unwrap();
        assert_eq!(out, vec![ok("bob@x.com")]);
    }
    let eve = record(SyncAction::Create, "eve@x.com", "h1", &[]);
    t.apply(SyncWriteMode::Mirror, vec![eve]).await.unwrap();
    let posts = posts(&server).await;
    assert!(posts.iter().all(|p| p.url.path() == "/v1/customers"));
    let keys: Vec<String> = posts.iter().map(idempotency_key).collect();
    assert_eq!(keys[0], keys[1], "the same record gets the same key");
    assert_ne!(keys[0], keys[2], "a changed row hash gets another key");
    assert_ne!(keys[0], keys[3]);
    assert_eq!(
        keys[0],
        weft_stripe::idempotency_key("bob@x.com", "create", "h1")
    );
    assert_eq!(
        form(&posts[0]),
        vec![
            ("email".to_string(), "bob@x.com".to_string()),
            ("name".into(), "Bob".into())
        ]
    );
}

#[tokio::test]
async fn update_only_and_create_only_reject_without_posting() {
    let server = MockServer::start().await;
    search(&server, "new@x.com", vec![]).await;
    search(
        &server,
        "old@x.com",
        vec![customer("cus_o", "old@x.com", 1)],
    )
    .await;
    let t = target(&server);
    let out = t
        .apply(
            SyncWriteMode::UpdateOnly,
            vec![record(SyncAction::Update, "new@x.com", "h", &[])],
        )
        .await
        .unwrap();
    let reason = out[0].result.as_ref().unwrap_err();
    assert!(reason.contains("update_only"), "{reason}");
    let out = t
        .apply(
            SyncWriteMode::CreateOnly,
            vec![record(SyncAction::Create, "old@x.com", "h", &[])],
        )
        .await
        .unwrap();
    let reason = out[0].result.as_ref().unwrap_err();
    assert!(
        reason.contains("create_only") && reason.contains("cus_o"),
        "{reason}"
    );
    assert_eq!(posts(&server).await.len(), 0);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_400_is_that_records_reject_with_stripes_message() {
    let server = MockServer::start().await;
    search(&server, "bad@x", vec![]).await;
    search(&server, "good@x.com", vec![]).await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(wiremock::matchers::body_string_contains("bad%40x"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "email_invalid",
            "message": "Invalid email address: bad@x",
            "param": "email",
            "type": "invalid_request_error"
        }})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(customer("cus_g", "good@x.com", 1)))
        .mount(&server)
        .await;
    let mut out = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![
                record(SyncAction::Create, "bad@x", "h", &[]),
                record(SyncAction::Create, "good@x.com", "h", &[]),
            ],
        )
        .await
        .unwrap();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        out,
        vec![
            RecordOutcome {
                key: "bad@x".into(),
                result: Err("Invalid email address: bad@x (email_invalid)".into()),
            },
            ok("good@x.com"),
        ]
    );
}

#[tokio::test]
async fn a_403_or_a_500_fails_the_whole_batch() {
    for status in [403, 500] {
        let server = MockServer::start().await;
        search(&server, "ann@x.com", vec![]).await;
        Mock::given(method("POST"))
            .and(path("/v1/customers"))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(json!({"error": {
                    "message": "nope", "type": "invalid_request_error"
                }})),
            )
            .mount(&server)
            .await;
        let e = target(&server)
            .apply(
                SyncWriteMode::Upsert,
                vec![record(SyncAction::Create, "ann@x.com", "h", &[])],
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&status.to_string()), "{e}");
        assert!(!e.contains(KEY), "{e}");
    }
}

#[tokio::test]
async fn mirror_deletes_the_customer_found_by_the_key_and_acknowledges_a_missing_one() {
    let server = MockServer::start().await;
    search(
        &server,
        "gone@x.com",
        vec![customer("cus_g", "gone@x.com", 1)],
    )
    .await;
    search(&server, "never@x.com", vec![]).await;
    Mock::given(method("DELETE"))
        .and(path("/v1/customers/cus_g"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_g", "object": "customer", "deleted": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut out = target(&server)
        .apply(
            SyncWriteMode::Mirror,
            vec![
                record(SyncAction::Delete, "gone@x.com", "", &[]),
                record(SyncAction::Delete, "never@x.com", "", &[]),
                record(SyncAction::Delete, "u-17", "", &[]),
            ],
        )
        .await
        .unwrap();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(out[0], ok("gone@x.com"));
    assert_eq!(out[1], ok("never@x.com"));
    assert!(out[2].result.as_ref().unwrap_err().contains("primary key"));
    let deletes = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .count();
    assert_eq!(deletes, 1);
}

#[tokio::test]
async fn a_replayed_update_is_sent_again_under_a_fresh_key() {
    let server = MockServer::start().await;
    search(
        &server,
        "ann@x.com",
        vec![customer("cus_a", "ann@x.com", 1)],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers/cus_a"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Idempotent-Replayed", "true")
                .set_body_json(customer("cus_a", "ann@x.com", 1)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers/cus_a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(customer("cus_a", "ann@x.com", 1)))
        .mount(&server)
        .await;
    let r = record(
        SyncAction::Update,
        "ann@x.com",
        "h1",
        &[("name", json!("A"))],
    );
    let out = target(&server)
        .apply(SyncWriteMode::Upsert, vec![r])
        .await
        .unwrap();
    assert_eq!(out, vec![ok("ann@x.com")]);
    let posts = posts(&server).await;
    assert_eq!(posts.len(), 2);
    assert_ne!(idempotency_key(&posts[0]), idempotency_key(&posts[1]));
    assert_eq!(form(&posts[0]), form(&posts[1]));
}

#[tokio::test]
async fn a_replayed_create_of_a_deleted_customer_creates_again() {
    let server = MockServer::start().await;
    search(&server, "ann@x.com", vec![]).await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Idempotent-Replayed", "true")
                .set_body_json(customer("cus_old", "ann@x.com", 1)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(customer("cus_new", "ann@x.com", 2)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers/cus_old"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_old", "object": "customer", "deleted": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let r = record(SyncAction::Create, "ann@x.com", "h1", &[]);
    let out = target(&server)
        .apply(SyncWriteMode::Upsert, vec![r])
        .await
        .unwrap();
    assert_eq!(out, vec![ok("ann@x.com")]);
    let posts = posts(&server).await;
    assert_eq!(posts.len(), 2);
    assert_ne!(idempotency_key(&posts[0]), idempotency_key(&posts[1]));
}

#[test]
fn check_names_unknown_fields_and_needs_the_email_as_key_for_mirror() {
    let t = StripeTarget::new(
        &StripeConfig::new(None, weft_conformance::secret_file(KEY).unwrap()),
        &BudgetRegistry::new(),
    )
    .unwrap();
    let spec = |mode, mapping: &[(&str, &str)]| SyncSpec {
        name: "people".into(),
        model: "models.people".into(),
        primary_key: "email_key".into(),
        mode,
        mapping: mapping
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let good = [
        ("email", "email_key"),
        ("metadata.plan", "plan"),
        ("address.city", "city"),
    ];
    assert!(t.check(&spec(SyncWriteMode::Mirror, &good)).is_ok());
    let e = t
        .check(&spec(
            SyncWriteMode::Upsert,
            &[("email", "e"), ("nickname", "n")],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`nickname` is not a Stripe customer field"),
        "{e}"
    );
    let e = t
        .check(&spec(SyncWriteMode::Mirror, &[("email", "e")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("primary key `email_key`"), "{e}");
    assert!(
        t.check(&spec(SyncWriteMode::Upsert, &[("email", "e")]))
            .is_ok()
    );
    assert_eq!(t.required_fields(), vec!["email".to_string()]);
    assert_eq!(t.modes(), SyncWriteMode::ALL);
}

#[tokio::test]
async fn a_dry_run_preview_shows_the_search_and_the_write_and_sends_nothing() {
    let server = MockServer::start().await;
    let shown: Vec<(String, String, Value)> = target(&server)
        .preview(
            SyncWriteMode::UpdateOnly,
            &[record(
                SyncAction::Update,
                "ann@x.com",
                "h1",
                &[("name", json!("Ann")), ("metadata.plan", json!("pro"))],
            )],
        )
        .into_iter()
        .map(|q| (q.method, q.path, q.body))
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                "GET".to_string(),
                "v1/customers/search?query=email:'ann@x.com'".to_string(),
                Value::Null
            ),
            (
                "POST".to_string(),
                "v1/customers/{id of the customer found}".to_string(),
                json!({"email": "ann@x.com", "name": "Ann", "metadata[plan]": "pro"})
            ),
        ]
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
