//! The Zoom part of the control API: list webinars, read, count and add
//! webinar registrants, find one by email, rename registrants.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::room::{Control, control_reply};

use super::ZoomState;

impl Control {
    /// Ids of every Zoom webinar (three per host; the third of each host is upcoming).
    pub fn zoom_webinar_ids(&self) -> Vec<i64> {
        self.room::<ZoomState>()
            .map(ZoomState::webinar_ids)
            .unwrap_or_default()
    }

    /// Every registrant of a Zoom webinar (any status, added ones last), as
    /// the list-registrants endpoint renders them.
    pub fn zoom_registrants(&self, webinar_id: i64) -> Result<Vec<Value>, SandboxError> {
        self.served::<ZoomState>(Api::Zoom)?.registrants(webinar_id)
    }

    /// Number of registrants (any status) of a Zoom webinar.
    pub fn zoom_registrant_count(&self, webinar_id: i64) -> Result<u64, SandboxError> {
        self.served::<ZoomState>(Api::Zoom)?
            .registrant_count(webinar_id)
    }

    /// Adds an approved registrant (`{"email", "first_name", ...}`) to a Zoom
    /// webinar and returns its registrant id (the existing one when the email
    /// is already registered).
    pub fn zoom_add_registrant(
        &self,
        webinar_id: i64,
        fields: Value,
    ) -> Result<String, SandboxError> {
        self.served::<ZoomState>(Api::Zoom)?
            .add_registrant_json(webinar_id, &fields)
    }

    /// The registration of `email` (any case) in a Zoom webinar, any
    /// status (`"status"`: approved, pending or denied), as the
    /// list-registrants endpoint renders it; `None` when not registered.
    pub fn zoom_registrant_by_email(
        &self,
        webinar_id: i64,
        email: &str,
    ) -> Result<Option<Value>, SandboxError> {
        self.served::<ZoomState>(Api::Zoom)?
            .registrant_by_email(webinar_id, email)
    }

    /// Renames a Zoom webinar registrant.
    pub fn zoom_rename_registrant(
        &self,
        registrant_id: &str,
        first_name: &str,
        last_name: &str,
    ) -> Result<(), SandboxError> {
        self.served::<ZoomState>(Api::Zoom)?
            .rename_registrant(registrant_id, first_name, last_name)
    }
}

#[derive(Deserialize)]
struct Rename {
    first_name: String,
    last_name: String,
}

/// The `/__sandbox/zoom/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/zoom/webinars", get(webinars))
        .route(
            "/__sandbox/zoom/webinars/{id}/registrants",
            get(registrants).post(add_registrant),
        )
        .route(
            "/__sandbox/zoom/webinars/{id}/registrants/count",
            get(registrant_count),
        )
        .route(
            "/__sandbox/zoom/registrants/{id}/rename",
            post(rename_registrant),
        )
}

async fn webinars(State(c): State<Control>) -> Json<Value> {
    Json(json!({"ids": c.zoom_webinar_ids()}))
}

async fn registrants(State(c): State<Control>, Path(id): Path<i64>) -> Response {
    control_reply(c.zoom_registrants(id).map(Value::from))
}

async fn registrant_count(State(c): State<Control>, Path(id): Path<i64>) -> Response {
    control_reply(c.zoom_registrant_count(id).map(|n| json!({"count": n})))
}

async fn add_registrant(
    State(c): State<Control>,
    Path(id): Path<i64>,
    Json(fields): Json<Value>,
) -> Response {
    control_reply(
        c.zoom_add_registrant(id, fields)
            .map(|rid| json!({"registrant_id": rid})),
    )
}

async fn rename_registrant(
    State(c): State<Control>,
    Path(id): Path<String>,
    Json(r): Json<Rename>,
) -> Response {
    control_reply(
        c.zoom_rename_registrant(&id, &r.first_name, &r.last_name)
            .map(|()| json!({"ok": true})),
    )
}
