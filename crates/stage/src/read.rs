//! Reading staged files back from local disk.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use weft_core::Reject;

use crate::StageError;

/// Rows per batch when reading a part file back.
const READ_BATCH_ROWS: usize = 8192;

/// A load's files on local disk, ready for a local engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLoad {
    /// Part files, in manifest order.
    pub parts: Vec<PathBuf>,
    /// The rejects file, when the load has rejects.
    pub rejects: Option<PathBuf>,
}

/// The schema of `rejects.parquet`: `record`, `reason`, `field`, `row_loaded`.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("record", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("field", DataType::Utf8, true),
        Field::new("row_loaded", DataType::Boolean, false),
    ]))
}

/// Streams the batches of a local Parquet part file (bounded memory).
pub fn read_local_part(
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, StageError>> + use<>, StageError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| StageError::Io {
        op: "open",
        path: shown.clone(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(READ_BATCH_ROWS).build())
        .map_err(|source| StageError::Parquet {
            path: shown.clone(),
            source,
        })?;
    Ok(reader.map(move |r| {
        r.map_err(|source| StageError::Arrow {
            path: shown.clone(),
            source,
        })
    }))
}

/// Reads every quarantined record of a local `rejects.parquet`.
pub fn read_local_rejects(path: &Path) -> Result<Vec<Reject>, StageError> {
    let shown = path.display().to_string();
    let format = |reason: &str| StageError::RejectsFormat {
        path: shown.clone(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for batch in read_local_part(path)? {
        let batch = batch?;
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| format(&format!("column `{name}` missing or not text")))
        };
        let record = text("record")?;
        let reason = text("reason")?;
        let field = text("field")?;
        let loaded = batch
            .column_by_name("row_loaded")
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            .ok_or_else(|| format("column `row_loaded` missing or not boolean"))?;
        for i in 0..batch.num_rows() {
            out.push(Reject {
                record: record.value(i).to_string(),
                reason: reason.value(i).to_string(),
                field: (!field.is_null(i)).then(|| field.value(i).to_string()),
                row_loaded: loaded.value(i),
            });
        }
    }
    Ok(out)
}
