//! The reliability harness (issue 6): bad input served to the real Stripe
//! source, a fault storm over Stripe, Zendesk and Intercom, and sentinel
//! credentials that must never leak. Each module is one
//! concern; `cargo test -p weft-e2e --test reliability` runs them all.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "reliability/bad_input.rs"]
mod bad_input;
#[path = "reliability/faults.rs"]
mod faults;
#[path = "reliability/secrets.rs"]
mod secrets;
