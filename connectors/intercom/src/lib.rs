//! weft-intercom: Intercom as a source, and its contacts as a reverse-sync destination.
//!
//! An [`IntercomSource`] reads (streams declared in `specs/intercom.toml`)
//! contacts and conversations through the search API (`updated_at` after the
//! saved cursor, ascending, `starting_after` paging in the request body),
//! companies through the scroll API (the paged list when another scroll is
//! open on the app), and admins and tags in full.
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
mod source;
mod sync;

pub use config::{DEFAULT_BASE_URL, IntercomConfig};
pub use error::IntercomError;
pub use source::IntercomSource;
pub use sync::{IntercomTarget, MAX_BATCH};

/// Intercom's stream catalog (`specs/intercom.toml`), parsed.
pub fn catalog() -> Result<weft_core::Catalog, weft_core::CoreError> {
    weft_core::Catalog::from_toml("specs/intercom.toml", CATALOG)
}

/// The raw text of `specs/intercom.toml`.
pub const CATALOG: &str = include_str!("../../../specs/intercom.toml");
