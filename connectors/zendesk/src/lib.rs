//! weft-zendesk: Zendesk Support as a source, and its users or
//! organizations as a reverse-sync destination ([`ZendeskTarget`]).
//!
//! Streams (declared in `specs/zendesk.toml`): tickets and users from the
//! cursor-based incremental exports (`start_time` once, then `after_url`
//! until `end_of_stream`; the saved state is the export cursor, so a re-run
//! continues exactly where the last one stopped), organizations from the
//! time-based incremental export (`start_time` = the last page's `end_time`,
//! boundary duplicates dropped), ticket comments, and the lists read in full
//! every run (merged on `id`): ticket fields, groups, brands, ticket forms,
//! user and organization fields, group and organization memberships, macros,
//! satisfaction ratings and ticket metrics. Deleted tickets come out of the export with status
//! `deleted` and get `_weft_deleted_at`. Authentication is basic
//! `{email}/token:{api_token}`; requests go through two budgets: the plan's
//! requests per minute, and Zendesk's 10 incremental-export requests per minute.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_core::SecretRef;
//! let config = weft_zendesk::ZendeskConfig::new(
//!     "acme",
//!     "agent@acme.example",
//!     SecretRef::Env { env: "ZENDESK_API_TOKEN".into() },
//! );
//! let source = weft_zendesk::ZendeskSource::new(config, weft_http::BudgetRegistry::global())?;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod streams;
mod sync;

pub use config::{ZendeskConfig, ZendeskMirror, ZendeskObject};
pub use error::ZendeskError;
pub use streams::ZendeskSource;
pub use sync::{MAX_ORGANIZATIONS_PER_CALL, MAX_USERS_PER_CALL, NO_RESULT, ZendeskTarget};

/// Zendesk's stream catalog (`specs/zendesk.toml`), parsed.
pub fn catalog() -> Result<weft_core::Catalog, weft_core::CoreError> {
    weft_core::Catalog::from_toml("specs/zendesk.toml", CATALOG)
}

/// The raw text of `specs/zendesk.toml`.
pub const CATALOG: &str = include_str!("../../../specs/zendesk.toml");
