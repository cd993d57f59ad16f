//! The warehouse as a source: a table, view or query read as a stream.
//!
//! DuckDB streams are read in full on their own connection (a clone of the
//! warehouse's, so loads into the same database can commit while it reads)
//! and emitted as Arrow [`SourceEvent::Batch`]es; PostgreSQL streams are read
//! through a portal in one read-only transaction and emitted as JSON pages
//! the pipeline decodes under the stream's schema (columns typed from their
//! PostgreSQL types). Either way a stream ends with one checkpoint,
//! `{"rows": N}`.

#[cfg(feature = "postgres")]
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use weft_core::{
    BoxError, EventStream, ReadRequest, Source, SourceEvent, StreamSpec, StreamState,
    WriteDisposition, spawn_events,
};

#[cfg(feature = "duckdb")]
use crate::DuckDbWarehouse;
#[cfg(feature = "postgres")]
use crate::PostgresWarehouse;
use crate::WarehouseError;
use crate::sql::relation;

/// One stream: its spec and the query that reads it.
#[derive(Debug, Clone)]
struct WarehouseStream {
    spec: StreamSpec,
    query: String,
}

/// The warehouse a source reads.
#[derive(Debug, Clone)]
enum Backend {
    #[cfg(feature = "duckdb")]
    DuckDb(DuckDbWarehouse),
    #[cfg(feature = "postgres")]
    Postgres(Arc<PostgresWarehouse>),
}

/// Tables, views or queries of a warehouse (DuckDB or PostgreSQL) as a [`Source`].
#[derive(Debug, Clone)]
pub struct WarehouseSource {
    backend: Backend,
    streams: Vec<WarehouseStream>,
}

/// `table_or_query` as a query: a `table` / `schema.table` name is read whole.
fn query_of(source: &str) -> Result<String, WarehouseError> {
    Ok(
        if source.contains(|c: char| c.is_whitespace() || c == '(') {
            source.trim().trim_end_matches(';').to_string()
        } else {
            format!("SELECT * FROM {}", relation(source)?)
        },
    )
}

/// A stream's spec: merged on its key, replaced in full without one.
fn stream_spec(
    name: &str,
    schema: arrow_schema::Schema,
    primary_key: Vec<String>,
    source: &str,
) -> StreamSpec {
    let disposition = if primary_key.is_empty() {
        WriteDisposition::Replace
    } else {
        WriteDisposition::Merge
    };
    let mut spec = StreamSpec::new(name.to_string(), schema)
        .with_primary_key(primary_key)
        .with_disposition(disposition);
    spec.description = format!("warehouse: {source}");
    spec
}

impl WarehouseSource {
    /// A source over DuckDB `streams`: `(name, table_or_query, primary_key)`.
    ///
    /// `table_or_query` is a `table` / `schema.table` name or a `SELECT`
    /// (anything with a space or parenthesis). Each stream's schema is read
    /// from DuckDB here (this blocks briefly), so an unknown table or a bad
    /// query fails now, naming the stream.
    #[cfg(feature = "duckdb")]
    pub fn new(
        warehouse: DuckDbWarehouse,
        streams: Vec<(String, String, Vec<String>)>,
    ) -> Result<Self, WarehouseError> {
        let conn = warehouse.reader()?;
        let mut out = Vec::with_capacity(streams.len());
        for (name, source, primary_key) in streams {
            let query = query_of(&source)?;
            let err = |source| WarehouseError::DuckDb {
                step: "read source schema",
                target: name.clone(),
                source,
            };
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM ({query}) LIMIT 0"))
                .map_err(err)?;
            let schema = stmt.query_arrow([]).map_err(err)?.get_schema();
            let spec = stream_spec(&name, schema.as_ref().clone(), primary_key, &source);
            out.push(WarehouseStream { spec, query });
        }
        Ok(WarehouseSource {
            backend: Backend::DuckDb(warehouse),
            streams: out,
        })
    }

    /// A source over PostgreSQL `streams`, as [`WarehouseSource::new`]: each
    /// stream's columns are typed from the query's result here (integers,
    /// floats, booleans, text, dates, timestamps, JSON; `numeric` and other
    /// types as their text), so an unknown table or a bad query fails now,
    /// naming the stream.
    #[cfg(feature = "postgres")]
    pub async fn postgres(
        warehouse: Arc<PostgresWarehouse>,
        streams: Vec<(String, String, Vec<String>)>,
    ) -> Result<Self, WarehouseError> {
        let mut out = Vec::with_capacity(streams.len());
        for (name, source, primary_key) in streams {
            let (schema, query) = warehouse.source_query(&name, &query_of(&source)?).await?;
            let spec = stream_spec(&name, schema, primary_key, &source);
            out.push(WarehouseStream { spec, query });
        }
        Ok(WarehouseSource {
            backend: Backend::Postgres(warehouse),
            streams: out,
        })
    }
}

#[async_trait]
impl Source for WarehouseSource {
    fn connector(&self) -> &str {
        "warehouse"
    }

    fn streams(&self) -> Vec<StreamSpec> {
        self.streams.iter().map(|s| s.spec.clone()).collect()
    }

    async fn check(&self) -> Result<(), BoxError> {
        match &self.backend {
            #[cfg(feature = "duckdb")]
            Backend::DuckDb(warehouse) => {
                let warehouse = warehouse.clone();
                tokio::task::spawn_blocking(move || warehouse.reader().map(drop))
                    .await
                    .map_err(|e| Box::new(e) as BoxError)?
                    .map_err(|e| Box::new(e) as BoxError)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(warehouse) => {
                use crate::Warehouse;
                warehouse
                    .query_rows("SELECT 1")
                    .await
                    .map(drop)
                    .map_err(|e| Box::new(e) as BoxError)
            }
        }
    }

    fn read(&self, request: ReadRequest) -> EventStream<'_> {
        let stream = self
            .streams
            .iter()
            .find(|s| s.spec.name == request.spec.name)
            .cloned();
        let backend = self.backend.clone();
        spawn_events(move |tx| async move {
            let Some(stream) = stream else {
                return Err(
                    format!("warehouse source has no stream `{}`", request.spec.name).into(),
                );
            };
            let cancel = request.cancel.clone();
            let rows = match backend {
                #[cfg(feature = "duckdb")]
                Backend::DuckDb(warehouse) => {
                    let tx = tx.clone();
                    let task = tokio::task::spawn_blocking(move || -> Result<u64, BoxError> {
                        let conn = warehouse.reader()?;
                        let err = |source| WarehouseError::DuckDb {
                            step: "read source",
                            target: stream.spec.name.clone(),
                            source,
                        };
                        let mut stmt = conn.prepare(&stream.query).map_err(err)?;
                        let mut rows = 0u64;
                        for batch in stmt.query_arrow([]).map_err(err)? {
                            if cancel.is_cancelled() {
                                return Ok(rows);
                            }
                            rows += batch.num_rows() as u64;
                            if tx.blocking_send(Ok(SourceEvent::Batch(batch))).is_err() {
                                return Ok(rows);
                            }
                        }
                        Ok(rows)
                    });
                    task.await.map_err(|e| Box::new(e) as BoxError)??
                }
                #[cfg(feature = "postgres")]
                Backend::Postgres(warehouse) => {
                    warehouse
                        .read_source_pages(&stream.spec.name, &stream.query, &tx, &cancel)
                        .await?
                }
            };
            if request.cancel.is_cancelled() {
                return Ok(());
            }
            let state = StreamState(json!({ "rows": rows }));
            let _ = tx.send(Ok(SourceEvent::Checkpoint(state))).await;
            Ok(())
        })
    }
}

#[cfg(all(test, feature = "duckdb"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use arrow_array::{Array, Int32Array, StringArray};
    use futures::StreamExt;
    use weft_core::{CancellationToken, StreamMetrics};

    use super::*;

    fn warehouse() -> DuckDbWarehouse {
        let wh = DuckDbWarehouse::open_in_memory().unwrap();
        wh.reader()
            .unwrap()
            .execute_batch(
                "CREATE SCHEMA models;
                 CREATE TABLE models.people AS
                   SELECT 'p' || lpad(CAST(i AS VARCHAR), 5, '0') AS email,
                          CAST(i AS INTEGER) AS n
                   FROM range(5000) t(i);",
            )
            .unwrap();
        wh
    }

    async fn read_all(source: &WarehouseSource, name: &str) -> (Vec<(String, i32)>, u32) {
        let spec = source
            .streams()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap();
        let mut events = source.read(ReadRequest {
            spec,
            state: None,
            started_at: chrono::Utc::now(),
            metrics: Arc::new(StreamMetrics::default()),
            cancel: CancellationToken::new(),
            max_in_flight: None,
        });
        let mut rows = Vec::new();
        let mut checkpoints = 0;
        while let Some(event) = events.next().await {
            match event.unwrap() {
                SourceEvent::Batch(b) => {
                    let emails = b
                        .column_by_name("email")
                        .unwrap()
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .clone();
                    let n = b
                        .column_by_name("n")
                        .unwrap()
                        .as_any()
                        .downcast_ref::<Int32Array>()
                        .unwrap()
                        .clone();
                    for i in 0..b.num_rows() {
                        rows.push((emails.value(i).to_string(), n.value(i)));
                    }
                    assert_eq!(emails.null_count(), 0);
                }
                SourceEvent::Checkpoint(state) => {
                    assert_eq!(state.get::<u64>("rows"), Some(rows.len() as u64));
                    checkpoints += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (rows, checkpoints)
    }

    #[tokio::test]
    async fn reads_a_table_and_a_query_as_exact_arrow_rows() {
        let source = WarehouseSource::new(
            warehouse(),
            vec![
                (
                    "people".to_string(),
                    "models.people".to_string(),
                    vec!["email".to_string()],
                ),
                (
                    "odd".to_string(),
                    "SELECT email, n FROM models.people WHERE n % 2 = 1 ORDER BY n".to_string(),
                    vec![],
                ),
            ],
        )
        .unwrap();
        let streams = source.streams();
        assert_eq!(streams[0].primary_key, ["email"]);
        assert_eq!(streams[0].write_disposition, WriteDisposition::Merge);
        assert_eq!(streams[1].write_disposition, WriteDisposition::Replace);
        let fields: Vec<_> = streams[0]
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(fields, ["email", "n"]);

        let (mut rows, checkpoints) = read_all(&source, "people").await;
        assert_eq!(checkpoints, 1);
        rows.sort();
        assert_eq!(rows.len(), 5000);
        assert_eq!(rows[0], ("p00000".to_string(), 0));
        assert_eq!(rows[4999], ("p04999".to_string(), 4999));

        let (odd, _) = read_all(&source, "odd").await;
        assert_eq!(odd.len(), 2500);
        assert_eq!(odd[0], ("p00001".to_string(), 1));
        assert!(odd.iter().all(|(_, n)| n % 2 == 1));
        source.check().await.unwrap();
    }

    #[test]
    fn an_unknown_table_fails_naming_the_stream() {
        let err = WarehouseSource::new(
            warehouse(),
            vec![("ghost".to_string(), "models.ghost".to_string(), vec![])],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ghost"), "{err}");
    }
}
