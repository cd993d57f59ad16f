//! weft-arrow: JSON records -> Arrow [`RecordBatch`]es under a declared schema.
//!
//! Pages of raw JSON records (as returned by a SaaS API) flow in; record
//! batches under the stream's declared schema flow out, together with the
//! records that could not be converted (quarantined as [`Reject`]s with a
//! reason). Unknown fields evolve the schema by default; the
//! [`SchemaContract`] decides otherwise. Nested objects and arrays are kept as
//! JSON text columns tagged with the canonical `arrow.json` extension.
//!
//! Conversion is streaming: one page in, at most one batch out, nothing about
//! the whole stream is buffered.

mod columns;
mod csv;
mod decoder;
mod error;
mod types;

pub use csv::{CsvRows, csv_rows};
pub use decoder::{DecodedPage, JsonDecoder};
pub use error::ArrowConvError;
pub use types::{
    DOC_KEY, FieldType, JSON_EXTENSION, Reject, SchemaContract, field_doc, field_type_of,
    is_json_field,
};

pub use arrow_array::RecordBatch;

/// Engine column: the load that wrote the row (stamped by the pipeline; a
/// source field of this name cannot become a column).
pub const LOAD_ID: &str = "_weft_load_id";
/// Engine column: when the row was extracted, UTC (stamped by the pipeline; a
/// source field of this name cannot become a column).
pub const EXTRACTED_AT: &str = "_weft_extracted_at";
pub use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
