//! The Mailchimp part of the control API: the audience's id, its members
//! (and their ids), the campaign ids, and changing a member as an API write
//! would (its `last_changed` moves to the sandbox's now).

use axum::extract::{Path, State};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

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

    /// The ids (subscriber hashes) of every member of a Mailchimp audience,
    /// archived ones included; empty for an unknown list.
    pub fn mailchimp_member_ids(&self, list_id: &str) -> Vec<String> {
        self.room::<MailchimpState>()
            .map(|m| m.member_ids(list_id))
            .unwrap_or_default()
    }

    /// The ids of the segments of a Mailchimp audience (empty for an unknown list).
    pub fn mailchimp_segment_ids(&self, list_id: &str) -> Vec<i64> {
        self.room::<MailchimpState>()
            .map(|m| m.segment_ids(list_id))
            .unwrap_or_default()
    }

    /// The ids of the interest categories of a Mailchimp audience (empty for an unknown list).
    pub fn mailchimp_interest_category_ids(&self, list_id: &str) -> Vec<String> {
        self.room::<MailchimpState>()
            .map(|m| m.interest_category_ids(list_id))
            .unwrap_or_default()
    }

    /// The `email_id`s (subscriber hashes) of the members who unsubscribed
    /// through Mailchimp campaign `id`; `None` for an unknown campaign.
    pub fn mailchimp_unsubscribe_ids(&self, campaign_id: &str) -> Option<Vec<String>> {
        self.room::<MailchimpState>()?.unsubscribe_ids(campaign_id)
    }

    /// The ids of every Mailchimp campaign, in creation order.
    pub fn mailchimp_campaign_ids(&self) -> Vec<String> {
        self.room::<MailchimpState>()
            .map(|m| m.campaign_ids())
            .unwrap_or_default()
    }

    /// Changes member `id` (subscriber hash or email) of `list_id`: a new
    /// `status` (any, `archived` included) and merge fields; its
    /// `last_changed` becomes the sandbox's now when anything changed.
    /// Returns the member as the API renders it, `None` when there is none.
    pub fn mailchimp_update_member(
        &self,
        list_id: &str,
        id: &str,
        status: Option<&str>,
        merge_fields: &Map<String, Value>,
    ) -> Option<Value> {
        self.room::<MailchimpState>()?
            .update_member(list_id, id, status, merge_fields)
    }
}

/// The `/__sandbox/mailchimp/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/mailchimp/list_id", get(list_id))
        .route("/__sandbox/mailchimp/lists/{id}/members", get(members))
        .route(
            "/__sandbox/mailchimp/lists/{id}/member_ids",
            get(member_ids),
        )
        .route("/__sandbox/mailchimp/campaigns/ids", get(campaign_ids))
        .route(
            "/__sandbox/mailchimp/lists/{id}/members/{member}",
            patch(update_member),
        )
}

async fn member_ids(State(c): State<Control>, Path(id): Path<String>) -> Json<Value> {
    Json(Value::from(c.mailchimp_member_ids(&id)))
}

async fn campaign_ids(State(c): State<Control>) -> Json<Value> {
    Json(Value::from(c.mailchimp_campaign_ids()))
}

/// `PATCH` with `{"status": ..., "merge_fields": {...}}` (both optional).
async fn update_member(
    State(c): State<Control>,
    Path((id, member)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> (http::StatusCode, Json<Value>) {
    let status = body.get("status").and_then(Value::as_str);
    let merge = body
        .get("merge_fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match c.mailchimp_update_member(&id, &member, status, &merge) {
        Some(m) => (http::StatusCode::OK, Json(m)),
        None => (
            http::StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no member {member} in list {id}")})),
        ),
    }
}

async fn list_id(State(c): State<Control>) -> Json<Value> {
    Json(json!({"list_id": c.mailchimp_list_id()}))
}

async fn members(State(c): State<Control>, Path(id): Path<String>) -> Json<Value> {
    Json(Value::from(c.mailchimp_members(&id)))
}
