//! weft-http: the HTTP layer every connector shares.
//!
//! * [`BudgetRegistry`] / [`Budget`]: one rate budget per API account,
//!   shared process-wide (rate limiter, concurrency, global pause on 429,
//!   adaptation from `X-RateLimit-*` and `Sforce-Limit-Info`, daily quotas).
//! * [`HttpClient`]: sends [`RequestSpec`]s through the budget with auth
//!   ([`Auth`], [`TokenProvider`]), retries with exponential backoff and
//!   jitter (backon), counters in [`weft_core::StreamMetrics`], a `tracing`
//!   span per request, and secrets redacted from logs and errors.
//! * [`paginate`]: the pagination styles of the supported APIs as a stream of
//!   [`Page`]s, with pagination-loop detection.
//! * [`poll_job`]: an asynchronous job polled until done, with growing
//!   waits, a total time bound and cancellation ([`PollPolicy`]).
//! * [`read_sliced`]: one stream read as concurrent windows of its key
//!   ([`SlicedList`]), as many in flight as the budget's rate x latency
//!   allows, with exact checkpoints ([`SliceState`]).

mod auth;
mod budget;
mod children;
mod client;
mod error;
mod jwt;
mod paginate;
mod poll;
mod redact;
mod request;
mod settings;
mod slice;

pub use auth::{AccessToken, Auth, OAuth2ClientCredentials, OAuth2RefreshToken, TokenProvider};
pub use budget::{
    Budget, BudgetKey, BudgetPermit, BudgetRegistry, Limits, ReaderShare, fingerprint,
};
pub use children::{ChildList, Parent, fetch_children};
pub use client::{HttpClient, HttpClientBuilder};
pub use error::{HttpError, split_reject};
pub use jwt::OAuth2JwtBearer;
pub use paginate::{CursorFrom, Page, Pagination, paginate};
pub use poll::{JobPoll, PollPolicy, poll_job};
pub use redact::{DEFAULT_SECRET_PARAMS, REDACTED};
pub use request::{Body, RequestSpec, Response};
pub use settings::HttpSettings;
pub use slice::{
    Order, SLICE_STATE_VERSION, SliceError, SlicePage, SliceSettings, SliceState, SlicedList,
    Window, read_sliced,
};

/// Re-exported so connectors implement [`TokenProvider`] without their own dependency.
pub use async_trait::async_trait;
/// Re-exported secret types used by [`Auth`].
pub use secrecy::{ExposeSecret, SecretString};

/// The `User-Agent` sent with every request: `weft/<version>`.
pub const USER_AGENT: &str = concat!("weft/", env!("CARGO_PKG_VERSION"));
