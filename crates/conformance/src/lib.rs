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
//! A reverse-sync destination describes itself with a
//! [`sync_target::SyncHarness`] and calls [`sync_target::run_suite`]: its
//! checks drive [`weft_core::run_sync`] from a [`MemorySyncStore`] against
//! the sandbox and read back what the destination holds.
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
mod memory_sync;
pub mod openapi;
pub mod read;
mod report;
pub mod source;
pub mod sync_target;

pub use error::ConformanceError;
pub use memory::{MemoryDestination, Row};
pub use memory_sync::{MemorySyncStore, SyncLogEntry};
pub use report::{Check, CheckResult, Outcome, Report};

/// The directory of the package whose test is running: `CARGO_MANIFEST_DIR`
/// as `cargo test` sets it at run time, so a test binary reused from a
/// checkout at another path finds this checkout's files; this crate's
/// directory at build time otherwise.
pub fn package_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// Writes `value` to a fresh file (one per call, never rewritten) and returns
/// a `{ file = … }` secret ref to it, so tests running in parallel never see
/// a file another test is still writing.
pub fn secret_file(value: &str) -> Result<weft_core::SecretRef, std::io::Error> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("weft-test-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("secret-{n}"));
    std::fs::write(&file, value)?;
    Ok(weft_core::SecretRef::File { file })
}
