//! The one error type of weft-stage.

/// What failed while staging or reading a load, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The stage URL could not be parsed or names an unsupported store.
    #[error("stage url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any credentials redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Building the object store for a URL failed.
    #[error("stage url `{url}`: {source}")]
    Configure {
        /// The URL, with any credentials redacted.
        url: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// A local file or directory operation failed.
    #[error("stage {op} `{path}`: {source}")]
    Io {
        /// The operation (`create dir`, `write`...).
        op: &'static str,
        /// The local path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An object store operation failed.
    #[error("stage {op} `{path}`: {source}")]
    Store {
        /// The operation (`put`, `get`, `list`, `delete`).
        op: &'static str,
        /// The object's path relative to the store.
        path: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// Writing or reading a Parquet file failed.
    #[error("stage parquet `{path}`: {source}")]
    Parquet {
        /// The file's path.
        path: String,
        /// What parquet said.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building or reading an Arrow batch failed.
    #[error("stage arrow data in `{path}`: {source}")]
    Arrow {
        /// The file's path.
        path: String,
        /// What arrow said.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A batch's schema conflicts with earlier batches of the same load
    /// (same column, different type).
    #[error("{pipeline}/{stream}: batch schema conflicts with the load's schema: {source}")]
    SchemaConflict {
        /// Pipeline name.
        pipeline: String,
        /// Stream name.
        stream: String,
        /// What arrow said about the merge.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A manifest could not be encoded or decoded.
    #[error("manifest `{path}`: {source}")]
    Manifest {
        /// The manifest's path.
        path: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A rejects file does not have the expected columns.
    #[error("rejects file `{path}`: {reason}")]
    RejectsFormat {
        /// The file's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}
