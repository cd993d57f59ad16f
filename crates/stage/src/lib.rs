//! weft-stage: Parquet staging of loads in object storage.
//!
//! Batches written for one load of a stream become immutable Parquet part
//! files (ZSTD) under
//! `{stage}/{pipeline}/{stream}/{load_id}/part-{seq:05}.parquet`, quarantined
//! records go to `rejects.parquet` beside them, and `manifest.json` is written
//! last: a load directory without a manifest is incomplete and ignored.
//!
//! A [`Stage`] is built from a URL ([`Stage::from_url`]): a local path,
//! `file://`, `memory://` (tests) or `s3://bucket/prefix` (settings from the
//! environment, or explicit ones with [`Stage::s3`] and [`S3Options`]);
//! [`Stage::check`] probes that it is reachable and writable. Loads are
//! immutable: a load id's manifest is written once. A warehouse reads a
//! load back through its [`Manifest`], from local files ([`Stage::fetch_to_local`]
//! downloads the parts of a remote stage first).

mod error;
mod manifest;
mod read;
mod s3;
mod stage;
mod writer;

pub use error::StageError;
pub use manifest::{MANIFEST_FILE, Manifest, REJECTS_FILE, StagedFile};
pub use read::{LocalLoad, read_local_part, read_local_rejects, rejects_schema};
pub use s3::S3Options;
pub use secrecy::SecretString;
pub use stage::{CHECK_DIR, Stage};
pub use writer::{
    DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_BYTES, MIN_MULTIPART_CHUNK, StageWriter,
};
