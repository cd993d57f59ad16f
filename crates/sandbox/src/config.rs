//! Sandbox configuration: seed and size of the generated data, rate limits,
//! fault injection, and the identity of each simulated API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// The Stripe secret key the sandbox accepts unless configured otherwise.
pub const DEFAULT_STRIPE_KEY: &str = "sk_test_weft_sandbox";

/// The Zoom account id the sandbox's OAuth endpoint accepts by default.
pub const DEFAULT_ZOOM_ACCOUNT_ID: &str = "weft_sandbox_account";
/// The Zoom OAuth client id accepted by default.
pub const DEFAULT_ZOOM_CLIENT_ID: &str = "weft_zoom_client";
/// The Zoom OAuth client secret accepted by default.
pub const DEFAULT_ZOOM_CLIENT_SECRET: &str = "weft_zoom_secret";
/// The Mailchimp API key accepted by default (data center `us6`).
pub const DEFAULT_MAILCHIMP_KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed-us6";

/// The Salesforce connected-app client id accepted by default.
pub const DEFAULT_SALESFORCE_CLIENT_ID: &str = "3MVG9weft.sandbox.client";
/// The Salesforce connected-app client secret accepted by default.
pub const DEFAULT_SALESFORCE_CLIENT_SECRET: &str = "weft_salesforce_secret";
/// The Salesforce refresh token accepted by default.
pub const DEFAULT_SALESFORCE_REFRESH_TOKEN: &str = "5Aep861weft.sandbox.refresh";
/// The Salesforce username (JWT `sub`) accepted by default.
pub const DEFAULT_SALESFORCE_USERNAME: &str = "integration@weft-sandbox.example.com";

/// The Zendesk agent email accepted by default.
pub const DEFAULT_ZENDESK_EMAIL: &str = "admin@weft-sandbox.example.com";
/// The Zendesk API token accepted by default.
pub const DEFAULT_ZENDESK_TOKEN: &str = "zd_weft_sandbox_token";
/// The Zendesk OAuth access token accepted by default
/// (`Authorization: Bearer <token>`, what OAuth clients such as Singer's
/// tap-zendesk send); it acts as the same agent as the API token.
pub const DEFAULT_ZENDESK_OAUTH_TOKEN: &str = "zd_weft_sandbox_oauth_token";
/// The Intercom access token accepted by default.
pub const DEFAULT_INTERCOM_TOKEN: &str = "ic_weft_sandbox_token";
/// The example API's key accepted by default (`Authorization: Bearer <key>`).
pub const DEFAULT_EXAMPLE_KEY: &str = "ex_weft_sandbox_key";

/// A simulated vendor API.
///
/// Each API gets its own listener (its own port), so vendors whose paths
/// would clash never share a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Api {
    /// Stripe (`/v1/...`).
    Stripe,
    /// Zoom (`/oauth/token`, `/v2/...`).
    Zoom,
    /// Mailchimp Marketing (`/3.0/...`).
    Mailchimp,
    /// Salesforce (`/services/oauth2/token`, `/services/data/vNN.0/...`).
    Salesforce,
    /// Zendesk Support (`/api/v2/...`).
    Zendesk,
    /// Intercom (`/contacts`, `/companies`, ...).
    Intercom,
    /// The example API (`/v1/widgets`) that `connectors/template` reads: the
    /// room a new simulated API is copied from.
    Example,
}

impl Api {
    /// Every simulated API, in listener order (listener `k` binds `port + k`).
    pub const ALL: [Api; 7] = [
        Api::Stripe,
        Api::Zoom,
        Api::Mailchimp,
        Api::Salesforce,
        Api::Zendesk,
        Api::Intercom,
        Api::Example,
    ];

    /// The lowercase name used in the control API (`?api=stripe`).
    pub fn name(self) -> &'static str {
        match self {
            Api::Stripe => "stripe",
            Api::Zoom => "zoom",
            Api::Mailchimp => "mailchimp",
            Api::Salesforce => "salesforce",
            Api::Zendesk => "zendesk",
            Api::Intercom => "intercom",
            Api::Example => "example",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Api {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Api::ALL
            .into_iter()
            .find(|api| api.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SandboxError::UnknownApi { name: s.to_owned() })
    }
}

/// The wall clock (unix seconds) when this process first called this function.
///
/// Sandboxes started with it as [`SandboxConfig::clock_start`] serve
/// byte-identical pages for the same seed and size, on any day: tests that
/// compare two sandboxes use it.
pub fn process_clock_start() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(crate::state::wall_clock)
}

/// A [`SandboxConfig::clock_start`] a year from now (unix seconds): a sandbox
/// started there behaves as it will when the suite runs a year later.
pub fn a_year_ahead() -> i64 {
    crate::state::wall_clock() + 365 * 86_400
}

/// Configuration of a whole sandbox (all APIs).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Seed of every generated value; same seed and size give byte-identical pages.
    pub seed: u64,
    /// Number of Stripe customers; every other object count scales from it.
    pub size: usize,
    /// The sandbox clock's reading at start (unix seconds), where generated
    /// history ends; `None` (the default): the wall clock at start. History is
    /// generated backwards from it, so it is recent on any day; the same seed,
    /// size and `clock_start` give byte-identical pages.
    pub clock_start: Option<i64>,
    /// Whether the vendors' documented rate limits are enforced (on by default).
    pub rate_limits: bool,
    /// Faults injected into every API at start (change per API with [`crate::Control::set_faults`]).
    pub faults: Faults,
    /// The Stripe secret key accepted (`Authorization: Bearer <key>` or basic auth user).
    pub api_key: String,
    /// Zoom server-to-server OAuth: the `account_id` accepted.
    pub zoom_account_id: String,
    /// Zoom OAuth client id (basic-auth user of `POST /oauth/token`).
    pub zoom_client_id: String,
    /// Zoom OAuth client secret (basic-auth password of `POST /oauth/token`).
    pub zoom_client_secret: String,
    /// The Mailchimp API key accepted (basic auth `anystring:<key>`).
    pub mailchimp_api_key: String,
    /// Members pre-seeded into the Mailchimp audience (people `0..n`; default 0: empty).
    pub mailchimp_members: usize,
    /// Salesforce connected-app client id (`client_id`; JWT `iss`).
    pub salesforce_client_id: String,
    /// Salesforce connected-app client secret.
    pub salesforce_client_secret: String,
    /// The Salesforce refresh token accepted by the `refresh_token` grant.
    pub salesforce_refresh_token: String,
    /// The Salesforce username (JWT-bearer `sub`).
    pub salesforce_username: String,
    /// Salesforce daily API request allocation (then `REQUEST_LIMIT_EXCEEDED`).
    pub salesforce_daily_api_requests: u64,
    /// Zendesk agent email of the API token (basic auth `{email}/token:{token}`).
    pub zendesk_email: String,
    /// Zendesk API token.
    pub zendesk_token: String,
    /// Zendesk OAuth access token (`Authorization: Bearer <token>`), accepted
    /// on every endpoint as well as the API token.
    pub zendesk_oauth_token: String,
    /// Zendesk plan limit in requests per minute (200, 400, 700 or 2,500; incremental exports: 10).
    pub zendesk_requests_per_min: u32,
    /// Intercom access token (`Authorization: Bearer <token>`).
    pub intercom_token: String,
    /// Intercom per-app limit in requests per minute, enforced per 10 s (a sixth each).
    pub intercom_requests_per_min: u32,
    /// The example API's key (`Authorization: Bearer <key>`).
    pub example_key: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            size: 100,
            clock_start: None,
            rate_limits: true,
            faults: Faults::default(),
            api_key: DEFAULT_STRIPE_KEY.to_owned(),
            zoom_account_id: DEFAULT_ZOOM_ACCOUNT_ID.to_owned(),
            zoom_client_id: DEFAULT_ZOOM_CLIENT_ID.to_owned(),
            zoom_client_secret: DEFAULT_ZOOM_CLIENT_SECRET.to_owned(),
            mailchimp_api_key: DEFAULT_MAILCHIMP_KEY.to_owned(),
            mailchimp_members: 0,
            salesforce_client_id: DEFAULT_SALESFORCE_CLIENT_ID.to_owned(),
            salesforce_client_secret: DEFAULT_SALESFORCE_CLIENT_SECRET.to_owned(),
            salesforce_refresh_token: DEFAULT_SALESFORCE_REFRESH_TOKEN.to_owned(),
            salesforce_username: DEFAULT_SALESFORCE_USERNAME.to_owned(),
            salesforce_daily_api_requests: 100_000,
            zendesk_email: DEFAULT_ZENDESK_EMAIL.to_owned(),
            zendesk_token: DEFAULT_ZENDESK_TOKEN.to_owned(),
            zendesk_oauth_token: DEFAULT_ZENDESK_OAUTH_TOKEN.to_owned(),
            zendesk_requests_per_min: 700,
            intercom_token: DEFAULT_INTERCOM_TOKEN.to_owned(),
            intercom_requests_per_min: 10_000,
            example_key: DEFAULT_EXAMPLE_KEY.to_owned(),
        }
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("seed", &self.seed)
            .field("size", &self.size)
            .field("clock_start", &self.clock_start)
            .field("rate_limits", &self.rate_limits)
            .field("faults", &self.faults)
            .field("api_key", &"<redacted>")
            .field("zoom_account_id", &self.zoom_account_id)
            .field("zoom_client_id", &self.zoom_client_id)
            .field("zoom_client_secret", &"<redacted>")
            .field("mailchimp_api_key", &"<redacted>")
            .field("mailchimp_members", &self.mailchimp_members)
            .field("salesforce_client_id", &self.salesforce_client_id)
            .field("salesforce_client_secret", &"<redacted>")
            .field("salesforce_refresh_token", &"<redacted>")
            .field("salesforce_username", &self.salesforce_username)
            .field(
                "salesforce_daily_api_requests",
                &self.salesforce_daily_api_requests,
            )
            .field("zendesk_email", &self.zendesk_email)
            .field("zendesk_token", &"<redacted>")
            .field("zendesk_oauth_token", &"<redacted>")
            .field("zendesk_requests_per_min", &self.zendesk_requests_per_min)
            .field("intercom_token", &"<redacted>")
            .field("intercom_requests_per_min", &self.intercom_requests_per_min)
            .field("example_key", &"<redacted>")
            .finish()
    }
}

/// Faults injected into one API's responses (the default injects none).
///
/// Rates are probabilities in `0.0..=1.0`, drawn per request from an RNG
/// seeded by the sandbox seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of requests answered with a 500 and the vendor's error body.
    pub error_rate: f64,
    /// Share of requests answered with a 429 and a `Retry-After` header.
    pub rate_limit_rate: f64,
    /// `Retry-After` style of injected 429s (and of real rate-limit 429s).
    pub retry_after: RetryAfterStyle,
    /// Latency added before every response, in milliseconds.
    pub latency_ms: u64,
    /// Share of responses whose connection is reset after part of the body.
    pub reset_rate: f64,
    /// Share of responses whose body is cut short of its `Content-Length`.
    pub truncate_rate: f64,
    /// Schema drift applied to every object served.
    pub drift: Option<Drift>,
    /// Reject every request as unauthenticated (401), whatever its credentials.
    pub bad_auth: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after: RetryAfterStyle::Seconds(1),
            latency_ms: 0,
            reset_rate: 0.0,
            truncate_rate: 0.0,
            drift: None,
            bad_auth: false,
        }
    }
}

/// How a 429 states when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterStyle {
    /// `Retry-After: N` (delta seconds).
    Seconds(u64),
    /// `Retry-After: 0`.
    Zero,
    /// `Retry-After: <HTTP-date>` one second after the real wall clock.
    HttpDate,
    /// Rotates through seconds (1), zero and HTTP-date.
    Mixed,
}

/// Schema drift: how served objects differ from the documented schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    /// Every object gains `"weft_drift_field": "x"`.
    AddedField,
    /// An integer field changes type to string (Stripe: customer `balance`, others' `amount`).
    ChangedType,
}
