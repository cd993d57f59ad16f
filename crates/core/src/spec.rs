//! What a stream is: name, keys, cursor, modes and declared schema.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

pub use weft_arrow::{EXTRACTED_AT, LOAD_ID};
/// Soft-delete column: when the source reported the row deleted (UTC), else null.
pub const DELETED_AT: &str = "_weft_deleted_at";

/// How a stream can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Read everything every run.
    FullRefresh,
    /// Read from the saved cursor onwards.
    Incremental,
}

/// How a load is applied to the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WriteDisposition {
    /// Upsert by primary key; among duplicates the latest cursor wins.
    #[default]
    Merge,
    /// Insert every row.
    Append,
    /// Replace the table's contents with this run's rows.
    Replace,
    /// Keep every version of each record (SCD type 2): a changed record
    /// closes its current row (`_weft_valid_to`, `_weft_is_current`) and
    /// adds a new one; a delete closes it. Needs a primary key.
    History,
}

impl fmt::Display for WriteDisposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteDisposition::Merge => "merge",
            WriteDisposition::Append => "append",
            WriteDisposition::Replace => "replace",
            WriteDisposition::History => "history",
        })
    }
}

/// A stream a source offers: its identity, keys, cursor and declared schema.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// Stream name, also the target table name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Primary key columns (may be empty for append-only streams).
    pub primary_key: Vec<String>,
    /// Column whose value orders records for incremental reads, if any.
    pub cursor_field: Option<String>,
    /// Modes the stream supports.
    pub sync_modes: Vec<SyncMode>,
    /// Default write disposition.
    pub write_disposition: WriteDisposition,
    /// Declared schema; fields carry their docs as metadata.
    pub schema: SchemaRef,
}

impl StreamSpec {
    /// A spec with the given name and schema, merge disposition, full refresh only.
    pub fn new(name: impl Into<String>, schema: Schema) -> Self {
        StreamSpec {
            name: name.into(),
            description: String::new(),
            primary_key: Vec::new(),
            cursor_field: None,
            sync_modes: vec![SyncMode::FullRefresh],
            write_disposition: WriteDisposition::Merge,
            schema: Arc::new(schema),
        }
    }

    /// Sets the primary key.
    pub fn with_primary_key<I, S>(mut self, key: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.primary_key = key.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the cursor field and marks the stream incremental.
    pub fn with_cursor(mut self, field: impl Into<String>) -> Self {
        self.cursor_field = Some(field.into());
        if !self.sync_modes.contains(&SyncMode::Incremental) {
            self.sync_modes.push(SyncMode::Incremental);
        }
        self
    }

    /// Sets the write disposition.
    pub fn with_disposition(mut self, disposition: WriteDisposition) -> Self {
        self.write_disposition = disposition;
        self
    }

    /// Whether the stream can be read incrementally.
    pub fn is_incremental(&self) -> bool {
        self.sync_modes.contains(&SyncMode::Incremental) && self.cursor_field.is_some()
    }
}
