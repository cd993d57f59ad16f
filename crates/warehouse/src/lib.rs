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
//! Warehouses sit behind cargo features, both on by default: DuckDB
//! (`duckdb`) is the embedded one, PostgreSQL (`postgres`,
//! `PostgresWarehouse`) the server one.
//!
//! # Writing a new warehouse
//!
//! A warehouse is a backend in its own folder (`duckdb/`, `postgres/`), and
//! nothing outside it names the backend: the runner holds an
//! `Arc<dyn Warehouse>`. A new one implements [`Warehouse`] and
//! [`weft_core::SyncStore`]:
//! - `commit_load` gets the manifest and the [`weft_stage::Stage`] and reads
//!   the staged Parquet the way the engine reads best — DuckDB fetches to local
//!   disk, PostgreSQL streams parts into `COPY`, and the cloud warehouses
//!   (Snowflake, BigQuery, Redshift, the next ones) would `COPY INTO` / run a
//!   load job straight from the bucket — into a staging table, then applies
//!   the same shape: per key the greatest cursor wins (ties to the last staged
//!   row), merge / append / replace with null-safe key comparison, the load
//!   row, rejects and state, all in one transaction; a known load id is a no-op;
//! - state, loads and models are plain SQL on the `_weft` tables; the run
//!   history (`_weft._weft_runs`) and the leases that keep runners sharing
//!   it from running one pipeline twice (`_weft._weft_leases`, [`Lease`])
//!   come free, through [`Warehouse::query`];
//! - quality results (`_weft._weft_quality`, [`QualityRow`]) are written and
//!   read by a small `quality` module of the backend, which also lists the
//!   loads since a run began ([`Warehouse::loads_since`]);
//! - the sync diff runs as SQL inside the warehouse, never in weft's memory.
//!
//! It then runs `weft_conformance::destination::run_suite` (see
//! `tests/postgres_conformance.rs`).

mod destination;
#[cfg(feature = "duckdb")]
mod duckdb;
mod error;
#[cfg(test)]
mod fixtures;
mod leases;
mod models;
#[cfg(feature = "postgres")]
mod postgres;
mod quality;
mod runs;
mod shares;
#[cfg(any(feature = "duckdb", feature = "postgres"))]
mod source;
mod sql;
#[cfg_attr(not(any(feature = "duckdb", feature = "postgres")), allow(dead_code))]
mod synclog;
mod warehouse;

pub use destination::{StagedDestination, replay, replay_stream};
#[cfg(feature = "duckdb")]
pub use duckdb::DuckDbWarehouse;
pub use error::WarehouseError;
pub use leases::{Claim, Lease, LeaseOptions, LeaseRow, leases};
pub use models::{MODELS_SCHEMA, Materialized, Model, ModelRun, load_models_dir};
#[cfg(feature = "postgres")]
pub use postgres::PostgresWarehouse;
pub use quality::{QualityKind, QualityRow, QualityStatus};
pub use runs::{RunKind, RunRecord, RunStatus};
pub use shares::{hold_budgets, release_budgets};
#[cfg(any(feature = "duckdb", feature = "postgres"))]
pub use source::WarehouseSource;
pub use warehouse::{LoadRow, LoadSpec, QueryResult, StateRow, Warehouse};
