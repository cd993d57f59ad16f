//! weft-mailchimp: Mailchimp list members as a reverse-sync destination.
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
//! shared by every sync using the same key.

mod client;
mod config;
mod error;
mod sync;

pub use config::MailchimpConfig;
pub use error::MailchimpError;
pub use sync::{MAX_MEMBERS_PER_CALL, MailchimpTarget, NO_RESULT};
