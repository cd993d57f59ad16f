//! Destination checks: what every destination must do with loads.
//!
//! Each check gets a fresh destination from [`DestinationHarness::create`],
//! writes small Arrow batches (stamped with `_weft_load_id` and
//! `_weft_extracted_at` as the pipeline stamps them) through
//! [`LoadSink`]s, commits or abandons them, and compares the rows
//! [`DestinationHarness::rows`] reads back (columns `id`, `ts`, `name`,
//! `extra`) and the committed state with what the disposition requires.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use async_trait::async_trait;
use serde_json::{Value, json};
use weft_core::{
    BoxError, Checkpoint, Destination, EXTRACTED_AT, LOAD_ID, LoadReceipt, LoadSink, LoadTarget,
    StreamSpec, StreamState, WriteDisposition,
};

use crate::{Check, MemoryDestination, Outcome, Report, Row};

/// The destination checks, in the order [`run_suite`] runs them.
pub const CHECKS: [Check; 6] = [
    Check::MergeSemantics,
    Check::AppendSemantics,
    Check::ReplaceSemantics,
    Check::SchemaEvolution,
    Check::CrashBeforeCommit,
    Check::BackgroundCommit,
];

/// The pipeline (target schema) the suite loads into.
pub const PIPELINE: &str = "conformance";
/// The stream (target table) the suite loads into.
pub const STREAM: &str = "items";

/// How the suite creates and inspects one destination.
///
/// Contract: `create` returns a new, empty destination each call; `rows`
/// returns the committed rows of a table (empty when it does not exist),
/// every column by name.
#[async_trait]
pub trait DestinationHarness: Send + Sync {
    /// The destination type under test.
    type Destination: Destination + 'static;

    /// The destination's name in the report (`duckdb`).
    fn name(&self) -> &str;

    /// A new, empty destination.
    async fn create(&self) -> Result<Self::Destination, BoxError>;

    /// The committed rows of `pipeline.stream`.
    async fn rows(
        &self,
        destination: &Self::Destination,
        pipeline: &str,
        stream: &str,
    ) -> Result<Vec<Row>, BoxError>;

    /// Commits the load `load_id` of `target` again (a replay from its staged
    /// files); `None` when the destination cannot replay loads.
    async fn replay(
        &self,
        _destination: &Self::Destination,
        _target: &LoadTarget,
        _load_id: &str,
    ) -> Result<Option<LoadReceipt>, BoxError> {
        Ok(None)
    }
}

/// Runs every destination check against `harness` and reports each.
///
/// Never panics; call [`Report::assert_passed`] on the result in a test.
pub async fn run_suite<H: DestinationHarness + ?Sized>(harness: &H) -> Report {
    let mut report = Report::new(harness.name());
    let suite = Suite { harness };
    report.record(Check::MergeSemantics, suite.merge().await);
    report.record(Check::AppendSemantics, suite.append().await);
    report.record(Check::ReplaceSemantics, suite.replace().await);
    report.record(Check::SchemaEvolution, suite.schema_evolution().await);
    report.record(Check::CrashBeforeCommit, suite.crash_before_commit().await);
    report.record(Check::BackgroundCommit, suite.background_commit().await);
    report
}

/// A row the suite writes: `(id, ts, name, extra)`; `extra` only after evolution.
type Item = (&'static str, i64, &'static str, Option<&'static str>);

struct Suite<'a, H: ?Sized> {
    harness: &'a H,
}

fn target(disposition: WriteDisposition) -> LoadTarget {
    let spec = StreamSpec::new(STREAM, Schema::new(columns(false)))
        .with_primary_key(["id"])
        .with_cursor("ts")
        .with_disposition(disposition);
    LoadTarget {
        pipeline: PIPELINE.into(),
        spec,
        disposition,
    }
}

fn columns(extra: bool) -> Vec<Field> {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ];
    if extra {
        fields.push(Field::new("extra", DataType::Utf8, true));
    }
    fields
}

/// A batch of `items` stamped for the sink's current load.
fn batch(items: &[Item], load_id: &str) -> Result<RecordBatch, String> {
    let extra = items.iter().any(|i| i.3.is_some());
    let mut fields = columns(extra);
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(items.iter().map(|i| i.0))),
        Arc::new(Int64Array::from_iter_values(items.iter().map(|i| i.1))),
        Arc::new(StringArray::from_iter_values(items.iter().map(|i| i.2))),
    ];
    if extra {
        arrays.push(Arc::new(StringArray::from_iter(items.iter().map(|i| i.3))));
    }
    fields.push(Field::new(LOAD_ID, DataType::Utf8, false));
    fields.push(Field::new(
        EXTRACTED_AT,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    arrays.push(Arc::new(StringArray::from(vec![load_id; items.len()])));
    let now = chrono::Utc::now().timestamp_micros();
    arrays.push(Arc::new(
        TimestampMicrosecondArray::from(vec![now; items.len()]).with_timezone("UTC"),
    ));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())
}

fn state(ts: i64) -> StreamState {
    StreamState(json!({ "ts": ts }))
}

/// Rows as sorted `[id, ts, name, extra]` tuples (absent columns null).
fn tuples(rows: &[Row]) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            ["id", "ts", "name", "extra"]
                .iter()
                .map(|c| r.get(*c).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    out.sort_by_key(|t| Value::Array(t.clone()).to_string());
    out
}

fn expected(items: &[Item]) -> Vec<Vec<Value>> {
    let rows: Vec<Row> = items
        .iter()
        .map(|(id, ts, name, extra)| {
            let mut r = Row::new();
            r.insert("id".into(), json!(id));
            r.insert("ts".into(), json!(ts));
            r.insert("name".into(), json!(name));
            r.insert("extra".into(), extra.map_or(Value::Null, |e| json!(e)));
            r
        })
        .collect();
    tuples(&rows)
}

fn show(rows: &[Vec<Value>]) -> String {
    rows.iter()
        .map(|r| Value::Array(r.clone()).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl<H: DestinationHarness + ?Sized> Suite<'_, H> {
    async fn create(&self) -> Result<H::Destination, String> {
        self.harness
            .create()
            .await
            .map_err(|e| format!("the harness could not create a destination: {e}"))
    }

    /// Opens a sink on `target`, writes `items` (one batch), commits with `at`
    /// unless `at` is `None` (the sink is then dropped: a crash before commit).
    async fn load(
        &self,
        destination: &H::Destination,
        target: &LoadTarget,
        items: &[Item],
        at: Option<i64>,
    ) -> Result<Option<LoadReceipt>, String> {
        let mut sink: Box<dyn LoadSink> = destination
            .open(target.clone())
            .await
            .map_err(|e| format!("open: {e}"))?;
        let batch = batch(items, sink.load_id())?;
        sink.write(batch).await.map_err(|e| format!("write: {e}"))?;
        let Some(ts) = at else { return Ok(None) };
        let receipt = sink
            .commit(Checkpoint { state: state(ts) })
            .await
            .map_err(|e| format!("commit: {e}"))?;
        Ok(Some(receipt))
    }

    /// Fails unless the table holds exactly `want` and the state is `ts`.
    async fn expect(
        &self,
        destination: &H::Destination,
        want: &[Item],
        ts: Option<i64>,
        when: &str,
    ) -> Result<(), String> {
        let rows = self
            .harness
            .rows(destination, PIPELINE, STREAM)
            .await
            .map_err(|e| format!("the harness could not read the rows {when}: {e}"))?;
        let (got, want) = (tuples(&rows), expected(want));
        if got != want {
            return Err(format!(
                "{when}: the table holds [{}], expected [{}]",
                show(&got),
                show(&want)
            ));
        }
        let saved = destination
            .state(PIPELINE, STREAM)
            .await
            .map_err(|e| format!("state {when}: {e}"))?;
        if saved != ts.map(state) {
            return Err(format!(
                "{when}: the committed state is {:?}, expected {:?}",
                saved.map(|s| s.0),
                ts.map(|t| state(t).0)
            ));
        }
        Ok(())
    }

    /// Loads `a1`, `b1` at cursor 1, then `second` at cursor `at`, into a
    /// fresh destination with `disposition`; expects `want` and the cursor.
    async fn two_loads(
        &self,
        disposition: WriteDisposition,
        second: &[Item],
        at: i64,
        want: &[Item],
        when: &str,
    ) -> Result<Outcome, String> {
        let d = self.create().await?;
        let t = target(disposition);
        let first = [("a", 1, "a1", None), ("b", 1, "b1", None)];
        self.load(&d, &t, &first, Some(1)).await?;
        self.load(&d, &t, second, Some(at)).await?;
        self.expect(&d, want, Some(at), when).await?;
        Ok(Outcome::Passed)
    }

    async fn merge(&self) -> Result<Outcome, String> {
        let second = [
            ("b", 2, "b2", None),
            ("c", 1, "c-old", None),
            ("c", 3, "c3", None),
            ("d", 5, "d5", None),
            ("d", 4, "d-old", None),
        ];
        let want = [
            ("a", 1, "a1", None),
            ("b", 2, "b2", None),
            ("c", 3, "c3", None),
            ("d", 5, "d5", None),
        ];
        self.two_loads(
            WriteDisposition::Merge,
            &second,
            5,
            &want,
            "after two merge loads",
        )
        .await
    }

    async fn append(&self) -> Result<Outcome, String> {
        let second = [("b", 2, "b2", None), ("c", 2, "c2", None)];
        let want = [
            ("a", 1, "a1", None),
            ("b", 1, "b1", None),
            ("b", 2, "b2", None),
            ("c", 2, "c2", None),
        ];
        self.two_loads(
            WriteDisposition::Append,
            &second,
            2,
            &want,
            "after two append loads",
        )
        .await
    }

    async fn replace(&self) -> Result<Outcome, String> {
        let second = [("b", 2, "b2", None), ("c", 2, "c2", None)];
        self.two_loads(
            WriteDisposition::Replace,
            &second,
            2,
            &second,
            "after two replace runs",
        )
        .await
    }

    async fn schema_evolution(&self) -> Result<Outcome, String> {
        let d = self.create().await?;
        let t = target(WriteDisposition::Merge);
        self.load(
            &d,
            &t,
            &[("a", 1, "a1", None), ("b", 1, "b1", None)],
            Some(1),
        )
        .await?;
        self.load(&d, &t, &[("c", 2, "c2", Some("new"))], Some(2))
            .await?;
        let want = [
            ("a", 1, "a1", None),
            ("b", 1, "b1", None),
            ("c", 2, "c2", Some("new")),
        ];
        self.expect(&d, &want, Some(2), "after a load adding the column `extra`")
            .await?;
        Ok(Outcome::Passed)
    }

    async fn crash_before_commit(&self) -> Result<Outcome, String> {
        let d = self.create().await?;
        let t = target(WriteDisposition::Append);
        let first = [("a", 1, "a1", None), ("b", 1, "b1", None)];
        let receipt = self
            .load(&d, &t, &first, Some(1))
            .await?
            .ok_or("the first load was not committed")?;
        let second = [("c", 2, "c2", None), ("d", 2, "d2", None)];
        self.load(&d, &t, &second, None).await?;
        self.expect(
            &d,
            &first,
            Some(1),
            "after a load abandoned before its commit",
        )
        .await?;
        self.load(&d, &t, &second, Some(2)).await?;
        let all = [first[0], first[1], second[0], second[1]];
        self.expect(&d, &all, Some(2), "after re-running the abandoned load")
            .await?;
        let replayed = self
            .harness
            .replay(&d, &t, &receipt.load_id)
            .await
            .map_err(|e| format!("replaying committed load {}: {e}", receipt.load_id))?;
        let Some(replayed) = replayed else {
            return Ok(Outcome::Passed);
        };
        if !replayed.already_committed {
            return Err(format!(
                "re-committing the known load {} was not a no-op (already_committed = false)",
                receipt.load_id
            ));
        }
        self.expect(&d, &all, Some(2), "after re-committing a known load id")
            .await?;
        Ok(Outcome::Passed)
    }
}

impl<H: DestinationHarness + ?Sized> Suite<'_, H> {
    async fn background_commit(&self) -> Result<Outcome, String> {
        let d = self.create().await?;
        // Append: this check is about ordering and durability, not merge rules.
        let t = target(WriteDisposition::Append);
        let mut sink: Box<dyn LoadSink> =
            d.open(t.clone()).await.map_err(|e| format!("open: {e}"))?;
        let sealed: [(&[Item], i64); 3] = [
            (&[("a", 1, "a1", None), ("b", 1, "b1", None)], 1),
            (&[("b", 2, "b2", None), ("c", 2, "c2", None)], 2),
            (&[("c", 3, "c3", None), ("d", 3, "d3", None)], 3),
        ];
        let mut receipts = Vec::new();
        for (items, ts) in sealed {
            let batch = batch(items, sink.load_id())?;
            sink.write(batch).await.map_err(|e| format!("write: {e}"))?;
            let done = sink
                .commit_background(Checkpoint { state: state(ts) })
                .await
                .map_err(|e| format!("commit_background at {ts}: {e}"))?;
            receipts.extend(done);
        }
        // A fourth load is written, then the run stops: only the sealed three count.
        let abandoned = batch(&[("e", 4, "e4", None)], sink.load_id())?;
        sink.write(abandoned)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let last = sink
            .finish_background()
            .await
            .map_err(|e| format!("finish_background: {e}"))?;
        receipts.extend(last);
        drop(sink);
        let ids: std::collections::BTreeSet<&str> =
            receipts.iter().map(|r| r.load_id.as_str()).collect();
        let rows: u64 = receipts.iter().map(|r| r.rows).sum();
        if receipts.len() != 3 || ids.len() != 3 || rows != 6 {
            return Err(format!(
                "three sealed loads of 2 rows gave {} receipt(s) for {} load id(s) and {rows} row(s)",
                receipts.len(),
                ids.len()
            ));
        }
        let want: Vec<Item> = sealed
            .iter()
            .flat_map(|(items, _)| items.iter().copied())
            .collect();
        self.expect(
            &d,
            &want,
            Some(3),
            "after three loads committed in the background and one abandoned",
        )
        .await?;
        Ok(Outcome::Passed)
    }
}

/// [`MemoryDestination`] under the suite (the reference it is written against).
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryHarness;

#[async_trait]
impl DestinationHarness for MemoryHarness {
    type Destination = MemoryDestination;

    fn name(&self) -> &str {
        "memory"
    }

    async fn create(&self) -> Result<MemoryDestination, BoxError> {
        Ok(MemoryDestination::new())
    }

    async fn rows(
        &self,
        destination: &MemoryDestination,
        pipeline: &str,
        stream: &str,
    ) -> Result<Vec<Row>, BoxError> {
        Ok(destination.rows(pipeline, stream))
    }

    async fn replay(
        &self,
        destination: &MemoryDestination,
        _target: &LoadTarget,
        load_id: &str,
    ) -> Result<Option<LoadReceipt>, BoxError> {
        destination
            .replay(load_id)
            .map(Some)
            .ok_or_else(|| format!("memory destination never committed load {load_id}").into())
    }
}
