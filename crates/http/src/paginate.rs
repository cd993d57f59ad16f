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
        let resp = st.client.send_json_checked(&req, &st.metrics).await?;
        // A status the client declares expected (already counted) on the first
        // page means the list does not exist, e.g. a child list of a parent that
        // has none: no pages. Later pages cannot be skipped without losing records.
        if st.number == 0 && resp.status >= 400 {
            return Ok(None);
        }
        if !(200..300).contains(&resp.status) {
            return Err(HttpError::Decode {
                url: resp.url.clone(),
                reason: format!(
                    "list page answered HTTP {} (declared expected); cannot paginate it",
                    resp.status
                ),
            });
        }
        let (page, next) = parse_page(&st, &req, &resp)?;
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

/// Parses one page and builds the request for the next one.
fn parse_page(
    st: &State,
    req: &RequestSpec,
    resp: &Response,
) -> Result<(Page, Option<RequestSpec>), HttpError> {
    let text = std::str::from_utf8(&resp.body)
        .map_err(|e| decode_err(resp, format!("body is not UTF-8: {e}")))?;
    let root: &RawValue = serde_json::from_str(text)
        .map_err(|e| decode_err(resp, format!("body is not JSON: {e}")))?;
    let items_ptr = match &st.style {
        Pagination::BodyCursor { items, .. }
        | Pagination::NextUrl { items, .. }
        | Pagination::PageToken { items, .. }
        | Pagination::Offset { items, .. }
        | Pagination::JsonBodyCursor { items, .. }
        | Pagination::Scroll { items, .. }
        | Pagination::PageNumber { items, .. }
        | Pagination::LinkHeader { items } => items.as_str(),
    };
    let records: Vec<Box<RawValue>> = match pointer(root, items_ptr)
        .map_err(|r| decode_err(resp, r))?
    {
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
            decode_err(
                resp,
                format!("items at {items_ptr:?} are not an array: {e}"),
            )
        })?,
        None if is_absent(root, items_ptr) => {
            return Err(decode_err(
                resp,
                format!(
                    "no items at {items_ptr:?}: the body is not a list page (top-level keys: {})",
                    top_level_keys(root)
                ),
            ));
        }
        None => Vec::new(),
    };
    let scalar = |ptr: &str| -> Result<Option<String>, HttpError> {
        pointer(root, ptr)
            .map_err(|r| decode_err(resp, r))
            .map(|v| v.and_then(scalar_string))
    };
    let flag = |ptr: &str| -> Result<bool, HttpError> {
        match pointer(root, ptr).map_err(|r| decode_err(resp, r))? {
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
    let body_fields = top_level_fields(root, items_ptr);
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

/// Top-level fields of an object body, except the one holding the items.
fn top_level_fields(
    root: &RawValue,
    items_ptr: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let head = items_ptr
        .strip_prefix('/')
        .map(|p| unescape(p.split('/').next().unwrap_or_default()));
    let Ok(map) = serde_json::from_str::<BTreeMap<String, &RawValue>>(root.get()) else {
        return serde_json::Map::new();
    };
    map.into_iter()
        .filter(|(k, _)| head.as_deref() != Some(k.as_str()))
        .filter_map(|(k, v)| serde_json::from_str(v.get()).ok().map(|v| (k, v)))
        .collect()
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Whether the value at a JSON pointer is missing (its parent is not an
/// object holding the last token), as opposed to present and null.
fn is_absent(root: &RawValue, ptr: &str) -> bool {
    let Some((parent, last)) = ptr.rsplit_once('/') else {
        return false;
    };
    let Ok(Some(parent)) = pointer(root, parent) else {
        return true;
    };
    serde_json::from_str::<BTreeMap<String, &RawValue>>(parent.get())
        .map_or(true, |map| !map.contains_key(&unescape(last)))
}

/// The top-level keys of an object body (`not an object` for other JSON), for errors.
fn top_level_keys(root: &RawValue) -> String {
    match serde_json::from_str::<BTreeMap<String, &RawValue>>(root.get()) {
        Ok(map) if map.is_empty() => "none".into(),
        Ok(map) => map.keys().cloned().collect::<Vec<_>>().join(", "),
        Err(_) => "none, it is not an object".into(),
    }
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

    #[test]
    fn missing_items_are_told_apart_from_null_items() {
        let root = |s: &'static str| -> &'static RawValue { serde_json::from_str(s).unwrap() };
        assert!(!is_absent(root(r#"{"data":null}"#), "/data"));
        assert!(!is_absent(root(r#"{"data":[]}"#), "/data"));
        assert!(is_absent(root(r#"{"items":[1]}"#), "/data"));
        assert!(is_absent(root(r#"[{"id":1}]"#), "/data"));
        assert!(is_absent(root(r#""ok""#), "/data"));
        assert!(is_absent(root(r#"{"a":{}}"#), "/a/b"));
        assert!(!is_absent(root(r#"[1]"#), ""));
        assert_eq!(
            top_level_keys(root(r#"{"items":[],"has_more":false}"#)),
            "has_more, items"
        );
        assert_eq!(top_level_keys(root("{}")), "none");
        assert_eq!(top_level_keys(root("[]")), "none, it is not an object");
    }

    #[test]
    fn body_fields_skip_items() {
        let root: &RawValue =
            serde_json::from_str(r#"{"data":[1],"has_more":true,"url":"/v1/x"}"#).unwrap();
        let f = top_level_fields(root, "/data");
        assert_eq!(f.len(), 2);
        assert_eq!(f["has_more"], serde_json::json!(true));
    }
}
