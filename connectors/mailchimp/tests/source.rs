//! The source's request shapes against a wiremock Mailchimp: `count`/`offset`
//! paging to `total_items`, the fan-out over audiences, `since_last_changed`
//! and `since_create_time` from the saved state, newest first, archived
//! members asked for separately, and a resume at a saved offset.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::Engine as _;
use serde_json::{Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::StreamState;
use weft_http::BudgetRegistry;
use weft_mailchimp::{MailchimpConfig, MailchimpSource};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "SENTINELSOURCEKEY-us6";
/// The extraction's start in every read: 2027-01-15T08:00:00Z.
const STARTED_AT: i64 = 1_800_000_000;

fn source(server: &MockServer, page_size: Option<u32>) -> MailchimpSource {
    let mut config = MailchimpConfig::source(weft_conformance::secret_file(KEY).unwrap());
    config.base_url = Some(format!("{}/3.0", server.uri()));
    if let Some(n) = page_size {
        config.page_size = n;
    }
    MailchimpSource::new(&config, &BudgetRegistry::new()).unwrap()
}

async fn read(src: &MailchimpSource, stream: &str, state: Option<Value>) -> StreamRead {
    let at = chrono::DateTime::from_timestamp(STARTED_AT, 0).unwrap();
    read_stream(src, stream)
        .state(state.map(StreamState))
        .started_at(at)
        .await
        .into_result()
        .unwrap()
}

fn auth() -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("anystring:{KEY}"));
    format!("Basic {b64}")
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn member(id: &str, last_changed: &str, status: &str) -> Value {
    json!({"id": id, "list_id": "L1", "email_address": format!("{id}@example.com"),
           "status": status, "last_changed": last_changed})
}

fn ids(read: &StreamRead) -> Vec<String> {
    read.records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// One audience, `L1`.
async fn mount_one_list(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/3.0/lists"))
        .and(query_param("offset", "0"))
        .respond_with(ok(
            json!({"lists": [{"id": "L1", "name": "A"}], "total_items": 1}),
        ))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn lists_page_with_count_and_offset_until_total_items() {
    let server = MockServer::start().await;
    for (offset, page) in [
        ("0", json!([{"id": "a"}, {"id": "b"}])),
        ("2", json!([{"id": "c"}])),
    ] {
        Mock::given(method("GET"))
            .and(path("/3.0/lists"))
            .and(header("authorization", auth().as_str()))
            .and(query_param("count", "2"))
            .and(query_param("offset", offset))
            .respond_with(ok(json!({"lists": page, "total_items": 3, "_links": []})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let r = read(&source(&server, Some(2)), "lists", None).await;
    assert_eq!(ids(&r), ["a", "b", "c"]);
    assert_eq!(r.pages, [2, 1]);
    // What the first page's total_items said: the completeness check's count.
    assert_eq!(r.metrics.source_count, Some(3));
    // A full refresh: one checkpoint saying when.
    assert_eq!(
        r.state_values(),
        [json!({"synced_at": "2027-01-15T08:00:00+00:00"})]
    );
}

#[tokio::test]
async fn members_first_run_reads_every_audience_newest_first_then_its_archived_members() {
    let server = MockServer::start().await;
    mount_one_list(&server).await;
    let page = |offset: &str, members: Value| {
        Mock::given(method("GET"))
            .and(path("/3.0/lists/L1/members"))
            .and(query_param("sort_field", "last_changed"))
            .and(query_param("sort_dir", "DESC"))
            .and(query_param("count", "2"))
            .and(query_param("offset", offset.to_string()))
            .and(query_param_is_missing("since_last_changed"))
            .and(query_param_is_missing("status"))
            .respond_with(ok(
                json!({"members": members, "list_id": "L1", "total_items": 3}),
            ))
            .expect(1)
    };
    page(
        "0",
        json!([
            member("m3", "2023-11-14T22:13:20+00:00", "subscribed"),
            member("m2", "2023-11-14T22:00:00+00:00", "cleaned"),
        ]),
    )
    .mount(&server)
    .await;
    page(
        "2",
        json!([member("m1", "2023-11-01T00:00:00+00:00", "unsubscribed")]),
    )
    .mount(&server)
    .await;
    Mock::given(method("GET"))
        .and(path("/3.0/lists/L1/members"))
        .and(query_param("status", "archived"))
        .and(query_param("offset", "0"))
        .and(query_param_is_missing("since_last_changed"))
        .respond_with(ok(
            json!({"members": [member("m0", "2023-10-01T00:00:00+00:00", "archived")],
                                "list_id": "L1", "total_items": 1}),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let r = read(&source(&server, Some(2)), "list_members", None).await;
    assert_eq!(ids(&r), ["m3", "m2", "m1", "m0"]);
    // Counted per listing (3 members, 1 archived); the audiences read to
    // find the listings are not part of the count.
    assert_eq!(r.metrics.source_count, Some(4));
    // Statuses are kept as Mailchimp reports them: a delete is a status.
    let statuses: Vec<&str> = r
        .records
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["subscribed", "cleaned", "unsubscribed", "archived"]
    );
    assert_eq!(
        r.state_values(),
        [
            // Inside the listing: the next offset and the newest time read.
            json!({"last_changed": {}, "progress": {"listing": "L1", "offset": 2,
                   "max_seen": "2023-11-14T22:13:20+00:00"}}),
            json!({"last_changed": {"L1": "2023-11-14T22:13:20+00:00"}}),
            json!({"last_changed": {"L1": "2023-11-14T22:13:20+00:00",
                                    "L1/archived": "2023-10-01T00:00:00+00:00"}}),
        ]
    );
}

#[tokio::test]
async fn an_incremental_members_run_asks_since_the_saved_time_a_thousand_at_a_time() {
    let server = MockServer::start().await;
    mount_one_list(&server).await;
    Mock::given(method("GET"))
        .and(path("/3.0/lists/L1/members"))
        .and(query_param(
            "since_last_changed",
            "2023-11-14T22:13:20+00:00",
        ))
        .and(query_param("count", "1000"))
        .and(query_param("offset", "0"))
        .and(query_param("sort_dir", "DESC"))
        .and(query_param_is_missing("status"))
        .respond_with(ok(
            json!({"members": [member("m2", "2023-11-20T10:00:00+00:00", "unsubscribed")],
                                "list_id": "L1", "total_items": 1}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/3.0/lists/L1/members"))
        .and(query_param("status", "archived"))
        .and(query_param(
            "since_last_changed",
            "2023-10-01T00:00:00+00:00",
        ))
        .respond_with(ok(
            json!({"members": [], "list_id": "L1", "total_items": 0}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let saved = json!({"last_changed": {"L1": "2023-11-14T22:13:20+00:00",
                                        "L1/archived": "2023-10-01T00:00:00+00:00"}});
    let r = read(&source(&server, None), "list_members", Some(saved)).await;
    assert_eq!(ids(&r), ["m2"]);
    assert_eq!(r.records[0]["status"], "unsubscribed");
    // The cursor moves to the newest change read; the archived one stays.
    assert_eq!(
        r.last_state().unwrap().0,
        json!({"last_changed": {"L1": "2023-11-20T10:00:00+00:00",
                                "L1/archived": "2023-10-01T00:00:00+00:00"}})
    );
}

#[tokio::test]
async fn a_resumed_read_continues_at_the_saved_offset_and_keeps_the_newest_time() {
    let server = MockServer::start().await;
    mount_one_list(&server).await;
    Mock::given(method("GET"))
        .and(path("/3.0/lists/L1/members"))
        .and(query_param("offset", "2"))
        .and(query_param("count", "2"))
        .and(query_param_is_missing("status"))
        .and(query_param_is_missing("since_last_changed"))
        .respond_with(ok(
            json!({"members": [member("m1", "2023-11-01T00:00:00+00:00", "subscribed")],
                                "list_id": "L1", "total_items": 3}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/3.0/lists/L1/members"))
        .and(query_param("status", "archived"))
        .and(query_param("offset", "0"))
        .respond_with(ok(
            json!({"members": [], "list_id": "L1", "total_items": 0}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let saved = json!({"last_changed": {}, "progress": {"listing": "L1", "offset": 2,
                       "max_seen": "2023-11-14T22:13:20+00:00"}});
    let r = read(&source(&server, Some(2)), "list_members", Some(saved)).await;
    assert_eq!(ids(&r), ["m1"]);
    // Resumed at offset 2 of 3 (and 0 archived): 1 left to read, as counted.
    assert_eq!(r.metrics.source_count, Some(1));
    assert_eq!(
        r.last_state().unwrap().0,
        json!({"last_changed": {"L1": "2023-11-14T22:13:20+00:00"}})
    );
}

#[tokio::test]
async fn campaigns_are_read_since_the_saved_create_time_and_the_cursor_is_held_below_the_start() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/3.0/campaigns"))
        .and(query_param(
            "since_create_time",
            "2023-11-14T22:13:20+00:00",
        ))
        .and(query_param("sort_field", "create_time"))
        .and(query_param("sort_dir", "DESC"))
        .and(query_param("offset", "0"))
        .respond_with(ok(json!({"campaigns": [
            // Created a few seconds before the extraction started: within settle_secs.
            {"id": "c2", "create_time": "2027-01-15T07:59:50+00:00"},
            {"id": "c1", "create_time": "2024-01-01T00:00:00+00:00"},
        ], "total_items": 2})))
        .expect(1)
        .mount(&server)
        .await;
    let saved = json!({"create_time": "2023-11-14T22:13:20+00:00"});
    let r = read(&source(&server, None), "campaigns", Some(saved)).await;
    assert_eq!(ids(&r), ["c2", "c1"]);
    // 60 s (settle_secs) behind the start: c2 is read again next run.
    assert_eq!(
        r.state_values(),
        [json!({"create_time": "2027-01-15T07:59:00+00:00"})]
    );
}

#[tokio::test]
async fn a_saved_state_of_another_shape_is_an_error_naming_the_stream() {
    let server = MockServer::start().await;
    mount_one_list(&server).await;
    let src = source(&server, None);
    let at = chrono::DateTime::from_timestamp(STARTED_AT, 0).unwrap();
    let r = read_stream(&src, "list_members")
        .state(StreamState(
            json!({"last_changed": "2023-11-14T22:13:20+00:00"}),
        ))
        .started_at(at)
        .await;
    let err = r.error_text().unwrap();
    assert!(
        err.contains("`list_members`") && err.contains("not an object of cursors per audience"),
        "{err}"
    );
}

#[tokio::test]
async fn each_audience_keeps_its_own_cursor_and_a_new_audience_is_read_in_full() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/3.0/lists"))
        .respond_with(ok(
            json!({"lists": [{"id": "L1"}, {"id": "L2"}], "total_items": 2}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // L1 has a cursor: asked since it. L2 is new: read in full.
    Mock::given(method("GET"))
        .and(path("/3.0/lists/L1/members"))
        .and(query_param(
            "since_last_changed",
            "2023-11-14T22:13:20+00:00",
        ))
        .and(query_param_is_missing("status"))
        .respond_with(ok(
            json!({"members": [], "list_id": "L1", "total_items": 0}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/3.0/lists/L2/members"))
        .and(query_param_is_missing("since_last_changed"))
        .and(query_param_is_missing("status"))
        .respond_with(ok(json!({"members": [
            // The same person in another audience: the same id, another key.
            {"id": "m1", "list_id": "L2", "status": "subscribed", "last_changed": "2023-12-01T00:00:00+00:00"},
        ], "list_id": "L2", "total_items": 1})))
        .expect(1)
        .mount(&server)
        .await;
    for list in ["L1", "L2"] {
        Mock::given(method("GET"))
            .and(path(format!("/3.0/lists/{list}/members")))
            .and(query_param("status", "archived"))
            .and(query_param_is_missing("since_last_changed"))
            .respond_with(ok(
                json!({"members": [], "list_id": list, "total_items": 0}),
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    let saved = json!({"last_changed": {"L1": "2023-11-14T22:13:20+00:00"}});
    let r = read(&source(&server, None), "list_members", Some(saved)).await;
    let keys: Vec<(String, String)> = r
        .records
        .iter()
        .map(|m| {
            (
                m["list_id"].as_str().unwrap().into(),
                m["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(keys, [("L2".to_string(), "m1".to_string())]);
    // One checkpoint per listing; L1's cursor stays where it was.
    assert_eq!(r.states.len(), 4);
    assert_eq!(
        r.last_state().unwrap().0,
        json!({"last_changed": {"L1": "2023-11-14T22:13:20+00:00",
                                "L2": "2023-12-01T00:00:00+00:00"}})
    );
}
