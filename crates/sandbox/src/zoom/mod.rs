//! The Zoom simulator: server-to-server OAuth (`POST /oauth/token`), and the
//! `/v2/` users (and `users/me`), meetings, webinars, webinar registrants
//! (list, add, update status) and past-webinar participants endpoints, with
//! Zoom's `next_page_token` paging, errors and per-category rate limits.
//! A registrant's status changes through `PUT
//! /v2/webinars/{id}/registrants/status` (`approve`, `deny`, `cancel`; at
//! most 30 registrants by `id` or `email`); a cancelled approval is listed
//! as `denied`, and registrants the body names but the webinar lacks are
//! ignored.
//!
//! Rate-limit categories follow each operation's "Rate Limit Label" in
//! `Meetings.json`/`Users.json`: list users, meetings, webinars, registrants
//! past-webinar participants and updating registrant statuses are MEDIUM,
//! adding a registrant and `users/me` are LIGHT.
//! The documented Pro limits apply (Light 30/s, Medium 20/s; no simulated
//! endpoint is Heavy), each category counted on its own, account-wide.

// Handlers bail out early with the vendor's ready-made error response;
// its size does not matter on that path.
#![allow(clippy::result_large_err)]

mod control;
mod data;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::hash::{mix, parse_base62, push_base62};
use crate::room::{Control, Room, VendorError};
use crate::state::{ApiState, Clock, RateLimit, lock};

use data::{MEETINGS_PER_USER, Registrant, Status, Universe, WEBINARS_PER_USER};

/// Lifetime of an access token, in seconds.
const TOKEN_TTL_SECS: i64 = 3_600;
/// Scopes granted to every token.
const SCOPES: &str = "user:read:admin meeting:read:admin webinar:read:admin webinar:write:admin";
/// Largest `page_size` Zoom honours.
const MAX_PAGE_SIZE: usize = 300;
/// `page_size` when none is given.
const DEFAULT_PAGE_SIZE: usize = 30;

/// A Zoom rate-limit category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Light,
    Medium,
}

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Light => "Light",
            Category::Medium => "Medium",
        }
    }

    /// Requests per second on a Pro account.
    fn per_sec(self) -> u32 {
        match self {
            Category::Light => 30,
            Category::Medium => 20,
        }
    }
}

/// A Zoom JSON response.
fn respond(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

/// Zoom's error body: `{"code": N, "message": "..."}`.
fn error(status: StatusCode, code: i64, message: &str) -> Response {
    respond(
        status,
        json!({"code": code, "message": message}).to_string(),
    )
}

fn rate_limited(category: Category) -> Response {
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        429,
        "You have reached the maximum per-second rate limit for this API. Try again later.",
    );
    let headers = resp.headers_mut();
    headers.insert(
        "x-ratelimit-category",
        HeaderValue::from_static(category.name()),
    );
    headers.insert("x-ratelimit-type", HeaderValue::from_static("QPS"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Zoom's body for an error the fault layer produces.
fn vendor_error(kind: VendorError) -> Response {
    match kind {
        VendorError::Unauthorized => error(StatusCode::UNAUTHORIZED, 124, "Invalid access token."),
        VendorError::RateLimited => {
            let mut resp = rate_limited(Category::Medium);
            resp.headers_mut().remove(header::RETRY_AFTER);
            resp
        }
        VendorError::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            500,
            "Internal server error. Please try again later.",
        ),
    }
}

/// Credentials of the server-to-server OAuth app the sandbox accepts.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) account_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

/// Mutations on top of the generated data.
#[derive(Default)]
struct Store {
    /// Registrants added through the API or control, per webinar index.
    added: HashMap<u64, Vec<Registrant>>,
    /// New (first, last) names of registrants, by (webinar, position).
    renamed: HashMap<(u64, u64), (String, String)>,
    /// Statuses set through the status endpoint, by (webinar, position).
    statuses: HashMap<(u64, u64), Status>,
}

/// The Zoom simulator's state.
pub(crate) struct ZoomState {
    u: Universe,
    creds: Credentials,
    tokens: Mutex<HashMap<String, i64>>,
    token_seq: AtomicU64,
    store: RwLock<Store>,
    windows: Mutex<[(Instant, u32); 2]>,
    clock: Arc<Clock>,
    api: Arc<ApiState>,
}

impl ZoomState {
    pub(crate) fn new(
        seed: u64,
        size: usize,
        creds: Credentials,
        clock: Arc<Clock>,
        api: Arc<ApiState>,
    ) -> Self {
        let now = Instant::now();
        Self {
            u: Universe::new(seed, size, clock.epoch()),
            creds,
            tokens: Mutex::new(HashMap::new()),
            token_seq: AtomicU64::new(1),
            store: RwLock::new(Store::default()),
            windows: Mutex::new([(now, 0); 2]),
            clock,
            api,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request against its category; false when over the limit.
    /// Categories apply when the documented limits are on; a custom
    /// per-second limit is enforced by the fault layer instead.
    fn admit(&self, category: Category) -> bool {
        if self.api.rate_limit() != RateLimit::Documented {
            return true;
        }
        let slot = match category {
            Category::Light => 0,
            Category::Medium => 1,
        };
        let mut windows = lock(&self.windows);
        let now = Instant::now();
        let w = &mut windows[slot];
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
        w.1 <= category.per_sec()
    }

    /// Checks the bearer token and the category's rate limit.
    fn guard(&self, headers: &HeaderMap, category: Category) -> Result<(), Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                124,
                "Request Bearer token is not existent.",
            ));
        };
        match lock(&self.tokens).get(token) {
            None => {
                return Err(error(
                    StatusCode::UNAUTHORIZED,
                    124,
                    "Invalid access token.",
                ));
            }
            Some(&exp) if exp <= self.clock.now() => {
                return Err(error(
                    StatusCode::UNAUTHORIZED,
                    124,
                    "Access token is expired.",
                ));
            }
            Some(_) => {}
        }
        if self.admit(category) {
            Ok(())
        } else {
            Err(rate_limited(category))
        }
    }

    fn issue_token(&self) -> String {
        let n = self.token_seq.fetch_add(1, Ordering::Relaxed);
        let mut t = String::from("wzt.");
        push_base62(&mut t, mix(self.u.seed ^ n), 11);
        push_base62(
            &mut t,
            mix(n.wrapping_mul(31) ^ self.clock.now() as u64),
            11,
        );
        lock(&self.tokens).insert(t.clone(), self.clock.now() + TOKEN_TTL_SECS);
        t
    }

    /// Registrant at position `k` of webinar `w`, with mutations applied.
    fn registrant(&self, store: &Store, w: u64, k: u64) -> Option<Registrant> {
        let count = self.u.registrant_count(w);
        let mut r = if k < count {
            let mut r = self.u.registrant(w, k);
            if let Some((first, last)) = store.renamed.get(&(w, k)) {
                r.first_name.clone_from(first);
                r.last_name.clone_from(last);
            }
            r
        } else {
            let i = usize::try_from(k - count).ok()?;
            store.added.get(&w)?.get(i).cloned()?
        };
        if let Some(&status) = store.statuses.get(&(w, k)) {
            r.status = status;
        }
        Some(r)
    }

    fn status_of(&self, store: &Store, w: u64, k: u64) -> Option<Status> {
        if let Some(&status) = store.statuses.get(&(w, k)) {
            return Some(status);
        }
        let count = self.u.registrant_count(w);
        if k < count {
            Some(self.u.registrant_status(w, k))
        } else {
            let i = usize::try_from(k - count).ok()?;
            store.added.get(&w)?.get(i).map(|r| r.status)
        }
    }

    /// Position of the registration of `email` (any case, trimmed) in webinar `w`.
    fn position_of(&self, store: &Store, w: u64, email: &str) -> Option<u64> {
        let wanted = email.trim();
        let count = self.u.registrant_count(w);
        (0..self.total_positions(store, w)).find(|&k| {
            if k < count {
                self.u
                    .registrant_email(w, k)
                    .trim()
                    .eq_ignore_ascii_case(wanted)
            } else {
                self.registrant(store, w, k)
                    .is_some_and(|x| x.email.trim().eq_ignore_ascii_case(wanted))
            }
        })
    }

    fn total_positions(&self, store: &Store, w: u64) -> u64 {
        self.u.registrant_count(w) + store.added.get(&w).map_or(0, |v| v.len() as u64)
    }

    /// Adds a registrant (or finds the existing registration of the same
    /// email) and returns its id.
    fn add_registrant(&self, w: u64, mut r: Registrant) -> String {
        let mut store = self.write();
        if let Some(k) = self.position_of(&store, w, &r.email) {
            return self.u.registrant_id(w, k);
        }
        let total = self.total_positions(&store, w);
        r.create_time = self.clock.now();
        store.added.entry(w).or_default().push(r);
        self.u.registrant_id(w, total)
    }

    /// Every registrant of the webinar with id `webinar_id`, any status, as JSON.
    pub(crate) fn registrants(&self, webinar_id: i64) -> Result<Vec<Value>, SandboxError> {
        let w = self.webinar(webinar_id)?;
        let store = self.read();
        let join = self.u.webinar_join_url(w);
        let mut out = Vec::new();
        for k in 0..self.total_positions(&store, w) {
            if let Some(r) = self.registrant(&store, w, k) {
                let mut s = String::new();
                r.render(&self.u.registrant_id(w, k), &join, &mut s);
                out.push(serde_json::from_str(&s).unwrap_or(Value::Null));
            }
        }
        Ok(out)
    }

    /// Number of registrants (any status) of a webinar.
    pub(crate) fn registrant_count(&self, webinar_id: i64) -> Result<u64, SandboxError> {
        let w = self.webinar(webinar_id)?;
        Ok(self.total_positions(&self.read(), w))
    }

    /// The registration of `email` in a webinar (any status), as JSON.
    pub(crate) fn registrant_by_email(
        &self,
        webinar_id: i64,
        email: &str,
    ) -> Result<Option<Value>, SandboxError> {
        let w = self.webinar(webinar_id)?;
        let store = self.read();
        let Some(k) = self.position_of(&store, w, email) else {
            return Ok(None);
        };
        let Some(r) = self.registrant(&store, w, k) else {
            return Ok(None);
        };
        let mut s = String::new();
        r.render(
            &self.u.registrant_id(w, k),
            &self.u.webinar_join_url(w),
            &mut s,
        );
        Ok(serde_json::from_str(&s).ok())
    }

    /// Applies a status action to the registrants of webinar `w` named by
    /// id or email; returns how many were found. `cancel` withdraws an
    /// approval: the registrant is listed as `denied` afterwards.
    fn set_statuses(
        &self,
        w: u64,
        action: StatusAction,
        who: &[(Option<String>, Option<String>)],
    ) -> usize {
        let status = match action {
            StatusAction::Approve => Status::Approved,
            StatusAction::Deny | StatusAction::Cancel => Status::Denied,
        };
        let mut store = self.write();
        let mut found = 0;
        for (id, email) in who {
            let by_id = id
                .as_deref()
                .and_then(|id| self.u.parse_registrant_id(id))
                .filter(|&(iw, k)| iw == w && k < self.total_positions(&store, w))
                .map(|(_, k)| k);
            let k = by_id.or_else(|| {
                email
                    .as_deref()
                    .and_then(|e| self.position_of(&store, w, e))
            });
            if let Some(k) = k {
                store.statuses.insert((w, k), status);
                found += 1;
            }
        }
        found
    }

    /// Adds an approved registrant from JSON fields (`email`, `first_name`, ...).
    pub(crate) fn add_registrant_json(
        &self,
        webinar_id: i64,
        fields: &Value,
    ) -> Result<String, SandboxError> {
        let w = self.webinar(webinar_id)?;
        let r = registrant_from_json(fields, 0).map_err(|reason| SandboxError::InvalidUpdate {
            api: Api::Zoom,
            object: "registrant",
            id: String::new(),
            reason,
        })?;
        Ok(self.add_registrant(w, r))
    }

    /// Renames a registrant (generated or added).
    pub(crate) fn rename_registrant(
        &self,
        registrant_id: &str,
        first_name: &str,
        last_name: &str,
    ) -> Result<(), SandboxError> {
        let missing = || SandboxError::NotFound {
            api: Api::Zoom,
            object: "registrant",
            id: registrant_id.to_owned(),
        };
        let (w, k) = self
            .u
            .parse_registrant_id(registrant_id)
            .ok_or_else(missing)?;
        let mut store = self.write();
        let count = self.u.registrant_count(w);
        if k < count {
            store
                .renamed
                .insert((w, k), (first_name.to_owned(), last_name.to_owned()));
            return Ok(());
        }
        let i = usize::try_from(k - count).map_err(|_| missing())?;
        let r = store
            .added
            .get_mut(&w)
            .and_then(|v| v.get_mut(i))
            .ok_or_else(missing)?;
        first_name.clone_into(&mut r.first_name);
        last_name.clone_into(&mut r.last_name);
        Ok(())
    }

    /// Ids of every webinar, in host order.
    pub(crate) fn webinar_ids(&self) -> Vec<i64> {
        (0..self.u.webinars())
            .map(|w| self.u.webinar_id(w))
            .collect()
    }

    fn webinar(&self, webinar_id: i64) -> Result<u64, SandboxError> {
        self.u
            .parse_webinar_id(&webinar_id.to_string())
            .ok_or_else(|| SandboxError::NotFound {
                api: Api::Zoom,
                object: "webinar",
                id: webinar_id.to_string(),
            })
    }
}

/// Reads a registrant from the add-registrant body; `Err` names the bad field.
fn registrant_from_json(v: &Value, now: i64) -> Result<Registrant, String> {
    let Value::Object(m) = v else {
        return Err("the body must be a JSON object".to_owned());
    };
    let field = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let email = field("email");
    let valid = {
        let e = email.trim();
        e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !e.contains(' '))
    };
    if !valid {
        return Err("email".to_owned());
    }
    let first_name = field("first_name");
    if first_name.is_empty() {
        return Err("first_name".to_owned());
    }
    Ok(Registrant {
        email,
        first_name,
        last_name: field("last_name"),
        address: field("address"),
        city: field("city"),
        state: field("state"),
        zip: field("zip"),
        country: field("country"),
        phone: field("phone"),
        org: field("org"),
        job_title: field("job_title"),
        industry: field("industry"),
        comments: field("comments"),
        status: Status::Approved,
        create_time: now,
    })
}

type Shared = Arc<ZoomState>;

/// The Zoom routes (without the fault layer).
fn router(state: Shared) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/v2/users", get(list_users))
        .route("/v2/users/{user_id}/webinars", get(list_webinars))
        .route("/v2/users/{user_id}/meetings", get(list_meetings))
        .route(
            "/v2/webinars/{webinar_id}/registrants",
            get(list_registrants).post(add_registrant),
        )
        .route(
            "/v2/webinars/{webinar_id}/registrants/status",
            put(update_registrant_status),
        )
        .route("/v2/users/me", get(me))
        .route(
            "/v2/past_webinars/{webinar_id}/participants",
            get(list_participants),
        )
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                404,
                "The requested resource does not exist.",
            )
        })
        .with_state(state)
}

impl Room for ZoomState {
    fn api(&self) -> Api {
        Api::Zoom
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

fn oauth_error(error: &str, reason: &str) -> Response {
    let status = if error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    respond(
        status,
        json!({"reason": reason, "error": error}).to_string(),
    )
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn token(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let mut pairs = query_pairs(q.as_deref());
    pairs.extend(query_pairs(Some(&String::from_utf8_lossy(&body))));
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let creds_ok = basic
        .as_deref()
        .and_then(|b| b.split_once(':'))
        .is_some_and(|(id, secret)| id == st.creds.client_id && secret == st.creds.client_secret);
    if !creds_ok {
        return oauth_error("invalid_client", "Invalid client_id or client_secret");
    }
    match param(&pairs, "grant_type") {
        Some("account_credentials") => {}
        Some(_) => return oauth_error("unsupported_grant_type", "unsupported grant type"),
        None => return oauth_error("invalid_request", "Missing grant type"),
    }
    if param(&pairs, "account_id") != Some(st.creds.account_id.as_str()) {
        return oauth_error("invalid_request", "Invalid account_id");
    }
    let token = st.issue_token();
    respond(
        StatusCode::OK,
        json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": TOKEN_TTL_SECS,
            "scope": SCOPES,
        })
        .to_string(),
    )
}

/// A page of a list: which positions to serve and the paging fields.
struct Page {
    offset: usize,
    end: usize,
    page_size: usize,
    next_page_token: String,
    total: usize,
}

fn token_mask(seed: u64) -> u64 {
    mix(seed ^ 0x2001_70CE) & 0x0000_FFFF_FFFF_FFFF
}

/// Zoom's `next_page_token` is opaque: here it is the offset, masked.
fn encode_token(seed: u64, offset: usize) -> String {
    let mut s = String::with_capacity(13);
    s.push_str("wz");
    push_base62(&mut s, token_mask(seed) ^ offset as u64, 11);
    s
}

fn decode_token(seed: u64, token: &str, total: usize) -> Option<usize> {
    let rest = token.strip_prefix("wz").filter(|r| r.len() == 11)?;
    let offset = usize::try_from(parse_base62(rest)? ^ token_mask(seed)).ok()?;
    (offset > 0 && offset <= total).then_some(offset)
}

fn page(seed: u64, pairs: &[(String, String)], total: usize) -> Result<Page, Response> {
    let page_size = match param(pairs, "page_size") {
        None | Some("") => DEFAULT_PAGE_SIZE,
        Some(v) => match v.parse::<usize>() {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
            Err(_) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    300,
                    &format!("Invalid field: page_size, value: {v}"),
                ));
            }
        },
    };
    let offset = match param(pairs, "next_page_token") {
        None | Some("") => {
            let number = param(pairs, "page_number")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            ((number - 1) * page_size).min(total)
        }
        Some(t) => decode_token(seed, t, total).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                300,
                "The next page token is invalid or expired.",
            )
        })?,
    };
    let end = (offset + page_size).min(total);
    let next_page_token = if end < total {
        encode_token(seed, end)
    } else {
        String::new()
    };
    Ok(Page {
        offset,
        end,
        page_size,
        next_page_token,
        total,
    })
}

/// Renders `{"page_count",...,"<key>":[items]}`.
fn render_page(
    p: &Page,
    with_number: bool,
    key: &str,
    mut item: impl FnMut(usize, &mut String),
) -> Response {
    let mut out = String::with_capacity(256 + (p.end - p.offset) * 700);
    out.push('{');
    out.push_str(&format!(
        r#""page_count":{},"#,
        p.total.div_ceil(p.page_size)
    ));
    if with_number {
        out.push_str(&format!(r#""page_number":{},"#, p.offset / p.page_size + 1));
    }
    out.push_str(&format!(
        r#""page_size":{},"total_records":{},"next_page_token":"{}","{key}":["#,
        p.page_size, p.total, p.next_page_token
    ));
    for (n, i) in (p.offset..p.end).enumerate() {
        if n > 0 {
            out.push(',');
        }
        item(i, &mut out);
    }
    out.push_str("]}");
    respond(StatusCode::OK, out)
}

async fn list_users(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.guard(&headers, Category::Medium) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let total = match param(&pairs, "status") {
        None | Some("active") => st.u.users() as usize,
        Some(_) => 0,
    };
    match page(st.u.seed, &pairs, total) {
        Ok(p) => render_page(&p, true, "users", |i, out| st.u.render_user(i as u64, out)),
        Err(r) => r,
    }
}

fn user_or_404(st: &ZoomState, user_id: &str) -> Result<u64, Response> {
    st.u.find_user(user_id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            1001,
            &format!("User does not exist: {user_id}."),
        )
    })
}

async fn list_webinars(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.guard(&headers, Category::Medium) {
        return r;
    }
    let u = match user_or_404(&st, &user_id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let pairs = query_pairs(q.as_deref());
    let first = u * WEBINARS_PER_USER;
    let all: Vec<u64> = (first..first + WEBINARS_PER_USER)
        .filter(|&w| param(&pairs, "type") != Some("upcoming") || !st.u.webinar_is_past(w))
        .collect();
    match page(st.u.seed, &pairs, all.len()) {
        Ok(p) => render_page(&p, true, "webinars", |i, out| {
            st.u.render_webinar(all[i], out);
        }),
        Err(r) => r,
    }
}

async fn list_meetings(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.guard(&headers, Category::Medium) {
        return r;
    }
    let u = match user_or_404(&st, &user_id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let pairs = query_pairs(q.as_deref());
    match page(st.u.seed, &pairs, MEETINGS_PER_USER as usize) {
        Ok(p) => render_page(&p, true, "meetings", |i, out| {
            st.u.render_meeting(u * MEETINGS_PER_USER + i as u64, out);
        }),
        Err(r) => r,
    }
}

fn webinar_or_404(st: &ZoomState, webinar_id: &str) -> Result<u64, Response> {
    st.u.parse_webinar_id(webinar_id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            3001,
            &format!("Webinar does not exist: {webinar_id}."),
        )
    })
}

async fn list_registrants(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.guard(&headers, Category::Medium) {
        return r;
    }
    let w = match webinar_or_404(&st, &webinar_id) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let pairs = query_pairs(q.as_deref());
    let status = match param(&pairs, "status") {
        None | Some("") => Status::Approved,
        Some(s) => match Status::parse(s) {
            Some(s) => s,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    300,
                    &format!("Invalid field: status, value: {s}"),
                );
            }
        },
    };
    let store = st.read();
    let positions: Vec<u64> = (0..st.total_positions(&store, w))
        .filter(|&k| st.status_of(&store, w, k) == Some(status))
        .collect();
    let join = st.u.webinar_join_url(w);
    match page(st.u.seed, &pairs, positions.len()) {
        Ok(p) => render_page(&p, true, "registrants", |i, out| {
            let k = positions[i];
            if let Some(r) = st.registrant(&store, w, k) {
                r.render(&st.u.registrant_id(w, k), &join, out);
            }
        }),
        Err(r) => r,
    }
}

async fn add_registrant(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = st.guard(&headers, Category::Light) {
        return r;
    }
    let w = match webinar_or_404(&st, &webinar_id) {
        Ok(w) => w,
        Err(r) => return r,
    };
    // Generated history is fixed: past webinars (before the sandbox epoch)
    // are closed, upcoming ones stay open whatever the wall clock says.
    if st.u.webinar_is_past(w) {
        return error(
            StatusCode::BAD_REQUEST,
            3000,
            "This webinar has ended. Registration is closed.",
        );
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                300,
                "Request Body should be a valid JSON object.",
            );
        }
    };
    let r = match registrant_from_json(&parsed, st.clock.now()) {
        Ok(r) => r,
        Err(field) => {
            return respond(
                StatusCode::BAD_REQUEST,
                json!({
                    "code": 300,
                    "message": "Validation Failed.",
                    "errors": [{"field": field, "message": "Invalid field."}],
                })
                .to_string(),
            );
        }
    };
    let id = st.add_registrant(w, r);
    respond(
        StatusCode::CREATED,
        json!({
            "id": st.u.webinar_id(w),
            "join_url": format!("{}?tk={id}", st.u.webinar_join_url(w)),
            "registrant_id": id,
            "start_time": data::iso(st.u.webinar_start(w)),
            "topic": st.u.webinar_topic(w),
            "occurrences": [],
        })
        .to_string(),
    )
}

/// `action` of the update-registrant-status body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusAction {
    Approve,
    Deny,
    Cancel,
}

/// Zoom's largest `registrants` list in one status update.
const MAX_STATUS_REGISTRANTS: usize = 30;

async fn update_registrant_status(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = st.guard(&headers, Category::Medium) {
        return r;
    }
    let w = match webinar_or_404(&st, &webinar_id) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let invalid = |what: &str| {
        error(
            StatusCode::BAD_REQUEST,
            300,
            &format!("Invalid field: {what}"),
        )
    };
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            300,
            "Request Body should be a valid JSON object.",
        );
    };
    let action = match parsed.get("action").and_then(Value::as_str) {
        Some("approve") => StatusAction::Approve,
        Some("deny") => StatusAction::Deny,
        Some("cancel") => StatusAction::Cancel,
        _ => return invalid("action"),
    };
    let Some(list) = parsed.get("registrants").and_then(Value::as_array) else {
        return invalid("registrants");
    };
    if list.len() > MAX_STATUS_REGISTRANTS {
        return invalid("registrants (at most 30)");
    }
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let who: Vec<(Option<String>, Option<String>)> = list
        .iter()
        .map(|r| (text(r, "id"), text(r, "email")))
        .collect();
    st.set_statuses(w, action, &who);
    respond(StatusCode::NO_CONTENT, String::new())
}

/// `GET /v2/users/me`: the account owner (the first host).
async fn me(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = st.guard(&headers, Category::Light) {
        return r;
    }
    let mut out = String::new();
    st.u.render_user(0, &mut out);
    respond(StatusCode::OK, out)
}

async fn list_participants(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.guard(&headers, Category::Medium) {
        return r;
    }
    let w = match st.u.parse_webinar_id(&webinar_id) {
        Some(w) if st.u.webinar_is_past(w) => w,
        _ => return error(StatusCode::NOT_FOUND, 3001, "Webinar does not exist."),
    };
    let pairs = query_pairs(q.as_deref());
    let store = st.read();
    let attended: Vec<u64> = (0..st.u.registrant_count(w))
        .filter(|&k| st.u.attended(w, k))
        .collect();
    match page(st.u.seed, &pairs, attended.len()) {
        Ok(p) => render_page(&p, false, "participants", |i, out| {
            let k = attended[i];
            if let Some(r) = st.registrant(&store, w, k) {
                st.u.render_participant(w, k, &r, out);
            }
        }),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = encode_token(9, 300);
        assert_eq!(decode_token(9, &t, 1_000), Some(300));
        assert_eq!(decode_token(9, &t, 100), None);
        assert_eq!(decode_token(9, "garbage", 1_000), None);
    }
}
