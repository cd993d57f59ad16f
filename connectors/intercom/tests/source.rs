//! The source's request shapes against a wiremock Intercom.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::StreamState;
use weft_http::BudgetRegistry;
use weft_intercom::{IntercomConfig, IntercomSource};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "SENTINEL_INTERCOM_SOURCE_TOKEN";

fn source(server: &MockServer) -> IntercomSource {
    let mut config = IntercomConfig::new(weft_conformance::secret_file(TOKEN).unwrap());
    config.base_url = Some(server.uri());
    config.page_size = 2;
    IntercomSource::new(&config, &BudgetRegistry::new()).unwrap()
}

async fn read(src: &IntercomSource, stream: &str, state: Option<StreamState>) -> StreamRead {
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    // One request at a time: the mocks below answer exactly the pages asked.
    let r = read_stream(src, stream)
        .state(state)
        .started_at(at)
        .max_in_flight(1)
        .await;
    let r = r.into_result().unwrap();
    assert_eq!(r.batches, 0, "{stream}");
    r
}

fn contact(id: &str, updated_at: i64) -> Value {
    json!({"type": "contact", "id": id, "updated_at": updated_at})
}

#[tokio::test]
async fn contacts_search_after_the_saved_cursor_and_page_in_the_body() {
    let server = MockServer::start().await;
    // The window: from the saved cursor's second to a day past extraction start.
    let query = json!({"operator": "AND", "value": [
        {"field": "updated_at", "operator": ">", "value": 1_699_999_999},
        {"field": "updated_at", "operator": "<", "value": 1_800_086_400},
    ]});
    let sort = json!({"field": "updated_at", "order": "ascending"});
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("intercom-version", "2.16"))
        .and(body_json(
            json!({"query": query, "sort": sort, "pagination": {"per_page": 2}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                // Remaining 0 with a reset 1 s away: the budget pauses before the next page.
                .insert_header("x-ratelimit-limit", "166")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "1")
                .set_body_json(json!({
                    "type": "list",
                    "data": [contact("a", 1_700_000_000), contact("b", 1_700_000_100)],
                    "pages": {"type": "pages", "page": 1, "per_page": 2, "total_pages": 2,
                              "next": {"per_page": 2, "starting_after": "cur-2"}},
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(body_json(json!({"query": query, "sort": sort,
                              "pagination": {"per_page": 2, "starting_after": "cur-2"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "list",
            "data": [contact("c", 1_700_000_200)],
            "pages": {"type": "pages", "page": 2, "per_page": 2, "total_pages": 2},
        })))
        .expect(1)
        .mount(&server)
        .await;
    let saved = StreamState(json!({"updated_at": 1_700_000_000}));
    let r = read(&source(&server), "contacts", Some(saved)).await;
    let ids: Vec<&str> = r
        .records
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    // Mid-search checkpoints keep the saved cursor and list what is left of
    // the window (from the last `updated_at` read); the last one moves it.
    let left = |windows: Value, max_seen: i64| {
        json!({"updated_at": 1_700_000_000, "slices": {
            "v": 1, "windows": windows, "max_seen": max_seen, "ceiling": 1_799_999_940}})
    };
    assert_eq!(
        r.states,
        [
            StreamState(left(
                json!([{"lo": 1_700_000_100, "hi": 1_800_086_400}]),
                1_700_000_100
            )),
            StreamState(left(json!([]), 1_700_000_200)),
            StreamState(json!({"updated_at": 1_700_000_200}))
        ]
    );
    assert!(r.metrics.wait_ms >= 500, "{}", r.metrics.wait_ms);
}

#[tokio::test]
async fn companies_scroll_until_empty_or_fall_back_when_a_scroll_is_open() {
    let server = MockServer::start().await;
    let company = |id: &str| json!({"type": "company", "id": id});
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param_is_missing("scroll_param"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "list", "data": [company("1"), company("2")], "pages": null,
            "total_count": null, "scroll_param": "sp-1",
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param("scroll_param", "sp-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "list", "data": [], "pages": null, "total_count": null, "scroll_param": "sp-1",
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(&server), "companies", None).await;
    assert_eq!(r.records.len(), 2);
    assert!(r.notices.is_empty());
    assert_eq!(r.states.len(), 1);

    // Now a scroll is open elsewhere: 400 scroll_exists, then the paged list.
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param_is_missing("scroll_param"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "error.list",
            "errors": [{"code": "scroll_exists", "message": "scroll already exists for this workspace"}],
        })))
        .expect(1)
        .mount(&server)
        .await;
    for (page, ids) in [(1, vec!["1", "2"]), (2, vec!["3"])] {
        Mock::given(method("GET"))
            .and(path("/companies"))
            .and(query_param("per_page", "60"))
            .and(query_param("page", page.to_string().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "list",
                "pages": {"type": "pages", "page": page, "per_page": 60, "total_pages": 2},
                "data": ids.iter().map(|i| company(i)).collect::<Vec<_>>(),
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let r = read(&source(&server), "companies", None).await;
    let ids: Vec<&str> = r
        .records
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(r.notices.len(), 1);
    assert!(r.notices[0].contains("one per app"), "{}", r.notices[0]);
}

/// A scroll page is never asked for twice (the scroll has moved on when it
/// answered): an interrupted scroll is read again from the paged list.
#[tokio::test]
async fn an_interrupted_scroll_is_not_retried_and_reads_the_paged_list() {
    let server = MockServer::start().await;
    let company = |id: &str| json!({"type": "company", "id": id});
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param_is_missing("scroll_param"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "list", "data": [company("1"), company("2")], "pages": null,
            "total_count": null, "scroll_param": "sp-1",
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The second scroll page fails after the server answered it.
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param("scroll_param", "sp-1"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "type": "error.list", "errors": [{"code": "server_error", "message": "oops"}],
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/companies"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "list",
            "pages": {"type": "pages", "page": 1, "per_page": 60, "total_pages": 1},
            "data": [company("1"), company("2"), company("3")],
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(&server), "companies", None).await;
    let ids: Vec<&str> = r
        .records
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    // The scroll's first page, then the whole list (the merge absorbs the repeat).
    assert_eq!(ids, ["1", "2", "1", "2", "3"]);
    assert_eq!(r.notices.len(), 1);
    assert!(
        r.notices[0].contains("interrupted after 1 pages"),
        "{}",
        r.notices[0]
    );
    assert_eq!(r.metrics.retries, 0);
    assert_eq!(r.states.len(), 1);
}

#[tokio::test]
async fn admins_are_read_in_full_with_one_checkpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/admins"))
        .and(header("intercom-version", "2.16"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "admin.list",
            "admins": [{"type": "admin", "id": "1"}, {"type": "admin", "id": "2"}],
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(&server), "admins", None).await;
    assert_eq!(r.records.len(), 2);
    assert_eq!(
        r.states,
        [StreamState(
            json!({"synced_at": "2027-01-15T08:00:00+00:00"})
        )]
    );
}

#[tokio::test]
async fn data_attributes_are_listed_per_model_with_archived_ones_and_segments_with_counts() {
    let server = MockServer::start().await;
    for (model, names) in [
        ("contact", ["email", "plan"]),
        ("company", ["name", "size"]),
    ] {
        Mock::given(method("GET"))
            .and(path("/data_attributes"))
            .and(query_param("model", model))
            .and(query_param("include_archived", "true"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "list",
                "data": names.map(|n| json!({"type": "data_attribute", "model": model, "name": n})),
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/segments"))
        .and(query_param("include_count", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "segment.list",
            "segments": [{"type": "segment", "id": "s1", "count": 7}],
        })))
        .expect(1)
        .mount(&server)
        .await;
    let src = source(&server);
    let contact = read(&src, "contact_attributes", None).await;
    let names: Vec<&str> = contact
        .records
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["email", "plan"]);
    assert!(contact.records.iter().all(|r| r["model"] == "contact"));
    let company = read(&src, "company_attributes", None).await;
    assert!(company.records.iter().all(|r| r["model"] == "company"));
    assert_eq!(company.records.len(), 2);
    let segments = read(&src, "segments", None).await;
    assert_eq!(segments.records.len(), 1);
    assert_eq!(segments.records[0]["count"], 7);
    assert_eq!(segments.states.len(), 1);
}

#[tokio::test]
async fn conversation_parts_search_the_parents_then_fetch_each_one() {
    let server = MockServer::start().await;
    // The parents: conversations changed since the saved cursor, on `updated_at`.
    let query = json!({"operator": "AND", "value": [
        {"field": "updated_at", "operator": ">", "value": 1_699_999_999},
        {"field": "updated_at", "operator": "<", "value": 1_800_086_400},
    ]});
    Mock::given(method("POST"))
        .and(path("/conversations/search"))
        .and(body_json(json!({
            "query": query,
            "sort": {"field": "updated_at", "order": "ascending"},
            "pagination": {"per_page": 2},
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "conversation.list",
            "conversations": [
                {"type": "conversation", "id": "c1", "updated_at": 1_700_000_100},
                {"type": "conversation", "id": "gone", "updated_at": 1_700_000_150},
            ],
            "pages": {"type": "pages", "next": {"per_page": 2, "starting_after": "p2"}},
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/conversations/search"))
        .and(body_json(json!({
            "query": query,
            "sort": {"field": "updated_at", "order": "ascending"},
            "pagination": {"per_page": 2, "starting_after": "p2"},
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "conversation.list",
            // A conversation without parts (only its source message).
            "conversations": [{"type": "conversation", "id": "c3", "updated_at": 1_700_000_200}],
            "pages": {"type": "pages"},
        })))
        .expect(1)
        .mount(&server)
        .await;
    let parts = |ids: &[&str]| {
        json!({"type": "conversation", "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": ids.iter().map(|id| json!({"type": "conversation_part", "id": id})).collect::<Vec<_>>(),
            "total_count": ids.len(),
        }})
    };
    Mock::given(method("GET"))
        .and(path("/conversations/c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(parts(&["p1", "p2"])))
        .expect(1)
        .mount(&server)
        .await;
    // Deleted between the search and the fetch: no parts, not a failure.
    Mock::given(method("GET"))
        .and(path("/conversations/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "type": "error.list",
            "errors": [{"code": "not_found", "message": "Resource Not Found"}],
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/conversations/c3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(parts(&[])))
        .expect(1)
        .mount(&server)
        .await;
    let saved = StreamState(json!({"conversation_updated_at": 1_700_000_000}));
    let r = read(&source(&server), "conversation_parts", Some(saved)).await;
    let got: Vec<(&str, &str, i64)> = r
        .records
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap(),
                p["conversation_id"].as_str().unwrap(),
                p["conversation_updated_at"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("p1", "c1", 1_700_000_100), ("p2", "c1", 1_700_000_100)]
    );
    // The cursor is the newest parent searched, even one without parts.
    let last: i64 = r
        .last_state()
        .unwrap()
        .get("conversation_updated_at")
        .unwrap();
    assert_eq!(last, 1_700_000_200);
}
