//! weft-warehouse: loading staged loads into a warehouse, exactly once.
//!
//! A [`StagedDestination`] is a [`weft_core::Destination`] that stages a
//! stream's batches as Parquet in a [`weft_stage::Stage`] and, at each
//! checkpoint, asks a [`Warehouse`] to commit the load: rows, the load record
//! (`_weft._weft_loads`), rejects (`_weft._weft_rejects`) and the stream's
//! state (`_weft._weft_state`) in ONE transaction. A load id that was already
//! committed is a no-op, so a load can be replayed ([`replay`]) from the stage
//! into any warehouse without calling the source API again.
//!
//! The warehouse also runs SQL [`Model`]s ([`load_models_dir`],
//! [`Warehouse::run_models`]), serves tables and queries as a source
//! ([`WarehouseSource`]) and, for reverse sync, is the
//! [`weft_core::SyncStore`] that diffs a model against its snapshot in SQL.
//!
//! Warehouses sit behind cargo features; DuckDB (`duckdb`, on by default) is
//! the embedded one.

mod destination;
#[cfg(feature = "duckdb")]
mod duckdb;
mod error;
mod models;
#[cfg(feature = "duckdb")]
mod source;
mod warehouse;

pub use destination::{StagedDestination, commit_staged, replay, replay_stream};
#[cfg(feature = "duckdb")]
pub use duckdb::DuckDbWarehouse;
pub use error::WarehouseError;
pub use models::{MODELS_SCHEMA, Materialized, Model, ModelRun, load_models_dir};
#[cfg(feature = "duckdb")]
pub use source::WarehouseSource;
pub use warehouse::{LoadRow, LoadSpec, StateRow, Warehouse};
