//! The Stripe simulator: `/v1/` list, retrieve and customer write endpoints,
//! Stripe's authentication, errors, idempotency keys and events.

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
use list::{Cursor, ListParams, Source};
use render::Ctx;
use store::{
    CreationEvents, Customers, EVENT_WINDOW_SECS, Found, Generated, MutationEvents, Store,
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

    pub(crate) fn customer_ids(&self) -> Vec<String> {
        self.read().live_customer_ids(&self.u)
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
        .route(
            "/v1/customers",
            get(list_handler_customers).post(create_customer),
        )
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
    let id = format!("acct_{}", &st.u.id(Kind::Customer, 0)[4..]);
    let body = format!(
        r#"{{"id":"{id}","object":"account","business_profile":{{"mcc":null,"name":"Weft Sandbox","product_description":null,"support_address":null,"support_email":null,"support_phone":null,"support_url":null,"url":null}},"business_type":"company","capabilities":{{"card_payments":"active","transfers":"active"}},"charges_enabled":true,"country":"US","created":{created},"default_currency":"usd","details_submitted":true,"email":"owner@weft-sandbox.example.com","metadata":{{}},"payouts_enabled":true,"type":"standard"}}"#,
        created = st.u.epoch - data::HISTORY_SECS - 86_400
    );
    respond(StatusCode::OK, body)
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
    let pairs = query_pairs(raw)?;
    let events = collection == "events";
    let kind = Kind::from_path(collection);
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
        Some(k) => {
            generated = Generated { ctx, kind: k };
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
    match st.u.parse_id(kind, &id).filter(|&i| i < st.u.count(kind)) {
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
    idempotent(&st, &headers, fingerprint, || {
        let mut store = st.write();
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
        assert_eq!(digest_of_pages(), "e2cb3df0f9302936620fb19fc46a9c6c");
    }

    #[test]
    fn documented_limits_by_key_mode() {
        assert_eq!(documented_rate_limit("sk_test_abc"), 25);
        assert_eq!(documented_rate_limit("sk_live_abc"), 100);
    }
}
