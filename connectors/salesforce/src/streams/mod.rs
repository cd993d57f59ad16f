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
//! cursor order, in concurrent slices of the cursor (windows `>= lo AND < hi`,
//! [`weft_http::read_sliced`]; a checkpoint after every page lists the
//! windows left), above it with a Bulk API 2.0 query job (checkpointing once,
//! at the end: job results are not ordered). The count is also the run's
//! source count, which the completeness check compares with the rows read.

mod bulk;
mod describe;
mod records;

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use weft_core::{
    BoxError, Connector, EventSender, ReadRequest, SourceEvent, StreamSpec, StreamState, Watermark,
};
use weft_http::{
    BudgetRegistry, Order, RequestSpec, SliceError, SlicePage, SliceState, SlicedList, Window,
    paginate, read_sliced,
};

use crate::client::SalesforceClient;
use crate::{SalesforceConfig, SalesforceError};
use describe::ObjectStream;

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

    // A sliced REST read under way resumes where it stopped.
    if request
        .state
        .as_ref()
        .is_some_and(|s| s.0.get("slices").is_some())
    {
        read_rest(
            inner,
            object,
            &object.select(),
            &mut watermark,
            &request,
            tx,
        )
        .await?;
        return send(tx, checkpoint(&watermark), &name).await;
    }
    let count_soql = format!("SELECT COUNT() FROM {name}{filter}");
    let count: CountAnswer = inner
        .client
        .http
        .get_json(&SalesforceClient::query_all(&count_soql), &request.metrics)
        .await
        .map_err(|e| inner.client.error(e, &name))?;
    // What the read below must take in: the completeness check's count.
    request.metrics.add_source_count(count.total_size);
    let soql = format!("{}{filter}", object.select());
    if count.total_size > inner.config.bulk_threshold {
        let msg = format!(
            "{name}: {} changed records exceed bulk_threshold {}: reading with a Bulk API 2.0 query job",
            count.total_size, inner.config.bulk_threshold
        );
        send(tx, SourceEvent::Notice(msg), &name).await?;
        bulk::read(inner, object, &soql, &mut watermark, &request, tx).await?;
    } else {
        read_rest(
            inner,
            object,
            &object.select(),
            &mut watermark,
            &request,
            tx,
        )
        .await?;
    }
    send(tx, checkpoint(&watermark), &name).await
}

/// Reads REST `queryAll` pages in concurrent slices of the cursor field
/// (windows in milliseconds, as records carry them, cut on whole seconds:
/// [`SlicedList::granularity`]), or in
/// one pass when the object has no cursor.
async fn read_rest(
    inner: &Inner,
    object: &ObjectStream,
    soql: &str,
    watermark: &mut Watermark,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), SalesforceError> {
    let name = object.object();
    let list = QueryWindows {
        inner,
        object,
        select: soql,
        metrics: &request.metrics,
    };
    let left = SliceState::from_value(request.state.as_ref().and_then(|s| s.0.get("slices")))
        .map_err(|reason| SalesforceError::Shape {
            object: name.to_string(),
            what: "saved state".into(),
            reason,
        })?;
    let saved: Option<i64> = request.state.as_ref().and_then(|s| s.get(CURSOR_KEY));
    let now_ms = request.started_at.timestamp_millis();
    let settle_ms = i64::try_from(inner.config.settle_secs)
        .unwrap_or(i64::MAX / 1_000)
        .saturating_mul(1_000);
    // From the saved cursor (inclusive), open-ended: the top window has no
    // upper bound, so an org clock ahead of ours loses nothing.
    let plan = left.unwrap_or_else(|| {
        let lo = saved.map_or(i64::MIN, |us| us.div_euclid(1_000));
        SliceState::plan(Window::new(lo, i64::MAX), now_ms.saturating_sub(settle_ms))
    });
    let settings = match object.cursor {
        Some(_) => inner.config.slices.clone(),
        // Without a cursor there is nothing to window: one pass.
        None => weft_http::SliceSettings {
            enabled: false,
            max_pages: u32::MAX,
        },
    };
    let done = read_sliced(
        &list,
        inner.client.http.budget(),
        plan,
        &settings,
        request,
        tx,
        |left| {
            let mut state = match saved {
                Some(v) => json!({ CURSOR_KEY: v }),
                None => json!({}),
            };
            state["slices"] = json!(left);
            StreamState(state)
        },
    )
    .await
    .map_err(|e| match e {
        SliceError::Source(e) => e,
        SliceError::Stopped => SalesforceError::Cancelled {
            object: name.to_string(),
        },
        SliceError::Loop { window, cursor } => SalesforceError::Shape {
            object: name.to_string(),
            what: format!("query of [{}, {}) ms", window.lo, window.hi),
            reason: format!("pagination loop: {cursor} came back"),
        },
    })?;
    if let Some(ms) = done.cursor(None) {
        watermark.observe(ms.saturating_mul(1_000));
    }
    Ok(())
}

/// One object's REST query, listed by windows of its cursor (milliseconds), ascending.
struct QueryWindows<'a> {
    inner: &'a Inner,
    object: &'a ObjectStream,
    /// `SELECT ... FROM Obj`, without a filter.
    select: &'a str,
    metrics: &'a Arc<weft_core::StreamMetrics>,
}

#[async_trait]
impl SlicedList for QueryWindows<'_> {
    type Error = SalesforceError;

    fn order(&self) -> Order {
        Order::Ascending
    }

    /// Keys are milliseconds, but Salesforce's datetimes have whole seconds:
    /// a window cut inside a second would split what SOQL cannot.
    fn granularity(&self) -> i64 {
        1_000
    }

    async fn page(
        &self,
        window: Window,
        after: Option<&serde_json::Value>,
    ) -> Result<SlicePage, SalesforceError> {
        let name = self.object.object();
        let first = match (
            after.and_then(serde_json::Value::as_str),
            &self.object.cursor,
        ) {
            // A query locator continues the query it belongs to.
            (Some(next), _) => RequestSpec::get(next),
            (None, Some(c)) => {
                let mut bounds = Vec::with_capacity(2);
                if window.lo > i64::MIN {
                    bounds.push(format!(
                        "{c} >= {}",
                        records::soql_datetime(window.lo.saturating_mul(1_000))
                    ));
                }
                if window.hi < i64::MAX {
                    bounds.push(format!(
                        "{c} < {}",
                        records::soql_datetime(window.hi.saturating_mul(1_000))
                    ));
                }
                let filter = match bounds.is_empty() {
                    true => String::new(),
                    false => format!(" WHERE {}", bounds.join(" AND ")),
                };
                SalesforceClient::query_all(&format!("{}{filter} ORDER BY {c} ASC", self.select))
            }
            (None, None) => SalesforceClient::query_all(self.select),
        };
        let mut pages = paginate(
            self.inner.client.http.clone(),
            first,
            SalesforceClient::pagination(),
            Arc::clone(self.metrics),
        );
        let Some(page) = pages.next().await else {
            return Ok(SlicePage::default());
        };
        let page = page.map_err(|e| self.inner.client.error(e, name))?;
        let mut records = Vec::with_capacity(page.records.len());
        for raw in &page.records {
            let (record, cursor) = records::rest_record(raw, self.object).map_err(|reason| {
                SalesforceError::Shape {
                    object: name.to_string(),
                    what: "query page".into(),
                    reason,
                }
            })?;
            records.push((cursor.map(|us| us.div_euclid(1_000)), record));
        }
        Ok(SlicePage {
            records,
            next: page.next_cursor.map(serde_json::Value::String),
            reached: None,
        })
    }
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
