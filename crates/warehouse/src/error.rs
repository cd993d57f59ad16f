//! The one error type of weft-warehouse.

use arrow_schema::DataType;

/// What failed while loading into or reading from a warehouse, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WarehouseError {
    /// Another runner holds the lease of a pipeline, sync or job.
    #[error(
        "{what} is running on {holder}; waited {waited_secs} s \
         (raise [warehouse] lock_wait_secs to wait longer)"
    )]
    Running {
        /// What is leased, e.g. "pipeline `stripe`".
        what: String,
        /// Who holds it: `host H (pid P) since T, run R`.
        holder: String,
        /// How long this runner waited.
        waited_secs: u64,
    },
    /// Reading the staged load failed.
    #[error("staged load: {0}")]
    Stage(#[from] weft_stage::StageError),
    /// A DuckDB statement failed.
    #[cfg(feature = "duckdb")]
    #[error("duckdb: {step} ({target}): {source}")]
    DuckDb {
        /// The step that failed (`create table`, `merge`...).
        step: &'static str,
        /// The table or load it was working on.
        target: String,
        /// What DuckDB said.
        #[source]
        source: ::duckdb::Error,
    },
    /// The DuckDB database file is held open (locked) by another process.
    #[cfg(feature = "duckdb")]
    #[error(
        "warehouse {} is in use by {} (DuckDB allows one process per file: \
         stop that process, or use a PostgreSQL warehouse to share it between runners)",
        path.display(),
        holder(*pid)
    )]
    InUse {
        /// The database file.
        path: std::path::PathBuf,
        /// The process holding it, as DuckDB reported it (`None` if it did not say).
        pid: Option<u32>,
    },
    /// A PostgreSQL statement (or the connection) failed.
    #[cfg(feature = "postgres")]
    #[error("postgres: {step} ({target}): {}", crate::postgres::describe(source))]
    Postgres {
        /// The step that failed (`connect`, `copy rows`, `merge: insert`...).
        step: &'static str,
        /// The table, load or server (its URL without password) it was working on.
        target: String,
        /// What tokio-postgres (or the server) said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A PostgreSQL connection URL (or its TLS set-up) that cannot be used.
    #[cfg(feature = "postgres")]
    #[error("postgres url `{url}`: {reason}")]
    PostgresUrl {
        /// The URL with any password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoding staged rows into PostgreSQL's binary COPY format failed.
    #[cfg(feature = "postgres")]
    #[error("{table}: encoding rows for COPY: {source}")]
    Encode {
        /// Target table.
        table: String,
        /// What pgpq said (it names the column).
        #[source]
        source: pgpq::error::ErrorKind,
    },
    /// PostgreSQL rendered a result as JSON that weft could not read.
    #[cfg(feature = "postgres")]
    #[error("postgres: reading the result of {context} as JSON: {source}")]
    ResultJson {
        /// The query or sync the result belongs to.
        context: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A staged column has an Arrow type the warehouse cannot store.
    #[error("{table}: column `{column}` has unsupported type {data_type}")]
    UnsupportedType {
        /// Target table.
        table: String,
        /// Column name.
        column: String,
        /// Its Arrow type.
        data_type: DataType,
    },
    /// A `history` load of a stream without a primary key (versions are per key).
    #[error(
        "{table}: write_disposition = \"history\" keeps versions per primary key, and the stream has none (use append)"
    )]
    HistoryWithoutKey {
        /// Target table.
        table: String,
    },
    /// A primary key or cursor column named by the stream is not in the staged schema.
    #[error("{table}: {role} column `{column}` is not in the staged schema")]
    MissingColumn {
        /// Target table.
        table: String,
        /// `primary key` or `cursor`.
        role: &'static str,
        /// Column name.
        column: String,
    },
    /// Saved state is not valid JSON.
    #[error("state of {pipeline}/{stream} is not valid JSON: {source}")]
    InvalidState {
        /// Pipeline name.
        pipeline: String,
        /// Stream name.
        stream: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A row of one of weft's own `_weft` tables does not read back.
    #[error("{what}: {reason}")]
    Corrupt {
        /// Which table's row.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A temporary directory for a remote stage's files could not be created.
    #[error("temporary directory for load {load_id}: {source}")]
    TempDir {
        /// The load being fetched.
        load_id: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A name (sync, table, model) that cannot be used as given.
    #[error("invalid {what} name `{name}`: {reason}")]
    InvalidName {
        /// What the name is for (`sync`, `table`, `model`).
        what: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A sync's model has the same primary key value on more than one row.
    #[error("sync model {model}: primary key `{column}` is not unique (e.g. `{key}`)")]
    DuplicateKey {
        /// The model (table or view).
        model: String,
        /// Its primary key column.
        column: String,
        /// One duplicated value.
        key: String,
    },
    /// A SQL model file or directory could not be read.
    #[error("SQL model {path}: {reason}")]
    ModelFile {
        /// The file or directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The blocking warehouse task panicked or was cancelled.
    #[error("warehouse task for {target}: {source}")]
    Task {
        /// What the task was doing.
        target: String,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The warehouse connection lock was poisoned by a panic in another task.
    #[error("{warehouse}: connection lock poisoned by an earlier panic")]
    Poisoned {
        /// Warehouse name.
        warehouse: &'static str,
    },
}

/// `pid N`, or `another process` when the holder is unknown.
#[cfg(feature = "duckdb")]
fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process".to_string(),
    }
}
