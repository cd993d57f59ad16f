//! Reading one stream of a source, every event collected: the reader the
//! suite's checks use, and that connectors' own tests use.
//!
//! [`read_stream`] builds the [`ReadRequest`] (the stream's spec found by name
//! in [`Source::streams`], a state to resume from, the extraction's start,
//! fresh [`StreamMetrics`], a [`CancellationToken`]), drains [`Source::read`]
//! and returns a [`StreamRead`]: the records as JSON (an Arrow batch's rows
//! included), the checkpoints, the notices, the metrics, and the error that
//! ended the read, if one did.
//!
//! ```no_run
//! # async fn demo(source: &dyn weft_core::Source, saved: weft_core::StreamState) {
//! use weft_conformance::read::read_stream;
//! let read = read_stream(source, "customers").state(saved).await;
//! assert_eq!(read.error_text(), None);
//! println!("{} records, {} checkpoints", read.records.len(), read.states.len());
//! # }
//! ```

use std::future::IntoFuture;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::Value;
use weft_core::{
    BoxError, CancellationToken, MetricsSnapshot, ReadRequest, Source, SourceEvent, StreamMetrics,
    StreamState,
};

use crate::memory::batch_rows;

/// Starts describing a read of `stream` (a name `source.streams()` lists).
///
/// By default the read starts from no state, at the current time, and runs to
/// the end; await the returned [`ReadStream`] to run it.
pub fn read_stream<'a>(source: &'a dyn Source, stream: &str) -> ReadStream<'a> {
    ReadStream {
        source,
        stream: stream.to_string(),
        state: None,
        started_at: Utc::now(),
        stop_after: None,
        max_in_flight: None,
    }
}

/// One read to run: built by [`read_stream`], run by awaiting it.
#[must_use = "a read does nothing until it is awaited"]
pub struct ReadStream<'a> {
    source: &'a dyn Source,
    stream: String,
    state: Option<StreamState>,
    started_at: DateTime<Utc>,
    stop_after: Option<usize>,
    max_in_flight: Option<usize>,
}

impl ReadStream<'_> {
    /// Resumes from `state` (a checkpoint an earlier read emitted), or from
    /// the beginning for `None`.
    pub fn state(mut self, state: impl Into<Option<StreamState>>) -> Self {
        self.state = state.into();
        self
    }

    /// Sets when the extraction started ([`ReadRequest::started_at`]; sources
    /// cap watermarks at it).
    pub fn started_at(mut self, at: DateTime<Utc>) -> Self {
        self.started_at = at;
        self
    }

    /// Caps the requests a sliced read keeps in flight ([`ReadRequest::max_in_flight`]).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n);
        self
    }

    /// Stops after checkpoint number `n` (1-based), as a crash after
    /// committing it would.
    pub fn stop_after_checkpoint(mut self, n: usize) -> Self {
        self.stop_after = Some(n);
        self
    }

    /// Runs the read to its end (or to the checkpoint it stops after, or to
    /// its first error) and returns what it emitted.
    pub async fn run(self) -> StreamRead {
        let mut out = StreamRead::default();
        let Some(spec) = self
            .source
            .streams()
            .into_iter()
            .find(|s| s.name == self.stream)
        else {
            out.error = Some(
                format!(
                    "{} does not list the stream `{}`",
                    self.source.connector(),
                    self.stream
                )
                .into(),
            );
            return out;
        };
        let metrics = Arc::new(StreamMetrics::default());
        let mut events = self.source.read(ReadRequest {
            spec,
            state: self.state,
            started_at: self.started_at,
            metrics: Arc::clone(&metrics),
            cancel: CancellationToken::new(),
            max_in_flight: self.max_in_flight,
        });
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    out.error = Some(e);
                    break;
                }
            };
            if let Err(e) = out.collect(event) {
                out.error = Some(e);
                break;
            }
            if self.stop_after.is_some_and(|n| out.states.len() >= n) {
                break;
            }
        }
        out.metrics = metrics.snapshot();
        out
    }
}

impl<'a> IntoFuture for ReadStream<'a> {
    type Output = StreamRead;
    type IntoFuture = BoxFuture<'a, StreamRead>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Everything one read emitted, in order.
#[derive(Debug, Default)]
pub struct StreamRead {
    /// Every record: each JSON page's records, then each Arrow batch's rows as objects.
    pub records: Vec<Value>,
    /// Records per page (or rows per batch), in order.
    pub pages: Vec<usize>,
    /// How many of the pages were Arrow batches.
    pub batches: usize,
    /// Each checkpoint's state, in order.
    pub states: Vec<StreamState>,
    /// For each checkpoint in `states`, how many records were emitted before it.
    pub records_before_state: Vec<usize>,
    /// Each notice, in order.
    pub notices: Vec<String>,
    /// The read's counters (requests, retries, waits...) when it ended.
    pub metrics: MetricsSnapshot,
    /// The error that ended the read: the source's, or a record that is not
    /// JSON, or a stream the source does not list.
    pub error: Option<BoxError>,
}

impl StreamRead {
    /// The error that ended the read with its sources, one `: ` apart; `None`
    /// if the read succeeded.
    pub fn error_text(&self) -> Option<String> {
        self.error.as_deref().map(|e| chain(e))
    }

    /// The read, or the error that ended it.
    pub fn into_result(mut self) -> Result<StreamRead, BoxError> {
        match self.error.take() {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }

    /// The state of the last checkpoint, if any.
    pub fn last_state(&self) -> Option<&StreamState> {
        self.states.last()
    }

    /// The checkpoints' states as JSON values, in order.
    pub fn state_values(&self) -> Vec<Value> {
        self.states.iter().map(|s| s.0.clone()).collect()
    }

    fn collect(&mut self, event: SourceEvent) -> Result<(), BoxError> {
        match event {
            SourceEvent::Page(page) => {
                self.pages.push(page.records.len());
                for raw in &page.records {
                    let record = serde_json::from_str(raw.get()).map_err(|e| {
                        format!("record {} is not JSON: {e}", self.records.len() + 1)
                    })?;
                    self.records.push(record);
                }
            }
            SourceEvent::Batch(batch) => {
                self.pages.push(batch.num_rows());
                self.batches += 1;
                let rows = batch_rows(&batch).map_err(|e| format!("a batch: {e}"))?;
                self.records.extend(
                    rows.into_iter()
                        .map(|r| Value::Object(r.into_iter().collect())),
                );
            }
            SourceEvent::Checkpoint(state) => {
                self.records_before_state.push(self.records.len());
                self.states.push(state);
            }
            SourceEvent::Notice(notice) => self.notices.push(notice),
        }
        Ok(())
    }
}

/// An error and its sources, one `: ` apart (a source already quoted in the
/// text before it is not repeated).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use async_trait::async_trait;
    use serde_json::json;
    use serde_json::value::RawValue;
    use weft_core::{EventStream, JsonPage, StreamSpec};

    /// Emits a page of two, a notice, a checkpoint, a batch of one, a
    /// checkpoint, then fails.
    struct Scripted;

    fn checkpoint(n: i64) -> SourceEvent {
        SourceEvent::Checkpoint(StreamState(json!({ "n": n })))
    }

    #[async_trait]
    impl Source for Scripted {
        fn connector(&self) -> &str {
            "scripted"
        }

        fn streams(&self) -> Vec<StreamSpec> {
            vec![StreamSpec::new("things", Schema::empty())]
        }

        async fn check(&self) -> Result<(), BoxError> {
            Ok(())
        }

        fn read(&self, request: ReadRequest) -> EventStream<'_> {
            let raw = |v: &str| RawValue::from_string(v.to_string()).unwrap();
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
            let batch =
                RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![3]))]).unwrap();
            let resumed = request.state.is_some();
            let events: Vec<Result<SourceEvent, BoxError>> = vec![
                Ok(SourceEvent::Page(JsonPage {
                    records: vec![raw(r#"{"id":1}"#), raw(r#"{"id":2}"#)],
                })),
                Ok(SourceEvent::Notice(format!("resumed: {resumed}"))),
                Ok(checkpoint(1)),
                Ok(SourceEvent::Batch(batch)),
                Ok(checkpoint(2)),
                Err("the API went away".into()),
                Ok(checkpoint(3)),
            ];
            Box::pin(futures::stream::iter(events))
        }
    }

    #[tokio::test]
    async fn collects_every_event_and_stops_at_the_first_error() {
        let state = StreamState(json!({"n": 0}));
        let r = read_stream(&Scripted, "things").state(state).await;
        assert_eq!(
            r.records,
            [json!({"id": 1}), json!({"id": 2}), json!({"id": 3})]
        );
        assert_eq!((r.pages.as_slice(), r.batches), ([2, 1].as_slice(), 1));
        assert_eq!(r.state_values(), [json!({"n": 1}), json!({"n": 2})]);
        assert_eq!(r.records_before_state, [2, 3]);
        assert_eq!(r.notices, ["resumed: true"]);
        assert_eq!(r.error_text().as_deref(), Some("the API went away"));
        assert!(r.into_result().is_err());
    }

    #[tokio::test]
    async fn stops_after_the_checkpoint_asked_for() {
        let r = read_stream(&Scripted, "things")
            .stop_after_checkpoint(1)
            .await;
        assert_eq!(r.notices, ["resumed: false"]);
        assert_eq!((r.records.len(), r.states.len()), (2, 1));
        assert_eq!(r.last_state(), Some(&StreamState(json!({"n": 1}))));
        assert!(r.into_result().is_ok());
    }

    #[tokio::test]
    async fn an_unlisted_stream_is_an_error() {
        let r = read_stream(&Scripted, "nope").await;
        assert_eq!(
            r.error_text().as_deref(),
            Some("scripted does not list the stream `nope`")
        );
        assert!(r.records.is_empty() && r.states.is_empty());
    }
}
