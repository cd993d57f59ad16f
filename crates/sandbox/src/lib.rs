//! weft-sandbox: faithful simulators of the SaaS APIs weft talks to, served on
//! loopback.
//!
//! A [`Sandbox`] binds one listener per [`Api`] and serves that vendor's
//! endpoints in the vendor's real shapes (the vendors' API
//! descriptions, extracted to `specs/vendor/`, are the contract), plus a control API under
//! `/__sandbox/` on every listener. Data is generated lazily and
//! deterministically from [`SandboxConfig::seed`] and [`SandboxConfig::size`]:
//! only mutations (updates, deletions, creations, events, writes) are stored,
//! so memory does not grow with `size`. Rate limits and faults are applied per
//! API and can be changed at run time through [`Control`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_sandbox::SandboxError> {
//! use weft_sandbox::{Api, Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig { size: 100, ..SandboxConfig::default() }).await?;
//! let stripe = sandbox.base_url(Api::Stripe); // e.g. http://127.0.0.1:40123
//! sandbox.control().advance_clock(3600);
//! # let _ = stripe;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod control;
mod error;
mod faults;
mod hash;
mod intercom;
mod json;
mod mailchimp;
pub mod people;
mod salesforce;
mod server;
mod state;
mod stripe;
mod timeline;
mod window;
mod zendesk;
mod zoom;

pub use config::{
    Api, DEFAULT_INTERCOM_TOKEN, DEFAULT_MAILCHIMP_KEY, DEFAULT_SALESFORCE_CLIENT_ID,
    DEFAULT_SALESFORCE_CLIENT_SECRET, DEFAULT_SALESFORCE_REFRESH_TOKEN,
    DEFAULT_SALESFORCE_USERNAME, DEFAULT_STRIPE_KEY, DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_TOKEN,
    DEFAULT_ZOOM_ACCOUNT_ID, DEFAULT_ZOOM_CLIENT_ID, DEFAULT_ZOOM_CLIENT_SECRET, Drift, Faults,
    RetryAfterStyle, SandboxConfig, a_year_ahead, process_clock_start,
};
pub use control::{Control, RecordedRequest, RecordedWrite, busiest_second};
pub use error::SandboxError;
pub use server::{Sandbox, serve_forever};
