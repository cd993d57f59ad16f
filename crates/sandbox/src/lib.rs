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
//! Layout: each simulated API is a *room* (`stripe/`, `zoom/`, `mailchimp/`,
//! `salesforce/`, `zendesk/`, `intercom/`) behind the one `room::Room` trait:
//! its vendor routes, its `/__sandbox/<api>/` control routes and [`Control`]
//! methods (in its `control.rs`), its error shape and, where it has any, its
//! persisted state. The kernel modules never name an API: `room` (the trait
//! and the [`Control`] handle), `control` (the generic control API), `faults`
//! (the fault layer), `server` (the listeners), `state` (clock, per-API
//! logs and limits) and the helpers rooms share (`config`, `error`, `json`,
//! `hash`, `people`, `timeline`, `window`). The one list of every room is
//! the registry, `rooms` in this file.
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
mod example;
mod faults;
mod hash;
mod intercom;
mod json;
mod mailchimp;
pub mod people;
mod room;
mod salesforce;
mod server;
mod state;
mod stripe;
mod timeline;
mod window;
mod zendesk;
mod zoom;

pub use config::{
    Api, DEFAULT_EXAMPLE_KEY, DEFAULT_INTERCOM_TOKEN, DEFAULT_MAILCHIMP_KEY,
    DEFAULT_SALESFORCE_CLIENT_ID, DEFAULT_SALESFORCE_CLIENT_SECRET,
    DEFAULT_SALESFORCE_REFRESH_TOKEN, DEFAULT_SALESFORCE_USERNAME, DEFAULT_STRIPE_KEY,
    DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_OAUTH_TOKEN, DEFAULT_ZENDESK_TOKEN,
    DEFAULT_ZOOM_ACCOUNT_ID, DEFAULT_ZOOM_CLIENT_ID, DEFAULT_ZOOM_CLIENT_SECRET, Drift, Faults,
    RetryAfterStyle, SandboxConfig, a_year_ahead, process_clock_start,
};
pub use error::SandboxError;
pub use room::Control;
pub use server::{Sandbox, serve_forever};
pub use state::{RecordedRequest, RecordedWrite, busiest_second};

use std::sync::Arc;

use example::ExampleState;
use intercom::IntercomState;
use mailchimp::MailchimpState;
use room::Room;
use salesforce::SalesforceState;
use state::{ApiState, Clock};
use stripe::StripeState;
use zendesk::ZendeskState;
use zoom::ZoomState;

/// The registry: a room per [`Api`], in [`Api::ALL`] order, sharing `clock`.
/// The only place that lists every simulated API.
fn rooms(config: &SandboxConfig, clock: Arc<Clock>) -> Vec<Arc<dyn Room>> {
    let api_state = |documented_per_sec: u32| {
        Arc::new(ApiState::new(
            config.seed,
            config.faults.clone(),
            config.rate_limits,
            documented_per_sec,
        ))
    };
    let stripe = StripeState::new(
        config.seed,
        config.size,
        config.api_key.clone(),
        clock.clone(),
        api_state(stripe::documented_rate_limit(&config.api_key)),
    );
    // Zoom limits per category and Mailchimp per open connection, inside
    // their own simulators: the fault layer's per-second window is off
    // for them unless a custom per-second limit is set.
    let zoom = ZoomState::new(
        config.seed,
        config.size,
        zoom::Credentials {
            account_id: config.zoom_account_id.clone(),
            client_id: config.zoom_client_id.clone(),
            client_secret: config.zoom_client_secret.clone(),
        },
        clock.clone(),
        api_state(u32::MAX),
    );
    let mailchimp = MailchimpState::new(
        config.seed,
        config.mailchimp_api_key.clone(),
        config.mailchimp_members,
        clock.clone(),
        api_state(u32::MAX),
    );
    let salesforce = SalesforceState::new(
        config.seed,
        config.size,
        salesforce::SalesforceAuth {
            client_id: config.salesforce_client_id.clone(),
            client_secret: config.salesforce_client_secret.clone(),
            refresh_token: config.salesforce_refresh_token.clone(),
            username: config.salesforce_username.clone(),
        },
        config.salesforce_daily_api_requests,
        clock.clone(),
        api_state(salesforce::DOCUMENTED_RATE_LIMIT),
    );
    // Zendesk (per minute) and Intercom (per 10 s) enforce their own
    // windows when the documented limit is on.
    let zendesk = ZendeskState::new(
        config.seed,
        config.size,
        zendesk::Credentials {
            email: &config.zendesk_email,
            token: &config.zendesk_token,
            oauth_token: &config.zendesk_oauth_token,
        },
        config.zendesk_requests_per_min,
        clock.clone(),
        api_state(u32::MAX),
    );
    let intercom = IntercomState::new(
        config.seed,
        config.size,
        config.intercom_token.clone(),
        config.intercom_requests_per_min,
        clock.clone(),
        api_state(u32::MAX),
    );
    vec![
        Arc::new(stripe),
        Arc::new(zoom),
        Arc::new(mailchimp),
        Arc::new(salesforce),
        Arc::new(zendesk),
        Arc::new(intercom),
        Arc::new(ExampleState::new(
            config.seed,
            config.size,
            config.example_key.clone(),
            clock,
            api_state(example::DOCUMENTED_RATE_LIMIT),
        )),
    ]
}
