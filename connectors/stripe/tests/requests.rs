//! Request shapes and pagination against a wiremock Stripe.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Value, json};
use weft_conformance::read::read_stream;
use weft_core::StreamState;
use weft_http::BudgetRegistry;
use weft_stripe::{StripeConfig, StripeSource};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_WIREMOCK_SENTINEL";

fn source(server: &MockServer) -> StripeSource {
    source_settling(server, 0)
}

fn source_settling(server: &MockServer, settle_secs: u64) -> StripeSource {
    let key = weft_conformance::secret_file(KEY).unwrap();
    let mut config = StripeConfig::new(Some(server.uri()), key);
    config.settle_secs = settle_secs;
    StripeSource::new(config, &BudgetRegistry::new()).unwrap()
}

fn customer(id: &str, created: i64) -> Value {
    json!({"id": id, "object": "customer", "created": created, "email": format!("{id}@example.com")})
}

fn list(data: Vec<Value>, has_more: bool) -> Value {
    json!({"object": "list", "url": "/v1/customers", "has_more": has_more, "data": data})
}

/// Records, checkpoints (as JSON), notices and the error of one read.
type Read = (Vec<Value>, Vec<Value>, Vec<String>, Option<String>);

async fn read(src: &StripeSource, stream: &str, state: Option<Value>) -> Read {
    let at = chrono::DateTime::from_timestamp(2_000_000_000, 0).unwrap();
    let r = read_stream(src, stream)
        .state(state.map(StreamState))
        .started_at(at)
        .await;
    assert_eq!(r.batches, 0, "stripe emits JSON pages");
    let (states, error) = (r.state_values(), r.error_text());
    (r.records, states, r.notices, error)
}

#[tokio::test]
async fn first_run_pages_with_limit_and_starting_after_and_saves_newest_created() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("starting_after"))
        .and(query_param_is_missing("created[gte]"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![customer("cus_3", 300), customer("cus_2", 200)],
            true,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("starting_after", "cus_2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(list(vec![customer("cus_1", 100)], false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (records, checkpoints, notices, error) = read(&source(&server), "customers", None).await;
    assert_eq!(error, None);
    let ids: Vec<_> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["cus_3", "cus_2", "cus_1"]);
    // After each page: a resume point (events already covered, the part of the
    // list not read yet: below the oldest `created` seen, its second included);
    // at the end: the newest `created`.
    let slices = |windows: Value| json!({"v": 1, "windows": windows, "max_seen": 300, "ceiling": 2_000_000_000});
    assert_eq!(
        checkpoints,
        vec![
            json!({"events_created": 2_000_000_000, "slices": slices(json!([{"lo": i64::MIN, "hi": 201}]))}),
            json!({"events_created": 2_000_000_000, "slices": slices(json!([]))}),
            json!({"created": 300, "events_created": 2_000_000_000}),
        ]
    );
    assert!(notices.is_empty());
}

#[tokio::test]
async fn incremental_run_reads_events_then_new_objects() {
    let server = MockServer::start().await;
    let event = |id: &str, kind: &str, created: i64, obj: Value| json!({"id": id, "object": "event", "type": kind, "created": created, "data": {"object": obj}});
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("created[gte]", "1999999000"))
        .and(query_param("types[]", "customer.updated"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/events", "has_more": false,
            "data": [
                event("evt_3", "customer.deleted", 1_999_999_900, customer("cus_1", 100)),
                event("evt_2", "customer.updated", 1_999_999_800, json!({"id": "cus_2", "object": "customer", "created": 200, "name": "new"})),
                event("evt_1", "customer.updated", 1_999_999_700, json!({"id": "cus_2", "object": "customer", "created": 200, "name": "old"})),
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("created[gte]", "300"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![customer("cus_4", 400), customer("cus_3", 300)],
            false,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let state = json!({"created": 300, "events_created": 1_999_999_000});
    let (records, checkpoints, _, error) = read(&source(&server), "customers", Some(state)).await;
    assert_eq!(error, None);
    let ids: Vec<_> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // Newest event per object first, then the list (read last, so it wins the merge).
    assert_eq!(ids, vec!["cus_1", "cus_2", "cus_4", "cus_3"]);
    assert_eq!(records[0]["_weft_deleted_at"], "2033-05-18T03:31:40Z");
    assert_eq!(records[1]["name"], "new");
    let done = json!({"v": 1, "windows": [], "max_seen": 400, "ceiling": 2_000_000_000});
    assert_eq!(
        checkpoints,
        vec![
            json!({"created": 300, "events_created": 2_000_000_000, "slices": done}),
            json!({"created": 400, "events_created": 2_000_000_000}),
        ]
    );
}

#[tokio::test]
async fn stale_events_cursor_falls_back_to_a_full_read_and_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param_is_missing("created[gte]"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(list(vec![customer("cus_1", 100)], false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let old = 2_000_000_000 - 31 * 86_400;
    let (records, checkpoints, notices, error) = read(
        &source(&server),
        "customers",
        Some(json!({"created": 50, "events_created": old})),
    )
    .await;
    assert_eq!(error, None);
    assert_eq!(records.len(), 1);
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].contains("30-day event retention") && notices[0].contains("/v1/customers"),
        "{}",
        notices[0]
    );
    assert_eq!(checkpoints[0]["events_created"], json!(2_000_000_000));
}

#[tokio::test]
async fn a_404_is_an_error_with_the_vendor_message_and_no_secret() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})))
        .mount(&server)
        .await;
    let (records, checkpoints, _, error) = read(&source(&server), "refunds", None).await;
    let error = error.expect("an error");
    assert!(records.is_empty() && checkpoints.is_empty());
    assert!(
        error.contains("404") && error.contains("Unrecognized request URL"),
        "{error}"
    );
    assert!(!error.contains(KEY), "{error}");
}

#[tokio::test]
async fn a_settled_cursor_lists_only_newer_objects() {
    // With a settle delay the saved `created` second was complete when it was
    // saved: the incremental list starts at the next second, so a no-change
    // run reads no record again.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/events", "has_more": false, "data": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("created[gte]", "301"))
        .and(query_param_is_missing("created[gt]"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![], false)))
        .expect(1)
        .mount(&server)
        .await;
    let state = json!({"created": 300, "events_created": 1_999_999_000});
    let (records, checkpoints, _, error) =
        read(&source_settling(&server, 60), "customers", Some(state)).await;
    assert_eq!(error, None);
    assert!(records.is_empty(), "{records:?}");
    // At the end: the list cursor stays where it was.
    let settled = json!({"created": 300, "events_created": 1_999_999_940});
    assert_eq!(checkpoints, vec![settled]);
}

fn subscription(id: &str, created: i64, status: &str) -> Value {
    json!({"id": id, "object": "subscription", "created": created, "status": status})
}

#[tokio::test]
async fn subscriptions_are_listed_with_status_all_on_every_page() {
    // Without `status` Stripe leaves canceled subscriptions out: every list
    // request of the stream, the continuation too, asks for all of them.
    let server = MockServer::start().await;
    let page = |data: Vec<Value>, has_more: bool| json!({"object": "list", "url": "/v1/subscriptions", "has_more": has_more, "data": data});
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("status", "all"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![subscription("sub_3", 300, "active"), {
                let mut s = subscription("sub_2", 200, "canceled");
                s["ended_at"] = json!(1_700_000_000);
                s
            }],
            true,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("status", "all"))
        .and(query_param("starting_after", "sub_2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![subscription("sub_1", 100, "past_due")], false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (records, _, _, error) = read(&source(&server), "subscriptions", None).await;
    assert_eq!(error, None);
    let got: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("sub_3", "active"),
            ("sub_2", "canceled"),
            ("sub_1", "past_due")
        ]
    );
    // The canceled one is deleted as of its end; the others are not.
    let deleted: Vec<&Value> = records.iter().map(|r| &r["_weft_deleted_at"]).collect();
    assert_eq!(
        deleted,
        vec![&Value::Null, &json!("2023-11-14T22:13:20Z"), &Value::Null]
    );
    // No request without `status=all` (an unmatched one would 404 and fail the read).
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.url.query().unwrap_or_default().contains("status=all"))
    );
}

#[tokio::test]
async fn a_deleted_subscription_event_sets_the_deleted_column() {
    let server = MockServer::start().await;
    let event = |id: &str, kind: &str, created: i64, obj: Value| json!({"id": id, "object": "event", "type": kind, "created": created, "data": {"object": obj}});
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("types[]", "customer.subscription.deleted"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/events", "has_more": false,
            "data": [
                event("evt_2", "customer.subscription.deleted", 1_999_999_900, subscription("sub_1", 100, "canceled")),
                event("evt_1", "customer.subscription.updated", 1_999_999_800, subscription("sub_2", 200, "past_due")),
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("status", "all"))
        .and(query_param("created[gte]", "300"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/subscriptions", "has_more": false, "data": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    let state = json!({"created": 300, "events_created": 1_999_999_000});
    let (records, _, _, error) = read(&source(&server), "subscriptions", Some(state)).await;
    assert_eq!(error, None);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["id"], "sub_1");
    assert_eq!(records[0]["_weft_deleted_at"], "2033-05-18T03:31:40Z");
    assert_eq!(records[1]["id"], "sub_2");
    assert!(records[1].get("_weft_deleted_at").is_none());
    // The stream's schema has the column the flag lands in.
    let catalog = weft_stripe::catalog().unwrap();
    let spec = &catalog.require("stripe", "subscriptions").unwrap().spec;
    let column = spec.schema.field_with_name("_weft_deleted_at").unwrap();
    assert!(column.is_nullable());
}

#[tokio::test]
async fn coupons_are_listed_then_re_read_from_created_with_their_events() {
    let server = MockServer::start().await;
    let coupon = |id: &str, created: i64| json!({"id": id, "object": "coupon", "created": created, "duration": "once", "percent_off": 25.0, "valid": true});
    // First run: the whole list, newest first, no `created` filter, no events.
    Mock::given(method("GET"))
        .and(path("/v1/coupons"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("created[gte]"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(list(vec![coupon("co_2", 200), coupon("co_1", 100)], false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (records, checkpoints, _, error) = read(&source(&server), "coupons", None).await;
    assert_eq!(error, None);
    let ids: Vec<_> = records.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![json!("co_2"), json!("co_1")]);
    assert_eq!(records[0]["percent_off"], 25.0);
    assert_eq!(records[0]["_weft_deleted_at"], Value::Null);
    let last = checkpoints.last().cloned().unwrap();
    assert_eq!(
        last,
        json!({"created": 200, "events_created": 2_000_000_000})
    );
    server.reset().await;

    // Re-run: coupon events since the saved events cursor (every declared
    // type asked for), then the list from the saved `created` on.
    let event = json!({"id": "evt_1", "object": "event", "type": "coupon.deleted", "created": 2_000_000_000,
        "data": {"object": coupon("co_1", 100)}});
    let mut events = Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("created[gte]", "2000000000"));
    for t in ["coupon.created", "coupon.deleted", "coupon.updated"] {
        events = events.and(query_param("types[]", t));
    }
    events
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/events", "has_more": false, "data": [event]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/coupons"))
        .and(query_param("limit", "100"))
        .and(query_param("created[gte]", "200"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(list(vec![coupon("co_3", 300), coupon("co_2", 200)], false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (records, checkpoints, _, error) = read(&source(&server), "coupons", Some(last)).await;
    assert_eq!(error, None);
    let ids: Vec<_> = records.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![json!("co_1"), json!("co_3"), json!("co_2")]);
    assert_eq!(records[0]["_weft_deleted_at"], "2033-05-18T03:33:20Z");
    assert_eq!(records[1]["_weft_deleted_at"], Value::Null);
    assert_eq!(
        checkpoints.last().cloned().unwrap(),
        json!({"created": 300, "events_created": 2_000_000_000})
    );
}
