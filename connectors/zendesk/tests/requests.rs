//! Request shapes, cursor paging and error handling against a wiremock Zendesk.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::Engine as _;
use serde_json::{Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::StreamState;
use weft_http::BudgetRegistry;
use weft_zendesk::{ZendeskConfig, ZendeskSource};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ZENDESK_TOKEN_WIREMOCK_SENTINEL";
const EMAIL: &str = "agent@acme.example";

fn source(server: &MockServer) -> ZendeskSource {
    let token = weft_conformance::secret_file(TOKEN).unwrap();
    let mut config = ZendeskConfig::new("unused", EMAIL, token);
    config.base_url = Some(server.uri());
    config.start_time = 1_700_000_000;
    config.page_size = 2;
    ZendeskSource::new(config, &BudgetRegistry::new()).unwrap()
}

fn basic() -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}/token:{TOKEN}"));
    format!("Basic {b}")
}

async fn read(src: &ZendeskSource, stream: &str, state: Option<StreamState>) -> StreamRead {
    let r = read_stream(src, stream).state(state).await;
    assert_eq!((r.batches, r.notices.len()), (0, 0), "{:?}", r.notices);
    r
}

fn export_page(server: &MockServer, tickets: Value, cursor: &str, end: bool) -> Value {
    json!({
        "tickets": tickets,
        "after_url": format!("{}/api/v2/incremental/tickets/cursor.json?cursor={cursor}", server.uri()),
        "after_cursor": cursor,
        "before_url": null,
        "before_cursor": null,
        "end_of_stream": end,
    })
}

#[tokio::test]
async fn ticket_export_starts_at_start_time_follows_after_url_and_stops_at_end_of_stream() {
    let server = MockServer::start().await;
    let first = export_page(
        &server,
        json!([{"id": 1, "status": "open", "updated_at": "2026-01-01T00:00:00Z"},
               {"id": 2, "status": "deleted", "updated_at": "2026-01-02T00:00:00Z"}]),
        "c1",
        false,
    );
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/tickets/cursor.json"))
        .and(query_param("start_time", "1700000000"))
        .and(query_param("per_page", "2"))
        .and(query_param_is_missing("cursor"))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(first))
        .expect(1)
        .mount(&server)
        .await;
    // The last page still carries an after_url: end_of_stream stops the read.
    let last = export_page(
        &server,
        json!([{"id": 3, "status": "new", "updated_at": "2026-01-03T00:00:00Z"}]),
        "c2",
        true,
    );
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/tickets/cursor.json"))
        .and(query_param("cursor", "c1"))
        .and(query_param_is_missing("start_time"))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(last))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(&server), "tickets", None).await;
    assert_eq!(r.error_text(), None);
    let ids: Vec<u64> = r
        .records
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert!(r.records[0].get("_weft_deleted_at").is_none());
    assert_eq!(r.records[1]["_weft_deleted_at"], "2026-01-02T00:00:00Z");
    let cursors: Vec<String> = r.states.iter().map(|s| s.get("cursor").unwrap()).collect();
    assert_eq!(cursors, ["c1", "c2"]);
    assert_eq!(r.metrics.requests, 2);
}

#[tokio::test]
async fn a_saved_cursor_resumes_the_export_and_429_waits_for_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/users/cursor.json"))
        .and(query_param("cursor", "saved"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": "APIRateLimitExceeded"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/users/cursor.json"))
        .and(query_param("cursor", "saved"))
        .and(query_param_is_missing("start_time"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [{"id": 9, "updated_at": "2026-01-01T00:00:00Z"}],
            "after_url": null, "after_cursor": "next", "end_of_stream": true,
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(
        &source(&server),
        "users",
        Some(StreamState(json!({"cursor": "saved"}))),
    )
    .await;
    assert_eq!(r.error_text(), None);
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.states, [StreamState(json!({"cursor": "next"}))]);
    assert_eq!((r.metrics.rate_limited, r.metrics.retries), (1, 1));
    assert!(r.metrics.wait_ms >= 1_000, "{}", r.metrics.wait_ms);
}

#[tokio::test]
async fn organizations_drop_the_repeated_boundary_and_save_end_time() {
    let server = MockServer::start().await;
    let org = |id: u64, at: &str| json!({"id": id, "updated_at": at});
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/organizations.json"))
        .and(query_param("start_time", "1700000000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "organizations": [org(1, "2023-11-14T22:13:20Z"), org(2, "2023-11-14T22:13:30Z")],
            "next_page": format!("{}/api/v2/incremental/organizations.json?start_time=1700000010", server.uri()),
            "count": 2, "end_of_stream": false, "end_time": 1_700_000_010,
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/organizations.json"))
        .and(query_param("start_time", "1700000010"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "organizations": [org(2, "2023-11-14T22:13:30Z"), org(3, "2023-11-14T22:13:40Z")],
            "next_page": format!("{}/api/v2/incremental/organizations.json?start_time=1700000020", server.uri()),
            "count": 2, "end_of_stream": true, "end_time": 1_700_000_020,
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(&server), "organizations", None).await;
    assert_eq!(r.error_text(), None);
    let ids: Vec<u64> = r
        .records
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3], "org 2 once");
    let starts: Vec<i64> = r
        .states
        .iter()
        .map(|s| s.get("start_time").unwrap())
        .collect();
    assert_eq!(starts, [1_700_000_010, 1_700_000_020]);
}

#[tokio::test]
async fn groups_page_with_links_next_and_a_401_is_an_error_without_the_token() {
    let server = MockServer::start().await;
    let group = |id: u64| json!({"id": id, "name": format!("g{id}")});
    Mock::given(method("GET"))
        .and(path("/api/v2/groups.json"))
        .and(query_param("page[size]", "100"))
        .and(query_param_is_missing("page[after]"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "groups": [group(1), group(2)],
            "meta": {"has_more": true, "after_cursor": "a1"},
            "links": {"next": format!("{}/api/v2/groups.json?page%5Bafter%5D=a1&page%5Bsize%5D=100", server.uri())},
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/groups.json"))
        .and(query_param("page[after]", "a1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "groups": [group(3)],
            "meta": {"has_more": false, "after_cursor": "a2"},
            "links": {"next": null},
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(&server), "groups", None).await;
    assert_eq!(r.error_text(), None);
    assert_eq!(r.records.len(), 3);
    assert_eq!(r.states.len(), 1);

    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"error": "Couldn't authenticate you"})),
        )
        .mount(&denied)
        .await;
    let r = read(&source(&denied), "ticket_fields", None).await;
    let err = r.error_text().unwrap();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    assert!(r.records.is_empty() && r.states.is_empty());
}

fn target(server: &MockServer) -> weft_zendesk::ZendeskTarget {
    let token = weft_conformance::secret_file(TOKEN).unwrap();
    let mut config = ZendeskConfig::new("unused", EMAIL, token);
    config.base_url = Some(server.uri());
    weft_zendesk::ZendeskTarget::new(&config, &BudgetRegistry::new())
        .unwrap()
        .with_poll_policy(weft_http::PollPolicy {
            first: std::time::Duration::from_millis(1),
            max: std::time::Duration::from_millis(2),
            limit: std::time::Duration::from_secs(5),
        })
}

fn sync_record(
    key: &str,
    action: weft_core::SyncAction,
    name: Option<&str>,
) -> weft_core::SyncRecord {
    let mut fields = std::collections::BTreeMap::new();
    if action != weft_core::SyncAction::Delete {
        fields.insert("email".to_string(), json!(key));
        fields.insert("name".to_string(), json!(name));
    }
    weft_core::SyncRecord {
        key: key.into(),
        action,
        row_hash: format!("h-{key}"),
        fields,
    }
}

/// Answers the job's status: `working` on the first poll, then `done`.
struct JobThenDone {
    polls: std::sync::atomic::AtomicU32,
    done: Value,
}

impl wiremock::Respond for JobThenDone {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 0 {
            ResponseTemplate::new(200)
                .set_body_json(json!({"job_status": {"id": "j1", "status": "working"}}))
        } else {
            ResponseTemplate::new(200).set_body_json(json!({"job_status": self.done.clone()}))
        }
    }
}

#[tokio::test]
async fn users_are_upserted_in_one_call_polled_and_mapped_back_by_index() {
    use weft_core::{SyncAction, SyncTarget, SyncWriteMode};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/users/create_or_update_many.json"))
        .and(header("authorization", basic().as_str()))
        .and(wiremock::matchers::body_json(json!({"users": [
            {"email": "ann@x.com", "name": "Ann"},
            {"email": "bob@x.com", "name": "Bob"},
            {"email": "gone@x.com", "suspended": true},
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"job_status": {"id": "j1", "status": "queued", "results": null}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let done = json!({"id": "j1", "status": "completed", "results": [
        {"index": 1, "id": 11, "status": "Failed", "success": false,
         "error": "InvalidValue", "details": "Name: is too short"},
        {"index": 0, "id": 10, "status": "Created", "success": true},
        {"index": 2, "id": 12, "status": "Updated", "success": true},
    ]});
    Mock::given(method("GET"))
        .and(path("/api/v2/job_statuses/j1.json"))
        .respond_with(JobThenDone {
            polls: Default::default(),
            done,
        })
        .expect(2)
        .mount(&server)
        .await;
    let mut out = target(&server)
        .apply(
            SyncWriteMode::Mirror,
            vec![
                sync_record("ann@x.com", SyncAction::Create, Some("Ann")),
                sync_record("bob@x.com", SyncAction::Update, Some("Bob")),
                sync_record("gone@x.com", SyncAction::Delete, None),
                sync_record("no-email", SyncAction::Delete, None),
            ],
        )
        .await
        .unwrap();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    let got: Vec<(String, Result<(), String>)> =
        out.into_iter().map(|o| (o.key, o.result)).collect();
    assert_eq!(got[0], ("ann@x.com".into(), Ok(())));
    assert_eq!(
        got[1],
        (
            "bob@x.com".into(),
            Err("InvalidValue: Name: is too short".into())
        )
    );
    assert_eq!(got[2], ("gone@x.com".into(), Ok(())));
    assert_eq!(got[3].0, "no-email");
    assert!(
        got[3].1.as_ref().unwrap_err().contains("primary key"),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_dry_run_preview_shows_the_call_and_the_poll_and_sends_nothing() {
    use weft_core::{SyncAction, SyncTarget, SyncWriteMode};
    let server = MockServer::start().await;
    let requests = target(&server).preview(
        SyncWriteMode::Mirror,
        &[
            sync_record("ann@x.com", SyncAction::Create, Some("Ann")),
            sync_record("gone@x.com", SyncAction::Delete, None),
        ],
    );
    let shown: Vec<(String, String, Value)> = requests
        .into_iter()
        .map(|q| (q.method, q.path, q.body))
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                "POST".to_string(),
                "api/v2/users/create_or_update_many.json".to_string(),
                json!({"users": [
                    {"email": "ann@x.com", "name": "Ann"},
                    {"email": "gone@x.com", "suspended": true},
                ]})
            ),
            (
                "GET".to_string(),
                "api/v2/job_statuses/{job id}.json (until completed)".to_string(),
                Value::Null
            ),
        ]
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_job_fails_the_batch_naming_the_job() {
    use weft_core::{SyncAction, SyncTarget, SyncWriteMode};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/users/create_or_update_many.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"job_status": {"id": "j9", "status": "queued"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/job_statuses/j9.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"job_status": {"id": "j9", "status": "failed", "message": "Internal error"}}),
        ))
        .mount(&server)
        .await;
    let err = target(&server)
        .apply(
            SyncWriteMode::Upsert,
            vec![sync_record("ann@x.com", SyncAction::Create, Some("Ann"))],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "zendesk job j9 ended failed: Internal error"
    );
    assert!(!err.to_string().contains(TOKEN));
}
