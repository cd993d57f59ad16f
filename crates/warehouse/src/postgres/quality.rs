//! `_weft._weft_quality` in PostgreSQL: the table (created at connect, with
//! the other `_weft` tables), its inserts (one transaction per call) and
//! reads, and the loads a volume check groups into runs.

use chrono::{DateTime, Utc};

use super::{PostgresWarehouse, pg};
use crate::quality::{parse_kind, parse_status};
use crate::{LoadRow, QualityRow, WarehouseError};

/// The table, same columns as DuckDB's.
pub(super) const CREATE: &str = r#"
CREATE TABLE IF NOT EXISTS _weft._weft_quality (
    run_id TEXT NOT NULL, pipeline TEXT NOT NULL, stream TEXT NOT NULL,
    load_id TEXT, kind TEXT NOT NULL, column_name TEXT,
    observed DOUBLE PRECISION, expected DOUBLE PRECISION, threshold TEXT,
    status TEXT NOT NULL, message TEXT NOT NULL, checked_at TIMESTAMPTZ NOT NULL);
"#;

const TABLE: &str = "_weft._weft_quality";

impl PostgresWarehouse {
    /// [`crate::Warehouse::record_quality`].
    pub(super) async fn insert_quality(&self, rows: &[QualityRow]) -> Result<(), WarehouseError> {
        let mut client = self.inner.pool.get().await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("record quality", TABLE))?;
        let stmt = tx
            .prepare(
                "INSERT INTO _weft._weft_quality VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .await
            .map_err(pg("record quality", TABLE))?;
        for r in rows {
            let message = super::sql::storable(&r.message);
            let threshold = r.threshold.as_deref().map(super::sql::storable);
            tx.execute(
                &stmt,
                &[
                    &r.run_id,
                    &r.pipeline,
                    &r.stream,
                    &r.load_id,
                    &r.kind.as_str(),
                    &r.column,
                    &r.observed,
                    &r.expected,
                    &threshold,
                    &r.status.as_str(),
                    &message,
                    &r.checked_at,
                ],
            )
            .await
            .map_err(pg("record quality", TABLE))?;
        }
        // On an error the transaction is dropped (rolled back) with the client.
        tx.commit().await.map_err(pg("record quality", TABLE))?;
        self.inner.pool.put(client);
        Ok(())
    }

    /// [`crate::Warehouse::quality`].
    pub(super) async fn read_quality(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<QualityRow>, WarehouseError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read(async |c| {
                c.query(
                    "SELECT run_id, pipeline, stream, load_id, kind, column_name, observed, \
                     expected, threshold, status, message, checked_at FROM _weft._weft_quality \
                     WHERE pipeline = $1 ORDER BY run_id COLLATE \"C\" DESC, \
                     stream COLLATE \"C\", kind COLLATE \"C\", column_name COLLATE \"C\" LIMIT $2",
                    &[&pipeline, &limit],
                )
                .await
                .map_err(pg("read quality", TABLE))
            })
            .await?;
        rows.iter()
            .map(|r| {
                Ok(QualityRow {
                    run_id: r.get(0),
                    pipeline: r.get(1),
                    stream: r.get(2),
                    load_id: r.get(3),
                    kind: parse_kind(r.get(4))?,
                    column: r.get(5),
                    observed: r.get(6),
                    expected: r.get(7),
                    threshold: r.get(8),
                    status: parse_status(r.get(9))?,
                    message: r.get(10),
                    checked_at: r.get::<_, DateTime<Utc>>(11),
                })
            })
            .collect()
    }

    /// [`crate::Warehouse::loads_since`].
    pub(super) async fn read_loads_since(
        &self,
        pipeline: &str,
        from: &str,
    ) -> Result<Vec<LoadRow>, WarehouseError> {
        // Byte order (`COLLATE "C"`), whatever the database's collation.
        let rows = self
            .read(async |c| {
                c.query(
                    "SELECT load_id, pipeline, stream, \"rows\", \"files\", \"bytes\", rejects, \
                     started_at, committed_at FROM _weft._weft_loads WHERE pipeline = $1 \
                     AND load_id COLLATE \"C\" >= $2 ORDER BY load_id COLLATE \"C\"",
                    &[&pipeline, &from],
                )
                .await
                .map_err(pg("list loads", pipeline))
            })
            .await?;
        let count = |r: &tokio_postgres::Row, i: usize| r.get::<_, i64>(i).max(0) as u64;
        Ok(rows
            .iter()
            .map(|r| LoadRow {
                load_id: r.get(0),
                pipeline: r.get(1),
                stream: r.get(2),
                rows: count(r, 3),
                files: count(r, 4),
                bytes: count(r, 5),
                rejects: count(r, 6),
                started_at: r.get(7),
                committed_at: r.get(8),
            })
            .collect())
    }
}
