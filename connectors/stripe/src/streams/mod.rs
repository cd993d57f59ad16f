//! Stripe list objects as streams: the entity list plus the events that change it.
//!
//! Every Stripe list object is read the same way; what differs per stream
//! (endpoint, object name, the event types that update or delete it, fixed
//! list parameters such as subscriptions' `status=all`) is declared in
//! `specs/stripe.toml`. The read order within a run is: events
//! since the saved events cursor (newest state of each changed object), then
//! objects created since the saved `created` cursor; the entity list is read
//! last, so its fresher rows win the merge.

mod events;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use weft_core::{
    BoxError, Catalog, Connector, EventSender, ReadRequest, SourceEvent, StreamSpec, StreamState,
};
use weft_http::{
    BudgetRegistry, Order, RequestSpec, SliceError, SlicePage, SliceState, SlicedList, Window,
    paginate, read_sliced,
};

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
    /// Query parameters every list request of the stream sends (subscriptions:
    /// `status = "all"`, or Stripe leaves canceled ones out).
    #[serde(default)]
    pub(crate) list_params: BTreeMap<String, String>,
    /// A field whose value (Unix seconds) marks a listed object deleted then,
    /// as its `*.deleted` event does (subscriptions: `ended_at`), so a full
    /// re-read keeps the deletions the events reported; null: not deleted.
    #[serde(default)]
    pub(crate) deleted_at_field: Option<String>,
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
///
/// `slices` is present while a sliced list read is unfinished (what is left
/// of it); states saved before sliced reads had no `slices` and resume as a
/// list read from `created`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Cursor {
    /// Objects created at or after this (Unix seconds) are read from the list.
    created: Option<i64>,
    /// Events created at or after this are read for changes.
    events_created: Option<i64>,
    /// The unfinished sliced list read, if one is under way.
    slices: Option<SliceState>,
}

impl Cursor {
    fn from_state(state: Option<&StreamState>, stream: &str) -> Result<Cursor, StripeError> {
        let Some(s) = state else {
            return Ok(Cursor::default());
        };
        let slices =
            SliceState::from_value(s.0.get("slices")).map_err(|reason| StripeError::State {
                stream: stream.to_string(),
                reason,
            })?;
        Ok(Cursor {
            created: s.get("created"),
            events_created: s.get("events_created"),
            slices,
        })
    }

    fn to_state(&self) -> StreamState {
        let mut v = json!({});
        if let Some(c) = self.created {
            v["created"] = json!(c);
        }
        if let Some(e) = self.events_created {
            v["events_created"] = json!(e);
        }
        if let Some(s) = &self.slices {
            v["slices"] = json!(s);
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
    let saved = Cursor::from_state(request.state.as_ref(), &name)?;
    let now = request.started_at.timestamp();
    let settle = i64::try_from(inner.config.settle_secs).unwrap_or(i64::MAX);
    let retention = i64::try_from(inner.config.events_retention_days)
        .unwrap_or(i64::MAX / 86_400)
        .saturating_mul(86_400);

    // Something was read before: a committed cursor, or part of a sliced read.
    let read_before = saved.created.is_some() || saved.slices.is_some();
    let mut full_read = !read_before;
    let mut slices = saved.slices.clone();
    let mut next = saved.clone();
    if !options.events.is_empty() {
        match saved.events_created {
            Some(since) if read_before && since > now - retention => {
                events::read_changes(inner, stream, &options, since, &request, tx).await?;
            }
            Some(since) if read_before => {
                full_read = true;
                slices = None;
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

    // A sliced read under way resumes; otherwise one is planned: everything
    // on a full read, objects newer than the cursor on an incremental one. A
    // saved cursor is at least `settle` seconds older than the run that saved
    // it, so every object created in its second was listed then: a settled
    // cursor needs only newer objects. Without a settle delay the cursor's own
    // second is read again (the merge absorbs the overlap).
    let plan = slices.unwrap_or_else(|| {
        let lo = match saved.created {
            Some(c) if !full_read && settle > 0 => c.saturating_add(1),
            Some(c) if !full_read => c,
            _ => i64::MIN,
        };
        SliceState::plan(Window::new(lo, i64::MAX), now.saturating_sub(settle))
    });
    let list = StripeList {
        inner,
        endpoint: stream.endpoint.as_deref().unwrap_or_default(),
        params: &options.list_params,
        deleted_at_field: options.deleted_at_field.as_deref(),
        stream: &name,
        metrics: &request.metrics,
    };
    // While the list is read, resuming means: the events already read, the
    // slices left.
    let resume = Cursor {
        created: if full_read { None } else { saved.created },
        events_created: next.events_created,
        slices: None,
    };
    let done = read_sliced(
        &list,
        inner.client.http.budget(),
        plan,
        &inner.config.slices,
        &request,
        tx,
        |left| {
            Cursor {
                slices: Some(left.clone()),
                ..resume.clone()
            }
            .to_state()
        },
    )
    .await
    .map_err(|e| match e {
        SliceError::Source(e) => e,
        SliceError::Stopped => StripeError::Cancelled {
            stream: name.clone(),
        },
        SliceError::Loop { window, cursor } => StripeError::Shape {
            stream: name.clone(),
            endpoint: list.endpoint.to_string(),
            page: 0,
            reason: format!(
                "pagination loop: starting_after={} came back as the next cursor of created in \
                 [{}, {})",
                cursor.as_str().unwrap_or_default(),
                window.lo,
                window.hi
            ),
        },
    })?;
    next.created = done.cursor(resume.created).or(saved.created);
    next.slices = None;
    send(tx, SourceEvent::Checkpoint(next.to_state()), &name).await
}

/// One Stripe list endpoint, listed by windows of `created`.
struct StripeList<'a> {
    inner: &'a Inner,
    endpoint: &'a str,
    /// Sent with every request of the list.
    params: &'a BTreeMap<String, String>,
    /// Marks listed objects deleted (see [`StreamOptions::deleted_at_field`]).
    deleted_at_field: Option<&'a str>,
    stream: &'a str,
    metrics: &'a Arc<weft_core::StreamMetrics>,
}

#[async_trait]
impl SlicedList for StripeList<'_> {
    type Error = StripeError;

    fn order(&self) -> Order {
        Order::Descending
    }

    async fn page(
        &self,
        window: Window,
        after: Option<&serde_json::Value>,
    ) -> Result<SlicePage, StripeError> {
        let mut first = self.inner.client.list(self.endpoint);
        for (key, value) in self.params {
            first = first.query(key.clone(), value.clone());
        }
        if window.lo > i64::MIN {
            first = first.query("created[gte]", window.lo.to_string());
        }
        if window.hi < i64::MAX {
            first = first.query("created[lt]", window.hi.to_string());
        }
        if let Some(id) = after.and_then(serde_json::Value::as_str) {
            first = first.query("starting_after", id);
        }
        let mut pages = paginate(
            self.inner.client.http.clone(),
            first,
            StripeClient::pagination(),
            Arc::clone(self.metrics),
        );
        let Some(page) = pages.next().await.transpose()? else {
            return Ok(SlicePage::default());
        };
        // Lists are newest first: the first record must say where the page
        // is; a later record without an integer `created` is still loaded
        // (the decoder quarantines it) and moves nothing.
        if let Some(head) = page.records.first() {
            created_of(head.get()).map_err(|reason| StripeError::Shape {
                stream: self.stream.to_string(),
                endpoint: self.endpoint.to_string(),
                page: 1,
                reason,
            })?;
        }
        let records = page
            .records
            .into_iter()
            .map(|r| match self.deleted_at_field {
                Some(field) => events::mark_if_set(r, field),
                None => r,
            })
            .map(|r| (created_of(r.get()).ok(), r))
            .collect();
        Ok(SlicePage {
            records,
            next: page.next_cursor.map(serde_json::Value::String),
            reached: None,
        })
    }
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
            slices: None,
        };
        assert_eq!(Cursor::from_state(Some(&c.to_state()), "s").unwrap(), c);
        assert_eq!(Cursor::from_state(None, "s").unwrap(), Cursor::default());
        let sliced = Cursor {
            slices: Some(SliceState::plan(Window::new(5, 50), 40)),
            ..c.clone()
        };
        assert_eq!(
            Cursor::from_state(Some(&sliced.to_state()), "s").unwrap(),
            sliced
        );
        // A state saved before sliced reads resumes as it did.
        let old = StreamState(json!({"created": 10, "events_created": 20}));
        assert_eq!(Cursor::from_state(Some(&old), "s").unwrap(), c);
        let future = StreamState(json!({"slices": {"v": 99, "windows": [], "ceiling": 0}}));
        let err = Cursor::from_state(Some(&future), "s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 99"), "{err}");
    }

    #[test]
    fn every_stream_declares_options() {
        let catalog = crate::catalog().unwrap();
        assert_eq!(catalog.streams.len(), 15);
        for s in &catalog.streams {
            let o: StreamOptions = s.options().unwrap();
            assert!(!o.object.is_empty());
            for e in &o.events {
                assert!(e.contains('.'), "{e}");
            }
            // A stream whose events report deletions has the column they set.
            let reports_deletes = o.events.iter().any(|e| e.ends_with(".deleted"));
            assert_eq!(s.deletes, reports_deletes, "{}", s.spec.name);
            assert_eq!(
                s.spec.schema.field_with_name(weft_core::DELETED_AT).is_ok(),
                reports_deletes,
                "{}",
                s.spec.name
            );
        }
    }

    #[test]
    fn subscriptions_are_listed_with_every_status() {
        let catalog = crate::catalog().unwrap();
        let listed: Vec<(String, BTreeMap<String, String>)> = catalog
            .streams
            .iter()
            .map(|s| {
                let o: StreamOptions = s.options().unwrap();
                (s.spec.name.clone(), o.list_params)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        let all = BTreeMap::from([("status".to_string(), "all".to_string())]);
        assert_eq!(listed, vec![("subscriptions".to_string(), all)]);
        let subscriptions: StreamOptions = catalog
            .require("stripe", "subscriptions")
            .unwrap()
            .options()
            .unwrap();
        assert_eq!(subscriptions.deleted_at_field.as_deref(), Some("ended_at"));
    }
}
