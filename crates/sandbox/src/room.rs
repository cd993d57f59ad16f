//! The one trait every simulated API implements ([`Room`]), and the
//! [`Control`] handle that holds the rooms.
//!
//! The server, the control API and the fault layer see an API only through
//! this trait: they never name one.

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::config::Api;
use crate::error::SandboxError;
use crate::state::{ApiState, Clock};

/// An error every vendor answers in its own shape.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VendorError {
    /// Bad or missing credentials (401).
    Unauthorized,
    /// Over the rate limit (429; the fault layer adds `Retry-After`).
    RateLimited,
    /// An internal error (500).
    ServerError,
}

/// One simulated API: its routes, control routes, data and error shape.
///
/// Contract: a room serves only its own vendor paths (never `/__sandbox/`
/// outside `/__sandbox/<api>/`), answers every vendor error in the vendor's
/// shape, and keeps all its run-time state reachable from itself, so that
/// [`Room::save`] followed by [`Room::restore`] into a room built from the
/// same config serves the same data.
pub(crate) trait Room: Any + Send + Sync {
    /// Which API this room simulates.
    fn api(&self) -> Api;

    /// Its faults, rate limit and request/write logs.
    fn state(&self) -> &Arc<ApiState>;

    /// The vendor routes, with the room's own middleware (auth, vendor rate
    /// limits) but without the generic fault layer.
    fn routes(self: Arc<Self>) -> Router;

    /// Wraps the fault-layered routes in middleware that must see a request
    /// before the fault layer does (Mailchimp's connection limit, which
    /// injected latency must hold open). Default: none.
    fn around_faults(self: Arc<Self>, faulted: Router) -> Router {
        faulted
    }

    /// The room's `/__sandbox/<api>/...` control routes. Default: none.
    fn control_routes(&self) -> Router<Control> {
        Router::new()
    }

    /// The vendor's response to an error the fault layer produces.
    fn vendor_error(&self, kind: VendorError) -> Response;

    /// The room's stored mutations as JSON, for [`Control::save_state`];
    /// `None` (the default): nothing to persist.
    fn save(&self) -> Option<Value> {
        None
    }

    /// Replaces the room's stored mutations with `saved` (what
    /// [`Room::save`] returned); on error the room is left unchanged.
    fn restore(&self, saved: &Value) -> Result<(), SandboxError> {
        let _ = saved;
        Ok(())
    }
}

/// A control route's answer: the value as JSON, or the error as
/// `{"error": "..."}` with 404 for an unknown object and 400 otherwise.
pub(crate) fn control_reply(result: Result<Value, SandboxError>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => control_error(&e),
    }
}

/// A control route's error: 404 for an unknown object, 400 otherwise.
pub(crate) fn control_error(e: &SandboxError) -> Response {
    let status = match e {
        SandboxError::NotFound { .. } => http::StatusCode::NOT_FOUND,
        _ => http::StatusCode::BAD_REQUEST,
    };
    (
        status,
        axum::Json(serde_json::json!({"error": e.to_string()})),
    )
        .into_response()
}

/// What every [`Control`] clone shares.
struct Shared {
    clock: Arc<Clock>,
    rooms: Vec<Arc<dyn Room>>,
}

/// Handle on a running sandbox's state (cheap to clone).
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    /// A handle on `rooms`, which share `clock`.
    pub(crate) fn new(clock: Arc<Clock>, rooms: Vec<Arc<dyn Room>>) -> Self {
        Self {
            shared: Arc::new(Shared { clock, rooms }),
        }
    }

    /// The sandbox clock.
    pub(crate) fn clock(&self) -> &Arc<Clock> {
        &self.shared.clock
    }

    /// Every room, in the order the registry built them.
    pub(crate) fn rooms(&self) -> &[Arc<dyn Room>] {
        &self.shared.rooms
    }

    /// The room simulating `api`, if the sandbox serves it.
    pub(crate) fn room_of(&self, api: Api) -> Option<&Arc<dyn Room>> {
        self.shared.rooms.iter().find(|r| r.api() == api)
    }

    /// The room of concrete type `R`, if the sandbox has one.
    pub(crate) fn room<R: Room>(&self) -> Option<&R> {
        self.shared
            .rooms
            .iter()
            .find_map(|r| (r.as_ref() as &dyn Any).downcast_ref::<R>())
    }

    /// The room of type `R`, or an error naming `api` when the sandbox lacks it.
    pub(crate) fn served<R: Room>(&self, api: Api) -> Result<&R, SandboxError> {
        self.room::<R>().ok_or(SandboxError::NotServed { api })
    }
}
