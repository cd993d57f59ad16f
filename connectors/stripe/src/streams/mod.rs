//! Stripe list objects as streams: the entity list plus the events that change it.
//!
//! Every Stripe list object is read the same way; what differs per stream
//! (endpoint, object name, the event types that update or delete it) is
//! declared in `specs/stripe.toml`. The read order within a run is: events
//! since the saved events cursor (newest state of each changed object), then
//! objects created since the saved `created` cursor; the entity list is read
//! last, so its fresher rows win the merge.

mod events;

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use weft_core::{
    BoxError, Catalog, CatalogStream, Connector, EventSender, JsonPage, ReadRequest, SourceEvent,
    StreamSpec, StreamState, Watermark,
};
use weft_http::{BudgetRegistry, RequestSpec, paginate};

use crate::client::StripeClient;
use crate::{StripeConfig, StripeError};

/// Per-stream options from the catalog's `[streams.options]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamOptions {
    /// Stripe's object name (`customer`), matched against `data.object.object` in events.
    pub(crate) object: String,
    /// Event types that carry a new state of the object (`*.deleted` marks deletions).
    pub(crate) events: Vec<String>,
}

/// The Stripe source.
#[derive(Clone)]
pub struct StripeSource {
    inner: Arc<Inner>,
}

struct Inner {
    client: StripeClient,
    catalog: Catalog,
    config: StripeConfig,
}

impl StripeSource {
    /// Builds the source; the account's rate budget comes from `budgets`
    /// (use [`BudgetRegistry::global`] to share it process-wide).
    pub fn new(config: StripeConfig, budgets: &BudgetRegistry) -> Result<Self, StripeError> {
        let client = StripeClient::new(&config, budgets)?;
        Ok(StripeSource {
            inner: Arc::new(Inner {
                client,
                catalog: crate::catalog()?,
                config,
            }),
        })
    }
}

#[async_trait]
impl Connector for StripeSource {
    type Error = StripeError;
    const NAME: &'static str = "stripe";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        self.inner.catalog.specs()
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let metrics = weft_core::StreamMetrics::default();
        self.inner
            .client
            .http
            .send(&RequestSpec::get("/v1/account"), &metrics)
            .await?;
        Ok(())
    }

    async fn read_stream(self, request: ReadRequest, tx: EventSender) -> Result<(), StripeError> {
        read_stream(&self.inner, request, &tx).await
    }
}

/// The saved state of a Stripe stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// Objects created at or after this (Unix seconds) are read from the list.
    created: Option<i64>,
    /// Events created at or after this are read for changes.
    events_created: Option<i64>,
}

impl Cursor {
    fn from_state(state: Option<&StreamState>) -> Cursor {
        state.map_or_else(Cursor::default, |s| Cursor {
            created: s.get("created"),
            events_created: s.get("events_created"),
        })
    }

    fn to_state(self) -> StreamState {
        let mut v = json!({});
        if let Some(c) = self.created {
            v["created"] = json!(c);
        }
        if let Some(e) = self.events_created {
            v["events_created"] = json!(e);
        }
        StreamState(v)
    }
}

async fn read_stream(
    inner: &Inner,
    request: ReadRequest,
    tx: &EventSender,
) -> Result<(), StripeError> {
    let name = request.spec.name.clone();
    let stream = inner.catalog.require("stripe", &name)?;
    let options: StreamOptions = stream.options()?;
    let saved = Cursor::from_state(request.state.as_ref());
    let now = request.started_at.timestamp();
    let settle = i64::try_from(inner.config.settle_secs).unwrap_or(i64::MAX);
    let retention = i64::try_from(inner.config.events_retention_days)
        .unwrap_or(i64::MAX / 86_400)
        .saturating_mul(86_400);

    let mut full_read = saved.created.is_none();
    let mut next = saved;
    if !options.events.is_empty() {
        match saved.events_created {
            Some(since) if saved.created.is_some() && since > now - retention => {
                events::read_changes(inner, stream, &options, since, &request, tx).await?;
            }
            Some(since) if saved.created.is_some() => {
                full_read = true;
                let msg = format!(
                    "saved events cursor {since} is older than Stripe's {}-day event retention: \
                     re-reading {} in full",
                    inner.config.events_retention_days,
                    stream.endpoint.as_deref().unwrap_or_default()
                );
                send(tx, SourceEvent::Notice(msg), &name).await?;
            }
            _ => full_read = true,
        }
        // Every event up to now has been read (or is reflected in a full read).
        next.events_created = Some(saved.events_created.unwrap_or(i64::MIN).max(now - settle));
    }

    let created_from = if full_read { None } else { saved.created };
    // While the list is read, resuming means: the events already read, the list again.
    let resume = Cursor {
        events_created: next.events_created,
        ..saved
    }
    .to_state();
    let watermark = read_list(
        inner,
        stream,
        ListRead {
            created_from,
            previous: saved.created,
            now,
            settle,
            resume,
        },
        &request,
        tx,
    )
    .await?;
    next.created = watermark.or(saved.created);
    send(tx, SourceEvent::Checkpoint(next.to_state()), &name).await
}

/// How one entity-list read goes.
struct ListRead {
    /// Objects created at or after this are listed (`None` = all).
    created_from: Option<i64>,
    /// The saved `created` cursor.
    previous: Option<i64>,
    /// Extraction start (Unix seconds).
    now: i64,
    /// Settle delay (seconds).
    settle: i64,
    /// The state that resumes this read if it stops midway.
    resume: StreamState,
}

/// Reads the entity list, checkpointing after every page; returns the new cursor.
async fn read_list(
    inner: &Inner,
    stream: &CatalogStream,
    read: ListRead,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<Option<i64>, StripeError> {
    let ListRead {
        created_from,
        previous,
        now,
        settle,
        resume,
    } = read;
    let name = &stream.spec.name;
    let endpoint = stream.endpoint.as_deref().unwrap_or_default();
    let mut first = inner.client.list(endpoint);
    if let Some(from) = created_from {
        // A saved cursor is at least `settle` seconds older than the run that
        // saved it, so every object created in its second was listed then: a
        // settled cursor needs only newer objects. Without a settle delay the
        // cursor's own second is read again (the merge absorbs the overlap).
        let op = if settle > 0 {
            "created[gt]"
        } else {
            "created[gte]"
        };
        first = first.query(op, from.to_string());
    }
    let mut watermark = Watermark::new(previous, now, settle);
    let mut pages = paginate(
        inner.client.http.clone(),
        first,
        StripeClient::pagination(),
        Arc::clone(&request.metrics),
    );
    while let Some(page) = next_page(&mut pages, request, name).await? {
        // Lists are newest first: the first record of a page has its largest `created`.
        if let Some(head) = page.records.first() {
            let created = created_of(head.get()).map_err(|reason| StripeError::Shape {
                stream: name.clone(),
                endpoint: endpoint.to_string(),
                page: page.number,
                reason,
            })?;
            watermark.observe(created);
        }
        send(
            tx,
            SourceEvent::Page(JsonPage {
                records: page.records,
            }),
            name,
        )
        .await?;
        // Newest-first lists cannot move the cursor until they end, but the
        // saved cursor stays a valid resume point: checkpointing it lets the
        // pipeline commit bounded loads (its cadence) instead of one load per
        // stream; a resumed read re-reads from it and the merge absorbs the overlap.
        send(tx, SourceEvent::Checkpoint(resume.clone()), name).await?;
    }
    Ok(watermark.value())
}

/// The next page, or `None` at the end; stops promptly on cancellation.
pub(crate) async fn next_page(
    pages: &mut futures::stream::BoxStream<'static, Result<weft_http::Page, weft_http::HttpError>>,
    request: &ReadRequest,
    stream: &str,
) -> Result<Option<weft_http::Page>, StripeError> {
    tokio::select! {
        biased;
        _ = request.cancel.cancelled() => Err(StripeError::Cancelled { stream: stream.to_string() }),
        page = pages.next() => page.transpose().map_err(StripeError::from),
    }
}

/// Sends an event to the pipeline; a closed channel means the run was stopped.
pub(crate) async fn send(
    tx: &EventSender,
    event: SourceEvent,
    stream: &str,
) -> Result<(), StripeError> {
    tx.send(Ok(event))
        .await
        .map_err(|_| StripeError::Cancelled {
            stream: stream.to_string(),
        })
}

fn created_of(raw: &str) -> Result<i64, String> {
    #[derive(Deserialize)]
    struct Created {
        created: i64,
    }
    serde_json::from_str::<Created>(raw)
        .map(|c| c.created)
        .map_err(|e| format!("record has no integer `created`: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursor_round_trips_through_state() {
        let c = Cursor {
            created: Some(10),
            events_created: Some(20),
        };
        assert_eq!(Cursor::from_state(Some(&c.to_state())), c);
        assert_eq!(Cursor::from_state(None), Cursor::default());
    }

    #[test]
    fn every_stream_declares_options() {
        let catalog = crate::catalog().unwrap();
        assert_eq!(catalog.streams.len(), 10);
        for s in &catalog.streams {
            let o: StreamOptions = s.options().unwrap();
            assert!(!o.object.is_empty());
            for e in &o.events {
                assert!(e.contains('.'), "{e}");
            }
        }
    }
}
