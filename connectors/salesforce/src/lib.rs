//! weft-salesforce: Salesforce as a source, and as a reverse-sync
//! destination ([`SalesforceTarget`], any object upserted by an external id).
//!
//! One stream per configured object (default: Contact, Lead, Account,
//! Campaign, CampaignMember, Opportunity, User; custom objects too), named by
//! the object's API name. Schemas are discovered from each object's describe
//! when the source connects; `specs/salesforce.toml` ([`catalog`]) describes
//! the standard objects' core fields offline, for listing without credentials.
//!
//! Reads use `queryAll` (deleted rows included: `IsDeleted` rows get
//! `_weft_deleted_at`), incremental on `SystemModstamp` (else
//! `LastModifiedDate`, else `CreatedDate`) with an inclusive boundary, and a
//! Bulk API 2.0 query job above `bulk_threshold` changed rows. Auth is the
//! OAuth2 refresh-token or JWT bearer grant; the token's `instance_url` is
//! the API host. The org's daily request limit stops a run cleanly
//! ([`SalesforceError::RequestLimitExceeded`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_core::SecretRef;
//! use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceSource};
//! let config = SalesforceConfig::new(
//!     "https://login.salesforce.com",
//!     SalesforceAuth::RefreshToken {
//!         client_id: "3MVG9...".into(),
//!         client_secret: SecretRef::Env { env: "SF_CLIENT_SECRET".into() },
//!         refresh_token: SecretRef::Env { env: "SF_REFRESH_TOKEN".into() },
//!     },
//! );
//! let source = SalesforceSource::connect(config, weft_http::BudgetRegistry::global()).await?;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod ingest;
mod streams;
mod sync;

pub use config::{DEFAULT_LOGIN_URL, DEFAULT_OBJECTS, SalesforceAuth, SalesforceConfig};
pub use error::SalesforceError;
pub use ingest::UNPROCESSED;
pub use streams::SalesforceSource;
pub use sync::{MAX_BATCH, MAX_BULK_BATCH, MAX_RECORDS_PER_CALL, NO_RESULT, SalesforceTarget};

/// The offline stream catalog (`specs/salesforce.toml`): the standard
/// objects' core fields, for discover without credentials.
pub fn catalog() -> Result<weft_core::Catalog, weft_core::CoreError> {
    weft_core::Catalog::from_toml("specs/salesforce.toml", CATALOG)
}

/// The raw text of `specs/salesforce.toml`.
pub const CATALOG: &str = include_str!("../../../specs/salesforce.toml");
