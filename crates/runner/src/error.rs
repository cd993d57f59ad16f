//! The one error type of the runner.

use std::path::PathBuf;

/// What failed in the runner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The config file could not be read or is invalid.
    #[error("config {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The configured warehouse was left out of this build of weft.
    #[error(
        "[warehouse] kind = \"{kind}\": this weft was built without it (weft-runner's cargo feature `{kind}`)"
    )]
    WarehouseNotBuilt {
        /// `duckdb` or `postgres`.
        kind: &'static str,
    },
    /// No pipeline has this name.
    #[error("no pipeline named `{name}` (configured: {available})")]
    UnknownPipeline {
        /// The name asked for.
        name: String,
        /// The configured names.
        available: String,
    },
    /// No sync has this name.
    #[error("no sync named `{name}` (configured: {available})")]
    UnknownSync {
        /// The name asked for.
        name: String,
        /// The configured names.
        available: String,
    },
    /// No connector has this name.
    #[error("no connector named `{name}` (available: {available})")]
    UnknownConnector {
        /// The name asked for.
        name: String,
        /// Connector names weft knows.
        available: String,
    },
    /// A connector rejected its config or could not be built.
    #[error("pipeline `{pipeline}`: connector `{connector}`: {source}")]
    Connector {
        /// Pipeline name.
        pipeline: String,
        /// Connector name.
        connector: String,
        /// The connector's error.
        #[source]
        source: weft_core::BoxError,
    },
    /// The engine failed outside a stream (unknown stream, state store).
    #[error(transparent)]
    Core(#[from] weft_core::CoreError),
    /// The stage could not be opened or read.
    #[error(transparent)]
    Stage(Box<weft_stage::StageError>),
    /// The warehouse could not be opened or queried.
    #[error(transparent)]
    Warehouse(Box<weft_warehouse::WarehouseError>),
    /// The sandbox could not start.
    #[error(transparent)]
    Sandbox(#[from] weft_sandbox::SandboxError),
    /// `weft new connector` was given a name it cannot use, or would overwrite files.
    #[error("new connector `{name}`: {reason}")]
    NewConnector {
        /// The name asked for.
        name: String,
        /// Why it cannot be written.
        reason: String,
    },
    /// `weft serve` was started with nothing to run.
    #[error(
        "nothing is scheduled: add `schedule = \"*/15 * * * *\"` to a pipeline or a sync, \
         or a [[jobs]] table"
    )]
    NothingScheduled,
    /// The metrics listener could not bind its address.
    #[error("metrics listener on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A local file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl From<weft_stage::StageError> for RunnerError {
    fn from(e: weft_stage::StageError) -> Self {
        RunnerError::Stage(Box::new(e))
    }
}

impl From<weft_warehouse::WarehouseError> for RunnerError {
    fn from(e: weft_warehouse::WarehouseError) -> Self {
        RunnerError::Warehouse(Box::new(e))
    }
}
