//! The example API: the smallest room, the one `connectors/template` reads
//! and the one a new simulated API is copied from.
//!
//! `GET /v1/widgets?limit=N&updated_since=T&page_token=P` lists widgets by
//! `updated_at` ascending (then `id`), `updated_since` inclusive, `limit`
//! 1..=100 (default 50), `next_page_token` on every page but the last; a
//! bearer token ([`crate::DEFAULT_EXAMPLE_KEY`]) is required; errors are
//! `{"error": {"type", "message"}}`; the documented limit is 25 requests/s.
//!
//! Widgets are generated from the seed (`size` of them; every seventh shares
//! the previous one's second, so a page boundary can fall inside a second);
//! only renames, made through the control API, are stored. Each request
//! builds and sorts the whole list: meant for sizes up to ~100k.

mod control;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::hash::h;
use crate::people::person;
use crate::room::{Control, Room, VendorError};
use crate::state::{ApiState, Clock};

/// The documented rate limit (requests per second).
pub(crate) const DOCUMENTED_RATE_LIMIT: u32 = 25;

/// Largest `limit`.
const MAX_LIMIT: usize = 100;

/// Generated history spans the 30 days before the clock's epoch.
const HISTORY_SECS: u64 = 30 * 86_400;

const COLORS: [&str; 3] = ["red", "green", "blue"];

/// The example API's state: generated widgets plus stored renames.
pub(crate) struct ExampleState {
    seed: u64,
    size: u32,
    key: String,
    clock: Arc<Clock>,
    api: Arc<ApiState>,
    /// Widget index -> (name, updated_at) set by a rename.
    renamed: RwLock<HashMap<u32, (String, i64)>>,
}

/// One widget, as the API renders it.
struct Widget {
    index: u32,
    name: String,
    created_at: i64,
    updated_at: i64,
}

impl Widget {
    fn id(&self) -> String {
        widget_id(self.index)
    }
}

fn widget_id(index: u32) -> String {
    format!("wgt_{index:06}")
}

impl ExampleState {
    pub(crate) fn new(
        seed: u64,
        size: usize,
        key: String,
        clock: Arc<Clock>,
        api: Arc<ApiState>,
    ) -> Self {
        ExampleState {
            seed,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            key,
            clock,
            api,
            renamed: RwLock::new(HashMap::new()),
        }
    }

    /// The generated widget `index` (1-based), renames applied.
    fn widget(&self, index: u32) -> Widget {
        let epoch = self.clock.epoch();
        let offset = |i: u32| {
            i64::try_from(h(self.seed, 0xE8A_3B1E, u64::from(i)) % HISTORY_SECS).unwrap_or(0)
        };
        // Every seventh widget shares the previous one's second.
        let created_at = epoch
            - offset(if index.is_multiple_of(7) {
                index - 1
            } else {
                index
            });
        let generated = Widget {
            index,
            name: format!("{} widget", person(self.seed, u64::from(index)).last_name),
            created_at,
            updated_at: created_at,
        };
        match self
            .renamed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&index)
        {
            Some((name, at)) => Widget {
                name: name.clone(),
                updated_at: *at,
                ..generated
            },
            None => generated,
        }
    }

    fn render(&self, w: &Widget) -> Value {
        let p = person(self.seed, u64::from(w.index));
        json!({
            "id": w.id(),
            "name": w.name,
            "owner_email": p.email,
            "color": COLORS[(w.index % 3) as usize],
            "price": 100 + i64::from(w.index % 50) * 25,
            "created_at": w.created_at,
            "updated_at": w.updated_at,
        })
    }

    /// Every widget id, in index order.
    pub(crate) fn widget_ids(&self) -> Vec<String> {
        (1..=self.size).map(widget_id).collect()
    }

    /// Renames widget `id` at the sandbox clock's now.
    pub(crate) fn rename(&self, id: &str, name: &str) -> Result<(), SandboxError> {
        let index = id
            .strip_prefix("wgt_")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|i| (1..=self.size).contains(i))
            .ok_or_else(|| SandboxError::NotFound {
                api: Api::Example,
                object: "widget",
                id: id.to_string(),
            })?;
        self.renamed
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(index, (name.to_string(), self.clock.now()));
        Ok(())
    }
}

/// `{"error": {"type", "message"}}` with `status`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

impl Room for ExampleState {
    fn api(&self) -> Api {
        Api::Example
    }

    fn state(&self) -> &Arc<ApiState> {
        &self.api
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v1/widgets", get(list))
            .with_state(self)
    }

    fn control_routes(&self) -> Router<Control> {
        control::routes()
    }

    fn vendor_error(&self, kind: VendorError) -> Response {
        match kind {
            VendorError::Unauthorized => {
                error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid API key.")
            }
            VendorError::RateLimited => error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests: 25 per second allowed.",
            ),
            VendorError::ServerError => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Something went wrong.",
            ),
        }
    }
}

/// Parsed list parameters.
struct ListParams {
    limit: usize,
    since: Option<i64>,
    offset: usize,
}

fn params(query: Option<&str>) -> Result<ListParams, String> {
    let mut out = ListParams {
        limit: 50,
        since: None,
        offset: 0,
    };
    let mut token_since = None;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| format!("the query string does not parse: {e}"))?;
    for (k, v) in pairs {
        match k.as_str() {
            "limit" => {
                out.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| format!("limit must be 1..={MAX_LIMIT}, got `{v}`"))?;
            }
            "updated_since" => {
                out.since = Some(
                    v.parse()
                        .map_err(|_| format!("updated_since must be unix seconds, got `{v}`"))?,
                );
            }
            "page_token" => {
                // `<since or ->.<offset>`: the list the first page was cut from.
                let (since, offset) = v
                    .split_once('.')
                    .and_then(|(s, o)| {
                        let since = if s == "-" {
                            None
                        } else {
                            Some(s.parse().ok()?)
                        };
                        Some((since, o.parse().ok()?))
                    })
                    .ok_or_else(|| format!("page_token `{v}` is not one this API issued"))?;
                token_since = Some(since);
                out.offset = offset;
            }
            _ => {}
        }
    }
    if let Some(since) = token_since {
        out.since = since;
    }
    Ok(out)
}

async fn list(
    State(st): State<Arc<ExampleState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| k == st.key);
    if !authorized {
        return st.vendor_error(VendorError::Unauthorized);
    }
    let p = match params(query.as_deref()) {
        Ok(p) => p,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    let mut widgets: Vec<Widget> = (1..=st.size)
        .map(|i| st.widget(i))
        .filter(|w| p.since.is_none_or(|s| w.updated_at >= s))
        .collect();
    widgets.sort_by_key(|w| (w.updated_at, w.index));
    let end = widgets.len().min(p.offset.saturating_add(p.limit));
    let page: Vec<Value> = widgets
        .get(p.offset.min(end)..end)
        .unwrap_or_default()
        .iter()
        .map(|w| st.render(w))
        .collect();
    let next = (end < widgets.len()).then(|| {
        let since = p.since.map_or_else(|| "-".to_string(), |s| s.to_string());
        format!("{since}.{end}")
    });
    Json(json!({"data": page, "next_page_token": next})).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn page_tokens_carry_the_filter_and_bad_parameters_are_named() {
        let p = params(Some("limit=5&page_token=100.10&updated_since=3")).unwrap();
        assert_eq!((p.limit, p.since, p.offset), (5, Some(100), 10));
        let p = params(Some("page_token=-.20")).unwrap();
        assert_eq!((p.limit, p.since, p.offset), (50, None, 20));
        assert!(params(Some("limit=0")).err().unwrap().contains("limit"));
        assert!(params(Some("limit=101")).err().unwrap().contains("limit"));
        assert!(
            params(Some("updated_since=x"))
                .err()
                .unwrap()
                .contains("updated_since")
        );
        assert!(
            params(Some("page_token=zz"))
                .err()
                .unwrap()
                .contains("page_token")
        );
    }
}
