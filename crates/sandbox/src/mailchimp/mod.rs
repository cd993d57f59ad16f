//! The Mailchimp simulator: the API root (`/3.0/`, the account) and `ping`,
//! `/3.0/` audiences, members (list, get, upsert by
//! subscriber hash, patch, archive, delete permanently), batch
//! subscribe/unsubscribe, segments (tags and saved segments, their member
//! counts following the members), interest categories, and campaigns (filtered by `since_create_time` /
//! `since_send_time` and their `before_` forms, sorted by either), with
//! Mailchimp's basic-auth API key, problem-detail errors and its limit of
//! 10 simultaneous connections. Time filters are exclusive ("changed after
//! the set time").
//!
//! The audience starts empty unless [`crate::SandboxConfig::mailchimp_members`]
//! pre-seeds it from the shared people; member pages are served in insertion
//! order (or by `last_changed` when asked), so `count`/`offset` paging sees
//! each member once while the audience is not written to.

// Handlers bail out early with the vendor's ready-made error response;
// its size does not matter on that path.
#![allow(clippy::result_large_err)]

mod control;
mod members;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::hash::h;
use crate::room::{Control, Room, VendorError};
use crate::state::{ApiState, Clock, RateLimit};

use members::{Members, WRITABLE_STATUSES, iso, looks_real, subscriber_hash};

/// Simultaneous connections Mailchimp allows per account.
const MAX_CONNECTIONS: usize = 10;
/// Most members a batch subscribe accepts.
const MAX_BATCH: usize = 500;
/// Largest `count` honoured.
const MAX_COUNT: usize = 1_000;
/// Campaigns generated for the audience.
const CAMPAIGNS: u64 = 3;
const ERRORS_DOC: &str = "https://mailchimp.com/developer/marketing/docs/errors/";
const SALT_LIST: u64 = 0x3A11_0100;
const SALT_ACCOUNT: u64 = 0x3A11_0200;
const SALT_SEGMENT: u64 = 0x3A11_0300;
const SALT_INTEREST: u64 = 0x3A11_0400;
/// The audience's segments: name, type, and which members are in it (by
/// list position; saved segments match on status).
const SEGMENTS: [(&str, &str); 4] = [
    ("VIP", "static"),
    ("Newsletter", "static"),
    ("Unsubscribed", "saved"),
    ("Likely to open", "fuzzy"),
];
/// The audience's interest categories: title and type.
const INTEREST_CATEGORIES: [(&str, &str); 2] = [("Topics", "checkboxes"), ("Frequency", "radio")];
/// The data center of the default key (`...-us6`), in the root's links.
const DATA_CENTER: &str = "us6";

fn respond(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn no_content() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// Mailchimp's problem-detail error body.
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    static INSTANCE: AtomicU64 = AtomicU64::new(1);
    let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "type": ERRORS_DOC,
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "instance": format!("5eed{:04x}-{:04x}-4000-8000-{n:012x}", n >> 16, n & 0xFFFF),
    });
    let mut resp = respond(status, &body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json; charset=utf-8"),
    );
    resp
}

fn too_many() -> Response {
    problem(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "You have exceeded the limit of 10 simultaneous connections.",
    )
}

fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Resource Not Found",
        "The requested resource could not be found.",
    )
}

fn invalid(detail: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, "Invalid Resource", detail)
}

/// Mailchimp's body for an error the fault layer produces.
fn vendor_error(kind: VendorError) -> Response {
    match kind {
        VendorError::Unauthorized => problem(
            StatusCode::UNAUTHORIZED,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        ),
        VendorError::RateLimited => too_many(),
        VendorError::ServerError => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "An unexpected internal error has occurred. Please contact Support for more information.",
        ),
    }
}

/// The Mailchimp simulator's state.
pub(crate) struct MailchimpState {
    seed: u64,
    api_key: String,
    list_id: String,
    members: RwLock<Members>,
    in_flight: AtomicUsize,
    clock: Arc<Clock>,
    api: Arc<ApiState>,
}

impl MailchimpState {
    pub(crate) fn new(
        seed: u64,
        api_key: String,
        seeded_members: usize,
        clock: Arc<Clock>,
        api: Arc<ApiState>,
    ) -> Self {
        Self {
            seed,
            api_key,
            list_id: format!("{:010x}", h(seed, SALT_LIST, 0) & 0xFF_FFFF_FFFF),
            members: RwLock::new(Members::seeded(seed, seeded_members, clock.epoch())),
            in_flight: AtomicUsize::new(0),
            clock,
            api,
        }
    }

    /// The audience's id.
    pub(crate) fn list_id(&self) -> &str {
        &self.list_id
    }

    /// Every member of `list_id` (archived ones included), in list order.
    pub(crate) fn members_json(&self, list_id: &str) -> Vec<Value> {
        if list_id != self.list_id {
            return Vec::new();
        }
        self.read()
            .all
            .iter()
            .map(|m| m.to_json(&self.list_id, true))
            .collect()
    }

    /// The ids (subscriber hashes) of every member of `list_id`, archived
    /// ones included, in list order; empty for an unknown list.
    pub(crate) fn member_ids(&self, list_id: &str) -> Vec<String> {
        if list_id != self.list_id {
            return Vec::new();
        }
        self.read().all.iter().map(|m| m.hash.clone()).collect()
    }

    /// The ids of every campaign, in creation order.
    pub(crate) fn campaign_ids(&self) -> Vec<String> {
        (0..CAMPAIGNS).map(|c| campaign_id(self.seed, c)).collect()
    }

    /// The `email_id`s of the members who unsubscribed through campaign `id`
    /// (`None` for an unknown campaign).
    pub(crate) fn unsubscribe_ids(&self, id: &str) -> Option<Vec<String>> {
        let c = campaign_of(self.seed, id)?;
        Some(
            campaign_unsubscribes(self, &self.read(), c)
                .iter()
                .filter_map(|u| u["email_id"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// The ids of the segments of `list_id` (empty for an unknown list).
    pub(crate) fn segment_ids(&self, list_id: &str) -> Vec<i64> {
        if list_id != self.list_id {
            return Vec::new();
        }
        (0..SEGMENTS.len())
            .map(|i| segment_id(self.seed, i))
            .collect()
    }

    /// The ids of the interest categories of `list_id` (empty for an unknown list).
    pub(crate) fn interest_category_ids(&self, list_id: &str) -> Vec<String> {
        if list_id != self.list_id {
            return Vec::new();
        }
        (0..INTEREST_CATEGORIES.len())
            .map(|i| interest_category_id(self.seed, i))
            .collect()
    }

    /// Changes member `id` (a subscriber hash or an email) of `list_id` as an
    /// API write would: a new status and merge fields; `last_changed`
    /// becomes the sandbox's now when anything changed. `None` when there is
    /// no such member; else the member as the API renders it.
    pub(crate) fn update_member(
        &self,
        list_id: &str,
        id: &str,
        status: Option<&str>,
        merge_fields: &Map<String, Value>,
    ) -> Option<Value> {
        if list_id != self.list_id {
            return None;
        }
        let now = self.clock.now();
        let mut members = self.write();
        let m = members.get_mut(&path_hash(id))?;
        m.apply(status, merge_fields, now);
        Some(m.to_json(&self.list_id, true))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Members> {
        self.members.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Members> {
        self.members.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let key = if let Some(b64) = value.strip_prefix("Basic ") {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .and_then(|s| s.split_once(':').map(|(_, k)| k.to_owned()))
        } else {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("apikey "))
                .map(|k| k.trim().to_owned())
        };
        match key {
            Some(k) if k == self.api_key => Ok(()),
            Some(_) => Err(vendor_error(VendorError::Unauthorized)),
            None => Err(problem(
                StatusCode::UNAUTHORIZED,
                "API Key Missing",
                "Your request did not include an API key.",
            )),
        }
    }

    /// Authorizes the request and checks it names this sandbox's audience.
    fn open_list(&self, headers: &HeaderMap, list_id: &str) -> Result<(), Response> {
        self.authorize(headers)?;
        if list_id == self.list_id {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// The API root: the account the key belongs to (ids derived from the seed).
    fn root_json(&self) -> Value {
        let subscribed = self
            .read()
            .all
            .iter()
            .filter(|m| m.status == "subscribed")
            .count();
        let account = h(self.seed, SALT_ACCOUNT, 0);
        let since = self.clock.epoch() - 800 * 86_400;
        let root = format!("https://{DATA_CENTER}.api.mailchimp.com/3.0");
        json!({
            "account_id": format!("{account:016x}{:09x}", h(self.seed, SALT_ACCOUNT, 1) & 0xF_FFFF_FFFF),
            "login_id": (10_000_000 + h(self.seed, SALT_ACCOUNT, 2) % 90_000_000).to_string(),
            "account_name": "Weft Sandbox",
            "email": "owner@weft-sandbox.example.com",
            "first_name": "Weft",
            "last_name": "Sandbox",
            "username": "weft-sandbox",
            "avatar_url": "",
            "role": "owner",
            "member_since": iso(since),
            "pricing_plan_type": "monthly",
            "first_payment": iso(since + 86_400),
            "account_timezone": "Etc/UTC",
            "account_industry": "Software and Web App",
            "contact": {
                "company": "Weft Sandbox", "addr1": "1 Market St", "addr2": "",
                "city": "San Francisco", "state": "CA", "zip": "94105", "country": "US"
            },
            "pro_enabled": false,
            "last_login": iso(self.clock.epoch()),
            "total_subscribers": subscribed,
            "industry_stats": {"open_rate": 0.21, "bounce_rate": 0.004, "click_rate": 0.026},
            "_links": [
                {"rel": "self", "href": format!("{root}/"), "method": "GET",
                 "targetSchema": "https://us6.api.mailchimp.com/schema/3.0/Definitions/Root/Response.json"},
                {"rel": "lists", "href": format!("{root}/lists"), "method": "GET",
                 "targetSchema": "https://us6.api.mailchimp.com/schema/3.0/Definitions/Lists/CollectionResponse.json"},
                {"rel": "ping", "href": format!("{root}/ping"), "method": "GET",
                 "targetSchema": "https://us6.api.mailchimp.com/schema/3.0/Definitions/Ping/Response.json"}
            ]
        })
    }

    fn list_json(&self, members: &Members) -> Value {
        let count = |s: &str| members.all.iter().filter(|m| m.status == s).count();
        let last_sub = members
            .all
            .iter()
            .filter(|m| m.status == "subscribed")
            .map(|m| m.timestamp_opt)
            .max();
        json!({
            "id": self.list_id,
            "web_id": 100_000 + (h(self.seed, SALT_LIST, 1) % 900_000),
            "name": "Weft Sandbox Audience",
            "contact": {
                "company": "Weft Sandbox", "address1": "1 Market St", "address2": "",
                "city": "San Francisco", "state": "CA", "zip": "94105", "country": "US", "phone": ""
            },
            "permission_reminder": "You signed up on our website.",
            "use_archive_bar": true,
            "campaign_defaults": {
                "from_name": "Weft Sandbox", "from_email": "news@weft-sandbox.example.com",
                "subject": "", "language": "en"
            },
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "date_created": iso(self.clock.epoch() - 500 * 86_400),
            "list_rating": 3,
            "email_type_option": false,
            "subscribe_url_short": "https://eepurl.com/weft",
            "subscribe_url_long": format!("https://weft-sandbox.us6.list-manage.com/subscribe?id={}", self.list_id),
            "beamer_address": format!("us6-{}@inbound.mailchimp.com", self.list_id),
            "visibility": "prv",
            "double_optin": false,
            "has_welcome": false,
            "marketing_permissions": false,
            "modules": [],
            "stats": {
                "member_count": count("subscribed"),
                "unsubscribe_count": count("unsubscribed"),
                "cleaned_count": count("cleaned"),
                "member_count_since_send": 0,
                "unsubscribe_count_since_send": 0,
                "cleaned_count_since_send": 0,
                "campaign_count": CAMPAIGNS,
                "campaign_last_sent": iso(campaign_sent(self.clock.epoch(), CAMPAIGNS - 1)),
                "merge_field_count": members::MERGE_TAGS.len(),
                "avg_sub_rate": 0, "avg_unsub_rate": 0, "target_sub_rate": 0,
                "open_rate": 0, "click_rate": 0,
                "last_sub_date": last_sub.map(iso).unwrap_or_default(),
                "last_unsub_date": "",
            },
            "_links": [],
        })
    }
}

type Shared = Arc<MailchimpState>;

/// Decrements the in-flight count when a request finishes.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Enforces Mailchimp's 10 simultaneous connections (when rate limits are on).
/// It wraps the fault layer, so injected latency holds a connection open.
async fn concurrency(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/__sandbox/") {
        return next.run(req).await;
    }
    let n = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&st.in_flight);
    if st.api.rate_limit() != RateLimit::Off && n > MAX_CONNECTIONS {
        return too_many();
    }
    next.run(req).await
}

/// The Mailchimp routes (without the fault and connection layers).
fn router(state: Shared) -> Router {
    Router::new()
        .route("/3.0", get(root))
        .route("/3.0/", get(root))
        .route("/3.0/ping", get(ping))
        .route("/3.0/lists", get(lists))
        .route("/3.0/lists/{list_id}", get(list).post(batch))
        .route(
            "/3.0/lists/{list_id}/members",
            get(list_members).post(add_member),
        )
        .route(
            "/3.0/lists/{list_id}/members/{hash}",
            get(get_member)
                .put(put_member)
                .patch(patch_member)
                .delete(archive_member),
        )
        .route(
            "/3.0/lists/{list_id}/members/{hash}/actions/delete-permanent",
            post(delete_permanent),
        )
        .route("/3.0/lists/{list_id}/segments", get(segments))
        .route(
            "/3.0/lists/{list_id}/interest-categories",
            get(interest_categories),
        )
        .route("/3.0/campaigns", get(campaigns))
        .route("/3.0/reports/{campaign_id}/unsubscribed", get(unsubscribes))
        .fallback(|| async { not_found() })
        .with_state(state)
}

impl Room for MailchimpState {
    fn api(&self) -> Api {
        Api::Mailchimp
    }

    fn state(&self) -> &Arc<ApiState> {
        &self.api
    }

    fn routes(self: Arc<Self>) -> Router {
        router(self)
    }

    fn around_faults(self: Arc<Self>, faulted: Router) -> Router {
        faulted.layer(axum::middleware::from_fn_with_state(self, concurrency))
    }

    fn control_routes(&self) -> Router<Control> {
        control::routes()
    }

    fn vendor_error(&self, kind: VendorError) -> Response {
        vendor_error(kind)
    }

    /// The audience's members (seeded and written), and the erased hashes.
    fn save(&self) -> Option<Value> {
        Some(
            self.members
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .save(),
        )
    }

    fn restore(&self, saved: &Value) -> Result<(), SandboxError> {
        let members =
            Members::restore(saved).map_err(|reason| SandboxError::InvalidSavedState {
                api: Some(Api::Mailchimp),
                reason,
            })?;
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = members;
        Ok(())
    }
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

/// `count` (default 10, at most 1000) and `offset`.
fn count_offset(pairs: &[(String, String)]) -> Result<(usize, usize), Response> {
    let num = |name: &str, default: usize| match param(pairs, name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| invalid(&format!("The value for '{name}' must be an integer."))),
    };
    Ok((num("count", 10)?.min(MAX_COUNT), num("offset", 0)?))
}

/// Parses an ISO 8601 time filter (a `+` sent unencoded arrives as a space).
fn parse_time(name: &str, v: &str) -> Result<i64, Response> {
    let v = v.trim().replace(' ', "+");
    chrono::DateTime::parse_from_rfc3339(&v)
        .map(|d| d.timestamp())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S")
                .map(|d| d.and_utc().timestamp())
        })
        .map_err(|_| {
            invalid(&format!(
                "The value for '{name}' is not a valid ISO 8601 time."
            ))
        })
}

/// `GET /3.0/`: the account the API key belongs to.
async fn root(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = st.authorize(&headers) {
        return r;
    }
    respond(StatusCode::OK, &st.root_json())
}

async fn ping(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = st.authorize(&headers) {
        return r;
    }
    respond(
        StatusCode::OK,
        &json!({"health_status": "Everything's Chimpy!"}),
    )
}

async fn lists(State(st): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = st.authorize(&headers) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let (count, offset) = match count_offset(&pairs) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let all = [st.list_json(&st.read())];
    let page: Vec<&Value> = all.iter().skip(offset).take(count).collect();
    respond(
        StatusCode::OK,
        &json!({
            "lists": page,
            "total_items": all.len(),
            "constraints": {"may_create": true, "max_instances": 5, "current_total_instances": 1},
            "_links": [],
        }),
    )
}

async fn list(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(list_id): Path<String>,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    respond(StatusCode::OK, &st.list_json(&st.read()))
}

async fn list_members(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(list_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let (count, offset) = match count_offset(&pairs) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut bounds = [None, None];
    for (slot, name) in ["since_last_changed", "before_last_changed"]
        .iter()
        .enumerate()
    {
        if let Some(v) = param(&pairs, name).filter(|v| !v.is_empty()) {
            match parse_time(name, v) {
                Ok(t) => bounds[slot] = Some(t),
                Err(r) => return r,
            }
        }
    }
    let status = param(&pairs, "status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && s != "archived"
        && !WRITABLE_STATUSES.contains(&s)
    {
        return invalid(&format!("The status value '{s}' is not valid."));
    }
    let members = st.read();
    let mut matching: Vec<&members::Member> = members
        .all
        .iter()
        .filter(|m| match status {
            Some(s) => m.status == s,
            None => m.status != "archived",
        })
        .filter(|m| bounds[0].is_none_or(|t| m.last_changed > t))
        .filter(|m| bounds[1].is_none_or(|t| m.last_changed < t))
        .collect();
    match param(&pairs, "sort_field") {
        Some("last_changed") => matching.sort_by_key(|m| m.last_changed),
        Some("timestamp_signup") => matching.sort_by_key(|m| m.timestamp_signup),
        Some("timestamp_opt") => matching.sort_by_key(|m| m.timestamp_opt),
        _ => {}
    }
    if param(&pairs, "sort_dir") == Some("DESC") {
        matching.reverse();
    }
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|m| m.to_json(&st.list_id, true))
        .collect();
    respond(
        StatusCode::OK,
        &json!({
            "members": page,
            "list_id": st.list_id,
            "total_items": matching.len(),
            "_links": [],
        }),
    )
}

/// The path's member key: a subscriber hash, or an email (hashed).
fn path_hash(key: &str) -> String {
    if key.contains('@') {
        subscriber_hash(key)
    } else {
        key.to_ascii_lowercase()
    }
}

async fn get_member(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((list_id, key)): Path<(String, String)>,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    match st.read().get(&path_hash(&key)) {
        Some(m) => respond(StatusCode::OK, &m.to_json(&st.list_id, true)),
        None => not_found(),
    }
}

/// A member in a write body.
struct MemberInput {
    email: Option<String>,
    status: Option<String>,
    status_if_new: Option<String>,
    merge_fields: Map<String, Value>,
}

impl MemberInput {
    fn parse(v: &Value) -> Result<Self, String> {
        let Value::Object(m) = v else {
            return Err("a member must be a JSON object".to_owned());
        };
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let merge_fields = match m.get("merge_fields") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(f)) => f.clone(),
            Some(_) => return Err("merge_fields must be an object".to_owned()),
        };
        for s in [text("status"), text("status_if_new")].iter().flatten() {
            if !WRITABLE_STATUSES.contains(&s.as_str()) {
                return Err(format!("The status value '{s}' is not valid."));
            }
        }
        Ok(Self {
            email: text("email_address"),
            status: text("status"),
            status_if_new: text("status_if_new"),
            merge_fields,
        })
    }

    fn new_status(&self) -> Option<&str> {
        self.status_if_new.as_deref().or(self.status.as_deref())
    }
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|_| {
        problem(
            StatusCode::BAD_REQUEST,
            "JSON Schema Validation Failed",
            "The request body is not valid JSON.",
        )
    })
}

fn fake_email(email: &str) -> String {
    format!("{email} looks fake or invalid, please enter a real email address.")
}

fn erased_email(email: &str) -> String {
    format!(
        "{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list."
    )
}

async fn batch(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(list_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(items) = body.get("members").and_then(Value::as_array) else {
        return invalid("The resource submitted could not be validated. 'members' is required.");
    };
    if items.len() > MAX_BATCH {
        return invalid(&format!(
            "The resource submitted could not be validated. 'members' may have at most {MAX_BATCH} items, got {}.",
            items.len()
        ));
    }
    let update_existing = body
        .get("update_existing")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = st.clock.now();
    let mut members = st.write();
    let (mut created, mut updated, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for item in items {
        let raw_email = item
            .get("email_address")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let email = raw_email.trim();
        let mut fail = |error: String, code: &str| {
            errors.push(json!({
                "email_address": raw_email,
                "error": error,
                "error_code": code,
                "field": "",
                "field_message": "",
            }));
        };
        let input = match MemberInput::parse(item) {
            Ok(i) => i,
            Err(e) => {
                fail(e, "ERROR_GENERIC");
                continue;
            }
        };
        if !looks_real(email) {
            fail(fake_email(email), "ERROR_GENERIC");
            continue;
        }
        let hash = subscriber_hash(email);
        if members.erased.contains(&hash) {
            fail(erased_email(email), "ERROR_GENERIC");
            continue;
        }
        if let Some(m) = members.get_mut(&hash) {
            if !update_existing {
                fail(
                    format!(
                        "{email} is already a list member, do you want to update? please provide update_existing:true in the request body"
                    ),
                    "ERROR_CONTACT_EXISTS",
                );
                continue;
            }
            m.apply(input.status.as_deref(), &input.merge_fields, now);
            updated.push(m.to_json(&st.list_id, false));
            continue;
        }
        let Some(status) = input.new_status() else {
            fail(
                "Status is required for a new member.".to_owned(),
                "ERROR_GENERIC",
            );
            continue;
        };
        let m = members.insert(
            st.seed,
            email.to_owned(),
            status,
            input.merge_fields.clone(),
            now,
        );
        created.push(m.to_json(&st.list_id, false));
    }
    respond(
        StatusCode::OK,
        &json!({
            "total_created": created.len(),
            "total_updated": updated.len(),
            "error_count": errors.len(),
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "_links": [],
        }),
    )
}

async fn add_member(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(list_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let input = match member_input(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let email = input.email.as_deref().unwrap_or_default().trim().to_owned();
    if !looks_real(&email) {
        return invalid(&fake_email(&email));
    }
    let hash = subscriber_hash(&email);
    let mut members = st.write();
    if members.get(&hash).is_some() {
        return problem(
            StatusCode::BAD_REQUEST,
            "Member Exists",
            &format!("{email} is already a list member. Use PUT to insert or update list members."),
        );
    }
    if members.erased.contains(&hash) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Forgotten Email Not Subscribed",
            &erased_email(&email),
        );
    }
    let Some(status) = input.status.as_deref() else {
        return invalid("The resource submitted could not be validated. 'status' is required.");
    };
    let m = members.insert(st.seed, email, status, input.merge_fields, st.clock.now());
    respond(StatusCode::OK, &m.to_json(&st.list_id, true))
}

async fn put_member(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((list_id, key)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let input = match member_input(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let hash = path_hash(&key);
    if let Some(email) = &input.email
        && subscriber_hash(email) != hash
    {
        return invalid(
            "The resource submitted could not be validated. The subscriber hash in the URL does not match the email address in the request body.",
        );
    }
    let now = st.clock.now();
    let mut members = st.write();
    if let Some(m) = members.get_mut(&hash) {
        let status = if m.status == "archived" {
            input.status.as_deref().or(input.status_if_new.as_deref())
        } else {
            input.status.as_deref()
        };
        m.apply(status, &input.merge_fields, now);
        return respond(StatusCode::OK, &m.to_json(&st.list_id, true));
    }
    let Some(email) = input.email.as_deref().map(str::trim) else {
        return invalid(
            "The resource submitted could not be validated. 'email_address' is required for a new member.",
        );
    };
    if !looks_real(email) {
        return invalid(&fake_email(email));
    }
    if members.erased.contains(&hash) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Forgotten Email Not Subscribed",
            &erased_email(email),
        );
    }
    let Some(status) = input.new_status() else {
        return invalid(
            "The resource submitted could not be validated. 'status_if_new' is required for a new member.",
        );
    };
    let m = members.insert(
        st.seed,
        email.to_owned(),
        status,
        input.merge_fields.clone(),
        now,
    );
    respond(StatusCode::OK, &m.to_json(&st.list_id, true))
}

async fn patch_member(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((list_id, key)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let input = match member_input(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut members = st.write();
    match members.get_mut(&path_hash(&key)) {
        Some(m) => {
            m.apply(input.status.as_deref(), &input.merge_fields, st.clock.now());
            respond(StatusCode::OK, &m.to_json(&st.list_id, true))
        }
        None => not_found(),
    }
}

async fn archive_member(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((list_id, key)): Path<(String, String)>,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let mut members = st.write();
    match members.get_mut(&path_hash(&key)) {
        Some(m) if m.status != "archived" => {
            m.apply(Some("archived"), &Map::new(), st.clock.now());
            no_content()
        }
        _ => not_found(),
    }
}

async fn delete_permanent(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((list_id, key)): Path<(String, String)>,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    if st.write().erase(&path_hash(&key)) {
        no_content()
    } else {
        not_found()
    }
}

/// When campaign `c` was sent (every 14 days up to `epoch`, where history ends).
fn campaign_sent(epoch: i64, c: u64) -> i64 {
    epoch - (CAMPAIGNS - c) as i64 * 14 * 86_400 + 15 * 3_600
}

/// When campaign `c` was created (three days before it was sent).
fn campaign_created(epoch: i64, c: u64) -> i64 {
    campaign_sent(epoch, c) - 3 * 86_400
}

/// The id of campaign `c`.
fn campaign_id(seed: u64, c: u64) -> String {
    format!("{:010x}", h(seed, SALT_LIST ^ 0xC, c) & 0xFF_FFFF_FFFF)
}

fn campaign_json(st: &MailchimpState, c: u64, recipients: usize) -> Value {
    let id = campaign_id(st.seed, c);
    let sent = campaign_sent(st.clock.epoch(), c);
    let title = format!("Weft Newsletter #{}", c + 1);
    json!({
        "id": id,
        "web_id": 200_000 + c,
        "type": "regular",
        "create_time": iso(campaign_created(st.clock.epoch(), c)),
        "archive_url": format!("https://eepurl.com/weft{c}"),
        "long_archive_url": format!("https://us6.campaign-archive.com/?u=weft&id={id}"),
        "status": "sent",
        "emails_sent": recipients,
        "send_time": iso(sent),
        "content_type": "template",
        "needs_block_refresh": false,
        "resendable": false,
        "recipients": {
            "list_id": st.list_id, "list_is_active": true, "list_name": "Weft Sandbox Audience",
            "segment_text": "", "recipient_count": recipients
        },
        "settings": {
            "subject_line": title, "preview_text": "", "title": title,
            "from_name": "Weft Sandbox", "reply_to": "news@weft-sandbox.example.com",
            "use_conversation": false, "to_name": "*|FNAME|*", "folder_id": "",
            "authenticate": true, "auto_footer": false, "inline_css": false,
            "auto_tweet": false, "fb_comments": true, "timewarp": false,
            "template_id": 10_001, "drag_and_drop": true
        },
        "tracking": {
            "opens": true, "html_clicks": true, "text_clicks": false, "goal_tracking": false,
            "ecomm360": false, "google_analytics": "", "clicktale": ""
        },
        "report_summary": {
            "opens": 0, "unique_opens": 0, "open_rate": 0, "clicks": 0,
            "subscriber_clicks": 0, "click_rate": 0,
            "ecommerce": {"total_orders": 0, "total_spent": 0, "total_revenue": 0}
        },
        "delivery_status": {"enabled": false},
        "_links": [],
    })
}

async fn campaigns(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.authorize(&headers) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let (count, offset) = match count_offset(&pairs) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // since_/before_ create_time and send_time: "created (sent) after (before) the set time".
    let mut bounds = [None; 4];
    for (slot, name) in [
        "since_create_time",
        "before_create_time",
        "since_send_time",
        "before_send_time",
    ]
    .iter()
    .enumerate()
    {
        if let Some(v) = param(&pairs, name).filter(|v| !v.is_empty()) {
            match parse_time(name, v) {
                Ok(t) => bounds[slot] = Some(t),
                Err(r) => return r,
            }
        }
    }
    let recipients = st
        .read()
        .all
        .iter()
        .filter(|m| m.status == "subscribed")
        .count();
    let epoch = st.clock.epoch();
    let mut matching: Vec<u64> = (0..CAMPAIGNS)
        .filter(|&c| {
            let created = campaign_created(epoch, c);
            let sent = campaign_sent(epoch, c);
            bounds[0].is_none_or(|t| created > t)
                && bounds[1].is_none_or(|t| created < t)
                && bounds[2].is_none_or(|t| sent > t)
                && bounds[3].is_none_or(|t| sent < t)
        })
        .collect();
    match param(&pairs, "sort_field") {
        None | Some("" | "create_time" | "send_time") => {}
        Some(other) => return invalid(&format!("The sort_field value '{other}' is not valid.")),
    }
    // Both times grow with the campaign number: ascending is creation order.
    if param(&pairs, "sort_dir") == Some("DESC") {
        matching.reverse();
    }
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|&c| campaign_json(&st, c, recipients))
        .collect();
    respond(
        StatusCode::OK,
        &json!({"campaigns": page, "total_items": matching.len(), "_links": []}),
    )
}

/// The id of segment `i` (unique within the audience).
fn segment_id(seed: u64, i: usize) -> i64 {
    (10_000 + (h(seed, SALT_SEGMENT, 0) % 90_000) as i64) * 10 + i as i64 + 1
}

/// Whether the member at list position `n` with `status` is in segment `i`.
fn in_segment(i: usize, n: usize, status: &str) -> bool {
    match i {
        0 => status == "subscribed" && n.is_multiple_of(5),
        1 => status == "subscribed" && n.is_multiple_of(2),
        2 => status == "unsubscribed",
        _ => status == "subscribed" && n % 3 == 1,
    }
}

fn segment_json(st: &MailchimpState, members: &Members, i: usize) -> Value {
    let (name, kind) = SEGMENTS[i];
    let epoch = st.clock.epoch();
    let count = members
        .all
        .iter()
        .enumerate()
        .filter(|(n, m)| in_segment(i, *n, &m.status))
        .count();
    let mut v = json!({
        "id": segment_id(st.seed, i),
        "name": name,
        "member_count": count,
        "type": kind,
        "created_at": iso(epoch - (400 - 50 * i as i64) * 86_400),
        "updated_at": iso(epoch - (i as i64 + 1) * 86_400),
        "list_id": st.list_id,
        "_links": [],
    });
    if kind == "saved"
        && let Value::Object(m) = &mut v
    {
        m.insert(
            "options".into(),
            // The conditions themselves are not simulated.
            json!({"match": "all", "conditions": []}),
        );
    }
    v
}

/// The id of interest category `i`.
fn interest_category_id(seed: u64, i: usize) -> String {
    format!("{:010x}", h(seed, SALT_INTEREST, i as u64) & 0xFF_FFFF_FFFF)
}

/// `GET /3.0/lists/{list_id}/segments` (`type` filters by segment type).
async fn segments(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(list_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let (count, offset) = match count_offset(&pairs) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let kind = param(&pairs, "type").filter(|t| !t.is_empty());
    let members = st.read();
    let matching: Vec<usize> = (0..SEGMENTS.len())
        .filter(|&i| kind.is_none_or(|k| SEGMENTS[i].1 == k))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|&i| segment_json(&st, &members, i))
        .collect();
    respond(
        StatusCode::OK,
        &json!({"segments": page, "list_id": st.list_id, "total_items": matching.len(), "_links": []}),
    )
}

/// `GET /3.0/lists/{list_id}/interest-categories`.
async fn interest_categories(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(list_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.open_list(&headers, &list_id) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let (count, offset) = match count_offset(&pairs) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let page: Vec<Value> = INTEREST_CATEGORIES
        .iter()
        .enumerate()
        .skip(offset)
        .take(count)
        .map(|(i, (title, kind))| {
            json!({
                "list_id": st.list_id,
                "id": interest_category_id(st.seed, i),
                "title": title,
                "display_order": i,
                "type": kind,
                "_links": [],
            })
        })
        .collect();
    respond(
        StatusCode::OK,
        &json!({"categories": page, "list_id": st.list_id,
                "total_items": INTEREST_CATEGORIES.len(), "_links": []}),
    )
}

/// The campaign with this id.
fn campaign_of(seed: u64, id: &str) -> Option<u64> {
    (0..CAMPAIGNS).find(|&c| campaign_id(seed, c) == id)
}

/// The members who unsubscribed through campaign `c`: every unsubscribed
/// member whose list position falls to `c` (position modulo the campaigns).
fn campaign_unsubscribes(st: &MailchimpState, members: &Members, c: u64) -> Vec<Value> {
    let sent = campaign_sent(st.clock.epoch(), c);
    members
        .all
        .iter()
        .enumerate()
        .filter(|(n, m)| m.status == "unsubscribed" && *n as u64 % CAMPAIGNS == c)
        .map(|(n, m)| {
            json!({
                "email_id": m.hash,
                "email_address": m.email,
                "merge_fields": m.merge_fields,
                "vip": false,
                "timestamp": iso(sent + 3_600 + n as i64 * 60),
                "reason": "N/A (Unsubscribed from campaign)",
                "campaign_id": campaign_id(st.seed, c),
                "list_id": st.list_id,
                "list_is_active": true,
                "_links": [],
            })
        })
        .collect()
}

/// `GET /3.0/reports/{campaign_id}/unsubscribed`.
async fn unsubscribes(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = st.authorize(&headers) {
        return r;
    }
    let Some(c) = campaign_of(st.seed, &id) else {
        return not_found();
    };
    let pairs = query_pairs(q.as_deref());
    let (count, offset) = match count_offset(&pairs) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let all = campaign_unsubscribes(&st, &st.read(), c);
    let page: Vec<&Value> = all.iter().skip(offset).take(count).collect();
    respond(
        StatusCode::OK,
        &json!({"unsubscribes": page, "campaign_id": id, "total_items": all.len(), "_links": []}),
    )
}

/// Parses a member body, answering Mailchimp's validation error when it does not fit.
fn member_input(body: &Bytes) -> Result<MemberInput, Response> {
    parse_body(body).and_then(|v| MemberInput::parse(&v).map_err(|e| invalid(&e)))
}
