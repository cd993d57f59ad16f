//! The one error type of weft-core.

/// A boxed error from a connector or destination crate, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A daily API quota is used up (minus the headroom kept for others).
///
/// Not a failure of the data: the run stops cleanly, committed cursors stay,
/// and the next run (after the quota resets) continues. The HTTP layer
/// carries it as an error's source so the pipeline can recognise it by type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{api}: daily quota reached ({used} of {quota} requests used; headroom kept free)")]
pub struct QuotaReached {
    /// API name.
    pub api: String,
    /// Requests used so far.
    pub used: u64,
    /// The daily quota.
    pub quota: u64,
}

impl QuotaReached {
    /// Finds a `QuotaReached` anywhere in an error's source chain.
    pub fn in_chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a QuotaReached> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(q) = e.downcast_ref::<QuotaReached>() {
                return Some(q);
            }
            current = e.source();
        }
        None
    }
}

/// What failed in the engine, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Reading a stream from its source failed.
    #[error("{connector}/{stream}: source failed at cursor {cursor}: {source}")]
    Source {
        /// Connector name.
        connector: String,
        /// Stream name.
        stream: String,
        /// The cursor the read started from (`none` for a first run).
        cursor: String,
        /// The connector's own error (request URL without secrets, status, body).
        #[source]
        source: BoxError,
    },
    /// Converting a page of records failed (only under the `freeze` contract or
    /// for an unusable schema; bad records are otherwise quarantined).
    #[error("{connector}/{stream}: page {page} could not be converted: {source}")]
    Convert {
        /// Connector name.
        connector: String,
        /// Stream name.
        stream: String,
        /// 1-based page number within this run.
        page: u64,
        /// What weft-arrow said.
        #[source]
        source: weft_arrow::ArrowConvError,
    },
    /// Writing to or committing into the destination failed.
    #[error("{destination}: {stream}: {source}")]
    Destination {
        /// Destination name (e.g. `duckdb`).
        destination: String,
        /// Stream name.
        stream: String,
        /// The destination's own error.
        #[source]
        source: BoxError,
    },
    /// A stream name that the source does not offer.
    #[error("{connector} has no stream named `{stream}` (available: {available})")]
    UnknownStream {
        /// Connector name.
        connector: String,
        /// The name asked for.
        stream: String,
        /// Comma-separated names it does offer.
        available: String,
    },
    /// A stream catalog (specs/*.toml) is malformed.
    #[error("stream catalog {catalog}: {reason}")]
    Catalog {
        /// Which catalog.
        catalog: String,
        /// What is wrong, naming the stream and field.
        reason: String,
    },
    /// Reading or writing saved state failed.
    #[error("state store {location}: {reason}")]
    State {
        /// Where the state lives (a path or table).
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// A secret could not be read (the message names where from, never the value).
    #[error("secret from {location} could not be read: {reason}")]
    Secret {
        /// The variable or file.
        location: String,
        /// Why.
        reason: String,
    },
    /// A sync's mapping lacks a destination field the target requires.
    #[error(
        "sync {sync}: {target} requires destination field `{field}`, which the mapping does not map \
         (add `{field} = \"<model column>\"` to the sync's mapping)"
    )]
    SyncMapping {
        /// Sync name.
        sync: String,
        /// Target name (`mailchimp`).
        target: String,
        /// The unmapped required field.
        field: String,
    },
    /// A sync's mode is one its target cannot honour.
    #[error("sync {sync}: {target} cannot sync in mode `{mode}` (it supports: {supported})")]
    SyncMode {
        /// Sync name.
        sync: String,
        /// Target name.
        target: String,
        /// The mode asked for.
        mode: &'static str,
        /// Comma-separated modes it does support.
        supported: String,
    },
    /// A sync's spec does not fit its target (a field it does not know, a key
    /// it cannot identify records by); the target's error names the field.
    #[error("sync {sync}: {target} cannot take this sync: {source}")]
    SyncSpec {
        /// Sync name.
        sync: String,
        /// Target name.
        target: String,
        /// What the target found.
        #[source]
        source: BoxError,
    },
    /// The sync store (the warehouse) failed to plan, page or record a sync.
    #[error("sync {sync}: {step} failed: {source}")]
    SyncStore {
        /// Sync name.
        sync: String,
        /// What it was doing (`plan`, `read planned records`, `record outcomes`).
        step: &'static str,
        /// The store's own error.
        #[source]
        source: BoxError,
    },
    /// The destination failed a whole batch (nothing in it was acknowledged).
    #[error(
        "sync {sync}: {target} failed a batch of {records} {action}(s) starting at key {first_key}: {source}"
    )]
    SyncTarget {
        /// Sync name.
        sync: String,
        /// Target name.
        target: String,
        /// The batch's action (`create`, `update`, `delete`).
        action: String,
        /// Records in the batch.
        records: usize,
        /// The batch's first key.
        first_key: String,
        /// The target's own error.
        #[source]
        source: BoxError,
    },
    /// The run was cancelled before the stream finished; committed state is intact.
    #[error("{stream}: cancelled; state committed before the cancel is kept")]
    Cancelled {
        /// Stream name.
        stream: String,
    },
}

impl CoreError {
    /// [`CoreError::UnknownStream`]: `connector` has no stream `stream`, only `available`.
    pub fn unknown_stream<'a>(
        connector: &str,
        stream: &str,
        available: impl Iterator<Item = &'a str>,
    ) -> CoreError {
        CoreError::UnknownStream {
            connector: connector.to_string(),
            stream: stream.to_string(),
            available: available.collect::<Vec<_>>().join(", "),
        }
    }
}
