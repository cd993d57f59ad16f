//! The source side: Intercom objects as streams.
//!
//! What differs per stream is declared in `specs/intercom.toml` under
//! `[streams.options]`: `read = "search"` (contacts, conversations: `POST
//! .../search` with `updated_at > cursor - 1`, sorted ascending, paged with
//! `pagination.starting_after` in the body; a large range is read in
//! concurrent slices, windows `> lo - 1 AND < hi` of `updated_at`, see
//! [`weft_http::read_sliced`]), `"scroll"` (companies: `GET
//! /companies/scroll` with `scroll_param` until an empty page) or `"list"`
//! (admins, tags, teams, segments, and the data attributes of contacts and
//! of companies: read in full, with the option's `query` parameters).
//!
//! Intercom allows one open company scroll per app, and a scroll page cannot
//! be asked for twice. When another scroll is open (`400 scroll_exists`) or
//! the scroll is interrupted, the companies are read from the paged list
//! (`fallback`, `GET /companies?page=N`) instead, and the run report says so.
//! A search re-reads its boundary second next run (the merge absorbs it); its
//! state is `{"updated_at": t}`, a safe watermark at least `settle_secs` old,
//! plus `slices` (the windows left) while a sliced search is unfinished.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::{Value, json};
use weft_core::{
    BoxError, Catalog, CatalogStream, Connector, EventSender, ReadRequest, SourceEvent,
    StreamMetrics, StreamSpec, StreamState,
};
use weft_http::{
    BudgetRegistry, ChildList, HttpError, Order, Page, Pagination, Parent, RequestSpec, SliceError,
    SlicePage, SliceState, SlicedList, Window, fetch_children, paginate, read_sliced,
};

use crate::client::IntercomClient;
use crate::{IntercomConfig, IntercomError};

/// Largest `per_page` of `GET /companies`.
const MAX_COMPANY_PAGE: u32 = 60;

/// How a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Read {
    /// `POST .../search` on `updated_at`.
    Search,
    /// The scroll API.
    Scroll,
    /// A list read in full.
    List,
    /// The children of a search's records: `POST .../search` on the
    /// parents' `updated_at`, then each parent's `child` object.
    Parts,
}

/// Per-stream options from the catalog's `[streams.options]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    /// HTTP method of the endpoint (`post` for searches, else `get`).
    method: String,
    /// Key of the records array in a response (`data`, `conversations`).
    items: String,
    /// How the stream is read.
    read: Read,
    /// Scrolls: the paged list read when another scroll is open.
    #[serde(default)]
    fallback: Option<String>,
    /// Lists: query parameters every request carries (`model = "contact"`
    /// for the data attributes of contacts).
    #[serde(default)]
    query: std::collections::BTreeMap<String, String>,
    /// Parts: the parent object's path, `{id}` standing for its id.
    #[serde(default)]
    child: Option<String>,
    /// Parts: JSON pointer to the children in the parent object.
    #[serde(default)]
    child_items: Option<String>,
}

/// Intercom as a source.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let config = weft_intercom::IntercomConfig::new(SecretRef::Env { env: "INTERCOM_ACCESS_TOKEN".into() });
/// let source = weft_intercom::IntercomSource::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct IntercomSource {
    inner: Arc<Inner>,
}

struct Inner {
    client: IntercomClient,
    catalog: Catalog,
    page_size: u32,
    settle_secs: u64,
    slices: weft_http::SliceSettings,
}

impl IntercomSource {
    /// A source for the app of `config.access_token`; its budget (shared with
    /// any sync on the same app) comes from `budgets`.
    pub fn new(
        config: &IntercomConfig,
        budgets: &BudgetRegistry,
    ) -> Result<IntercomSource, IntercomError> {
        let catalog = crate::catalog()?;
        for stream in &catalog.streams {
            let opts: StreamOptions = stream.options()?;
            let searched = matches!(opts.read, Read::Search | Read::Parts);
            let expected = if searched { "post" } else { "get" };
            let problem = if opts.method != expected {
                Some(format!("method `{}` should be `{expected}`", opts.method))
            } else if stream.endpoint.is_none() {
                Some("no endpoint".into())
            } else if searched && stream.spec.cursor_field.is_none() {
                Some("a search needs a cursor".into())
            } else if opts.read == Read::Parts
                && !(opts.child.as_deref().is_some_and(|c| c.contains("{id}"))
                    && opts.child_items.is_some())
            {
                Some("parts need `child` (with `{id}`) and `child_items`".into())
            } else {
                None
            };
            if let Some(reason) = problem {
                return Err(IntercomError::Config {
                    field: "streams",
                    reason: format!("catalog stream `{}`: {reason}", stream.spec.name),
                });
            }
        }
        Ok(IntercomSource {
            inner: Arc::new(Inner {
                client: IntercomClient::new(config, budgets)?,
                catalog,
                page_size: config.page_size,
                settle_secs: config.settle_secs,
                slices: config.slices.clone(),
            }),
        })
    }
}

#[async_trait]
impl Connector for IntercomSource {
    type Error = IntercomError;
    const NAME: &'static str = "intercom";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        self.inner.catalog.specs()
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let metrics = StreamMetrics::default();
        self.inner
            .client
            .http
            .send(&RequestSpec::get("admins"), &metrics)
            .await?;
        Ok(())
    }

    async fn read_stream(self, request: ReadRequest, tx: EventSender) -> Result<(), IntercomError> {
        read_stream(&self.inner, request, &tx).await
    }
}

async fn read_stream(
    inner: &Inner,
    request: ReadRequest,
    tx: &EventSender,
) -> Result<(), IntercomError> {
    let name = request.spec.name.clone();
    let stream = inner.catalog.require("intercom", &name)?;
    let opts: StreamOptions = stream.options()?;
    let endpoint = stream.endpoint.as_deref().unwrap_or_default();
    let items = format!("/{}", opts.items);
    match opts.read {
        Read::Search => {
            let search = SearchWindows {
                inner,
                endpoint,
                items,
                cursor: "updated_at",
                stream: &name,
                metrics: &request.metrics,
            };
            search_sliced(inner, stream, &search, &inner.slices, &request, tx).await
        }
        Read::Parts => {
            let search = SearchWindows {
                inner,
                endpoint,
                items,
                cursor: "updated_at",
                stream: &name,
                metrics: &request.metrics,
            };
            let parts = PartsOf::new(
                search,
                opts.child.as_deref().unwrap_or_default(),
                opts.child_items.as_deref().unwrap_or_default(),
            );
            // One page of parents at a time: its children are what is read
            // concurrently (see `PartsOf`).
            let settings = weft_http::SliceSettings {
                enabled: false,
                ..inner.slices.clone()
            };
            search_sliced(inner, stream, &parts, &settings, &request, tx).await
        }
        Read::Scroll => {
            scroll(
                inner,
                stream,
                endpoint,
                items,
                opts.fallback.as_deref(),
                &request,
                tx,
            )
            .await
        }
        Read::List => {
            let spec = opts
                .query
                .iter()
                .fold(RequestSpec::get(endpoint), |spec, (k, v)| spec.query(k, v));
            let pages = paginate(
                inner.client.http.clone(),
                spec,
                Pagination::PageToken {
                    items,
                    token: "/pages/next/starting_after".into(),
                    param: "starting_after".into(),
                },
                Arc::clone(&request.metrics),
            );
            read_in_full(pages, &request, tx).await
        }
    }
}

/// Sends every page, then one checkpoint saying when (the next run reads everything again).
async fn read_in_full(
    mut pages: BoxStream<'static, Result<Page, HttpError>>,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), IntercomError> {
    let name = &request.spec.name;
    while let Some(page) = next_page(&mut pages, request).await? {
        if !page.records.is_empty() {
            send(tx, SourceEvent::Page(page.into_json_page()), name).await?;
        }
    }
    finish_full_read(request, tx).await
}

/// The checkpoint ending a full read: when it started (the next run reads everything again).
async fn finish_full_read(request: &ReadRequest, tx: &EventSender) -> Result<(), IntercomError> {
    let state = StreamState(json!({ "synced_at": request.started_at.to_rfc3339() }));
    send(tx, SourceEvent::Checkpoint(state), &request.spec.name).await
}

/// Records changed since the saved cursor, through the search API, in
/// concurrent slices of `updated_at` (the state keeps it under the stream's
/// cursor name).
async fn search_sliced<L>(
    inner: &Inner,
    stream: &CatalogStream,
    list: &L,
    settings: &weft_http::SliceSettings,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), IntercomError>
where
    L: SlicedList<Error = IntercomError>,
{
    let name = &stream.spec.name;
    let endpoint = stream.endpoint.as_deref().unwrap_or_default();
    let cursor = stream.spec.cursor_field.as_deref().unwrap_or("updated_at");
    let saved: Option<i64> = request.state.as_ref().and_then(|s| s.get(cursor));
    let left = SliceState::from_value(request.state.as_ref().and_then(|s| s.0.get("slices")))
        .map_err(|reason| IntercomError::Shape {
            stream: name.clone(),
            endpoint: endpoint.to_string(),
            page: 0,
            reason: format!("saved state: {reason}"),
        })?;
    let settle = i64::try_from(inner.settle_secs).unwrap_or(i64::MAX);
    let now = request.started_at.timestamp();
    // The saved cursor's second is searched again (the merge absorbs it); the
    // top of the range leaves a day for a vendor clock ahead of ours (records
    // changed after it are read next run: the cursor stays below it).
    let plan = left.unwrap_or_else(|| {
        SliceState::plan(
            Window::new(saved.unwrap_or(0), now.saturating_add(86_400)),
            now.saturating_sub(settle),
        )
    });
    let done = read_sliced(
        list,
        inner.client.http.budget(),
        plan,
        settings,
        request,
        tx,
        |left| {
            let mut state = state_of(cursor, saved);
            state.0["slices"] = json!(left);
            state
        },
    )
    .await
    .map_err(|e| match e {
        SliceError::Source(e) => e,
        SliceError::Stopped => IntercomError::Cancelled {
            stream: name.clone(),
        },
        SliceError::Loop { window, cursor } => IntercomError::Shape {
            stream: name.clone(),
            endpoint: endpoint.to_string(),
            page: 0,
            reason: format!(
                "pagination loop: cursor {cursor} came back for updated_at in [{}, {})",
                window.lo, window.hi
            ),
        },
    })?;
    let state = state_of(cursor, done.cursor(saved));
    send(tx, SourceEvent::Checkpoint(state), name).await
}

/// One search endpoint, listed by windows of its cursor field, ascending.
struct SearchWindows<'a> {
    inner: &'a Inner,
    endpoint: &'a str,
    items: String,
    cursor: &'a str,
    stream: &'a str,
    metrics: &'a Arc<StreamMetrics>,
}

#[async_trait]
impl SlicedList for SearchWindows<'_> {
    type Error = IntercomError;

    fn order(&self) -> Order {
        Order::Ascending
    }

    async fn page(
        &self,
        window: Window,
        after: Option<&Value>,
    ) -> Result<SlicePage, IntercomError> {
        // A search cursor belongs to its query: a continued page repeats the
        // window it started with (records past a narrowed window are dropped).
        let (lo, hi) = match after {
            Some(a) => (
                a["lo"].as_i64().unwrap_or(window.lo),
                a["hi"].as_i64().unwrap_or(window.hi),
            ),
            None => (window.lo, window.hi),
        };
        let field = self.cursor;
        let mut body = json!({
            // `>` and `<` are the bounds Intercom offers: `> lo - 1` includes lo.
            "query": {"operator": "AND", "value": [
                {"field": field, "operator": ">", "value": lo.saturating_sub(1)},
                {"field": field, "operator": "<", "value": hi},
            ]},
            "sort": {"field": field, "order": "ascending"},
            "pagination": {"per_page": self.inner.page_size},
        });
        if let Some(c) = after.and_then(|a| a.get("starting_after")) {
            body["pagination"]["starting_after"] = c.clone();
        }
        // A search changes nothing: safe to repeat.
        let first = RequestSpec::post_json(self.endpoint, body).idempotent(true);
        let mut pages = paginate(
            self.inner.client.http.clone(),
            first,
            Pagination::JsonBodyCursor {
                items: self.items.clone(),
                cursor: "/pages/next/starting_after".into(),
                body_field: "/pagination/starting_after".into(),
            },
            Arc::clone(self.metrics),
        );
        let Some(page) = pages.next().await.transpose()? else {
            return Ok(SlicePage::default());
        };
        let mut records = Vec::with_capacity(page.records.len());
        for raw in page.records {
            let v: Value = serde_json::from_str(raw.get()).map_err(|e| IntercomError::Shape {
                stream: self.stream.to_string(),
                endpoint: self.endpoint.to_string(),
                page: 1,
                reason: format!("record is not JSON: {e}"),
            })?;
            let t = v[field].as_i64().ok_or_else(|| IntercomError::Shape {
                stream: self.stream.to_string(),
                endpoint: self.endpoint.to_string(),
                page: 1,
                reason: format!("record {} has no integer `{field}`", v["id"]),
            })?;
            records.push((Some(t), raw));
        }
        Ok(SlicePage {
            records,
            next: page
                .next_cursor
                .map(|c| json!({"starting_after": c, "lo": lo, "hi": hi})),
            reached: None,
        })
    }
}

/// The children of a search's parents (a conversation's parts): each page
/// of parents is searched as [`SearchWindows`] does, then every parent's
/// `child` object is read by [`weft_http::fetch_children`]; its children are
/// the page's records, keyed by their parent's `updated_at`.
struct PartsOf<'a> {
    search: SearchWindows<'a>,
    children: ChildList,
}

impl<'a> PartsOf<'a> {
    /// `child` is the parent's path (`/conversations/{id}`), `items` the
    /// pointer to the children in it; each child gets `conversation_id` and
    /// `conversation_updated_at`.
    fn new(search: SearchWindows<'a>, child: &str, items: &str) -> Self {
        PartsOf {
            search,
            children: ChildList {
                path: child.to_string(),
                query: Vec::new(),
                // One object, no next link: one page.
                pagination: Pagination::LinkHeader {
                    items: items.to_string(),
                },
                parent_id: "conversation_id".into(),
                parent_key: "conversation_updated_at".into(),
            },
        }
    }
}

#[async_trait]
impl SlicedList for PartsOf<'_> {
    type Error = IntercomError;

    fn order(&self) -> Order {
        Order::Ascending
    }

    async fn page(
        &self,
        window: Window,
        after: Option<&Value>,
    ) -> Result<SlicePage, IntercomError> {
        let listed = self.search.page(window, after).await?;
        let reached = listed.records.iter().filter_map(|(k, _)| *k).max();
        let mut parents = Vec::with_capacity(listed.records.len());
        for (key, raw) in &listed.records {
            let (Some(key), Ok(head)) = (key, serde_json::from_str::<ParentId>(raw.get())) else {
                continue;
            };
            // Intercom's ids are strings; a number is kept as its digits.
            let id = head
                .id
                .as_str()
                .map_or_else(|| head.id.to_string(), str::to_owned);
            parents.push(Parent {
                id: Value::from(id),
                key: Value::from(*key),
            });
        }
        let http = &self.search.inner.client.http;
        let children = fetch_children(http, &self.children, parents, self.search.metrics).await?;
        let records = children
            .into_iter()
            .map(|raw| {
                let key = serde_json::from_str::<ParentKey>(raw.get())
                    .ok()
                    .map(|p| p.conversation_updated_at);
                (key, raw)
            })
            .collect();
        Ok(SlicePage {
            records,
            next: listed.next,
            reached,
        })
    }
}

/// The id of a listed parent (a string in Intercom, a number tolerated).
#[derive(Deserialize)]
struct ParentId {
    id: Value,
}

/// The key [`fetch_children`] stamped on a part.
#[derive(Deserialize)]
struct ParentKey {
    conversation_updated_at: i64,
}

fn state_of(cursor: &str, value: Option<i64>) -> StreamState {
    match value {
        Some(t) => StreamState(json!({ cursor: t })),
        None => StreamState(json!({})),
    }
}

/// Every company through the scroll API, or the paged list when the scroll
/// cannot be used.
///
/// A scroll page cannot be asked for twice: the scroll moves on when it
/// answers, so retrying a response lost in transit (a reset, a cut body, a
/// 5xx) would silently skip a page. Scroll requests are therefore never
/// retried after they were sent; when another scroll is open
/// (`scroll_exists`) or this one is interrupted, every company is read again
/// from the paged list (records already sent are sent again; the merge on
/// the primary key absorbs them) and the report says why.
async fn scroll(
    inner: &Inner,
    stream: &CatalogStream,
    endpoint: &str,
    items: String,
    fallback: Option<&str>,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), IntercomError> {
    let name = &stream.spec.name;
    let mut pages = paginate(
        inner.client.http.clone(),
        RequestSpec::get(endpoint).idempotent(false),
        Pagination::Scroll {
            items: items.clone(),
            scroll_id: "/scroll_param".into(),
            param: "scroll_param".into(),
        },
        Arc::clone(&request.metrics),
    );
    let mut read = 0u64;
    let failure = loop {
        match next_page(&mut pages, request).await {
            Ok(Some(page)) => {
                read += 1;
                if !page.records.is_empty() {
                    send(tx, SourceEvent::Page(page.into_json_page()), name).await?;
                }
            }
            Ok(None) => return finish_full_read(request, tx).await,
            Err(IntercomError::Http(e)) if fallback.is_some() => break e,
            Err(e) => return Err(e),
        }
    };
    let list = fallback.unwrap_or_default();
    let why = if read == 0 && scroll_exists(&failure) {
        format!("another {endpoint} scroll is open on this Intercom app (one per app)")
    } else {
        format!("the {endpoint} scroll was interrupted after {read} pages ({failure})")
    };
    let msg = format!("{why}: read {name} from the paged list {list} instead");
    send(tx, SourceEvent::Notice(msg), name).await?;
    let pages = paginate(
        inner.client.http.clone(),
        RequestSpec::get(list)
            .query("per_page", MAX_COMPANY_PAGE.to_string())
            .query("page", "1"),
        Pagination::PageNumber {
            items,
            param: "page".into(),
            first_page: 1,
            total_pages: Some("/pages/total_pages".into()),
        },
        Arc::clone(&request.metrics),
    );
    read_in_full(pages, request, tx).await
}

/// Whether an error is Intercom's "a scroll is already open for this app".
fn scroll_exists(e: &HttpError) -> bool {
    let HttpError::Status { status, body, .. } = e else {
        return false;
    };
    *status == 400
        && serde_json::from_str::<Value>(body).is_ok_and(|v| {
            v["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|err| err["code"] == "scroll_exists")
        })
}

/// The next page, or `None` at the end; stops promptly on cancellation.
async fn next_page(
    pages: &mut BoxStream<'static, Result<Page, HttpError>>,
    request: &ReadRequest,
) -> Result<Option<Page>, IntercomError> {
    tokio::select! {
        biased;
        _ = request.cancel.cancelled() => Err(IntercomError::Cancelled { stream: request.spec.name.clone() }),
        page = pages.next() => page.transpose().map_err(IntercomError::from),
    }
}

/// Sends an event to the pipeline; a closed channel means the run was stopped.
async fn send(tx: &EventSender, event: SourceEvent, stream: &str) -> Result<(), IntercomError> {
    tx.send(Ok(event))
        .await
        .map_err(|_| IntercomError::Cancelled {
            stream: stream.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scroll_exists_is_recognised_by_its_code() {
        let status = |status: u16, body: &str| HttpError::Status {
            api: "intercom".into(),
            method: "GET".into(),
            status,
            url: "https://api.intercom.io/companies/scroll".into(),
            body: body.into(),
        };
        let open = r#"{"type":"error.list","errors":[{"code":"scroll_exists","message":"scroll already exists for this workspace"}]}"#;
        assert!(scroll_exists(&status(400, open)));
        assert!(!scroll_exists(&status(404, open)));
        assert!(!scroll_exists(&status(
            400,
            r#"{"errors":[{"code":"parameter_invalid"}]}"#
        )));
    }

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
                ("contacts".to_string(), Read::Search),
                ("companies".to_string(), Read::Scroll),
                ("conversations".to_string(), Read::Search),
                ("admins".to_string(), Read::List),
                ("tags".to_string(), Read::List),
                ("conversation_parts".to_string(), Read::Parts),
                ("teams".to_string(), Read::List),
                ("segments".to_string(), Read::List),
                ("contact_attributes".to_string(), Read::List),
                ("company_attributes".to_string(), Read::List),
            ]
        );
        assert_eq!(
            state_of("updated_at", Some(5)),
            StreamState(json!({"updated_at": 5}))
        );
        assert_eq!(state_of("updated_at", None), StreamState(json!({})));
    }
}
