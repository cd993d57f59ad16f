//! Writing one load: part files, rejects, then the manifest.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_schema::{Schema, SchemaRef};
use chrono::{DateTime, Utc};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use weft_core::Reject;

use crate::StageError;
use crate::manifest::{MANIFEST_FILE, Manifest, REJECTS_FILE, StagedFile};
use crate::read::rejects_schema;
use crate::stage::put_bytes;

/// Uncompressed bytes after which a writer rolls to a new part file (64 MiB).
pub const DEFAULT_PART_BYTES: usize = 64 * 1024 * 1024;

/// Rows per Parquet row group; bounds what a writer buffers in memory.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Encoded bytes per Parquet row group (the other memory bound).
const ROW_GROUP_BYTES: usize = 16 * 1024 * 1024;

/// Writes one load of a stream to the stage.
///
/// Batches go to `part-{seq:05}.parquet` files, rolled when a part reaches the
/// stage's part size or when a batch's schema differs from the current part's.
/// Only the current row group is held in memory. Nothing is visible to
/// readers until [`StageWriter::finish`] writes the manifest.
pub struct StageWriter {
    store: Arc<dyn ObjectStore>,
    root: Path,
    pipeline: String,
    stream: String,
    load_id: String,
    part_bytes: usize,
    started_at: DateTime<Utc>,
    current: Option<Part>,
    files: Vec<StagedFile>,
    schema: Option<Schema>,
    rows: u64,
    rejects: Option<AsyncArrowWriter<BufWriter>>,
    reject_count: u64,
}

impl std::fmt::Debug for StageWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageWriter")
            .field("pipeline", &self.pipeline)
            .field("stream", &self.stream)
            .field("load_id", &self.load_id)
            .field("files", &self.files.len())
            .field("rows", &self.rows)
            .field("rejects", &self.reject_count)
            .finish_non_exhaustive()
    }
}

struct Part {
    writer: AsyncArrowWriter<BufWriter>,
    schema: SchemaRef,
    rel: String,
    rows: u64,
    uncompressed: usize,
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .build()
}

impl StageWriter {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        root: Path,
        [pipeline, stream, load_id]: [String; 3],
        part_bytes: usize,
    ) -> Self {
        StageWriter {
            store,
            root,
            pipeline,
            stream,
            load_id,
            part_bytes,
            started_at: Utc::now(),
            current: None,
            files: Vec::new(),
            schema: None,
            rows: 0,
            rejects: None,
            reject_count: 0,
        }
    }

    /// The id of the load being written.
    pub fn load_id(&self) -> &str {
        &self.load_id
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds a batch to the load (empty batches are skipped).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), StageError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch_schema = batch.schema();
        self.merge_schema(&batch_schema)?;
        let roll = self
            .current
            .as_ref()
            .is_some_and(|p| *p.schema != *batch_schema || p.uncompressed >= self.part_bytes);
        if roll {
            self.close_part().await?;
        }
        if self.current.is_none() {
            self.open_part(batch_schema)?;
        }
        if let Some(part) = self.current.as_mut() {
            part.writer
                .write(&batch)
                .await
                .map_err(|source| StageError::Parquet {
                    path: part.rel.clone(),
                    source,
                })?;
            part.rows += batch.num_rows() as u64;
            part.uncompressed += batch.get_array_memory_size();
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Adds quarantined records to the load's `rejects.parquet`.
    pub async fn reject(&mut self, rejects: Vec<Reject>) -> Result<(), StageError> {
        if rejects.is_empty() {
            return Ok(());
        }
        let rel = self.rel(REJECTS_FILE);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rejects.iter().map(|r| r.record.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rejects.iter().map(|r| r.reason.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                rejects.iter().map(|r| r.field.as_deref()),
            )),
            Arc::new(BooleanArray::from_iter(
                rejects.iter().map(|r| Some(r.row_loaded)),
            )),
        ];
        let batch = RecordBatch::try_new(rejects_schema(), columns).map_err(|source| {
            StageError::Arrow {
                path: rel.clone(),
                source,
            }
        })?;
        if self.rejects.is_none() {
            let path = self.object(&rel);
            let writer = AsyncArrowWriter::try_new(
                BufWriter::new(Arc::clone(&self.store), path),
                rejects_schema(),
                Some(props()),
            )
            .map_err(|source| StageError::Parquet {
                path: rel.clone(),
                source,
            })?;
            self.rejects = Some(writer);
        }
        if let Some(w) = self.rejects.as_mut() {
            w.write(&batch)
                .await
                .map_err(|source| StageError::Parquet { path: rel, source })?;
        }
        self.reject_count += rejects.len() as u64;
        Ok(())
    }

    /// Closes the part files and the rejects file, then writes the manifest
    /// (last) with `state`, making the load complete.
    pub async fn finish(
        mut self,
        state: Option<serde_json::Value>,
    ) -> Result<Manifest, StageError> {
        self.close_part().await?;
        let rejects_file = match self.rejects.take() {
            Some(w) => {
                let rel = self.rel(REJECTS_FILE);
                w.close().await.map_err(|source| StageError::Parquet {
                    path: rel.clone(),
                    source,
                })?;
                Some(rel)
            }
            None => None,
        };
        let manifest = Manifest {
            load_id: self.load_id.clone(),
            pipeline: self.pipeline.clone(),
            stream: self.stream.clone(),
            started_at: self.started_at,
            created_at: Utc::now(),
            rows: self.rows,
            rejects: self.reject_count,
            files: std::mem::take(&mut self.files),
            rejects_file,
            state,
            schema: self.schema.take().unwrap_or_else(Schema::empty),
        };
        let rel = self.rel(MANIFEST_FILE);
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|source| StageError::Manifest {
                path: rel.clone(),
                source,
            })?;
        put_bytes(self.store.as_ref(), &self.object(&rel), bytes).await?;
        tracing::debug!(
            pipeline = %manifest.pipeline,
            stream = %manifest.stream,
            load_id = %manifest.load_id,
            rows = manifest.rows,
            files = manifest.files.len(),
            "load staged"
        );
        Ok(manifest)
    }

    fn merge_schema(&mut self, batch: &Schema) -> Result<(), StageError> {
        let merged = match self.schema.take() {
            None => Ok(batch.clone()),
            Some(current) if current == *batch => Ok(current),
            Some(current) => Schema::try_merge([current, batch.clone()]),
        };
        self.schema = Some(merged.map_err(|source| StageError::SchemaConflict {
            pipeline: self.pipeline.clone(),
            stream: self.stream.clone(),
            source,
        })?);
        Ok(())
    }

    fn open_part(&mut self, schema: SchemaRef) -> Result<(), StageError> {
        let rel = self.rel(&format!("part-{:05}.parquet", self.files.len()));
        let writer = AsyncArrowWriter::try_new(
            BufWriter::new(Arc::clone(&self.store), self.object(&rel)),
            Arc::clone(&schema),
            Some(props()),
        )
        .map_err(|source| StageError::Parquet {
            path: rel.clone(),
            source,
        })?;
        self.current = Some(Part {
            writer,
            schema,
            rel,
            rows: 0,
            uncompressed: 0,
        });
        Ok(())
    }

    async fn close_part(&mut self) -> Result<(), StageError> {
        let Some(mut part) = self.current.take() else {
            return Ok(());
        };
        part.writer
            .finish()
            .await
            .map_err(|source| StageError::Parquet {
                path: part.rel.clone(),
                source,
            })?;
        let bytes = part.writer.bytes_written() as u64;
        self.files.push(StagedFile {
            path: part.rel,
            rows: part.rows,
            bytes,
        });
        Ok(())
    }

    /// A file of this load, relative to the stage root.
    fn rel(&self, file: &str) -> String {
        format!("{}/{}/{}/{file}", self.pipeline, self.stream, self.load_id)
    }

    fn object(&self, rel: &str) -> Path {
        rel.split('/')
            .fold(self.root.clone(), |path, part| path.join(part))
    }
}
