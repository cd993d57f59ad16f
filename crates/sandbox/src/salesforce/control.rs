//! Salesforce control operations, from Rust ([`Control`]) and under
//! `/__sandbox/salesforce/`: update, delete and create records, list the
//! records syncs wrote, set the daily API request allocation.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::room::{Control, control_error};

use super::SalesforceState;
use super::schema::SObject;
use super::store::{Raw, convert};

fn unknown_object(name: &str) -> SandboxError {
    SandboxError::InvalidUpdate {
        api: Api::Salesforce,
        object: "sObject",
        id: name.to_owned(),
        reason: "unknown sObject type (Account, Contact, Lead, Opportunity, Campaign, CampaignMember, User)".to_owned(),
    }
}

fn object(name: &str) -> Result<SObject, SandboxError> {
    SObject::parse(name).ok_or_else(|| unknown_object(name))
}

impl Control {
    /// Updates a Salesforce record with JSON `fields` (API field names and
    /// JSON values, as the REST API takes them), bumping its
    /// `LastModifiedDate`/`SystemModstamp` to the sandbox clock.
    pub fn salesforce_update(
        &self,
        object_name: &str,
        id: &str,
        fields: Value,
    ) -> Result<(), SandboxError> {
        let sf = self.served::<SalesforceState>(Api::Salesforce)?;
        let obj = object(object_name)?;
        let values = values(obj, id, &fields)?;
        let mut store = sf.write();
        let i = sf
            .org
            .parse_id(obj, id)
            .filter(|&i| store.exists(&sf.org, obj, i) && !store.is_deleted(obj, i))
            .ok_or_else(|| not_found(obj, id))?;
        store.update(&sf.org, obj, i, values, sf.clock.now());
        Ok(())
    }

    /// Leaves a Salesforce record out of every query and Bulk result page
    /// from now on while `SELECT COUNT()` still counts it: an API that loses
    /// records, which a completeness check must notice.
    pub fn salesforce_hide_from_pages(
        &self,
        object_name: &str,
        id: &str,
    ) -> Result<(), SandboxError> {
        let sf = self.served::<SalesforceState>(Api::Salesforce)?;
        let obj = object(object_name)?;
        let i = {
            let store = sf.read();
            sf.org
                .parse_id(obj, id)
                .filter(|&i| store.exists(&sf.org, obj, i))
                .ok_or_else(|| not_found(obj, id))?
        };
        sf.hide_from_pages(obj, i);
        Ok(())
    }

    /// Deletes a Salesforce record: it then appears only in `queryAll`, with `IsDeleted: true`.
    pub fn salesforce_delete(&self, object_name: &str, id: &str) -> Result<(), SandboxError> {
        let sf = self.served::<SalesforceState>(Api::Salesforce)?;
        let obj = object(object_name)?;
        let mut store = sf.write();
        let i = sf
            .org
            .parse_id(obj, id)
            .filter(|&i| store.exists(&sf.org, obj, i) && !store.is_deleted(obj, i))
            .ok_or_else(|| not_found(obj, id))?;
        store.delete(obj, i, sf.clock.now());
        Ok(())
    }

    /// Creates a Salesforce record with JSON `fields` at the sandbox clock; returns its id.
    pub fn salesforce_create(
        &self,
        object_name: &str,
        fields: Value,
    ) -> Result<String, SandboxError> {
        let sf = self.served::<SalesforceState>(Api::Salesforce)?;
        let obj = object(object_name)?;
        let values = values(obj, "(new)", &fields)?;
        let i = sf.write().create(&sf.org, obj, values, sf.clock.now());
        Ok(sf.org.id(obj, i))
    }

    /// Ids of every live record of a Salesforce object, in Id order (meant for small sandboxes).
    pub fn salesforce_ids(&self, object_name: &str) -> Result<Vec<String>, SandboxError> {
        let sf = self.served::<SalesforceState>(Api::Salesforce)?;
        let obj = object(object_name)?;
        let store = sf.read();
        Ok((0..store.total(&sf.org, obj))
            .filter(|&i| !store.is_deleted(obj, i))
            .map(|i| sf.org.id(obj, i))
            .collect())
    }

    /// Records of a Salesforce object written through the API (composite
    /// upsert, Bulk 2.0 ingest), as they are now, in first-write order.
    pub fn salesforce_upserted(&self, object_name: &str) -> Result<Vec<Value>, SandboxError> {
        let sf = self.served::<SalesforceState>(Api::Salesforce)?;
        let obj = object(object_name)?;
        let rows = sf.read().upserted(obj);
        Ok(rows.into_iter().map(|i| sf.record_json(obj, i)).collect())
    }

    /// Sets the Salesforce daily API request allocation (requests beyond it get
    /// `REQUEST_LIMIT_EXCEEDED`).
    pub fn salesforce_set_daily_allocation(&self, requests: u64) {
        if let Some(sf) = self.room::<SalesforceState>() {
            sf.set_allocation(requests);
        }
    }

    /// While `hold` is true, closed Bulk API 2.0 ingest jobs stay
    /// `UploadComplete` (processed, but not reported complete), so a client
    /// waiting on one can be cut off mid-wait; releasing lets them complete.
    pub fn salesforce_hold_ingest(&self, hold: bool) {
        if let Some(sf) = self.room::<SalesforceState>() {
            sf.hold_ingest(hold);
        }
    }

    /// Salesforce API requests counted against the daily allocation so far.
    pub fn salesforce_api_usage(&self) -> u64 {
        self.room::<SalesforceState>()
            .map_or(0, SalesforceState::api_usage)
    }
}

fn not_found(obj: SObject, id: &str) -> SandboxError {
    SandboxError::NotFound {
        api: Api::Salesforce,
        object: obj.name(),
        id: id.to_owned(),
    }
}

fn values(
    obj: SObject,
    id: &str,
    fields: &Value,
) -> Result<Vec<(usize, super::data::Val)>, SandboxError> {
    let Value::Object(map) = fields else {
        return Err(SandboxError::InvalidUpdate {
            api: Api::Salesforce,
            object: obj.name(),
            id: id.to_owned(),
            reason: "fields must be a JSON object".to_owned(),
        });
    };
    convert(
        obj,
        None,
        map.iter().map(|(k, v)| (k.as_str(), Raw::Json(v))),
    )
    .map_err(|e| SandboxError::InvalidUpdate {
        api: Api::Salesforce,
        object: obj.name(),
        id: id.to_owned(),
        reason: format!("{}: {}", e.code, e.message),
    })
}

#[derive(Deserialize)]
struct Allocation {
    daily_api_requests: u64,
}

/// The `/__sandbox/salesforce/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/salesforce/limits", post(set_allocation))
        .route("/__sandbox/salesforce/{obj}/create", post(create))
        .route("/__sandbox/salesforce/{obj}/ids", get(ids))
        .route("/__sandbox/salesforce/{obj}/upserted", get(upserted))
        .route("/__sandbox/salesforce/{obj}/{id}/update", post(update))
        .route("/__sandbox/salesforce/{obj}/{id}/delete", post(delete))
}

async fn set_allocation(State(c): State<Control>, Json(a): Json<Allocation>) -> Json<Value> {
    c.salesforce_set_daily_allocation(a.daily_api_requests);
    Json(json!({"ok": true, "api_usage": c.salesforce_api_usage()}))
}

async fn create(
    State(c): State<Control>,
    Path(obj): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    match c.salesforce_create(&obj, fields) {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(e) => control_error(&e),
    }
}

async fn ids(State(c): State<Control>, Path(obj): Path<String>) -> Response {
    match c.salesforce_ids(&obj) {
        Ok(ids) => Json(json!({"ids": ids})).into_response(),
        Err(e) => control_error(&e),
    }
}

async fn upserted(State(c): State<Control>, Path(obj): Path<String>) -> Response {
    match c.salesforce_upserted(&obj) {
        Ok(records) => Json(Value::Array(records)).into_response(),
        Err(e) => control_error(&e),
    }
}

async fn update(
    State(c): State<Control>,
    Path((obj, id)): Path<(String, String)>,
    Json(fields): Json<Value>,
) -> Response {
    match c.salesforce_update(&obj, &id, fields) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => control_error(&e),
    }
}

async fn delete(State(c): State<Control>, Path((obj, id)): Path<(String, String)>) -> Response {
    match c.salesforce_delete(&obj, &id) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => control_error(&e),
    }
}
