//! The control API: advance the clock, mutate records (emitting the vendor's
//! change signals), read back requests and writes, and change faults and rate
//! limits — from Rust ([`Control`]) or over HTTP under `/__sandbox/`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{Api, Faults};
use crate::error::SandboxError;
use crate::intercom::IntercomState;
use crate::mailchimp::MailchimpState;
use crate::salesforce::SalesforceState;
use crate::state::{ApiState, Clock, RateLimit};
use crate::stripe::StripeState;
use crate::zendesk::ZendeskState;
use crate::zoom::ZoomState;

/// A request an API received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method (`GET`).
    pub method: String,
    /// Path without the query (`/v1/customers`).
    pub path: String,
    /// Raw query string, empty when there was none.
    pub query: String,
    /// When it arrived: milliseconds since the sandbox started.
    pub at_ms: u64,
}

/// The most requests any one-second window of `requests` holds (a sliding
/// window over their arrival times).
pub fn busiest_second(requests: &[RecordedRequest]) -> usize {
    let mut at: Vec<u64> = requests.iter().map(|r| r.at_ms).collect();
    at.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= 1_000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// A write (POST/PUT/PATCH/DELETE) an API received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedWrite {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The request body as received (lossy UTF-8).
    pub body: String,
    /// Sandbox clock time it arrived (unix seconds).
    pub at: i64,
}

/// Everything the control API reaches.
pub(crate) struct Shared {
    pub(crate) clock: Arc<Clock>,
    pub(crate) stripe_api: Arc<ApiState>,
    pub(crate) stripe: Arc<StripeState>,
    pub(crate) zoom_api: Arc<ApiState>,
    pub(crate) zoom: Arc<ZoomState>,
    pub(crate) mailchimp_api: Arc<ApiState>,
    pub(crate) mailchimp: Arc<MailchimpState>,
    pub(crate) salesforce_api: Arc<ApiState>,
    pub(crate) salesforce: Arc<SalesforceState>,
    pub(crate) zendesk_api: Arc<ApiState>,
    pub(crate) zendesk: Arc<ZendeskState>,
    pub(crate) intercom_api: Arc<ApiState>,
    pub(crate) intercom: Arc<IntercomState>,
}

impl Shared {
    fn api(&self, api: Api) -> &ApiState {
        match api {
            Api::Stripe => &self.stripe_api,
            Api::Zoom => &self.zoom_api,
            Api::Mailchimp => &self.mailchimp_api,
            Api::Salesforce => &self.salesforce_api,
            Api::Zendesk => &self.zendesk_api,
            Api::Intercom => &self.intercom_api,
        }
    }
}

/// Handle on a running sandbox's state (cheap to clone).
#[derive(Clone)]
pub struct Control {
    pub(crate) shared: Arc<Shared>,
}

impl Control {
    /// Moves the sandbox clock forward by `secs` (negative values are ignored).
    pub fn advance_clock(&self, secs: i64) {
        self.shared.clock.advance(secs);
    }

    /// The sandbox's current time (unix seconds): its reading at start
    /// ([`Control::epoch`]) plus the time elapsed since, plus every
    /// [`Control::advance_clock`].
    pub fn now(&self) -> i64 {
        self.shared.clock.now()
    }

    /// Where generated history ends (unix seconds): the clock's reading at
    /// start ([`crate::SandboxConfig::clock_start`], or the wall clock then).
    pub fn epoch(&self) -> i64 {
        self.shared.clock.epoch()
    }

    /// Updates a Stripe customer with JSON `fields` (a JSON object of customer
    /// fields, merged like the API merges them) and emits `customer.updated`.
    pub fn stripe_update_customer(&self, id: &str, fields: Value) -> Result<(), SandboxError> {
        let Value::Object(fields) = fields else {
            return Err(SandboxError::InvalidUpdate {
                api: Api::Stripe,
                object: "customer",
                id: id.to_owned(),
                reason: "fields must be a JSON object".to_owned(),
            });
        };
        self.shared
            .stripe
            .update_customer(id, fields)
            .map(|_| ())
            .ok_or_else(|| not_found(id))
    }

    /// Deletes a Stripe customer and emits `customer.deleted`.
    pub fn stripe_delete_customer(&self, id: &str) -> Result<(), SandboxError> {
        if self.shared.stripe.delete_customer(id) {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Creates `n` Stripe customers at the current time (emitting
    /// `customer.created`) and returns their ids.
    pub fn stripe_create_customers(&self, n: usize) -> Vec<String> {
        self.shared.stripe.create_customers(n)
    }

    /// Ids of every live Stripe customer, oldest first (`size` entries and more:
    /// meant for small sandboxes).
    pub fn stripe_customer_ids(&self) -> Vec<String> {
        self.shared.stripe.customer_ids()
    }

    /// Ids of every Zoom webinar (three per host; the third of each host is upcoming).
    pub fn zoom_webinar_ids(&self) -> Vec<i64> {
        self.shared.zoom.webinar_ids()
    }

    /// Every registrant of a Zoom webinar (any status, added ones last), as
    /// the list-registrants endpoint renders them.
    pub fn zoom_registrants(&self, webinar_id: i64) -> Result<Vec<Value>, SandboxError> {
        self.shared.zoom.registrants(webinar_id)
    }

    /// Number of registrants (any status) of a Zoom webinar.
    pub fn zoom_registrant_count(&self, webinar_id: i64) -> Result<u64, SandboxError> {
        self.shared.zoom.registrant_count(webinar_id)
    }

    /// Adds an approved registrant (`{"email", "first_name", ...}`) to a Zoom
    /// webinar and returns its registrant id (the existing one when the email
    /// is already registered).
    pub fn zoom_add_registrant(
        &self,
        webinar_id: i64,
        fields: Value,
    ) -> Result<String, SandboxError> {
        self.shared.zoom.add_registrant_json(webinar_id, &fields)
    }

    /// Renames a Zoom webinar registrant.
    pub fn zoom_rename_registrant(
        &self,
        registrant_id: &str,
        first_name: &str,
        last_name: &str,
    ) -> Result<(), SandboxError> {
        self.shared
            .zoom
            .rename_registrant(registrant_id, first_name, last_name)
    }

    /// The id of the Mailchimp audience.
    pub fn mailchimp_list_id(&self) -> String {
        self.shared.mailchimp.list_id().to_owned()
    }

    /// Every member of a Mailchimp audience (archived ones included), as the
    /// API renders them; empty for an unknown list.
    pub fn mailchimp_members(&self, list_id: &str) -> Vec<Value> {
        self.shared.mailchimp.members_json(list_id)
    }

    /// Number of requests `api` has received (control routes excluded).
    pub fn request_count(&self, api: Api) -> u64 {
        self.shared.api(api).request_count()
    }

    /// The requests `api` has received, oldest first (the latest 100,000).
    pub fn requests(&self, api: Api) -> Vec<RecordedRequest> {
        self.shared.api(api).requests()
    }

    /// The writes `api` has received, oldest first.
    pub fn writes(&self, api: Api) -> Vec<RecordedWrite> {
        self.shared.api(api).writes()
    }

    /// Replaces the faults injected into `api`.
    pub fn set_faults(&self, api: Api, faults: Faults) {
        self.shared.api(api).set_faults(faults);
    }

    /// Turns `api`'s documented rate limit on or off.
    pub fn set_rate_limits(&self, api: Api, on: bool) {
        self.shared.api(api).set_rate_limit(if on {
            RateLimit::Documented
        } else {
            RateLimit::Off
        });
    }

    /// Sets a custom rate limit in requests per second (`None`: no limit).
    pub fn set_rate_limit_per_sec(&self, api: Api, per_sec: Option<u32>) {
        self.shared
            .api(api)
            .set_rate_limit(per_sec.map_or(RateLimit::Off, RateLimit::PerSec));
    }
}

fn not_found(id: &str) -> SandboxError {
    SandboxError::NotFound {
        api: Api::Stripe,
        object: "customer",
        id: id.to_owned(),
    }
}

#[derive(Deserialize)]
struct ApiQuery {
    api: String,
}

#[derive(Deserialize)]
struct Advance {
    secs: i64,
}

#[derive(Deserialize)]
struct CreateMany {
    n: usize,
}

#[derive(Deserialize)]
struct Limits {
    on: Option<bool>,
    per_sec: Option<u32>,
}

fn err(status: StatusCode, e: &SandboxError) -> Response {
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

/// Runs `f` with the API named in the query, or answers 400.
fn with_api(q: &ApiQuery, f: impl FnOnce(Api) -> Response) -> Response {
    match q.api.parse::<Api>() {
        Ok(api) => f(api),
        Err(e) => err(StatusCode::BAD_REQUEST, &e),
    }
}

/// The `/__sandbox/` routes.
pub(crate) fn router(control: Control) -> Router {
    Router::new()
        .route("/__sandbox/clock", get(clock_now))
        .route("/__sandbox/clock/advance", post(clock_advance))
        .route("/__sandbox/stripe/customers/create", post(stripe_create))
        .route(
            "/__sandbox/stripe/customers/{id}/update",
            post(stripe_update),
        )
        .route(
            "/__sandbox/stripe/customers/{id}/delete",
            post(stripe_delete),
        )
        .route("/__sandbox/zoom/webinars", get(zoom_webinars))
        .route(
            "/__sandbox/zoom/webinars/{id}/registrants",
            get(zoom_registrants).post(zoom_add_registrant),
        )
        .route(
            "/__sandbox/zoom/webinars/{id}/registrants/count",
            get(zoom_registrant_count),
        )
        .route(
            "/__sandbox/zoom/registrants/{id}/rename",
            post(zoom_rename_registrant),
        )
        .route("/__sandbox/mailchimp/list_id", get(mailchimp_list_id))
        .route(
            "/__sandbox/mailchimp/lists/{id}/members",
            get(mailchimp_members),
        )
        .merge(crate::salesforce::control_routes())
        .merge(crate::zendesk::control_routes())
        .merge(crate::intercom::control_routes())
        .route("/__sandbox/requests", get(requests))
        .route("/__sandbox/writes", get(writes))
        .route("/__sandbox/faults", post(faults))
        .route("/__sandbox/rate_limits", post(rate_limits))
        .with_state(control)
}

async fn clock_now(State(c): State<Control>) -> Json<Value> {
    Json(json!({"now": c.now()}))
}

async fn clock_advance(State(c): State<Control>, Json(a): Json<Advance>) -> Json<Value> {
    c.advance_clock(a.secs);
    Json(json!({"now": c.now()}))
}

async fn stripe_create(State(c): State<Control>, Json(m): Json<CreateMany>) -> Json<Value> {
    Json(json!({"ids": c.stripe_create_customers(m.n)}))
}

async fn stripe_update(
    State(c): State<Control>,
    Path(id): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    match c.stripe_update_customer(&id, fields) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e @ SandboxError::NotFound { .. }) => err(StatusCode::NOT_FOUND, &e),
        Err(e) => err(StatusCode::BAD_REQUEST, &e),
    }
}

async fn stripe_delete(State(c): State<Control>, Path(id): Path<String>) -> Response {
    match c.stripe_delete_customer(&id) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => err(StatusCode::NOT_FOUND, &e),
    }
}

#[derive(Deserialize)]
struct Rename {
    first_name: String,
    last_name: String,
}

fn sandbox_result(r: Result<Value, SandboxError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e @ SandboxError::NotFound { .. }) => err(StatusCode::NOT_FOUND, &e),
        Err(e) => err(StatusCode::BAD_REQUEST, &e),
    }
}

async fn zoom_webinars(State(c): State<Control>) -> Json<Value> {
    Json(json!({"ids": c.zoom_webinar_ids()}))
}

async fn zoom_registrants(State(c): State<Control>, Path(id): Path<i64>) -> Response {
    sandbox_result(c.zoom_registrants(id).map(Value::from))
}

async fn zoom_registrant_count(State(c): State<Control>, Path(id): Path<i64>) -> Response {
    sandbox_result(c.zoom_registrant_count(id).map(|n| json!({"count": n})))
}

async fn zoom_add_registrant(
    State(c): State<Control>,
    Path(id): Path<i64>,
    Json(fields): Json<Value>,
) -> Response {
    sandbox_result(
        c.zoom_add_registrant(id, fields)
            .map(|rid| json!({"registrant_id": rid})),
    )
}

async fn zoom_rename_registrant(
    State(c): State<Control>,
    Path(id): Path<String>,
    Json(r): Json<Rename>,
) -> Response {
    sandbox_result(
        c.zoom_rename_registrant(&id, &r.first_name, &r.last_name)
            .map(|()| json!({"ok": true})),
    )
}

async fn mailchimp_list_id(State(c): State<Control>) -> Json<Value> {
    Json(json!({"list_id": c.mailchimp_list_id()}))
}

async fn mailchimp_members(State(c): State<Control>, Path(id): Path<String>) -> Json<Value> {
    Json(Value::from(c.mailchimp_members(&id)))
}

async fn requests(State(c): State<Control>, Query(q): Query<ApiQuery>) -> Response {
    with_api(&q, |api| {
        Json(json!({"count": c.request_count(api), "requests": c.requests(api)})).into_response()
    })
}

async fn writes(State(c): State<Control>, Query(q): Query<ApiQuery>) -> Response {
    with_api(&q, |api| Json(c.writes(api)).into_response())
}

async fn faults(
    State(c): State<Control>,
    Query(q): Query<ApiQuery>,
    Json(f): Json<Faults>,
) -> Response {
    with_api(&q, |api| {
        c.set_faults(api, f);
        Json(json!({"ok": true})).into_response()
    })
}

async fn rate_limits(
    State(c): State<Control>,
    Query(q): Query<ApiQuery>,
    Json(l): Json<Limits>,
) -> Response {
    with_api(&q, |api| {
        match (l.per_sec, l.on) {
            (Some(n), _) => c.set_rate_limit_per_sec(api, Some(n)),
            (None, on) => c.set_rate_limits(api, on.unwrap_or(true)),
        }
        Json(json!({"ok": true})).into_response()
    })
}
