//! Authentication: static API keys and OAuth2 token providers.
//!
//! Token providers cache their token, refresh it shortly before it expires,
//! and keep a single refresh in flight: concurrent callers wait on one lock
//! and reuse the token the first caller fetched.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::HttpError;
use crate::redact::{Redactor, trim_chars};

/// How requests authenticate.
#[derive(Clone)]
pub enum Auth {
    /// No authentication.
    None,
    /// `Authorization: Bearer <token>` (Stripe secret key, Intercom).
    Bearer(SecretString),
    /// HTTP basic auth (Zendesk `email/token`, Mailchimp `anystring:key`).
    Basic {
        /// User name (not secret).
        user: String,
        /// Password or API key.
        password: SecretString,
    },
    /// A custom header carrying a key (e.g. `X-Api-Key`).
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: SecretString,
    },
    /// A bearer token from a provider (OAuth2), refreshed on expiry and once on a 401.
    Token(Arc<dyn TokenProvider>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(REDACTED)"),
            Auth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: REDACTED }}"),
            Auth::Header { name, .. } => write!(f, "Header {{ name: {name:?}, value: REDACTED }}"),
            Auth::Token(_) => f.write_str("Token(..)"),
        }
    }
}

impl Auth {
    /// The static secret values of this auth, for redaction.
    pub(crate) fn secret_values(&self) -> Vec<&str> {
        match self {
            Auth::Bearer(s) => vec![s.expose_secret()],
            Auth::Basic { password, .. } => vec![password.expose_secret()],
            Auth::Header { value, .. } => vec![value.expose_secret()],
            Auth::None | Auth::Token(_) => Vec::new(),
        }
    }
}

/// An access token and what came with it.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The bearer token.
    pub value: SecretString,
    /// When it expires, if the server said.
    pub expires_at: Option<DateTime<Utc>>,
    /// The instance to send API calls to (Salesforce); relative request paths
    /// then resolve against this host, keeping the base URL's path.
    pub instance_url: Option<Url>,
}

impl AccessToken {
    /// Whether the token expires within `margin` from now.
    pub fn expires_within(&self, margin: Duration) -> bool {
        match self.expires_at {
            Some(at) => {
                let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
                at <= Utc::now() + margin
            }
            None => false,
        }
    }
}

/// Supplies access tokens.
///
/// Contract: `token(false)` returns a cached token unless it is missing or
/// about to expire; `token(true)` fetches a new one. Implementations keep one
/// refresh in flight: concurrent callers share its result.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A valid token; `force_refresh` discards the cached one first.
    async fn token(&self, force_refresh: bool) -> Result<AccessToken, HttpError>;
}

/// Refresh this long before the server-stated expiry.
const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Attempts of one token request when the endpoint fails transiently.
const TOKEN_ATTEMPTS: u32 = 4;
/// The first wait before a token request is retried (doubled each time).
const TOKEN_RETRY_DELAY: Duration = Duration::from_millis(200);

/// Why a token request failed: worth retrying (5xx, 429, connection) or not.
enum TokenFailure {
    /// The endpoint or the network failed; the same request may succeed later.
    Transient(HttpError),
    /// The credentials or the response are wrong; retrying cannot help.
    Fatal(HttpError),
}

/// The token endpoint's JSON answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    instance_url: Option<String>,
}

/// Makes a secret form value at send time (the JWT bearer assertion).
pub(crate) type DynamicParam = Box<dyn Fn() -> Result<SecretString, String> + Send + Sync>;

/// How a token request is sent.
pub(crate) struct TokenEndpoint {
    pub(crate) api: String,
    pub(crate) url: Url,
    http: reqwest::Client,
    /// Basic auth `client_id:client_secret`, when the grant uses it.
    basic: Option<(String, SecretString)>,
    /// Parameters sent in the query string (Zoom's `grant_type`, `account_id`).
    query: Vec<(String, String)>,
    /// Parameters sent as a form body.
    pub(crate) form: Vec<(String, String)>,
    /// Secret form values, added to `form` at send time.
    secret_form: Vec<(String, SecretString)>,
    /// A secret form value computed for each request (name, maker).
    pub(crate) dynamic_form: Option<(String, DynamicParam)>,
    pub(crate) redactor: Redactor,
    pub(crate) refresh_margin: Duration,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
}

impl TokenEndpoint {
    pub(crate) fn new(api: &str, url: Url) -> Result<Self, HttpError> {
        let http = reqwest::Client::builder()
            .user_agent(crate::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| HttpError::Build {
                api: api.to_string(),
                reason: e.without_url().to_string(),
            })?;
        Ok(Self {
            api: api.to_string(),
            url,
            http,
            basic: None,
            query: Vec::new(),
            form: Vec::new(),
            secret_form: Vec::new(),
            dynamic_form: None,
            redactor: Redactor::new(),
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    pub(crate) fn add_secret(&mut self, s: &SecretString) {
        self.redactor.add_value(s.expose_secret());
    }

    pub(crate) async fn token(&self, force_refresh: bool) -> Result<AccessToken, HttpError> {
        // Holding the lock across the fetch keeps a single refresh in flight.
        let mut cached = self.cached.lock().await;
        if !force_refresh
            && let Some(t) = cached.as_ref()
            && !t.expires_within(self.refresh_margin)
        {
            return Ok(t.clone());
        }
        let mut delay = TOKEN_RETRY_DELAY;
        let mut attempt = 1;
        let fresh = loop {
            match self.fetch().await {
                Ok(token) => break token,
                // A token endpoint's 5xx, 429 or dropped connection is as
                // transient as any other request's: retry it a few times.
                Err(TokenFailure::Transient(e)) if attempt < TOKEN_ATTEMPTS => {
                    tracing::warn!(api = %self.api, attempt, error = %e, "retrying token request");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(TokenFailure::Transient(e) | TokenFailure::Fatal(e)) => return Err(e),
            }
        };
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    async fn fetch(&self) -> Result<AccessToken, TokenFailure> {
        let url_text = self.redactor.url(&self.url);
        let dynamic = match &self.dynamic_form {
            Some((name, make)) => {
                let value = make().map_err(|reason| {
                    TokenFailure::Fatal(HttpError::Auth {
                        api: self.api.clone(),
                        url: url_text.clone(),
                        reason: self.redactor.text(&reason, &[]),
                    })
                })?;
                Some((name.as_str(), value))
            }
            None => None,
        };
        let dynamic_secret = dynamic.as_ref().map(|(_, v)| v.expose_secret());
        let auth_err = |reason: String| HttpError::Auth {
            api: self.api.clone(),
            url: url_text.clone(),
            reason: self.redactor.text(&reason, dynamic_secret.as_slice()),
        };
        let mut url = self.url.clone();
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        let mut form: Vec<(&str, &str)> = self
            .form
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form.extend(
            self.secret_form
                .iter()
                .map(|(k, v)| (k.as_str(), v.expose_secret())),
        );
        if let Some((name, value)) = &dynamic {
            form.push((*name, value.expose_secret()));
        }
        let mut rb = self.http.post(url).form(&form);
        if let Some((id, secret)) = &self.basic {
            rb = rb.basic_auth(id, Some(secret.expose_secret()));
        }
        tracing::debug!(api = %self.api, url = %url_text, "requesting access token");
        let transient = |e: reqwest::Error| {
            TokenFailure::Transient(auth_err(crate::client::describe_reqwest(&e)))
        };
        let resp = rb.send().await.map_err(transient)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transient)?;
        if !(200..300).contains(&status) {
            let text = trim_chars(&String::from_utf8_lossy(&body), 500);
            let e = auth_err(format!("token endpoint returned HTTP {status}: {text}"));
            return Err(match status {
                429 | 500 | 502 | 503 | 504 => TokenFailure::Transient(e),
                _ => TokenFailure::Fatal(e),
            });
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            TokenFailure::Fatal(auth_err(format!(
                "token response is not the expected JSON: {e}"
            )))
        })?;
        let expires_at = parsed
            .expires_in
            .map(|s| Utc::now() + chrono::Duration::seconds(s));
        let instance_url = match parsed.instance_url {
            Some(u) => Some(Url::parse(&u).map_err(|e| {
                TokenFailure::Fatal(auth_err(format!("invalid instance_url: {e}")))
            })?),
            None => None,
        };
        Ok(AccessToken {
            value: parsed.access_token,
            expires_at,
            instance_url,
        })
    }
}

/// OAuth2 client credentials (Zoom server-to-server): POST to the token URL
/// with basic auth `client_id:client_secret`; the token is cached and
/// refreshed a minute before it expires.
pub struct OAuth2ClientCredentials {
    endpoint: TokenEndpoint,
}

impl fmt::Debug for OAuth2ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2ClientCredentials")
            .field("api", &self.endpoint.api)
            .field("token_url", &self.endpoint.redactor.url(&self.endpoint.url))
            .finish_non_exhaustive()
    }
}

impl OAuth2ClientCredentials {
    /// Standard `grant_type=client_credentials` (form body) against `token_url`.
    pub fn new(
        api: &str,
        token_url: Url,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Result<Self, HttpError> {
        let mut endpoint = TokenEndpoint::new(api, token_url)?;
        endpoint.add_secret(&client_secret);
        endpoint.basic = Some((client_id.into(), client_secret));
        endpoint
            .form
            .push(("grant_type".into(), "client_credentials".into()));
        Ok(Self { endpoint })
    }

    /// Zoom server-to-server: `grant_type=account_credentials&account_id=...` in the query.
    pub fn zoom(
        token_url: Url,
        account_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Result<Self, HttpError> {
        let mut endpoint = TokenEndpoint::new("zoom", token_url)?;
        endpoint.add_secret(&client_secret);
        endpoint.basic = Some((client_id.into(), client_secret));
        endpoint
            .query
            .push(("grant_type".into(), "account_credentials".into()));
        endpoint
            .query
            .push(("account_id".into(), account_id.into()));
        Ok(Self { endpoint })
    }

    /// Adds a form parameter (e.g. `scope`).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.endpoint.form.push((name.into(), value.into()));
        self
    }

    /// Refresh this long before expiry (default 60 s).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.endpoint.refresh_margin = margin;
        self
    }
}

#[async_trait]
impl TokenProvider for OAuth2ClientCredentials {
    async fn token(&self, force_refresh: bool) -> Result<AccessToken, HttpError> {
        self.endpoint.token(force_refresh).await
    }
}

/// OAuth2 refresh-token grant (Salesforce): POST `grant_type=refresh_token`
/// with the client id/secret and refresh token in the form body; the answer
/// gives `access_token` and `instance_url`.
pub struct OAuth2RefreshToken {
    endpoint: TokenEndpoint,
}

impl fmt::Debug for OAuth2RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2RefreshToken")
            .field("api", &self.endpoint.api)
            .field("token_url", &self.endpoint.redactor.url(&self.endpoint.url))
            .finish_non_exhaustive()
    }
}

impl OAuth2RefreshToken {
    /// A refresh-token grant against `token_url`; `client_secret` is optional
    /// for public clients.
    pub fn new(
        api: &str,
        token_url: Url,
        client_id: impl Into<String>,
        client_secret: Option<SecretString>,
        refresh_token: SecretString,
    ) -> Result<Self, HttpError> {
        let mut endpoint = TokenEndpoint::new(api, token_url)?;
        endpoint.add_secret(&refresh_token);
        endpoint
            .form
            .push(("grant_type".into(), "refresh_token".into()));
        endpoint.form.push(("client_id".into(), client_id.into()));
        if let Some(secret) = client_secret {
            endpoint.add_secret(&secret);
            endpoint.secret_form.push(("client_secret".into(), secret));
        }
        endpoint
            .secret_form
            .push(("refresh_token".into(), refresh_token));
        Ok(Self { endpoint })
    }

    /// Refresh this long before expiry, when the server states one (default 60 s).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.endpoint.refresh_margin = margin;
        self
    }
}

#[async_trait]
impl TokenProvider for OAuth2RefreshToken {
    async fn token(&self, force_refresh: bool) -> Result<AccessToken, HttpError> {
        self.endpoint.token(force_refresh).await
    }
}
