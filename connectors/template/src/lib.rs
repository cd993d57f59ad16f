//! weft-template: the connector every new weft connector is copied from.
//!
//! It reads one stream, `widgets`, from the sandbox's template API (`GET
//! /v1/widgets`: bearer token, `updated_since` filter, `page_token` paging)
//! incrementally on `updated_at`, and passes the shared source acceptance
//! suite (`tests/conformance.rs`). Its rooms are the ones every connector
//! has:
//!
//! - `lib.rs` — what the runner registers (the config, the source, the catalog);
//!   nothing else is public;
//! - `config.rs` — the `config` table of a pipeline: serde, documented fields,
//!   validation naming the field;
//! - `client.rs` — the only file that builds requests (auth, base URL, the
//!   account's rate budget), all through weft-http;
//! - `source.rs` — the streams: request parameters, cursor, paging style,
//!   checkpoints; no retries, sleeps or JSON-to-Arrow code of its own;
//! - `error.rs` — the crate's one error enum;
//! - `specs/template.toml` — the stream catalog (keys, cursor, columns);
//! - `tests/` — request shapes against wiremock, the acceptance suite against
//!   the sandbox.
//!
//! `weft new connector NAME` writes a copy of this crate named for your API;
//! `docs/connectors.md` walks through what to change.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_core::SecretRef;
//! let config = weft_template::TemplateConfig::new(SecretRef::Env { env: "TEMPLATE_API_KEY".into() });
//! let source = weft_template::TemplateSource::new(&config, weft_http::BudgetRegistry::global())?;
//! # let _ = source;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod source;

pub use config::{DEFAULT_BASE_URL, TemplateConfig};
pub use error::TemplateError;
pub use source::TemplateSource;

/// The stream catalog (`specs/template.toml`), parsed.
pub fn catalog() -> Result<weft_core::Catalog, weft_core::CoreError> {
    weft_core::Catalog::from_toml("specs/template.toml", CATALOG)
}

/// The raw text of `specs/template.toml`.
pub const CATALOG: &str = include_str!("../../../specs/template.toml");
