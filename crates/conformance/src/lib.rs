//! weft-conformance: the acceptance suite every connector and warehouse runs.
//!
//! A source connector describes itself with a [`source::SourceHarness`] (how
//! to build it against the sandbox, which records the sandbox holds, its
//! capabilities) and calls [`source::run_suite`]; a destination does the same
//! with a [`destination::DestinationHarness`] and [`destination::run_suite`].
//! Each suite runs every check and returns a [`Report`];
//! [`Report::assert_passed`] panics naming the checks that failed.
//!
//! Source checks drive [`weft_core::Source::read`] directly against the
//! `weft-sandbox` simulators (faults and rate limits set through its
//! control handle), so a connector's suite needs no warehouse. Destination
//! checks write Arrow batches through [`weft_core::LoadSink`] and read the
//! committed rows back through the harness. [`MemoryDestination`] is a
//! reference destination that passes the destination suite.
//!
//! Connectors' own tests share two helpers from here: [`read::read_stream`]
//! (read one stream, every event collected) and [`openapi`] (check a catalog
//! against the vendor's OpenAPI description).
//!
//! ```no_run
//! # async fn demo(harness: &impl weft_conformance::source::SourceHarness) {
//! weft_conformance::source::run_suite(harness).await.assert_passed();
//! # }
//! ```

pub mod destination;
mod error;
mod memory;
pub mod openapi;
pub mod read;
mod report;
pub mod source;

pub use error::ConformanceError;
pub use memory::{MemoryDestination, Row};
pub use report::{Check, CheckResult, Outcome, Report};

/// The directory of the package whose test is running: `CARGO_MANIFEST_DIR`
/// as `cargo test` sets it at run time, so a test binary reused from a
/// checkout at another path finds this checkout's files; this crate's
/// directory at build time otherwise.
pub fn package_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
