//! Streaming staged Parquet parts into `COPY ... FROM STDIN (FORMAT BINARY)`.
//!
//! Each part is read from the stage's object store with parquet's async
//! reader, one batch at a time (as many rows as fit in about 1 MiB of
//! column data, going by the part's row group sizes, at most 8,192); every
//! batch is aligned to the load's schema, cast where the type mapping says
//! so, scanned for values PostgreSQL cannot hold (rows with a NUL byte in
//! text, a value over 1 GB, or a date, timestamp or time outside
//! PostgreSQL's range become rejects: see `limits`), given its `__weft_seq`
//! numbers, encoded by pgpq and sent down the `COPY` sink in messages of at
//! most 256 KiB (tokio-postgres copies each message into its connection's
//! write buffer, which keeps the capacity of the largest one).
//! Memory is bounded by the row group being read (its compressed column
//! chunks; the stage writes row groups of at most 16 MiB encoded) plus one
//! batch and its encoding; nothing is written to local disk.

use std::sync::Arc;

use arrow::compute::filter_record_batch;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, new_null_array};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use futures::{SinkExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{
    AsyncFileReader, MetadataSuffixFetch, ParquetRecordBatchStream,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use pgpq::ArrowToPostgresBinaryEncoder;
use tokio_postgres::Transaction;
use weft_core::Reject;
use weft_stage::{Stage, StageError, StagedFile};

use super::limits::{Unstorable, unstorable};
use super::types::{Column, encoders};
use super::{SEQ, pg};
use crate::WarehouseError;

/// The most rows per batch read back from a part file.
const READ_BATCH_ROWS: usize = 8192;

/// The fewest rows per batch (a part of very wide rows still reads in
/// batches, not row by row).
const MIN_READ_BATCH_ROWS: usize = 64;

/// Column data (uncompressed, as the part's row groups report it) per batch
/// read back: one batch, its casts and its COPY encoding stay near this.
const READ_BATCH_BYTES: u64 = 1024 * 1024;

/// The largest `CopyData` message sent to the server.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// Reads a staged file by byte ranges straight from the stage's object store.
#[derive(Debug, Clone)]
pub(crate) struct StagedReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

fn store_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StagedReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        self.store
            .get_range(&self.path, range)
            .map_err(store_err)
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(store_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_via_suffix_and_finish(self)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// The footer is fetched as a suffix range: no size request first.
impl MetadataSuffixFetch for &mut StagedReader {
    fn fetch_suffix(
        &mut self,
        suffix: usize,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        let options = GetOptions {
            range: Some(GetRange::Suffix(suffix as u64)),
            ..Default::default()
        };
        async move {
            let response = self
                .store
                .get_opts(&self.path, options)
                .await
                .map_err(store_err)?;
            response.bytes().await.map_err(store_err)
        }
        .boxed()
    }
}

/// Opens a staged Parquet file (`rel`, as the manifest names it) as a
/// stream of batches read from the object store.
pub(crate) async fn open_parquet(
    stage: &Stage,
    rel: &str,
) -> Result<ParquetRecordBatchStream<StagedReader>, StageError> {
    let reader = StagedReader {
        store: stage.object_store(),
        path: stage.object_path(rel),
    };
    let parquet = |source| StageError::Parquet {
        path: rel.to_string(),
        source,
    };
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(parquet)?;
    let rows = batch_rows(builder.metadata());
    builder.with_batch_size(rows).build().map_err(parquet)
}

/// Rows per batch for a file: [`READ_BATCH_BYTES`] over the widest row
/// group's bytes per row, between [`MIN_READ_BATCH_ROWS`] and
/// [`READ_BATCH_ROWS`].
fn batch_rows(metadata: &ParquetMetaData) -> usize {
    let widest = metadata
        .row_groups()
        .iter()
        .filter(|g| g.num_rows() > 0)
        .map(|g| u64::try_from(g.total_byte_size()).unwrap_or(0) / g.num_rows().unsigned_abs())
        .max()
        .unwrap_or(0)
        .max(1);
    usize::try_from(READ_BATCH_BYTES / widest)
        .unwrap_or(READ_BATCH_ROWS)
        .clamp(MIN_READ_BATCH_ROWS, READ_BATCH_ROWS)
}

/// Sends `buf` down the COPY sink in messages of at most
/// [`COPY_CHUNK_BYTES`] (slices of one buffer, not copies).
async fn send_chunked<S>(sink: &mut std::pin::Pin<&mut S>, buf: BytesMut) -> Result<(), S::Error>
where
    S: futures::Sink<bytes::Bytes>,
{
    let mut rest = buf.freeze();
    while !rest.is_empty() {
        let chunk = rest.split_to(rest.len().min(COPY_CHUNK_BYTES));
        sink.feed(chunk).await?;
    }
    sink.flush().await
}

/// Copies a load's parts into the staging table, numbering rows in file order.
pub(crate) struct Stager<'a> {
    columns: &'a [Column],
    /// `COPY pg_temp."_weft_staging" (...) FROM STDIN (FORMAT BINARY)`.
    copy_sql: String,
    /// `pipeline.stream`, for errors.
    shown: &'a str,
    /// The next `__weft_seq`.
    seq: i64,
}

impl<'a> Stager<'a> {
    pub(crate) fn new(columns: &'a [Column], copy_sql: String, shown: &'a str) -> Self {
        Stager {
            columns,
            copy_sql,
            shown,
            seq: 0,
        }
    }

    /// Streams one part into the staging table; returns the rows it
    /// quarantined (their values cannot be stored in PostgreSQL).
    pub(crate) async fn copy_part(
        &mut self,
        tx: &Transaction<'_>,
        stage: &Stage,
        file: &StagedFile,
    ) -> Result<Vec<Reject>, WarehouseError> {
        let mut batches = open_parquet(stage, &file.path).await?;
        let sink = tx
            .copy_in::<_, bytes::Bytes>(self.copy_sql.as_str())
            .await
            .map_err(pg("copy rows", self.shown))?;
        let mut sink = std::pin::pin!(sink);
        let mut rejects = Vec::new();
        let mut encoder: Option<ArrowToPostgresBinaryEncoder> = None;
        let encode_err = |source| WarehouseError::Encode {
            table: self.shown.to_string(),
            source,
        };
        while let Some(batch) = batches
            .try_next()
            .await
            .map_err(|source| StageError::Parquet {
                path: file.path.clone(),
                source,
            })?
        {
            let Some(batch) = self.prepare(&batch, &file.path, &mut rejects)? else {
                continue;
            };
            let mut buf = BytesMut::with_capacity(batch.get_array_memory_size());
            let enc = match encoder.as_mut() {
                Some(enc) => enc,
                None => {
                    let mut enc = self.encoder(batch.schema().as_ref())?;
                    enc.write_header(&mut buf);
                    encoder.insert(enc)
                }
            };
            enc.write_batch(&batch, &mut buf).map_err(encode_err)?;
            drop(batch);
            send_chunked(&mut sink, buf)
                .await
                .map_err(pg("copy rows", self.shown))?;
        }
        let mut buf = BytesMut::new();
        let mut enc = match encoder {
            Some(enc) => enc,
            None => {
                // No row survived: an empty COPY (header and trailer only).
                let mut enc = self.encoder(&self.empty_schema()?)?;
                enc.write_header(&mut buf);
                enc
            }
        };
        enc.write_footer(&mut buf).map_err(encode_err)?;
        sink.send(buf.freeze())
            .await
            .map_err(pg("copy rows", self.shown))?;
        sink.as_mut()
            .finish()
            .await
            .map_err(pg("copy rows", self.shown))?;
        Ok(rejects)
    }

    /// The encoder for batches of `schema` (the columns plus `__weft_seq`).
    fn encoder(&self, schema: &Schema) -> Result<ArrowToPostgresBinaryEncoder, WarehouseError> {
        let (_, builders) = encoders(self.columns, SEQ, self.shown)?;
        ArrowToPostgresBinaryEncoder::try_new_with_encoders(schema, &builders).map_err(|source| {
            WarehouseError::Encode {
                table: self.shown.to_string(),
                source,
            }
        })
    }

    fn empty_schema(&self) -> Result<Schema, WarehouseError> {
        let (schema, _) = encoders(self.columns, SEQ, self.shown)?;
        Ok(schema.as_ref().clone())
    }

    /// Aligns a part's batch to the load's columns, quarantines rows holding
    /// values PostgreSQL cannot store, and appends `__weft_seq`; `None` when
    /// no row is left.
    fn prepare(
        &mut self,
        batch: &RecordBatch,
        path: &str,
        rejects: &mut Vec<Reject>,
    ) -> Result<Option<RecordBatch>, WarehouseError> {
        let arrow = |source: ArrowError| StageError::Arrow {
            path: path.to_string(),
            source,
        };
        let n = batch.num_rows();
        let mut cast = Vec::with_capacity(self.columns.len());
        for c in self.columns {
            let array = batch
                .column_by_name(c.name())
                .cloned()
                .unwrap_or_else(|| new_null_array(c.field.data_type(), n));
            cast.push(c.cast(&array).map_err(arrow)?);
        }
        // Per row, the first column holding a value PostgreSQL cannot store.
        let mut bad: Option<Vec<Option<(usize, Unstorable)>>> = None;
        for (i, (c, array)) in self.columns.iter().zip(&cast).enumerate() {
            if let Some(flags) = unstorable(array.as_ref(), c.check) {
                let rows = bad.get_or_insert_with(|| vec![None; n]);
                for (row, flag) in flags.into_iter().enumerate() {
                    if let (Some(why), None) = (flag, rows[row]) {
                        rows[row] = Some((i, why));
                    }
                }
            }
        }
        let cast = batch_of(self.columns.iter().map(Column::name), cast).map_err(arrow)?;
        let kept = match bad {
            None => cast,
            Some(bad) => {
                let dropped: BooleanArray = bad.iter().map(|b| Some(b.is_some())).collect();
                let keep: BooleanArray = bad.iter().map(|b| Some(b.is_none())).collect();
                let rejected = filter_record_batch(&cast, &dropped).map_err(arrow)?;
                let records = json_records(&rejected);
                for (record, (i, why)) in records.into_iter().zip(bad.iter().flatten()) {
                    let column = &self.columns[*i];
                    rejects.push(Reject {
                        record,
                        reason: why.reason(column.name()),
                        field: Some(column.name().to_string()),
                        row_loaded: false,
                    });
                }
                tracing::warn!(
                    table = %self.shown,
                    rows = rejected.num_rows(),
                    "rows with values PostgreSQL cannot store were quarantined"
                );
                filter_record_batch(&cast, &keep).map_err(arrow)?
            }
        };
        let m = kept.num_rows();
        if m == 0 {
            return Ok(None);
        }
        let mut arrays = Vec::with_capacity(self.columns.len() + 1);
        for (c, array) in self.columns.iter().zip(kept.columns()) {
            arrays.push(c.encode_input(array).map_err(arrow)?);
        }
        let m = m as i64;
        arrays.push(Arc::new(Int64Array::from_iter_values(
            self.seq..self.seq + m,
        )));
        self.seq += m;
        let names = self.columns.iter().map(Column::name).chain([SEQ]);
        Ok(Some(batch_of(names, arrays).map_err(arrow)?))
    }
}

/// A batch of `arrays` under `names`, every field nullable.
fn batch_of<'n>(
    names: impl Iterator<Item = &'n str>,
    arrays: Vec<ArrayRef>,
) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = names
        .zip(&arrays)
        .map(|(name, a)| Field::new(name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

/// Each row of `batch` as a JSON object (arrow-json; column values shown as
/// text when arrow-json cannot write a type).
fn json_records(batch: &RecordBatch) -> Vec<String> {
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    let written = writer.write(batch).and_then(|()| writer.finish());
    if written.is_ok() {
        let text = String::from_utf8_lossy(&writer.into_inner()).into_owned();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() == batch.num_rows() {
            return lines;
        }
    }
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|a| {
            arrow::util::display::ArrayFormatter::try_new(
                a.as_ref(),
                &arrow::util::display::FormatOptions::default(),
            )
            .ok()
        })
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            let mut obj = serde_json::Map::new();
            for ((field, array), f) in batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .zip(&formatters)
            {
                let value = if array.is_null(row) {
                    serde_json::Value::Null
                } else {
                    match (array.data_type(), f) {
                        (DataType::Utf8, _) => serde_json::Value::String(
                            array.as_string::<i32>().value(row).to_string(),
                        ),
                        (_, Some(f)) => serde_json::Value::String(f.value(row).to_string()),
                        (_, None) => serde_json::Value::Null,
                    }
                };
                obj.insert(field.name().clone(), value);
            }
            serde_json::Value::Object(obj).to_string()
        })
        .collect()
}
