//! The one error type of weft-arrow.

/// What failed while converting JSON to Arrow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArrowConvError {
    /// A record does not fit the declared schema and the contract is `freeze`.
    #[error("record {index} of the page violates the frozen schema: {reason}")]
    Frozen {
        /// Position of the record in its page.
        index: usize,
        /// Why it does not fit.
        reason: String,
    },
    /// Arrow itself failed (building arrays or a batch).
    #[error("arrow conversion failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A primary key field is not among the schema's fields.
    #[error("primary key field `{field}` is not in the schema")]
    UnknownPrimaryKey {
        /// The missing field's name.
        field: String,
    },
    /// Decoding the rows that fit produced a different number of rows.
    #[error("decoded {got} rows where {expected} records fit the schema")]
    RowCount {
        /// Records that passed the checks.
        expected: usize,
        /// Rows arrow-json produced for them.
        got: usize,
    },
    /// A record cleaned under `discard_value` could not be written back to JSON.
    #[error("record {index} of the page could not be re-encoded after dropping values: {source}")]
    Reencode {
        /// Position of the record in its page.
        index: usize,
        /// What serde_json reported.
        source: serde_json::Error,
    },
    /// A declared schema is not usable (unknown type name, duplicate field...).
    #[error("invalid schema declaration: {0}")]
    InvalidSchema(String),
    /// CSV text is malformed (an unclosed quote, text after a closing quote).
    #[error("CSV row starting on line {line}: {reason}")]
    Csv {
        /// 1-based line where the bad row starts (or where the error is).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}
