//! The Zendesk part of the control API: update and delete tickets (they
//! re-appear in the incremental export), create users, read users by email
//! and organizations by external id, list the ids of the plain lists
//! (brands, memberships, ticket metrics, ...), read job statuses, hold jobs (their
//! statuses stay `working` until released).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::room::{Control, control_reply};

use super::ZendeskState;

fn not_found(object: &'static str, id: impl ToString) -> SandboxError {
    SandboxError::NotFound {
        api: Api::Zendesk,
        object,
        id: id.to_string(),
    }
}

impl Control {
    /// Updates Zendesk ticket `id` with JSON `fields` (`subject`, `status`,
    /// `priority`, `type`, `tags`, ...) and bumps its `updated_at` to the
    /// sandbox clock, so the incremental export serves it again.
    pub fn zendesk_update_ticket(&self, id: u64, fields: Value) -> Result<(), SandboxError> {
        let invalid = |reason: String| SandboxError::InvalidUpdate {
            api: Api::Zendesk,
            object: "ticket",
            id: id.to_string(),
            reason,
        };
        let Value::Object(fields) = fields else {
            return Err(invalid("fields must be a JSON object".to_owned()));
        };
        match self
            .served::<ZendeskState>(Api::Zendesk)?
            .update_ticket(id, fields)
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_found("ticket", id)),
            Err(field) => Err(invalid(format!(
                "{field:?} is not an updatable ticket field"
            ))),
        }
    }

    /// Adds a public comment to live Zendesk ticket `id` now: its
    /// `updated_at` becomes now, so the export lists it again.
    pub fn zendesk_add_comment(&self, id: u64, body: &str) -> Result<(), SandboxError> {
        if self
            .served::<ZendeskState>(Api::Zendesk)?
            .add_comment(id, body)
        {
            Ok(())
        } else {
            Err(SandboxError::NotFound {
                api: Api::Zendesk,
                object: "ticket",
                id: id.to_string(),
            })
        }
    }

    /// The id of every comment of every live Zendesk ticket.
    pub fn zendesk_comment_ids(&self) -> Vec<u64> {
        self.served::<ZendeskState>(Api::Zendesk)
            .map(|st| st.comment_ids())
            .unwrap_or_default()
    }

    /// Deletes Zendesk ticket `id`: the incremental export serves it with
    /// `status: "deleted"` and `GET /api/v2/deleted_tickets` lists it.
    pub fn zendesk_delete_ticket(&self, id: u64) -> Result<(), SandboxError> {
        if self.served::<ZendeskState>(Api::Zendesk)?.delete_ticket(id) {
            Ok(())
        } else {
            Err(not_found("ticket", id))
        }
    }

    /// The id of every record of the Zendesk list `name` (`brands`,
    /// `ticket_forms`, `user_fields`, `organization_fields`,
    /// `group_memberships`, `organization_memberships`, `macros`,
    /// `satisfaction_ratings`, `ticket_metrics`: `GET /api/v2/{name}.json`)
    /// as it serves them now, in its order; `None` for another name.
    pub fn zendesk_list_ids(&self, name: &str) -> Option<Vec<u64>> {
        let list = super::lists::List::named(name)?;
        Some(self.room::<ZendeskState>()?.list_ids(list))
    }

    /// The id of every Zendesk ticket the exports serve (deleted ones included).
    pub fn zendesk_ticket_ids(&self) -> Vec<u64> {
        self.room::<ZendeskState>()
            .map(ZendeskState::ticket_ids)
            .unwrap_or_default()
    }

    /// Creates `n` Zendesk end users now and returns their ids.
    pub fn zendesk_create_users(&self, n: usize) -> Vec<u64> {
        self.room::<ZendeskState>()
            .map(|z| z.create_users(n))
            .unwrap_or_default()
    }

    /// The Zendesk user with this email (any case) as the API serves it now.
    pub fn zendesk_user_by_email(&self, email: &str) -> Option<Value> {
        self.room::<ZendeskState>()?.user_by_email(email)
    }

    /// The live Zendesk organization with this external id (any case) as
    /// the API serves it now; `None` once deleted.
    pub fn zendesk_organization_by_external_id(&self, external_id: &str) -> Option<Value> {
        self.room::<ZendeskState>()?
            .organization_by_external_id(external_id)
    }

    /// A Zendesk job status (any bulk call) with its per-record results.
    pub fn zendesk_job_status(&self, id: &str) -> Option<Value> {
        self.room::<ZendeskState>()?.job_status(id)
    }

    /// Holds (`true`) or releases (`false`) Zendesk's jobs. While held,
    /// `GET /api/v2/job_statuses/{id}` answers every job as `working`
    /// (`progress` 0, no `results`), as a long job does; released, each
    /// answers as it completed. The users a `create_or_update_many` call
    /// carries are written when the call is received, held or not, so a
    /// client cut off while polling finds them written.
    pub fn zendesk_hold_jobs(&self, held: bool) {
        if let Some(z) = self.room::<ZendeskState>() {
            z.write().jobs_held = held;
        }
    }
}

impl ZendeskState {
    /// Job `id` as `GET /api/v2/job_statuses/{id}` serves it now: as
    /// recorded, or still `working` while jobs are held.
    pub(super) fn served_job_status(&self, id: &str) -> Option<Value> {
        let store = self.read();
        let mut job = store.jobs.get(id)?.clone();
        if store.jobs_held
            && let Value::Object(fields) = &mut job
        {
            fields.insert("status".to_owned(), Value::from("working"));
            fields.insert("progress".to_owned(), Value::from(0));
            fields.insert("message".to_owned(), Value::Null);
            fields.insert("results".to_owned(), Value::Null);
        }
        Some(job)
    }
}

#[derive(Deserialize)]
struct CreateMany {
    n: usize,
}

#[derive(Deserialize)]
struct Hold {
    held: bool,
}

fn answer(result: Result<(), SandboxError>) -> Response {
    control_reply(result.map(|()| json!({"ok": true})))
}

async fn update(
    State(c): State<Control>,
    Path(id): Path<u64>,
    Json(fields): Json<Value>,
) -> Response {
    answer(c.zendesk_update_ticket(id, fields))
}

async fn delete(State(c): State<Control>, Path(id): Path<u64>) -> Response {
    answer(c.zendesk_delete_ticket(id))
}

async fn create_users(State(c): State<Control>, Json(m): Json<CreateMany>) -> Json<Value> {
    Json(json!({"ids": c.zendesk_create_users(m.n)}))
}

async fn hold_jobs(State(c): State<Control>, Json(h): Json<Hold>) -> Json<Value> {
    c.zendesk_hold_jobs(h.held);
    Json(json!({"ok": true, "held": h.held}))
}

async fn job(State(c): State<Control>, Path(id): Path<String>) -> Response {
    match c.zendesk_job_status(&id) {
        Some(job) => Json(json!({"job_status": job})).into_response(),
        None => answer(Err(not_found("job_status", id))),
    }
}

/// The `/__sandbox/zendesk/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/zendesk/tickets/{id}/update", post(update))
        .route("/__sandbox/zendesk/tickets/{id}/delete", post(delete))
        .route("/__sandbox/zendesk/users/create", post(create_users))
        .route("/__sandbox/zendesk/job_statuses/{id}", get(job))
        .route("/__sandbox/zendesk/jobs/hold", post(hold_jobs))
}
