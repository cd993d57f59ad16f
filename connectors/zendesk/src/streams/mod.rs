//! Zendesk endpoints as streams: incremental exports and plain lists.
//!
//! What differs per stream (endpoint, the key holding the records, how it is
//! read) is declared in `specs/zendesk.toml` under `[streams.options]`:
//! `read = "cursor_export"` (tickets, users), `"time_export"`
//! (organizations), `"list"` (ticket fields, groups, brands, ticket forms,
//! user and organization fields, group and organization memberships, macros,
//! satisfaction ratings, ticket metrics; `next` is the pointer to the next
//! page's URL, `page_size_param` asks for the largest page) or
//! `"children"` (ticket comments: the tickets export, then each changed
//! ticket's `child` list through [`weft_http::fetch_children`]).

mod export;

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::json;
use weft_core::{
    BoxError, Catalog, CatalogStream, Connector, EventSender, JsonPage, ReadRequest, SourceEvent,
    StreamMetrics, StreamSpec, StreamState,
};
use weft_http::{HttpError, Page, RequestSpec, paginate};

use crate::client::ZendeskClient;
use crate::{ZendeskConfig, ZendeskError};

/// Largest page of Zendesk's cursor-paginated lists (`page[size]`).
const MAX_LIST_PAGE: u32 = 100;

/// How a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Read {
    /// Cursor-based incremental export; the state is the export cursor.
    CursorExport,
    /// Time-based incremental export; the state is a start time.
    TimeExport,
    /// A list read in full every run.
    List,
    /// The children of a cursor export's records (a ticket's comments): the
    /// export is followed as for `cursor_export`, and every changed,
    /// undeleted parent's `child` list is read.
    Children,
}

/// Per-stream options from the catalog's `[streams.options]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamOptions {
    /// HTTP method of the endpoint (every Zendesk stream is a `get`).
    method: String,
    /// Key of the records array in a response (`tickets`).
    pub(crate) items: String,
    /// How the stream is read.
    pub(crate) read: Read,
    /// Lists: pointer to the next page's URL (`/next_page`, `/links/next`).
    #[serde(default)]
    next: Option<String>,
    /// Lists: the page size query parameter, set to its largest value.
    #[serde(default)]
    page_size_param: Option<String>,
    /// Children: the parent's child list, `{id}` standing for its id.
    #[serde(default)]
    pub(crate) child: Option<String>,
    /// Children: the key of the records array in a child list.
    #[serde(default)]
    pub(crate) child_items: Option<String>,
    /// Children: the fields each child gets with its parent's id and `updated_at`.
    #[serde(default)]
    pub(crate) parent_fields: Option<(String, String)>,
}

impl StreamOptions {
    /// Children: how one parent's children are listed (largest pages,
    /// cursor-paginated by `links.next`).
    pub(crate) fn child_list(&self, stream: &str) -> Result<weft_http::ChildList, ZendeskError> {
        let bad = || ZendeskError::Config {
            field: "streams",
            reason: format!(
                "catalog stream `{stream}`: children need `child`, `child_items` and `parent_fields`"
            ),
        };
        let (Some(child), Some(items), Some((parent_id, parent_key))) =
            (&self.child, &self.child_items, &self.parent_fields)
        else {
            return Err(bad());
        };
        Ok(weft_http::ChildList {
            path: child.clone(),
            query: vec![("page[size]".into(), MAX_LIST_PAGE.to_string())],
            pagination: ZendeskClient::list_pagination(items, "/links/next"),
            parent_id: parent_id.clone(),
            parent_key: parent_key.clone(),
        })
    }
}

/// The Zendesk source.
#[derive(Clone)]
pub struct ZendeskSource {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: ZendeskClient,
    catalog: Catalog,
    pub(crate) config: ZendeskConfig,
}

impl ZendeskSource {
    /// Builds the source; the account's budgets come from `budgets`
    /// (use [`weft_http::BudgetRegistry::global`] to share them process-wide).
    pub fn new(
        config: ZendeskConfig,
        budgets: &weft_http::BudgetRegistry,
    ) -> Result<Self, ZendeskError> {
        let client = ZendeskClient::new(&config, budgets)?;
        let catalog = crate::catalog()?;
        for stream in &catalog.streams {
            let opts: StreamOptions = stream.options()?;
            let problem = if opts.method != "get" {
                Some(format!("method `{}` is not `get`", opts.method))
            } else if opts.read == Read::List && opts.next.is_none() {
                Some("a list needs `next`".to_string())
            } else {
                None
            };
            if let Some(reason) = problem {
                return Err(ZendeskError::Config {
                    field: "streams",
                    reason: format!("catalog stream `{}`: {reason}", stream.spec.name),
                });
            }
        }
        Ok(ZendeskSource {
            inner: Arc::new(Inner {
                client,
                catalog,
                config,
            }),
        })
    }
}

#[async_trait]
impl Connector for ZendeskSource {
    type Error = ZendeskError;
    const NAME: &'static str = "zendesk";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        self.inner.catalog.specs()
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let metrics = StreamMetrics::default();
        let req = RequestSpec::get("/api/v2/groups.json").query("page[size]", "1");
        self.inner.client.http.send(&req, &metrics).await?;
        Ok(())
    }

    async fn read_stream(self, request: ReadRequest, tx: EventSender) -> Result<(), ZendeskError> {
        read_stream(&self.inner, request, &tx).await
    }
}

async fn read_stream(
    inner: &Inner,
    request: ReadRequest,
    tx: &EventSender,
) -> Result<(), ZendeskError> {
    let name = request.spec.name.clone();
    let stream = inner.catalog.require("zendesk", &name)?;
    let opts: StreamOptions = stream.options()?;
    match opts.read {
        Read::CursorExport | Read::Children => {
            export::by_cursor(inner, stream, &opts, &request, tx).await
        }
        Read::TimeExport => export::by_time(inner, stream, &opts, &request, tx).await,
        Read::List => read_list(inner, stream, &opts, &request, tx).await,
    }
}

/// A list read in full, ending with one checkpoint.
async fn read_list(
    inner: &Inner,
    stream: &CatalogStream,
    opts: &StreamOptions,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), ZendeskError> {
    let name = &stream.spec.name;
    let mut first = RequestSpec::get(endpoint(stream)?);
    if let Some(param) = &opts.page_size_param {
        first = first.query(param.clone(), MAX_LIST_PAGE.to_string());
    }
    let next = opts.next.as_deref().unwrap_or("/next_page");
    let mut pages = paginate(
        inner.client.http.clone(),
        first,
        ZendeskClient::list_pagination(&opts.items, next),
        Arc::clone(&request.metrics),
    );
    while let Some(page) = next_page(&mut pages, request, name).await? {
        if !page.records.is_empty() {
            send(tx, SourceEvent::Page(page.into_json_page()), name).await?;
        }
    }
    // Everything was read; the state only says when (the next run reads everything again).
    let state = StreamState(json!({ "synced_at": request.started_at.to_rfc3339() }));
    send(tx, SourceEvent::Checkpoint(state), name).await
}

pub(crate) fn endpoint(stream: &CatalogStream) -> Result<&str, ZendeskError> {
    stream
        .endpoint
        .as_deref()
        .ok_or_else(|| ZendeskError::UnknownStream {
            stream: stream.spec.name.clone(),
        })
}

/// The next page, or `None` at the end; stops promptly on cancellation.
pub(crate) async fn next_page(
    pages: &mut BoxStream<'static, Result<Page, HttpError>>,
    request: &ReadRequest,
    stream: &str,
) -> Result<Option<Page>, ZendeskError> {
    tokio::select! {
        biased;
        _ = request.cancel.cancelled() => Err(ZendeskError::Cancelled { stream: stream.to_string() }),
        page = pages.next() => page.transpose().map_err(ZendeskError::from),
    }
}

/// Sends an event to the pipeline; a closed channel means the run was stopped.
pub(crate) async fn send(
    tx: &EventSender,
    event: SourceEvent,
    stream: &str,
) -> Result<(), ZendeskError> {
    tx.send(Ok(event))
        .await
        .map_err(|_| ZendeskError::Cancelled {
            stream: stream.to_string(),
        })
}

/// A page of records as a [`JsonPage`].
pub(crate) fn json_page(records: Vec<Box<serde_json::value::RawValue>>) -> SourceEvent {
    SourceEvent::Page(JsonPage { records })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_stream_declares_how_it_is_read() {
        let catalog = crate::catalog().unwrap();
        let reads: Vec<(String, Read)> = catalog
            .streams
            .iter()
            .map(|s| {
                (
                    s.spec.name.clone(),
                    s.options::<StreamOptions>().unwrap().read,
                )
            })
            .collect();
        assert_eq!(
            reads,
            [
                ("tickets".to_string(), Read::CursorExport),
                ("users".to_string(), Read::CursorExport),
                ("organizations".to_string(), Read::TimeExport),
                ("ticket_fields".to_string(), Read::List),
                ("groups".to_string(), Read::List),
                ("ticket_comments".to_string(), Read::Children),
                ("brands".to_string(), Read::List),
                ("ticket_forms".to_string(), Read::List),
                ("user_fields".to_string(), Read::List),
                ("organization_fields".to_string(), Read::List),
                ("group_memberships".to_string(), Read::List),
                ("organization_memberships".to_string(), Read::List),
                ("macros".to_string(), Read::List),
                ("satisfaction_ratings".to_string(), Read::List),
                ("ticket_metrics".to_string(), Read::List),
            ]
        );
        // Every children stream says where its children are.
        for s in &catalog.streams {
            let opts: StreamOptions = s.options().unwrap();
            if opts.read == Read::Children {
                let list = opts.child_list(&s.spec.name).unwrap();
                assert!(list.path.contains("{id}"), "{}", list.path);
            }
        }
        assert!(catalog.stream("tickets").unwrap().deletes);
        assert!(!catalog.stream("users").unwrap().deletes);
    }
}
