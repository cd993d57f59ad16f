//! The read side: what a source offers and the events it emits.

use std::sync::Arc;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::{BoxError, StreamMetrics, StreamSpec, StreamState};

/// One page of raw JSON records, exactly as the API returned them.
#[derive(Debug, Default)]
pub struct JsonPage {
    /// The records (each a JSON object), in API order.
    pub records: Vec<Box<RawValue>>,
}

/// What a source emits while reading a stream.
#[derive(Debug)]
pub enum SourceEvent {
    /// A page of JSON records; the pipeline converts it under the stream's schema.
    Page(JsonPage),
    /// Records already in Arrow form (warehouse sources, CSV exports).
    Batch(RecordBatch),
    /// Every record up to here has been emitted; `StreamState` is the cursor to
    /// resume from. The pipeline commits it together with those records.
    Checkpoint(StreamState),
    /// Something the run report should say (a fallback taken, a quota reached).
    Notice(String),
}

/// A stream of source events, ending when the stream is read to the end.
pub type EventStream<'a> = BoxStream<'a, Result<SourceEvent, BoxError>>;

/// Everything a source needs to read one stream.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// The stream to read (as returned by [`Source::streams`]).
    pub spec: StreamSpec,
    /// The saved state to resume from; `None` on a first run or full refresh.
    pub state: Option<StreamState>,
    /// When this extraction started (the watermark's ceiling is derived from it).
    pub started_at: DateTime<Utc>,
    /// Counters the source's HTTP client updates.
    pub metrics: Arc<StreamMetrics>,
    /// Cancelled when the run is interrupted; sources should stop promptly.
    pub cancel: CancellationToken,
    /// Requests a sliced read of this stream may keep in flight; `None` sizes
    /// it from the account's rate budget and observed latency.
    pub max_in_flight: Option<usize>,
}

/// A source of records: a SaaS API, or a warehouse model for reverse sync.
///
/// Contract: `read` yields every record after the given state at least once,
/// in an order where each [`SourceEvent::Checkpoint`] covers everything emitted
/// before it; a checkpoint's state, saved and passed back, resumes the read
/// without losing records (re-reading a boundary is fine: loads merge by key).
#[async_trait]
pub trait Source: Send + Sync {
    /// Connector name (`stripe`, `zoom`...), used in errors and reports.
    fn connector(&self) -> &str;

    /// The streams this source offers (discover); stable between calls.
    fn streams(&self) -> Vec<StreamSpec>;

    /// Checks credentials and connectivity with one cheap request.
    async fn check(&self) -> Result<(), BoxError>;

    /// Reads one stream from `request.state` onwards.
    fn read(&self, request: ReadRequest) -> EventStream<'_>;
}

/// What an API connector knows; every `Connector` is a [`Source`].
///
/// The shared [`Source`] impl names the connector, lists its streams, and runs
/// [`Connector::read_stream`] as a task on a clone of the connector
/// ([`spawn_events`]: bounded, stopped when the stream is dropped), its error
/// becoming the stream's last event. A connector is a cheap handle (an `Arc`
/// of its client and catalog), so the clone costs nothing.
#[async_trait]
pub trait Connector: Clone + Send + Sync + 'static {
    /// The error `read_stream` ends with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Connector name (`stripe`, `zoom`...): [`Source::connector`].
    const NAME: &'static str;

    /// The streams on offer: [`Source::streams`].
    fn stream_specs(&self) -> Vec<StreamSpec>;

    /// One cheap authenticated request: [`Source::check`].
    async fn check_connection(&self) -> Result<(), BoxError>;

    /// Reads one stream from `request.state` onwards, sending its events to
    /// `tx` as plain sequential async code: [`Source::read`].
    async fn read_stream(self, request: ReadRequest, tx: EventSender) -> Result<(), Self::Error>;
}

#[async_trait]
impl<C: Connector> Source for C {
    fn connector(&self) -> &str {
        C::NAME
    }

    fn streams(&self) -> Vec<StreamSpec> {
        self.stream_specs()
    }

    async fn check(&self) -> Result<(), BoxError> {
        self.check_connection().await
    }

    fn read(&self, request: ReadRequest) -> EventStream<'_> {
        let this = self.clone();
        spawn_events(move |tx| async move {
            this.read_stream(request, tx)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }
}

/// The sending half handed to [`spawn_events`]' producer.
pub type EventSender = tokio::sync::mpsc::Sender<Result<SourceEvent, BoxError>>;

/// Runs `produce` as a task and returns its events as an [`EventStream`].
///
/// Lets a connector write its read as plain sequential async code that sends
/// events; the bounded channel gives backpressure (the producer waits while the
/// pipeline is busy), and dropping the stream stops the producer at its next send.
/// An error returned by `produce` becomes the stream's last item.
pub fn spawn_events<F, Fut>(produce: F) -> EventStream<'static>
where
    F: FnOnce(EventSender) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let fut = produce(tx.clone());
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
