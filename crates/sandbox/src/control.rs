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
use crate::state::{ApiState, Clock, RateLimit};
use crate::stripe::StripeState;

/// A request an API received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method (`GET`).
    pub method: String,
    /// Path without the query (`/v1/customers`).
    pub path: String,
    /// Raw query string, empty when there was none.
    pub query: String,
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
}

impl Shared {
    fn api(&self, api: Api) -> &ApiState {
        match api {
            Api::Stripe => &self.stripe_api,
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

    /// The sandbox's current time (unix seconds): the wall clock, never earlier
    /// than 2026-11-01T00:00:00Z (where generated history ends), plus every
    /// [`Control::advance_clock`].
    pub fn now(&self) -> i64 {
        self.shared.clock.now()
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
