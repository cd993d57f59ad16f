//! The Mailchimp part of the control API: the audience's id and its members.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::room::Control;

use super::MailchimpState;

impl Control {
    /// The id of the Mailchimp audience (empty when the sandbox has no Mailchimp).
    pub fn mailchimp_list_id(&self) -> String {
        self.room::<MailchimpState>()
            .map(|m| m.list_id().to_owned())
            .unwrap_or_default()
    }

    /// Every member of a Mailchimp audience (archived ones included), as the
    /// API renders them; empty for an unknown list.
    pub fn mailchimp_members(&self, list_id: &str) -> Vec<Value> {
        self.room::<MailchimpState>()
            .map(|m| m.members_json(list_id))
            .unwrap_or_default()
    }
}

/// The `/__sandbox/mailchimp/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/mailchimp/list_id", get(list_id))
        .route("/__sandbox/mailchimp/lists/{id}/members", get(members))
}

async fn list_id(State(c): State<Control>) -> Json<Value> {
    Json(json!({"list_id": c.mailchimp_list_id()}))
}

async fn members(State(c): State<Control>, Path(id): Path<String>) -> Json<Value> {
    Json(Value::from(c.mailchimp_members(&id)))
}
