//! The crate's error: what failed while loading what a check needs.

use std::path::PathBuf;

/// An error of the conformance helpers (the checks themselves report
/// failures in a [`crate::Report`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformanceError {
    /// A vendor API description could not be read.
    #[error("cannot read the API description {}: {source}", path.display())]
    SpecRead {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A vendor API description is not valid JSON or YAML.
    #[error("the API description {} does not parse: {reason}", path.display())]
    SpecParse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
}
