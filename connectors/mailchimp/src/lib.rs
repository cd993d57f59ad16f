//! weft-mailchimp: Mailchimp as a source, and list members as a
//! reverse-sync destination.
//!
//! As a source, [`MailchimpSource`] reads the streams declared in
//! `specs/mailchimp.toml`: `lists` (every audience, read in full and merged
//! on `id`), `list_members` (the members of every audience, incremental on
//! `last_changed` through `since_last_changed`, keyed by `(list_id, id)`;
//! unsubscribed, cleaned and archived members keep their row with that
//! status), `segments` and `interest_categories` (per audience, read in
//! full, keyed by `(list_id, id)`), `campaigns` (incremental on
//! `create_time` through `since_create_time`) and `unsubscribes` (per
//! campaign, read in full, keyed by `(campaign_id, email_id)`). Lists are paged with `count`/`offset`; see the
//! `streams` module for the order they are read in and what a checkpoint
//! holds.
//!
//! A [`MailchimpTarget`] implements [`weft_core::SyncTarget`]: the sync
//! engine hands it records (create, update, delete) and it writes them to an
//! audience with Mailchimp's batch subscribe endpoint (`POST
//! /lists/{list_id}`, at most 500 members per call), answering per record
//! with Mailchimp's own reason for each rejected member. Destination fields
//! are member fields: `email_address` (required), `status`,
//! `merge_fields.FNAME`-style dotted names, `language`, `vip`, ...
//!
//! The sync's primary key must be the member's normalised email: mirror-mode
//! deletes unsubscribe the key ([`MailchimpTarget::check_spec`]).
//!
//! Requests go through weft-http with basic auth (`anystring:<key>`) and a
//! budget of 10 concurrent connections per account (Mailchimp's limit),
//! shared by every source and sync using the same key.

mod client;
mod config;
mod error;
mod streams;
mod sync;

pub use config::MailchimpConfig;
pub use error::MailchimpError;
pub use streams::MailchimpSource;
pub use sync::{MAX_MEMBERS_PER_CALL, MailchimpTarget, NO_RESULT};

/// Mailchimp's stream catalog (`specs/mailchimp.toml`), parsed.
pub fn catalog() -> Result<weft_core::Catalog, weft_core::CoreError> {
    weft_core::Catalog::from_toml("specs/mailchimp.toml", CATALOG)
}

/// The raw text of `specs/mailchimp.toml`.
pub const CATALOG: &str = include_str!("../../../specs/mailchimp.toml");
