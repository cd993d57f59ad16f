//! Salesforce objects as streams.
//!
//! Streams are discovered when the source is built
//! ([`SalesforceSource::connect`] describes every configured object once):
//! [`Source::streams`] is synchronous, and a schema fixed for the source's
//! lifetime keeps discover stable between calls. `specs/salesforce.toml` is the
//! offline description ([`crate::catalog`]) for listing streams without credentials.
//!
//! A read counts the changed rows first (`SELECT COUNT() ... WHERE cursor >=
//! saved`); up to `bulk_threshold` they are read with REST `queryAll` pages in
//! cursor order (checkpointing every few pages), above it with a Bulk API 2.0
//! query job (checkpointing once, at the end: job results are not ordered).

mod bulk;
mod describe;
mod records;

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use weft_core::{
    BoxError, Connector, EventSender, JsonPage, ReadRequest, SourceEvent, StreamSpec, StreamState,
    Watermark,
};
use weft_http::{BudgetRegistry, paginate};

use crate::client::SalesforceClient;
use crate::{SalesforceConfig, SalesforceError};
use describe::ObjectStream;

/// A checkpoint is sent after this many REST pages (records are in cursor order).
const CHECKPOINT_EVERY_PAGES: u64 = 10;

/// The state key holding the cursor, in Unix microseconds.
const CURSOR_KEY: &str = "cursor_us";

/// The Salesforce source.
#[derive(Clone)]
pub struct SalesforceSource {
    inner: Arc<Inner>,
}

struct Inner {
    client: SalesforceClient,
    config: SalesforceConfig,
    objects: Vec<ObjectStream>,
}

impl SalesforceSource {
    /// Builds the source and discovers its streams: authenticates and
    /// describes every object in `config.objects`. The org's rate budget comes
    /// from `budgets` (use [`BudgetRegistry::global`] to share it process-wide).
    pub async fn connect(
        config: SalesforceConfig,
        budgets: &BudgetRegistry,
    ) -> Result<Self, SalesforceError> {
        let client = SalesforceClient::new(&config, budgets)?;
        let metrics = weft_core::StreamMetrics::default();
        let mut objects = Vec::with_capacity(config.objects.len());
        for name in &config.objects {
            let resp = client
                .http
                .send(&SalesforceClient::describe(name), &metrics)
                .await
                .map_err(|e| client.error(e, name))?;
            let object =
                describe::object_stream(&resp.body).map_err(|reason| SalesforceError::Shape {
                    object: name.clone(),
                    what: "describe".into(),
                    reason,
                })?;
            objects.push(object);
        }
        Ok(SalesforceSource {
            inner: Arc::new(Inner {
                client,
                config,
                objects,
            }),
        })
    }
}

#[async_trait]
impl Connector for SalesforceSource {
    type Error = SalesforceError;
    const NAME: &'static str = "salesforce";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        self.inner.objects.iter().map(|o| o.spec.clone()).collect()
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let metrics = weft_core::StreamMetrics::default();
        let first = self
            .inner
            .config
            .objects
            .first()
            .map_or("Contact", String::as_str);
        self.inner
            .client
            .http
            .send(&SalesforceClient::describe(first), &metrics)
            .await
            .map_err(|e| self.inner.client.error(e, first))?;
        Ok(())
    }

    async fn read_stream(
        self,
        request: ReadRequest,
        tx: EventSender,
    ) -> Result<(), SalesforceError> {
        read_stream(&self.inner, request, &tx).await
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountAnswer {
    total_size: u64,
}

async fn read_stream(
    inner: &Inner,
    request: ReadRequest,
    tx: &EventSender,
) -> Result<(), SalesforceError> {
    let name = request.spec.name.clone();
    let object = inner
        .objects
        .iter()
        .find(|o| o.object() == name)
        .ok_or_else(|| SalesforceError::Config {
            field: "objects",
            reason: format!("unknown stream `{name}`"),
        })?;
    let saved: Option<i64> = request
        .state
        .as_ref()
        .and_then(|s| s.get(CURSOR_KEY))
        .filter(|_| object.cursor.is_some());
    let filter = match (&object.cursor, saved) {
        (Some(c), Some(from)) => format!(" WHERE {c} >= {}", records::soql_datetime(from)),
        _ => String::new(),
    };
    let settle = i64::try_from(inner.config.settle_secs)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000);
    let mut watermark = Watermark::new(saved, request.started_at.timestamp_micros(), settle);

    let count_soql = format!("SELECT COUNT() FROM {name}{filter}");
    let count: CountAnswer = inner
        .client
        .http
        .get_json(&SalesforceClient::query_all(&count_soql), &request.metrics)
        .await
        .map_err(|e| inner.client.error(e, &name))?;
    let soql = format!("{}{filter}", object.select());
    if count.total_size > inner.config.bulk_threshold {
        let msg = format!(
            "{name}: {} changed records exceed bulk_threshold {}: reading with a Bulk API 2.0 query job",
            count.total_size, inner.config.bulk_threshold
        );
        send(tx, SourceEvent::Notice(msg), &name).await?;
        bulk::read(inner, object, &soql, &mut watermark, &request, tx).await?;
    } else {
        let ordered = match &object.cursor {
            Some(c) => format!("{soql} ORDER BY {c} ASC"),
            None => soql,
        };
        read_rest(inner, object, &ordered, &mut watermark, &request, tx).await?;
    }
    send(tx, checkpoint(&watermark), &name).await
}

/// Reads REST `queryAll` pages, checkpointing every few pages.
async fn read_rest(
    inner: &Inner,
    object: &ObjectStream,
    soql: &str,
    watermark: &mut Watermark,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), SalesforceError> {
    let name = object.object();
    let mut pages = paginate(
        inner.client.http.clone(),
        SalesforceClient::query_all(soql),
        SalesforceClient::pagination(),
        Arc::clone(&request.metrics),
    );
    loop {
        let page = tokio::select! {
            biased;
            _ = request.cancel.cancelled() => return Err(SalesforceError::Cancelled { object: name.to_string() }),
            page = pages.next() => page,
        };
        let Some(page) = page else { break };
        let page = page.map_err(|e| inner.client.error(e, name))?;
        let mut out = Vec::with_capacity(page.records.len());
        for raw in &page.records {
            let (record, cursor) =
                records::rest_record(raw, object).map_err(|reason| SalesforceError::Shape {
                    object: name.to_string(),
                    what: format!("query page {}", page.number),
                    reason,
                })?;
            if let Some(c) = cursor {
                watermark.observe(c);
            }
            out.push(record);
        }
        send(tx, SourceEvent::Page(JsonPage { records: out }), name).await?;
        if page.number % CHECKPOINT_EVERY_PAGES == 0 && page.next_cursor.is_some() {
            send(tx, checkpoint(watermark), name).await?;
        }
    }
    Ok(())
}

fn checkpoint(watermark: &Watermark) -> SourceEvent {
    let state = match watermark.value() {
        Some(v) => json!({ CURSOR_KEY: v }),
        None => json!({}),
    };
    SourceEvent::Checkpoint(StreamState(state))
}

/// Sends an event to the pipeline; a closed channel means the run was stopped.
pub(crate) async fn send(
    tx: &EventSender,
    event: SourceEvent,
    object: &str,
) -> Result<(), SalesforceError> {
    tx.send(Ok(event))
        .await
        .map_err(|_| SalesforceError::Cancelled {
            object: object.to_string(),
        })
}
