//! The Salesforce simulator: OAuth token flows, REST `query`/`queryAll` with
//! `nextRecordsUrl`, `describe`, composite sObject collection upserts and
//! deletes, Bulk
//! API 2.0 query and ingest jobs, the `Sforce-Limit-Info` header and the
//! daily API request allocation.
//!
//! Any API version of the form `vNN.0` is accepted.

mod bulk;
mod control;
mod data;
mod errors;
mod oauth;
mod schema;
mod soql;
mod store;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as QueryParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Api, Drift};
use crate::json::Obj;
use crate::room::{Control, Room, VendorError};
use crate::state::{ApiState, Clock, lock};

use data::{Org, Val};
use errors::SfError;
use schema::SObject;
use store::{Raw, Store};

/// Records per `query` batch (the default and the maximum `batchSize`).
const QUERY_BATCH: usize = 2_000;

/// Salesforce documents no per-second limit (the daily allocation governs).
pub(crate) const DOCUMENTED_RATE_LIMIT: u32 = u32::MAX;

/// The simulator's credentials and limits.
#[derive(Clone)]
pub(crate) struct SalesforceAuth {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) refresh_token: String,
    pub(crate) username: String,
}

/// A `query` cursor: the matching rows, fixed when the query ran.
struct Cursor {
    query: soql::Query,
    rows: Vec<u64>,
    batch: usize,
}

/// The Salesforce simulator's state.
pub(crate) struct SalesforceState {
    org: Org,
    auth: SalesforceAuth,
    store: RwLock<Store>,
    tokens: Mutex<Vec<String>>,
    cursors: Mutex<HashMap<String, Arc<Cursor>>>,
    jobs: Mutex<bulk::Jobs>,
    seq: AtomicU64,
    used: AtomicU64,
    allocation: AtomicU64,
    /// Records left out of query and Bulk result pages but still counted
    /// by `COUNT()` (a lossy API, for completeness checks).
    hidden: Mutex<HashSet<(SObject, u64)>>,
    clock: Arc<Clock>,
    api: Arc<ApiState>,
}

impl SalesforceState {
    pub(crate) fn new(
        seed: u64,
        size: usize,
        auth: SalesforceAuth,
        daily_allocation: u64,
        clock: Arc<Clock>,
        api: Arc<ApiState>,
    ) -> Self {
        Self {
            org: Org::new(seed, size, clock.epoch()),
            auth,
            store: RwLock::new(Store::default()),
            tokens: Mutex::new(Vec::new()),
            cursors: Mutex::new(HashMap::new()),
            jobs: Mutex::new(bulk::Jobs::default()),
            seq: AtomicU64::new(1),
            used: AtomicU64::new(0),
            allocation: AtomicU64::new(daily_allocation),
            hidden: Mutex::new(HashSet::new()),
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

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Sets the daily API request allocation (requests already made still count).
    /// Holds (or releases) closed ingest jobs short of `JobComplete`.
    pub(crate) fn hold_ingest(&self, hold: bool) {
        lock(&self.jobs).hold_ingest = hold;
    }

    pub(crate) fn set_allocation(&self, n: u64) {
        self.allocation.store(n, Ordering::SeqCst);
    }

    /// Leaves record `i` of `obj` out of result pages; `COUNT()` still counts it.
    pub(crate) fn hide_from_pages(&self, obj: SObject, i: u64) {
        lock(&self.hidden).insert((obj, i));
    }

    /// Requests counted against the allocation so far.
    pub(crate) fn api_usage(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Runs `q` over the current records: the matching record indices, in
    /// ORDER BY order (else Id order), after OFFSET and LIMIT.
    fn run(&self, q: &soql::Query, all: bool) -> Vec<u64> {
        let store = self.read();
        let hidden = lock(&self.hidden);
        let org = &self.org;
        let obj = q.object;
        let total = store.total(org, obj);
        let mut rows: Vec<u64> = (0..total)
            .filter(|&i| {
                (all || !store.is_deleted(obj, i))
                    && (q.count || !hidden.contains(&(obj, i)))
                    && q.matches(&|f| store.get(org, obj, i, f))
            })
            .collect();
        drop(hidden);
        if q.is_ordered() {
            let keys = q.scanned_fields();
            let mut keyed: Vec<(u64, Vec<data::Val>)> = rows
                .iter()
                .map(|&i| (i, keys.iter().map(|&f| store.get(org, obj, i, f)).collect()))
                .collect();
            let pos = |f: usize| keys.iter().position(|&k| k == f).unwrap_or(0);
            keyed.sort_by(|a, b| {
                q.order_cmp(&|f| a.1[pos(f)].clone(), &|f| b.1[pos(f)].clone())
                    .then(a.0.cmp(&b.0))
            });
            rows = keyed.into_iter().map(|(i, _)| i).collect();
        }
        let offset = (q.offset as usize).min(rows.len());
        rows.drain(..offset);
        if let Some(limit) = q.limit {
            rows.truncate(limit as usize);
        }
        rows
    }

    /// Renders record `i` with the query's fields, as `query` returns it.
    fn render_record(
        &self,
        store: &Store,
        version: &str,
        q: &soql::Query,
        i: u64,
        drift: Option<Drift>,
        out: &mut String,
    ) {
        let obj = q.object;
        let mut o = Obj::new(out);
        let mut attrs = o.obj("attributes");
        attrs.str("type", obj.name()).str(
            "url",
            &format!(
                "/services/data/{version}/sobjects/{}/{}",
                obj.name(),
                self.org.id(obj, i)
            ),
        );
        attrs.end();
        for &f in &q.fields {
            let field = &obj.fields()[f];
            let v = store.get(&self.org, obj, i, f);
            match (drift, &v) {
                (Some(Drift::ChangedType), Val::Int(_) | Val::Num(_)) => {
                    o.str(field.name, &v.csv_text());
                }
                _ => v.push_json(o.value(field.name)),
            }
        }
        if drift == Some(Drift::AddedField) {
            o.str("weft_drift_field__c", "x");
        }
        o.end();
    }

    /// All fields of record `i` as JSON (for the control API).
    fn record_json(&self, obj: SObject, i: u64) -> Value {
        let store = self.read();
        let mut out = String::new();
        let mut o = Obj::new(&mut out);
        for (f, field) in obj.fields().iter().enumerate() {
            store
                .get(&self.org, obj, i, f)
                .push_json(o.value(field.name));
        }
        o.end();
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }
}

/// A JSON response.
pub(crate) fn respond_json(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

/// Salesforce's body for an error the fault layer produces.
fn vendor_error(kind: VendorError) -> Response {
    match kind {
        VendorError::Unauthorized => SfError::invalid_session(),
        VendorError::RateLimited => SfError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        ),
        VendorError::ServerError => SfError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
        ),
    }
    .into_response()
}

type Shared = Arc<SalesforceState>;

/// The Salesforce routes (without the fault layer).
fn router(state: Shared) -> Router {
    let data = Router::new()
        .route("/services/data/{v}/query", get(query))
        .route("/services/data/{v}/query/", get(query))
        .route("/services/data/{v}/query/{locator}", get(query_more))
        .route("/services/data/{v}/queryAll", get(query_all))
        .route("/services/data/{v}/queryAll/", get(query_all))
        .route("/services/data/{v}/queryAll/{locator}", get(query_more))
        .route("/services/data/{v}/sobjects", get(describe_global))
        .route("/services/data/{v}/sobjects/", get(describe_global))
        .route("/services/data/{v}/sobjects/{obj}/describe", get(describe))
        .route("/services/data/{v}/sobjects/{obj}/describe/", get(describe))
        .route("/services/data/{v}/sobjects/{obj}/{id}", get(retrieve))
        .route(
            "/services/data/{v}/composite/sobjects/{obj}/{field}",
            patch(composite_upsert),
        )
        .route(
            "/services/data/{v}/composite/sobjects",
            delete(composite_delete),
        )
        .route("/services/data/{v}/limits", get(limits))
        .merge(bulk::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/services/oauth2/token", post(oauth::token))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .merge(data)
        .fallback(not_found)
        .with_state(state)
}

impl Room for SalesforceState {
    fn api(&self) -> Api {
        Api::Salesforce
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

async fn not_found() -> Response {
    SfError::not_found("The requested resource does not exist").into_response()
}

/// `v59.0` -> true.
fn valid_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|n| n.strip_suffix(".0"))
        .is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Authenticates API calls, enforces the daily allocation and adds
/// `Sforce-Limit-Info` to every response.
async fn guard(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let version = req
        .uri()
        .path()
        .strip_prefix("/services/data/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if !valid_version(version) {
        return not_found().await;
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .map(str::trim);
    let valid = token.is_some_and(|t| lock(&st.tokens).iter().any(|k| k == t));
    if !valid {
        return SfError::invalid_session().into_response();
    }
    let used = st.used.fetch_add(1, Ordering::SeqCst) + 1;
    let max = st.allocation.load(Ordering::SeqCst);
    let mut resp = if used > max {
        SfError::limit_exceeded().into_response()
    } else {
        next.run(req).await
    };
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
    resp
}

async fn versions() -> Response {
    let mut out = String::from("[");
    for (n, (v, label)) in [
        (57, "Spring '23"),
        (58, "Summer '23"),
        (59, "Winter '24"),
        (60, "Spring '24"),
        (61, "Summer '24"),
        (62, "Winter '25"),
    ]
    .into_iter()
    .enumerate()
    {
        if n > 0 {
            out.push(',');
        }
        let mut o = Obj::new(&mut out);
        o.str("label", label)
            .str("url", &format!("/services/data/v{v}.0"))
            .str("version", &format!("{v}.0"));
        o.end();
    }
    out.push(']');
    respond_json(StatusCode::OK, out)
}

#[derive(Deserialize)]
struct Q {
    q: Option<String>,
}

/// `Sforce-Query-Options: batchSize=N` (200..=2000), else 2000.
fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(QUERY_BATCH, |n| n.clamp(200, QUERY_BATCH))
}

async fn query(
    State(st): State<Shared>,
    Path(v): Path<String>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<Q>,
) -> Response {
    run_query(&st, &v, &headers, q.q.as_deref(), false)
}

async fn query_all(
    State(st): State<Shared>,
    Path(v): Path<String>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<Q>,
) -> Response {
    run_query(&st, &v, &headers, q.q.as_deref(), true)
}

fn run_query(
    st: &SalesforceState,
    version: &str,
    headers: &HeaderMap,
    q: Option<&str>,
    all: bool,
) -> Response {
    let Some(text) = q.filter(|s| !s.trim().is_empty()) else {
        return SfError::bad_request("MALFORMED_QUERY", "A query string has to be specified")
            .into_response();
    };
    let parsed = match soql::parse(text) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let rows = st.run(&parsed, all);
    if parsed.count {
        // Salesforce answers `COUNT()` with the count as `totalSize` and no records.
        return respond_json(
            StatusCode::OK,
            format!(
                "{{\"totalSize\":{},\"done\":true,\"records\":[]}}",
                rows.len()
            ),
        );
    }
    let cursor = Arc::new(Cursor {
        query: parsed,
        rows,
        batch: batch_size(headers),
    });
    page(st, version, cursor, 0, None)
}

/// Renders the batch of `cursor` starting at `from`, registering the cursor
/// for `nextRecordsUrl` when more remain.
fn page(
    st: &SalesforceState,
    version: &str,
    cursor: Arc<Cursor>,
    from: usize,
    locator: Option<&str>,
) -> Response {
    let end = (from + cursor.batch).min(cursor.rows.len());
    let done = end >= cursor.rows.len();
    let mut out = String::with_capacity(128 + (end - from) * 600);
    out.push_str("{\"totalSize\":");
    out.push_str(&cursor.rows.len().to_string());
    out.push_str(",\"done\":");
    out.push_str(if done { "true" } else { "false" });
    if !done {
        let id = match locator {
            Some(l) => l.to_owned(),
            None => {
                let id = data::make_id("01g", st.next_seq());
                lock(&st.cursors).insert(id.clone(), cursor.clone());
                id
            }
        };
        out.push_str(",\"nextRecordsUrl\":");
        crate::json::push_str_lit(
            &mut out,
            &format!("/services/data/{version}/query/{id}-{end}"),
        );
    }
    out.push_str(",\"records\":[");
    {
        let drift = st.api.faults().drift;
        let store = st.read();
        for (n, &i) in cursor.rows[from..end].iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            st.render_record(&store, version, &cursor.query, i, drift, &mut out);
        }
    }
    out.push_str("]}");
    respond_json(StatusCode::OK, out)
}

async fn query_more(
    State(st): State<Shared>,
    Path((v, locator)): Path<(String, String)>,
) -> Response {
    let invalid =
        || SfError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator").into_response();
    let Some((id, from)) = locator.rsplit_once('-') else {
        return invalid();
    };
    let Ok(from) = from.parse::<usize>() else {
        return invalid();
    };
    let Some(cursor) = lock(&st.cursors).get(id).cloned() else {
        return invalid();
    };
    if from >= cursor.rows.len() {
        return invalid();
    }
    page(&st, &v, cursor, from, Some(id))
}

fn sobject(name: &str) -> Result<SObject, SfError> {
    SObject::parse(name).ok_or_else(|| {
        SfError::not_found(format!(
            "The requested resource does not exist: sObject type '{name}' is not supported."
        ))
    })
}

async fn describe(State(_st): State<Shared>, Path((v, obj)): Path<(String, String)>) -> Response {
    match sobject(&obj) {
        Ok(obj) => {
            let mut out = String::with_capacity(16_384);
            schema::describe(obj, &v, &mut out);
            respond_json(StatusCode::OK, out)
        }
        Err(e) => e.into_response(),
    }
}

async fn describe_global(Path(v): Path<String>) -> Response {
    let mut out = String::with_capacity(8_192);
    schema::describe_global(&v, &mut out);
    respond_json(StatusCode::OK, out)
}

async fn retrieve(
    State(st): State<Shared>,
    Path((_v, obj, id)): Path<(String, String, String)>,
) -> Response {
    let obj = match sobject(&obj) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let live = st.org.parse_id(obj, &id).filter(|&i| {
        let store = st.read();
        store.exists(&st.org, obj, i) && !store.is_deleted(obj, i)
    });
    match live {
        Some(i) => {
            let mut v = st.record_json(obj, i);
            if let Value::Object(m) = &mut v {
                let url = format!("/services/data/{_v}/sobjects/{}/{id}", obj.name());
                let mut full = serde_json::Map::new();
                full.insert(
                    "attributes".to_owned(),
                    serde_json::json!({"type": obj.name(), "url": url}),
                );
                full.extend(std::mem::take(m));
                v = Value::Object(full);
            }
            respond_json(StatusCode::OK, v.to_string())
        }
        None => SfError::not_found("The requested resource does not exist").into_response(),
    }
}

async fn limits(State(st): State<Shared>) -> Response {
    let max = st.allocation.load(Ordering::SeqCst);
    let used = st.api_usage().min(max);
    let body = format!(
        r#"{{"DailyApiRequests":{{"Max":{max},"Remaining":{}}},"DailyBulkV2QueryJobs":{{"Max":10000,"Remaining":10000}}}}"#,
        max - used
    );
    respond_json(StatusCode::OK, body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Collection {
    #[serde(default)]
    all_or_none: bool,
    records: Vec<serde_json::Map<String, Value>>,
}

/// `PATCH /composite/sobjects/{obj}/{externalIdField}`: upsert up to 200 records.
async fn composite_upsert(
    State(st): State<Shared>,
    Path((_v, obj, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let obj = match sobject(&obj) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let Some(key) = obj
        .field_index(&field)
        .filter(|&k| obj.fields()[k].external_id || obj.fields()[k].name == "Id")
    else {
        return SfError::bad_request(
            "INVALID_FIELD",
            format!(
                "Field name provided, {field} is not an External ID or indexed field for {}",
                obj.name()
            ),
        )
        .into_response();
    };
    let req: Collection = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return SfError::bad_request(
                "JSON_PARSER_ERROR",
                format!("Cannot deserialize the request body: {e}"),
            )
            .into_response();
        }
    };
    if req.records.len() > 200 {
        return SfError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
        .into_response();
    }
    let converted: Vec<Result<Vec<(usize, data::Val)>, store::RecordError>> = req
        .records
        .iter()
        .map(|r| {
            if let Some(t) = r
                .get("attributes")
                .and_then(|a| a.get("type"))
                .and_then(Value::as_str)
                && !t.eq_ignore_ascii_case(obj.name())
            {
                return Err(store::RecordError {
                    code: "INVALID_TYPE",
                    message: format!(
                        "Record type {t} does not match the collection's {}",
                        obj.name()
                    ),
                    fields: vec![],
                });
            }
            store::convert(
                obj,
                Some(key),
                r.iter().map(|(k, v)| (k.as_str(), Raw::Json(v))),
            )
        })
        .collect();
    let now = st.clock.now();
    let mut store = st.write();
    // allOrNone: write into a copy, kept only when every record succeeds.
    let mut scratch = req.all_or_none.then(|| store.clone());
    let target = scratch.as_mut().unwrap_or(&mut *store);
    let mut results: Vec<Result<(u64, bool), store::RecordError>> = converted
        .into_iter()
        .map(|c| c.and_then(|values| target.write(&st.org, obj, Some(key), values, now, true)))
        .collect();
    if let Some(scratch) = scratch {
        if results.iter().all(Result::is_ok) {
            *store = scratch;
        } else {
            for r in &mut results {
                if r.is_ok() {
                    *r = Err(store::RecordError {
                        code: "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        message: "Record rolled back because not all records were valid and the request was using AllOrNone header".to_owned(),
                        fields: vec![],
                    });
                }
            }
        }
    }
    drop(store);
    let mut out = String::from("[");
    for (n, r) in results.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let mut o = Obj::new(&mut out);
        match r {
            Ok((i, created)) => {
                o.str("id", &st.org.id(obj, *i))
                    .bool("success", true)
                    .raw("errors", "[]")
                    .bool("created", *created);
            }
            Err(e) => {
                o.null("id").bool("success", false);
                let buf = o.value("errors");
                buf.push('[');
                let mut eo = Obj::new(buf);
                eo.str("statusCode", e.code).str("message", &e.message);
                let fb = eo.value("fields");
                fb.push_str(&serde_json::to_string(&e.fields).unwrap_or_else(|_| "[]".to_owned()));
                eo.end();
                buf.push(']');
            }
        }
        o.end();
    }
    out.push(']');
    respond_json(StatusCode::OK, out)
}

/// Why one id of a composite delete failed: (statusCode, message).
type DeleteFailure = (&'static str, String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteParams {
    #[serde(default)]
    ids: String,
    #[serde(default)]
    all_or_none: Option<String>,
}

/// `DELETE /composite/sobjects?ids=a,b&allOrNone=false`: deletes up to 200
/// records by Id (of any object), answering each as `{id, success, errors}`.
/// With `allOrNone=true` nothing is deleted unless every id can be.
async fn composite_delete(
    State(st): State<Shared>,
    QueryParams(p): QueryParams<DeleteParams>,
) -> Response {
    let ids: Vec<&str> = p
        .ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        return SfError::bad_request("MALFORMED_ID", "ids: at least one id is required")
            .into_response();
    }
    if ids.len() > 200 {
        return SfError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
        .into_response();
    }
    let all_or_none = p
        .all_or_none
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let now = st.clock.now();
    let mut store = st.write();
    let found: Vec<Result<(SObject, u64), DeleteFailure>> = ids
        .iter()
        .map(|id| {
            let hit = SObject::ALL.into_iter().find_map(|obj| {
                st.org
                    .parse_id(obj, id)
                    .filter(|&i| store.exists(&st.org, obj, i))
                    .map(|i| (obj, i))
            });
            match hit {
                Some((obj, i)) if store.is_deleted(obj, i) => {
                    Err(("ENTITY_IS_DELETED", "entity is deleted".to_owned()))
                }
                Some((obj, _)) if !obj.createable() => Err((
                    "INSUFFICIENT_ACCESS_OR_READONLY",
                    format!("insufficient access rights on object id {id}"),
                )),
                Some(hit) => Ok(hit),
                None => Err((
                    "INVALID_CROSS_REFERENCE_KEY",
                    format!("invalid cross reference id: {id}"),
                )),
            }
        })
        .collect();
    let rolled_back = all_or_none && found.iter().any(Result::is_err);
    let mut out = String::from("[");
    for (n, (id, r)) in ids.iter().zip(&found).enumerate() {
        if n > 0 {
            out.push(',');
        }
        let failure = match r {
            Ok(_) if rolled_back => Some((
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was using AllOrNone header".to_owned(),
            )),
            Ok((obj, i)) => {
                store.delete(*obj, *i, now);
                None
            }
            Err((code, message)) => Some((*code, message.clone())),
        };
        let mut o = Obj::new(&mut out);
        o.str("id", id);
        match failure {
            None => {
                o.bool("success", true).raw("errors", "[]");
            }
            Some((code, message)) => {
                o.bool("success", false);
                let buf = o.value("errors");
                buf.push('[');
                let mut eo = Obj::new(buf);
                eo.str("statusCode", code)
                    .str("message", &message)
                    .raw("fields", "[]");
                eo.end();
                buf.push(']');
            }
        }
        o.end();
    }
    out.push(']');
    drop(store);
    respond_json(StatusCode::OK, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_vnn_dot_zero() {
        assert!(valid_version("v59.0"));
        assert!(valid_version("v62.0"));
        assert!(!valid_version("v59"));
        assert!(!valid_version("59.0"));
        assert!(!valid_version("v59.1"));
    }
}
