//! Child lists of listed parents: a conversation's parts, a ticket's
//! comments. A connector lists the parents (changed since its cursor) its own
//! way; [`fetch_children`] reads every parent's child list, as many parents
//! at once as the budget keeps in flight, and stamps each child with its
//! parent's id and key, so the child stream's cursor is its parents'.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use serde_json::value::RawValue;
use weft_core::StreamMetrics;

use crate::{HttpClient, HttpError, Pagination, RequestSpec, paginate};

/// One listed parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    /// Its id (a string or a number), put into [`ChildList::path`] and
    /// stamped on its children as it is.
    pub id: Value,
    /// What the children carry of it as [`ChildList::parent_key`] (its
    /// `updated_at`: the child stream's cursor).
    pub key: Value,
}

/// Where and how one parent's children are listed.
#[derive(Debug, Clone)]
pub struct ChildList {
    /// The list's path, `{id}` standing for the parent's id.
    pub path: String,
    /// Query parameters of its first request.
    pub query: Vec<(String, String)>,
    /// How it pages (its `items` pointer says where the children are; a
    /// single object with no next link is one page).
    pub pagination: Pagination,
    /// The field each child gets with its parent's id (`ticket_id`).
    pub parent_id: String,
    /// The field each child gets with its parent's key (`ticket_updated_at`).
    pub parent_key: String,
}

/// Every child of `parents`, parent by parent in their order, each with the
/// two parent fields added. A parent whose list answers 404 (deleted since
/// it was listed) has no children; any other failure ends the read. A child
/// that is not a JSON object is a [`HttpError::Decode`] naming its list.
pub async fn fetch_children(
    http: &HttpClient,
    list: &ChildList,
    parents: Vec<Parent>,
    metrics: &Arc<StreamMetrics>,
) -> Result<Vec<Box<RawValue>>, HttpError> {
    let at_once = http.budget().in_flight_target().max(1);
    let mut lists = futures::stream::iter(parents)
        .map(|parent| async move {
            let id = parent
                .id
                .as_str()
                .map_or_else(|| parent.id.to_string(), str::to_owned);
            let path = list.path.replace("{id}", &id);
            let first = list
                .query
                .iter()
                .fold(RequestSpec::get(path.clone()), |r, (k, v)| r.query(k, v));
            let mut pages = paginate(
                http.clone(),
                first,
                list.pagination.clone(),
                Arc::clone(metrics),
            );
            let mut children = Vec::new();
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    Err(HttpError::Status { status: 404, .. }) => break,
                    Err(e) => return Err(e),
                };
                for raw in &page.records {
                    children.push(stamp(raw, list, &parent, &path)?);
                }
            }
            Ok(children)
        })
        .buffered(at_once);
    let mut out = Vec::new();
    while let Some(children) = lists.next().await {
        out.extend(children?);
    }
    Ok(out)
}

/// `raw` with its parent's id and key added.
fn stamp(
    raw: &RawValue,
    list: &ChildList,
    parent: &Parent,
    path: &str,
) -> Result<Box<RawValue>, HttpError> {
    let bad = |reason: String| HttpError::Decode {
        url: path.to_string(),
        reason,
    };
    let mut child: serde_json::Map<String, Value> = serde_json::from_str(raw.get())
        .map_err(|e| bad(format!("a child record is not a JSON object ({e})")))?;
    child.insert(list.parent_id.clone(), parent.id.clone());
    child.insert(list.parent_key.clone(), parent.key.clone());
    serde_json::value::to_raw_value(&child).map_err(|e| bad(e.to_string()))
}
