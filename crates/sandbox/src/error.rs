//! The sandbox's error type.

use std::net::SocketAddr;

use crate::config::Api;

/// What failed in the sandbox, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A listener could not be bound.
    #[error("failed to bind the {api} sandbox listener on {addr}: {source}")]
    Bind {
        /// The API whose listener failed.
        api: Api,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A bound listener's local address could not be read.
    #[error("failed to read the local address of the {api} sandbox listener: {source}")]
    LocalAddr {
        /// The API whose listener failed.
        api: Api,
        /// The OS error.
        source: std::io::Error,
    },
    /// No object with this id exists (or it was deleted).
    #[error("the {api} sandbox has no live {object} with id {id:?}")]
    NotFound {
        /// The API asked.
        api: Api,
        /// The object type (`customer`).
        object: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The fields given to an update are not a JSON object of updatable fields.
    #[error("invalid update of {api} {object} {id:?}: {reason}")]
    InvalidUpdate {
        /// The API asked.
        api: Api,
        /// The object type (`customer`).
        object: &'static str,
        /// The id of the object.
        id: String,
        /// Why the fields were rejected.
        reason: String,
    },
    /// An API name in the control API is not one the sandbox simulates.
    #[error("unknown sandbox API {name:?}")]
    UnknownApi {
        /// The name given.
        name: String,
    },
    /// The sandbox has no simulator for this API.
    #[error("the sandbox does not serve {api}")]
    NotServed {
        /// The API asked for.
        api: Api,
    },
    /// A saved state handed to `Control::restore_state` does not fit this
    /// sandbox (not a JSON object, or an API's part is malformed).
    #[error("cannot restore the sandbox state{}: {reason}", .api.map(|a| format!(" of {a}")).unwrap_or_default())]
    InvalidSavedState {
        /// The API whose part is malformed (`None`: the state as a whole).
        api: Option<Api>,
        /// What is wrong with it.
        reason: String,
    },
    /// Waiting for the shutdown signal failed.
    #[error("failed to wait for ctrl-c: {source}")]
    Signal {
        /// The OS error.
        source: std::io::Error,
    },
}
