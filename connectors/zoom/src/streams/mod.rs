//! Zoom lists as streams, read directly or fanned out over parent records.
//!
//! What differs per stream (endpoint, the key holding the records, the parent
//! stream and the field naming the parent) is declared in `specs/zoom.toml`.
//! A child stream (`webinar_registrants`) first lists its parents (users, then
//! their webinars), then reads one child list per parent, `fan_out_concurrency`
//! at a time, all through the account's one budget. Zoom has no change filter
//! on these lists: every run reads everything (loads merge on the primary key)
//! and ends with one checkpoint.

mod record;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use weft_core::{
    BoxError, Catalog, CatalogStream, Connector, EventSender, JsonPage, ReadRequest, SourceEvent,
    StreamMetrics, StreamSpec, StreamState,
};
use weft_http::{HttpError, Page, paginate};

use self::record::{ParentId, with_field};
use crate::client::ZoomClient;
use crate::{ZoomConfig, ZoomError};

/// Per-stream options from the catalog's `[streams.options]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    /// Key of the records array in a list response (`registrants`).
    items: String,
    /// The stream whose records are this stream's parents; the endpoint has
    /// one `{...}` placeholder for the parent's id.
    #[serde(default)]
    parent: Option<String>,
    /// Field added to every record with its parent's id (`webinar_id`).
    #[serde(default)]
    parent_field: Option<String>,
}

/// The Zoom source.
#[derive(Clone)]
pub struct ZoomSource {
    inner: Arc<Inner>,
}

struct Inner {
    client: ZoomClient,
    catalog: Catalog,
    fan_out: usize,
}

impl ZoomSource {
    /// Builds the source; the account's rate budget comes from `budgets`
    /// (use [`weft_http::BudgetRegistry::global`] to share it process-wide).
    pub fn new(config: ZoomConfig, budgets: &weft_http::BudgetRegistry) -> Result<Self, ZoomError> {
        let client = ZoomClient::new(&config, budgets)?;
        let catalog = crate::catalog()?;
        check_catalog(&catalog)?;
        Ok(ZoomSource {
            inner: Arc::new(Inner {
                client,
                catalog,
                fan_out: config.fan_out_concurrency,
            }),
        })
    }
}

/// Every stream has options and an endpoint; a parent is declared before its
/// children (so parent chains end) and child endpoints have a placeholder.
fn check_catalog(catalog: &Catalog) -> Result<(), ZoomError> {
    for (i, stream) in catalog.streams.iter().enumerate() {
        let bad = |reason: String| ZoomError::Config {
            field: "streams",
            reason: format!("catalog stream `{}`: {reason}", stream.spec.name),
        };
        let opts: StreamOptions = stream.options()?;
        let endpoint = stream
            .endpoint
            .as_deref()
            .ok_or_else(|| bad("no endpoint".into()))?;
        if let Some(parent) = &opts.parent {
            if !catalog.streams[..i].iter().any(|s| &s.spec.name == parent) {
                return Err(bad(format!("parent `{parent}` is not declared before it")));
            }
            template(endpoint).ok_or_else(|| bad("endpoint has no `{id}` placeholder".into()))?;
        }
    }
    Ok(())
}

#[async_trait]
impl Connector for ZoomSource {
    type Error = ZoomError;
    const NAME: &'static str = "zoom";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        self.inner.catalog.specs()
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let metrics = StreamMetrics::default();
        let req = weft_http::RequestSpec::get("/v2/users").query("page_size", "1");
        self.inner.client.http.send(&req, &metrics).await?;
        Ok(())
    }

    async fn read_stream(self, request: ReadRequest, tx: EventSender) -> Result<(), ZoomError> {
        read_stream(&self.inner, request, &tx).await
    }
}

impl Inner {
    fn stream(&self, name: &str) -> Result<(&CatalogStream, StreamOptions), ZoomError> {
        let stream = self.catalog.require("zoom", name)?;
        Ok((stream, stream.options()?))
    }
}

/// One page of a listing and where it came from.
struct Listed {
    /// The parent the page was read under (`None` for top-level lists).
    parent: Option<ParentId>,
    /// The path read, for errors.
    endpoint: String,
    page: Page,
}

async fn read_stream(
    inner: &Arc<Inner>,
    request: ReadRequest,
    tx: &EventSender,
) -> Result<(), ZoomError> {
    let name = request.spec.name.clone();
    let (stream, opts) = inner.stream(&name)?;
    let parents = match &opts.parent {
        Some(parent) => Some(parent_ids(inner, parent, &request).await?),
        None => None,
    };
    let mut pages = listing(inner, stream, &opts, parents, &request.metrics)?;
    while let Some(listed) = next(&mut pages, &request, &name).await? {
        // Each listing's first page says how many it holds: the source count
        // the completeness check compares with what was read.
        if let Some(total) = listed.page.listing_total("total_records") {
            request.metrics.add_source_count(total);
        }
        let records = match (&opts.parent_field, &listed.parent) {
            (Some(field), Some(parent)) => listed
                .page
                .records
                .iter()
                .map(|r| with_field(r, field, parent))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| shape(&name, &listed, reason))?,
            _ => listed.page.records,
        };
        if !records.is_empty() {
            send(tx, SourceEvent::Page(JsonPage { records }), &name).await?;
        }
    }
    // Everything was read; the state only says when (the next run reads everything again).
    let state = StreamState(json!({ "synced_at": request.started_at.to_rfc3339() }));
    send(tx, SourceEvent::Checkpoint(state), &name).await
}

/// The ids of every record of stream `name` (read through its own parents), de-duplicated.
fn parent_ids<'a>(
    inner: &'a Arc<Inner>,
    name: &'a str,
    request: &'a ReadRequest,
) -> BoxFuture<'a, Result<Vec<ParentId>, ZoomError>> {
    Box::pin(async move {
        let (stream, opts) = inner.stream(name)?;
        let grandparents = match &opts.parent {
            Some(parent) => Some(parent_ids(inner, parent, request).await?),
            None => None,
        };
        let mut pages = listing(inner, stream, &opts, grandparents, &request.metrics)?;
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        while let Some(listed) = next(&mut pages, request, &request.spec.name).await? {
            for r in &listed.page.records {
                let id = ParentId::of(r).map_err(|reason| shape(name, &listed, reason))?;
                if seen.insert(id.json().to_string()) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    })
}

/// The pages of a stream: one listing, or one per parent (`fan_out` at a time).
fn listing(
    inner: &Arc<Inner>,
    stream: &CatalogStream,
    opts: &StreamOptions,
    parents: Option<Vec<ParentId>>,
    metrics: &Arc<StreamMetrics>,
) -> Result<BoxStream<'static, Result<Listed, HttpError>>, ZoomError> {
    let endpoint = stream
        .endpoint
        .clone()
        .ok_or_else(|| ZoomError::UnknownStream {
            stream: stream.spec.name.clone(),
        })?;
    let pagination = ZoomClient::pagination(&opts.items);
    let client = inner.client.clone();
    let metrics = Arc::clone(metrics);
    let Some(parents) = parents else {
        let first = client.list(&endpoint);
        return Ok(paginate(client.http.clone(), first, pagination, metrics)
            .map_ok(move |page| Listed {
                parent: None,
                endpoint: endpoint.clone(),
                page,
            })
            .boxed());
    };
    let (head, tail) = template(&endpoint).ok_or_else(|| ZoomError::Config {
        field: "streams",
        reason: format!("endpoint `{endpoint}` has no `{{id}}` placeholder"),
    })?;
    let (head, tail) = (head.to_string(), tail.to_string());
    Ok(futures::stream::iter(parents)
        .map(move |parent| {
            let path = format!("{head}{}{tail}", parent.segment());
            paginate(
                client.children.clone(),
                client.list(&path),
                pagination.clone(),
                Arc::clone(&metrics),
            )
            .map_ok(move |page| Listed {
                parent: Some(parent.clone()),
                endpoint: path.clone(),
                page,
            })
        })
        .flatten_unordered(inner.fan_out)
        .boxed())
}

/// The endpoint around its `{...}` placeholder.
fn template(endpoint: &str) -> Option<(&str, &str)> {
    let open = endpoint.find('{')?;
    let close = open + endpoint[open..].find('}')?;
    Some((&endpoint[..open], &endpoint[close + 1..]))
}

fn shape(stream: &str, listed: &Listed, reason: String) -> ZoomError {
    ZoomError::Shape {
        stream: stream.to_string(),
        endpoint: listed.endpoint.clone(),
        page: listed.page.number,
        reason,
    }
}

/// The next page, or `None` at the end; stops promptly on cancellation.
async fn next(
    pages: &mut BoxStream<'static, Result<Listed, HttpError>>,
    request: &ReadRequest,
    stream: &str,
) -> Result<Option<Listed>, ZoomError> {
    tokio::select! {
        biased;
        _ = request.cancel.cancelled() => Err(ZoomError::Cancelled { stream: stream.to_string() }),
        page = pages.next() => page.transpose().map_err(ZoomError::from),
    }
}

/// Sends an event to the pipeline; a closed channel means the run was stopped.
async fn send(tx: &EventSender, event: SourceEvent, stream: &str) -> Result<(), ZoomError> {
    tx.send(Ok(event)).await.map_err(|_| ZoomError::Cancelled {
        stream: stream.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_catalog_is_consistent() {
        let catalog = crate::catalog().unwrap();
        check_catalog(&catalog).unwrap();
        let names: Vec<_> = catalog
            .streams
            .iter()
            .map(|s| s.spec.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "users",
                "webinars",
                "meetings",
                "webinar_registrants",
                "past_webinar_participants"
            ]
        );
        let registrants = catalog.stream("webinar_registrants").unwrap();
        let o: StreamOptions = registrants.options().unwrap();
        assert_eq!(o.parent.as_deref(), Some("webinars"));
        assert_eq!(o.parent_field.as_deref(), Some("webinar_id"));
        assert_eq!(registrants.spec.primary_key, ["webinar_id", "id"]);
    }

    #[test]
    fn templates_split_around_the_placeholder() {
        assert_eq!(
            template("/v2/webinars/{webinarId}/registrants"),
            Some(("/v2/webinars/", "/registrants"))
        );
        assert_eq!(template("/v2/users"), None);
    }
}
