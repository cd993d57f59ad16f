//! What to send ([`RequestSpec`]) and what came back ([`Response`]).

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use crate::HttpError;

/// A request body.
#[derive(Clone, Debug)]
pub enum Body {
    /// A JSON document (`Content-Type: application/json`).
    Json(serde_json::Value),
    /// A URL-encoded form (`application/x-www-form-urlencoded`).
    Form(Vec<(String, String)>),
    /// Any text with its content type (SOQL, CSV...).
    Text {
        /// The `Content-Type` header value.
        content_type: String,
        /// The body.
        text: String,
    },
}

/// A request to send.
///
/// `path` is either an absolute URL (next-page URLs) or a path appended to
/// the client's base URL path (`"customers"` and `"/customers"` both give
/// `<base>/customers`). A path that already starts with the base URL's path
/// (Salesforce `nextRecordsUrl`) is taken as is.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: Method,
    /// Path relative to the base URL, or an absolute URL.
    pub path: String,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Body, if any.
    pub body: Option<Body>,
    /// Whether repeating the request is safe. GET/PUT/DELETE are; a POST only
    /// when it carries an `Idempotency-Key` or is an upsert by key. Requests
    /// that are not idempotent are retried only when they surely were not
    /// processed (429, connection refused).
    pub idempotent: bool,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl RequestSpec {
    /// The request as a dry run shows it: method, path with its query, and
    /// the body (a form as an object of its fields). Headers are left out:
    /// credentials travel there.
    pub fn planned(&self) -> weft_core::PlannedRequest {
        let mut path = self.path.trim_start_matches('/').to_string();
        if !self.query.is_empty() {
            let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            path = format!("{path}?{}", query.join("&"));
        }
        let body = match &self.body {
            None => serde_json::Value::Null,
            Some(Body::Json(v)) => v.clone(),
            Some(Body::Form(pairs)) => serde_json::Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                    .collect(),
            ),
            Some(Body::Text { text, .. }) => serde_json::Value::from(text.as_str()),
        };
        weft_core::PlannedRequest {
            method: self.method.to_string(),
            path,
            body,
        }
    }

    /// A request with `method` to `path`; idempotent unless it is a POST or PATCH.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = !matches!(method, Method::POST | Method::PATCH);
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent,
            headers: Vec::new(),
        }
    }

    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A POST with a JSON body (not idempotent unless marked).
    pub fn post_json(path: impl Into<String>, body: serde_json::Value) -> Self {
        let mut r = Self::new(Method::POST, path);
        r.body = Some(Body::Json(body));
        r
    }

    /// A POST with a form body (not idempotent unless marked).
    pub fn post_form(path: impl Into<String>, form: Vec<(String, String)>) -> Self {
        let mut r = Self::new(Method::POST, path);
        r.body = Some(Body::Form(form));
        r
    }

    /// A PUT with a JSON body.
    pub fn put_json(path: impl Into<String>, body: serde_json::Value) -> Self {
        let mut r = Self::new(Method::PUT, path);
        r.body = Some(Body::Json(body));
        r
    }

    /// Adds a query parameter.
    pub fn query(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }

    /// Sets a query parameter, replacing any earlier value of it.
    pub fn set_query(&mut self, k: &str, v: impl Into<String>) {
        self.query.retain(|(name, _)| name != k);
        self.query.push((k.to_string(), v.into()));
    }

    /// Adds a header; an `Idempotency-Key` header makes the request idempotent.
    pub fn header(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        let k = k.into();
        if k.eq_ignore_ascii_case("idempotency-key") {
            self.idempotent = true;
        }
        self.headers.push((k, v.into()));
        self
    }

    /// Marks the request as safe (or not) to repeat.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
}

/// A response, body fully read.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The (decompressed) body.
    pub body: Bytes,
    /// The request URL, redacted.
    pub url: String,
}

impl Response {
    /// Parses the body as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header value as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_planned_request_shows_path_query_and_body_but_no_headers() {
        let req = RequestSpec::post_form("/v1/customers", vec![("email".into(), "a@x.com".into())])
            .query("expand", "data")
            .header("Authorization", "Bearer secret");
        let planned = req.planned();
        assert_eq!(
            (planned.method.as_str(), planned.path.as_str()),
            ("POST", "v1/customers?expand=data")
        );
        assert_eq!(planned.body, serde_json::json!({"email": "a@x.com"}));
        assert!(!serde_json::to_string(&planned).unwrap().contains("secret"));
    }
    use super::*;

    #[test]
    fn idempotency_defaults() {
        assert!(RequestSpec::get("a").idempotent);
        assert!(!RequestSpec::post_json("a", serde_json::json!({})).idempotent);
        assert!(
            RequestSpec::post_form("a", vec![])
                .header("Idempotency-Key", "k1")
                .idempotent
        );
        assert!(RequestSpec::put_json("a", serde_json::json!({})).idempotent);
    }

    #[test]
    fn set_query_replaces() {
        let mut r = RequestSpec::get("a")
            .query("limit", "100")
            .query("starting_after", "x");
        r.set_query("starting_after", "y");
        assert_eq!(
            r.query,
            vec![
                ("limit".to_string(), "100".to_string()),
                ("starting_after".to_string(), "y".to_string())
            ]
        );
    }
}
