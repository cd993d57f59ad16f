//! The Intercom part of the control API: update and create contacts, read
//! the contacts syncs wrote.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::room::{Control, control_reply};

use super::IntercomState;

impl Control {
    /// Updates Intercom contact `id` with JSON `fields` (contact properties)
    /// and bumps its `updated_at` to the sandbox clock.
    pub fn intercom_update_contact(&self, id: &str, fields: Value) -> Result<(), SandboxError> {
        let Value::Object(fields) = fields else {
            return Err(SandboxError::InvalidUpdate {
                api: Api::Intercom,
                object: "contact",
                id: id.to_owned(),
                reason: "fields must be a JSON object".to_owned(),
            });
        };
        if self
            .served::<IntercomState>(Api::Intercom)?
            .update_contact(id, fields)
        {
            Ok(())
        } else {
            Err(SandboxError::NotFound {
                api: Api::Intercom,
                object: "contact",
                id: id.to_owned(),
            })
        }
    }

    /// Adds an admin's reply to Intercom conversation `id` now: one more
    /// conversation part, and the conversation's `updated_at` becomes now.
    pub fn intercom_reply_to_conversation(&self, id: &str) -> Result<(), SandboxError> {
        if self
            .served::<IntercomState>(Api::Intercom)?
            .reply_to_conversation(id)
        {
            Ok(())
        } else {
            Err(SandboxError::NotFound {
                api: Api::Intercom,
                object: "conversation",
                id: id.to_owned(),
            })
        }
    }

    /// The number of parts Intercom conversation `id` has now (generated and
    /// replies), `None` when there is no such conversation.
    pub fn intercom_conversation_parts(&self, id: &str) -> Option<u64> {
        let st = self.served::<IntercomState>(Api::Intercom).ok()?;
        st.conversation_part_count(id)
    }

    /// The id of every Intercom conversation part served now.
    pub fn intercom_conversation_part_ids(&self) -> Vec<String> {
        self.served::<IntercomState>(Api::Intercom)
            .map(|st| st.conversation_part_ids())
            .unwrap_or_default()
    }

    /// Creates `n` Intercom contacts now and returns their ids.
    pub fn intercom_create_contacts(&self, n: usize) -> Vec<String> {
        self.room::<IntercomState>()
            .map(|i| i.create_contacts(n))
            .unwrap_or_default()
    }

    /// The id of every Intercom contact, generated and created.
    pub fn intercom_contact_ids(&self) -> Vec<String> {
        self.room::<IntercomState>()
            .map(IntercomState::contact_ids)
            .unwrap_or_default()
    }

    /// An Intercom contact as the API serves it now.
    pub fn intercom_contact(&self, id: &str) -> Option<Value> {
        self.room::<IntercomState>()?.contact(id)
    }

    /// Contacts created or updated through the Intercom API, as they are now.
    pub fn intercom_written_contacts(&self) -> Vec<Value> {
        self.room::<IntercomState>()
            .map(IntercomState::written_contacts)
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct CreateMany {
    n: usize,
}

async fn update(
    State(c): State<Control>,
    Path(id): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    control_reply(
        c.intercom_update_contact(&id, fields)
            .map(|()| json!({"ok": true})),
    )
}

async fn create(State(c): State<Control>, Json(m): Json<CreateMany>) -> Json<Value> {
    Json(json!({"ids": c.intercom_create_contacts(m.n)}))
}

async fn written(State(c): State<Control>) -> Json<Value> {
    Json(Value::Array(c.intercom_written_contacts()))
}

/// The `/__sandbox/intercom/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/intercom/contacts/{id}/update", post(update))
        .route("/__sandbox/intercom/contacts/create", post(create))
        .route("/__sandbox/intercom/contacts/written", get(written))
}
