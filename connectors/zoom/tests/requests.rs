//! Request shapes, paging, fan-out and error handling against a wiremock Zoom.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::Source;
use weft_http::BudgetRegistry;
use weft_zoom::{ZoomConfig, ZoomSource};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "ZOOM_SECRET_WIREMOCK_SENTINEL";
const TOKEN: &str = "tok-1";

fn config(server: &MockServer) -> ZoomConfig {
    let secret = weft_conformance::secret_file(SECRET).unwrap();
    let mut config = ZoomConfig::new("acct-1", "client-1", secret);
    config.base_url = Some(server.uri());
    config.token_url = Some(format!("{}/oauth/token", server.uri()));
    config
}

fn source(config: ZoomConfig) -> ZoomSource {
    ZoomSource::new(config, &BudgetRegistry::new()).unwrap()
}

/// Zoom's token endpoint: `account_credentials` grant, Basic client auth, in the query.
async fn mount_token(server: &MockServer, token: &str, times: u64) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("client-1:{SECRET}"));
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(query_param("grant_type", "account_credentials"))
        .and(query_param("account_id", "acct-1"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": "user:read:admin"
        })))
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

fn list(items: &str, records: Vec<Value>, next: &str) -> Value {
    json!({"page_size": 300, "total_records": records.len(), "next_page_token": next, items: records})
}

/// Mounts one page of `endpoint` (first page when `token` is `None`), expected once.
async fn mount_page(
    server: &MockServer,
    endpoint: &str,
    token: Option<&str>,
    body: Value,
    page_size: &str,
) {
    let m = Mock::given(method("GET"))
        .and(path(endpoint))
        .and(query_param("page_size", page_size))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()));
    let m = match token {
        Some(t) => m.and(query_param("next_page_token", t)),
        None => m.and(query_param_is_missing("next_page_token")),
    };
    m.respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

async fn read(src: &ZoomSource, stream: &str) -> StreamRead {
    let at = chrono::DateTime::from_timestamp(2_000_000_000, 0).unwrap();
    let r = read_stream(src, stream).started_at(at).await;
    assert_eq!((r.batches, r.notices.len()), (0, 0), "{:?}", r.notices);
    r
}

fn user(id: &str) -> Value {
    json!({"id": id, "email": format!("{id}@example.com"), "type": 2, "status": "active", "created_at": "2023-01-02T03:04:05Z"})
}

fn webinar(id: i64, host: &str) -> Value {
    json!({"id": id, "uuid": format!("uuid-{id}=="), "host_id": host, "topic": format!("Webinar {id}"), "type": 5, "start_time": "2033-06-01T10:00:00Z", "duration": 60})
}

fn registrant(id: &str) -> Value {
    json!({"id": id, "email": format!("{id}@example.org"), "first_name": "Jill", "last_name": "Chill", "status": "approved", "create_time": "2033-05-01T10:00:00Z"})
}

#[tokio::test]
async fn token_then_users_paged_with_page_size_and_next_page_token() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN, 1).await;
    mount_page(
        &server,
        "/v2/users",
        None,
        list("users", vec![user("u1"), user("u2")], "tokA"),
        "300",
    )
    .await;
    mount_page(
        &server,
        "/v2/users",
        Some("tokA"),
        list("users", vec![user("u3")], ""),
        "300",
    )
    .await;
    let r = read(&source(config(&server)), "users").await;
    assert_eq!(r.error_text(), None);
    let ids: Vec<_> = r
        .records
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["u1", "u2", "u3"]);
    assert_eq!(
        r.state_values(),
        vec![json!({"synced_at": "2033-05-18T03:33:20+00:00"})]
    );
    assert_eq!(
        (
            r.metrics.requests,
            r.metrics.retries,
            r.metrics.expected_errors
        ),
        (2, 0, 0)
    );
    // The token request carried the grant and account in the query and no body secret.
    let received = server.received_requests().await.unwrap();
    let token_req = received
        .iter()
        .find(|q| q.url.path() == "/oauth/token")
        .unwrap();
    assert!(!String::from_utf8_lossy(&token_req.body).contains(SECRET));
}

#[tokio::test]
async fn registrants_fan_out_one_listing_per_webinar_with_the_parent_id() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN, 1).await;
    let size = "2";
    mount_page(
        &server,
        "/v2/users",
        None,
        list("users", vec![user("u1"), user("u2")], ""),
        size,
    )
    .await;
    mount_page(
        &server,
        "/v2/users/u1/webinars",
        None,
        list("webinars", vec![webinar(101, "u1"), webinar(102, "u1")], ""),
        size,
    )
    .await;
    mount_page(
        &server,
        "/v2/users/u2/webinars",
        None,
        list("webinars", vec![webinar(103, "u2")], "w2"),
        size,
    )
    .await;
    mount_page(
        &server,
        "/v2/users/u2/webinars",
        Some("w2"),
        list("webinars", vec![webinar(104, "u2")], ""),
        size,
    )
    .await;
    mount_page(
        &server,
        "/v2/webinars/101/registrants",
        None,
        list(
            "registrants",
            vec![registrant("r1"), registrant("r2")],
            "p2",
        ),
        size,
    )
    .await;
    mount_page(
        &server,
        "/v2/webinars/101/registrants",
        Some("p2"),
        list("registrants", vec![registrant("r3")], ""),
        size,
    )
    .await;
    mount_page(
        &server,
        "/v2/webinars/102/registrants",
        None,
        list("registrants", vec![], ""),
        size,
    )
    .await;
    // Registrant ids are unique per webinar only: r1 again under 103.
    mount_page(
        &server,
        "/v2/webinars/103/registrants",
        None,
        list("registrants", vec![registrant("r1")], ""),
        size,
    )
    .await;
    mount_page(
        &server,
        "/v2/webinars/104/registrants",
        None,
        list("registrants", vec![registrant("r9")], ""),
        size,
    )
    .await;
    let mut cfg = config(&server);
    cfg.page_size = 2;
    cfg.fan_out_concurrency = 2;
    let r = read(&source(cfg), "webinar_registrants").await;
    assert_eq!(r.error_text(), None);
    let keys: BTreeSet<(i64, String)> = r
        .records
        .iter()
        .map(|x| {
            (
                x["webinar_id"].as_i64().unwrap(),
                x["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(i64, String)> = [
        (101, "r1"),
        (101, "r2"),
        (101, "r3"),
        (103, "r1"),
        (104, "r9"),
    ]
    .into_iter()
    .map(|(w, id)| (w, id.to_string()))
    .collect();
    assert_eq!(r.records.len(), 5);
    assert_eq!(keys, want);
    // The record itself is unchanged apart from the added parent id.
    let r9 = r.records.iter().find(|x| x["id"] == "r9").unwrap();
    let mut expected = registrant("r9");
    expected["webinar_id"] = json!(104);
    assert_eq!(r9, &expected);
    // 1 + 3 + 6 requests: users, webinars (u1, u2 x2), registrants (101 x2, 102, 103, 104).
    assert_eq!(r.metrics.requests, 9);
    assert_eq!(r.states.len(), 1);
}

#[tokio::test]
async fn past_webinar_without_an_instance_is_an_expected_404_and_counted() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN, 1).await;
    mount_page(
        &server,
        "/v2/users",
        None,
        list("users", vec![user("u1")], ""),
        "300",
    )
    .await;
    mount_page(
        &server,
        "/v2/users/u1/webinars",
        None,
        list("webinars", vec![webinar(201, "u1"), webinar(202, "u1")], ""),
        "300",
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/v2/past_webinars/201/participants"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 3001, "message": "Webinar does not exist."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let participant = |uid: &str| json!({"id": "p-1", "user_id": uid, "name": "Jill Chill", "user_email": "jill@example.org", "join_time": "2033-05-01T10:00:00Z", "leave_time": "2033-05-01T10:20:00Z", "duration": 1200});
    mount_page(
        &server,
        "/v2/past_webinars/202/participants",
        None,
        list(
            "participants",
            vec![participant("16778240"), participant("16778241")],
            "",
        ),
        "300",
    )
    .await;
    let r = read(&source(config(&server)), "past_webinar_participants").await;
    assert_eq!(r.error_text(), None);
    let keys: Vec<_> = r
        .records
        .iter()
        .map(|x| {
            (
                x["webinar_id"].as_i64().unwrap(),
                x["user_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(202, "16778240"), (202, "16778241")]);
    assert_eq!(r.metrics.expected_errors, 1);
    assert_eq!(r.metrics.requests, 4);
    assert_eq!(r.states.len(), 1);
}

#[tokio::test]
async fn other_client_errors_fail_the_stream_with_zooms_message() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN, 1).await;
    mount_page(
        &server,
        "/v2/users",
        None,
        list("users", vec![user("u1")], ""),
        "300",
    )
    .await;
    mount_page(
        &server,
        "/v2/users/u1/webinars",
        None,
        list("webinars", vec![webinar(301, "u1")], ""),
        "300",
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/v2/webinars/301/registrants"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 200, "message": "Webinar plan is missing."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(config(&server)), "webinar_registrants").await;
    let error = r.error_text().expect("an error");
    assert!(r.records.is_empty() && r.states.is_empty());
    assert!(
        error.contains("HTTP 400")
            && error.contains("Webinar plan is missing.")
            && error.contains("/v2/webinars/301/registrants"),
        "{error}"
    );
    assert!(!error.contains(SECRET) && !error.contains(TOKEN), "{error}");
    assert_eq!(r.metrics.expected_errors, 0);
}

#[tokio::test]
async fn a_404_on_a_top_level_list_is_an_error() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN, 1).await;
    Mock::given(method("GET"))
        .and(path("/v2/users"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 1001, "message": "User does not exist."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let r = read(&source(config(&server)), "users").await;
    let error = r.error_text().expect("an error");
    assert!(
        error.contains("HTTP 404") && error.contains("User does not exist."),
        "{error}"
    );
    assert!(r.states.is_empty());
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_on_401() {
    let server = MockServer::start().await;
    // First token `tok-old` (rejected), then TOKEN.
    mount_token(&server, "tok-old", 1).await;
    mount_token(&server, TOKEN, 1).await;
    Mock::given(method("GET"))
        .and(path("/v2/users"))
        .and(header("authorization", "Bearer tok-old"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 124, "message": "Invalid access token."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_page(
        &server,
        "/v2/users",
        None,
        list("users", vec![user("u1")], ""),
        "300",
    )
    .await;
    let r = read(&source(config(&server)), "users").await;
    assert_eq!(r.error_text(), None);
    assert_eq!(r.records.len(), 1);
    assert_eq!((r.metrics.requests, r.metrics.retries), (2, 1));
}

#[tokio::test]
async fn a_401_after_the_refresh_fails_without_leaking_secrets() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN, 2).await;
    Mock::given(method("GET"))
        .and(path("/v2/users"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 124, "message": "Invalid access token."})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let r = read(&source(config(&server)), "users").await;
    let error = r.error_text().expect("an error");
    assert!(
        error.contains("401") && error.contains("Invalid access token."),
        "{error}"
    );
    assert!(!error.contains(SECRET) && !error.contains(TOKEN), "{error}");
}

#[tokio::test]
async fn check_lists_one_user() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN, 1).await;
    mount_page(
        &server,
        "/v2/users",
        None,
        list("users", vec![user("u1")], ""),
        "1",
    )
    .await;
    source(config(&server)).check().await.unwrap();
}

/// A record of `stream` made of the example values Zoom's spec gives for its fields.
fn example(stream: &str, id: Value) -> Value {
    let file = if stream == "users" {
        "Users.json"
    } else {
        "Meetings.json"
    };
    let path = weft_conformance::openapi::specs_dir()
        .join("zoom")
        .join(file);
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let catalog = weft_zoom::catalog().unwrap();
    let declared = catalog.stream(stream).unwrap();
    let endpoint = declared
        .endpoint
        .as_deref()
        .unwrap()
        .strip_prefix("/v2")
        .unwrap();
    fn props(schema: &Value, out: &mut serde_json::Map<String, Value>) {
        for part in schema["allOf"].as_array().into_iter().flatten() {
            props(part, out);
        }
        if let Some(p) = schema["properties"].as_object() {
            out.extend(p.clone());
        }
    }
    let mut body = serde_json::Map::new();
    props(
        &spec["paths"][endpoint]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        &mut body,
    );
    let items = declared
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect::<Vec<_>>();
    let item_schema = body
        .values()
        .find(|v| v["type"] == "array" && v["items"].is_object())
        .unwrap()["items"]
        .clone();
    let mut fields = serde_json::Map::new();
    props(&item_schema, &mut fields);
    let mut record = serde_json::Map::new();
    for name in items {
        if let Some(ex) = fields.get(&name).and_then(|p| p.get("example")) {
            record.insert(name, ex.clone());
        }
    }
    record.insert("id".into(), id);
    Value::Object(record)
}

/// Serves one page of `endpoint` to any number of reads.
async fn serve(server: &MockServer, endpoint: &str, items: &str, records: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(endpoint))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(items, records, "")))
        .mount(server)
        .await;
}

#[tokio::test]
async fn every_stream_reads_the_whole_account_and_decodes_under_its_schema() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": TOKEN, "expires_in": 3600})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let users: Vec<Value> = ["u1", "u2", "u3"]
        .iter()
        .map(|u| example("users", json!(u)))
        .collect();
    serve(&server, "/v2/users", "users", users).await;
    let w = |id: i64| example("webinars", json!(id));
    serve(
        &server,
        "/v2/users/u1/webinars",
        "webinars",
        vec![w(1001), w(1002)],
    )
    .await;
    serve(&server, "/v2/users/u2/webinars", "webinars", vec![w(1003)]).await;
    serve(&server, "/v2/users/u3/webinars", "webinars", vec![]).await;
    let m = |id: i64| example("meetings", json!(id));
    serve(&server, "/v2/users/u1/meetings", "meetings", vec![m(5001)]).await;
    serve(
        &server,
        "/v2/users/u2/meetings",
        "meetings",
        vec![m(5002), m(5003)],
    )
    .await;
    serve(&server, "/v2/users/u3/meetings", "meetings", vec![]).await;
    let r = |id: &str| example("webinar_registrants", json!(id));
    serve(
        &server,
        "/v2/webinars/1001/registrants",
        "registrants",
        vec![r("a"), r("b"), r("c")],
    )
    .await;
    serve(
        &server,
        "/v2/webinars/1002/registrants",
        "registrants",
        vec![],
    )
    .await;
    serve(
        &server,
        "/v2/webinars/1003/registrants",
        "registrants",
        vec![r("a"), r("d")],
    )
    .await;
    let p = |uid: &str| {
        let mut x = example("past_webinar_participants", json!("p"));
        x["user_id"] = json!(uid);
        x
    };
    serve(
        &server,
        "/v2/past_webinars/1001/participants",
        "participants",
        vec![p("1"), p("2")],
    )
    .await;
    for absent in [1002, 1003] {
        Mock::given(method("GET"))
            .and(path(format!("/v2/past_webinars/{absent}/participants")))
            .respond_with(
                ResponseTemplate::new(404)
                    .set_body_json(json!({"code": 3001, "message": "Webinar does not exist."})),
            )
            .mount(&server)
            .await;
    }

    let src = source(config(&server));
    let key_of = |rec: &Value, key: &[String]| -> String {
        key.iter()
            .map(|k| rec[k].to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut got = std::collections::BTreeMap::new();
    for spec in src.streams() {
        let r = read(&src, &spec.name).await;
        assert_eq!(r.error_text(), None, "{}", spec.name);
        assert_eq!(r.states.len(), 1, "{}", spec.name);
        // Under the declared schema (Zoom's example values), every record fits.
        let mut decoder = weft_arrow::JsonDecoder::new(
            spec.schema.clone(),
            spec.primary_key.clone(),
            weft_core::SchemaContract::Freeze,
        )
        .unwrap();
        let raws: Vec<_> = r
            .records
            .iter()
            .map(|v| serde_json::value::to_raw_value(v).unwrap())
            .collect();
        let decoded = decoder.decode_page(&raws).unwrap();
        assert!(
            decoded.rejects.is_empty(),
            "{}: {:?}",
            spec.name,
            decoded.rejects
        );
        assert_eq!(
            decoded.batch.map_or(0, |b| b.num_rows()),
            r.records.len(),
            "{}",
            spec.name
        );
        let keys: Vec<String> = r
            .records
            .iter()
            .map(|x| key_of(x, &spec.primary_key))
            .collect();
        let unique: BTreeSet<_> = keys.iter().cloned().collect();
        assert_eq!(unique.len(), keys.len(), "{}: duplicate keys", spec.name);
        got.insert(spec.name.clone(), (unique, r.metrics.expected_errors));
    }
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(got["users"], (set(&["\"u1\"", "\"u2\"", "\"u3\""]), 0));
    assert_eq!(got["webinars"], (set(&["1001", "1002", "1003"]), 0));
    assert_eq!(got["meetings"], (set(&["5001", "5002", "5003"]), 0));
    assert_eq!(
        got["webinar_registrants"],
        (
            set(&[
                "1001/\"a\"",
                "1001/\"b\"",
                "1001/\"c\"",
                "1003/\"a\"",
                "1003/\"d\""
            ]),
            0
        )
    );
    assert_eq!(
        got["past_webinar_participants"],
        (set(&["1001/\"1\"", "1001/\"2\""]), 2)
    );
}
