//! The error type of this crate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while starting, using or stopping a test service.
///
/// `Debug` prints the same text as `Display`, so a test returning
/// `Result<(), Error>` shows a readable message (and log tail) on failure.
#[derive(thiserror::Error)]
pub enum Error {
    /// A server binary was not found in any of the places searched.
    #[error(
        "{binary} not found (searched: {}); install it with `{install_hint}`",
        display_paths(searched)
    )]
    BinaryNotFound {
        /// Which program was looked for, e.g. `PostgreSQL >= 15 (initdb)`.
        binary: &'static str,
        /// Every path (or search rule) that was tried.
        searched: Vec<PathBuf>,
        /// The command that installs it.
        install_hint: &'static str,
    },

    /// A command ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line, for the reader.
        command: String,
        /// How it exited.
        status: String,
        /// Its standard error (or, if that was empty, standard output).
        stderr: String,
    },

    /// A server process exited while it was starting.
    #[error("{service} exited during start-up ({status}); last lines of its log:\n{log_tail}")]
    ServerExited {
        /// Which server, e.g. `postgres`.
        service: &'static str,
        /// How it exited.
        status: String,
        /// The last lines of the server's log.
        log_tail: String,
    },

    /// A server did not become ready within the start-up timeout.
    #[error("{service} not ready after {waited:?}: {detail}; last lines of its log:\n{log_tail}")]
    NotReady {
        /// Which server, e.g. `weed mini`.
        service: &'static str,
        /// How long we waited.
        waited: Duration,
        /// The last readiness check that did not pass.
        detail: String,
        /// The last lines of the server's log.
        log_tail: String,
    },

    /// An argument was rejected before anything ran.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
