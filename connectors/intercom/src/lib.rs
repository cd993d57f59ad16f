//! weft-intercom: Intercom contacts as a reverse-sync destination.
//!
//! An [`IntercomTarget`] implements [`weft_core::SyncTarget`]: each record
//! is created or updated by external id / email (Intercom has no batch
//! endpoint), with Intercom's own message for each rejected contact.
//! Destination fields are contact fields: `email` (required), `external_id`,
//! `name`, `phone`, ..., and `custom_attributes.NAME`. Requests go through
//! weft-http with a bearer token, the `Intercom-Version` header, and the
//! app's budget of 10,000 requests per minute shared by every sync using it.

mod client;
mod config;
mod error;
mod sync;

pub use config::{DEFAULT_BASE_URL, IntercomConfig};
pub use error::IntercomError;
pub use sync::{IntercomTarget, MAX_BATCH};
