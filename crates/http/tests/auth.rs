//! Auth providers: static keys, OAuth2 token caching, 401 refresh, single refresh in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::fast_settings;
use serde_json::{Value, json};
use url::Url;
use weft_core::StreamMetrics;
use weft_http::{
    Auth, HttpClient, HttpError, OAuth2ClientCredentials, OAuth2RefreshToken, RequestSpec,
    SecretString,
};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn token_body(token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}),
    )
}

async fn hits(server: &MockServer, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

fn oauth_client(server: &MockServer, provider: OAuth2ClientCredentials) -> HttpClient {
    HttpClient::builder("zoom", Url::parse(&format!("{}/v2", server.uri())).unwrap())
        .settings(fast_settings())
        .auth(Auth::Token(Arc::new(provider)))
        .build()
        .unwrap()
}

fn zoom_provider(server: &MockServer) -> OAuth2ClientCredentials {
    OAuth2ClientCredentials::zoom(
        Url::parse(&format!("{}/oauth/token", server.uri())).unwrap(),
        "acct-1",
        "client-1",
        SecretString::from("client-secret-1"),
    )
    .unwrap()
}

#[tokio::test]
async fn unauthorized_refreshes_once_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(query_param("grant_type", "account_credentials"))
        .and(query_param("account_id", "acct-1"))
        // base64("client-1:client-secret-1")
        .and(header(
            "authorization",
            "Basic Y2xpZW50LTE6Y2xpZW50LXNlY3JldC0x",
        ))
        .respond_with(token_body("tok1", 3600))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_body("tok2", 3600))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer tok1"))
        .respond_with(ResponseTemplate::new(401).set_body_string("expired"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/users"))
        .and(header("authorization", "Bearer tok2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"users": []})))
        .mount(&server)
        .await;
    let c = oauth_client(&server, zoom_provider(&server));
    let m = StreamMetrics::default();
    let v: Value = c.get_json(&RequestSpec::get("users"), &m).await.unwrap();
    assert_eq!(v, json!({"users": []}));
    assert_eq!(hits(&server, "/oauth/token").await, 2);
    assert_eq!(hits(&server, "/v2/users").await, 2);
    let s = m.snapshot();
    assert_eq!((s.requests, s.retries), (2, 1));
}

#[tokio::test]
async fn unauthorized_twice_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_body("tok", 3600))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string("{\"message\":\"Invalid access token.\"}"),
        )
        .mount(&server)
        .await;
    let c = oauth_client(&server, zoom_provider(&server));
    let err = c
        .send(&RequestSpec::get("users"), &StreamMetrics::default())
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Unauthorized { .. }), "{err:?}");
    assert_eq!(err.status(), Some(401));
    assert!(err.to_string().contains("Invalid access token."), "{err}");
    assert_eq!(hits(&server, "/oauth/token").await, 2);
    assert_eq!(hits(&server, "/v2/users").await, 2);
}

#[tokio::test]
async fn static_key_401_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Invalid API Key provided"))
        .mount(&server)
        .await;
    let c = HttpClient::builder("stripe", Url::parse(&server.uri()).unwrap())
        .auth(Auth::Bearer(SecretString::from("sk_test_abcdef")))
        .build()
        .unwrap();
    let err = c
        .send(&RequestSpec::get("x"), &StreamMetrics::default())
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Unauthorized { .. }));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_requests_on_an_expired_token_fetch_one_token() {
    let server = MockServer::start().await;
    // The first token expires within the refresh margin, so it counts as expired.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_body("old", 30))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_body("new", 3600).set_delay(std::time::Duration::from_millis(100)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let c = oauth_client(&server, zoom_provider(&server));
    let m = Arc::new(StreamMetrics::default());
    c.send(&RequestSpec::get("users"), &m).await.unwrap();
    assert_eq!(hits(&server, "/oauth/token").await, 1);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, m) = (c.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            c.send(&RequestSpec::get("users"), &m)
                .await
                .map(|r| r.status)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    assert_eq!(hits(&server, "/oauth/token").await, 2);
    let bearer_new = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer new")
        })
        .count();
    assert_eq!(bearer_new, 20);
}

#[tokio::test]
async fn twenty_concurrent_401s_refresh_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_body("revoked", 3600))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_body("fresh", 3600))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer revoked"))
        .respond_with(ResponseTemplate::new(401).set_delay(std::time::Duration::from_millis(50)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let c = oauth_client(&server, zoom_provider(&server));
    let m = Arc::new(StreamMetrics::default());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, m) = (c.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            c.send(&RequestSpec::get("users"), &m)
                .await
                .map(|r| r.status)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    assert_eq!(hits(&server, "/oauth/token").await, 2);
    assert_eq!(m.snapshot().requests, 40);
}

#[tokio::test]
async fn refresh_token_grant_uses_the_instance_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(wiremock::matchers::body_string_contains(
            "grant_type=refresh_token",
        ))
        .and(wiremock::matchers::body_string_contains(
            "refresh_token=rt-secret-1",
        ))
        .and(wiremock::matchers::body_string_contains("client_id=cid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "00Dxx!sf", "instance_url": server.uri(), "token_type": "Bearer"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/data/v60.0/query"))
        .and(query_param("q", "SELECT Id FROM Account"))
        .and(header("authorization", "Bearer 00Dxx!sf"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"done": true, "records": []})),
        )
        .mount(&server)
        .await;
    let provider = OAuth2RefreshToken::new(
        "salesforce",
        Url::parse(&format!("{}/services/oauth2/token", server.uri())).unwrap(),
        "cid",
        Some(SecretString::from("csecret")),
        SecretString::from("rt-secret-1"),
    )
    .unwrap();
    // The login host is never contacted: API calls go to the token's instance URL.
    let c = HttpClient::builder(
        "salesforce",
        Url::parse("https://login.invalid/services/data/v60.0").unwrap(),
    )
    .auth(Auth::Token(Arc::new(provider)))
    .build()
    .unwrap();
    let v: Value = c
        .get_json(
            &RequestSpec::get("query").query("q", "SELECT Id FROM Account"),
            &StreamMetrics::default(),
        )
        .await
        .unwrap();
    assert_eq!(v["done"], json!(true));
}

#[tokio::test]
async fn token_endpoint_failure_is_an_auth_error_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string("invalid_client: client-secret-1 rejected"),
        )
        .mount(&server)
        .await;
    let c = oauth_client(&server, zoom_provider(&server));
    let err = c
        .send(&RequestSpec::get("users"), &StreamMetrics::default())
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Auth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("invalid_client"),
        "{text}"
    );
    assert!(!text.contains("client-secret-1"), "{text}");
}

#[tokio::test]
async fn basic_and_header_auth_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/basic"))
        // base64("me@x.test/token:zd-key")
        .and(header(
            "authorization",
            "Basic bWVAeC50ZXN0L3Rva2VuOnpkLWtleQ==",
        ))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/header"))
        .and(header("x-api-key", "hk-123"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let m = StreamMetrics::default();
    let basic = HttpClient::builder("zendesk", Url::parse(&server.uri()).unwrap())
        .auth(Auth::Basic {
            user: "me@x.test/token".into(),
            password: SecretString::from("zd-key"),
        })
        .build()
        .unwrap();
    assert_eq!(
        basic
            .send(&RequestSpec::get("basic"), &m)
            .await
            .unwrap()
            .status,
        200
    );
    let hdr = HttpClient::builder("x", Url::parse(&server.uri()).unwrap())
        .auth(Auth::Header {
            name: "X-Api-Key".into(),
            value: SecretString::from("hk-123"),
        })
        .build()
        .unwrap();
    assert_eq!(
        hdr.send(&RequestSpec::get("header"), &m)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        format!("{:?}", Auth::Bearer(SecretString::from("sk_live_x"))),
        "Bearer(REDACTED)"
    );
}
