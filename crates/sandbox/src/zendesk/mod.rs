//! The Zendesk Support simulator: `/api/v2/` incremental cursor exports of
//! tickets and users, the time-based organization export, ticket fields,
//! groups, the account's other lists (brands, ticket forms, user and
//! organization fields, group and organization memberships, macros,
//! satisfaction ratings, ticket metrics: lists.rs), deleted tickets,
//! `users/create_or_update_many` with job statuses, organization writes
//! (`show_many`, `create_many`, `update_many`, `destroy_many`), tag
//! additions and `users/search` (organizations.rs), the authenticated agent
//! (`users/me`); basic `email/token` authentication or an OAuth access token
//! (`Authorization: Bearer`), and the per-minute rate limits (account-wide,
//! and 10/min for incremental exports).

mod control;
mod data;
mod lists;
mod organizations;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::config::Api;
use crate::hash::h;
use crate::people::person;
use crate::room::{Control, Room, VendorError};
use crate::state::{ApiState, Clock, RateLimit};
use crate::timeline::{Key, Timeline};
use crate::window::{Admission, Window};

use data::{Kind, USER_BASE, Universe, iso};

/// Incremental export requests per minute.
pub(crate) const INCREMENTAL_PER_MINUTE: u32 = 10;
/// Largest (and default) page of an incremental export.
const MAX_EXPORT_PAGE: usize = 1_000;
/// Most users in one `create_or_update_many`.
const MAX_BULK_USERS: usize = 100;
/// User fields a bulk write may set.
const USER_FIELDS: &[&str] = &[
    "name",
    "email",
    "phone",
    "external_id",
    "organization_id",
    "role",
    "tags",
    "verified",
    "time_zone",
    "locale",
    "details",
    "notes",
    "alias",
    "user_fields",
    "suspended",
];
/// Ticket fields the control API may change.
const TICKET_UPDATABLE: &[&str] = &[
    "subject",
    "description",
    "status",
    "priority",
    "type",
    "tags",
    "assignee_id",
    "group_id",
    "due_at",
    "custom_fields",
];

/// A JSON response with Zendesk's content type.
/// An error answer, boxed to keep `Result`s small.
type Fail = Box<Response>;

fn respond(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(axum::body::Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    respond(
        status,
        json!({"error": code, "description": description}).to_string(),
    )
}

fn unauthorized() -> Response {
    respond(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"Couldn't authenticate you"}"#.to_owned(),
    )
}

fn rate_limited(description: &str, retry_after: u64) -> Response {
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        "APIRateLimitExceeded",
        description,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

/// Zendesk's body for an error the fault layer produces.
fn vendor_error(kind: VendorError) -> Response {
    match kind {
        VendorError::Unauthorized => unauthorized(),
        VendorError::RateLimited => error(
            StatusCode::TOO_MANY_REQUESTS,
            "APIRateLimitExceeded",
            "Number of allowed API requests per minute exceeded",
        ),
        VendorError::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Something went wrong on our end.",
        ),
    }
}

/// Mutations: moved and changed tickets and users, created users, jobs.
#[derive(Default)]
struct Store {
    tickets: Timeline,
    ticket_changes: HashMap<u64, Map<String, Value>>,
    /// Deleted ticket index -> (deleted at, status before).
    deleted: Vec<(u64, i64, String)>,
    users: Timeline,
    user_changes: HashMap<u64, Map<String, Value>>,
    new_users: u64,
    /// Lowercased email -> user index, for users whose email was written.
    emails: HashMap<String, u64>,
    jobs: HashMap<String, Value>,
    /// While set, job statuses are served as still `working` (control.rs).
    jobs_held: bool,
    /// Organizations moved by writes (created ones have indexes past the generated).
    orgs: Timeline,
    /// Organization index -> written fields (all of a created one's).
    org_changes: HashMap<u64, Map<String, Value>>,
    new_orgs: u64,
    /// Lowercased external id -> organization index.
    org_external: HashMap<String, u64>,
    /// Deleted organization indexes.
    deleted_orgs: HashSet<u64>,
    /// Ticket index -> comments added since the start (time, body).
    comments: HashMap<u64, Vec<(i64, String)>>,
}

/// The credentials the simulator accepts.
pub(crate) struct Credentials<'a> {
    /// The agent's email (basic auth `{email}/token:{token}`).
    pub(crate) email: &'a str,
    /// The API token.
    pub(crate) token: &'a str,
    /// The OAuth access token (`Authorization: Bearer <token>`).
    pub(crate) oauth_token: &'a str,
}

/// The Zendesk simulator's state.
pub(crate) struct ZendeskState {
    u: Universe,
    /// `{email}/token:{token}`, as basic auth carries it.
    credentials: String,
    oauth_token: String,
    /// The agent both credentials act as.
    email: String,
    clock: Arc<Clock>,
    api: Arc<ApiState>,
    per_minute: u32,
    minute: Window,
    incremental: Window,
    store: RwLock<Store>,
}

impl ZendeskState {
    /// `credentials` are the accepted ones; `per_minute` the plan's limit.
    pub(crate) fn new(
        seed: u64,
        size: usize,
        credentials: Credentials<'_>,
        per_minute: u32,
        clock: Arc<Clock>,
        api: Arc<ApiState>,
    ) -> Self {
        Self {
            u: Universe::new(seed, size, clock.epoch()),
            credentials: format!("{}/token:{}", credentials.email, credentials.token),
            oauth_token: credentials.oauth_token.to_owned(),
            email: credentials.email.to_owned(),
            clock,
            api,
            per_minute,
            minute: Window::new(Duration::from_secs(60)),
            incremental: Window::new(Duration::from_secs(60)),
            store: RwLock::new(Store::default()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn ticket_index(&self, id: u64) -> Option<u64> {
        id.checked_sub(1)
            .filter(|&i| i < self.u.count(Kind::Ticket))
    }

    /// Applies `fields` to ticket `id` and bumps its `updated_at` to now.
    /// `Err` names the first field that cannot be updated; `Ok(false)`: no such live ticket.
    pub(crate) fn update_ticket(
        &self,
        id: u64,
        fields: Map<String, Value>,
    ) -> Result<bool, String> {
        if let Some(bad) = fields
            .keys()
            .find(|k| !TICKET_UPDATABLE.contains(&k.as_str()))
        {
            return Err(bad.clone());
        }
        let Some(i) = self.ticket_index(id) else {
            return Ok(false);
        };
        let mut store = self.write();
        if store.deleted.iter().any(|d| d.0 == i) {
            return Ok(false);
        }
        store.ticket_changes.entry(i).or_default().extend(fields);
        store.tickets.touch(i, self.clock.now());
        Ok(true)
    }

    /// Adds a public comment to live ticket `id` now (its `updated_at`
    /// moves to now); false when there is no such live ticket.
    pub(crate) fn add_comment(&self, id: u64, body: &str) -> bool {
        let Some(i) = self.ticket_index(id) else {
            return false;
        };
        let now = self.clock.now();
        let mut store = self.write();
        if store.deleted.iter().any(|d| d.0 == i) {
            return false;
        }
        store.tickets.touch(i, now);
        store
            .comments
            .entry(i)
            .or_default()
            .push((now, body.to_owned()));
        true
    }

    /// The comment ids of every live ticket, ticket by ticket.
    pub(crate) fn comment_ids(&self) -> Vec<u64> {
        let store = self.read();
        (0..self.u.count(Kind::Ticket))
            .filter(|i| !store.deleted.iter().any(|d| d.0 == *i))
            .flat_map(|i| {
                let added = store.comments.get(&i).map_or(0, Vec::len) as u64;
                (0..data::generated_comments(&self.u, i))
                    .chain((0..added).map(|j| 100 + j))
                    .map(move |k| data::comment_id(i, k))
            })
            .collect()
    }

    /// Deletes ticket `id` (it is exported with `status: "deleted"` from now on).
    pub(crate) fn delete_ticket(&self, id: u64) -> bool {
        let Some(i) = self.ticket_index(id) else {
            return false;
        };
        let before = self.render_ticket(&self.read(), "", i);
        let mut store = self.write();
        if store.deleted.iter().any(|d| d.0 == i) {
            return false;
        }
        let previous = before["status"].as_str().unwrap_or("open").to_owned();
        let now = self.clock.now();
        store.deleted.push((i, now, previous));
        store
            .ticket_changes
            .entry(i)
            .or_default()
            .insert("status".to_owned(), Value::from("deleted"));
        store.tickets.touch(i, now);
        true
    }

    /// The id of every ticket the exports serve (deleted ones included).
    pub(crate) fn ticket_ids(&self) -> Vec<u64> {
        (1..=self.u.count(Kind::Ticket)).collect()
    }

    /// Creates `n` end users at the current time (people beyond the generated
    /// ones) and returns their ids.
    pub(crate) fn create_users(&self, n: usize) -> Vec<u64> {
        let mut store = self.write();
        (0..n)
            .map(|_| {
                let i = self.u.size + store.new_users;
                let p = person(self.u.seed, self.u.person_index(i));
                let mut fields = Map::new();
                fields.insert("name".to_owned(), Value::from(p.full_name()));
                fields.insert("email".to_owned(), Value::from(p.email.clone()));
                self.create_user(&mut store, fields)
            })
            .collect()
    }

    fn create_user(&self, store: &mut Store, mut fields: Map<String, Value>) -> u64 {
        let i = self.u.size + store.new_users;
        store.new_users += 1;
        let now = self.clock.now();
        fields.insert("created_at".to_owned(), Value::from(iso(now)));
        fields.insert("organization_id".to_owned(), Value::Null);
        if let Some(email) = fields.get("email").and_then(Value::as_str) {
            store.emails.insert(email.trim().to_lowercase(), i);
        }
        store.user_changes.insert(i, fields);
        store.users.touch(i, now);
        USER_BASE + i
    }

    /// The user with this email as the API renders it now (any case).
    pub(crate) fn user_by_email(&self, email: &str) -> Option<Value> {
        let store = self.read();
        let i = self.find_user(&store, email)?;
        Some(self.render_user(&store, "http://sandbox.invalid", i))
    }

    /// A job status as `GET /api/v2/job_statuses/{id}` returns it.
    pub(crate) fn job_status(&self, id: &str) -> Option<Value> {
        self.read().jobs.get(id).cloned()
    }

    /// The user index with this email (any case, surrounding spaces ignored).
    fn find_user(&self, store: &Store, email: &str) -> Option<u64> {
        let email = email.trim().to_lowercase();
        if let Some(&i) = store.emails.get(&email) {
            return Some(i);
        }
        let local = email.split('@').next()?;
        let digits = local.trim_start_matches(|c: char| !c.is_ascii_digit());
        let p: u64 = digits.parse().ok()?;
        let i = self.u.user_of_person(p)?;
        (person(self.u.seed, p).email == email && !store.user_changes.contains_key(&i)).then_some(i)
    }

    fn render_user(&self, store: &Store, base: &str, i: u64) -> Value {
        let mut s = String::with_capacity(1_200);
        data::user(&self.u, base, i, &mut s);
        let mut v: Map<String, Value> = serde_json::from_str(&s).unwrap_or_default();
        if let Some(changes) = store.user_changes.get(&i) {
            v.extend(changes.clone());
        }
        let updated = store.users.time(i, |i| self.u.updated(Kind::User, i));
        v.insert("updated_at".to_owned(), Value::from(iso(updated)));
        Value::Object(v)
    }

    fn render_ticket(&self, store: &Store, base: &str, i: u64) -> Value {
        let mut s = String::with_capacity(1_500);
        data::ticket(&self.u, base, i, &mut s);
        let mut v: Map<String, Value> = serde_json::from_str(&s).unwrap_or_default();
        if let Some(changes) = store.ticket_changes.get(&i) {
            v.extend(changes.clone());
            let updated = store.tickets.time(i, |i| self.u.updated(Kind::Ticket, i));
            v.insert("updated_at".to_owned(), Value::from(iso(updated)));
            v.insert("generated_timestamp".to_owned(), Value::from(updated));
        }
        Value::Object(v)
    }

    /// Basic `{email}/token:{token}` or `Bearer <oauth token>`; anything else is 401.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Fail> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let valid = if let Some(token) = value.strip_prefix("Bearer ") {
            !self.oauth_token.is_empty() && token.trim() == self.oauth_token
        } else if let Some(b64) = value.strip_prefix("Basic ") {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .is_some_and(|b| b == self.credentials.as_bytes())
        } else {
            false
        };
        if valid {
            Ok(())
        } else {
            Err(Box::new(unauthorized()))
        }
    }
}

type Shared = Arc<ZendeskState>;

/// The Zendesk routes (without the fault layer), with and without `.json`.
fn router(state: Shared) -> Router {
    let mut r = Router::new();
    for suffix in ["", ".json"] {
        r = r
            .route(
                &format!("/api/v2/incremental/tickets/cursor{suffix}"),
                get(export_tickets),
            )
            .route(
                &format!("/api/v2/incremental/users/cursor{suffix}"),
                get(export_users),
            )
            .route(
                &format!("/api/v2/incremental/organizations{suffix}"),
                get(export_organizations),
            )
            .route(
                &format!("/api/v2/ticket_fields{suffix}"),
                get(ticket_fields),
            )
            .route(&format!("/api/v2/groups{suffix}"), get(groups))
            .route(&format!("/api/v2/users/me{suffix}"), get(me))
            .route(
                &format!("/api/v2/deleted_tickets{suffix}"),
                get(deleted_tickets),
            )
            .route(
                &format!("/api/v2/users/create_or_update_many{suffix}"),
                post(create_or_update_many),
            )
            .route(
                &format!("/api/v2/users/search{suffix}"),
                get(organizations::search_users),
            )
            .route(
                &format!("/api/v2/organizations/show_many{suffix}"),
                get(organizations::show_many),
            )
            .route(
                &format!("/api/v2/organizations/create_many{suffix}"),
                post(organizations::create_many),
            )
            .route(
                &format!("/api/v2/organizations/update_many{suffix}"),
                put(organizations::update_many),
            )
            .route(
                &format!("/api/v2/organizations/destroy_many{suffix}"),
                delete(organizations::destroy_many),
            );
    }
    for list in lists::List::ALL {
        for suffix in ["", ".json"] {
            r = r.route(
                &format!("/api/v2/{}{suffix}", list.name()),
                get(move |st: State<Shared>, headers: HeaderMap, q: RawQuery| {
                    lists::serve(list, st, headers, q)
                }),
            );
        }
    }
    r.route("/api/v2/tickets/{id}/comments", get(ticket_comments))
        .route("/api/v2/tickets/{id}/comments.json", get(ticket_comments))
        .route("/api/v2/job_statuses/{id}", get(job_status))
        .route("/api/v2/users/{id}/tags", put(organizations::user_tags))
        .route(
            "/api/v2/users/{id}/tags.json",
            put(organizations::user_tags),
        )
        .route(
            "/api/v2/organizations/{id}/tags",
            put(organizations::organization_tags),
        )
        .route(
            "/api/v2/organizations/{id}/tags.json",
            put(organizations::organization_tags),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits))
        .with_state(state)
}

impl Room for ZendeskState {
    fn api(&self) -> Api {
        Api::Zendesk
    }

    fn state(&self) -> &Arc<ApiState> {
        &self.api
    }

    fn routes(self: Arc<Self>) -> Router {
        router(self)
    }

    fn control_routes(&self) -> Router<Control> {
        control::routes()
    }

    fn vendor_error(&self, kind: VendorError) -> Response {
        vendor_error(kind)
    }
}

fn set_header(resp: &mut Response, name: &'static str, value: u64) {
    resp.headers_mut().insert(name, HeaderValue::from(value));
}

/// The documented limits: the plan's requests per minute, and 10 incremental
/// export requests per minute; `X-Rate-Limit` headers on every answer.
async fn limits(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if st.api.rate_limit() != RateLimit::Documented {
        return next.run(req).await;
    }
    let general: Admission = st.minute.admit(st.per_minute);
    if !general.admitted {
        return rate_limited(
            "Number of allowed API requests per minute exceeded",
            general.reset_secs,
        );
    }
    if req.uri().path().starts_with("/api/v2/incremental/") {
        let inc = st.incremental.admit(INCREMENTAL_PER_MINUTE);
        if !inc.admitted {
            return rate_limited(
                "Number of allowed incremental export API requests per minute exceeded",
                inc.reset_secs,
            );
        }
    }
    let mut resp = next.run(req).await;
    set_header(&mut resp, "x-rate-limit", u64::from(general.limit));
    set_header(
        &mut resp,
        "x-rate-limit-remaining",
        u64::from(general.remaining),
    );
    resp
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    // Behind a TLS-terminating proxy (or a client routed to the sandbox as
    // `https://{subdomain}.zendesk.com`), links keep the client's scheme.
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn query(raw: Option<&str>) -> Result<HashMap<String, String>, Fail> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or_default())
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                "Invalid query string",
            ))
        })
}

fn encode_cursor((t, i): Key) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{t}|{i}"))
}

fn decode_cursor(c: &str) -> Option<Key> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (t, i) = text.split_once('|')?;
    Some((t.parse().ok()?, i.parse().ok()?))
}

fn per_page(q: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, Fail> {
    match q.get("per_page") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .map(|n| n.min(max))
            .ok_or_else(|| {
                Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    "per_page must be a positive integer",
                ))
            }),
    }
}

/// A `start_time` value: Unix seconds, written as an integer or, as some
/// clients send it (Singer's tap-zendesk: `1537142400.0`), a decimal.
fn unix_seconds(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
        // Whole seconds; the fraction is dropped.
        Some(f.trunc() as i64)
    })
}

/// Where an export starts: after a cursor, or at `start_time` (at least a minute ago).
fn export_start(st: &ZendeskState, q: &HashMap<String, String>) -> Result<Key, Fail> {
    if let Some(c) = q.get("cursor") {
        return decode_cursor(c).ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "InvalidPaginationParameter",
                "cursor is invalid",
            ))
        });
    }
    let Some(start) = q.get("start_time") else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidPaginationParameter",
            "start_time or cursor is required",
        )));
    };
    let Some(start) = unix_seconds(start) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "start_time must be an integer",
        )));
    };
    if start > st.clock.now() - 60 {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "Too recent start_time. Use a start_time older than 1 minute",
        )));
    }
    Ok((start - 1, u64::MAX))
}

#[derive(Clone, Copy)]
enum Export {
    Tickets,
    Users,
}

async fn export_tickets(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    export(&st, &headers, q.as_deref(), Export::Tickets)
}

async fn export_users(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    export(&st, &headers, q.as_deref(), Export::Users)
}

fn export(st: &ZendeskState, headers: &HeaderMap, raw: Option<&str>, what: Export) -> Response {
    if let Err(e) = st.authorize(headers) {
        return *e;
    }
    let q = match query(raw) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let (after, limit) = match (
        export_start(st, &q),
        per_page(&q, MAX_EXPORT_PAGE, MAX_EXPORT_PAGE),
    ) {
        (Ok(a), Ok(l)) => (a, l),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    let base = base_url(headers);
    let store = st.read();
    let (name, timeline, kind) = match what {
        Export::Tickets => ("tickets", &store.tickets, Kind::Ticket),
        Export::Users => ("users", &store.users, Kind::User),
    };
    let generated_n = st.u.count(kind);
    let generated = |i: u64| st.u.updated(kind, i);
    let (keys, more) = timeline.page(
        generated_n,
        &generated,
        Some(after),
        (i64::MIN, i64::MAX),
        limit,
    );
    let records: Vec<Value> = keys
        .iter()
        .map(|&(_, i)| match what {
            Export::Tickets => st.render_ticket(&store, &base, i),
            Export::Users => st.render_user(&store, &base, i),
        })
        .collect();
    let after_cursor = encode_cursor(keys.last().copied().unwrap_or(after));
    let path = format!("/api/v2/incremental/{name}/cursor.json");
    let mut body = Map::new();
    body.insert(name.to_owned(), Value::Array(records));
    // The next page keeps the page size the client asked for.
    let page_size = q
        .get("per_page")
        .map(|_| format!("&per_page={limit}"))
        .unwrap_or_default();
    body.insert(
        "after_url".to_owned(),
        Value::from(format!("{base}{path}?cursor={after_cursor}{page_size}")),
    );
    body.insert("after_cursor".to_owned(), Value::from(after_cursor));
    body.insert("before_url".to_owned(), Value::Null);
    body.insert("before_cursor".to_owned(), Value::Null);
    body.insert("end_of_stream".to_owned(), Value::Bool(!more));
    respond(StatusCode::OK, Value::Object(body).to_string())
}

async fn export_organizations(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    if q.contains_key("cursor") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidPaginationParameter",
            "cursor is not supported by the time-based organization export",
        );
    }
    let (start, limit) = match (
        export_start(&st, &q),
        per_page(&q, MAX_EXPORT_PAGE, MAX_EXPORT_PAGE),
    ) {
        (Ok((t, _)), Ok(l)) => (t + 1, l),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    let base = base_url(&headers);
    let n = st.u.count(Kind::Organization);
    let generated = |k: u64| st.u.updated(Kind::Organization, k);
    let store = st.read();
    let (keys, more) = store
        .orgs
        .page(n, &generated, None, (start, i64::MAX), limit);
    // Written organizations come out at their write time; deleted ones leave.
    let orgs: Vec<Value> = keys
        .iter()
        .filter(|(_, k)| !store.deleted_orgs.contains(k))
        .map(|&(_, k)| st.render_org(&store, &base, k))
        .collect();
    let end_time = keys.last().map_or(start, |k| k.0);
    let count = orgs.len();
    let body = json!({
        "organizations": orgs,
        "next_page": format!("{base}/api/v2/incremental/organizations.json?start_time={end_time}"),
        "count": count,
        "end_of_stream": !more,
        "end_time": end_time,
    })
    .to_string();
    respond(StatusCode::OK, body)
}

async fn ticket_fields(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let base = base_url(&headers);
    let mut body = String::from(r#"{"ticket_fields":["#);
    for k in 0..data::TICKET_FIELDS.len() {
        if k > 0 {
            body.push(',');
        }
        data::ticket_field(&base, st.u.epoch, k, &mut body);
    }
    body.push_str(&format!(
        r#"],"next_page":null,"previous_page":null,"count":{}}}"#,
        data::TICKET_FIELDS.len()
    ));
    respond(StatusCode::OK, body)
}

/// `GET /api/v2/users/me`: the admin the API token or OAuth token acts as.
async fn me(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let mut s = String::from(r#"{"user":"#);
    data::agent(&st.u, &base_url(&headers), &st.email, &mut s);
    s.push('}');
    respond(StatusCode::OK, s)
}

/// Groups: cursor pagination with `page[size]`/`page[after]`, or one offset page.
/// `GET /api/v2/tickets/{id}/comments`: the generated comments then the
/// added ones, oldest first, with cursor pagination (`page[size]` up to 100,
/// `page[after]`); without `page[size]`, all of them. A deleted or unknown
/// ticket is 404.
async fn ticket_comments(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let not_found = || error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found");
    let id = id.trim_end_matches(".json");
    let Some(i) = id.parse::<u64>().ok().and_then(|id| st.ticket_index(id)) else {
        return not_found();
    };
    let store = st.read();
    if store.deleted.iter().any(|d| d.0 == i) {
        return not_found();
    }
    let generated = data::generated_comments(&st.u, i);
    let added = store
        .comments
        .get(&i)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let n = generated as usize + added.len();
    let render = |range: std::ops::Range<usize>| {
        let mut s = String::from("[");
        for k in range.clone() {
            if k > range.start {
                s.push(',');
            }
            match k.checked_sub(generated as usize).and_then(|j| added.get(j)) {
                Some((at, body)) => data::comment(
                    &st.u,
                    i,
                    100 + (k - generated as usize) as u64,
                    Some((*at, body)),
                    &mut s,
                ),
                None => data::comment(&st.u, i, k as u64, None, &mut s),
            }
        }
        s.push(']');
        s
    };
    let base = base_url(&headers);
    let path = format!("{base}/api/v2/tickets/{}/comments.json", i + 1);
    match cursor_page(&q, n, &path) {
        Ok(None) => respond(
            StatusCode::OK,
            format!(
                r#"{{"comments":{},"next_page":null,"previous_page":null,"count":{n}}}"#,
                render(0..n)
            ),
        ),
        Ok(Some((range, tail))) => respond(
            StatusCode::OK,
            format!(r#"{{"comments":{},{tail}"#, render(range)),
        ),
        Err(e) => *e,
    }
}

/// Zendesk's cursor pagination over `n` items listed at `path`: `None`
/// without `page[size]` (the whole list, offset style), else the range of
/// this page and the body's tail (`meta` and `links`, closing the object).
fn cursor_page(
    q: &HashMap<String, String>,
    n: usize,
    path: &str,
) -> Result<Option<(std::ops::Range<usize>, String)>, Fail> {
    let Some(size) = q.get("page[size]") else {
        return Ok(None);
    };
    let bad = |message: &str| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidPaginationParameter",
            message,
        ))
    };
    let size = size
        .parse::<usize>()
        .ok()
        .filter(|&s| (1..=100).contains(&s))
        .ok_or_else(|| bad("page[size] must be between 1 and 100"))?;
    let start = match q.get("page[after]") {
        None => 0,
        Some(c) => match decode_cursor(c) {
            Some((_, k)) => (k as usize).saturating_add(1),
            None => return Err(bad("page[after] is invalid")),
        },
    };
    let end = start.saturating_add(size).min(n);
    let start = start.min(end);
    let has_more = end < n;
    let after = (end > start).then(|| encode_cursor((0, (end - 1) as u64)));
    let before = (end > start).then(|| encode_cursor((0, start as u64)));
    let next = match (&after, has_more) {
        (Some(a), true) => Value::from(format!("{path}?page%5Bafter%5D={a}&page%5Bsize%5D={size}")),
        _ => Value::Null,
    };
    let tail = json!({
        "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
        "links": {"next": next, "prev": Value::Null},
    })
    .to_string();
    Ok(Some((start..end, tail.trim_start_matches('{').to_string())))
}

async fn groups(State(st): State<Shared>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let base = base_url(&headers);
    let n = data::GROUPS.len();
    let render = |range: std::ops::Range<usize>| {
        let mut s = String::from("[");
        for k in range.clone() {
            if k > range.start {
                s.push(',');
            }
            data::group(&base, st.u.epoch, k, &mut s);
        }
        s.push(']');
        s
    };
    match cursor_page(&q, n, &format!("{base}/api/v2/groups.json")) {
        Ok(None) => respond(
            StatusCode::OK,
            format!(
                r#"{{"groups":{},"next_page":null,"previous_page":null,"count":{n}}}"#,
                render(0..n)
            ),
        ),
        Ok(Some((range, tail))) => respond(
            StatusCode::OK,
            format!(r#"{{"groups":{},{tail}"#, render(range)),
        ),
        Err(e) => *e,
    }
}

async fn deleted_tickets(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let per_page = match per_page(&q, 100, 100) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let base = base_url(&headers);
    let store = st.read();
    let count = store.deleted.len();
    let items: Vec<Value> = store
        .deleted
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(i, at, previous)| {
            let ticket = st.render_ticket(&store, &base, *i);
            json!({
                "id": i + 1,
                "subject": ticket["subject"],
                "actor": {"id": USER_BASE, "name": "Sandbox Admin"},
                "deleted_at": iso(*at),
                "previous_state": previous,
            })
        })
        .collect();
    let link = |p: usize| {
        Value::from(format!(
            "{base}/api/v2/deleted_tickets.json?page={p}&per_page={per_page}"
        ))
    };
    let next = if page * per_page < count {
        link(page + 1)
    } else {
        Value::Null
    };
    let previous = if page > 1 {
        link(page - 1)
    } else {
        Value::Null
    };
    respond(
        StatusCode::OK,
        json!({"deleted_tickets": items, "next_page": next, "previous_page": previous, "count": count})
            .to_string(),
    )
}

fn valid_email(email: &str) -> bool {
    let email = email.trim();
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

fn failed(index: usize, action: &str, code: &str, details: String) -> Value {
    json!({"index": index, "action": action, "success": false, "error": code, "details": details})
}

async fn create_or_update_many(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let users = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut m)) => match m.remove("users") {
            Some(Value::Array(users)) => users,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    "users must be an array",
                );
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                "The request body is not valid JSON",
            );
        }
    };
    if users.len() > MAX_BULK_USERS {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            &format!("Too many users: at most {MAX_BULK_USERS} per request"),
        );
    }
    let base = base_url(&headers);
    let now = st.clock.now();
    let mut store = st.write();
    let mut results = Vec::with_capacity(users.len());
    for (index, user) in users.into_iter().enumerate() {
        let Value::Object(user) = user else {
            results.push(failed(
                index,
                "create",
                "InvalidValue",
                "a user must be a JSON object".to_owned(),
            ));
            continue;
        };
        let fields: Map<String, Value> = user
            .into_iter()
            .filter(|(k, _)| USER_FIELDS.contains(&k.as_str()))
            .collect();
        let Some(email) = fields
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            results.push(failed(
                index,
                "create",
                "InvalidValue",
                "Email: cannot be blank".to_owned(),
            ));
            continue;
        };
        if !valid_email(&email) {
            results.push(failed(
                index,
                "create",
                "InvalidValue",
                format!("Email: {email} is not properly formatted"),
            ));
            continue;
        }
        let email = email.trim().to_owned();
        match st.find_user(&store, &email) {
            Some(i) => {
                let entry = store.user_changes.entry(i).or_default();
                entry.extend(fields);
                entry.insert("email".to_owned(), Value::from(email.clone()));
                store.emails.insert(email.to_lowercase(), i);
                store.users.touch(i, now);
                results.push(json!({
                    "index": index, "id": USER_BASE + i, "action": "update",
                    "success": true, "status": "Updated", "email": email,
                }));
            }
            None => {
                if fields
                    .get("name")
                    .and_then(Value::as_str)
                    .is_none_or(|n| n.trim().is_empty())
                {
                    results.push(failed(
                        index,
                        "create",
                        "InvalidValue",
                        "Name: is too short (minimum one character)".to_owned(),
                    ));
                    continue;
                }
                let mut fields = fields;
                fields.insert("email".to_owned(), Value::from(email.clone()));
                let id = st.create_user(&mut store, fields);
                results.push(json!({
                    "index": index, "id": id, "action": "create",
                    "success": true, "status": "Created", "email": email,
                }));
            }
        }
    }
    st.queue_job(&mut store, &base, "Bulk Create or Update Users", results)
}

impl ZendeskState {
    /// Records a completed job with `results` and answers it as queued, as
    /// every bulk endpoint does.
    fn queue_job(
        &self,
        store: &mut Store,
        base: &str,
        job_type: &str,
        results: Vec<Value>,
    ) -> Response {
        let now = self.clock.now();
        let seq = store.jobs.len() as u64;
        let id = format!(
            "{:016x}{:016x}",
            h(self.u.seed, 0x2E_10B, seq),
            h(self.u.seed, 0x2E_10C, seq)
        );
        let url = format!("{base}/api/v2/job_statuses/{id}.json");
        let total = results.len();
        let done = json!({
            "id": id, "url": url, "job_type": job_type,
            "total": total, "progress": total, "status": "completed",
            "message": format!("Completed at {}", iso(now)), "results": results,
        });
        store.jobs.insert(id.clone(), done);
        respond(
            StatusCode::OK,
            json!({"job_status": {
                "id": id, "url": url, "job_type": job_type,
                "total": total, "progress": Value::Null, "status": "queued",
                "message": Value::Null, "results": Value::Null,
            }})
            .to_string(),
        )
    }
}

async fn job_status(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let id = id.trim_end_matches(".json");
    match st.served_job_status(id) {
        Some(job) => respond(StatusCode::OK, json!({"job_status": job}).to_string()),
        None => error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_emails_are_checked() {
        assert_eq!(
            decode_cursor(&encode_cursor((1_700_000_000, 42))),
            Some((1_700_000_000, 42))
        );
        assert_eq!(decode_cursor("!!"), None);
        assert!(valid_email(" a.b@example.com "));
        assert!(!valid_email("a.b@example"));
        assert!(!valid_email("no-at-sign"));
        assert!(!valid_email("a b@example.com"));
    }
}
