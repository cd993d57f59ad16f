//! weft-zoom: Zoom as a source, and webinar registrants as a sync destination.
//!
//! Streams (declared in `specs/zoom.toml`): users, webinars, meetings,
//! webinar_registrants and past_webinar_participants. Authentication is
//! Zoom's server-to-server OAuth (`grant_type=account_credentials`); lists
//! are paged with `page_size` + `next_page_token`. Webinars and meetings are
//! read per user, registrants and participants per webinar: the parents are
//! listed first, then their children are read with bounded concurrency, all
//! through the account's one rate budget. Zoom offers no change filter on
//! these lists, so every stream is a full refresh merged on its primary key.
//!
//! As a destination, [`ZoomTarget`] registers a model's people for a
//! webinar and, in mirror mode, keeps the registrations following the model
//! (see the `sync` module's docs for what Zoom can and cannot change).
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_core::SecretRef;
//! let config = weft_zoom::ZoomConfig::new(
//!     "acct-123",
//!     "client-abc",
//!     SecretRef::Env { env: "ZOOM_CLIENT_SECRET".into() },
//! );
//! let source = weft_zoom::ZoomSource::new(config, weft_http::BudgetRegistry::global())?;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod streams;
mod sync;

pub use config::{MirrorAction, ZoomConfig};
pub use error::ZoomError;
pub use streams::ZoomSource;
pub use sync::{MAX_STATUS_REGISTRANTS, REGISTRANT_FIELDS, ZoomTarget};

/// Zoom's stream catalog (`specs/zoom.toml`), parsed.
pub fn catalog() -> Result<weft_core::Catalog, weft_core::CoreError> {
    weft_core::Catalog::from_toml("specs/zoom.toml", CATALOG)
}

/// The raw text of `specs/zoom.toml`.
pub const CATALOG: &str = include_str!("../../../specs/zoom.toml");
