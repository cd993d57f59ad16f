//! Request shapes against a wiremock template API: auth, paging, the
//! incremental filter, checkpoints and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Value, json};
use weft_conformance::read::read_stream;
use weft_core::StreamState;
use weft_http::{BudgetRegistry, HttpSettings};
use weft_template::{TemplateConfig, TemplateSource};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "SENTINEL_TEMPLATE_KEY";

fn source(server: &MockServer, page_size: u32) -> TemplateSource {
    let mut config = TemplateConfig::new(weft_conformance::secret_file(KEY).unwrap());
    config.base_url = Some(server.uri());
    config.page_size = page_size;
    config.settle_secs = 0;
    config.http = Some(HttpSettings {
        max_attempts: 2,
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        ..HttpSettings::default()
    });
    TemplateSource::new(&config, &BudgetRegistry::new()).unwrap()
}

fn widget(id: u32, updated_at: i64) -> Value {
    json!({"id": format!("wgt_{id:06}"), "name": format!("W{id}"), "updated_at": updated_at})
}

#[tokio::test]
async fn pages_by_token_with_the_key_and_checkpoints_the_watermark() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/widgets"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(query_param("limit", "2"))
        .and(query_param_is_missing("page_token"))
        .and(query_param_is_missing("updated_since"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [widget(1, 100), widget(2, 150)], "next_page_token": "p2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/widgets"))
        .and(query_param("page_token", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [widget(3, 150)], "next_page_token": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let source = source(&server, 2);
    let read = read_stream(&source, "widgets")
        .run()
        .await
        .into_result()
        .unwrap();
    let ids: Vec<&str> = read
        .records
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["wgt_000001", "wgt_000002", "wgt_000003"]);
    assert_eq!(read.pages, [2, 1]);
    assert_eq!(
        read.state_values(),
        [json!({"updated_at": 150}), json!({"updated_at": 150})]
    );
    assert_eq!(read.metrics.requests, 2);
}

#[tokio::test]
async fn resumes_from_the_saved_cursor_inclusively() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/widgets"))
        .and(query_param("updated_since", "150"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [widget(3, 150), widget(4, 170)], "next_page_token": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let source = source(&server, 100);
    let read = read_stream(&source, "widgets")
        .state(StreamState(json!({"updated_at": 150})))
        .run()
        .await
        .into_result()
        .unwrap();
    assert_eq!(read.records.len(), 2);
    assert_eq!(read.state_values(), [json!({"updated_at": 170})]);
}

#[tokio::test]
async fn refused_key_fails_naming_the_status_and_never_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/widgets"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"type": "unauthorized", "message": "invalid API key"}
        })))
        .mount(&server)
        .await;
    let source = source(&server, 10);
    let read = read_stream(&source, "widgets").run().await;
    let err = read.error_text().unwrap();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains(KEY), "{err}");
    assert!(read.records.is_empty());
    let check = weft_core::Source::check(&source)
        .await
        .unwrap_err()
        .to_string();
    assert!(check.contains("401") && !check.contains(KEY), "{check}");
}

#[tokio::test]
async fn a_bad_config_names_its_field() {
    let mut config = TemplateConfig::new(weft_conformance::secret_file(KEY).unwrap());
    config.base_url = Some("not a url".into());
    let err = TemplateSource::new(&config, &BudgetRegistry::new())
        .err()
        .unwrap();
    assert!(err.to_string().contains("`base_url`"), "{err}");
}
