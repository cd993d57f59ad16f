//! The HTTP client: budget, auth, retries, counters, tracing and redaction per request.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;
use weft_core::StreamMetrics;

use crate::HttpError;
use crate::auth::{AccessToken, Auth, TokenProvider};
use crate::budget::Budget;
use crate::redact::{Redactor, trim_chars};
use crate::request::{Body, RequestSpec, Response};
use crate::settings::HttpSettings;

/// Longest vendor error body kept in an error, in characters.
const MAX_ERROR_BODY_CHARS: usize = 500;

/// A client for one API: shares a [`Budget`], authenticates, retries and
/// counts every request. Cheap to clone (an `Arc` inside).
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    api: String,
    base_url: Url,
    http: reqwest::Client,
    auth: Auth,
    /// Prebuilt, sensitive-marked header of a static key auth (`Bearer` / `Header`).
    auth_header: Option<(HeaderName, HeaderValue)>,
    budget: Arc<Budget>,
    settings: HttpSettings,
    expected: Vec<u16>,
    redactor: Redactor,
    /// Serialises 401-triggered refreshes so concurrent 401s cause one refresh.
    refresh_lock: tokio::sync::Mutex<()>,
}

/// Builds an [`HttpClient`].
#[derive(Debug)]
pub struct HttpClientBuilder {
    api: String,
    base_url: Url,
    auth: Auth,
    budget: Option<Arc<Budget>>,
    settings: HttpSettings,
    headers: Vec<(String, String)>,
    expected: Vec<u16>,
    secret_params: Vec<String>,
}

impl HttpClientBuilder {
    /// Sets how requests authenticate (default: none).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Shares `budget` (from [`BudgetRegistry`](crate::BudgetRegistry));
    /// without one the client gets a private unlimited budget.
    pub fn budget(mut self, budget: Arc<Budget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Sets retry and timeout settings.
    pub fn settings(mut self, settings: HttpSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Adds a header sent with every request (e.g. `Stripe-Version`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Declares an error status as expected: it is returned as `Ok(Response)`
    /// by [`HttpClient::send`] and counted in `expected_errors`.
    pub fn expected_status(mut self, status: u16) -> Self {
        self.expected.push(status);
        self
    }

    /// Names more query parameters whose values are secret (in addition to
    /// `api_key`, `access_token`, `token`, `key`, `password`, `client_secret`...).
    pub fn secret_query_params(mut self, names: &[&str]) -> Self {
        self.secret_params
            .extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HttpClient, HttpError> {
        let api = self.api;
        let build_err = |reason: String| HttpError::Build {
            api: api.clone(),
            reason,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| build_err(format!("invalid header name {name:?}: {e}")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|e| build_err(format!("invalid value for header {name:?}: {e}")))?;
            headers.insert(n, v);
        }
        let http = reqwest::Client::builder()
            .user_agent(crate::USER_AGENT)
            .gzip(true)
            .connect_timeout(Duration::from_secs(self.settings.connect_timeout_secs))
            .timeout(Duration::from_secs(self.settings.request_timeout_secs))
            .default_headers(headers)
            .build()
            .map_err(|e| build_err(describe_reqwest(&e)))?;
        let auth_header = match &self.auth {
            Auth::Bearer(token) => Some((
                AUTHORIZATION,
                bearer_value(token.expose_secret()).map_err(|_| {
                    build_err("the bearer token is not a valid header value".into())
                })?,
            )),
            Auth::Header { name, value } => {
                let n = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| build_err(format!("invalid auth header name {name:?}: {e}")))?;
                let mut v = HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                    build_err(format!(
                        "the value of auth header {name:?} is not a valid header value"
                    ))
                })?;
                v.set_sensitive(true);
                Some((n, v))
            }
            Auth::None | Auth::Basic { .. } | Auth::Token(_) => None,
        };
        let mut redactor = Redactor::new();
        redactor.add_names(self.secret_params.iter().map(String::as_str));
        for v in self.auth.secret_values() {
            redactor.add_value(v);
        }
        let budget = self
            .budget
            .unwrap_or_else(|| Arc::new(Budget::unlimited(&api)));
        Ok(HttpClient {
            inner: Arc::new(Inner {
                api,
                base_url: self.base_url,
                http,
                auth: self.auth,
                auth_header,
                budget,
                settings: self.settings,
                expected: self.expected,
                redactor,
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

fn bearer_value(token: &str) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Why one attempt failed in a way that may be retried.
enum Failure {
    /// 429; the `Retry-After` if sent.
    RateLimited(Option<Duration>),
    /// 500/502/503/504.
    Server(Response),
    /// The request timed out; `sent` is false when it timed out while connecting.
    Timeout { sent: bool },
    /// Connecting failed (`sent` false) or the connection dropped after sending.
    Connect { sent: bool, reason: String },
    /// The body ended early, could not be decoded, or was not valid JSON.
    Body(String),
}

impl Failure {
    fn retry_allowed(&self, idempotent: bool) -> bool {
        match self {
            Failure::RateLimited(_) => true,
            Failure::Timeout { sent } | Failure::Connect { sent, .. } => idempotent || !sent,
            Failure::Server(_) | Failure::Body(_) => idempotent,
        }
    }

    fn describe(&self) -> String {
        match self {
            Failure::RateLimited(Some(d)) => format!("HTTP 429, Retry-After {} ms", d.as_millis()),
            Failure::RateLimited(None) => "HTTP 429".into(),
            Failure::Server(r) => format!("HTTP {}", r.status),
            Failure::Timeout { .. } => "timed out".into(),
            Failure::Connect { reason, .. } => format!("connection failed: {reason}"),
            Failure::Body(reason) => format!("bad body: {reason}"),
        }
    }
}

/// Describes a reqwest error without its URL (which may carry secrets).
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() {
        "error reading the body"
    } else if e.is_decode() {
        "error decoding the body"
    } else if e.is_builder() {
        "invalid request"
    } else {
        "error sending the request"
    };
    let mut out = kind.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn transport_failure(e: &reqwest::Error, reading_body: bool) -> Failure {
    let sent = reading_body || !e.is_connect();
    if e.is_timeout() {
        Failure::Timeout { sent }
    } else if reading_body || e.is_body() || e.is_decode() {
        Failure::Body(describe_reqwest(e))
    } else {
        Failure::Connect {
            sent,
            reason: describe_reqwest(e),
        }
    }
}

/// Parses `Retry-After` as seconds or an HTTP-date.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let date = DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (date.with_timezone(&Utc) - Utc::now())
        .num_milliseconds()
        .max(0);
    Some(Duration::from_millis(ms.unsigned_abs()))
}

/// Resolves a request path against the base URL (see [`RequestSpec`]).
pub(crate) fn resolve(base: &Url, path: &str) -> Result<Url, url::ParseError> {
    let lower = path
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Url::parse(path);
    }
    let base_path = base.path().trim_end_matches('/');
    if !base_path.is_empty()
        && path.starts_with(base_path)
        && matches!(
            path.as_bytes().get(base_path.len()),
            None | Some(b'/') | Some(b'?')
        )
    {
        return base.join(path);
    }
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut url = base.clone();
    let p = p.trim_start_matches('/');
    if !p.is_empty() {
        url.set_path(&format!("{base_path}/{p}"));
    }
    if let Some(q) = q {
        url.set_query(Some(q));
    }
    Ok(url)
}

impl HttpClient {
    /// Starts building a client for `api` (used in budgets, logs and errors) at `base_url`.
    pub fn builder(api: &str, base_url: Url) -> HttpClientBuilder {
        HttpClientBuilder {
            api: api.to_string(),
            base_url,
            auth: Auth::None,
            budget: None,
            settings: HttpSettings::default(),
            headers: Vec::new(),
            expected: Vec::new(),
            secret_params: Vec::new(),
        }
    }

    /// The base URL relative paths resolve against.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The API name.
    pub fn api(&self) -> &str {
        &self.inner.api
    }

    /// The budget this client draws from.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.inner.budget
    }

    /// The retry and timeout settings.
    pub fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    /// `url` as text with secrets replaced (for logs and errors).
    pub fn redact_url(&self, url: &Url) -> String {
        self.inner.redactor.url(url)
    }

    /// `text` with this client's known secret values and secret `name=value` pairs replaced.
    pub fn redact_text(&self, text: &str) -> String {
        self.inner.redactor.text(text, &[])
    }

    /// Sends `req`: waits for the budget, authenticates, retries transient
    /// failures, updates `metrics`, and returns the response of a 2xx/3xx or
    /// of an expected status. Other statuses become errors.
    pub async fn send(
        &self,
        req: &RequestSpec,
        metrics: &StreamMetrics,
    ) -> Result<Response, HttpError> {
        self.send_reading(req, metrics, &|_| Ok(()))
            .await
            .map(|(resp, _)| resp)
    }

    /// Sends `req` and parses the JSON body into `T`. A 2xx body that is not
    /// valid JSON (cut short) is retried like a transient failure; valid JSON
    /// of the wrong shape is a [`HttpError::Decode`]. An expected error status
    /// (counted in `expected_errors`) is returned as [`HttpError::Status`];
    /// use [`HttpClient::send`] to handle it as a response instead.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        req: &RequestSpec,
        metrics: &StreamMetrics,
    ) -> Result<T, HttpError> {
        // One parse checks and reads the body: not JSON is retried, JSON of
        // the wrong shape is kept for the decode error.
        let read = |resp: &Response| match serde_json::from_slice::<T>(&resp.body) {
            Err(e) if e.is_syntax() || e.is_eof() => {
                Err(format!("the body is not valid JSON ({e})"))
            }
            parsed => Ok(parsed),
        };
        let (resp, parsed) = self.send_reading(req, metrics, &read).await?;
        match parsed {
            Some(parsed) if (200..300).contains(&resp.status) => {
                parsed.map_err(|e| HttpError::Decode {
                    url: resp.url.clone(),
                    reason: e.to_string(),
                })
            }
            _ => Err(self.status_error(req, &resp, &[])),
        }
    }

    fn url_for(&self, req: &RequestSpec, token: Option<&AccessToken>) -> Result<Url, HttpError> {
        let base = match token.and_then(|t| t.instance_url.as_ref()) {
            Some(instance) => {
                let mut b = instance.clone();
                b.set_path(self.inner.base_url.path());
                b
            }
            None => self.inner.base_url.clone(),
        };
        let mut url = resolve(&base, &req.path).map_err(|e| HttpError::Url {
            api: self.inner.api.clone(),
            path: self.inner.redactor.text(&req.path, &[]),
            reason: e.to_string(),
        })?;
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&req.query);
        }
        Ok(url)
    }

    /// Per-request secret values: secret query parameter values and the current token.
    fn request_secrets(&self, url: &Url, token: Option<&AccessToken>) -> Vec<String> {
        let mut out: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| self.inner.redactor.is_secret_name(k))
            .map(|(_, v)| v.into_owned())
            .collect();
        if let Some(t) = token {
            out.push(t.value.expose_secret().to_string());
        }
        out
    }

    fn status_error(&self, req: &RequestSpec, resp: &Response, extra: &[&str]) -> HttpError {
        let body = self.inner.redactor.text(
            &trim_chars(&String::from_utf8_lossy(&resp.body), MAX_ERROR_BODY_CHARS),
            extra,
        );
        match resp.status {
            401 => HttpError::Unauthorized {
                api: self.inner.api.clone(),
                url: resp.url.clone(),
                body,
            },
            status => HttpError::Status {
                api: self.inner.api.clone(),
                method: req.method.to_string(),
                status,
                url: resp.url.clone(),
                body,
            },
        }
    }

    /// Like [`HttpClient::send`], and `read` reads a 2xx/3xx body on the way
    /// (`None` for an expected error status). `read` failing with a reason
    /// means the body is cut short or not JSON: it is retried like a
    /// transient failure. One read both checks and parses a body.
    pub(crate) async fn send_reading<T>(
        &self,
        req: &RequestSpec,
        metrics: &StreamMetrics,
        read: &(dyn Fn(&Response) -> Result<T, String> + Sync),
    ) -> Result<(Response, Option<T>), HttpError> {
        let inner = &*self.inner;
        let settings = &inner.settings;
        let started = Instant::now();
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(settings.initial_backoff_ms))
            .with_max_delay(Duration::from_millis(
                settings.max_backoff_ms.max(settings.initial_backoff_ms),
            ))
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let permit = inner.budget.acquire().await?;
            metrics.add_wait_ms(millis(permit.waited()));
            let token = match &inner.auth {
                Auth::Token(provider) => Some(provider.token(false).await?),
                _ => None,
            };
            let url = self.url_for(req, token.as_ref())?;
            let shown_url = inner.redactor.url(&url);
            let secrets = self.request_secrets(&url, token.as_ref());
            let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let span = tracing::debug_span!(
                "http.request",
                api = %inner.api,
                method = %req.method,
                url = %shown_url,
                attempt,
                status = tracing::field::Empty,
            );
            metrics.add_requests(1);
            inner.budget.record_requests(1);
            let sent = Instant::now();
            let outcome = self
                .attempt(req, url, token.as_ref())
                .instrument(span.clone())
                .await;
            inner.budget.observe_latency(sent.elapsed());
            drop(permit);
            let failure = match outcome {
                Err(AttemptError::Invalid(reason)) => {
                    return Err(HttpError::Build {
                        api: inner.api.clone(),
                        reason: inner.redactor.text(&reason, &secret_refs),
                    });
                }
                Err(AttemptError::Failed(f)) => f,
                Ok((status, headers, body)) => {
                    span.record("status", status);
                    metrics.add_bytes(body.len() as u64);
                    inner.budget.observe(&headers);
                    span.in_scope(|| tracing::debug!(status, bytes = body.len(), "response"));
                    let resp = Response {
                        status,
                        headers,
                        body: without_bom(body),
                        url: shown_url.clone(),
                    };
                    match status {
                        200..=399 => match read(&resp) {
                            Ok(value) => return Ok((resp, Some(value))),
                            Err(reason) => Failure::Body(reason),
                        },
                        401 => match (&inner.auth, &token) {
                            (Auth::Token(provider), Some(used)) if !refreshed => {
                                refreshed = true;
                                span.in_scope(|| {
                                    tracing::info!("HTTP 401; refreshing the access token once")
                                });
                                self.refresh(provider.as_ref(), used).await?;
                                metrics.add_retries(1);
                                continue;
                            }
                            _ => return Err(self.status_error(req, &resp, &secret_refs)),
                        },
                        429 => {
                            metrics.add_rate_limited(1);
                            Failure::RateLimited(parse_retry_after(&resp.headers))
                        }
                        s if inner.expected.contains(&s) => {
                            metrics.add_expected_errors(1);
                            return Ok((resp, None));
                        }
                        500 | 502 | 503 | 504 => Failure::Server(resp),
                        _ => return Err(self.status_error(req, &resp, &secret_refs)),
                    }
                }
            };
            let floor = settings.min_retry_after();
            let delay = match &failure {
                Failure::RateLimited(Some(ra)) => (*ra).max(floor),
                Failure::RateLimited(None) => backoff.next().unwrap_or(floor).max(floor),
                _ => backoff.next().unwrap_or_default(),
            };
            let out_of_time = started.elapsed() + delay > settings.max_retry();
            if !failure.retry_allowed(req.idempotent)
                || attempt >= settings.max_attempts
                || out_of_time
            {
                return Err(self.give_up(req, failure, shown_url, attempt, &secret_refs));
            }
            let reason = inner.redactor.text(&failure.describe(), &secret_refs);
            span.in_scope(|| {
                tracing::warn!(delay_ms = millis(delay), reason = %reason, "retrying request");
            });
            metrics.add_retries(1);
            if let Failure::RateLimited(_) = failure {
                // Pause the whole account; the next acquire waits (and counts the wait).
                inner.budget.pause_for(delay);
            } else {
                tokio::time::sleep(delay).await;
                metrics.add_wait_ms(millis(delay));
            }
        }
    }

    fn give_up(
        &self,
        req: &RequestSpec,
        failure: Failure,
        url: String,
        attempts: u32,
        secrets: &[&str],
    ) -> HttpError {
        let api = self.inner.api.clone();
        match failure {
            Failure::RateLimited(retry_after) => HttpError::RateLimited {
                api,
                url,
                attempts,
                retry_after,
            },
            Failure::Server(resp) => self.status_error(req, &resp, secrets),
            Failure::Timeout { .. } => HttpError::Timeout { api, url, attempts },
            Failure::Connect { reason, .. } => HttpError::Connect {
                api,
                url,
                attempts,
                reason: self.inner.redactor.text(&reason, secrets),
            },
            Failure::Body(reason) => HttpError::Body {
                api,
                url,
                attempts,
                reason: self.inner.redactor.text(&reason, secrets),
            },
        }
    }

    /// Refreshes the token after a 401, unless a concurrent request already did.
    async fn refresh(
        &self,
        provider: &dyn TokenProvider,
        used: &AccessToken,
    ) -> Result<(), HttpError> {
        let _guard = self.inner.refresh_lock.lock().await;
        let current = provider.token(false).await?;
        if current.value.expose_secret() == used.value.expose_secret() {
            provider.token(true).await?;
        }
        Ok(())
    }

    async fn attempt(
        &self,
        req: &RequestSpec,
        url: Url,
        token: Option<&AccessToken>,
    ) -> Result<(u16, HeaderMap, Bytes), AttemptError> {
        let inner = &*self.inner;
        let mut rb = inner.http.request(req.method.clone(), url);
        for (k, v) in &req.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        match &req.body {
            None => {}
            Some(Body::Json(v)) => rb = rb.json(v),
            Some(Body::Form(f)) => rb = rb.form(f),
            Some(Body::Text { content_type, text }) => {
                rb = rb
                    .header(CONTENT_TYPE, content_type.as_str())
                    .body(text.clone());
            }
        }
        match (&inner.auth, &inner.auth_header, token) {
            (_, Some((name, value)), _) => rb = rb.header(name.clone(), value.clone()),
            (Auth::Basic { user, password }, _, _) => {
                rb = rb.basic_auth(user, Some(password.expose_secret()))
            }
            (_, _, Some(t)) => {
                let v = bearer_value(t.value.expose_secret()).map_err(|_| {
                    AttemptError::Invalid("the access token is not a valid header value".into())
                })?;
                rb = rb.header(AUTHORIZATION, v);
            }
            _ => {}
        }
        tracing::trace!("sending request");
        let resp = rb.send().await.map_err(|e| {
            if e.is_builder() {
                AttemptError::Invalid(describe_reqwest(&e))
            } else {
                AttemptError::Failed(transport_failure(&e, false))
            }
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| AttemptError::Failed(transport_failure(&e, true)))?;
        Ok((status, headers, body))
    }
}

/// Why one attempt produced no response.
enum AttemptError {
    /// The request itself is invalid (bad header); never retried.
    Invalid(String),
    /// A transport failure that may be retried.
    Failed(Failure),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The body without a leading UTF-8 byte order mark. JSON senders must not
/// add one, but receivers may ignore it (RFC 8259, section 8.1); CSV exports
/// often start with one.
fn without_bom(body: Bytes) -> Bytes {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if body.starts_with(BOM) {
        body.slice(BOM.len()..)
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_leading_byte_order_mark_is_dropped_and_nothing_else() {
        let bom = |rest: &[u8]| Bytes::from([b"\xEF\xBB\xBF".as_slice(), rest].concat());
        assert_eq!(
            without_bom(bom(b"{\"a\":1}")),
            Bytes::from_static(b"{\"a\":1}")
        );
        assert_eq!(without_bom(bom(b"")), Bytes::new());
        assert_eq!(
            without_bom(Bytes::from_static(b"{}")),
            Bytes::from_static(b"{}")
        );
        // Only the first one, only at the start.
        assert_eq!(without_bom(bom(&bom(b"x"))), bom(b"x"));
        let inside = Bytes::from([b"\"x".as_slice(), b"\xEF\xBB\xBF\""].concat());
        assert_eq!(without_bom(inside.clone()), inside);
        // Part of a mark is not one.
        let cut = Bytes::from_static(b"\xEF\xBB{}");
        assert_eq!(without_bom(cut.clone()), cut);
    }

    #[test]
    fn resolve_paths() {
        let stripe = Url::parse("https://api.stripe.com/v1").unwrap();
        assert_eq!(
            resolve(&stripe, "customers").unwrap().as_str(),
            "https://api.stripe.com/v1/customers"
        );
        assert_eq!(
            resolve(&stripe, "/customers").unwrap().as_str(),
            "https://api.stripe.com/v1/customers"
        );
        assert_eq!(
            resolve(&stripe, "/v1/customers").unwrap().as_str(),
            "https://api.stripe.com/v1/customers"
        );
        let root = Url::parse("https://api.stripe.com").unwrap();
        assert_eq!(
            resolve(&root, "/v1/events?x=1").unwrap().as_str(),
            "https://api.stripe.com/v1/events?x=1"
        );
        let sf = Url::parse("https://na1.salesforce.com/services/data/v60.0/").unwrap();
        assert_eq!(
            resolve(&sf, "/services/data/v60.0/query/01g-2000")
                .unwrap()
                .as_str(),
            "https://na1.salesforce.com/services/data/v60.0/query/01g-2000"
        );
        assert_eq!(
            resolve(&sf, "https://other.test/a?b=c").unwrap().as_str(),
            "https://other.test/a?b=c"
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        let future = (Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, future.parse().unwrap());
        let d = parse_retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }
}
