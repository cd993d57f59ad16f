//! A sentinel secret never appears in any log line or error string.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use serde_json::json;
use url::Url;
use weft_core::StreamMetrics;
use weft_http::{
    Auth, CursorFrom, HttpClient, HttpSettings, Pagination, RequestSpec, SecretString, paginate,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SENTINEL: &str = "sk_test_SENTINEL123";

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn sentinel_secret_never_logged_or_in_errors() {
    let buf = Buf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();

    let server = MockServer::start().await;
    let uri = server.uri();
    // Error bodies that echo the secret back.
    Mock::given(method("GET"))
        .and(path("/v1/bad"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!(
            "Invalid API Key provided: {SENTINEL}; url=/v1/bad?api_key={SENTINEL}"
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/flaky"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string(format!("down for key {SENTINEL}")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .mount(&server)
        .await;
    // Next-page URLs that carry the secret as a query parameter, looping.
    Mock::given(method("GET"))
        .and(path("/v1/pages"))
        .respond_with(move |_: &wiremock::Request| {
            ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "a"}], "next": format!("{uri}/v1/pages?access_token={SENTINEL}&session={SENTINEL}")}))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/cursor"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"has_more": true, "data": [{"id": SENTINEL}]})),
        )
        .mount(&server)
        .await;

    let settings = HttpSettings {
        max_attempts: 2,
        initial_backoff_ms: 5,
        max_backoff_ms: 10,
        min_retry_after_ms: 5,
        ..HttpSettings::default()
    };
    let c = HttpClient::builder(
        "stripe",
        Url::parse(&format!("{}/v1", server.uri())).unwrap(),
    )
    .auth(Auth::Bearer(SecretString::from(SENTINEL)))
    .secret_query_params(&["session"])
    .settings(settings.clone())
    .build()
    .unwrap();
    let m = Arc::new(StreamMetrics::default());
    let mut errors = Vec::new();
    for p in ["bad", "flaky", "limited"] {
        let req = RequestSpec::get(p)
            .query("api_key", SENTINEL)
            .query("key", SENTINEL)
            .query("limit", "10");
        errors.push(c.send(&req, &m).await.unwrap_err());
    }
    let loop_err = paginate(
        c.clone(),
        RequestSpec::get("pages"),
        Pagination::NextUrl {
            items: "/data".into(),
            next_url: "/next".into(),
            end_flag: None,
        },
        m.clone(),
    )
    .try_collect::<Vec<_>>()
    .await
    .unwrap_err();
    errors.push(loop_err);
    let cursor_err = paginate(
        c.clone(),
        RequestSpec::get("cursor"),
        Pagination::BodyCursor {
            items: "/data".into(),
            has_more: Some("/has_more".into()),
            param: "starting_after".into(),
            cursor_from: CursorFrom::LastItemField("id".into()),
        },
        m.clone(),
    )
    .try_collect::<Vec<_>>()
    .await
    .unwrap_err();
    errors.push(cursor_err);
    // A connection error to a closed port, with the secret in the URL.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dead = HttpClient::builder(
        "stripe",
        Url::parse(&format!("http://{closed}/v1")).unwrap(),
    )
    .auth(Auth::Basic {
        user: "u".into(),
        password: SecretString::from(SENTINEL),
    })
    .settings(settings)
    .build()
    .unwrap();
    errors.push(
        dead.send(&RequestSpec::get(format!("x?token={SENTINEL}")), &m)
            .await
            .unwrap_err(),
    );

    assert_eq!(errors.len(), 6);
    for e in &errors {
        let shown = format!("{e} / {e:?}");
        assert!(!shown.contains(SENTINEL), "secret in error: {shown}");
        assert!(!shown.contains("SENTINEL"), "secret in error: {shown}");
    }
    assert!(
        errors[0]
            .to_string()
            .contains("Invalid API Key provided: REDACTED"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0]
            .to_string()
            .contains("api_key=REDACTED&key=REDACTED&limit=10"),
        "{}",
        errors[0]
    );
    assert!(format!("{c:?}").contains("REDACTED") || !format!("{c:?}").contains(SENTINEL));
    assert!(!format!("{c:?}").contains(SENTINEL));

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("http.request"), "request spans are logged");
    assert!(
        logs.contains("api_key=REDACTED"),
        "redacted URLs are logged"
    );
    assert!(logs.contains("retrying request"));
    assert!(
        !logs.contains("SENTINEL"),
        "secret in logs:\n{}",
        logs.lines()
            .filter(|l| l.contains("SENTINEL"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!logs.contains(SENTINEL));
}
