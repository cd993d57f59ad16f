//! Pagination helpers for the styles the supported APIs use.
//!
//! [`paginate`] turns a first request and a [`Pagination`] style into a
//! stream of [`Page`]s. It reads records as raw JSON (no re-serialisation),
//! ends when the API says so, and fails with [`HttpError::PaginationLoop`]
//! when a cursor, token or next URL comes back a second time.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use http::HeaderMap;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use weft_core::StreamMetrics;

use crate::{Body, HttpClient, HttpError, RequestSpec, Response};

/// Pagination styles. Pointers are JSON pointers (`/data`, `/pages/next/starting_after`);
/// `""` is the whole body.
#[derive(Clone, Debug)]
pub enum Pagination {
    /// Stripe: items at `items`, `has_more` flag, next request sets `param`
    /// to the cursor. Intercom: cursor read from a pointer in the body.
    /// Without `has_more`, paging goes on while a cursor is found.
    BodyCursor {
        /// Pointer to the items array.
        items: String,
        /// Pointer to a boolean "more pages" flag.
        has_more: Option<String>,
        /// Query parameter carrying the cursor (`starting_after`).
        param: String,
        /// Where the cursor comes from.
        cursor_from: CursorFrom,
    },
    /// Zendesk (`after_url` + `end_of_stream`) / Salesforce (`nextRecordsUrl`,
    /// relative to the base): next URL at a pointer; optional end flag
    /// (paging stops when it is `true`). The next URL carries its own query.
    NextUrl {
        /// Pointer to the items array.
        items: String,
        /// Pointer to the next URL (absent, null or empty: last page).
        next_url: String,
        /// Pointer to a boolean that is `true` on the last page.
        end_flag: Option<String>,
    },
    /// Zoom: token at a pointer goes into query parameter `param`; stops when empty.
    PageToken {
        /// Pointer to the items array.
        items: String,
        /// Pointer to the next page token.
        token: String,
        /// Query parameter carrying the token (`next_page_token`).
        param: String,
    },
    /// Mailchimp: `offset`/`count` query parameters, total at a pointer.
    /// Without `total`, a page shorter than `page_size` is the last.
    Offset {
        /// Pointer to the items array.
        items: String,
        /// Offset query parameter (`offset`).
        offset_param: String,
        /// Page size query parameter (`count`).
        count_param: String,
        /// Records per page (Mailchimp: at most 1000).
        page_size: u32,
        /// Pointer to the total number of items (`/total_items`).
        total: Option<String>,
    },
    /// RFC 8288 `Link` header with `rel="next"`.
    LinkHeader {
        /// Pointer to the items array.
        items: String,
    },
    /// Search APIs paged in the request body (Intercom `POST /contacts/search`:
    /// `pagination.starting_after`): the cursor at `cursor` in the response
    /// goes to `body_field` (a pointer) of the next request's JSON body;
    /// paging stops when no cursor comes back.
    JsonBodyCursor {
        /// Pointer to the items array.
        items: String,
        /// Pointer to the next cursor in the response.
        cursor: String,
        /// Pointer in the request's JSON body that carries it (created if absent).
        body_field: String,
    },
    /// Scrolls (Intercom `GET /companies/scroll`): every response carries the
    /// same scroll id at `scroll_id`, sent back in query parameter `param`;
    /// an empty page ends the scroll. A repeated id is not a loop.
    Scroll {
        /// Pointer to the items array.
        items: String,
        /// Pointer to the scroll id.
        scroll_id: String,
        /// Query parameter carrying it (`scroll_param`).
        param: String,
    },
    /// Page numbers (Intercom `GET /companies?page=N`, Zendesk offset lists):
    /// query parameter `param` counts from `first_page`; the page size is the
    /// first request's own parameter. Stops at `total_pages` (a pointer) when
    /// given, else at an empty page.
    PageNumber {
        /// Pointer to the items array.
        items: String,
        /// Page number query parameter (`page`).
        param: String,
        /// Number of the first page (usually 1).
        first_page: u64,
        /// Pointer to the total number of pages (`/pages/total_pages`).
        total_pages: Option<String>,
    },
}

/// Where a [`Pagination::BodyCursor`] cursor comes from.
#[derive(Clone, Debug)]
pub enum CursorFrom {
    /// A field of the last item (Stripe: `id`); a name or a pointer within the item.
    LastItemField(String),
    /// A pointer in the body (Intercom: `/pages/next/starting_after`).
    Pointer(String),
}

/// One page of records.
#[derive(Debug)]
pub struct Page {
    /// The records, raw JSON, in API order.
    pub records: Vec<Box<RawValue>>,
    /// Page number, 1-based.
    pub number: u64,
    /// The cursor, token, URL or offset that fetches the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// The body's top-level fields other than the items (e.g. `has_more`, `end_time`).
    pub body_fields: serde_json::Map<String, serde_json::Value>,
}

impl Page {
    /// The total a listing's first page states in its top-level `field`
    /// (Mailchimp `total_items`, Zoom `total_records`), for the completeness
    /// check's source count ([`weft_core::StreamMetrics::add_source_count`]);
    /// `None` on later pages, or when absent or not a count.
    pub fn listing_total(&self, field: &str) -> Option<u64> {
        if self.number != 1 {
            return None;
        }
        self.body_fields
            .get(field)
            .and_then(serde_json::Value::as_u64)
    }

    /// The records as a [`weft_core::JsonPage`].
    pub fn into_json_page(self) -> weft_core::JsonPage {
        weft_core::JsonPage {
            records: self.records,
        }
    }
}

struct State {
    client: HttpClient,
    first: RequestSpec,
    next: Option<RequestSpec>,
    style: Pagination,
    metrics: Arc<StreamMetrics>,
    number: u64,
    seen: HashSet<String>,
}

/// Pages of a list endpoint as a stream; ends when the API says so.
///
/// When the first request answers an error status the client declares
/// expected ([`HttpClientBuilder::expected_status`](crate::HttpClientBuilder::expected_status)),
/// the list is taken as absent: the stream ends without pages (the status is
/// counted in `expected_errors`). On a later page it is an error.
pub fn paginate(
    client: HttpClient,
    first: RequestSpec,
    style: Pagination,
    metrics: Arc<StreamMetrics>,
) -> BoxStream<'static, Result<Page, HttpError>> {
    let mut start = first.clone();
    if let Pagination::Offset {
        offset_param,
        count_param,
        page_size,
        ..
    } = &style
    {
        if !start.query.iter().any(|(k, _)| k == offset_param) {
            start.set_query(offset_param, "0");
        }
        start.set_query(count_param, page_size.to_string());
    }
    let state = State {
        client,
        first,
        next: Some(start),
        style,
        metrics,
        number: 0,
        seen: HashSet::new(),
    };
    futures::stream::try_unfold(state, |mut st| async move {
        let Some(req) = st.next.take() else {
            return Ok(None);
        };
        let read = |resp: &Response| read_page(&st, &req, resp);
        let (resp, page) = st.client.send_reading(&req, &st.metrics, &read).await?;
        // A status the client declares expected (already counted) on the first
        // page means the list does not exist, e.g. a child list of a parent that
        // has none: no pages. Later pages cannot be skipped without losing records.
        if st.number == 0 && resp.status >= 400 {
            return Ok(None);
        }
        let (page, next) = match page {
            Some(page) if (200..300).contains(&resp.status) => page?,
            _ => {
                return Err(HttpError::Decode {
                    url: resp.url.clone(),
                    reason: format!(
                        "list page answered HTTP {} (declared expected); cannot paginate it",
                        resp.status
                    ),
                });
            }
        };
        if let Some(cursor) = &page.next_cursor
            && !matches!(st.style, Pagination::Scroll { .. })
            && !st.seen.insert(cursor.clone())
        {
            return Err(HttpError::PaginationLoop {
                url: resp.url.clone(),
                cursor: st.client.redact_text(cursor),
            });
        }
        st.number += 1;
        st.next = next;
        Ok(Some((
            Page {
                number: st.number,
                ..page
            },
            st,
        )))
    })
    .boxed()
}

fn decode_err(resp: &Response, reason: String) -> HttpError {
    HttpError::Decode {
        url: resp.url.clone(),
        reason,
    }
}

/// A page read and the request for the next one, or why the page is wrong.
type PageRead = Result<(Page, Option<RequestSpec>), HttpError>;

/// Reads one page body in a single pass (see [`HttpClient::send_reading`]):
/// `Err` when it is cut short or not JSON (the client retries it), else the
/// page or the error that makes it unusable.
fn read_page(st: &State, req: &RequestSpec, resp: &Response) -> Result<PageRead, String> {
    let not_json = |e: &dyn std::fmt::Display| format!("the body is not valid JSON ({e})");
    let text = match std::str::from_utf8(&resp.body) {
        Ok(text) => text,
        // Cut short inside a character.
        Err(e) if e.error_len().is_none() => return Err(not_json(&e)),
        Err(e) => return Ok(Err(decode_err(resp, format!("body is not UTF-8: {e}")))),
    };
    let items_ptr = items_pointer(&st.style);
    match ParsedBody::read(text, items_ptr) {
        Ok((body, records)) => Ok(parse_page(st, req, resp, &body, records)),
        Err(BodyError::NotJson(e)) => Err(not_json(&e)),
        Err(BodyError::Invalid(reason)) => Ok(Err(decode_err(resp, reason))),
    }
}

/// The items pointer of a pagination style.
fn items_pointer(style: &Pagination) -> &str {
    match style {
        Pagination::BodyCursor { items, .. }
        | Pagination::NextUrl { items, .. }
        | Pagination::PageToken { items, .. }
        | Pagination::Offset { items, .. }
        | Pagination::JsonBodyCursor { items, .. }
        | Pagination::Scroll { items, .. }
        | Pagination::PageNumber { items, .. }
        | Pagination::LinkHeader { items } => items.as_str(),
    }
}

/// Builds a read page and the request for the next one.
fn parse_page(
    st: &State,
    req: &RequestSpec,
    resp: &Response,
    body: &ParsedBody<'_>,
    records: Vec<Box<RawValue>>,
) -> PageRead {
    let scalar = |ptr: &str| -> Result<Option<String>, HttpError> {
        body.get(ptr)
            .map_err(|r| decode_err(resp, r))
            .map(|v| v.and_then(scalar_string))
    };
    let flag = |ptr: &str| -> Result<bool, HttpError> {
        match body.get(ptr).map_err(|r| decode_err(resp, r))? {
            Some(raw) => serde_json::from_str::<bool>(raw.get())
                .map_err(|e| decode_err(resp, format!("{ptr:?} is not a boolean: {e}"))),
            None => Ok(false),
        }
    };
    let (next_cursor, next) = match &st.style {
        Pagination::BodyCursor {
            has_more,
            param,
            cursor_from,
            ..
        } => {
            let more = match has_more {
                Some(p) => Some(flag(p)?),
                None => None,
            };
            let cursor = if more == Some(false) {
                None
            } else {
                match cursor_from {
                    CursorFrom::Pointer(p) => scalar(p)?,
                    CursorFrom::LastItemField(field) => match records.last() {
                        Some(last) => {
                            let ptr = if field.starts_with('/') {
                                field.clone()
                            } else {
                                format!("/{field}")
                            };
                            pointer(last, &ptr)
                                .map_err(|r| decode_err(resp, r))?
                                .and_then(scalar_string)
                        }
                        None => None,
                    },
                }
            };
            if more == Some(true) && cursor.is_none() {
                return Err(decode_err(
                    resp,
                    format!(
                        "the API says there are more pages ({:?} is true) but gives no cursor \
                         ({}; the page has {} items)",
                        has_more.as_deref().unwrap_or_default(),
                        match cursor_from {
                            CursorFrom::LastItemField(f) => format!("no `{f}` in the last item"),
                            CursorFrom::Pointer(p) => format!("nothing at {p:?}"),
                        },
                        records.len()
                    ),
                ));
            }
            let next = cursor.as_ref().map(|c| {
                let mut n = req.clone();
                n.set_query(param, c.clone());
                n
            });
            (cursor, next)
        }
        Pagination::NextUrl {
            next_url, end_flag, ..
        } => {
            let ended = match end_flag {
                Some(p) => flag(p)?,
                None => false,
            };
            let url = if ended { None } else { scalar(next_url)? };
            let next = url.as_ref().map(|u| follow_url(&st.first, u));
            (url, next)
        }
        Pagination::PageToken { token, param, .. } => {
            let t = scalar(token)?;
            let next = t.as_ref().map(|t| {
                let mut n = req.clone();
                n.set_query(param, t.clone());
                n
            });
            (t, next)
        }
        Pagination::Offset {
            offset_param,
            page_size,
            total,
            ..
        } => {
            let offset = req
                .query
                .iter()
                .find(|(k, _)| k == offset_param)
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(0);
            let next_offset = offset + records.len() as u64;
            let total = match total {
                Some(p) => match scalar(p)? {
                    Some(t) => Some(t.parse::<u64>().map_err(|e| {
                        decode_err(resp, format!("total {t:?} is not a count: {e}"))
                    })?),
                    None => None,
                },
                None => None,
            };
            let more = !records.is_empty()
                && match total {
                    Some(t) => next_offset < t,
                    None => records.len() as u64 >= u64::from(*page_size),
                };
            if more {
                let mut n = req.clone();
                n.set_query(offset_param, next_offset.to_string());
                (Some(next_offset.to_string()), Some(n))
            } else {
                (None, None)
            }
        }
        Pagination::JsonBodyCursor {
            cursor, body_field, ..
        } => {
            let c = scalar(cursor)?;
            let next = match &c {
                Some(c) => {
                    let mut n = req.clone();
                    let mut body = match n.body.take() {
                        Some(Body::Json(v)) => v,
                        None => serde_json::Value::Object(serde_json::Map::new()),
                        Some(_) => {
                            return Err(decode_err(
                                resp,
                                "a body-cursor request must have a JSON body".into(),
                            ));
                        }
                    };
                    set_pointer(&mut body, body_field, c.clone())
                        .map_err(|r| decode_err(resp, r))?;
                    n.body = Some(Body::Json(body));
                    Some(n)
                }
                None => None,
            };
            (c, next)
        }
        Pagination::Scroll {
            scroll_id, param, ..
        } => {
            let id = if records.is_empty() {
                None
            } else {
                scalar(scroll_id)?
            };
            let next = id.as_ref().map(|id| {
                let mut n = req.clone();
                n.set_query(param, id.clone());
                n
            });
            (id, next)
        }
        Pagination::PageNumber {
            param,
            first_page,
            total_pages,
            ..
        } => {
            let page = req
                .query
                .iter()
                .find(|(k, _)| k == param)
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(*first_page);
            let last = match total_pages {
                Some(p) => match scalar(p)? {
                    Some(t) => t.parse::<u64>().map_err(|e| {
                        decode_err(resp, format!("total pages {t:?} is not a count: {e}"))
                    })?,
                    None => page,
                },
                None => u64::MAX,
            };
            if !records.is_empty() && page < last {
                let mut n = req.clone();
                n.set_query(param, (page + 1).to_string());
                (Some((page + 1).to_string()), Some(n))
            } else {
                (None, None)
            }
        }
        Pagination::LinkHeader { .. } => {
            let url = next_link(&resp.headers);
            let next = url.as_ref().map(|u| follow_url(&st.first, u));
            (url, next)
        }
    };
    let body_fields = body.fields_except(items_pointer(&st.style));
    Ok((
        Page {
            records,
            number: 0,
            next_cursor,
            body_fields,
        },
        next,
    ))
}

/// Sets `value` at JSON pointer `ptr` in `root`, creating objects on the way.
fn set_pointer(root: &mut serde_json::Value, ptr: &str, value: String) -> Result<(), String> {
    let rest = ptr
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer {ptr:?} must start with '/'"))?;
    let mut cur = root;
    for token in rest.split('/') {
        let map = match cur {
            serde_json::Value::Object(map) => map,
            other @ serde_json::Value::Null => {
                *other = serde_json::Value::Object(serde_json::Map::new());
                match other {
                    serde_json::Value::Object(map) => map,
                    _ => return Err(format!("cannot set {ptr:?}")),
                }
            }
            _ => return Err(format!("{ptr:?} crosses a value that is not an object")),
        };
        cur = map
            .entry(unescape(token))
            .or_insert(serde_json::Value::Null);
    }
    *cur = serde_json::Value::String(value);
    Ok(())
}

/// The first request redirected to a next-page URL (which carries its own query).
fn follow_url(first: &RequestSpec, url: &str) -> RequestSpec {
    let mut n = first.clone();
    n.path = url.to_string();
    n.query.clear();
    n
}

/// The top-level values of an object body by key; the last of duplicate keys wins.
type Fields<'a> = BTreeMap<String, &'a RawValue>;

/// A page body read for its items and its pointers, scanning the text about once.
///
/// An object body with its items under a top-level key (`/data`, the usual
/// case) is read in one pass by [`read_object`]: the items array is split into
/// records on the way and every other top-level value is kept as raw JSON, so
/// pointer lookups only re-read the small value they land in.
#[derive(Debug)]
struct ParsedBody<'a> {
    /// The body text (valid JSON).
    text: &'a str,
    /// The body's top level.
    top: Top<'a>,
    /// The top-level key whose array was split into records while reading and
    /// is therefore not kept in the [`Top::Object`] fields.
    split_key: Option<String>,
}

/// Why a page body could not be read.
#[derive(Debug)]
enum BodyError {
    /// It is not JSON at all (cut short, an HTML page...).
    NotJson(serde_json::Error),
    /// It is JSON, but not the page expected.
    Invalid(String),
}

/// The top level of a page body.
#[derive(Debug)]
enum Top<'a> {
    /// An object body: its values by key.
    Object(Fields<'a>),
    /// Any other JSON (an array, a string, `null`...).
    Other(&'a RawValue),
}

impl<'a> ParsedBody<'a> {
    /// [`ParsedBody::read`] with every error as text.
    #[cfg(test)]
    fn parse(text: &'a str, items_ptr: &str) -> Result<(Self, Vec<Box<RawValue>>), String> {
        ParsedBody::read(text, items_ptr).map_err(|e| match e {
            BodyError::NotJson(e) => format!("body is not JSON: {e}"),
            BodyError::Invalid(reason) => reason,
        })
    }

    /// Reads a page body and the records at `items_ptr`. A null items value is
    /// an empty page; missing items are an error naming the body's top-level keys.
    fn read(text: &'a str, items_ptr: &str) -> Result<(Self, Vec<Box<RawValue>>), BodyError> {
        if text.trim_start().starts_with('{')
            && let Some(key) = items_ptr
                .strip_prefix('/')
                .filter(|k| !k.contains('/'))
                .map(unescape)
            && let Ok((fields, items)) = read_object(text, &key)
        {
            let body = ParsedBody {
                text,
                top: Top::Object(fields),
                split_key: items.is_some().then_some(key),
            };
            let records = match items {
                Some(records) => records,
                None => body.items(items_ptr).map_err(BodyError::Invalid)?,
            };
            return Ok((body, records));
        }
        // Nested or empty items pointers, bodies that are not objects and
        // bodies with errors: read the root, then follow the pointer. This
        // reads the body more than once, and says exactly what is wrong.
        let root: &'a RawValue = serde_json::from_str(text).map_err(BodyError::NotJson)?;
        let top = if root.get().trim_start().starts_with('{') {
            Top::Object(
                serde_json::from_str(root.get())
                    .map_err(|e| BodyError::Invalid(format!("object at \"\" is invalid: {e}")))?,
            )
        } else {
            Top::Other(root)
        };
        let body = ParsedBody {
            text,
            top,
            split_key: None,
        };
        let records = body.items(items_ptr).map_err(BodyError::Invalid)?;
        Ok((body, records))
    }

    /// The records at `items_ptr`, found through [`ParsedBody::get`].
    fn items(&self, items_ptr: &str) -> Result<Vec<Box<RawValue>>, String> {
        match self.get(items_ptr)? {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| format!("items at {items_ptr:?} are not an array: {e}")),
            None if self.is_absent(items_ptr)? => Err(format!(
                "no items at {items_ptr:?}: the body is not a list page (top-level keys: {})",
                self.top_level_keys()
            )),
            None => Ok(Vec::new()),
        }
    }

    /// The value at a JSON pointer; `None` when absent or null.
    ///
    /// Looks the first token up in the top-level fields and re-reads only the
    /// value found. The whole body (`""`) and pointers into the split items
    /// are not kept as raw JSON: those re-read the body text.
    fn get(&self, ptr: &str) -> Result<Option<&'a RawValue>, String> {
        let fields = match &self.top {
            Top::Object(fields) => fields,
            Top::Other(root) => return pointer(root, ptr),
        };
        let Some(rest) = ptr.strip_prefix('/') else {
            return self.reread(ptr);
        };
        let (head, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let head = unescape(head);
        if self.split_key.as_ref() == Some(&head) {
            return self.reread(ptr);
        }
        match fields.get(&head) {
            Some(value) => pointer(value, tail),
            None => Ok(None),
        }
    }

    /// Follows a pointer from the whole body text (a full pass).
    fn reread(&self, ptr: &str) -> Result<Option<&'a RawValue>, String> {
        let root: &'a RawValue =
            serde_json::from_str(self.text).map_err(|e| format!("body is not JSON: {e}"))?;
        pointer(root, ptr)
    }

    /// Whether the value at a JSON pointer is missing (its parent is not an
    /// object holding the last token), as opposed to present and null.
    fn is_absent(&self, ptr: &str) -> Result<bool, String> {
        let Some((parent, last)) = ptr.rsplit_once('/') else {
            return Ok(false);
        };
        let last = unescape(last);
        if parent.is_empty() {
            return Ok(match &self.top {
                Top::Object(fields) => {
                    !fields.contains_key(&last) && self.split_key.as_ref() != Some(&last)
                }
                Top::Other(_) => true,
            });
        }
        Ok(match self.get(parent)? {
            Some(parent) => serde_json::from_str::<Fields<'_>>(parent.get())
                .map_or(true, |map| !map.contains_key(&last)),
            None => true,
        })
    }

    /// The top-level keys of an object body (`not an object` for other JSON), for errors.
    fn top_level_keys(&self) -> String {
        match &self.top {
            Top::Object(fields) => {
                let mut keys: Vec<&str> = fields
                    .keys()
                    .map(String::as_str)
                    .chain(self.split_key.as_deref())
                    .collect();
                keys.sort_unstable();
                if keys.is_empty() {
                    "none".into()
                } else {
                    keys.join(", ")
                }
            }
            Top::Other(_) => "none, it is not an object".into(),
        }
    }

    /// Top-level fields of an object body, except the one holding the items.
    fn fields_except(&self, items_ptr: &str) -> serde_json::Map<String, serde_json::Value> {
        let Top::Object(fields) = &self.top else {
            return serde_json::Map::new();
        };
        let head = items_ptr
            .strip_prefix('/')
            .map(|p| unescape(p.split('/').next().unwrap_or_default()));
        fields
            .iter()
            .filter(|(k, _)| head.as_ref() != Some(*k))
            .filter_map(|(k, v)| serde_json::from_str(v.get()).ok().map(|v| (k.clone(), v)))
            .collect()
    }
}

/// Reads an object body in one pass: the array under `items_key` split into
/// records (`None` when the key is absent, empty when its value is null) and
/// every other top-level value as raw JSON. Fails on any error, including
/// items that are not an array, for [`ParsedBody::parse`] to explain.
fn read_object<'a>(
    text: &'a str,
    items_key: &str,
) -> serde_json::Result<(Fields<'a>, Option<Vec<Box<RawValue>>>)> {
    let mut de = serde_json::Deserializer::from_str(text);
    let read = ObjectSeed { items_key }.deserialize(&mut de)?;
    de.end()?;
    Ok(read)
}

/// The [`read_object`] visitor.
struct ObjectSeed<'k> {
    items_key: &'k str,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = (Fields<'de>, Option<Vec<Box<RawValue>>>);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = (Fields<'de>, Option<Vec<Box<RawValue>>>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a JSON object with an array at {:?}", self.items_key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::new();
        let mut items = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.items_key {
                // As for other keys, the last of duplicates wins.
                let value: Option<Vec<Box<RawValue>>> = map.next_value()?;
                items = Some(value.unwrap_or_default());
            } else {
                fields.insert(key, map.next_value()?);
            }
        }
        Ok((fields, items))
    }
}

/// A JSON pointer token with `~1` and `~0` unescaped.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Follows a JSON pointer through raw JSON; `None` when absent or null.
fn pointer<'a>(root: &'a RawValue, ptr: &str) -> Result<Option<&'a RawValue>, String> {
    let mut cur = root;
    if !ptr.is_empty() {
        let rest = ptr
            .strip_prefix('/')
            .ok_or_else(|| format!("JSON pointer {ptr:?} must start with '/'"))?;
        for token in rest.split('/') {
            let token = unescape(token);
            let text = cur.get().trim_start();
            let found = if text.starts_with('{') {
                let map: BTreeMap<String, &'a RawValue> = serde_json::from_str(cur.get())
                    .map_err(|e| format!("object at {ptr:?} is invalid: {e}"))?;
                map.get(&token).copied()
            } else if text.starts_with('[') {
                let arr: Vec<&'a RawValue> = serde_json::from_str(cur.get())
                    .map_err(|e| format!("array at {ptr:?} is invalid: {e}"))?;
                token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| arr.get(i).copied())
            } else {
                None
            };
            match found {
                Some(v) => cur = v,
                None => return Ok(None),
            }
        }
    }
    Ok((cur.get().trim() != "null").then_some(cur))
}

/// A string, number or boolean as text; `None` for empty strings and other JSON.
fn scalar_string(raw: &RawValue) -> Option<String> {
    let text = raw.get().trim();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .ok()
            .filter(|s| !s.is_empty())
    } else if text.starts_with('{') || text.starts_with('[') || text == "null" {
        None
    } else {
        Some(text.to_string())
    }
}

/// The `rel="next"` target of the `Link` headers.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(http::header::LINK) {
        let Ok(text) = value.to_str() else { continue };
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            let params_end = after[close + 1..]
                .find('<')
                .map_or(after.len(), |i| close + 1 + i);
            let params = &after[close + 1..params_end];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',').trim();
                p.strip_prefix("rel=").is_some_and(|v| {
                    v.trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if is_next {
                return Some(target.to_string());
            }
            rest = &after[params_end..];
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn pointers_follow_objects_and_arrays() {
        let root: &RawValue = serde_json::from_str(
            r#"{"pages":{"next":{"starting_after":"abc"}},"data":[{"id":1},{"id":"x"}],"n":null}"#,
        )
        .unwrap();
        assert_eq!(
            pointer(root, "/pages/next/starting_after")
                .unwrap()
                .unwrap()
                .get(),
            r#""abc""#
        );
        assert_eq!(
            pointer(root, "/data/1/id").unwrap().unwrap().get(),
            r#""x""#
        );
        assert!(pointer(root, "/n").unwrap().is_none());
        assert!(pointer(root, "/missing/x").unwrap().is_none());
        assert!(pointer(root, "data").is_err());
        assert_eq!(
            scalar_string(pointer(root, "/data/0/id").unwrap().unwrap()),
            Some("1".into())
        );
    }

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::LINK,
            r#"<https://a.test/x?page=1>; rel="prev", <https://a.test/x?page=3&a=b,c>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://a.test/x?page=3&a=b,c")
        );
        let mut h = HeaderMap::new();
        h.append(
            http::header::LINK,
            r#"<https://a.test/x?page=1>; rel="first""#.parse().unwrap(),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn set_pointer_creates_objects() {
        let mut v = serde_json::json!({"query": {"a": 1}});
        set_pointer(&mut v, "/pagination/starting_after", "c1".into()).unwrap();
        set_pointer(&mut v, "/pagination/starting_after", "c2".into()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"query": {"a": 1}, "pagination": {"starting_after": "c2"}})
        );
        assert!(set_pointer(&mut v, "/query/a/b", "x".into()).is_err());
        assert!(set_pointer(&mut v, "nope", "x".into()).is_err());
    }

    /// Parses a body, panicking on errors; the records as their JSON text.
    fn parse<'a>(text: &'a str, items: &str) -> (ParsedBody<'a>, Vec<String>) {
        let (body, records) = ParsedBody::parse(text, items).unwrap();
        (body, records.iter().map(|r| r.get().to_string()).collect())
    }

    #[test]
    fn missing_items_are_told_apart_from_null_items() {
        let absent = |text: &str, items: &str| ParsedBody::parse(text, items).unwrap_err();
        assert_eq!(parse(r#"{"data":null}"#, "/data").1, Vec::<String>::new());
        assert_eq!(parse(r#"{"data":[]}"#, "/data").1, Vec::<String>::new());
        assert_eq!(parse(r#"{"a":{"b":null}}"#, "/a/b").1, Vec::<String>::new());
        assert_eq!(parse("null", "").1, Vec::<String>::new());
        assert_eq!(
            absent(r#"{"items":[1],"has_more":false}"#, "/data"),
            r#"no items at "/data": the body is not a list page (top-level keys: has_more, items)"#
        );
        assert_eq!(
            absent("{}", "/data"),
            r#"no items at "/data": the body is not a list page (top-level keys: none)"#
        );
        for not_an_object in [r#"[{"id":1}]"#, r#""ok""#, "null", "[]"] {
            assert_eq!(
                absent(not_an_object, "/data"),
                r#"no items at "/data": the body is not a list page (top-level keys: none, it is not an object)"#,
                "{not_an_object}"
            );
        }
        assert_eq!(
            absent(r#"{"a":{},"z":1}"#, "/a/b"),
            r#"no items at "/a/b": the body is not a list page (top-level keys: a, z)"#
        );
        assert_eq!(
            absent(r#"{"z":1}"#, "/a/b"),
            r#"no items at "/a/b": the body is not a list page (top-level keys: z)"#
        );
    }

    #[test]
    fn bad_bodies_and_items_say_what_is_wrong() {
        let err = |text: &str, items: &str| ParsedBody::parse(text, items).unwrap_err();
        assert!(
            err(r#"{"data":[1,"#, "/data").starts_with("body is not JSON: EOF while parsing"),
            "{}",
            err(r#"{"data":[1,"#, "/data")
        );
        assert!(
            err(r#"{"data":[]} x"#, "/data").starts_with("body is not JSON: trailing characters")
        );
        assert!(
            err(r#"{"data":{"id":1},"has_more":false}"#, "/data")
                .starts_with(r#"items at "/data" are not an array: invalid type: map"#)
        );
        assert!(
            err(r#"{"data":"x"}"#, "/data")
                .starts_with(r#"items at "/data" are not an array: invalid type: string"#)
        );
        assert!(err(r#"{"a":{"b":7}}"#, "/a/b").starts_with(r#"items at "/a/b" are not an array"#));
        assert!(err(r#"{"data":[]}"#, "data").contains("must start with '/'"));
    }

    #[test]
    fn items_are_found_at_top_level_nested_and_whole_body_pointers() {
        let (body, records) = parse(
            r#" { "object": "list", "data": [ {"id":"a"} , {"id":"b","x":[1,2]} ], "has_more": true } "#,
            "/data",
        );
        assert_eq!(records, [r#"{"id":"a"}"#, r#"{"id":"b","x":[1,2]}"#]);
        assert_eq!(body.split_key.as_deref(), Some("data"));
        let (body, records) = parse(
            r#"{"result":{"page":{"rows":[{"id":1},{"id":2}],"n":2}},"next":"u2"}"#,
            "/result/page/rows",
        );
        assert_eq!(records, [r#"{"id":1}"#, r#"{"id":2}"#]);
        assert_eq!(body.split_key, None);
        assert_eq!(body.get("/result/page/n").unwrap().unwrap().get(), "2");
        assert_eq!(body.get("/next").unwrap().unwrap().get(), r#""u2""#);
        let (_, records) = parse(r#" [ {"id":1}, 2, "three" ] "#, "");
        assert_eq!(records, [r#"{"id":1}"#, "2", r#""three""#]);
        // A key with an escaped `/` in the pointer.
        let (_, records) = parse(r#"{"a/b":[true],"a":{"b":[false]}}"#, "/a~1b");
        assert_eq!(records, ["true"]);
        let (_, records) = parse(r#"{"a/b":[true],"a":{"b":[false]}}"#, "/a/b");
        assert_eq!(records, ["false"]);
    }

    #[test]
    fn cached_lookups_match_pointers_over_the_whole_body() {
        let text = r#"{"object":"list","data":[{"id":"cus_1"},{"id":"cus_2"}],"has_more":true,
            "url":"/v1/customers","pages":{"next":{"starting_after":"c150"},"total_pages":7},
            "next_page":"https://a.test/x?page=2","end_of_stream":false,"total_items":1050,
            "next_page_token":"","scroll_param":null,"a~b":{"c/d":"e"},"list":[10,{"k":"v"}]}"#;
        let root: &RawValue = serde_json::from_str(text).unwrap();
        let (body, _) = parse(text, "/data");
        assert_eq!(body.split_key.as_deref(), Some("data"));
        for ptr in [
            "",
            "/has_more",
            "/url",
            "/pages",
            "/pages/next/starting_after",
            "/pages/total_pages",
            "/pages/next/missing",
            "/next_page",
            "/end_of_stream",
            "/total_items",
            "/next_page_token",
            "/scroll_param",
            "/scroll_param/x",
            "/missing",
            "/missing/x",
            "/a~0b/c~1d",
            "/list/1/k",
            "/list/2",
            "/data",
            "/data/1/id",
            "/data/5/id",
        ] {
            let cached = body.get(ptr).unwrap().map(RawValue::get);
            let full = pointer(root, ptr).unwrap().map(RawValue::get);
            assert_eq!(cached, full, "{ptr}");
        }
        assert_eq!(
            body.get("/pages/next/starting_after")
                .unwrap()
                .and_then(scalar_string),
            Some("c150".into())
        );
        assert_eq!(body.get("/has_more").unwrap().unwrap().get(), "true");
        assert_eq!(
            body.get("/data/1/id").unwrap().and_then(scalar_string),
            Some("cus_2".into())
        );
        assert!(body.get("has_more").is_err());
    }

    #[test]
    fn duplicate_top_level_keys_keep_the_last_value() {
        let text = r#"{"data":[1],"has_more":true,"data":[2,3],"has_more":false,"data":[4,5]}"#;
        let (body, records) = parse(text, "/data");
        assert_eq!(records, ["4", "5"]);
        assert_eq!(body.get("/has_more").unwrap().unwrap().get(), "false");
        // A later null empties the page, as with a map of the whole body.
        let (_, records) = parse(r#"{"data":[1],"data":null}"#, "/data");
        assert_eq!(records, Vec::<String>::new());
        // A later value that is not an array is an error, whatever came before.
        assert!(
            ParsedBody::parse(r#"{"data":[1],"data":{}}"#, "/data")
                .unwrap_err()
                .starts_with(r#"items at "/data" are not an array"#)
        );
    }

    #[test]
    fn body_fields_skip_items() {
        let (body, _) = parse(r#"{"data":[1],"has_more":true,"url":"/v1/x"}"#, "/data");
        let f = body.fields_except("/data");
        assert_eq!(f.len(), 2);
        assert_eq!(f["has_more"], serde_json::json!(true));
        assert_eq!(f["url"], serde_json::json!("/v1/x"));
        let (body, _) = parse(r#"{"a":{"b":[1]},"end":true}"#, "/a/b");
        let f = body.fields_except("/a/b");
        assert_eq!(f.len(), 1);
        assert_eq!(f["end"], serde_json::json!(true));
        let (body, _) = parse("[1]", "");
        assert!(body.fields_except("").is_empty());
    }
}
