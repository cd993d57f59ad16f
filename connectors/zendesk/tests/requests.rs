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

/// The cursor-paginated lists ask for the largest page (`page[size]=100`)
/// with basic auth, follow `links.next` (its `page[after]`) and stop when it
/// is null; every record is read once and the read ends with one checkpoint.
#[tokio::test]
async fn cursor_lists_ask_for_100_follow_links_next_and_stop_at_null() {
    for name in [
        "brands",
        "user_fields",
        "organization_fields",
        "group_memberships",
        "organization_memberships",
        "macros",
        "satisfaction_ratings",
        "ticket_metrics",
    ] {
        let server = MockServer::start().await;
        let endpoint = format!("/api/v2/{name}.json");
        let record = |id: u64| json!({"id": id, "url": format!("https://x/{name}/{id}.json")});
        Mock::given(method("GET"))
            .and(path(endpoint.as_str()))
            .and(header("authorization", basic().as_str()))
            .and(query_param("page[size]", "100"))
            .and(query_param_is_missing("page[after]"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                name: [record(1), record(2)],
                "meta": {"has_more": true, "after_cursor": "c1", "before_cursor": "c0"},
                "links": {"next": format!("{}{endpoint}?page%5Bafter%5D=c1&page%5Bsize%5D=100", server.uri()), "prev": null},
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(endpoint.as_str()))
            .and(header("authorization", basic().as_str()))
            .and(query_param("page[after]", "c1"))
            .and(query_param("page[size]", "100"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                name: [record(3)],
                "meta": {"has_more": false, "after_cursor": "c2", "before_cursor": "c2"},
                "links": {"next": null, "prev": null},
            })))
            .expect(1)
            .mount(&server)
            .await;
        let r = read(&source(&server), name, None).await;
        assert_eq!(r.error_text(), None, "{name}");
        let ids: Vec<u64> = r
            .records
            .iter()
            .map(|x| x["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3], "{name}");
        assert_eq!(r.pages, [2, 1], "{name}");
        assert_eq!(r.states.len(), 1, "{name}");
        assert!(r.last_state().unwrap().0["synced_at"].is_string(), "{name}");
        server.verify().await;
    }
}

/// Ticket forms are one unpaginated list: no `page[size]` is sent, and
/// `next_page` (null in Zendesk's answer) is what would be followed.
#[tokio::test]
async fn ticket_forms_are_read_without_page_size_following_next_page() {
    let server = MockServer::start().await;
    let form = |id: u64| json!({"id": id, "name": format!("form {id}")});
    Mock::given(method("GET"))
        .and(path("/api/v2/ticket_forms.json"))
        .and(header("authorization", basic().as_str()))
        .and(query_param_is_missing("page[size]"))
        .and(query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ticket_forms": [form(1), form(2)],
            "next_page": format!("{}/api/v2/ticket_forms.json?page=2", server.uri()),
            "previous_page": null,
            "count": 3,
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/ticket_forms.json"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ticket_forms": [form(3)],
            "next_page": null,
            "previous_page": null,
            "count": 3,
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(&server), "ticket_forms", None).await;
    assert_eq!(r.error_text(), None);
    let ids: Vec<u64> = r
        .records
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(r.states.len(), 1);
    server.verify().await;
}

/// `ticket_comments`: the tickets' export, then each live ticket's comments
/// (largest pages, `links.next` followed); a deleted ticket is not asked for
/// and a ticket answering 404 has none. Each comment carries its ticket's id
/// and `updated_at`; the state is the export's cursor.
#[tokio::test]
async fn ticket_comments_list_each_live_tickets_comments_stamped_with_the_ticket() {
    let server = MockServer::start().await;
    let page = export_page(
        &server,
        json!([{"id": 1, "status": "open", "updated_at": "2026-01-01T00:00:00Z"},
               {"id": 2, "status": "deleted", "updated_at": "2026-01-02T00:00:00Z"},
               {"id": 3, "status": "new", "updated_at": "2026-01-03T00:00:00Z"}]),
        "c1",
        true,
    );
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/tickets/cursor.json"))
        .and(query_param("start_time", "1700000000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .expect(1)
        .mount(&server)
        .await;
    let comment = |id: u64| json!({"id": id, "body": format!("c{id}"), "public": true});
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1/comments.json"))
        .and(query_param("page[size]", "100"))
        .and(query_param_is_missing("page[after]"))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "comments": [comment(11), comment(12)],
            "meta": {"has_more": true, "after_cursor": "p1"},
            "links": {"next": format!("{}/api/v2/tickets/1/comments.json?page%5Bafter%5D=p1&page%5Bsize%5D=100", server.uri())},
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1/comments.json"))
        .and(query_param("page[after]", "p1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "comments": [comment(13)],
            "meta": {"has_more": false},
            "links": {"next": null},
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/2/comments.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"comments": [comment(21)]})))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/3/comments.json"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "RecordNotFound"})))
        .expect(1)
        .mount(&server)
        .await;

    let r = read(&source(&server), "ticket_comments", None).await;
    assert_eq!(r.error_text(), None);
    let got: Vec<(u64, u64, &str)> = r
        .records
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap(),
                c["ticket_id"].as_u64().unwrap(),
                c["ticket_updated_at"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (11, 1, "2026-01-01T00:00:00Z"),
            (12, 1, "2026-01-01T00:00:00Z"),
            (13, 1, "2026-01-01T00:00:00Z"),
        ]
    );
    assert_eq!(r.last_state().unwrap().0, json!({"cursor": "c1"}));
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

fn target_with(
    server: &MockServer,
    object: weft_zendesk::ZendeskObject,
    mirror: Option<weft_zendesk::ZendeskMirror>,
) -> weft_zendesk::ZendeskTarget {
    let token = weft_conformance::secret_file(TOKEN).unwrap();
    let mut config = ZendeskConfig::new("unused", EMAIL, token);
    config.base_url = Some(server.uri());
    config.sync_object = object;
    config.mirror = mirror;
    weft_zendesk::ZendeskTarget::new(&config, &BudgetRegistry::new())
        .unwrap()
        .with_poll_policy(weft_http::PollPolicy {
            first: std::time::Duration::from_millis(1),
            max: std::time::Duration::from_millis(2),
            limit: std::time::Duration::from_secs(5),
        })
}

fn org_record(key: &str, action: weft_core::SyncAction, name: &str) -> weft_core::SyncRecord {
    let mut fields = std::collections::BTreeMap::new();
    if action != weft_core::SyncAction::Delete {
        fields.insert("external_id".to_string(), json!(key));
        fields.insert("name".to_string(), json!(name));
    }
    weft_core::SyncRecord {
        key: key.into(),
        action,
        row_hash: format!("h-{key}"),
        fields,
    }
}

/// Mounts a bulk call at `method path` answering job `id`, and the job's
/// completed status with `results`.
async fn job(
    server: &MockServer,
    method_name: &str,
    at: &str,
    body: Option<Value>,
    id: &str,
    results: Value,
) {
    let mut mock = Mock::given(method(method_name)).and(path(at));
    if let Some(body) = body {
        mock = mock.and(wiremock::matchers::body_json(body));
    }
    mock.respond_with(
        ResponseTemplate::new(200)
            .set_body_json(json!({"job_status": {"id": id, "status": "queued"}})),
    )
    .expect(1)
    .mount(server)
    .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v2/job_statuses/{id}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"job_status": {"id": id, "status": "completed", "results": results}}),
        ))
        .expect(1)
        .mount(server)
        .await;
}

fn outcomes(mut out: Vec<weft_core::RecordOutcome>) -> Vec<(String, Result<(), String>)> {
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.into_iter().map(|o| (o.key, o.result)).collect()
}

#[tokio::test]
async fn organizations_are_looked_up_by_external_id_then_created_updated_by_id_and_deleted() {
    use weft_core::{SyncAction, SyncTarget, SyncWriteMode};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/organizations/show_many.json"))
        .and(query_param("external_ids", "acme,beta,gamma,gone,never"))
        .and(header("authorization", basic().as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"organizations": [
            {"id": 20, "external_id": "BETA", "name": "Beta", "tags": ["vip"]},
            {"id": 21, "external_id": "gamma", "name": "Gamma"},
            {"id": 30, "external_id": "gone", "name": "Gone"},
        ], "next_page": null, "count": 3})),
        )
        .expect(1)
        .mount(&server)
        .await;
    job(
        &server,
        "POST",
        "/api/v2/organizations/create_many.json",
        Some(json!({"organizations": [{"external_id": "acme", "name": "Acme"}]})),
        "jc",
        json!([{"index": 0, "id": 10, "action": "create", "status": "Created", "success": true}]),
    )
    .await;
    // Update results carry ids, not indexes: gamma's failure is gamma's.
    job(
        &server,
        "PUT",
        "/api/v2/organizations/update_many.json",
        Some(json!({"organizations": [
            {"id": 20, "external_id": "beta", "name": "Beta Two"},
            {"id": 21, "external_id": "gamma", "name": "Acme"},
        ]})),
        "ju",
        json!([
            {"id": 21, "action": "update", "success": false, "error": "DuplicateValue",
             "details": "Name: Acme has already been taken"},
            {"id": 20, "action": "update", "status": "Updated", "success": true},
        ]),
    )
    .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v2/organizations/destroy_many.json"))
        .and(query_param("ids", "30"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"job_status": {"id": "jd", "status": "queued"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/job_statuses/jd.json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"job_status": {
                "id": "jd", "status": "completed",
                "results": [{"id": 30, "action": "delete", "status": "Deleted", "success": true}],
            }})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let target = target_with(&server, weft_zendesk::ZendeskObject::Organizations, None);
    let out = target
        .apply(
            SyncWriteMode::Mirror,
            vec![
                org_record("acme", SyncAction::Create, "Acme"),
                org_record("beta", SyncAction::Update, "Beta Two"),
                org_record("gamma", SyncAction::Update, "Acme"),
                org_record("gone", SyncAction::Delete, ""),
                org_record("never", SyncAction::Delete, ""),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes(out),
        vec![
            ("acme".to_string(), Ok(())),
            ("beta".to_string(), Ok(())),
            (
                "gamma".to_string(),
                Err("DuplicateValue: Name: Acme has already been taken".to_string())
            ),
            ("gone".to_string(), Ok(())),
            // Zendesk does not have it: nothing left to delete.
            ("never".to_string(), Ok(())),
        ]
    );
    // One lookup, three bulk calls, three polls.
    assert_eq!(server.received_requests().await.unwrap().len(), 7);
}

#[tokio::test]
async fn a_tag_mirror_adds_tags_by_id_and_a_field_mirror_sets_the_field_in_the_bulk_call() {
    use weft_core::{SyncAction, SyncTarget, SyncWriteMode};
    let server = MockServer::start().await;
    let churned = weft_zendesk::ZendeskMirror::Tag {
        tags: vec!["churned".into()],
    };
    // Users, tag: found by email search, then Zendesk's "add tags".
    Mock::given(method("GET"))
        .and(path("/api/v2/users/search.json"))
        .and(query_param("query", "email:gone@x.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"users": [
            {"id": 7, "email": "Gone@X.com", "tags": ["vip"]},
        ], "count": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/users/search.json"))
        .and(query_param("query", "email:never@x.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"users": [
            {"id": 8, "email": "never.again@x.com"},
        ], "count": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/users/7/tags.json"))
        .and(wiremock::matchers::body_json(json!({"tags": ["churned"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tags": ["vip", "churned"]})))
        .expect(1)
        .mount(&server)
        .await;
    let users = target_with(
        &server,
        weft_zendesk::ZendeskObject::Users,
        Some(churned.clone()),
    );
    let out = users
        .apply(
            SyncWriteMode::Mirror,
            vec![
                sync_record("gone@x.com", SyncAction::Delete, None),
                sync_record("never@x.com", SyncAction::Delete, None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes(out),
        vec![
            ("gone@x.com".to_string(), Ok(())),
            ("never@x.com".to_string(), Ok(()))
        ]
    );
    // No create_or_update_many, no suspension.
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|r| !r.url.path().contains("create_or_update_many"))
    );

    // Users, field: the field rides in create_or_update_many.
    let server = MockServer::start().await;
    job(
        &server,
        "POST",
        "/api/v2/users/create_or_update_many.json",
        Some(json!({"users": [{"email": "gone@x.com", "user_fields": {"status": "inactive"}}]})),
        "jf",
        json!([{"index": 0, "id": 7, "action": "update", "status": "Updated", "success": true}]),
    )
    .await;
    let field = weft_zendesk::ZendeskMirror::Field {
        field: "user_fields.status".into(),
        value: json!("inactive"),
    };
    let users = target_with(&server, weft_zendesk::ZendeskObject::Users, Some(field));
    let out = users
        .apply(
            SyncWriteMode::Mirror,
            vec![sync_record("gone@x.com", SyncAction::Delete, None)],
        )
        .await
        .unwrap();
    assert_eq!(outcomes(out), vec![("gone@x.com".to_string(), Ok(()))]);

    // Organizations: tag by id after the lookup; a field through update_many.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/organizations/show_many.json"))
        .and(query_param("external_ids", "gone"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"organizations": [
                {"id": 30, "external_id": "gone", "tags": ["vip"]},
            ]})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/organizations/30/tags.json"))
        .and(wiremock::matchers::body_json(json!({"tags": ["churned"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tags": ["vip", "churned"]})))
        .expect(1)
        .mount(&server)
        .await;
    job(
        &server,
        "PUT",
        "/api/v2/organizations/update_many.json",
        Some(json!({"organizations": [{"id": 30, "organization_fields": {"status": "inactive"}}]})),
        "jo",
        json!([{"id": 30, "action": "update", "status": "Updated", "success": true}]),
    )
    .await;
    let orgs = target_with(
        &server,
        weft_zendesk::ZendeskObject::Organizations,
        Some(churned),
    );
    let out = orgs
        .apply(
            SyncWriteMode::Mirror,
            vec![org_record("gone", SyncAction::Delete, "")],
        )
        .await
        .unwrap();
    assert_eq!(outcomes(out), vec![("gone".to_string(), Ok(()))]);
    let field = weft_zendesk::ZendeskMirror::Field {
        field: "organization_fields.status".into(),
        value: json!("inactive"),
    };
    let orgs = target_with(
        &server,
        weft_zendesk::ZendeskObject::Organizations,
        Some(field),
    );
    let out = orgs
        .apply(
            SyncWriteMode::Mirror,
            vec![org_record("gone", SyncAction::Delete, "")],
        )
        .await
        .unwrap();
    assert_eq!(outcomes(out), vec![("gone".to_string(), Ok(()))]);
    let sent = server.received_requests().await.unwrap();
    assert!(sent.iter().all(|r| r.method.as_str() != "DELETE"));
}

#[tokio::test]
async fn check_refuses_a_mirror_kind_the_object_lacks_and_a_wrong_identity() {
    use weft_core::{SyncSpec, SyncTarget, SyncWriteMode};
    use weft_zendesk::{ZendeskMirror, ZendeskObject};
    let server = MockServer::start().await;
    let spec = |mode: SyncWriteMode, mapping: &[(&str, &str)]| SyncSpec {
        name: "s".into(),
        model: "m".into(),
        primary_key: "key".into(),
        mode,
        mapping: mapping
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let orgs_mapping = [("external_id", "key"), ("name", "name")];
    let check = |object, mirror, spec: &SyncSpec| {
        target_with(&server, object, mirror)
            .check(spec)
            .err()
            .map(|e| e.to_string())
    };
    let mirror = spec(SyncWriteMode::Mirror, &orgs_mapping);
    assert_eq!(check(ZendeskObject::Organizations, None, &mirror), None);
    assert_eq!(
        check(
            ZendeskObject::Organizations,
            Some(ZendeskMirror::Suspend),
            &mirror
        )
        .unwrap(),
        "sync s to zendesk: mirror kind `suspend` is not available for organizations \
         (use delete, tag, field)"
    );
    let users = spec(SyncWriteMode::Upsert, &[("email", "key")]);
    assert_eq!(
        check(ZendeskObject::Users, Some(ZendeskMirror::Delete), &users).unwrap(),
        "sync s to zendesk: mirror kind `delete` is not available for users \
         (use suspend, tag, field)"
    );
    let by_name = spec(
        SyncWriteMode::Mirror,
        &[("external_id", "name"), ("name", "key")],
    );
    assert_eq!(
        check(ZendeskObject::Organizations, None, &by_name).unwrap(),
        "sync s to zendesk: mode `mirror` finds organizations by the sync's key, so \
         `external_id` must be mapped from the primary key `key`"
    );
    let users_on_orgs = spec(SyncWriteMode::Upsert, &[("email", "key")]);
    assert!(
        check(ZendeskObject::Organizations, None, &users_on_orgs)
            .unwrap()
            .contains("`email` is not a Zendesk organization field")
    );
    let field = |f: &str| ZendeskMirror::Field {
        field: f.into(),
        value: json!("x"),
    };
    assert!(
        check(ZendeskObject::Users, Some(field("nickname")), &users)
            .unwrap()
            .contains("mirror field: `nickname` is not a Zendesk user field")
    );
    assert_eq!(
        check(
            ZendeskObject::Organizations,
            Some(field("external_id")),
            &mirror
        )
        .unwrap(),
        "sync s to zendesk: mirror field `external_id` is how Zendesk finds organizations; \
         it cannot be the field a delete sets"
    );
    assert_eq!(
        check(
            ZendeskObject::Users,
            Some(field("user_fields.status")),
            &users
        ),
        None
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
