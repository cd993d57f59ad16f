//! The example API's part of the control API: list widget ids, rename a
//! widget (which moves its `updated_at` to the sandbox clock).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::room::{Control, control_reply};

use super::ExampleState;

impl Control {
    /// Ids of every widget of the example API, in creation order.
    pub fn example_widget_ids(&self) -> Vec<String> {
        self.room::<ExampleState>()
            .map(ExampleState::widget_ids)
            .unwrap_or_default()
    }

    /// Renames an example widget; its `updated_at` becomes the sandbox's now.
    pub fn example_rename_widget(&self, id: &str, name: &str) -> Result<(), SandboxError> {
        self.served::<ExampleState>(Api::Example)?.rename(id, name)
    }
}

#[derive(Deserialize)]
struct Rename {
    name: String,
}

/// The `/__sandbox/example/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/example/widgets", get(ids))
        .route("/__sandbox/example/widgets/{id}/rename", post(rename))
}

async fn ids(State(c): State<Control>) -> Json<Value> {
    Json(json!({"ids": c.example_widget_ids()}))
}

async fn rename(
    State(c): State<Control>,
    Path(id): Path<String>,
    Json(r): Json<Rename>,
) -> Response {
    control_reply(
        c.example_rename_widget(&id, &r.name)
            .map(|()| json!({"ok": true})),
    )
}
