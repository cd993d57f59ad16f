//! The manifest: what a complete staged load holds.

use arrow_schema::Schema;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// File name of a load's manifest, written after every other file of the load.
pub const MANIFEST_FILE: &str = "manifest.json";

/// File name of a load's quarantined records (present only when there are any).
pub const REJECTS_FILE: &str = "rejects.parquet";

/// One staged Parquet part file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Path relative to the stage root, e.g. `stripe/customers/{load_id}/part-00000.parquet`.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// A complete staged load: its files, counts, schema and the state it commits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The load's id.
    pub load_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Stream name.
    pub stream: String,
    /// When the load's writer was opened.
    pub started_at: DateTime<Utc>,
    /// When the manifest was written (the load became complete).
    pub created_at: DateTime<Utc>,
    /// Rows over all part files.
    pub rows: u64,
    /// Quarantined records in the rejects file.
    pub rejects: u64,
    /// Part files, in the order they were written.
    pub files: Vec<StagedFile>,
    /// The rejects file relative to the stage root, when there are rejects.
    pub rejects_file: Option<String>,
    /// The stream state committed with these rows.
    pub state: Option<serde_json::Value>,
    /// The union of the part files' schemas (columns in first-seen order).
    pub schema: Schema,
}

impl Manifest {
    /// Total bytes of the part files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
