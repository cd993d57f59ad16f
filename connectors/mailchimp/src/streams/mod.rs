//! Mailchimp lists as streams: audiences, their members, segments and
//! interest categories, campaigns and their unsubscribes.
//!
//! Every list endpoint is paged with `count`/`offset` and says how many
//! records it holds (`total_items`): [`Pagination::Offset`]. What differs
//! per stream is declared in `specs/mailchimp.toml` under
//! `[streams.options]`: the key holding the records (`items`), the parent
//! stream the endpoint is read under (`parent = "lists"`: one listing per
//! audience, `{list_id}` in the endpoint; `"campaigns"`: one per campaign,
//! every campaign whatever the parent's own cursor), the change filter (`since_param`,
//! `since_last_changed`) and the field it sorts on (`sort_field`), and
//! whether archived members are read as well (`archived`: Mailchimp leaves
//! them out unless asked for with `status=archived`).
//!
//! A stream with a cursor is read newest first (`sort_dir=DESC`) from its
//! saved cursor: a record that changes while the read pages through it
//! moves to the front, so it shifts later records back (read twice, which
//! the merge absorbs) rather than forward past the reader (skipped). Each
//! listing's cursor is a [`Watermark`] (the largest cursor read, held
//! `settle_secs` behind the extraction's start), saved when the listing is
//! finished; the checkpoint after every other page records the next offset
//! ([`state`]). Audiences are read one after the other, every request
//! through the account's one budget (10 connections, shared with syncs).
//! `lists`, `segments`, `interest_categories` and `unsubscribes` have no
//! sortable change filter: they are read in full every run (one checkpoint
//! at the end) and merged on their keys.

mod state;

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use weft_core::{
    BoxError, Catalog, CatalogStream, Connector, EventSender, ReadRequest, SourceEvent,
    StreamMetrics, StreamSpec, StreamState, Watermark,
};
use weft_http::{BudgetRegistry, HttpError, Page, Pagination, RequestSpec, paginate};

use self::state::{Cursors, Progress, iso, parse_iso};
use crate::client::MailchimpClient;
use crate::{MailchimpConfig, MailchimpError};

/// Per-stream options from the catalog's `[streams.options]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    /// Key of the records array in a list response (`members`).
    items: String,
    /// The stream whose records (audiences) this stream is read under; the
    /// endpoint has one `{...}` placeholder for the parent's `id`.
    #[serde(default)]
    parent: Option<String>,
    /// Query parameter taking the saved cursor (`since_last_changed`).
    #[serde(default)]
    since_param: Option<String>,
    /// `sort_field` value sorting the listing by the cursor (`last_changed`).
    #[serde(default)]
    sort_field: Option<String>,
    /// Whether archived records are read too, in a second listing with
    /// `status=archived`.
    #[serde(default)]
    archived: bool,
}

/// Mailchimp as a source.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let config = weft_mailchimp::MailchimpConfig::source(SecretRef::Env {
///     env: "MAILCHIMP_API_KEY".into(),
/// });
/// let source = weft_mailchimp::MailchimpSource::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MailchimpSource {
    inner: Arc<Inner>,
}

struct Inner {
    client: MailchimpClient,
    catalog: Catalog,
    page_size: u32,
    settle_secs: i64,
}

impl MailchimpSource {
    /// A source for the account of `config.api_key`; its budget (shared with
    /// any sync on the same account) comes from `budgets`.
    pub fn new(
        config: &MailchimpConfig,
        budgets: &BudgetRegistry,
    ) -> Result<MailchimpSource, MailchimpError> {
        let catalog = crate::catalog()?;
        check_catalog(&catalog)?;
        Ok(MailchimpSource {
            inner: Arc::new(Inner {
                client: MailchimpClient::new(config, budgets)?,
                catalog,
                page_size: config.page_size,
                settle_secs: i64::try_from(config.settle_secs).unwrap_or(i64::MAX),
            }),
        })
    }
}

/// Every stream has an endpoint; a parent is a declared stream without a
/// parent of its own, and a child's endpoint has its placeholder; a change
/// filter goes with a cursor and a sort field.
fn check_catalog(catalog: &Catalog) -> Result<(), MailchimpError> {
    for stream in &catalog.streams {
        let bad = |reason: &str| MailchimpError::Config {
            field: "streams",
            reason: format!("catalog stream `{}`: {reason}", stream.spec.name),
        };
        let opts: StreamOptions = stream.options()?;
        let endpoint = stream
            .endpoint
            .as_deref()
            .ok_or_else(|| bad("no endpoint"))?;
        if let Some(parent) = &opts.parent {
            let top = catalog
                .stream(parent)
                .map(|p| p.options::<StreamOptions>())
                .transpose()?
                .is_some_and(|p| p.parent.is_none());
            if !top {
                return Err(bad("its parent is not a declared top-level stream"));
            }
            template(endpoint).ok_or_else(|| bad("endpoint has no `{id}` placeholder"))?;
        }
        let incremental = stream.spec.cursor_field.is_some();
        if incremental != (opts.since_param.is_some() && opts.sort_field.is_some()) {
            return Err(bad(
                "a cursor needs a change filter (`since_param`) and a `sort_field`, and they a cursor",
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl Connector for MailchimpSource {
    type Error = MailchimpError;
    const NAME: &'static str = "mailchimp";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        self.inner.catalog.specs()
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let metrics = StreamMetrics::default();
        self.inner
            .client
            .http
            .send(&RequestSpec::get("ping"), &metrics)
            .await?;
        Ok(())
    }

    async fn read_stream(
        self,
        request: ReadRequest,
        tx: EventSender,
    ) -> Result<(), MailchimpError> {
        read_stream(&self.inner, request, &tx).await
    }
}

/// One paged `GET`: a stream's endpoint, or its endpoint for one audience.
struct Listing {
    /// The key its cursor is saved under (`""`, `<list_id>`, `<list_id>/archived`).
    key: String,
    /// The path read.
    path: String,
    /// Whether it lists archived records (`status=archived`).
    archived: bool,
}

async fn read_stream(
    inner: &Inner,
    request: ReadRequest,
    tx: &EventSender,
) -> Result<(), MailchimpError> {
    let name = request.spec.name.clone();
    let stream = inner.catalog.require("mailchimp", &name)?;
    let opts: StreamOptions = stream.options()?;
    let endpoint = stream.endpoint.clone().unwrap_or_default();
    let listings = match &opts.parent {
        None => vec![Listing {
            key: String::new(),
            path: endpoint.clone(),
            archived: false,
        }],
        Some(parent) => {
            let (head, tail) = template(&endpoint).ok_or_else(|| MailchimpError::Config {
                field: "streams",
                reason: format!("endpoint `{endpoint}` has no `{{id}}` placeholder"),
            })?;
            let mut listings = Vec::new();
            for id in parent_ids(inner, parent, &request).await? {
                let path = format!("{head}{}{tail}", encode_segment(&id));
                if opts.archived {
                    listings.push(Listing {
                        key: id.clone(),
                        path: path.clone(),
                        archived: false,
                    });
                    listings.push(Listing {
                        key: format!("{id}/archived"),
                        path,
                        archived: true,
                    });
                } else {
                    listings.push(Listing {
                        key: id,
                        path,
                        archived: false,
                    });
                }
            }
            listings
        }
    };
    match &stream.spec.cursor_field {
        Some(cursor) => incremental(inner, stream, &opts, cursor, listings, &request, tx).await,
        None => {
            for listing in &listings {
                let mut pages = pages(
                    inner,
                    &opts,
                    listing,
                    RequestSpec::get(&listing.path),
                    &request,
                );
                while let Some(page) = next(&mut pages, &request).await? {
                    count_listing(&page, 0, &request);
                    if !page.records.is_empty() {
                        send(tx, SourceEvent::Page(page.into_json_page()), &name).await?;
                    }
                }
            }
            // Everything was read; the state only says when (the next run reads everything again).
            let state = StreamState(json!({ "synced_at": request.started_at.to_rfc3339() }));
            send(tx, SourceEvent::Checkpoint(state), &name).await
        }
    }
}

/// Reads every listing from its saved cursor, newest first, checkpointing
/// after every page.
async fn incremental(
    inner: &Inner,
    stream: &CatalogStream,
    opts: &StreamOptions,
    cursor: &str,
    listings: Vec<Listing>,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), MailchimpError> {
    let name = &stream.spec.name;
    let endpoint = stream.endpoint.as_deref().unwrap_or_default();
    let per_parent = opts.parent.is_some();
    let shape = |reason: String| MailchimpError::Shape {
        stream: name.clone(),
        endpoint: endpoint.to_string(),
        reason,
    };
    let mut cursors =
        Cursors::from_state(request.state.as_ref(), cursor, per_parent).map_err(shape)?;
    let since_param = opts.since_param.as_deref().unwrap_or_default();
    let sort_field = opts.sort_field.as_deref().unwrap_or_default();
    for listing in &listings {
        let since = cursors.done.get(&listing.key).copied();
        let mut watermark =
            Watermark::new(since, request.started_at.timestamp(), inner.settle_secs);
        let mut first = RequestSpec::get(&listing.path)
            .query("sort_field", sort_field)
            .query("sort_dir", "DESC");
        if let Some(t) = since {
            first = first.query(since_param, iso(t));
        }
        // A resumed listing continues at the offset its checkpoint saved,
        // with the largest cursor read before it.
        let mut start = 0;
        if let Some(p) = cursors.progress.take_if(|p| p.listing == listing.key) {
            if let Some(t) = p.max_seen.as_deref().and_then(parse_iso) {
                watermark.observe(t);
            }
            first = first.query("offset", p.offset.to_string());
            start = p.offset;
        }
        let mut pages = pages(inner, opts, listing, first, request);
        while let Some(page) = next(&mut pages, request).await? {
            count_listing(&page, start, request);
            for record in &page.records {
                // A record without a readable cursor still loads; it just
                // cannot move the watermark.
                if let Some(t) = cursor_of(record, cursor) {
                    watermark.observe(t);
                }
            }
            let next_offset = page.next_cursor.as_deref().and_then(|o| o.parse().ok());
            if !page.records.is_empty() {
                send(tx, SourceEvent::Page(page.into_json_page()), name).await?;
            }
            if let Some(offset) = next_offset {
                cursors.progress = Some(Progress {
                    listing: listing.key.clone(),
                    offset,
                    max_seen: watermark.max_seen().map(iso),
                });
                let state = cursors.to_state(cursor, per_parent);
                send(tx, SourceEvent::Checkpoint(state), name).await?;
            }
        }
        cursors.progress = None;
        if let Some(t) = watermark.value() {
            cursors.done.insert(listing.key.clone(), t);
        }
        let state = cursors.to_state(cursor, per_parent);
        send(tx, SourceEvent::Checkpoint(state), name).await?;
    }
    if listings.is_empty() {
        let state = cursors.to_state(cursor, per_parent);
        send(tx, SourceEvent::Checkpoint(state), name).await?;
    }
    Ok(())
}

/// The pages of one listing, from `first` (which holds the filters).
fn pages(
    inner: &Inner,
    opts: &StreamOptions,
    listing: &Listing,
    mut first: RequestSpec,
    request: &ReadRequest,
) -> BoxStream<'static, Result<Page, HttpError>> {
    if listing.archived {
        first = first.query("status", "archived");
    }
    paginate(
        inner.client.http.clone(),
        first,
        Pagination::Offset {
            items: format!("/{}", opts.items),
            offset_param: "offset".into(),
            count_param: "count".into(),
            page_size: inner.page_size,
            total: Some("/total_items".into()),
        },
        Arc::clone(&request.metrics),
    )
}

/// Adds what a listing's first page says it holds (`total_items`, less the
/// `start` offset a resumed listing skips) to the stream's source count, for
/// the completeness check.
fn count_listing(page: &Page, start: u64, request: &ReadRequest) {
    if let Some(total) = page.listing_total("total_items") {
        request
            .metrics
            .add_source_count(total.saturating_sub(start));
    }
}

/// The ids of every record of the top-level stream `parent` (the audiences).
async fn parent_ids(
    inner: &Inner,
    parent: &str,
    request: &ReadRequest,
) -> Result<Vec<String>, MailchimpError> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let stream = inner.catalog.require("mailchimp", parent)?;
    let opts: StreamOptions = stream.options()?;
    let endpoint = stream.endpoint.clone().unwrap_or_default();
    let listing = Listing {
        key: String::new(),
        path: endpoint.clone(),
        archived: false,
    };
    let mut pages = pages(inner, &opts, &listing, RequestSpec::get(&endpoint), request);
    let mut ids: Vec<String> = Vec::new();
    while let Some(page) = next(&mut pages, request).await? {
        for record in &page.records {
            let Id { id } =
                serde_json::from_str(record.get()).map_err(|e| MailchimpError::Shape {
                    stream: request.spec.name.clone(),
                    endpoint: endpoint.clone(),
                    reason: format!("a {parent} record without a string `id`: {e}"),
                })?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// The cursor field of a record, as unix seconds (`None`: absent or not a time).
fn cursor_of(record: &RawValue, field: &str) -> Option<i64> {
    let value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(record.get()).ok()?;
    value.get(field)?.as_str().and_then(parse_iso)
}

/// The endpoint around its `{...}` placeholder.
fn template(endpoint: &str) -> Option<(&str, &str)> {
    let open = endpoint.find('{')?;
    let close = open + endpoint[open..].find('}')?;
    Some((&endpoint[..open], &endpoint[close + 1..]))
}

/// `s` with every byte outside RFC 3986's unreserved set percent-encoded.
fn encode_segment(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The next page, or `None` at the end; stops promptly on cancellation.
async fn next(
    pages: &mut BoxStream<'static, Result<Page, HttpError>>,
    request: &ReadRequest,
) -> Result<Option<Page>, MailchimpError> {
    tokio::select! {
        biased;
        _ = request.cancel.cancelled() => Err(MailchimpError::Cancelled { stream: request.spec.name.clone() }),
        page = pages.next() => page.transpose().map_err(MailchimpError::from),
    }
}

/// Sends an event to the pipeline; a closed channel means the run was stopped.
async fn send(tx: &EventSender, event: SourceEvent, stream: &str) -> Result<(), MailchimpError> {
    tx.send(Ok(event))
        .await
        .map_err(|_| MailchimpError::Cancelled {
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
                "lists",
                "list_members",
                "campaigns",
                "segments",
                "interest_categories",
                "unsubscribes"
            ]
        );
        let o: StreamOptions = catalog.stream("unsubscribes").unwrap().options().unwrap();
        assert_eq!(o.parent.as_deref(), Some("campaigns"));
        for child in ["segments", "interest_categories"] {
            let s = catalog.stream(child).unwrap();
            let o: StreamOptions = s.options().unwrap();
            assert_eq!(o.parent.as_deref(), Some("lists"), "{child}");
            assert_eq!(s.spec.primary_key, ["list_id", "id"], "{child}");
            assert_eq!(s.spec.cursor_field, None, "{child}");
        }
        let members = catalog.stream("list_members").unwrap();
        let o: StreamOptions = members.options().unwrap();
        assert_eq!(o.parent.as_deref(), Some("lists"));
        assert_eq!(o.since_param.as_deref(), Some("since_last_changed"));
        assert!(o.archived);
        assert_eq!(members.spec.primary_key, ["list_id", "id"]);
        assert_eq!(members.spec.cursor_field.as_deref(), Some("last_changed"));
        let campaigns = catalog.stream("campaigns").unwrap();
        assert_eq!(campaigns.spec.cursor_field.as_deref(), Some("create_time"));
        assert_eq!(catalog.stream("lists").unwrap().spec.cursor_field, None);
    }

    #[test]
    fn a_source_shares_the_budget_of_a_sync_on_the_same_key() {
        let key = weft_core::SecretRef::File {
            file: {
                let dir = std::env::temp_dir().join(format!("weft-mc-src-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let f = dir.join("key");
                std::fs::write(&f, "k9-us3").unwrap();
                f
            },
        };
        let registry = BudgetRegistry::new();
        let mut source_config = MailchimpConfig::source(key.clone());
        source_config.requests_per_second = Some(5.0);
        let source = MailchimpSource::new(&source_config, &registry).unwrap();
        let sync = MailchimpClient::new(&MailchimpConfig::new(key, "list1"), &registry).unwrap();
        let budget = source.inner.client.http.budget();
        assert!(Arc::ptr_eq(budget, sync.http.budget()));
        assert_eq!(budget.limits().max_concurrent, Some(10));
        assert_eq!(budget.limits().requests_per_second, Some(5.0));
        assert_eq!(source.inner.page_size, 1000);
        assert_eq!(source.inner.settle_secs, 60);
    }

    #[test]
    fn templates_segments_and_cursors() {
        assert_eq!(
            template("/lists/{list_id}/members"),
            Some(("/lists/", "/members"))
        );
        assert_eq!(template("/lists"), None);
        assert_eq!(encode_segment("a1 b/c"), "a1%20b%2Fc");
        let r = RawValue::from_string(
            r#"{"id":"x","last_changed":"2023-11-14T22:13:20+00:00","n":1}"#.into(),
        )
        .unwrap();
        assert_eq!(cursor_of(&r, "last_changed"), Some(1_700_000_000));
        assert_eq!(cursor_of(&r, "create_time"), None);
    }
}
