//! The Intercom simulator (API 2.16): contacts (list, search, create,
//! update), companies (pages and the one-per-app scroll), conversations (list,
//! search), admins, the token's admin (`/me`) and tags; bearer-token
//! authentication, the
//! `Intercom-Version` header, and the per-app limit in 10-second windows with
//! `X-RateLimit-*` headers.

mod control;
mod data;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::config::Api;
use crate::hash::h;
use crate::people::person;
use crate::room::{Control, Room, VendorError};
use crate::state::{ApiState, Clock, RateLimit, lock};
use crate::timeline::{Key, Timeline};
use crate::window::Window;

use data::{Kind, Universe};

/// The API version answered when the request names none.
const DEFAULT_VERSION: &str = "2.16";
/// Largest `per_page` of contact and conversation lists and searches.
const MAX_PER_PAGE: usize = 150;
/// Companies per scroll page.
const SCROLL_PAGE: u64 = 50;
/// An unused scroll expires after this long.
const SCROLL_IDLE: Duration = Duration::from_secs(60);
/// Contact fields `POST /contacts` and `PUT /contacts/{id}` may set.
const WRITABLE: &[&str] = &[
    "role",
    "external_id",
    "email",
    "phone",
    "name",
    "avatar",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
    "custom_attributes",
];

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

fn request_id() -> String {
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012x}")
}

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

/// Intercom's `error.list` body.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    respond(
        status,
        json!({
            "type": "error.list",
            "request_id": request_id(),
            "errors": [{"code": code, "message": message}],
        })
        .to_string(),
    )
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Access Token Invalid",
    )
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "parameter_invalid", message)
}

/// Intercom's body for an error the fault layer produces.
fn vendor_error(kind: VendorError) -> Response {
    match kind {
        VendorError::Unauthorized => unauthorized(),
        VendorError::RateLimited => error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "You have exceeded the rate limit. Please try again later.",
        ),
        VendorError::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Request failed due to an internal error. Please retry the request.",
        ),
    }
}

/// Contact mutations.
#[derive(Default)]
struct Store {
    contacts: Timeline,
    changes: HashMap<u64, Map<String, Value>>,
    new_contacts: u64,
    /// Lowercased email -> contact index, for contacts whose email was written.
    emails: HashMap<String, u64>,
    /// Contacts written through the API, in order (repeats kept once).
    written: Vec<u64>,
    /// Conversations replied to since the start, with their new `updated_at`.
    conversations: Timeline,
    /// The times of each conversation's replies, oldest first.
    replies: HashMap<u64, Vec<i64>>,
}

/// The open company scroll.
struct Scroll {
    param: String,
    next: u64,
    used: Instant,
}

/// The Intercom simulator's state.
pub(crate) struct IntercomState {
    u: Universe,
    token: String,
    clock: Arc<Clock>,
    api: Arc<ApiState>,
    per_window: u32,
    window: Window,
    store: RwLock<Store>,
    scroll: Mutex<Option<Scroll>>,
    scrolls_opened: AtomicU64,
}

/// Fields of a contact created without them through `POST /contacts`.
const BLANK: &[&str] = &[
    "phone",
    "name",
    "external_id",
    "owner_id",
    "signed_up_at",
    "last_seen_at",
    "last_replied_at",
    "browser",
    "browser_version",
    "browser_language",
    "os",
];

impl IntercomState {
    /// `per_minute` is the app's limit, enforced as a sixth per 10 seconds.
    pub(crate) fn new(
        seed: u64,
        size: usize,
        token: String,
        per_minute: u32,
        clock: Arc<Clock>,
        api: Arc<ApiState>,
    ) -> Self {
        Self {
            u: Universe::new(seed, size, clock.epoch()),
            token,
            clock,
            api,
            per_window: (per_minute / 6).max(1),
            window: Window::new(Duration::from_secs(10)),
            store: RwLock::new(Store::default()),
            scroll: Mutex::new(None),
            scrolls_opened: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, store: &Store) -> u64 {
        self.u.size + store.new_contacts
    }

    fn find_id(&self, store: &Store, id: &str) -> Option<u64> {
        self.u
            .parse_contact_id(id)
            .filter(|&i| i < self.count(store))
    }

    /// The contact with this email (any case, surrounding spaces ignored).
    fn find_email(&self, store: &Store, email: &str) -> Option<u64> {
        let email = email.trim().to_lowercase();
        if let Some(&i) = store.emails.get(&email) {
            return Some(i);
        }
        let local = email.split('@').next()?;
        let p: u64 = local
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()?;
        let i = self.u.contact_of_person(p)?;
        let unchanged = !store
            .changes
            .get(&i)
            .is_some_and(|c| c.contains_key("email"));
        (unchanged && person(self.u.seed, p).email == email).then_some(i)
    }

    fn created_at(&self, store: &Store, i: u64) -> i64 {
        store
            .changes
            .get(&i)
            .and_then(|c| c.get("created_at"))
            .and_then(Value::as_i64)
            .unwrap_or_else(|| self.u.created(Kind::Contact, i))
    }

    fn render(&self, store: &Store, i: u64) -> Value {
        let mut s = String::with_capacity(2_000);
        data::contact(&self.u, i, &mut s);
        let mut v: Map<String, Value> = serde_json::from_str(&s).unwrap_or_default();
        if let Some(changes) = store.changes.get(&i) {
            v.extend(changes.clone());
            let updated = store.contacts.time(i, |i| self.u.updated(Kind::Contact, i));
            v.insert("updated_at".to_owned(), Value::from(updated));
            let domain = v
                .get("email")
                .and_then(Value::as_str)
                .and_then(|e| e.trim().split_once('@'))
                .map(|(_, d)| d.to_lowercase());
            v.insert(
                "email_domain".to_owned(),
                domain.map_or(Value::Null, Value::from),
            );
        }
        Value::Object(v)
    }

    /// Writes `fields` to contact `i` at `now`.
    fn apply(&self, store: &mut Store, i: u64, fields: Map<String, Value>, now: i64) {
        if let Some(email) = fields.get("email").and_then(Value::as_str) {
            store.emails.insert(email.trim().to_lowercase(), i);
        }
        store.changes.entry(i).or_default().extend(fields);
        store.contacts.touch(i, now);
    }

    fn create(&self, store: &mut Store, fields: Map<String, Value>, blank: bool) -> u64 {
        let i = self.count(store);
        store.new_contacts += 1;
        let now = self.clock.now();
        let mut base = Map::new();
        base.insert("created_at".to_owned(), Value::from(now));
        if blank {
            for k in BLANK {
                base.insert((*k).to_owned(), Value::Null);
            }
            base.insert("role".to_owned(), Value::from("user"));
            base.insert(
                "location".to_owned(),
                json!({"type": "location", "country": null, "region": null, "city": null}),
            );
            base.insert(
                "companies".to_owned(),
                json!({"data": [], "url": format!("/contacts/{}/companies", self.u.contact_id(i)), "total_count": 0, "has_more": false}),
            );
        }
        base.extend(fields);
        self.apply(store, i, base, now);
        i
    }

    /// Updates contact `id` with `fields` (contact properties) and bumps its
    /// `updated_at`; false when there is no such contact.
    pub(crate) fn update_contact(&self, id: &str, fields: Map<String, Value>) -> bool {
        let mut store = self.write();
        let Some(i) = self.find_id(&store, id) else {
            return false;
        };
        self.apply(&mut store, i, fields, self.clock.now());
        true
    }

    /// Adds an admin's reply to conversation `id` now (a new part, and the
    /// conversation's `updated_at` moves to now); false when there is none.
    pub(crate) fn reply_to_conversation(&self, id: &str) -> bool {
        let Some(c) = self.conversation_index(id) else {
            return false;
        };
        let now = self.clock.now();
        let mut store = self.write();
        store.conversations.touch(c, now);
        store.replies.entry(c).or_default().push(now);
        true
    }

    /// How many parts conversation `id` has (generated and replies).
    pub(crate) fn conversation_part_count(&self, id: &str) -> Option<u64> {
        let c = self.conversation_index(id)?;
        let replies = self.read().replies.get(&c).map_or(0, Vec::len) as u64;
        Some(data::generated_parts(&self.u, c) + replies)
    }

    /// The id of every conversation part served now, conversation by conversation.
    pub(crate) fn conversation_part_ids(&self) -> Vec<String> {
        let store = self.read();
        (0..self.u.count(Kind::Conversation))
            .flat_map(|c| {
                let replies = store.replies.get(&c).map_or(0, Vec::len);
                data::part_ids(&self.u, c, replies)
            })
            .collect()
    }

    /// The generated conversation `id` names.
    fn conversation_index(&self, id: &str) -> Option<u64> {
        let c = id
            .parse::<u64>()
            .ok()?
            .checked_sub(data::CONVERSATION_ID_BASE)?;
        (c < self.u.count(Kind::Conversation)).then_some(c)
    }

    /// Creates `n` generated contacts now and returns their ids.
    pub(crate) fn create_contacts(&self, n: usize) -> Vec<String> {
        let mut store = self.write();
        (0..n)
            .map(|_| {
                let i = self.count(&store);
                let p = person(self.u.seed, self.u.person_index(i));
                let mut fields = Map::new();
                fields.insert("email".to_owned(), Value::from(p.email));
                let i = self.create(&mut store, fields, false);
                self.u.contact_id(i)
            })
            .collect()
    }

    /// The id of every contact, generated and created, in id order.
    pub(crate) fn contact_ids(&self) -> Vec<String> {
        let store = self.read();
        (0..self.count(&store))
            .map(|i| self.u.contact_id(i))
            .collect()
    }

    /// A contact as the API serves it now.
    pub(crate) fn contact(&self, id: &str) -> Option<Value> {
        let store = self.read();
        self.find_id(&store, id).map(|i| self.render(&store, i))
    }

    /// Contacts created or updated through the API, as they are now.
    pub(crate) fn written_contacts(&self) -> Vec<Value> {
        let store = self.read();
        store
            .written
            .iter()
            .map(|&i| self.render(&store, i))
            .collect()
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Fail> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if token == Some(self.token.as_str()) {
            Ok(())
        } else {
            Err(Box::new(unauthorized()))
        }
    }
}

type Shared = Arc<IntercomState>;

/// The Intercom routes (without the fault layer).
fn router(state: Shared) -> Router {
    Router::new()
        .route("/contacts", get(list_contacts).post(create_contact))
        .route("/contacts/search", post(search_contacts))
        .route("/contacts/{id}", get(get_contact).put(update_contact))
        .route("/companies", get(list_companies))
        .route("/companies/scroll", get(scroll_companies))
        .route("/conversations", get(list_conversations))
        .route("/conversations/search", post(search_conversations))
        .route("/conversations/{id}", get(get_conversation))
        .route("/admins", get(admins))
        .route("/me", get(me))
        .route("/tags", get(tags))
        .route("/teams", get(teams))
        .route("/segments", get(segments))
        .route("/data_attributes", get(data_attributes))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "Resource Not Found") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits))
        .with_state(state)
}

impl Room for IntercomState {
    fn api(&self) -> Api {
        Api::Intercom
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

/// Authentication, the rate limit and its headers, and the version echo.
async fn limits(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let version = req
        .headers()
        .get("intercom-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static(DEFAULT_VERSION));
    let admission =
        (st.api.rate_limit() == RateLimit::Documented).then(|| st.window.admit(st.per_window));
    let mut resp = match admission {
        Some(a) if !a.admitted => error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            &format!("Exceeded rate limit of {} in 10_seconds", a.limit),
        ),
        _ => match st.authorize(req.headers()) {
            Ok(()) => next.run(req).await,
            Err(e) => *e,
        },
    };
    let headers = resp.headers_mut();
    headers.insert("intercom-version", version);
    if let Some(a) = admission {
        let reset = st.clock.now() + a.reset_secs as i64;
        headers.insert("x-ratelimit-limit", HeaderValue::from(a.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(a.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
    resp
}

fn query(raw: Option<&str>) -> Result<HashMap<String, String>, Fail> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or_default())
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|_| Box::new(invalid("Invalid query string")))
}

fn encode(parts: &[i64]) -> String {
    let text: Vec<String> = parts.iter().map(i64::to_string).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.join("|"))
}

fn decode(c: &str, n: usize) -> Option<Vec<i64>> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    let parts: Option<Vec<i64>> = String::from_utf8(raw)
        .ok()?
        .split('|')
        .map(|p| p.parse().ok())
        .collect();
    parts.filter(|p| p.len() == n)
}

fn per_page(v: Option<&Value>, default: usize) -> Result<usize, Fail> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|&n| (1..=MAX_PER_PAGE as u64).contains(&n))
            .map(|n| n as usize)
            .ok_or_else(|| {
                Box::new(invalid(&format!(
                    "per_page must be between 1 and {MAX_PER_PAGE}"
                )))
            }),
    }
}

/// `cursor_pages`: page numbers, and `next` while more follow.
fn pages(page: i64, per_page: usize, total: u64, next: Option<String>) -> Value {
    let mut p = json!({
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": total.div_ceil(per_page as u64),
    });
    if let Some(after) = next {
        p["next"] = json!({"per_page": per_page, "starting_after": after});
    }
    p
}

async fn list_contacts(State(st): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let per_page = match per_page(
        q.get("per_page").map(|s| Value::from(s.as_str())).as_ref(),
        50,
    ) {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let (page, start) = match q.get("starting_after") {
        None => (1, 0),
        Some(c) => match decode(c, 2) {
            Some(p) => (p[0], p[1] as u64),
            None => return invalid("starting_after is invalid"),
        },
    };
    let store = st.read();
    let total = st.count(&store);
    let end = start.saturating_add(per_page as u64).min(total);
    let data: Vec<Value> = (start.min(end)..end)
        .map(|i| st.render(&store, i))
        .collect();
    let next = (end < total).then(|| encode(&[page + 1, end as i64]));
    respond(
        StatusCode::OK,
        json!({"type": "list", "data": data, "total_count": total, "pages": pages(page, per_page, total, next)})
            .to_string(),
    )
}

async fn get_contact(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    match st.contact(&id) {
        Some(c) => respond(StatusCode::OK, c.to_string()),
        None => error(StatusCode::NOT_FOUND, "not_found", "User Not Found"),
    }
}

/// The writable fields of a contact body, or a 400.
fn writable(body: &Bytes) -> Result<Map<String, Value>, Fail> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => {
            if let Some(bad) = m.keys().find(|k| !WRITABLE.contains(&k.as_str())) {
                return Err(Box::new(invalid(&format!(
                    "{bad} is not a writable contact field"
                ))));
            }
            Ok(m)
        }
        _ => Err(Box::new(invalid("The request body must be a JSON object"))),
    }
}

fn conflict(st: &IntercomState, i: u64) -> Response {
    error(
        StatusCode::CONFLICT,
        "conflict",
        &format!(
            "A contact matching those details already exists with id={}",
            st.u.contact_id(i)
        ),
    )
}

async fn create_contact(State(st): State<Shared>, body: Bytes) -> Response {
    let fields = match writable(&body) {
        Ok(f) => f,
        Err(e) => return *e,
    };
    if !["email", "external_id", "role"]
        .iter()
        .any(|k| fields.contains_key(*k))
    {
        return invalid("role, email or external_id is required");
    }
    let mut fields = fields;
    // A new contact is subscribed unless the request says otherwise (not
    // whatever the generated contact at its index would have been).
    fields
        .entry("unsubscribed_from_emails".to_owned())
        .or_insert(Value::Bool(false));
    let mut store = st.write();
    if let Some(email) = fields.get("email").and_then(Value::as_str)
        && let Some(i) = st.find_email(&store, email)
    {
        return conflict(&st, i);
    }
    let i = st.create(&mut store, fields, true);
    store.written.push(i);
    respond(StatusCode::OK, st.render(&store, i).to_string())
}

async fn update_contact(State(st): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = match writable(&body) {
        Ok(f) => f,
        Err(e) => return *e,
    };
    let mut store = st.write();
    let Some(i) = st.find_id(&store, &id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "User Not Found");
    };
    if let Some(email) = fields.get("email").and_then(Value::as_str)
        && let Some(other) = st.find_email(&store, email)
        && other != i
    {
        return conflict(&st, other);
    }
    st.apply(&mut store, i, fields, st.clock.now());
    if !store.written.contains(&i) {
        store.written.push(i);
    }
    respond(StatusCode::OK, st.render(&store, i).to_string())
}

/// A parsed search query: ranges on the two timestamps, and equalities.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter {
    updated: (i64, i64),
    created: (i64, i64),
    email: Option<String>,
    id: Option<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            updated: (i64::MIN, i64::MAX),
            created: (i64::MIN, i64::MAX),
            email: None,
            id: None,
        }
    }
}

fn narrow(range: &mut (i64, i64), op: &str, v: i64) -> Result<(), String> {
    match op {
        ">" => range.0 = range.0.max(v.saturating_add(1)),
        "<" => range.1 = range.1.min(v.saturating_sub(1)),
        "=" => *range = (range.0.max(v), range.1.min(v)),
        other => return Err(format!("operator {other:?} is not supported on timestamps")),
    }
    Ok(())
}

impl Filter {
    fn add(&mut self, q: &Value) -> Result<(), String> {
        let op = q["operator"].as_str().ok_or("operator is required")?;
        if let Some(field) = q["field"].as_str() {
            let v = &q["value"];
            return match field {
                "updated_at" | "created_at" => {
                    let t = v
                        .as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .ok_or("value must be a unix timestamp")?;
                    let range = if field == "updated_at" {
                        &mut self.updated
                    } else {
                        &mut self.created
                    };
                    narrow(range, op, t)
                }
                "email" | "id" if op == "=" => {
                    let s = v.as_str().ok_or("value must be a string")?.to_owned();
                    if field == "email" {
                        self.email = Some(s);
                    } else {
                        self.id = Some(s);
                    }
                    Ok(())
                }
                other => Err(format!(
                    "the sandbox does not search on {other:?} with {op:?}"
                )),
            };
        }
        match op {
            "AND" => {
                for sub in q["value"].as_array().ok_or("value must be an array")? {
                    self.add(sub)?;
                }
                Ok(())
            }
            other => Err(format!("the sandbox does not support {other:?} queries")),
        }
    }
}

/// A search request: filter, page size, cursor.
struct Search {
    filter: Filter,
    per_page: usize,
    page: i64,
    after: Option<Key>,
}

fn parse_search(body: &Bytes) -> Result<Search, Fail> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(invalid("The request body must be a JSON object")));
    };
    let mut filter = Filter::default();
    match req.get("query") {
        Some(q) => filter.add(q).map_err(|m| Box::new(invalid(&m)))?,
        None => return Err(Box::new(invalid("query is required"))),
    }
    if let Some(sort) = req.get("sort") {
        let field = sort["field"].as_str().unwrap_or("updated_at");
        let order = sort["order"].as_str().unwrap_or("ascending");
        if field != "updated_at" || order != "ascending" {
            return Err(Box::new(invalid(
                "the sandbox sorts searches by updated_at ascending only",
            )));
        }
    }
    let pagination = req.get("pagination").cloned().unwrap_or(Value::Null);
    let per_page = per_page(pagination.get("per_page"), 50)?;
    let (page, after) = match pagination.get("starting_after").and_then(Value::as_str) {
        None => (1, None),
        Some(c) => match decode(c, 3) {
            Some(p) => (p[0], Some((p[1], p[2] as u64))),
            None => return Err(Box::new(invalid("starting_after is invalid"))),
        },
    };
    Ok(Search {
        filter,
        per_page,
        page,
        after,
    })
}

/// Runs a search over a timeline: matching keys of this page, whether more
/// follow, and the total number of matches.
fn run_search(
    timeline: &Timeline,
    n: u64,
    generated: &dyn Fn(u64) -> i64,
    search: &Search,
    extra: &dyn Fn(u64) -> bool,
    filtered: bool,
) -> (Vec<Key>, bool, u64) {
    let range = search.filter.updated;
    if !filtered {
        let (keys, more) = timeline.page(n, generated, search.after, range, search.per_page);
        return (keys, more, timeline.count(n, generated, range));
    }
    let (all, _) = timeline.page(n, generated, None, range, usize::MAX);
    let matching: Vec<Key> = all.into_iter().filter(|k| extra(k.1)).collect();
    let total = matching.len() as u64;
    let start = match search.after {
        Some(a) => matching.partition_point(|k| *k <= a),
        None => 0,
    };
    let end = start.saturating_add(search.per_page).min(matching.len());
    (matching[start..end].to_vec(), end < matching.len(), total)
}

fn search_page(
    key: &str,
    kind: &str,
    data: Vec<Value>,
    search: &Search,
    more: bool,
    last: Option<Key>,
    total: u64,
) -> Response {
    let next = match (more, last) {
        (true, Some((t, i))) => Some(encode(&[search.page + 1, t, i as i64])),
        _ => None,
    };
    let mut body = Map::new();
    body.insert("type".to_owned(), Value::from(kind));
    body.insert(key.to_owned(), Value::Array(data));
    body.insert("total_count".to_owned(), Value::from(total));
    body.insert(
        "pages".to_owned(),
        pages(search.page, search.per_page, total, next),
    );
    respond(StatusCode::OK, Value::Object(body).to_string())
}

async fn search_contacts(State(st): State<Shared>, body: Bytes) -> Response {
    let search = match parse_search(&body) {
        Ok(s) => s,
        Err(e) => return *e,
    };
    let store = st.read();
    let f = &search.filter;
    let pinned = match (&f.email, &f.id) {
        (Some(e), _) => Some(st.find_email(&store, e)),
        (None, Some(id)) => Some(st.find_id(&store, id)),
        (None, None) => None,
    };
    let id_ok = |i: u64| {
        f.id.as_deref()
            .is_none_or(|id| st.u.parse_contact_id(id) == Some(i))
    };
    let extra = |i: u64| {
        let created = st.created_at(&store, i);
        created >= f.created.0
            && created <= f.created.1
            && pinned.is_none_or(|p| p == Some(i))
            && id_ok(i)
    };
    let filtered = pinned.is_some() || f.created != (i64::MIN, i64::MAX);
    let generated = |i: u64| st.u.updated(Kind::Contact, i);
    let (keys, more, total) = run_search(
        &store.contacts,
        st.u.size,
        &generated,
        &search,
        &extra,
        filtered,
    );
    let data = keys.iter().map(|&(_, i)| st.render(&store, i)).collect();
    search_page(
        "data",
        "list",
        data,
        &search,
        more,
        keys.last().copied(),
        total,
    )
}

fn render_conversations(st: &IntercomState, store: &Store, keys: &[Key]) -> Vec<Value> {
    keys.iter()
        .map(|&(_, c)| render_conversation(st, store, c))
        .collect()
}

/// Conversation `c` as listed: its `updated_at` moved by any reply.
fn render_conversation(st: &IntercomState, store: &Store, c: u64) -> Value {
    let mut s = String::with_capacity(800);
    let updated = store
        .conversations
        .time(c, |c| st.u.updated(Kind::Conversation, c));
    data::conversation(&st.u, c, updated, &mut s);
    serde_json::from_str(&s).unwrap_or(Value::Null)
}

/// `GET /conversations/{id}`: the conversation with its parts (the generated
/// ones, then the replies), at most [`data::MAX_PARTS`] of the newest.
async fn get_conversation(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(c) = st.conversation_index(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "conversation_not_found",
            "Conversation Not Found",
        );
    };
    let store = st.read();
    let mut conversation = render_conversation(&st, &store, c);
    let replies = store.replies.get(&c).map(Vec::as_slice).unwrap_or_default();
    let mut s = String::with_capacity(1_000);
    data::conversation_parts(&st.u, c, replies, &mut s);
    let parts: Value = serde_json::from_str(&s).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut conversation {
        o.insert("conversation_parts".to_owned(), parts);
    }
    respond(StatusCode::OK, conversation.to_string())
}

async fn search_conversations(State(st): State<Shared>, body: Bytes) -> Response {
    let search = match parse_search(&body) {
        Ok(s) => s,
        Err(e) => return *e,
    };
    if search.filter.email.is_some() || search.filter.id.is_some() {
        return invalid("the sandbox searches conversations on updated_at and created_at only");
    }
    let f = search.filter.clone();
    let extra = |c: u64| {
        let created = st.u.created(Kind::Conversation, c);
        created >= f.created.0 && created <= f.created.1
    };
    let generated = |c: u64| st.u.updated(Kind::Conversation, c);
    let store = st.read();
    let (keys, more, total) = run_search(
        &store.conversations,
        st.u.count(Kind::Conversation),
        &generated,
        &search,
        &extra,
        f.created != (i64::MIN, i64::MAX),
    );
    let data = render_conversations(&st, &store, &keys);
    search_page(
        "conversations",
        "conversation.list",
        data,
        &search,
        more,
        keys.last().copied(),
        total,
    )
}

async fn list_conversations(State(st): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let per_page = match per_page(
        q.get("per_page").map(|s| Value::from(s.as_str())).as_ref(),
        20,
    ) {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let (page, start) = match q.get("starting_after") {
        None => (1, 0),
        Some(c) => match decode(c, 2) {
            Some(p) => (p[0], p[1] as u64),
            None => return invalid("starting_after is invalid"),
        },
    };
    let total = st.u.count(Kind::Conversation);
    let end = start.saturating_add(per_page as u64).min(total);
    let keys: Vec<Key> = (start.min(end)..end).map(|c| (0, c)).collect();
    let next = (end < total).then(|| encode(&[page + 1, end as i64]));
    respond(
        StatusCode::OK,
        json!({
            "type": "conversation.list",
            "conversations": render_conversations(&st, &st.read(), &keys),
            "total_count": total,
            "pages": pages(page, per_page, total, next),
        })
        .to_string(),
    )
}

fn render_companies(st: &IntercomState, range: std::ops::Range<u64>) -> Vec<Value> {
    range
        .map(|k| {
            let mut s = String::with_capacity(800);
            data::company(&st.u, k, &mut s);
            serde_json::from_str(&s).unwrap_or(Value::Null)
        })
        .collect()
}

async fn list_companies(State(st): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let page = q
        .get("page")
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let per_page = q
        .get("per_page")
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(15)
        .clamp(1, 60);
    let total = st.u.count(Kind::Company);
    let start = ((page - 1) * per_page).min(total);
    let end = (start + per_page).min(total);
    respond(
        StatusCode::OK,
        json!({
            "type": "list",
            "pages": pages(page as i64, per_page as usize, total, None),
            "total_count": total,
            "data": render_companies(&st, start..end),
        })
        .to_string(),
    )
}

/// The scroll: one open per app; a page of 50; an empty page ends it.
async fn scroll_companies(State(st): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let mut scroll = lock(&st.scroll);
    if scroll
        .as_ref()
        .is_some_and(|s| s.used.elapsed() > SCROLL_IDLE)
    {
        *scroll = None;
    }
    let start = match (q.get("scroll_param"), scroll.as_mut()) {
        (None, Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "scroll_exists",
                "scroll already exists for this workspace",
            );
        }
        (None, None) => {
            let n = st.scrolls_opened.fetch_add(1, Ordering::Relaxed);
            let v = h(st.u.seed, 0x1C_5C0, n);
            let param = format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                v >> 32,
                (v >> 16) & 0xFFFF,
                v & 0xFFF,
                n & 0xFFF,
                n
            );
            *scroll = Some(Scroll {
                param,
                next: 0,
                used: Instant::now(),
            });
            0
        }
        (Some(p), Some(s)) if *p == s.param => s.next,
        (Some(_), _) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "scroll parameter not found",
            );
        }
    };
    let total = st.u.count(Kind::Company);
    let end = (start + SCROLL_PAGE).min(total);
    let data = render_companies(&st, start.min(end)..end);
    let param = scroll.as_ref().map(|s| s.param.clone()).unwrap_or_default();
    if data.is_empty() {
        *scroll = None;
    } else if let Some(s) = scroll.as_mut() {
        s.next = end;
        s.used = Instant::now();
    }
    respond(
        StatusCode::OK,
        json!({"type": "list", "data": data, "pages": null, "total_count": null, "scroll_param": param})
            .to_string(),
    )
}

async fn admins() -> Response {
    let mut s = String::from(r#"{"type":"admin.list","admins":["#);
    for k in 0..data::ADMINS.len() {
        if k > 0 {
            s.push(',');
        }
        data::admin(k, &mut s);
    }
    s.push_str("]}");
    respond(StatusCode::OK, s)
}

/// `GET /me`: the admin the access token belongs to, with its workspace.
async fn me(State(st): State<Shared>) -> Response {
    let mut s = String::with_capacity(512);
    data::me(st.clock.epoch(), &mut s);
    respond(StatusCode::OK, s)
}

async fn tags() -> Response {
    let mut s = String::from(r#"{"type":"list","data":["#);
    for k in 0..data::TAGS.len() {
        if k > 0 {
            s.push(',');
        }
        data::tag(k, &mut s);
    }
    s.push_str("]}");
    respond(StatusCode::OK, s)
}

async fn teams() -> Response {
    let mut s = String::from(r#"{"type":"team.list","teams":["#);
    for k in 0..data::TEAMS.len() {
        if k > 0 {
            s.push(',');
        }
        data::team(k, &mut s);
    }
    s.push_str("]}");
    respond(StatusCode::OK, s)
}

/// `GET /segments`: each segment's `count` only with `include_count=true`.
async fn segments(State(st): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let counted = q.get("include_count").is_some_and(|v| v == "true");
    let leads = if counted {
        (0..st.u.count(Kind::Contact))
            .filter(|&i| st.u.is_lead(i))
            .count() as u64
    } else {
        0
    };
    let users = st.u.count(Kind::Contact) - leads;
    let mut s = String::from(r#"{"type":"segment.list","segments":["#);
    for k in 0..data::SEGMENTS.len() {
        if k > 0 {
            s.push(',');
        }
        let n = if data::SEGMENTS[k].1 == "contact" {
            leads
        } else {
            users
        };
        data::segment(&st.u, k, counted.then_some(n), &mut s);
    }
    s.push_str(r#"],"pages":{}}"#);
    respond(StatusCode::OK, s)
}

/// `GET /data_attributes?model=contact|company|conversation`: archived
/// attributes only with `include_archived=true`; no model, every model's.
async fn data_attributes(State(st): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let archived = q.get("include_archived").is_some_and(|v| v == "true");
    let models: &[(&str, &[_])] = match q.get("model").map(String::as_str) {
        None => &[
            ("contact", data::CONTACT_ATTRIBUTES),
            ("company", data::COMPANY_ATTRIBUTES),
        ],
        Some("contact") => &[("contact", data::CONTACT_ATTRIBUTES)],
        Some("company") => &[("company", data::COMPANY_ATTRIBUTES)],
        Some("conversation") => &[],
        Some(other) => {
            return invalid(&format!(
                "model `{other}` is not one of contact, company, conversation"
            ));
        }
    };
    let mut s = String::from(r#"{"type":"list","data":["#);
    let mut first = true;
    for (model, attributes) in models {
        for (k, a) in attributes.iter().enumerate() {
            if a.4 && !archived {
                continue;
            }
            if !first {
                s.push(',');
            }
            first = false;
            data::data_attribute(&st.u, model, k, *a, &mut s);
        }
    }
    s.push_str("]}");
    respond(StatusCode::OK, s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn filters_parse_ranges_and_reject_or() {
        let mut f = Filter::default();
        f.add(&json!({"operator": "AND", "value": [
            {"field": "updated_at", "operator": ">", "value": 10},
            {"field": "updated_at", "operator": "<", "value": "20"},
            {"field": "email", "operator": "=", "value": "a@b.co"},
        ]}))
        .unwrap();
        assert_eq!(f.updated, (11, 19));
        assert_eq!(f.email.as_deref(), Some("a@b.co"));
        assert!(
            Filter::default()
                .add(&json!({"operator": "OR", "value": []}))
                .is_err()
        );
        assert_eq!(decode(&encode(&[2, -5, 7]), 3), Some(vec![2, -5, 7]));
        assert_eq!(decode(&encode(&[2]), 3), None);
    }
}
