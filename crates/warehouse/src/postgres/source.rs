//! PostgreSQL tables, views and queries read as a source.
//!
//! A query's columns get weft's logical types from their PostgreSQL types
//! (integers, floats, booleans, text, dates, timestamps, JSON; `numeric` and
//! every other type as its text, so no value loses digits), and its rows are
//! read as JSON objects (`row_to_json`) through a portal, a page at a time,
//! in one read-only transaction: memory holds one page, whatever the table's
//! size, and the pipeline decodes the pages under the stream's schema like
//! any API's.

use serde_json::value::RawValue;
use tokio_postgres::types::Type;
use weft_arrow::{Field, FieldType, Schema};
use weft_core::{CancellationToken, EventSender, JsonPage, SourceEvent};

use super::sql::{ident, trim_sql};
use super::{PostgresWarehouse, pg};
use crate::WarehouseError;

/// Rows per page read from the portal.
pub(crate) const PAGE_ROWS: i32 = 5_000;

/// The weft type of a PostgreSQL column type, and whether the column is
/// selected as text (`numeric`, arrays, intervals, ...) or as it is.
fn column_type(ty: &Type) -> (FieldType, &'static str) {
    match *ty {
        Type::BOOL => (FieldType::Boolean, ""),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => (FieldType::Integer, ""),
        Type::FLOAT4 | Type::FLOAT8 => (FieldType::Number, ""),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UUID | Type::CHAR => {
            (FieldType::String, "")
        }
        Type::DATE => (FieldType::Date, ""),
        Type::TIMESTAMPTZ => (FieldType::Timestamp, ""),
        // A timestamp without time zone is read as UTC.
        Type::TIMESTAMP => (FieldType::Timestamp, " AT TIME ZONE 'UTC'"),
        Type::JSON | Type::JSONB => (FieldType::Json, ""),
        _ => (FieldType::String, "::text"),
    }
}

impl PostgresWarehouse {
    /// The schema of `query`'s result and the statement that reads its rows
    /// as JSON objects; an unknown table, a bad query or a repeated column
    /// name fails here, naming the stream.
    pub(crate) async fn source_query(
        &self,
        stream: &str,
        query: &str,
    ) -> Result<(Schema, String), WarehouseError> {
        let body = trim_sql(query).to_string();
        let columns = self
            .read(async |c| {
                let stmt = c
                    .prepare(&format!("SELECT * FROM (\n{body}\n) AS __weft_q LIMIT 0"))
                    .await
                    .map_err(pg("read source schema", stream))?;
                Ok(stmt
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_().clone()))
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut fields = Vec::with_capacity(columns.len());
        let mut exprs = Vec::with_capacity(columns.len());
        for (name, ty) in &columns {
            if fields.iter().any(|f: &Field| f.name() == name) {
                return Err(WarehouseError::InvalidName {
                    what: "source column",
                    name: name.clone(),
                    reason: format!("stream `{stream}`: the query returns it twice"),
                });
            }
            let (field_type, select) = column_type(ty);
            let doc = format!("PostgreSQL {}", ty.name());
            fields.push(field_type.field(name, true, &doc));
            exprs.push(format!(
                "__weft_q.{col}{select} AS {col}",
                col = ident(name)
            ));
        }
        let select = format!(
            "SELECT row_to_json(__weft_r)::text FROM (SELECT {} FROM (\n{body}\n) AS __weft_q) AS __weft_r",
            exprs.join(", ")
        );
        Ok((Schema::new(fields), select))
    }

    /// Runs `select` (from [`Self::source_query`]) in a read-only
    /// transaction and sends its rows as JSON pages of [`PAGE_ROWS`] on `tx`,
    /// until they end, `cancel` fires or the receiver is gone; returns the
    /// rows sent.
    pub(crate) async fn read_source_pages(
        &self,
        stream: &str,
        select: &str,
        tx: &EventSender,
        cancel: &CancellationToken,
    ) -> Result<u64, WarehouseError> {
        self.read(async |c| {
            let txn = c
                .build_transaction()
                .read_only(true)
                .start()
                .await
                .map_err(pg("read source: begin", stream))?;
            let stmt = txn
                .prepare(select)
                .await
                .map_err(pg("read source: prepare", stream))?;
            let portal = txn
                .bind(&stmt, &[])
                .await
                .map_err(pg("read source: bind", stream))?;
            let mut total = 0u64;
            loop {
                let rows = txn
                    .query_portal(&portal, PAGE_ROWS)
                    .await
                    .map_err(pg("read source: fetch", stream))?;
                if rows.is_empty() {
                    break;
                }
                let mut records = Vec::with_capacity(rows.len());
                for row in &rows {
                    let text: String = row.try_get(0).map_err(pg("read source: row", stream))?;
                    let raw = RawValue::from_string(text).map_err(|source| {
                        WarehouseError::ResultJson {
                            context: format!("source stream {stream}"),
                            source,
                        }
                    })?;
                    records.push(raw);
                }
                total += records.len() as u64;
                let page = SourceEvent::Page(JsonPage { records });
                if cancel.is_cancelled() || tx.send(Ok(page)).await.is_err() {
                    break;
                }
            }
            txn.commit()
                .await
                .map_err(pg("read source: commit", stream))?;
            Ok(total)
        })
        .await
    }
}
