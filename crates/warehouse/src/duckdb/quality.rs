//! `_weft._weft_quality` in DuckDB: the table, its inserts (one
//! transaction per call) and reads, and the loads a volume check groups
//! into runs.

use ::duckdb::params;

use super::{DuckDbWarehouse, db, micros};
use crate::quality::{parse_kind, parse_status};
use crate::{LoadRow, QualityRow, WarehouseError};

/// The table (created with the other `_weft` tables).
pub(super) const CREATE: &str = r#"
CREATE TABLE IF NOT EXISTS _weft._weft_quality (
    run_id VARCHAR NOT NULL, pipeline VARCHAR NOT NULL, stream VARCHAR NOT NULL,
    load_id VARCHAR, kind VARCHAR NOT NULL, column_name VARCHAR,
    observed DOUBLE, expected DOUBLE, threshold VARCHAR,
    status VARCHAR NOT NULL, message VARCHAR NOT NULL, checked_at TIMESTAMPTZ NOT NULL);
"#;

const TABLE: &str = "_weft._weft_quality";

impl DuckDbWarehouse {
    /// Blocking [`crate::Warehouse::record_quality`].
    pub fn record_quality(&self, rows: &[QualityRow]) -> Result<(), WarehouseError> {
        let conn = self.lock()?;
        conn.execute_batch("BEGIN TRANSACTION")
            .map_err(db("record quality", TABLE))?;
        let insert = || -> Result<(), WarehouseError> {
            let mut stmt = conn
                .prepare(
                    "INSERT INTO _weft._weft_quality VALUES \
                     (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ)",
                )
                .map_err(db("record quality", TABLE))?;
            for r in rows {
                stmt.execute(params![
                    r.run_id,
                    r.pipeline,
                    r.stream,
                    r.load_id,
                    r.kind.as_str(),
                    r.column,
                    r.observed,
                    r.expected,
                    r.threshold,
                    r.status.as_str(),
                    r.message,
                    r.checked_at.to_rfc3339(),
                ])
                .map_err(db("record quality", TABLE))?;
            }
            Ok(())
        };
        match insert() {
            Ok(()) => conn
                .execute_batch("COMMIT")
                .map_err(db("record quality", TABLE)),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Blocking [`crate::Warehouse::quality`].
    pub fn quality(&self, pipeline: &str, limit: usize) -> Result<Vec<QualityRow>, WarehouseError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare(
                "SELECT run_id, pipeline, stream, load_id, kind, column_name, observed, expected, \
                 threshold, status, message, epoch_us(checked_at::TIMESTAMP) \
                 FROM _weft._weft_quality WHERE pipeline = ? \
                 ORDER BY run_id DESC, stream, kind, column_name LIMIT ?",
            )
            .map_err(db("read quality", TABLE))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let raw = stmt
            .query_map(params![pipeline, limit], |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ),
                    (r.get::<_, String>(4)?, r.get::<_, Option<String>>(5)?),
                    (r.get::<_, Option<f64>>(6)?, r.get::<_, Option<f64>>(7)?),
                    (
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, String>(9)?,
                        r.get::<_, String>(10)?,
                        r.get::<_, i64>(11)?,
                    ),
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db("read quality", TABLE))?;
        raw.into_iter()
            .map(
                |(
                    (run_id, pipeline, stream, load_id),
                    (kind, column),
                    (observed, expected),
                    (threshold, status, message, at),
                )| {
                    Ok(QualityRow {
                        kind: parse_kind(&kind)?,
                        status: parse_status(&status)?,
                        run_id,
                        pipeline,
                        stream,
                        load_id,
                        column,
                        observed,
                        expected,
                        threshold,
                        message,
                        checked_at: micros(at),
                    })
                },
            )
            .collect()
    }

    /// Blocking [`crate::Warehouse::loads_since`].
    pub fn loads_since(&self, pipeline: &str, from: &str) -> Result<Vec<LoadRow>, WarehouseError> {
        let conn = self.lock()?;
        // VARCHAR compares byte-wise in DuckDB: load ids sort by time.
        let mut stmt = conn
            .prepare(
                "SELECT load_id, pipeline, stream, \"rows\", \"files\", \"bytes\", rejects, \
                 epoch_us(started_at::TIMESTAMP), epoch_us(committed_at::TIMESTAMP) \
                 FROM _weft._weft_loads WHERE pipeline = ? AND load_id >= ? ORDER BY load_id",
            )
            .map_err(db("list loads", pipeline))?;
        let count = |v: i64| v.max(0) as u64;
        stmt.query_map(params![pipeline, from], |r| {
            Ok(LoadRow {
                load_id: r.get(0)?,
                pipeline: r.get(1)?,
                stream: r.get(2)?,
                rows: count(r.get(3)?),
                files: count(r.get(4)?),
                bytes: count(r.get(5)?),
                rejects: count(r.get(6)?),
                started_at: micros(r.get(7)?),
                committed_at: micros(r.get(8)?),
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db("list loads", pipeline))
    }
}
