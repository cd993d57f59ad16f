//! The Zoom destination's requests against a wiremock Zoom: registration
//! bodies, status updates of at most 30, create_only's listing, rejects,
//! batch failures, the dry-run preview, and config checks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weft_core::{SyncAction, SyncRecord, SyncSpec, SyncTarget, SyncWriteMode, check_sync};
use weft_http::{BudgetRegistry, HttpSettings};
use weft_zoom::{MirrorAction, ZoomConfig, ZoomTarget};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "ZOOM_SYNC_SECRET_SENTINEL";
const WEBINAR: i64 = 81_000_000_007;

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok", "token_type": "bearer", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    server
}

fn target(server: &MockServer, edit: impl FnOnce(&mut ZoomConfig)) -> ZoomTarget {
    let mut config = ZoomConfig::new(
        "acct-1",
        "client-1",
        weft_conformance::secret_file(SECRET).unwrap(),
    );
    config.base_url = Some(server.uri());
    config.token_url = Some(format!("{}/oauth/token", server.uri()));
    config.webinar_id = Some(WEBINAR);
    config.http = Some(HttpSettings {
        max_attempts: 2,
        initial_backoff_ms: 1,
        max_backoff_ms: 2,
        ..HttpSettings::default()
    });
    edit(&mut config);
    ZoomTarget::new(&config, &BudgetRegistry::new()).unwrap()
}

fn person(action: SyncAction, email: &str, first: &str) -> SyncRecord {
    let fields: BTreeMap<String, Value> = match action {
        SyncAction::Delete => BTreeMap::new(),
        _ => [("email", json!(email)), ("first_name", json!(first))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    };
    SyncRecord {
        key: email.to_lowercase(),
        action,
        row_hash: "h".into(),
        fields,
    }
}

fn spec(mode: SyncWriteMode, mapping: &[(&str, &str)]) -> SyncSpec {
    SyncSpec {
        name: "invites".into(),
        model: "models.people".into(),
        primary_key: "email".into(),
        mode,
        mapping: mapping
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn writes(server: &MockServer, verb: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() != "/oauth/token")
        .collect()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[tokio::test]
async fn mirror_registers_new_people_then_approves_30_per_call_and_cancels_the_gone() {
    let server = server().await;
    let registrants = format!("/v2/webinars/{WEBINAR}/registrants");
    Mock::given(method("POST"))
        .and(path(registrants.as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"registrant_id": "r1"})))
        .expect(31)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{registrants}/status").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(3)
        .mount(&server)
        .await;
    let t = target(&server, |_| {});
    let mut records: Vec<SyncRecord> = (0..31)
        .map(|i| person(SyncAction::Create, &format!("P{i:02}@X.com"), "P"))
        .collect();
    let out = t
        .apply(SyncWriteMode::Mirror, records.drain(..30).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.result.is_ok()), "{out:?}");
    let mixed = vec![
        records.remove(0),
        person(SyncAction::Update, "kept@x.com", "Renamed"),
        person(SyncAction::Delete, "Gone@X.com", ""),
    ];
    let out = t.apply(SyncWriteMode::Mirror, mixed).await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| o.result.is_ok()), "{out:?}");

    let posts = writes(&server, "POST").await;
    assert_eq!(posts.len(), 31);
    assert_eq!(
        body(&posts[0]),
        json!({"email": "P00@X.com", "first_name": "P"})
    );
    let puts: Vec<Value> = writes(&server, "PUT").await.iter().map(body).collect();
    assert_eq!(puts.len(), 3);
    assert_eq!(puts[0]["action"], "approve");
    assert_eq!(puts[0]["registrants"].as_array().unwrap().len(), 30);
    assert_eq!(puts[0]["registrants"][0], json!({"email": "p00@x.com"}));
    // Second batch: the new person and the changed one approved together, the
    // one who left cancelled.
    let approve = puts
        .iter()
        .find(|p| p["action"] == "approve" && p["registrants"].as_array().unwrap().len() == 2)
        .unwrap();
    assert_eq!(
        approve["registrants"],
        json!([{"email": "p30@x.com"}, {"email": "kept@x.com"}])
    );
    let cancel = puts.iter().find(|p| p["action"] == "cancel").unwrap();
    assert_eq!(cancel["registrants"], json!([{"email": "gone@x.com"}]));
}

#[tokio::test]
async fn mirror_action_deny_denies_instead_of_cancelling() {
    let server = server().await;
    Mock::given(method("PUT"))
        .and(path(
            format!("/v2/webinars/{WEBINAR}/registrants/status").as_str(),
        ))
        .and(body_json(
            json!({"action": "deny", "registrants": [{"email": "a@x.com"}]}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let t = target(&server, |c| c.mirror_action = MirrorAction::Deny);
    let out = t
        .apply(
            SyncWriteMode::Mirror,
            vec![person(SyncAction::Delete, "a@x.com", "")],
        )
        .await
        .unwrap();
    assert_eq!(out[0].result, Ok(()));
}

#[tokio::test]
async fn create_only_lists_the_webinar_once_and_rejects_people_registered() {
    let server = server().await;
    let registrants = format!("/v2/webinars/{WEBINAR}/registrants");
    for (status, emails) in [
        ("approved", vec![" Old@X.com"]),
        ("pending", vec!["pend@x.com"]),
        ("denied", vec![]),
    ] {
        let items: Vec<Value> = emails
            .iter()
            .map(|e| json!({"id": "r", "email": e}))
            .collect();
        Mock::given(method("GET"))
            .and(path(registrants.as_str()))
            .and(query_param("status", status))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "page_size": 300, "total_records": items.len(), "next_page_token": "",
                "registrants": items
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(registrants.as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"registrant_id": "r2"})))
        .expect(2)
        .mount(&server)
        .await;
    let t = target(&server, |_| {});
    let first = vec![
        person(SyncAction::Create, "old@x.com", "Old"),
        person(SyncAction::Create, "new@x.com", "New"),
        person(SyncAction::Create, "pend@x.com", "Pending"),
    ];
    let out = t.apply(SyncWriteMode::CreateOnly, first).await.unwrap();
    let by_key: BTreeMap<&str, &Result<(), String>> =
        out.iter().map(|o| (o.key.as_str(), &o.result)).collect();
    assert_eq!(by_key["new@x.com"], &Ok(()));
    for key in ["old@x.com", "pend@x.com"] {
        let reason = by_key[key].as_ref().unwrap_err();
        assert!(
            reason.starts_with("already registered for webinar"),
            "{reason}"
        );
    }
    // The listing is not repeated, and the target remembers its own adds.
    let second = vec![
        person(SyncAction::Create, "new@x.com", "New"),
        person(SyncAction::Create, "later@x.com", "Later"),
    ];
    let out = t.apply(SyncWriteMode::CreateOnly, second).await.unwrap();
    assert!(
        out[0]
            .result
            .as_ref()
            .unwrap_err()
            .starts_with("already registered")
    );
    assert_eq!(out[1].result, Ok(()));
    assert!(
        writes(&server, "PUT").await.is_empty(),
        "create_only changes no status"
    );
}

#[tokio::test]
async fn a_registrants_4xx_is_its_reject_and_a_5xx_fails_the_batch() {
    let server = server().await;
    let registrants = format!("/v2/webinars/{WEBINAR}/registrants");
    Mock::given(method("POST"))
        .and(path(registrants.as_str()))
        .and(body_json(json!({"email": "bad", "first_name": "B"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 300, "message": "Validation Failed.",
            "errors": [{"field": "email", "message": "Invalid field."}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(registrants.as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"registrant_id": "r"})))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{registrants}/status").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let t = target(&server, |_| {});
    let out = t
        .apply(
            SyncWriteMode::Mirror,
            vec![
                person(SyncAction::Create, "bad", "B"),
                person(SyncAction::Create, "ok@x.com", "O"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        out[0].result,
        Err("Validation Failed. (code 300): invalid `email`".into())
    );
    assert_eq!(out[1].result, Ok(()));
    // Only the registered person is approved.
    let puts = writes(&server, "PUT").await;
    assert_eq!(puts.len(), 1);
    assert_eq!(
        body(&puts[0])["registrants"],
        json!([{"email": "ok@x.com"}])
    );

    let failing = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok", "token_type": "bearer", "expires_in": 3600
        })))
        .mount(&failing)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&failing)
        .await;
    let t = target(&failing, |_| {});
    let err = t
        .apply(
            SyncWriteMode::Mirror,
            vec![person(SyncAction::Delete, "a@x.com", "")],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("503"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
}

#[tokio::test]
async fn the_preview_lists_each_registration_and_status_update_without_sending() {
    let server = server().await;
    let t = target(&server, |_| {});
    let planned = t.preview(
        SyncWriteMode::Mirror,
        &[
            person(SyncAction::Create, "a@x.com", "A"),
            person(SyncAction::Delete, "b@x.com", ""),
        ],
    );
    let shown: Vec<(String, String, Value)> = planned
        .into_iter()
        .map(|p| (p.method, p.path, p.body))
        .collect();
    let registrants = format!("v2/webinars/{WEBINAR}/registrants");
    assert_eq!(
        shown,
        vec![
            (
                "POST".into(),
                registrants.clone(),
                json!({"email": "a@x.com", "first_name": "A"})
            ),
            (
                "PUT".into(),
                format!("{registrants}/status"),
                json!({"action": "approve", "registrants": [{"email": "a@x.com"}]})
            ),
            (
                "PUT".into(),
                format!("{registrants}/status"),
                json!({"action": "cancel", "registrants": [{"email": "b@x.com"}]})
            ),
        ]
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn config_checks_name_the_problem() {
    let server = server().await;
    let t = target(&server, |_| {});
    let ok = [("email", "email"), ("first_name", "first")];
    check_sync(&t, &spec(SyncWriteMode::Mirror, &ok)).unwrap();
    check_sync(&t, &spec(SyncWriteMode::CreateOnly, &ok)).unwrap();
    let err = check_sync(&t, &spec(SyncWriteMode::Upsert, &ok))
        .unwrap_err()
        .to_string();
    assert!(err.contains("supports: create_only, mirror"), "{err}");
    let err = check_sync(
        &t,
        &spec(
            SyncWriteMode::Mirror,
            &[("email", "email"), ("first_name", "f"), ("nick", "n")],
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`nick` is not a Zoom registrant field"),
        "{err}"
    );
    let err = check_sync(
        &t,
        &spec(
            SyncWriteMode::Mirror,
            &[("email", "work_email"), ("first_name", "f")],
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("must be mapped from the primary key"), "{err}");
    let err = check_sync(
        &t,
        &spec(
            SyncWriteMode::Mirror,
            &[("email", "email"), ("first_name", "f"), ("webinar_id", "w")],
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("do not map a `webinar_id` column"), "{err}");
    let none = target(&server, |c| c.webinar_id = None);
    let err = check_sync(&none, &spec(SyncWriteMode::CreateOnly, &ok))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no webinar"), "{err}");
    check_sync(
        &none,
        &spec(
            SyncWriteMode::CreateOnly,
            &[("email", "email"), ("first_name", "f"), ("webinar_id", "w")],
        ),
    )
    .unwrap();
    assert!(server.received_requests().await.unwrap().is_empty());
}
