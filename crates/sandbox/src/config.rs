//! Sandbox configuration: seed and size of the generated data, rate limits,
//! fault injection, and the identity of each simulated API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// The Stripe secret key the sandbox accepts unless configured otherwise.
pub const DEFAULT_STRIPE_KEY: &str = "sk_test_weft_sandbox";

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
}

impl Api {
    /// Every simulated API, in listener order (listener `k` binds `port + k`).
    pub const ALL: [Api; 1] = [Api::Stripe];

    /// The lowercase name used in the control API (`?api=stripe`).
    pub fn name(self) -> &'static str {
        match self {
            Api::Stripe => "stripe",
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

/// Configuration of a whole sandbox (all APIs).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Seed of every generated value; same seed and size give byte-identical pages.
    pub seed: u64,
    /// Number of Stripe customers; every other object count scales from it.
    pub size: usize,
    /// Whether the vendors' documented rate limits are enforced (on by default).
    pub rate_limits: bool,
    /// Faults injected into every API at start (change per API with [`crate::Control::set_faults`]).
    pub faults: Faults,
    /// The Stripe secret key accepted (`Authorization: Bearer <key>` or basic auth user).
    pub api_key: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            size: 100,
            rate_limits: true,
            faults: Faults::default(),
            api_key: DEFAULT_STRIPE_KEY.to_owned(),
        }
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("seed", &self.seed)
            .field("size", &self.size)
            .field("rate_limits", &self.rate_limits)
            .field("faults", &self.faults)
            .field("api_key", &"<redacted>")
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
