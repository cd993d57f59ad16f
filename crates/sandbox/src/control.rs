//! The generic control API: the clock, request and write logs, faults and
//! rate limits of every API, and saving and restoring the sandbox's stored
//! state — from Rust ([`Control`]) or over HTTP under `/__sandbox/`. Each
//! room adds its own operations (`/__sandbox/<api>/...`) through
//! [`crate::room::Room::control_routes`].

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{Api, Faults};
use crate::error::SandboxError;
use crate::room::{Control, Room};
use crate::state::{ApiState, RateLimit, RecordedRequest, RecordedWrite};

impl Control {
    /// Moves the sandbox clock forward by `secs` (negative values are ignored).
    pub fn advance_clock(&self, secs: i64) {
        self.clock().advance(secs);
    }

    /// The sandbox's current time (unix seconds): its reading at start
    /// ([`Control::epoch`]) plus the time elapsed since, plus every
    /// [`Control::advance_clock`].
    pub fn now(&self) -> i64 {
        self.clock().now()
    }

    /// Where generated history ends (unix seconds): the clock's reading at
    /// start ([`crate::SandboxConfig::clock_start`], or the wall clock then).
    pub fn epoch(&self) -> i64 {
        self.clock().epoch()
    }

    /// The run-time state of `api`'s room, if the sandbox serves it.
    fn api_state(&self, api: Api) -> Option<&Arc<ApiState>> {
        self.room_of(api).map(|room| room.state())
    }

    /// Number of requests `api` has received (control routes excluded).
    pub fn request_count(&self, api: Api) -> u64 {
        self.api_state(api).map_or(0, |s| s.request_count())
    }

    /// The requests `api` has received, oldest first (the latest 100,000).
    pub fn requests(&self, api: Api) -> Vec<RecordedRequest> {
        self.api_state(api)
            .map(|s| s.requests())
            .unwrap_or_default()
    }

    /// The writes `api` has received, oldest first.
    pub fn writes(&self, api: Api) -> Vec<RecordedWrite> {
        self.api_state(api).map(|s| s.writes()).unwrap_or_default()
    }

    /// Replaces the faults injected into `api`.
    pub fn set_faults(&self, api: Api, faults: Faults) {
        if let Some(s) = self.api_state(api) {
            s.set_faults(faults);
        }
    }

    /// Turns `api`'s documented rate limit on or off.
    pub fn set_rate_limits(&self, api: Api, on: bool) {
        if let Some(s) = self.api_state(api) {
            s.set_rate_limit(if on {
                RateLimit::Documented
            } else {
                RateLimit::Off
            });
        }
    }

    /// Sets a custom rate limit in requests per second (`None`: no limit).
    pub fn set_rate_limit_per_sec(&self, api: Api, per_sec: Option<u32>) {
        if let Some(s) = self.api_state(api) {
            s.set_rate_limit(per_sec.map_or(RateLimit::Off, RateLimit::PerSec));
        }
    }

    /// The sandbox's stored mutations, as a JSON object keyed by API name
    /// (`{"mailchimp": {...}}`); APIs with nothing to persist are absent.
    /// Hand it to [`Control::restore_state`] of a sandbox started with the
    /// same config to serve the same data there.
    pub fn save_state(&self) -> Value {
        let mut saved = Map::new();
        for room in self.rooms() {
            if let Some(part) = room.save() {
                saved.insert(room.api().name().to_owned(), part);
            }
        }
        Value::Object(saved)
    }

    /// Restores what [`Control::save_state`] returned, replacing each named
    /// API's stored mutations. Every key is checked to name an API this
    /// sandbox serves before any is restored; an API whose part is malformed
    /// is left unchanged (APIs restored before it stay restored).
    pub fn restore_state(&self, saved: &Value) -> Result<(), SandboxError> {
        let Value::Object(parts) = saved else {
            return Err(SandboxError::InvalidSavedState {
                api: None,
                reason: "it must be a JSON object keyed by API name".to_owned(),
            });
        };
        let mut plan: Vec<(&Arc<dyn Room>, &Value)> = Vec::with_capacity(parts.len());
        for (name, part) in parts {
            let api = Api::ALL
                .into_iter()
                .find(|api| api.name() == name)
                .ok_or_else(|| SandboxError::UnknownApi { name: name.clone() })?;
            let room = self.room_of(api).ok_or(SandboxError::NotServed { api })?;
            plan.push((room, part));
        }
        for (room, part) in plan {
            room.restore(part)?;
        }
        Ok(())
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
struct Limits {
    on: Option<bool>,
    per_sec: Option<u32>,
}

fn err(status: StatusCode, e: &SandboxError) -> Response {
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

/// Runs `f` with the API named in the query, or answers 400 (404 when the
/// sandbox does not serve it).
fn with_api(c: &Control, q: &ApiQuery, f: impl FnOnce(Api) -> Response) -> Response {
    match q.api.parse::<Api>() {
        Ok(api) if c.room_of(api).is_some() => f(api),
        Ok(api) => err(StatusCode::NOT_FOUND, &SandboxError::NotServed { api }),
        Err(e) => err(StatusCode::BAD_REQUEST, &e),
    }
}

/// The `/__sandbox/` routes: the generic ones and every room's own.
pub(crate) fn router(control: Control) -> Router {
    let mut router = Router::new()
        .route("/__sandbox/clock", get(clock_now))
        .route("/__sandbox/clock/advance", post(clock_advance))
        .route("/__sandbox/requests", get(requests))
        .route("/__sandbox/writes", get(writes))
        .route("/__sandbox/faults", post(faults))
        .route("/__sandbox/rate_limits", post(rate_limits));
    for room in control.rooms() {
        router = router.merge(room.control_routes());
    }
    router.with_state(control)
}

async fn clock_now(State(c): State<Control>) -> Json<Value> {
    Json(json!({"now": c.now()}))
}

async fn clock_advance(State(c): State<Control>, Json(a): Json<Advance>) -> Json<Value> {
    c.advance_clock(a.secs);
    Json(json!({"now": c.now()}))
}

async fn requests(State(c): State<Control>, Query(q): Query<ApiQuery>) -> Response {
    with_api(&c, &q, |api| {
        Json(json!({"count": c.request_count(api), "requests": c.requests(api)})).into_response()
    })
}

async fn writes(State(c): State<Control>, Query(q): Query<ApiQuery>) -> Response {
    with_api(&c, &q, |api| Json(c.writes(api)).into_response())
}

async fn faults(
    State(c): State<Control>,
    Query(q): Query<ApiQuery>,
    Json(f): Json<Faults>,
) -> Response {
    with_api(&c, &q, |api| {
        c.set_faults(api, f);
        Json(json!({"ok": true})).into_response()
    })
}

async fn rate_limits(
    State(c): State<Control>,
    Query(q): Query<ApiQuery>,
    Json(l): Json<Limits>,
) -> Response {
    with_api(&c, &q, |api| {
        match (l.per_sec, l.on) {
            (Some(n), _) => c.set_rate_limit_per_sec(api, Some(n)),
            (None, on) => c.set_rate_limits(api, on.unwrap_or(true)),
        }
        Json(json!({"ok": true})).into_response()
    })
}
