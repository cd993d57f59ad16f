//! The destination suite passes the in-memory reference destination and
//! fails each deliberately broken one on exactly the check its flaw breaks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use async_trait::async_trait;
use weft_conformance::destination::{DestinationHarness, MemoryHarness, run_suite};
use weft_conformance::{Check, MemoryDestination, Outcome, Row};
use weft_core::{
    BoxError, Checkpoint, CoreError, Destination, LoadReceipt, LoadSink, LoadTarget, Reject,
    StreamState, WriteDisposition,
};

/// One deliberate defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Merge loads are appended.
    AppendsOnMerge,
    /// Append loads are merged on the key.
    MergesOnAppend,
    /// Replace loads are appended.
    AppendsOnReplace,
    /// Columns a table did not have at its first load are dropped.
    DropsNewColumn,
    /// Every written batch is committed at once, before the load's checkpoint.
    CommitsBeforeLoadEnds,
    /// A load sealed for the background is never applied.
    LosesBackgroundLoads,
}

#[derive(Clone)]
struct Broken {
    inner: MemoryDestination,
    flaw: Flaw,
    /// Columns of each table's first batch.
    columns: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

struct BrokenSink {
    inner: Box<dyn LoadSink>,
    destination: Broken,
    stream: String,
}

#[async_trait]
impl Destination for Broken {
    fn name(&self) -> &str {
        "broken"
    }

    async fn state(&self, pipeline: &str, stream: &str) -> Result<Option<StreamState>, CoreError> {
        self.inner.state(pipeline, stream).await
    }

    async fn open(&self, mut target: LoadTarget) -> Result<Box<dyn LoadSink>, CoreError> {
        target.disposition = match (self.flaw, target.disposition) {
            (Flaw::AppendsOnMerge, WriteDisposition::Merge)
            | (Flaw::AppendsOnReplace, WriteDisposition::Replace) => WriteDisposition::Append,
            (Flaw::MergesOnAppend, WriteDisposition::Append) => WriteDisposition::Merge,
            (_, disposition) => disposition,
        };
        let stream = target.spec.name.clone();
        let pipeline = target.pipeline.clone();
        Ok(Box::new(BrokenSink {
            inner: self.inner.open(target).await?,
            destination: self.clone(),
            stream: format!("{pipeline}.{stream}"),
        }))
    }
}

#[async_trait]
impl LoadSink for BrokenSink {
    fn load_id(&self) -> &str {
        self.inner.load_id()
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<(), CoreError> {
        let batch = if self.destination.flaw == Flaw::DropsNewColumn {
            let names: Vec<String> = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let known = self
                .destination
                .columns
                .lock()
                .unwrap()
                .entry(self.stream.clone())
                .or_insert(names)
                .clone();
            let keep: Vec<usize> = (0..batch.num_columns())
                .filter(|i| known.contains(batch.schema().field(*i).name()))
                .collect();
            batch.project(&keep).unwrap()
        } else {
            batch
        };
        self.inner.write(batch).await?;
        if self.destination.flaw == Flaw::CommitsBeforeLoadEnds {
            let (pipeline, stream) = self.stream.split_once('.').unwrap();
            let state = self.destination.inner.state(pipeline, stream).await?;
            let state = state.unwrap_or(StreamState(serde_json::Value::Null));
            self.inner.commit(Checkpoint { state }).await?;
        }
        Ok(())
    }

    async fn reject(&mut self, rejects: Vec<Reject>) -> Result<(), CoreError> {
        self.inner.reject(rejects).await
    }

    async fn commit(&mut self, checkpoint: Checkpoint) -> Result<LoadReceipt, CoreError> {
        self.inner.commit(checkpoint).await
    }

    async fn commit_background(
        &mut self,
        checkpoint: Checkpoint,
    ) -> Result<Vec<LoadReceipt>, CoreError> {
        if self.destination.flaw == Flaw::LosesBackgroundLoads {
            return Ok(Vec::new());
        }
        self.inner.commit_background(checkpoint).await
    }
}

struct BrokenHarness(Flaw);

#[async_trait]
impl DestinationHarness for BrokenHarness {
    type Destination = Broken;

    fn name(&self) -> &str {
        "broken"
    }

    async fn create(&self) -> Result<Broken, BoxError> {
        Ok(Broken {
            inner: MemoryDestination::new(),
            flaw: self.0,
            columns: Arc::default(),
        })
    }

    async fn rows(&self, d: &Broken, pipeline: &str, stream: &str) -> Result<Vec<Row>, BoxError> {
        Ok(d.inner.rows(pipeline, stream))
    }

    async fn replay(
        &self,
        d: &Broken,
        target: &LoadTarget,
        load_id: &str,
    ) -> Result<Option<LoadReceipt>, BoxError> {
        MemoryHarness.replay(&d.inner, target, load_id).await
    }
}

async fn failed(flaw: Flaw) -> (Vec<Check>, String) {
    let report = run_suite(&BrokenHarness(flaw)).await;
    println!("{report}");
    assert_eq!(report.checks.len(), 6, "{report}");
    (report.failed(), report.to_string())
}

#[tokio::test]
async fn the_memory_destination_passes_every_check() {
    let report = run_suite(&MemoryHarness).await;
    report.assert_passed();
    assert_eq!(
        report.checks.iter().map(|c| c.check).collect::<Vec<_>>(),
        weft_conformance::destination::CHECKS.to_vec()
    );
    assert!(
        report.checks.iter().all(|c| c.outcome == Outcome::Passed),
        "{report}"
    );
}

#[tokio::test]
async fn appending_on_merge_fails_merge() {
    let (failed, text) = failed(Flaw::AppendsOnMerge).await;
    assert_eq!(failed, [Check::MergeSemantics]);
    assert!(text.contains("after two merge loads"), "{text}");
}

#[tokio::test]
async fn merging_on_append_fails_append() {
    let (failed, text) = failed(Flaw::MergesOnAppend).await;
    // The background check appends its loads too: the flaw merges them there as well.
    assert_eq!(failed, [Check::AppendSemantics, Check::BackgroundCommit]);
    assert!(text.contains("append"), "{text}");
}

#[tokio::test]
async fn appending_on_replace_fails_replace() {
    let (failed, text) = failed(Flaw::AppendsOnReplace).await;
    assert_eq!(failed, [Check::ReplaceSemantics]);
    assert!(text.contains("replace"), "{text}");
}

#[tokio::test]
async fn dropping_a_new_column_fails_schema_evolution() {
    let (failed, text) = failed(Flaw::DropsNewColumn).await;
    assert_eq!(failed, [Check::SchemaEvolution]);
    assert!(text.contains(r#"["c",2,"c2",null]"#), "{text}");
}

#[tokio::test]
async fn committing_before_the_load_ends_fails_crash_safety() {
    let (failed, text) = failed(Flaw::CommitsBeforeLoadEnds).await;
    // The background check abandons a load too: the flaw commits it there as well.
    assert_eq!(failed, [Check::CrashBeforeCommit, Check::BackgroundCommit]);
    assert!(
        text.contains("after a load abandoned before its commit"),
        "{text}"
    );
}

#[tokio::test]
async fn losing_a_background_load_fails_background_commit() {
    let (failed, text) = failed(Flaw::LosesBackgroundLoads).await;
    assert_eq!(failed, [Check::BackgroundCommit]);
    assert!(
        text.contains("three sealed loads of 2 rows gave 0 receipt(s)"),
        "{text}"
    );
}

#[tokio::test]
#[should_panic(expected = "conformance of broken failed 1 check(s): merge_semantics")]
async fn assert_passed_names_the_failed_checks() {
    run_suite(&BrokenHarness(Flaw::AppendsOnMerge))
        .await
        .assert_passed();
}
