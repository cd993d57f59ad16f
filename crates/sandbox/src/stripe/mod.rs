//! The Stripe simulator: `/v1/` list, retrieve and customer write endpoints,
//! the account (`/v1/account`, `/v1/accounts/{id}`), subscriptions' `status`
//! filter (canceled ones listed only when asked for), Stripe's
//! authentication, errors, idempotency keys and events.

mod control;
mod data;
mod errors;
mod form;
mod list;
mod render;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use serde_json::{Map, Value};

use crate::config::{Api, Drift};
use crate::room::{Control, Room, VendorError};
use crate::state::{ApiState, Clock, lock};

use data::{Kind, Universe};
use errors::{StripeError, redact_key};
use list::{Cursor, ListParams, Source, SubscriptionStatus};
use render::Ctx;
use store::{
    CreationEvents, Customers, EVENT_WINDOW_SECS, Found, Generated, MutationEvents, Store,
    Subscriptions,
};

pub(crate) use store::API_VERSION;

/// Requests per second Stripe documents for a key: 25 in test mode, 100 live.
pub(crate) fn documented_rate_limit(api_key: &str) -> u32 {
    if api_key.contains("_test_") { 25 } else { 100 }
}

/// A JSON response with Stripe's headers.
pub(crate) fn respond(status: StatusCode, body: String) -> Response {
    static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);
    let seq = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut resp = Response::new(axum::body::Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("stripe-version", HeaderValue::from_static(API_VERSION));
    if let Ok(v) = HeaderValue::from_str(&format!("req_{seq:014}")) {
        headers.insert("request-id", v);
    }
    resp
}

/// Stripe's body for an error the fault layer produces.
fn vendor_error(kind: VendorError) -> Response {
    match kind {
        VendorError::Unauthorized => StripeError::unauthorized(
            "Invalid API Key provided: sk_test_********************".to_owned(),
        ),
        VendorError::RateLimited => StripeError::rate_limited(),
        VendorError::ServerError => StripeError::server_error(),
    }
    .into_response()
}

/// A stored response to replay for a repeated `Idempotency-Key`.
struct Idempotent {
    fingerprint: String,
    status: StatusCode,
    body: String,
}

/// The Stripe simulator's state.
pub(crate) struct StripeState {
    u: Universe,
    api_key: String,
    store: RwLock<Store>,
    idempotency: Mutex<HashMap<String, Idempotent>>,
    clock: Arc<Clock>,
    api: Arc<ApiState>,
}

impl StripeState {
    pub(crate) fn new(
        seed: u64,
        size: usize,
        api_key: String,
        clock: Arc<Clock>,
        api: Arc<ApiState>,
    ) -> Self {
        Self {
            u: Universe::new(seed, size, clock.epoch()),
            api_key,
            store: RwLock::new(Store::default()),
            idempotency: Mutex::new(HashMap::new()),
            clock,
            api,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn drift(&self) -> Option<Drift> {
        self.api.faults().drift
    }

    /// Applies `fields` (JSON, as the API would store them) to a live customer.
    pub(crate) fn update_customer(&self, id: &str, fields: Map<String, Value>) -> Option<String> {
        let mut store = self.write();
        match store.find_customer(&self.u, id) {
            Found::Live(i) => {
                Some(store.update_customer(&self.u, i, fields, self.clock.now(), None))
            }
            _ => None,
        }
    }

    /// Deletes a live customer; false when there is none.
    pub(crate) fn delete_customer(&self, id: &str) -> bool {
        let mut store = self.write();
        match store.find_customer(&self.u, id) {
            Found::Live(i) => {
                store.delete_customer(&self.u, i, self.clock.now(), None);
                true
            }
            _ => false,
        }
    }

    /// Deletes a generated coupon now, emitting `coupon.deleted`; `false`
    /// when there is no such live coupon.
    pub(crate) fn delete_coupon(&self, id: &str) -> bool {
        let Some(k) = self
            .u
            .parse_id(Kind::Coupon, id)
            .filter(|&k| k < self.u.count(Kind::Coupon))
        else {
            return false;
        };
        self.write().delete_coupon(&self.u, k, self.clock.now())
    }

    /// Creates `n` generated customers at the current time.
    pub(crate) fn create_customers(&self, n: usize) -> Vec<String> {
        let mut store = self.write();
        let now = self.clock.now();
        (0..n)
            .map(|_| {
                let (i, _) = store.create_customer(&self.u, now, None, None);
                self.u.id(Kind::Customer, i)
            })
            .collect()
    }

    /// The most recently created live customer with `email`
    /// (case-insensitively), else the most recent deleted one (with
    /// `"deleted": true`); undrifted JSON.
    pub(crate) fn customer_by_email(&self, email: &str) -> Option<Value> {
        let store = self.read();
        let all = store.customers_by_email(&self.u, email, false);
        let i = all
            .iter()
            .find(|&&i| !store.is_deleted(i))
            .or_else(|| all.first())
            .copied()?;
        let mut out = String::with_capacity(1_300);
        store.render_customer(&self.u, i, None, &mut out);
        let mut value: Map<String, Value> = serde_json::from_str(&out).ok()?;
        if store.is_deleted(i) {
            value.insert("deleted".to_owned(), Value::Bool(true));
        }
        Some(Value::Object(value))
    }

    /// `POST /v1/customers` creates that set `email` (case-insensitively).
    pub(crate) fn customer_creates(&self, email: &str) -> usize {
        self.read().creates_of(email)
    }

    pub(crate) fn customer_ids(&self) -> Vec<String> {
        self.read().live_customer_ids(&self.u)
    }

    /// Cancels subscription `id` now (emitting `customer.subscription.deleted`);
    /// `Ok(false)` when it was already canceled, `Err(())` when there is none.
    pub(crate) fn cancel_subscription(&self, id: &str) -> Result<bool, ()> {
        let j = self.subscription_index(id).ok_or(())?;
        let mut store = self.write();
        Ok(store
            .cancel_subscription(&self.u, j, self.clock.now(), None)
            .is_some())
    }

    /// Ids of subscriptions, oldest first: every one, or only the canceled ones.
    pub(crate) fn subscription_ids(&self, canceled_only: bool) -> Vec<String> {
        let store = self.read();
        (0..self.u.count(Kind::Subscription))
            .filter(|&j| !canceled_only || store.subscription_canceled_at(&self.u, j).is_some())
            .map(|j| self.u.id(Kind::Subscription, j))
            .collect()
    }

    /// The account's id.
    pub(crate) fn account_id(&self) -> String {
        self.u.account_id()
    }

    fn subscription_index(&self, id: &str) -> Option<u64> {
        self.u
            .parse_id(Kind::Subscription, id)
            .filter(|&j| j < self.u.count(Kind::Subscription))
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), StripeError> {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(StripeError::unauthorized(
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.".to_owned(),
            ));
        };
        let key = if let Some(token) = value.strip_prefix("Bearer ") {
            token.trim().to_owned()
        } else if let Some(b64) = value.strip_prefix("Basic ") {
            let decoded = base64_decode(b64.trim()).unwrap_or_default();
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            decoded.split(':').next().unwrap_or_default().to_owned()
        } else {
            value.trim().to_owned()
        };
        if key == self.api_key {
            Ok(())
        } else {
            Err(StripeError::unauthorized(format!(
                "Invalid API Key provided: {}",
                redact_key(&key)
            )))
        }
    }
}

/// Standard base64 decoding (with or without padding) for basic auth.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in s.bytes().filter(|&b| b != b'=') {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

type Shared = Arc<StripeState>;

/// The Stripe routes (without the fault layer).
fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/account", get(account))
        // Before `/v1/{collection}/{id}`: the account is not a listed kind.
        .route("/v1/accounts/{id}", get(account_by_id))
        .route(
            "/v1/customers",
            get(list_handler_customers).post(create_customer),
        )
        // Before `/v1/customers/{id}`, or `search` would be taken for an id.
        .route("/v1/customers/search", get(search_customers))
        .route(
            "/v1/customers/{id}",
            get(retrieve_customer)
                .post(update_customer)
                .delete(delete_customer),
        )
        .route("/v1/{collection}", get(list_handler))
        .route("/v1/{collection}/{id}", get(retrieve))
        .fallback(unrecognized)
        .with_state(state)
}

impl Room for StripeState {
    fn api(&self) -> Api {
        Api::Stripe
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

fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, StripeError> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| StripeError::invalid("Invalid query string.", None))
}

async fn unrecognized(method: Method, uri: Uri) -> Response {
    StripeError {
        status: StatusCode::NOT_FOUND,
        ..StripeError::invalid(
            format!(
                "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                uri.path()
            ),
            None,
        )
    }
    .into_response()
}

async fn account(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return e.into_response();
    }
    respond(StatusCode::OK, account_body(&st.u))
}

/// `GET /v1/accounts/{id}`: the key's own account; any other id is missing.
async fn account_by_id(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return e.into_response();
    }
    if id != st.u.account_id() {
        return StripeError::missing("account", &id, "account", StatusCode::NOT_FOUND)
            .into_response();
    }
    respond(StatusCode::OK, account_body(&st.u))
}

/// The account the sandbox's key belongs to, in the `account` component's
/// shape: a US standard account with the settings Stripe always returns.
fn account_body(u: &Universe) -> String {
    format!(
        r#"{{"id":"{id}","object":"account","business_profile":{{"mcc":null,"name":"Weft Sandbox","product_description":null,"support_address":null,"support_email":null,"support_phone":null,"support_url":null,"url":null}},"business_type":"company","capabilities":{{"card_payments":"active","transfers":"active"}},"charges_enabled":true,"country":"US","created":{created},"default_currency":"usd","details_submitted":true,"email":"owner@weft-sandbox.example.com","metadata":{{}},"payouts_enabled":true,"settings":{{"branding":{{"icon":null,"logo":null,"primary_color":null,"secondary_color":null}},"card_issuing":{{"tos_acceptance":{{"date":null,"ip":null}}}},"card_payments":{{"decline_on":{{"avs_failure":false,"cvc_failure":false}},"statement_descriptor_prefix":"WEFT","statement_descriptor_prefix_kana":null,"statement_descriptor_prefix_kanji":null}},"dashboard":{{"display_name":"Weft Sandbox","timezone":"Etc/UTC"}},"payments":{{"statement_descriptor":"WEFT SANDBOX","statement_descriptor_kana":null,"statement_descriptor_kanji":null}},"payouts":{{"debit_negative_balances":true,"schedule":{{"delay_days":2,"interval":"daily"}},"statement_descriptor":null}},"sepa_debit_payments":{{}}}},"type":"standard"}}"#,
        id = u.account_id(),
        created = u.epoch - data::HISTORY_SECS - 86_400
    )
}

async fn list_handler_customers(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    list(&st, &headers, "customers", q.as_deref())
}

async fn list_handler(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(collection): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    list(&st, &headers, &collection, q.as_deref())
}

/// Documented filters accepted per collection (generated data has one value for them).
fn ignored_filters(collection: &str) -> &'static [&'static str] {
    match collection {
        "customers" => &["test_clock"],
        "charges" => &["transfer_group"],
        "invoices" => &["collection_method"],
        "subscriptions" => &["collection_method", "test_clock"],
        "events" => &["delivery_success"],
        _ => &[],
    }
}

fn list(st: &StripeState, headers: &HeaderMap, collection: &str, raw: Option<&str>) -> Response {
    match try_list(st, headers, collection, raw) {
        Ok(body) => respond(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

fn try_list(
    st: &StripeState,
    headers: &HeaderMap,
    collection: &str,
    raw: Option<&str>,
) -> Result<String, StripeError> {
    st.authorize(headers)?;
    let mut pairs = query_pairs(raw)?;
    let events = collection == "events";
    let kind = Kind::from_path(collection);
    // Subscriptions take `status` (default: every one not canceled).
    let status = if kind == Some(Kind::Subscription) {
        let given = pairs
            .iter()
            .rposition(|(k, _)| k == "status")
            .map(|at| pairs.remove(at).1);
        pairs.retain(|(k, _)| k != "status");
        SubscriptionStatus::parse(given.as_deref())?
    } else {
        SubscriptionStatus::All
    };
    if kind.is_none() && !events {
        return Err(StripeError {
            status: StatusCode::NOT_FOUND,
            ..StripeError::invalid(
                format!("Unrecognized request URL (GET: /v1/{collection})."),
                None,
            )
        });
    }
    let params = ListParams::parse(&pairs, events, ignored_filters(collection))?;
    let drift = st.drift();
    let store = st.read();
    let u = &st.u;
    let ctx = Ctx { u, drift };

    let customers;
    let subscriptions;
    let generated;
    let mut creation = Vec::new();
    let mutations;
    let mut sources: Vec<&dyn Source> = Vec::new();
    let (mut min, max) = (params.created_min, params.created_max);
    let object_name;
    match kind {
        Some(Kind::Customer) => {
            customers = Customers {
                u,
                store: &store,
                drift,
            };
            sources.push(&customers);
            object_name = "customer";
        }
        Some(Kind::Subscription) => {
            subscriptions = Subscriptions {
                ctx,
                store: &store,
                status,
            };
            sources.push(&subscriptions);
            object_name = "subscription";
        }
        Some(k) => {
            generated = Generated {
                ctx,
                kind: k,
                store: &store,
            };
            sources.push(&generated);
            object_name = k.object();
        }
        None => {
            min = min.max(st.clock.now() - EVENT_WINDOW_SECS);
            for k in Kind::ALL {
                if let Some(t) = k.created_event()
                    && params.type_matches(t)
                {
                    creation.push(CreationEvents {
                        u,
                        kind: k,
                        event_type: t,
                    });
                }
            }
            mutations = MutationEvents {
                u,
                store: &store,
                params: &params,
            };
            for c in &creation {
                sources.push(c);
            }
            sources.push(&mutations);
            object_name = "event";
        }
    }

    let cursor = match (&params.starting_after, &params.ending_before) {
        (Some(id), _) => Some((id, "starting_after")),
        (None, Some(id)) => Some((id, "ending_before")),
        (None, None) => None,
    };
    let cursor = match cursor {
        None => None,
        Some((id, param)) => {
            let created = match kind {
                Some(Kind::Customer) => match store.find_customer(u, id) {
                    Found::Live(i) | Found::Deleted(i) => Some(store.customer_created(u, i)),
                    Found::Missing => None,
                },
                Some(k) => u
                    .parse_id(k, id)
                    .filter(|&i| i < u.count(k))
                    .map(|i| u.created(k, i)),
                None => event_created(st, &store, id),
            };
            let Some(created) = created else {
                return Err(StripeError::missing(
                    object_name,
                    id,
                    param,
                    StatusCode::BAD_REQUEST,
                ));
            };
            Some(if param == "starting_after" {
                Cursor::After(created, id.clone())
            } else {
                Cursor::Before(created, id.clone())
            })
        }
    };

    let (items, has_more) = list::page(&sources, min, max, cursor.as_ref(), params.limit);
    let mut body = String::with_capacity(64 + items.len() * 1_300);
    body.push_str(r#"{"object":"list","data":["#);
    for (n, (s, i)) in items.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        sources[*s].render(*i, &mut body);
    }
    body.push_str(r#"],"has_more":"#);
    body.push_str(if has_more { "true" } else { "false" });
    body.push_str(r#","url":"/v1/"#);
    body.push_str(collection);
    body.push_str("\"}");
    Ok(body)
}

/// Creation time of a listable event id (inside the 30-day window).
fn event_created(st: &StripeState, store: &Store, id: &str) -> Option<i64> {
    let (code, i) = st.u.parse_event_id(id)?;
    let created = if code == 'm' {
        store.events.get(i as usize)?.created
    } else {
        let kind = Kind::from_code(code)?;
        kind.created_event()?;
        (i < st.u.count(kind)).then(|| st.u.created(kind, i))?
    };
    (created >= st.clock.now() - EVENT_WINDOW_SECS).then_some(created)
}

async fn retrieve(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((collection, id)): Path<(String, String)>,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return e.into_response();
    }
    let drift = st.drift();
    let mut out = String::with_capacity(2_048);
    if collection == "events" {
        let store = st.read();
        if event_created(&st, &store, &id).is_none() {
            return StripeError::missing("event", &id, "id", StatusCode::NOT_FOUND).into_response();
        }
        let Some((code, i)) = st.u.parse_event_id(&id) else {
            return StripeError::missing("event", &id, "id", StatusCode::NOT_FOUND).into_response();
        };
        match Kind::from_code(code).and_then(|k| k.created_event().map(|t| (k, t))) {
            Some((kind, event_type)) => CreationEvents {
                u: &st.u,
                kind,
                event_type,
            }
            .render(i, &mut out),
            None => {
                if let Some(e) = store.events.get(i as usize) {
                    out.push_str(&e.body);
                }
            }
        }
        return respond(StatusCode::OK, out);
    }
    let Some(kind) = Kind::from_path(&collection) else {
        return unrecognized(
            Method::GET,
            format!("/v1/{collection}/{id}").parse().unwrap_or_default(),
        )
        .await;
    };
    let deleted = |i: u64| kind == Kind::Coupon && st.read().is_coupon_deleted(i);
    match st
        .u
        .parse_id(kind, &id)
        .filter(|&i| i < st.u.count(kind) && !deleted(i))
    {
        Some(i) if kind == Kind::Subscription => {
            st.read().render_subscription(&st.u, i, drift, &mut out);
            respond(StatusCode::OK, out)
        }
        Some(i) => {
            render::render(Ctx { u: &st.u, drift }, kind, i, &mut out);
            respond(StatusCode::OK, out)
        }
        None => {
            StripeError::missing(kind.object(), &id, "id", StatusCode::NOT_FOUND).into_response()
        }
    }
}

async fn retrieve_customer(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return e.into_response();
    }
    let drift = st.drift();
    let store = st.read();
    match store.find_customer(&st.u, &id) {
        Found::Live(i) => {
            let mut out = String::with_capacity(1_300);
            store.render_customer(&st.u, i, drift, &mut out);
            respond(StatusCode::OK, out)
        }
        Found::Deleted(_) => respond(
            StatusCode::OK,
            format!(r#"{{"id":"{id}","object":"customer","deleted":true}}"#),
        ),
        Found::Missing => {
            StripeError::missing("customer", &id, "id", StatusCode::NOT_FOUND).into_response()
        }
    }
}

async fn search_customers(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match try_search(&st, &headers, q.as_deref()) {
        Ok(body) => respond(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/customers/search`: the `email:'...'` query only (exact match,
/// case-insensitive, deleted customers left out), newest first, `limit`
/// (1..=100, default 10) and `page` (the previous result's `next_page`).
fn try_search(
    st: &StripeState,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<String, StripeError> {
    st.authorize(headers)?;
    let mut query = None;
    let mut limit = 10_usize;
    let mut offset = 0_usize;
    for (key, value) in query_pairs(raw)? {
        match key.as_str() {
            "query" => query = Some(value),
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        StripeError::invalid(
                            format!("Invalid limit: must be between 1 and 100, got {value}"),
                            Some("limit"),
                        )
                    })?;
            }
            "page" => {
                offset = value
                    .strip_prefix("page_")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| StripeError::invalid("Invalid page token.", Some("page")))?;
            }
            "expand[]" => {}
            other => return Err(StripeError::unknown_param(other)),
        }
    }
    let query = query
        .ok_or_else(|| StripeError::invalid("Missing required param: query.", Some("query")))?;
    let email = parse_email_query(&query).ok_or_else(|| {
        StripeError::invalid(
            format!("The sandbox's customer search takes only `email:'...'` queries, got: {query}"),
            Some("query"),
        )
    })?;
    let drift = st.drift();
    let store = st.read();
    let found = store.customers_by_email(&st.u, &email, true);
    let page: Vec<u64> = found.iter().skip(offset).take(limit).copied().collect();
    let has_more = offset + page.len() < found.len();
    let mut body = String::with_capacity(128 + page.len() * 1_300);
    body.push_str(r#"{"object":"search_result","data":["#);
    for (n, &i) in page.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        store.render_customer(&st.u, i, drift, &mut body);
    }
    body.push_str(r#"],"has_more":"#);
    body.push_str(if has_more { "true" } else { "false" });
    body.push_str(r#","next_page":"#);
    if has_more {
        body.push_str(&format!("\"page_{}\"", offset + page.len()));
    } else {
        body.push_str("null");
    }
    body.push_str(r#","url":"/v1/customers/search"}"#);
    Ok(body)
}

/// The email of a search query `email:'x'` (or `"x"`, `\` escaping a quote).
fn parse_email_query(query: &str) -> Option<String> {
    let rest = query.trim().strip_prefix("email:")?.trim_start();
    let mut chars = rest.chars();
    let quote = chars.next().filter(|c| *c == '\'' || *c == '"')?;
    let mut out = String::new();
    loop {
        match chars.next()? {
            '\\' => out.push(chars.next()?),
            c if c == quote => break,
            c => out.push(c),
        }
    }
    chars.as_str().trim().is_empty().then_some(out)
}

/// Runs a write once per `Idempotency-Key`: a repeat with the same request
/// replays the first response; a repeat with different parameters is an error.
fn idempotent(
    st: &StripeState,
    headers: &HeaderMap,
    fingerprint: String,
    run: impl FnOnce() -> (StatusCode, String),
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key else {
        let (status, body) = run();
        return respond(status, body);
    };
    let mut seen = lock(&st.idempotency);
    if let Some(prev) = seen.get(&key) {
        if prev.fingerprint != fingerprint {
            return StripeError {
                kind: "idempotency_error",
                ..StripeError::invalid(
                    format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
                    None,
                )
            }
            .into_response();
        }
        let mut resp = respond(prev.status, prev.body.clone());
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return resp;
    }
    let (status, body) = run();
    if !status.is_server_error() {
        seen.insert(
            key,
            Idempotent {
                fingerprint,
                status,
                body: body.clone(),
            },
        );
    }
    respond(status, body)
}

fn apply_drift(body: String, drift: Option<Drift>) -> String {
    if drift.is_none() {
        return body;
    }
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&body) else {
        return body;
    };
    match drift {
        Some(Drift::AddedField) => {
            map.insert(render::DRIFT_FIELD.to_owned(), Value::from("x"));
        }
        Some(Drift::ChangedType) => {
            if let Some(b) = map.get("balance").and_then(Value::as_i64) {
                map.insert("balance".to_owned(), Value::from(b.to_string()));
            }
        }
        None => {}
    }
    Value::Object(map).to_string()
}

async fn create_customer(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return e.into_response();
    }
    let fields = match form::decode(&body).and_then(form::customer_fields) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let drift = st.drift();
    let fingerprint = format!("POST /v1/customers\n{}", String::from_utf8_lossy(&body));
    let email = fields
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned);
    idempotent(&st, &headers, fingerprint, || {
        let mut store = st.write();
        if let Some(email) = &email {
            store.count_create(email);
        }
        let (_, out) = store.create_customer(&st.u, st.clock.now(), Some(fields), None);
        (StatusCode::OK, apply_drift(out, drift))
    })
}

async fn update_customer(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return e.into_response();
    }
    let fields = match form::decode(&body).and_then(form::customer_fields) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let drift = st.drift();
    let fingerprint = format!(
        "POST /v1/customers/{id}\n{}",
        String::from_utf8_lossy(&body)
    );
    idempotent(&st, &headers, fingerprint, || {
        let mut store = st.write();
        match store.find_customer(&st.u, &id) {
            Found::Live(i) => {
                let out = store.update_customer(&st.u, i, fields, st.clock.now(), None);
                (StatusCode::OK, apply_drift(out, drift))
            }
            _ => {
                let e = StripeError::missing("customer", &id, "id", StatusCode::NOT_FOUND);
                (e.status, e.body())
            }
        }
    })
}

async fn delete_customer(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return e.into_response();
    }
    let fingerprint = format!("DELETE /v1/customers/{id}");
    idempotent(&st, &headers, fingerprint, || {
        let mut store = st.write();
        match store.find_customer(&st.u, &id) {
            Found::Live(i) => (
                StatusCode::OK,
                store.delete_customer(&st.u, i, st.clock.now(), None),
            ),
            _ => {
                let e = StripeError::missing("customer", &id, "id", StatusCode::NOT_FOUND);
                (e.status, e.body())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_basic_auth() {
        assert_eq!(
            base64_decode("c2tfdGVzdF94Og==").as_deref(),
            Some(&b"sk_test_x:"[..])
        );
        assert_eq!(
            base64_decode("c2tfdGVzdF94Og").as_deref(),
            Some(&b"sk_test_x:"[..])
        );
        assert_eq!(base64_decode("!!"), None);
    }

    /// Renders list pages of every kind (plain, drifted, with mutated
    /// customers) for a fixed seed and size and digests them: the bytes served
    /// must not change when rendering is optimised.
    fn digest_of_pages() -> String {
        use md5::{Digest, Md5};
        let api = Arc::new(ApiState::new(
            7,
            crate::config::Faults::default(),
            false,
            25,
        ));
        let st = StripeState::new(
            7,
            1_234,
            "sk_test_k".to_owned(),
            Arc::new(Clock::new(Some(crate::state::TEST_EPOCH))),
            api.clone(),
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk_test_k"),
        );
        let mut md5 = Md5::new();
        let mut page = |collection: &str, query: &str| {
            let body = try_list(&st, &headers, collection, Some(query)).map_err(|e| e.message);
            let body = body.unwrap_or_else(|m| panic!("{collection}?{query}: {m}"));
            md5.update(body.as_bytes());
        };
        for drift in [None, Some(Drift::AddedField), Some(Drift::ChangedType)] {
            api.set_faults(crate::config::Faults {
                drift,
                ..Default::default()
            });
            for kind in Kind::ALL {
                page(kind.path(), "limit=100");
                page(kind.path(), "limit=3");
            }
            let after = st.u.id(Kind::Customer, 700);
            page("customers", &format!("limit=100&starting_after={after}"));
            page("customers", &format!("limit=100&ending_before={after}"));
            page("customers", "limit=50&created%5Blt%5D=1780000000");
            page("subscriptions", "limit=100&status=all");
            page("subscriptions", "limit=100&status=canceled");
        }
        api.set_faults(crate::config::Faults::default());
        let mut fields = Map::new();
        fields.insert("name".to_owned(), Value::from("Ada \"Q\" Lovelace"));
        let id = st.u.id(Kind::Customer, 1_230);
        assert!(st.update_customer(&id, fields).is_some());
        assert!(st.delete_customer(&st.u.id(Kind::Customer, 1_231)));
        page("customers", "limit=10");
        let mut hex = String::new();
        for b in md5.finalize() {
            hex.push_str(&format!("{b:02x}"));
        }
        hex
    }

    #[test]
    fn pages_are_byte_identical_to_the_golden_digest() {
        assert_eq!(digest_of_pages(), "70626e85d1bba2b4244440e0ceb7dfef");
    }

    fn post(st: &StripeState, path: &str, form: &str, key: Option<&str>) -> u16 {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk_test_k"),
        );
        if let Some(k) = key
            && let Ok(v) = HeaderValue::from_str(k)
        {
            headers.insert("idempotency-key", v);
        }
        let fields = form::customer_fields(form::decode(form.as_bytes()).unwrap()).unwrap();
        let fingerprint = format!("POST {path}\n{form}");
        let email = fields
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let resp = idempotent(st, &headers, fingerprint, || {
            let mut store = st.write();
            if let Some(e) = &email {
                store.count_create(e);
            }
            let (_, out) = store.create_customer(&st.u, st.clock.now(), Some(fields), None);
            (StatusCode::OK, out)
        });
        resp.status().as_u16()
    }

    fn search_state() -> (StripeState, HeaderMap) {
        let api = Arc::new(ApiState::new(
            7,
            crate::config::Faults::default(),
            false,
            25,
        ));
        let st = StripeState::new(
            7,
            20,
            "sk_test_k".to_owned(),
            Arc::new(Clock::new(Some(crate::state::TEST_EPOCH))),
            api,
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk_test_k"),
        );
        (st, headers)
    }

    fn search(st: &StripeState, headers: &HeaderMap, query: &str) -> Value {
        let body = try_search(st, headers, Some(query)).unwrap();
        serde_json::from_str(&body).unwrap()
    }

    fn search_ids(v: &Value) -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn search_finds_a_generated_customer_by_exact_email_case_insensitively() {
        let (st, headers) = search_state();
        let id = st.u.id(Kind::Customer, 3);
        let email = st.read().customer_email(&st.u, 3).unwrap();
        let q = format!("query=email%3A%27{}%27", email.to_uppercase());
        let v = search(&st, &headers, &q);
        assert_eq!(v["object"], "search_result");
        assert_eq!(v["url"], "/v1/customers/search");
        assert_eq!(v["has_more"], false);
        assert_eq!(v["next_page"], Value::Null);
        assert_eq!(search_ids(&v), vec![id]);
        assert_eq!(v["data"][0]["email"], Value::from(email.clone()));
        // Exact: a prefix of the email matches nothing.
        let prefix = &email[..email.len() - 1];
        let v = search(&st, &headers, &format!("query=email:'{prefix}'"));
        assert_eq!(search_ids(&v), Vec::<String>::new());
    }

    #[test]
    fn search_finds_written_customers_newest_first_and_skips_deleted() {
        let (st, headers) = search_state();
        assert_eq!(
            post(&st, "/v1/customers", "email=ann%40x.io&name=A1", None),
            200
        );
        st.clock.advance(10);
        assert_eq!(
            post(&st, "/v1/customers", "email=ann%40x.io&name=A2", Some("k2")),
            200
        );
        // A replay creates nothing and is not counted.
        assert_eq!(
            post(&st, "/v1/customers", "email=ann%40x.io&name=A2", Some("k2")),
            200
        );
        let first = st.u.id(Kind::Customer, 20);
        let second = st.u.id(Kind::Customer, 21);
        let v = search(&st, &headers, "query=email:%27ann@x.io%27");
        assert_eq!(search_ids(&v), vec![second.clone(), first.clone()]);
        assert_eq!(v["data"][0]["name"], "A2");
        assert_eq!(st.customer_creates("ANN@x.io"), 2);
        assert_eq!(st.customer_creates("bob@x.io"), 0);
        assert_eq!(st.customer_by_email("ann@x.io").unwrap()["name"], "A2");

        // One per page: next_page leads to the second.
        let v = search(&st, &headers, "query=email:%27ann@x.io%27&limit=1");
        assert_eq!(
            (search_ids(&v), &v["has_more"]),
            (vec![second.clone()], &Value::Bool(true))
        );
        let page = v["next_page"].as_str().unwrap().to_owned();
        let v = search(
            &st,
            &headers,
            &format!("query=email:%27ann@x.io%27&limit=1&page={page}"),
        );
        assert_eq!(search_ids(&v), vec![first.clone()]);
        assert_eq!(v["next_page"], Value::Null);

        assert!(st.delete_customer(&second));
        let v = search(&st, &headers, "query=email:%27ann@x.io%27");
        assert_eq!(search_ids(&v), vec![first.clone()]);
        assert_eq!(st.customer_by_email("ann@x.io").unwrap()["name"], "A1");
        assert!(st.delete_customer(&first));
        assert_eq!(
            search_ids(&search(&st, &headers, "query=email:%27ann@x.io%27")).len(),
            0
        );
        let gone = st.customer_by_email("ann@x.io").unwrap();
        assert_eq!(
            (&gone["id"], &gone["deleted"]),
            (&Value::from(second), &Value::Bool(true))
        );
        assert_eq!(st.customer_by_email("nobody@x.io"), None);
    }

    #[test]
    fn customer_email_is_the_rendered_email() {
        let (st, _) = search_state();
        st.create_customers(2);
        assert_eq!(post(&st, "/v1/customers", "name=NoEmail", None), 200);
        let mut fields = Map::new();
        fields.insert("email".to_owned(), Value::from("changed@x.io"));
        assert!(
            st.update_customer(&st.u.id(Kind::Customer, 4), fields)
                .is_some()
        );
        let store = st.read();
        for i in 0..store.customer_count(&st.u) {
            let mut out = String::new();
            store.render_customer(&st.u, i, None, &mut out);
            let rendered: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                store
                    .customer_email(&st.u, i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                rendered["email"],
                "customer {i}"
            );
        }
        assert_eq!(store.customer_email(&st.u, 22), None);
        assert_eq!(
            store.customer_email(&st.u, 4).as_deref(),
            Some("changed@x.io")
        );
    }

    #[test]
    fn search_queries_parse_quotes_and_refuse_the_rest() {
        assert_eq!(
            parse_email_query("email:'a@b.co'").as_deref(),
            Some("a@b.co")
        );
        assert_eq!(
            parse_email_query(" email: \"a@b.co\" ").as_deref(),
            Some("a@b.co")
        );
        assert_eq!(
            parse_email_query(r"email:'o\'neil@b.co'").as_deref(),
            Some("o'neil@b.co")
        );
        assert_eq!(parse_email_query("email:'a@b.co' OR name:'x'"), None);
        assert_eq!(parse_email_query("name:'x'"), None);
        assert_eq!(parse_email_query("email:'unterminated"), None);
        let (st, headers) = search_state();
        let e = try_search(&st, &headers, Some("query=name:%27x%27")).unwrap_err();
        assert_eq!(
            (e.status, e.param.as_deref()),
            (StatusCode::BAD_REQUEST, Some("query"))
        );
        let e = try_search(&st, &headers, None).unwrap_err();
        assert_eq!(e.message, "Missing required param: query.");
        let e = try_search(&st, &headers, Some("query=email:%27a@b.co%27&limit=0")).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("limit"));
        let e = try_search(&st, &HeaderMap::new(), Some("query=email:%27a@b.co%27")).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn search_is_routed_before_the_customer_id_route() {
        let sb = crate::Sandbox::start(crate::SandboxConfig {
            size: 5,
            rate_limits: false,
            ..crate::SandboxConfig::default()
        })
        .await
        .unwrap();
        let email = sb
            .control()
            .stripe_customer_by_email("nobody@example.invalid");
        assert_eq!(email, None);
        let resp = reqwest::Client::new()
            .get(format!(
                "{}/v1/customers/search?query=email:%27nobody@example.invalid%27",
                sb.base_url(Api::Stripe)
            ))
            .bearer_auth(crate::DEFAULT_STRIPE_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["object"], "search_result");
        assert_eq!(v["data"], Value::Array(Vec::new()));
    }

    #[test]
    fn documented_limits_by_key_mode() {
        assert_eq!(documented_rate_limit("sk_test_abc"), 25);
        assert_eq!(documented_rate_limit("sk_live_abc"), 100);
    }
}
