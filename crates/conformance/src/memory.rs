//! An in-memory destination: the reference the destination suite is
//! written against, and a warehouse-free destination for tests.
//!
//! Rows are kept as JSON objects per (pipeline, stream); a commit applies
//! the load's rows by its disposition and saves the checkpoint's state under
//! one lock, so rows and state change together or not at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema};
use async_trait::async_trait;
use serde_json::Value;
use weft_core::{
    Checkpoint, CoreError, Destination, LoadReceipt, LoadSink, LoadTarget, Reject, StreamState,
    WriteDisposition, new_load_id,
};

/// One row: column name -> value (absent columns are null).
pub type Row = BTreeMap<String, Value>;

/// The rows of an Arrow batch as JSON objects (nulls omitted).
pub(crate) fn batch_rows(batch: &RecordBatch) -> Result<Vec<Row>, String> {
    // The JSON writer knows offsets only (no time zone database): name UTC by its offset.
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Timestamp(unit, Some(_)) => {
                let utc = DataType::Timestamp(*unit, Some("+00:00".into()));
                columns.push(arrow::compute::cast(column, &utc).map_err(|e| e.to_string())?);
                fields.push(field.as_ref().clone().with_data_type(utc));
            }
            _ => {
                columns.push(Arc::clone(column));
                fields.push(field.as_ref().clone());
            }
        }
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut writer = arrow::json::ArrayWriter::new(&mut out);
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    if out.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&out).map_err(|e| e.to_string())
}

type TableKey = (String, String);

#[derive(Default)]
struct Store {
    tables: HashMap<TableKey, Vec<Row>>,
    states: HashMap<TableKey, StreamState>,
    /// Committed load ids -> (table, rows applied).
    loads: HashMap<String, (TableKey, u64)>,
}

/// A [`Destination`] holding committed rows in memory.
///
/// Merge upserts by primary key (the greatest cursor wins among a load's
/// duplicates, the later row among equal cursors); append inserts; replace
/// makes the first commit of a sink (a run) replace the table, later
/// commits of the same run append. Committing a known load id is a no-op.
#[derive(Clone, Default)]
pub struct MemoryDestination {
    store: Arc<Mutex<Store>>,
}

impl MemoryDestination {
    /// An empty destination.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The committed rows of `pipeline.stream`, in table order.
    pub fn rows(&self, pipeline: &str, stream: &str) -> Vec<Row> {
        self.lock()
            .tables
            .get(&(pipeline.to_string(), stream.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Re-commits a load by id: a no-op receipt (`already_committed`) for a
    /// committed load, `None` for an id this destination never committed.
    pub fn replay(&self, load_id: &str) -> Option<LoadReceipt> {
        self.lock().loads.get(load_id).map(|(_, rows)| LoadReceipt {
            load_id: load_id.to_string(),
            rows: *rows,
            already_committed: true,
            ..LoadReceipt::default()
        })
    }
}

#[async_trait]
impl Destination for MemoryDestination {
    fn name(&self) -> &str {
        "memory"
    }

    async fn state(&self, pipeline: &str, stream: &str) -> Result<Option<StreamState>, CoreError> {
        Ok(self
            .lock()
            .states
            .get(&(pipeline.to_string(), stream.to_string()))
            .cloned())
    }

    async fn open(&self, target: LoadTarget) -> Result<Box<dyn LoadSink>, CoreError> {
        Ok(Box::new(MemorySink {
            destination: self.clone(),
            target,
            load_id: new_load_id(),
            rows: Vec::new(),
            rejects: 0,
            committed_once: false,
        }))
    }
}

/// One run's writer: rows wait here until the commit.
struct MemorySink {
    destination: MemoryDestination,
    target: LoadTarget,
    load_id: String,
    rows: Vec<Row>,
    rejects: u64,
    committed_once: bool,
}

impl MemorySink {
    fn key(&self, row: &Row) -> Vec<Value> {
        self.target
            .spec
            .primary_key
            .iter()
            .map(|k| row.get(k).cloned().unwrap_or(Value::Null))
            .collect()
    }

    /// The load's rows with one row per key: the greatest cursor, then the last, wins.
    fn deduplicated(&self, rows: Vec<Row>) -> Vec<Row> {
        let cursor = self.target.spec.cursor_field.as_deref();
        let cursor_of = |r: &Row| cursor.and_then(|c| r.get(c)).and_then(Value::as_f64);
        let mut order: Vec<Vec<Value>> = Vec::new();
        let mut winners: HashMap<String, Row> = HashMap::new();
        for row in rows {
            let key = self.key(&row);
            let id = Value::Array(key.clone()).to_string();
            match winners.get(&id) {
                Some(old) if cursor_of(old) > cursor_of(&row) => {}
                Some(_) => {
                    winners.insert(id, row);
                }
                None => {
                    order.push(key);
                    winners.insert(id, row);
                }
            }
        }
        order
            .into_iter()
            .filter_map(|k| winners.remove(&Value::Array(k).to_string()))
            .collect()
    }
}

#[async_trait]
impl LoadSink for MemorySink {
    fn load_id(&self) -> &str {
        &self.load_id
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<(), CoreError> {
        let rows = batch_rows(&batch).map_err(|reason| CoreError::Destination {
            destination: "memory".into(),
            stream: self.target.spec.name.clone(),
            source: reason.into(),
        })?;
        self.rows.extend(rows);
        Ok(())
    }

    async fn reject(&mut self, rejects: Vec<Reject>) -> Result<(), CoreError> {
        self.rejects += rejects.len() as u64;
        Ok(())
    }

    async fn commit(&mut self, checkpoint: Checkpoint) -> Result<LoadReceipt, CoreError> {
        let load_id = std::mem::replace(&mut self.load_id, new_load_id());
        let rows = std::mem::take(&mut self.rows);
        let rejects = std::mem::take(&mut self.rejects);
        let table = (self.target.pipeline.clone(), self.target.spec.name.clone());
        let merge = self.target.disposition == WriteDisposition::Merge
            && !self.target.spec.primary_key.is_empty();
        let rows = if merge { self.deduplicated(rows) } else { rows };
        let applied = rows.len() as u64;
        let replace = self.target.disposition == WriteDisposition::Replace && !self.committed_once;
        let keys: Vec<Vec<Value>> = rows.iter().map(|r| self.key(r)).collect();
        let mut store = self.destination.lock();
        if let Some((_, rows)) = store.loads.get(&load_id) {
            return Ok(LoadReceipt {
                load_id,
                rows: *rows,
                already_committed: true,
                ..LoadReceipt::default()
            });
        }
        let current = store.tables.entry(table.clone()).or_default();
        if replace {
            current.clear();
        }
        if merge {
            for (row, key) in rows.into_iter().zip(keys) {
                match current.iter_mut().find(|r| self.key(r) == key) {
                    Some(existing) => *existing = row,
                    None => current.push(row),
                }
            }
        } else {
            current.extend(rows);
        }
        store.states.insert(table.clone(), checkpoint.state);
        store.loads.insert(load_id.clone(), (table, applied));
        drop(store);
        self.committed_once = true;
        Ok(LoadReceipt {
            load_id,
            rows: applied,
            rejects,
            ..LoadReceipt::default()
        })
    }
}
