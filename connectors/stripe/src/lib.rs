//! weft-stripe: Stripe as a source, and Stripe customers as a reverse-sync
//! destination ([`StripeTarget`], see [`sync`]).
//!
//! Streams (declared in `specs/stripe.toml`): customers, charges, invoices,
//! subscriptions, products, prices, payment_intents, refunds,
//! balance_transactions, events, coupons, payouts, disputes, tax_rates and
//! promotion_codes. Lists are read newest-first with
//! `limit=100` + `starting_after`; incremental reads filter on `created`;
//! changes to existing objects come from the events API (`*.updated`,
//! `*.deleted` -> `_weft_deleted_at`). When the saved events cursor is older
//! than Stripe keeps events (30 days) the stream is re-read in full and the
//! run report says so.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_core::SecretRef;
//! let config = weft_stripe::StripeConfig::new(
//!     Some("http://127.0.0.1:12111".into()),
//!     SecretRef::Env { env: "STRIPE_API_KEY".into() },
//! );
//! let source = weft_stripe::StripeSource::new(config, weft_http::BudgetRegistry::global())?;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod streams;
pub mod sync;

pub use config::{MAX_CONCURRENCY, StripeConfig};
pub use error::StripeError;
pub use streams::StripeSource;
pub use sync::{CUSTOMER_FIELDS, MAX_BATCH, StripeTarget, idempotency_key};

/// Stripe's stream catalog (`specs/stripe.toml`), parsed.
pub fn catalog() -> Result<weft_core::Catalog, weft_core::CoreError> {
    weft_core::Catalog::from_toml("specs/stripe.toml", CATALOG)
}

/// The raw text of `specs/stripe.toml`.
pub const CATALOG: &str = include_str!("../../../specs/stripe.toml");
