//! Quality results: one row per check of a stream in a run (volume, NULLs,
//! duplicates, freshness), kept in `_weft._weft_quality` by every warehouse
//! (each backend's `quality` module writes and reads it with its own types).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::WarehouseError;

/// What a quality row checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QualityKind {
    /// The rows a run loaded for the stream against its history.
    Volume,
    /// `expect_not_null`: rows holding NULL in a column.
    NotNull,
    /// `expect_unique`: non-NULL values of a column occurring more than once.
    Unique,
    /// The age of the stream's newest committed cursor against its SLA.
    Freshness,
    /// The source's own count against the rows loaded.
    Completeness,
}

impl QualityKind {
    /// Every kind, in a fixed order.
    pub const ALL: [QualityKind; 5] = [
        QualityKind::Volume,
        QualityKind::NotNull,
        QualityKind::Unique,
        QualityKind::Freshness,
        QualityKind::Completeness,
    ];

    /// `volume`, `not_null`, `unique`, `freshness` or `completeness`, as stored
    /// in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityKind::Volume => "volume",
            QualityKind::NotNull => "not_null",
            QualityKind::Unique => "unique",
            QualityKind::Freshness => "freshness",
            QualityKind::Completeness => "completeness",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for QualityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityStatus {
    /// Within what is expected (or not judged yet: see the row's message).
    Ok,
    /// Flagged; the stream's action is `warn`, so the run goes on.
    Warn,
    /// Flagged, and the stream failed for it (action `fail`).
    Fail,
}

impl QualityStatus {
    /// `ok`, `warn` or `fail`, as stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityStatus::Ok => "ok",
            QualityStatus::Warn => "warn",
            QualityStatus::Fail => "fail",
        }
    }

    /// The status stored as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        [QualityStatus::Ok, QualityStatus::Warn, QualityStatus::Fail]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for QualityStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `_weft._weft_quality`: a check of one stream in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityRow {
    /// The pipeline run that checked it (`_weft._weft_runs.run_id`).
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Stream name.
    pub stream: String,
    /// The load checked, where the check applies to one: the newest load
    /// the run committed for the stream (`None` when it committed none).
    pub load_id: Option<String>,
    /// What was checked.
    pub kind: QualityKind,
    /// The column checked (`not_null`, `unique`).
    pub column: Option<String>,
    /// What was measured: rows loaded, NULLs, duplicated values, age in
    /// seconds (`None` when it could not be measured).
    pub observed: Option<f64>,
    /// What was expected: the median rows of the stream's history, 0 NULLs
    /// or duplicates, the SLA in seconds.
    pub expected: Option<f64>,
    /// The bounds the observed value was judged against, as text
    /// (`<= 10 or >= 1000`, `0`, `<= 7200`).
    pub threshold: Option<String>,
    /// How it came out.
    pub status: QualityStatus,
    /// What it means, for people (the report's `quality` line when flagged).
    pub message: String,
    /// When it was checked.
    pub checked_at: DateTime<Utc>,
}

/// A stored `kind`, or why the row is corrupt.
#[cfg_attr(not(any(feature = "duckdb", feature = "postgres")), allow(dead_code))]
pub(crate) fn parse_kind(text: &str) -> Result<QualityKind, WarehouseError> {
    QualityKind::parse(text).ok_or_else(|| corrupt("kind", text))
}

/// A stored `status`, or why the row is corrupt.
#[cfg_attr(not(any(feature = "duckdb", feature = "postgres")), allow(dead_code))]
pub(crate) fn parse_status(text: &str) -> Result<QualityStatus, WarehouseError> {
    QualityStatus::parse(text).ok_or_else(|| corrupt("status", text))
}

#[cfg_attr(not(any(feature = "duckdb", feature = "postgres")), allow(dead_code))]
fn corrupt(what: &str, text: &str) -> WarehouseError {
    WarehouseError::Corrupt {
        what: "_weft._weft_quality row".to_string(),
        reason: format!("unknown {what} `{text}`"),
    }
}
