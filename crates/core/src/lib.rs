//! weft-core: the engine's contracts and the pipeline driver.
//!
//! A [`Source`] reads a stream from a saved cursor as events (pages of
//! records and checkpoints); the [`Pipeline`] turns JSON pages into Arrow
//! batches (through `weft-arrow`), hands them to a [`Destination`], and asks it
//! to commit at checkpoints, where rows and the new cursor land in one
//! transaction. A [`RunReport`] says what happened per stream. An API
//! connector implements [`Connector`] (its name, streams, check and a
//! sequential `read_stream`) and is a [`Source`] through the shared impl.
//!
//! Stream catalogs ([`Catalog`]) are declared in `specs/*.toml` and parsed
//! here, so every connector describes its streams the same way.

mod catalog;
mod destination;
mod error;
mod metrics;
mod pipeline;
mod report;
mod secret;
mod source;
mod spec;
mod state;
mod sync;

pub use catalog::{Catalog, CatalogStream, DeclaredField};
pub use destination::{Checkpoint, Destination, LoadReceipt, LoadSink, LoadTarget, new_load_id};
pub use error::{BoxError, CoreError, QuotaReached};
pub use metrics::{MetricsSnapshot, StreamMetrics};
pub use pipeline::{Cadence, Pipeline, PipelineObserver, PipelineOptions};
pub use report::{RunReport, SliceReport, StreamReport, StreamStatus};
pub use secret::SecretRef;
pub use source::{
    Connector, EventSender, EventStream, JsonPage, ReadRequest, Source, SourceEvent, spawn_events,
};
pub use spec::{DELETED_AT, EXTRACTED_AT, LOAD_ID, StreamSpec, SyncMode, WriteDisposition};
pub use state::{FileStateStore, StateStore, StreamState, Watermark};
pub use sync::{
    NoJournal, PendingJob, PlannedRequest, ROLLED_BACK_HASH_PREFIX, RecordOutcome, RollbackReport,
    Skipped, SyncAction, SyncJournal, SyncLogEntry, SyncOptions, SyncPlan, SyncRecord, SyncReport,
    SyncSpec, SyncStore, SyncTarget, SyncWriteMode, check_sync, rollback_sync, run_sync,
};

pub use tokio_util::sync::CancellationToken;
pub use weft_arrow::{FieldType, Reject, SchemaContract};
