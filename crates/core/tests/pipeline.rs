//! The pipeline driver against an in-memory source and destination.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

use arrow_array::{Array, RecordBatch, StringArray};
use async_trait::async_trait;
use serde_json::{json, value::RawValue};
use weft_core::*;

fn spec() -> StreamSpec {
    Catalog::from_toml(
        "test",
        r#"
connector = "mem"
[[streams]]
name = "users"
primary_key = ["id"]
cursor = "ts"
[[streams.fields]]
name = "id"
type = "string"
[[streams.fields]]
name = "ts"
type = "integer"
"#,
    )
    .unwrap()
    .streams[0]
        .spec
        .clone()
}

enum Step {
    Page(Vec<&'static str>),
    Checkpoint(i64),
    Fail(&'static str),
    Quota,
    Hang,
}

/// A connector error that wraps the HTTP layer's quota stop as its source.
#[derive(Debug, thiserror::Error)]
#[error("http: {0}")]
struct WrappedQuota(#[source] QuotaReached);

struct MemSource {
    steps: Mutex<Option<Vec<Step>>>,
    seen_state: Mutex<Option<Option<StreamState>>>,
}

impl MemSource {
    fn new(steps: Vec<Step>) -> Arc<Self> {
        Arc::new(MemSource {
            steps: Mutex::new(Some(steps)),
            seen_state: Mutex::new(None),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TestError(String);

#[async_trait]
impl Source for MemSource {
    fn connector(&self) -> &str {
        "mem"
    }
    fn streams(&self) -> Vec<StreamSpec> {
        vec![spec()]
    }
    async fn check(&self) -> Result<(), BoxError> {
        Ok(())
    }
    fn read(&self, request: ReadRequest) -> EventStream<'_> {
        *self.seen_state.lock().unwrap() = Some(request.state.clone());
        let steps = self.steps.lock().unwrap().take().unwrap_or_default();
        spawn_events(move |tx| async move {
            for step in steps {
                let event = match step {
                    Step::Page(records) => SourceEvent::Page(JsonPage {
                        records: records
                            .into_iter()
                            .map(|r| RawValue::from_string(r.to_string()).unwrap())
                            .collect(),
                    }),
                    Step::Checkpoint(ts) => SourceEvent::Checkpoint(StreamState(json!({"ts": ts}))),
                    Step::Fail(msg) => return Err(Box::new(TestError(msg.into())) as BoxError),
                    Step::Quota => {
                        return Err(Box::new(WrappedQuota(QuotaReached {
                            api: "mem".into(),
                            used: 90,
                            quota: 100,
                        })) as BoxError);
                    }
                    Step::Hang => futures::future::pending::<SourceEvent>().await,
                };
                if tx.send(Ok(event)).await.is_err() {
                    return Ok(());
                }
            }
            Ok(())
        })
    }
}

#[derive(Default)]
struct Committed {
    loads: Vec<(String, Vec<RecordBatch>, Vec<Reject>, StreamState)>,
}

/// A load as committed: id, batches, rejects, state.
type Load = (String, Vec<RecordBatch>, Vec<Reject>, StreamState);

#[derive(Default)]
struct MemDestination {
    committed: Arc<Mutex<Committed>>,
    /// Apply sealed loads "in the background": a sealed load is applied when
    /// the next one is sealed or the pipeline waits for it.
    background: bool,
    /// Applying the background load with this state fails.
    fail_applying: Option<i64>,
}

struct MemSink {
    load_id: String,
    batches: Vec<RecordBatch>,
    rejects: Vec<Reject>,
    committed: Arc<Mutex<Committed>>,
    background: bool,
    fail_applying: Option<i64>,
    sealed: Option<Load>,
}

impl MemSink {
    fn seal(&mut self, state: StreamState) -> Load {
        let load_id = std::mem::replace(&mut self.load_id, new_load_id());
        (
            load_id,
            std::mem::take(&mut self.batches),
            std::mem::take(&mut self.rejects),
            state,
        )
    }

    fn apply(&self, load: Load) -> LoadReceipt {
        let rows = load.1.iter().map(|b| b.num_rows() as u64).sum();
        let load_id = load.0.clone();
        self.committed.lock().unwrap().loads.push(load);
        LoadReceipt {
            load_id,
            rows,
            ..Default::default()
        }
    }

    fn apply_sealed(&mut self) -> Result<Option<LoadReceipt>, CoreError> {
        let Some(load) = self.sealed.take() else {
            return Ok(None);
        };
        if self
            .fail_applying
            .is_some_and(|ts| load.3 == StreamState(json!({ "ts": ts })))
        {
            return Err(CoreError::Destination {
                destination: "memory".into(),
                stream: "users".into(),
                source: Box::new(TestError("disk full while applying".into())),
            });
        }
        Ok(Some(self.apply(load)))
    }
}

#[async_trait]
impl Destination for MemDestination {
    fn name(&self) -> &str {
        "memory"
    }
    async fn state(
        &self,
        _pipeline: &str,
        _stream: &str,
    ) -> Result<Option<StreamState>, CoreError> {
        Ok(self
            .committed
            .lock()
            .unwrap()
            .loads
            .last()
            .map(|l| l.3.clone()))
    }
    async fn open(&self, _target: LoadTarget) -> Result<Box<dyn LoadSink>, CoreError> {
        Ok(Box::new(MemSink {
            load_id: new_load_id(),
            batches: vec![],
            rejects: vec![],
            committed: self.committed.clone(),
            background: self.background,
            fail_applying: self.fail_applying,
            sealed: None,
        }))
    }
}

#[async_trait]
impl LoadSink for MemSink {
    fn load_id(&self) -> &str {
        &self.load_id
    }
    async fn write(&mut self, batch: RecordBatch) -> Result<(), CoreError> {
        self.batches.push(batch);
        Ok(())
    }
    async fn reject(&mut self, rejects: Vec<Reject>) -> Result<(), CoreError> {
        self.rejects.extend(rejects);
        Ok(())
    }
    async fn commit(&mut self, checkpoint: Checkpoint) -> Result<LoadReceipt, CoreError> {
        assert!(
            self.sealed.is_none(),
            "the pipeline waits for the background load first"
        );
        let load = self.seal(checkpoint.state);
        Ok(self.apply(load))
    }
    async fn commit_background(
        &mut self,
        checkpoint: Checkpoint,
    ) -> Result<Vec<LoadReceipt>, CoreError> {
        if !self.background {
            return Ok(vec![self.commit(checkpoint).await?]);
        }
        let earlier = self.apply_sealed()?;
        self.sealed = Some(self.seal(checkpoint.state));
        Ok(earlier.into_iter().collect())
    }
    async fn finish_background(&mut self) -> Result<Option<LoadReceipt>, CoreError> {
        self.apply_sealed()
    }
}

fn pipeline(source: Arc<MemSource>, dest: Arc<MemDestination>, rows: u64) -> Pipeline {
    Pipeline::new("p", source, dest).with_options(PipelineOptions {
        cadence: Cadence {
            rows,
            bytes: u64::MAX,
            seconds: 3600,
        },
        ..Default::default()
    })
}

#[tokio::test]
async fn commits_at_checkpoints_when_cadence_is_due_and_stamps_metadata() {
    let source = MemSource::new(vec![
        Step::Page(vec![r#"{"id":"a","ts":1}"#, r#"{"id":"b","ts":2}"#]),
        Step::Checkpoint(2),
        Step::Page(vec![r#"{"id":"c","ts":3}"#]),
        Step::Checkpoint(3),
        Step::Page(vec![
            r#"{"id":"d","ts":4}"#,
            r#"{"id":"e","ts":"not a number"}"#,
        ]),
        Step::Checkpoint(4),
    ]);
    let dest = Arc::new(MemDestination::default());
    let report = pipeline(source, dest.clone(), 2).run().await.unwrap();
    assert!(report.succeeded(), "{}", report.to_table());
    let s = report.stream("users").unwrap();
    assert_eq!(s.rows, 4);
    assert_eq!(s.rejected, 1);
    assert_eq!(s.loads, 2);
    assert_eq!(s.cursor, Some(json!({"ts": 4})));

    let committed = dest.committed.lock().unwrap();
    // rows=2 cadence: first commit after page 1 (2 rows), the next at the end (c + d).
    let states: Vec<_> = committed.loads.iter().map(|l| l.3.0.clone()).collect();
    assert_eq!(states, vec![json!({"ts": 2}), json!({"ts": 4})]);
    let (load_id, batches, rejects, _) = &committed.loads[1];
    let ids: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let col = b
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            (0..col.len()).map(move |i| col.value(i).to_string())
        })
        .collect();
    assert_eq!(ids, vec!["c", "d"]);
    let stamped = batches[0].column_by_name(LOAD_ID).unwrap();
    let stamped = stamped.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(stamped.value(0), load_id);
    assert!(batches[0].column_by_name(EXTRACTED_AT).is_some());
    assert_eq!(rejects.len(), 1);
    assert!(rejects[0].reason.contains("ts"), "{}", rejects[0].reason);
    assert_ne!(committed.loads[0].0, committed.loads[1].0);
}

#[tokio::test]
async fn resumes_from_committed_state_and_skips_empty_commits() {
    let dest = Arc::new(MemDestination::default());
    let first = MemSource::new(vec![
        Step::Page(vec![r#"{"id":"a","ts":1}"#]),
        Step::Checkpoint(1),
    ]);
    pipeline(first, dest.clone(), 1).run().await.unwrap();
    let second = MemSource::new(vec![Step::Checkpoint(1)]);
    let report = pipeline(second.clone(), dest.clone(), 1)
        .run()
        .await
        .unwrap();
    assert_eq!(
        second.seen_state.lock().unwrap().clone().unwrap(),
        Some(StreamState(json!({"ts": 1})))
    );
    assert_eq!(
        report.stream("users").unwrap().loads,
        0,
        "nothing changed: no commit"
    );
    assert_eq!(dest.committed.lock().unwrap().loads.len(), 1);
}

#[tokio::test]
async fn source_error_fails_the_stream_naming_connector_stream_and_cursor() {
    let dest = Arc::new(MemDestination::default());
    let source = MemSource::new(vec![
        Step::Page(vec![r#"{"id":"a","ts":1}"#]),
        Step::Checkpoint(1),
        Step::Fail("HTTP 404 from /v1/customers"),
    ]);
    let report = pipeline(source, dest.clone(), 1).run().await.unwrap();
    let s = report.stream("users").unwrap();
    assert_eq!(s.status, StreamStatus::Failed);
    let err = s.error.clone().unwrap();
    assert!(
        err.contains("mem/users") && err.contains("404") && err.contains("cursor none"),
        "{err}"
    );
    // What was committed before the failure is kept.
    assert_eq!(dest.committed.lock().unwrap().loads.len(), 1);
    assert!(!report.succeeded());
}

#[tokio::test]
async fn cancel_keeps_committed_state_and_drops_the_open_load() {
    let dest = Arc::new(MemDestination::default());
    let source = MemSource::new(vec![
        Step::Page(vec![r#"{"id":"a","ts":1}"#]),
        Step::Checkpoint(1),
        Step::Page(vec![r#"{"id":"b","ts":2}"#]),
        Step::Hang,
    ]);
    let p = pipeline(source, dest.clone(), 1);
    let cancel = p.cancel_token();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let report = p.run().await.unwrap();
    assert_eq!(
        report.stream("users").unwrap().status,
        StreamStatus::Cancelled
    );
    let committed = dest.committed.lock().unwrap();
    assert_eq!(committed.loads.len(), 1);
    assert_eq!(committed.loads[0].3, StreamState(json!({"ts": 1})));
}

#[tokio::test]
async fn unknown_stream_is_an_error_listing_the_available_ones() {
    let p = Pipeline::new(
        "p",
        MemSource::new(vec![]),
        Arc::new(MemDestination::default()),
    )
    .with_options(PipelineOptions {
        streams: Some(vec!["nope".into()]),
        ..Default::default()
    });
    let e = p.run().await.unwrap_err().to_string();
    assert!(e.contains("`nope`") && e.contains("users"), "{e}");
}

#[tokio::test]
async fn a_quota_stop_is_clean_keeps_state_and_is_not_a_failure() {
    let dest = Arc::new(MemDestination::default());
    let source = MemSource::new(vec![
        Step::Page(vec![r#"{"id":"a","ts":1}"#]),
        Step::Checkpoint(1),
        Step::Page(vec![r#"{"id":"b","ts":2}"#]),
        Step::Quota,
    ]);
    let report = pipeline(source, dest.clone(), 1).run().await.unwrap();
    let s = report.stream("users").unwrap();
    assert_eq!(s.status, StreamStatus::QuotaReached);
    assert!(report.succeeded(), "a quota stop is not a failure");
    assert_eq!(s.error, None);
    assert_eq!(s.notices.len(), 1);
    assert!(
        s.notices[0].contains("daily quota reached (90 of 100"),
        "{}",
        s.notices[0]
    );
    // The checkpoint before the stop is committed; the uncheckpointed page is not.
    let committed = dest.committed.lock().unwrap();
    assert_eq!(committed.loads.len(), 1);
    assert_eq!(committed.loads[0].3, StreamState(json!({"ts": 1})));
    assert!(report.to_table().contains("quota"));
}

fn background(fail_applying: Option<i64>) -> Arc<MemDestination> {
    Arc::new(MemDestination {
        background: true,
        fail_applying,
        ..Default::default()
    })
}

fn committed_states(dest: &MemDestination) -> Vec<serde_json::Value> {
    let committed = dest.committed.lock().unwrap();
    committed.loads.iter().map(|l| l.3.0.clone()).collect()
}

#[tokio::test]
async fn background_loads_commit_in_order_with_their_states_and_rows() {
    let steps = || {
        vec![
            Step::Page(vec![r#"{"id":"a","ts":1}"#, r#"{"id":"b","ts":2}"#]),
            Step::Checkpoint(2),
            Step::Page(vec![r#"{"id":"c","ts":3}"#]),
            Step::Checkpoint(3),
            Step::Page(vec![r#"{"id":"d","ts":4}"#]),
            Step::Checkpoint(4),
            Step::Page(vec![r#"{"id":"e","ts":5}"#]),
            Step::Checkpoint(5),
        ]
    };
    let dest = background(None);
    let report = pipeline(MemSource::new(steps()), dest.clone(), 1)
        .run()
        .await
        .unwrap();
    let s = report.stream("users").unwrap();
    assert!(report.succeeded(), "{}", report.to_table());
    assert_eq!((s.rows, s.loads), (5, 4));
    assert_eq!(s.cursor, Some(json!({"ts": 5})));
    let states = committed_states(&dest);
    assert_eq!(
        states,
        vec![
            json!({"ts": 2}),
            json!({"ts": 3}),
            json!({"ts": 4}),
            json!({"ts": 5})
        ]
    );
    // The same run in the foreground commits the same loads.
    let foreground = Arc::new(MemDestination::default());
    pipeline(MemSource::new(steps()), foreground.clone(), 1)
        .run()
        .await
        .unwrap();
    assert_eq!(committed_states(&foreground), states);
}

#[tokio::test]
async fn a_load_sealed_before_a_source_error_still_commits() {
    let dest = background(None);
    let source = MemSource::new(vec![
        Step::Page(vec![r#"{"id":"a","ts":1}"#]),
        Step::Checkpoint(1),
        Step::Page(vec![r#"{"id":"b","ts":2}"#]),
        Step::Fail("HTTP 500 from /v1/customers"),
    ]);
    let report = pipeline(source, dest.clone(), 1).run().await.unwrap();
    let s = report.stream("users").unwrap();
    assert_eq!(s.status, StreamStatus::Failed);
    // The sealed load (a, ts 1) is applied and reported; the open one (b) is not.
    assert_eq!(committed_states(&dest), vec![json!({"ts": 1})]);
    assert_eq!((s.rows, s.loads), (1, 1));
    assert_eq!(s.cursor, Some(json!({"ts": 1})));
}

#[tokio::test]
async fn a_failed_background_load_fails_the_stream_and_keeps_earlier_loads() {
    let dest = background(Some(2));
    let source = MemSource::new(vec![
        Step::Page(vec![r#"{"id":"a","ts":1}"#]),
        Step::Checkpoint(1),
        Step::Page(vec![r#"{"id":"b","ts":2}"#]),
        Step::Checkpoint(2),
        Step::Page(vec![r#"{"id":"c","ts":3}"#]),
        Step::Checkpoint(3),
    ]);
    let report = pipeline(source, dest.clone(), 1).run().await.unwrap();
    let s = report.stream("users").unwrap();
    assert_eq!(s.status, StreamStatus::Failed);
    assert!(
        s.error
            .as_deref()
            .unwrap_or_default()
            .contains("disk full while applying"),
        "{:?}",
        s.error
    );
    // ts 1 committed; ts 2 failed to apply, so ts 3 (sealed after it) is never applied.
    assert_eq!(committed_states(&dest), vec![json!({"ts": 1})]);
    assert_eq!((s.rows, s.loads), (1, 1));
    assert_eq!(s.cursor, Some(json!({"ts": 1})));
}
