//! Retries, Retry-After handling, transport failures and error statuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Raw, client, fast_settings, http_json, http_json_bytes, raw_server};
use serde_json::{Value, json};
use std::sync::Arc;
use url::Url;
use weft_core::StreamMetrics;

use futures::TryStreamExt;
use weft_http::{CursorFrom, HttpClient, HttpError, Page, Pagination, RequestSpec, paginate};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn ok_after(server: &MockServer, first: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path("/v1/x"))
        .respond_with(first)
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/x"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(server)
        .await;
}

async fn request_count(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn retry_after_seconds_pauses_then_succeeds() {
    let server = MockServer::start().await;
    ok_after(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
    )
    .await;
    let c = client(&format!("{}/v1", server.uri()));
    let m = StreamMetrics::default();
    let v: Value = c.get_json(&RequestSpec::get("x"), &m).await.unwrap();
    assert_eq!(v, json!({"ok": true}));
    assert_eq!(request_count(&server).await, 2);
    let s = m.snapshot();
    assert_eq!((s.requests, s.retries, s.rate_limited), (2, 1, 1));
    assert!(
        s.wait_ms >= 900,
        "waited {} ms for Retry-After: 1",
        s.wait_ms
    );
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let server = MockServer::start().await;
    let date = (chrono::Utc::now() + chrono::Duration::seconds(3))
        .to_rfc2822()
        .replace("+0000", "GMT");
    ok_after(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", date.as_str()),
    )
    .await;
    let c = client(&format!("{}/v1", server.uri()));
    let m = StreamMetrics::default();
    let v: Value = c.get_json(&RequestSpec::get("x"), &m).await.unwrap();
    assert_eq!(v["ok"], json!(true));
    assert_eq!(request_count(&server).await, 2);
    let s = m.snapshot();
    assert_eq!(s.rate_limited, 1);
    // The date has one-second resolution: more than 2 s of the 3 s remained when sent.
    assert!(
        s.wait_ms >= 1500,
        "waited {} ms for an HTTP-date 3 s ahead",
        s.wait_ms
    );
}

#[tokio::test]
async fn retry_after_zero_still_waits_the_floor() {
    let server = MockServer::start().await;
    ok_after(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "0"),
    )
    .await;
    let c = client(&format!("{}/v1", server.uri()));
    let m = StreamMetrics::default();
    let _: Value = c.get_json(&RequestSpec::get("x"), &m).await.unwrap();
    assert_eq!(request_count(&server).await, 2);
    let s = m.snapshot();
    assert_eq!((s.requests, s.retries, s.rate_limited), (2, 1, 1));
    // min_retry_after_ms is 200 in fast_settings.
    assert!(
        s.wait_ms >= 190,
        "waited {} ms; the floor is 200 ms",
        s.wait_ms
    );
}

#[tokio::test]
async fn persistent_429_gives_up_with_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .mount(&server)
        .await;
    let mut settings = fast_settings();
    settings.min_retry_after_ms = 10;
    let c = HttpClient::builder("test", Url::parse(&server.uri()).unwrap())
        .settings(settings)
        .build()
        .unwrap();
    let m = StreamMetrics::default();
    let err = c.send(&RequestSpec::get("x"), &m).await.unwrap_err();
    assert!(
        matches!(err, HttpError::RateLimited { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(429));
    assert!(err.is_retryable());
    assert_eq!(request_count(&server).await, 4);
    assert_eq!(m.snapshot().rate_limited, 4);
}

#[tokio::test]
async fn server_error_then_success() {
    let server = MockServer::start().await;
    ok_after(&server, ResponseTemplate::new(503).set_body_string("busy")).await;
    let c = client(&format!("{}/v1", server.uri()));
    let m = StreamMetrics::default();
    let v: Value = c.get_json(&RequestSpec::get("/x"), &m).await.unwrap();
    assert_eq!(v["ok"], json!(true));
    assert_eq!(request_count(&server).await, 2);
    let s = m.snapshot();
    assert_eq!((s.requests, s.retries, s.rate_limited), (2, 1, 0));
}

#[tokio::test]
async fn non_idempotent_post_is_not_retried_on_503() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("try later"))
        .mount(&server)
        .await;
    let c = client(&server.uri());
    let m = StreamMetrics::default();
    let err = c
        .send(&RequestSpec::post_json("jobs", json!({"a": 1})), &m)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(request_count(&server).await, 1);
    // With an Idempotency-Key it is retried.
    let req = RequestSpec::post_json("jobs", json!({"a": 1})).header("Idempotency-Key", "k-1");
    let err = c.send(&req, &m).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(request_count(&server).await, 1 + 4);
}

#[tokio::test]
async fn reset_connection_then_success() {
    let (uri, conns) = raw_server(vec![Raw::Drop, Raw::Send(http_json(r#"{"n":1}"#))]).await;
    let c = client(&uri);
    let m = StreamMetrics::default();
    let v: Value = c.get_json(&RequestSpec::get("x"), &m).await.unwrap();
    assert_eq!(v, json!({"n": 1}));
    assert_eq!(*conns.lock().unwrap(), 2);
    let s = m.snapshot();
    assert_eq!((s.requests, s.retries), (2, 1));
}

#[tokio::test]
async fn truncated_body_then_success() {
    let short = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"n\":".to_vec();
    let (uri, conns) = raw_server(vec![Raw::Send(short), Raw::Send(http_json(r#"{"n":2}"#))]).await;
    let c = client(&uri);
    let m = StreamMetrics::default();
    let resp = c.send(&RequestSpec::get("x"), &m).await.unwrap();
    assert_eq!(&resp.body[..], br#"{"n":2}"#);
    assert_eq!(*conns.lock().unwrap(), 2);
    assert_eq!(m.snapshot().retries, 1);
}

#[tokio::test]
async fn invalid_json_is_retried_by_get_json() {
    let (uri, conns) = raw_server(vec![
        Raw::Send(http_json(r#"{"n":[1,2"#)),
        Raw::Send(http_json(r#"{"n":[1,2]}"#)),
    ])
    .await;
    let c = client(&uri);
    let m = StreamMetrics::default();
    let v: Value = c.get_json(&RequestSpec::get("x"), &m).await.unwrap();
    assert_eq!(v, json!({"n": [1, 2]}));
    assert_eq!(*conns.lock().unwrap(), 2);
    let s = m.snapshot();
    assert_eq!((s.requests, s.retries), (2, 1));
}

#[tokio::test]
async fn unreadable_body_every_time_is_a_body_error() {
    let (uri, conns) = raw_server(vec![Raw::Send(http_json("not json"))]).await;
    let c = client(&uri);
    let m = StreamMetrics::default();
    let err = c
        .get_json::<Value>(&RequestSpec::get("x"), &m)
        .await
        .unwrap_err();
    assert!(
        matches!(err, HttpError::Body { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(*conns.lock().unwrap(), 4);
}

#[tokio::test]
async fn client_errors_carry_the_vendor_message() {
    let server = MockServer::start().await;
    for (status, msg) in [
        (400, "No such parameter: limitt"),
        (403, "Key lacks permission rak_read"),
        (404, "No such customer: cus_404"),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/s{status}")))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(json!({"error": {"message": msg}})),
            )
            .mount(&server)
            .await;
    }
    let c = client(&server.uri());
    let m = StreamMetrics::default();
    for (status, msg) in [
        (400u16, "No such parameter: limitt"),
        (403, "Key lacks permission rak_read"),
        (404, "No such customer: cus_404"),
    ] {
        let err = c
            .send(&RequestSpec::get(format!("s{status}")), &m)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(text.contains(msg), "{text}");
        assert!(text.contains(&format!("HTTP {status}")), "{text}");
        assert!(text.starts_with("test: GET "), "{text}");
    }
    // Not retried: one request per status.
    assert_eq!(request_count(&server).await, 3);
    assert_eq!(m.snapshot().retries, 0);
}

#[tokio::test]
async fn long_error_bodies_are_trimmed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(422).set_body_string("x".repeat(2000)))
        .mount(&server)
        .await;
    let c = client(&server.uri());
    let err = c
        .send(&RequestSpec::get("x"), &StreamMetrics::default())
        .await
        .unwrap_err();
    let HttpError::Status { body, status, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(status, 422);
    assert_eq!(body.chars().count(), 501);
    assert!(body.ends_with('…'));
}

#[tokio::test]
async fn expected_status_is_returned_and_counted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("gone"))
        .mount(&server)
        .await;
    let c = HttpClient::builder("test", Url::parse(&server.uri()).unwrap())
        .settings(fast_settings())
        .expected_status(404)
        .build()
        .unwrap();
    let m = StreamMetrics::default();
    let resp = c.send(&RequestSpec::get("x"), &m).await.unwrap();
    assert_eq!(resp.status, 404);
    assert_eq!(resp.text(), "gone");
    let err = c
        .get_json::<Value>(&RequestSpec::get("x"), &m)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let s = m.snapshot();
    assert_eq!((s.expected_errors, s.requests, s.retries), (2, 2, 0));
}

#[tokio::test]
async fn user_agent_headers_and_bytes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::header(
            "user-agent",
            weft_http::USER_AGENT,
        ))
        .and(wiremock::matchers::header("stripe-version", "2024-06-20"))
        .and(wiremock::matchers::query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"a\":1}"))
        .mount(&server)
        .await;
    let c = HttpClient::builder("test", Url::parse(&server.uri()).unwrap())
        .header("Stripe-Version", "2024-06-20")
        .build()
        .unwrap();
    let m = StreamMetrics::default();
    let resp = c
        .send(&RequestSpec::get("x").query("limit", "100"), &m)
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(m.snapshot().bytes, 7);
    assert!(weft_http::USER_AGENT.starts_with("weft/"));
}

fn stripe_style() -> Pagination {
    Pagination::BodyCursor {
        items: "/data".into(),
        has_more: Some("/has_more".into()),
        param: "starting_after".into(),
        cursor_from: CursorFrom::LastItemField("id".into()),
    }
}

async fn pages(uri: &str) -> (Result<Vec<Page>, HttpError>, Arc<StreamMetrics>) {
    let metrics = Arc::new(StreamMetrics::default());
    let pages = paginate(
        client(uri),
        RequestSpec::get("x"),
        stripe_style(),
        metrics.clone(),
    )
    .try_collect()
    .await;
    (pages, metrics)
}

#[tokio::test]
async fn list_pages_cut_short_or_not_json_are_retried() {
    let good = r#"{"data":[{"id":"café"},{"id":"thé"}],"has_more":false}"#;
    // Cut inside the two bytes of "é": not UTF-8 only because it is cut short.
    let cut = &good.as_bytes()[..good.find("é").unwrap() + 1];
    let (uri, conns) = raw_server(vec![
        Raw::Send(http_json_bytes(cut)),
        Raw::Send(http_json("<html><body>502 Bad Gateway</body></html>")),
        Raw::Send(http_json(good)),
    ])
    .await;
    let (pages, metrics) = pages(&uri).await;
    let pages = pages.unwrap();
    assert_eq!(pages.len(), 1);
    let ids: Vec<&str> = pages[0].records.iter().map(|r| r.get()).collect();
    assert_eq!(ids, [r#"{"id":"café"}"#, r#"{"id":"thé"}"#]);
    assert_eq!(*conns.lock().unwrap(), 3);
    let s = metrics.snapshot();
    assert_eq!((s.requests, s.retries), (3, 2));
}

#[tokio::test]
async fn list_page_with_invalid_utf8_fails_without_retrying() {
    let body = b"{\"data\":[{\"id\":\"a\xffb\"}],\"has_more\":false}";
    let (uri, conns) = raw_server(vec![Raw::Send(http_json_bytes(body))]).await;
    let (pages, metrics) = pages(&uri).await;
    let err = pages.unwrap_err();
    assert!(
        matches!(&err, HttpError::Decode { reason, .. } if reason.contains("not UTF-8")),
        "{err:?}"
    );
    assert_eq!(*conns.lock().unwrap(), 1);
    assert_eq!(metrics.snapshot().retries, 0);
}

#[tokio::test]
async fn list_page_never_json_is_a_body_error_after_every_attempt() {
    let (uri, conns) = raw_server(vec![Raw::Send(http_json(r#"{"data":[1,2"#))]).await;
    let (pages, _) = pages(&uri).await;
    let err = pages.unwrap_err();
    assert!(
        matches!(&err, HttpError::Body { attempts: 4, reason, .. }
            if reason.contains("not valid JSON") && reason.contains("EOF")),
        "{err:?}"
    );
    assert_eq!(*conns.lock().unwrap(), 4);
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_decode_error_without_retrying() {
    #[derive(Debug, serde::Deserialize)]
    struct N {
        #[allow(dead_code)]
        n: i64,
    }
    let (uri, conns) = raw_server(vec![Raw::Send(http_json(r#"{"n":"x"}"#))]).await;
    let m = StreamMetrics::default();
    let err = client(&uri)
        .get_json::<N>(&RequestSpec::get("x"), &m)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HttpError::Decode { reason, .. } if reason.contains("invalid type: string \"x\"")),
        "{err:?}"
    );
    assert_eq!(*conns.lock().unwrap(), 1);
    assert_eq!(m.snapshot().retries, 0);
}
