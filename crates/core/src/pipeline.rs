//! The pipeline driver: source -> JSON->Arrow -> destination, with checkpoints.
//!
//! Per stream: read the committed state from the destination, read the source
//! from it, convert pages under the stream's schema (quarantining bad records),
//! stamp `_weft_load_id` and `_weft_extracted_at`, write to the destination's
//! sink, and commit at the source's checkpoints once the cadence (rows, bytes
//! or seconds) is due. Streams run concurrently up to a bound.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::Utc;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use weft_arrow::{JsonDecoder, SchemaContract};

use crate::report::StreamStatus;
use crate::{
    Checkpoint, CoreError, Destination, EXTRACTED_AT, LOAD_ID, LoadReceipt, LoadSink, LoadTarget,
    ReadRequest, RunReport, Source, SourceEvent, StreamMetrics, StreamReport, StreamSpec,
    StreamState, WriteDisposition,
};

/// When the pipeline commits: whichever of rows, bytes or seconds comes first,
/// at the next checkpoint the source emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Commit after this many rows.
    pub rows: u64,
    /// Commit after this many bytes of Arrow data.
    pub bytes: u64,
    /// Commit after this much time.
    pub seconds: u64,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            rows: 50_000,
            bytes: 64 * 1024 * 1024,
            seconds: 60,
        }
    }
}

/// How a pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Streams to run (`None` = every stream the source offers).
    pub streams: Option<Vec<String>>,
    /// Ignore saved state and read everything again (rows still merge by key).
    pub full_refresh: bool,
    /// Streams run at once.
    pub concurrency: usize,
    /// Commit cadence.
    pub cadence: Cadence,
    /// What to do with records that do not match the declared schema.
    pub contract: SchemaContract,
    /// Overrides every stream's write disposition.
    pub disposition: Option<WriteDisposition>,
    /// Overrides single streams' write dispositions, by stream name (wins
    /// over `disposition`).
    pub stream_dispositions: std::collections::BTreeMap<String, WriteDisposition>,
    /// Requests each stream's sliced read may keep in flight (`None`: sized
    /// from the rate budget and the observed latency).
    pub max_in_flight: Option<usize>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            streams: None,
            full_refresh: false,
            concurrency: 4,
            cadence: Cadence::default(),
            contract: SchemaContract::Evolve,
            disposition: None,
            stream_dispositions: std::collections::BTreeMap::new(),
            max_in_flight: None,
        }
    }
}

/// Hears about streams as they start and finish (progress bars, logs).
pub trait PipelineObserver: Send + Sync {
    /// A stream started; `metrics` stays live until it finishes.
    fn stream_started(&self, _stream: &str, _metrics: Arc<StreamMetrics>) {}
    /// A stream finished.
    fn stream_finished(&self, _report: &StreamReport) {}
}

/// Drives a [`Source`] into a [`Destination`].
///
/// ```no_run
/// # async fn demo(source: std::sync::Arc<dyn weft_core::Source>,
/// #               warehouse: std::sync::Arc<dyn weft_core::Destination>) {
/// use weft_core::{Pipeline, PipelineOptions};
/// let pipeline = Pipeline::new("stripe", source, warehouse).with_options(PipelineOptions {
///     streams: Some(vec!["customers".into()]),
///     ..Default::default()
/// });
/// let report = pipeline.run().await.expect("known streams");
/// println!("{}", report.to_table());
/// # }
/// ```
pub struct Pipeline {
    name: String,
    source: Arc<dyn Source>,
    destination: Arc<dyn Destination>,
    options: PipelineOptions,
    cancel: CancellationToken,
    observer: Option<Arc<dyn PipelineObserver>>,
}

impl Pipeline {
    /// A pipeline named `name` (the warehouse schema its tables land in).
    pub fn new(
        name: impl Into<String>,
        source: Arc<dyn Source>,
        destination: Arc<dyn Destination>,
    ) -> Self {
        Pipeline {
            name: name.into(),
            source,
            destination,
            options: PipelineOptions::default(),
            cancel: CancellationToken::new(),
            observer: None,
        }
    }

    /// Sets the options.
    pub fn with_options(mut self, options: PipelineOptions) -> Self {
        self.options = options;
        self
    }

    /// Uses this token for cancellation (e.g. one shared by every pipeline on Ctrl-C).
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Reports stream starts and ends to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn PipelineObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The token that cancels this pipeline.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The streams this run covers, in order; unknown names are an error.
    pub fn selected_streams(&self) -> Result<Vec<StreamSpec>, CoreError> {
        let all = self.source.streams();
        let Some(wanted) = &self.options.streams else {
            return Ok(all);
        };
        wanted
            .iter()
            .map(|name| {
                all.iter()
                    .find(|s| &s.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        CoreError::unknown_stream(
                            self.source.connector(),
                            name,
                            all.iter().map(|s| s.name.as_str()),
                        )
                    })
            })
            .collect()
    }

    /// Runs every selected stream; a failing stream does not stop the others.
    ///
    /// Returns an error only when a requested stream does not exist; stream
    /// failures are in the report ([`RunReport::succeeded`]).
    pub async fn run(&self) -> Result<RunReport, CoreError> {
        let started = Instant::now();
        let specs = self.selected_streams()?;
        let streams = futures::stream::iter(specs)
            .map(|spec| self.run_stream(spec))
            .buffered(self.options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        Ok(RunReport {
            pipeline: self.name.clone(),
            streams,
            seconds: started.elapsed().as_secs_f64(),
            error: None,
        })
    }

    async fn run_stream(&self, spec: StreamSpec) -> StreamReport {
        let started = Instant::now();
        let metrics = Arc::new(StreamMetrics::default());
        if let Some(o) = &self.observer {
            o.stream_started(&spec.name, metrics.clone());
        }
        let span = tracing::info_span!("stream", pipeline = %self.name, stream = %spec.name);
        let mut report = StreamReport::new(&spec.name);
        let outcome = self
            .drive(&spec, &metrics, &mut report)
            .instrument(span.clone())
            .await;
        let _enter = span.enter();
        report.seconds = started.elapsed().as_secs_f64();
        report.absorb(metrics.snapshot());
        if let Err(e) = outcome {
            if let Some(quota) = crate::QuotaReached::in_chain(&e) {
                report.status = StreamStatus::QuotaReached;
                tracing::warn!(%quota, "stopped at the daily quota; committed state kept");
                report
                    .notices
                    .push(format!("quota reached: {quota}; the next run continues"));
            } else {
                report.status = match e {
                    CoreError::Cancelled { .. } => StreamStatus::Cancelled,
                    _ => StreamStatus::Failed,
                };
                tracing::error!(error = %e, "stream did not finish");
                report.error = Some(e.to_string());
            }
        }
        if let Some(o) = &self.observer {
            o.stream_finished(&report);
        }
        report
    }

    async fn drive(
        &self,
        spec: &StreamSpec,
        metrics: &Arc<StreamMetrics>,
        report: &mut StreamReport,
    ) -> Result<(), CoreError> {
        let committed = match self.options.full_refresh {
            true => None,
            false => self.destination.state(&self.name, &spec.name).await?,
        };
        report.cursor = committed.as_ref().map(|s| s.0.clone());
        let cursor_text = committed
            .as_ref()
            .map_or_else(|| "none".to_string(), |s| s.0.to_string());
        let disposition = self
            .options
            .stream_dispositions
            .get(&spec.name)
            .copied()
            .or(self.options.disposition)
            .unwrap_or(spec.write_disposition);
        let mut sink = self
            .destination
            .open(LoadTarget {
                pipeline: self.name.clone(),
                spec: spec.clone(),
                disposition,
            })
            .await?;
        let connector = self.source.connector().to_string();
        let mut decoder = JsonDecoder::new(
            spec.schema.clone(),
            spec.primary_key.clone(),
            self.options.contract,
        )
        .map_err(|source| CoreError::Convert {
            connector: connector.clone(),
            stream: spec.name.clone(),
            page: 0,
            source,
        })?;
        let mut load = LoadProgress::new(committed.clone());
        let events = self.source.read(ReadRequest {
            spec: spec.clone(),
            state: committed,
            started_at: Utc::now(),
            metrics: metrics.clone(),
            cancel: self.cancel.clone(),
            max_in_flight: self.options.max_in_flight,
        });
        let run = StreamRun {
            spec,
            connector: &connector,
            cursor_text: &cursor_text,
            disposition,
            metrics,
        };
        let outcome = self
            .pump(run, events, &mut decoder, &mut *sink, &mut load, report)
            .await;
        // Whatever happened, a load sealed earlier finishes applying: its rows
        // and its state commit together, so it is kept even when this run fails.
        let settled = sink.finish_background().await;
        match (outcome, settled) {
            (Ok(()), Ok(receipt)) => {
                load.absorb(receipt, report);
                load.close(&mut *sink, report, false).await
            }
            (Err(e), Ok(receipt)) => {
                load.absorb(receipt, report);
                Err(e)
            }
            (Ok(()), Err(e)) => Err(e),
            (Err(e), Err(background)) => {
                tracing::error!(error = %background, "the load applied in the background failed too");
                Err(e)
            }
        }
    }

    /// Reads the source's events into the sink until the stream ends,
    /// sealing a load at each due checkpoint.
    async fn pump(
        &self,
        run: StreamRun<'_>,
        mut events: crate::EventStream<'_>,
        decoder: &mut JsonDecoder,
        sink: &mut dyn LoadSink,
        load: &mut LoadProgress,
        report: &mut StreamReport,
    ) -> Result<(), CoreError> {
        let StreamRun {
            spec,
            connector,
            cursor_text,
            disposition,
            metrics,
        } = run;
        let mut page = 0u64;
        loop {
            let event = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    return Err(CoreError::Cancelled { stream: spec.name.clone() });
                }
                event = events.next() => event,
            };
            let Some(event) = event else { return Ok(()) };
            let event = event.map_err(|source| CoreError::Source {
                connector: connector.to_string(),
                stream: spec.name.clone(),
                cursor: cursor_text.to_string(),
                source,
            })?;
            match event {
                SourceEvent::Page(json) => {
                    page += 1;
                    let decoded = decoder.decode_page(&json.records).map_err(|source| {
                        CoreError::Convert {
                            connector: connector.to_string(),
                            stream: spec.name.clone(),
                            page,
                            source,
                        }
                    })?;
                    for f in &decoded.new_fields {
                        report.notices.push(format!(
                            "new column `{}` ({}) added from page {page}",
                            f.name(),
                            f.data_type()
                        ));
                    }
                    if !decoded.rejects.is_empty() {
                        load.rejects += decoded.rejects.len() as u64;
                        metrics.add_rejected(decoded.rejects.len() as u64);
                        sink.reject(decoded.rejects).await?;
                    }
                    if let Some(batch) = decoded.batch {
                        load.write(sink, batch, metrics).await?;
                    }
                }
                SourceEvent::Batch(batch) => load.write(sink, batch, metrics).await?,
                SourceEvent::Checkpoint(state) => {
                    load.pending = Some(state);
                    if disposition != WriteDisposition::Replace && load.due(&self.options.cadence) {
                        load.close(sink, report, true).await?;
                    }
                }
                SourceEvent::Notice(n) => {
                    tracing::info!(notice = %n, "source notice");
                    report.notices.push(n);
                }
            }
        }
    }
}

/// What [`Pipeline::pump`] needs to know about the stream it reads.
struct StreamRun<'a> {
    spec: &'a StreamSpec,
    connector: &'a str,
    cursor_text: &'a str,
    disposition: WriteDisposition,
    metrics: &'a Arc<StreamMetrics>,
}

/// The load being written between two commits.
struct LoadProgress {
    /// The state of the last load handed to the sink (committed or applying).
    committed: Option<StreamState>,
    /// The state the source last checkpointed, not yet handed to the sink.
    pending: Option<StreamState>,
    /// States of loads applying in the background, oldest first.
    applying: VecDeque<StreamState>,
    rows: u64,
    bytes: u64,
    rejects: u64,
    since: Instant,
}

impl LoadProgress {
    fn new(committed: Option<StreamState>) -> Self {
        LoadProgress {
            committed,
            pending: None,
            applying: VecDeque::new(),
            rows: 0,
            bytes: 0,
            rejects: 0,
            since: Instant::now(),
        }
    }

    async fn write(
        &mut self,
        sink: &mut dyn LoadSink,
        batch: RecordBatch,
        metrics: &StreamMetrics,
    ) -> Result<(), CoreError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = stamp(batch, sink.load_id())?;
        self.rows += batch.num_rows() as u64;
        self.bytes += batch.get_array_memory_size() as u64;
        metrics.add_rows(batch.num_rows() as u64);
        sink.write(batch).await
    }

    fn due(&self, cadence: &Cadence) -> bool {
        self.rows >= cadence.rows
            || self.bytes >= cadence.bytes
            || self.since.elapsed() >= Duration::from_secs(cadence.seconds)
    }

    /// The state to commit next, or `None` when there is nothing to commit
    /// (no rows, no rejects, the state unchanged); resets the counters.
    fn next_checkpoint(&mut self) -> Option<StreamState> {
        let state = self.pending.take().or_else(|| self.committed.clone());
        let changed = state != self.committed;
        if self.rows == 0 && self.rejects == 0 && !changed {
            return None;
        }
        let state = state.unwrap_or(crate::StreamState(serde_json::Value::Null));
        self.committed = Some(state.clone());
        self.rows = 0;
        self.bytes = 0;
        self.rejects = 0;
        self.since = Instant::now();
        Some(state)
    }

    /// Hands the load to the sink: in the background while the next load is
    /// written, or now (after every background load has been absorbed).
    async fn close(
        &mut self,
        sink: &mut dyn LoadSink,
        report: &mut StreamReport,
        background: bool,
    ) -> Result<(), CoreError> {
        let Some(state) = self.next_checkpoint() else {
            return Ok(());
        };
        self.applying.push_back(state.clone());
        let checkpoint = Checkpoint { state };
        let receipts = if background {
            sink.commit_background(checkpoint).await?
        } else {
            vec![sink.commit(checkpoint).await?]
        };
        for receipt in receipts {
            self.absorb(Some(receipt), report);
        }
        Ok(())
    }

    /// Records a finished load (the oldest one applying) in the report.
    fn absorb(&mut self, receipt: Option<LoadReceipt>, report: &mut StreamReport) {
        let Some(receipt) = receipt else { return };
        tracing::info!(load_id = %receipt.load_id, rows = receipt.rows, "load committed");
        report.rows += receipt.rows;
        report.staged_bytes += receipt.bytes;
        report.loads += 1;
        if let Some(state) = self.applying.pop_front() {
            report.cursor = Some(state.0);
        }
    }
}

/// Appends `_weft_load_id` and `_weft_extracted_at` to a batch.
fn stamp(batch: RecordBatch, load_id: &str) -> Result<RecordBatch, CoreError> {
    let n = batch.num_rows();
    let now = Utc::now().timestamp_micros();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .filter(|f| f.name() != LOAD_ID && f.name() != EXTRACTED_AT)
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| f.name() != LOAD_ID && f.name() != EXTRACTED_AT)
        .map(|(_, c)| c.clone())
        .collect();
    fields.push(Field::new(LOAD_ID, DataType::Utf8, false));
    fields.push(Field::new(
        EXTRACTED_AT,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    columns.push(Arc::new(StringArray::from(vec![load_id; n])));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC"),
    ));
    let schema = Schema::new_with_metadata(fields, batch.schema().metadata().clone());
    RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| CoreError::Convert {
        connector: String::new(),
        stream: String::new(),
        page: 0,
        source: e.into(),
    })
}
