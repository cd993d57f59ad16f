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
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use weft_core::Reject;

use crate::StageError;
use crate::error::Target;
use crate::manifest::{MANIFEST_FILE, Manifest, REJECTS_FILE, StagedFile};
use crate::read::rejects_schema;
use crate::stage::{exists, put_new};

/// Uncompressed bytes after which a writer rolls to a new part file (64 MiB).
pub const DEFAULT_PART_BYTES: usize = 64 * 1024 * 1024;

/// Staged files larger than this (8 MiB) are uploaded with multipart upload,
/// in chunks of this size; smaller ones in a single `PUT`.
pub const DEFAULT_MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;

/// The smallest multipart threshold (5 MiB): S3 rejects multipart chunks
/// smaller than this, except the last.
pub const MIN_MULTIPART_CHUNK: usize = 5 * 1024 * 1024;

/// Rows per Parquet row group; bounds what a writer buffers in memory.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Encoded bytes per Parquet row group, as parquet estimates them (the
/// compressed pages so far plus the unflushed pages and dictionaries): the
/// other memory bound, and the one that binds for rows of any width.
///
/// A row group's writer holds several times this (its dictionaries and
/// their hash tables), and a reader of the file holds one row group's
/// compressed column chunks and a decompressor per column. On 10,000-row
/// loads of Stripe customers the writer held about 13 MiB of heap at 16 MiB
/// per row group; 1 MiB groups (a few thousand such rows) cut the process's
/// peak by about 10 MiB for 10% more staged bytes (BENCHMARKS.md, "Session
/// 14: peak RSS").
const ROW_GROUP_BYTES: usize = 1024 * 1024;

/// Multipart parts a file's upload keeps in flight: each is a chunk of the
/// multipart threshold held in memory until it is sent (object_store's
/// default is 8, i.e. 64 MiB at the default 8 MiB threshold).
const UPLOAD_PARTS_IN_FLIGHT: usize = 2;

/// Writes one load of a stream to the stage.
///
/// Batches go to `part-{seq:05}.parquet` files, rolled when a part reaches the
/// stage's part size or when a batch's schema differs from the current part's.
/// Only the current row group is held in memory. Nothing is visible to
/// readers until [`StageWriter::finish`] writes the manifest.
///
/// A file up to the stage's multipart threshold is uploaded in one `PUT`
/// when it is closed; a larger one with multipart upload, in chunks of the
/// threshold, at most two chunks in flight. Loads are immutable: before its first file, and again before
/// the manifest, the writer checks that the load id has no manifest yet
/// ([`StageError::AlreadyExists`] otherwise), and the manifest itself is
/// written create-only (`PutMode::Create`; a plain put on stores without
/// conditional puts).
pub struct StageWriter {
    store: Arc<dyn ObjectStore>,
    root: Path,
    target: Target,
    pipeline: String,
    stream: String,
    load_id: String,
    part_bytes: usize,
    multipart_bytes: usize,
    /// Whether the load id was checked to be unused.
    checked: bool,
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
        target: Target,
        [pipeline, stream, load_id]: [String; 3],
        [part_bytes, multipart_bytes]: [usize; 2],
    ) -> Self {
        StageWriter {
            store,
            root,
            target,
            pipeline,
            stream,
            load_id,
            part_bytes,
            multipart_bytes,
            checked: false,
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
            self.ensure_new().await?;
            self.open_part(batch_schema)?;
        }
        if let Some(part) = self.current.as_mut() {
            part.writer
                .write(&batch)
                .await
                .map_err(|source| upload_err(&self.target, &self.root, &part.rel, source))?;
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
            self.ensure_new().await?;
            let path = self.object(&rel);
            let writer =
                AsyncArrowWriter::try_new(self.buf_writer(path), rejects_schema(), Some(props()))
                    .map_err(|source| StageError::Parquet {
                    path: rel.clone(),
                    source,
                })?;
            self.rejects = Some(writer);
        }
        if let Some(w) = self.rejects.as_mut() {
            w.write(&batch)
                .await
                .map_err(|source| upload_err(&self.target, &self.root, &rel, source))?;
        }
        self.reject_count += rejects.len() as u64;
        Ok(())
    }

    /// Closes the part files and the rejects file, then writes the manifest
    /// (last) with `state`, making the load complete.
    ///
    /// Fails with [`StageError::AlreadyExists`], leaving the existing
    /// manifest unchanged, when the load id already has one.
    pub async fn finish(
        mut self,
        state: Option<serde_json::Value>,
    ) -> Result<Manifest, StageError> {
        self.close_part().await?;
        let rejects_file = match self.rejects.take() {
            Some(w) => {
                let rel = self.rel(REJECTS_FILE);
                w.close()
                    .await
                    .map_err(|source| upload_err(&self.target, &self.root, &rel, source))?;
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
        // Checked again: on stores without conditional puts this is the
        // only guard.
        self.checked = false;
        self.ensure_new().await?;
        if !put_new(self.store.as_ref(), &self.target, &self.object(&rel), bytes).await? {
            return Err(self.already_exists());
        }
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
            self.buf_writer(self.object(&rel)),
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
            .map_err(|source| upload_err(&self.target, &self.root, &part.rel, source))?;
        let bytes = part.writer.bytes_written() as u64;
        self.files.push(StagedFile {
            path: part.rel,
            rows: part.rows,
            bytes,
        });
        Ok(())
    }

    /// Fails with [`StageError::AlreadyExists`] when the load id has a
    /// manifest; checks once until `checked` is reset.
    async fn ensure_new(&mut self) -> Result<(), StageError> {
        if self.checked {
            return Ok(());
        }
        let manifest = self.object(&self.rel(MANIFEST_FILE));
        if exists(self.store.as_ref(), &self.target, &manifest).await? {
            return Err(self.already_exists());
        }
        self.checked = true;
        Ok(())
    }

    fn already_exists(&self) -> StageError {
        StageError::AlreadyExists {
            url: self.target.url.clone(),
            pipeline: self.pipeline.clone(),
            stream: self.stream.clone(),
            load_id: self.load_id.clone(),
        }
    }

    /// An upload of one file: one `PUT` up to the multipart threshold,
    /// multipart upload in chunks of the threshold above it.
    fn buf_writer(&self, path: Path) -> BufWriter {
        BufWriter::with_capacity(Arc::clone(&self.store), path, self.multipart_bytes)
            .with_max_concurrency(UPLOAD_PARTS_IN_FLIGHT)
    }

    /// A file of this load, relative to the stage root.
    fn rel(&self, file: &str) -> String {
        format!("{}/{}/{}/{file}", self.pipeline, self.stream, self.load_id)
    }

    fn object(&self, rel: &str) -> Path {
        object_path(&self.root, rel)
    }
}

/// The store path of `rel` (a file relative to the stage root).
fn object_path(root: &Path, rel: &str) -> Path {
    rel.split('/')
        .fold(root.clone(), |path, part| path.join(part))
}

/// A failed write of a staged Parquet file: an upload failure becomes the
/// store error it is (unreachable, access denied...), anything else stays
/// [`StageError::Parquet`].
fn upload_err(target: &Target, root: &Path, rel: &str, source: ParquetError) -> StageError {
    match store_error(source) {
        Ok(e) => target.store_err("put", &object_path(root, rel), e),
        Err(source) => StageError::Parquet {
            path: rel.to_string(),
            source,
        },
    }
}

/// The object_store error inside a Parquet write error, if it is one.
///
/// The upload's error reaches parquet as an `io::Error` (from the
/// `AsyncWrite` of [`BufWriter`]), wrapped in `ParquetError::External`,
/// possibly twice.
fn store_error(e: ParquetError) -> Result<object_store::Error, ParquetError> {
    let ParquetError::External(inner) = e else {
        return Err(e);
    };
    let inner = match inner.downcast::<ParquetError>() {
        Ok(parquet) => return store_error(*parquet),
        Err(other) => other,
    };
    let inner = match inner.downcast::<std::io::Error>() {
        Ok(io) if io.get_ref().is_some_and(|r| r.is::<object_store::Error>()) => {
            match io.into_inner() {
                Some(inner) => inner,
                None => return Err(ParquetError::General("lost an I/O error".to_string())),
            }
        }
        Ok(io) => return Err(ParquetError::External(io)),
        Err(other) => other,
    };
    match inner.downcast::<object_store::Error>() {
        Ok(store) => Ok(*store),
        Err(other) => Err(ParquetError::External(other)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field};
    use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutMode, PutPayload};

    fn target() -> Target {
        Target {
            url: "test://stage".to_string(),
            endpoint: "local".to_string(),
            bucket: "test".to_string(),
        }
    }

    fn writer(store: &Arc<dyn ObjectStore>, load_id: &str) -> StageWriter {
        StageWriter::new(
            Arc::clone(store),
            Path::from("root"),
            target(),
            ["p", "s", load_id].map(str::to_string),
            [DEFAULT_PART_BYTES, DEFAULT_MULTIPART_THRESHOLD],
        )
    }

    fn batch(ids: &[i64]) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(ids.to_vec()))],
        )
        .unwrap()
    }

    /// Finishes `L1`, then checks a second writer and a second finish of
    /// it fail and leave the first manifest as it was.
    async fn second_load_is_refused(store: Arc<dyn ObjectStore>) {
        let mut w = writer(&store, "L1");
        w.write(batch(&[1, 2])).await.unwrap();
        let first = w.finish(None).await.unwrap();
        let path = Path::from("root/p/s/L1/manifest.json");
        let before = store.get(&path).await.unwrap().bytes().await.unwrap();

        let mut w = writer(&store, "L1");
        let err = w.write(batch(&[3])).await.unwrap_err();
        assert!(matches!(err, StageError::AlreadyExists { .. }), "{err:?}");
        let err = writer(&store, "L1").finish(None).await.unwrap_err();
        assert!(matches!(err, StageError::AlreadyExists { .. }), "{err:?}");
        assert!(err.to_string().contains("`L1`"), "{err}");

        let after = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(before, after);
        let back: Manifest = serde_json::from_slice(&after).unwrap();
        assert_eq!(back, first);
    }

    #[tokio::test]
    async fn memory_and_local_stores_refuse_a_second_load_with_the_same_id() {
        second_load_is_refused(Arc::new(InMemory::new())).await;
        let dir = tempfile::tempdir().unwrap();
        second_load_is_refused(Arc::new(
            LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
        ))
        .await;
    }

    #[tokio::test]
    async fn create_only_puts_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let stores: [Arc<dyn ObjectStore>; 2] = [
            Arc::new(InMemory::new()),
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
        ];
        for store in stores {
            let path = Path::from("a/manifest.json");
            assert!(
                put_new(store.as_ref(), &target(), &path, b"one".to_vec())
                    .await
                    .unwrap()
            );
            assert!(
                !put_new(store.as_ref(), &target(), &path, b"two".to_vec())
                    .await
                    .unwrap()
            );
            let got = store.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(got.as_ref(), b"one");
        }
    }

    /// With conditional puts disabled (`NotImplemented`), the manifest gets
    /// a plain put and the check before it is what refuses a second load:
    /// against a real SeaweedFS.
    #[tokio::test]
    async fn without_conditional_puts_the_manifest_falls_back_to_a_checked_put() {
        let s3 = tokio::task::spawn_blocking(weft_testsvc::SeaweedS3::start)
            .await
            .unwrap()
            .expect("start SeaweedFS");
        let store = AmazonS3Builder::new()
            .with_endpoint(s3.endpoint())
            .with_bucket_name(s3.bucket())
            .with_region(s3.region())
            .with_access_key_id(s3.access_key_id())
            .with_secret_access_key(s3.secret_access_key())
            .with_allow_http(true)
            .with_conditional_put(S3ConditionalPut::Disabled)
            .build()
            .unwrap();
        let path = Path::from("probe");
        let raw = store
            .put_opts(&path, PutPayload::from_static(b"x"), PutMode::Create.into())
            .await;
        assert!(
            matches!(raw, Err(object_store::Error::NotImplemented { .. })),
            "{raw:?}"
        );
        // The fallback overwrites: only the check before it protects.
        assert!(
            put_new(&store, &target(), &path, b"one".to_vec())
                .await
                .unwrap()
        );
        assert!(
            put_new(&store, &target(), &path, b"two".to_vec())
                .await
                .unwrap()
        );
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.as_ref(), b"two");

        second_load_is_refused(Arc::new(store)).await;
    }

    #[test]
    fn upload_failures_inside_parquet_errors_are_found() {
        let store = || object_store::Error::NotFound {
            path: "p/s/L1/part-00000.parquet".to_string(),
            source: "gone".into(),
        };
        let io = || std::io::Error::other(store());
        let once = ParquetError::External(Box::new(io()));
        let twice = ParquetError::External(Box::new(ParquetError::External(Box::new(io()))));
        for e in [once, twice] {
            assert!(matches!(
                store_error(e),
                Ok(object_store::Error::NotFound { .. })
            ));
        }
        let plain_io = ParquetError::External(Box::new(std::io::Error::other("disk")));
        assert!(matches!(
            store_error(plain_io),
            Err(ParquetError::External(_))
        ));
        assert!(matches!(
            store_error(ParquetError::General("x".to_string())),
            Err(ParquetError::General(_))
        ));

        let target = Target {
            url: "s3://b/p".to_string(),
            endpoint: "http://127.0.0.1:9".to_string(),
            bucket: "b".to_string(),
        };
        let err = upload_err(
            &target,
            &Path::from("root"),
            "p/s/L1/part-00000.parquet",
            ParquetError::External(Box::new(io())),
        );
        assert!(
            matches!(&err, StageError::Store { op: "put", path, .. } if path == "root/p/s/L1/part-00000.parquet"),
            "{err:?}"
        );
    }
}
