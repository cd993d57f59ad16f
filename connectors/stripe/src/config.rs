//! Stripe connector configuration.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::{HttpSettings, SliceSettings};

use crate::StripeError;

/// Stripe's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// Configuration of the Stripe source (the `[pipelines.config]` table) and
/// of the reverse-sync target ([`crate::StripeTarget`], `[syncs.config]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// API base URL; omitted = `https://api.stripe.com`. Set it for the sandbox or a proxy.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Secret key: `{ env = "STRIPE_API_KEY" }` or `{ file = "..." }`.
    pub api_key: SecretRef,
    /// Seconds behind the server clock a saved cursor stays, so records still
    /// being written during a read are read again next run.
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
    /// Days Stripe keeps events; an events cursor older than this forces a full re-read.
    #[serde(default = "default_events_retention_days")]
    pub events_retention_days: u64,
    /// Records per page (1..=100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Overrides the documented rate limit (100/s live keys, 25/s test keys;
    /// for the sync target's customer searches, their own 20/s as well).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
    /// Sliced reads of the entity lists (`enabled`, `max_pages` per slice).
    #[serde(default)]
    pub slices: SliceSettings,
    /// Reverse sync: customers written at once within one batch (1..=32,
    /// default 4). Each costs a search and a write; all share the key's budget.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

/// Largest `concurrency`.
pub const MAX_CONCURRENCY: usize = 32;

fn default_concurrency() -> usize {
    4
}

fn default_settle_secs() -> u64 {
    60
}

fn default_events_retention_days() -> u64 {
    30
}

fn default_page_size() -> u32 {
    100
}

impl StripeConfig {
    /// A config for `base_url` with the key read from `api_key`.
    pub fn new(base_url: Option<String>, api_key: SecretRef) -> Self {
        StripeConfig {
            base_url,
            api_key,
            settle_secs: default_settle_secs(),
            events_retention_days: default_events_retention_days(),
            page_size: default_page_size(),
            requests_per_second: None,
            http: None,
            slices: SliceSettings::default(),
            concurrency: default_concurrency(),
        }
    }

    /// Checks field ranges.
    pub fn validate(&self) -> Result<(), StripeError> {
        if !(1..=100).contains(&self.page_size) {
            return Err(StripeError::Config {
                field: "page_size",
                reason: format!("must be 1..=100, got {}", self.page_size),
            });
        }
        if self
            .requests_per_second
            .is_some_and(|r| r <= 0.0 || r.is_nan())
        {
            return Err(StripeError::Config {
                field: "requests_per_second",
                reason: "must be positive".into(),
            });
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(StripeError::Config {
                field: "concurrency",
                reason: format!("must be 1..={MAX_CONCURRENCY}, got {}", self.concurrency),
            });
        }
        if self.events_retention_days == 0 {
            return Err(StripeError::Config {
                field: "events_retention_days",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}
