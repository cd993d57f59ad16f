//! Organization writes and tag additions, in the shapes of
//! `openapi-src.yaml`: `organizations/show_many` (`ids` or `external_ids`,
//! up to 100), `organizations/create_many` (up to 100; job results carry
//! `index` and `id`, status `Created`), `organizations/update_many` (the
//! batch form, each organization with its `id`; results carry `id`, status
//! `Updated`), `organizations/destroy_many` (`ids` or `external_ids`;
//! results `id`, status `Deleted`), *add tags* (`PUT
//! /api/v2/{users|organizations}/{id}/tags`, which keeps the other tags),
//! and `users/search` (`query=email:...` or `external_id=...`).
//!
//! Organization names are unique (any case), as are external ids; a failed
//! record's result is `{"success": false, "error", "details"}` with its
//! `index` (creates) or `id` (updates, deletes).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::data::{self, Kind, USER_BASE};
use super::{Shared, Store, ZendeskState, base_url, error, failed, query, respond};

/// Most organizations (or ids) in one bulk call.
const MAX_BULK: usize = 100;
/// Organization fields a bulk write may set.
const ORG_FIELDS: &[&str] = &[
    "name",
    "external_id",
    "details",
    "notes",
    "domain_names",
    "tags",
    "group_id",
    "shared_tickets",
    "shared_comments",
    "organization_fields",
];

impl ZendeskState {
    /// Organization index of `id`, when it exists and is not deleted.
    fn org_index(&self, store: &Store, id: u64) -> Option<u64> {
        let i = id.checked_sub(self.u.organization_id(0))?;
        let exists = i < self.u.count(Kind::Organization) + store.new_orgs;
        (exists && !store.deleted_orgs.contains(&i)).then_some(i)
    }

    /// The organization index with this external id (any case).
    fn org_by_external_id(&self, store: &Store, external_id: &str) -> Option<u64> {
        store
            .org_external
            .get(&external_id.trim().to_lowercase())
            .copied()
            .filter(|i| !store.deleted_orgs.contains(i))
    }

    /// Organization `i` as the API renders it now.
    pub(super) fn render_org(&self, store: &Store, base: &str, i: u64) -> Value {
        let mut v: Map<String, Value> = if i < self.u.count(Kind::Organization) {
            let mut s = String::with_capacity(600);
            data::organization(&self.u, base, i, &mut s);
            serde_json::from_str(&s).unwrap_or_default()
        } else {
            let id = self.u.organization_id(i);
            let mut m = Map::new();
            m.insert(
                "url".to_owned(),
                Value::from(format!("{base}/api/v2/organizations/{id}.json")),
            );
            m.insert("id".to_owned(), Value::from(id));
            for (k, empty) in [
                ("name", json!("")),
                ("shared_tickets", json!(false)),
                ("shared_comments", json!(false)),
                ("external_id", Value::Null),
                ("domain_names", json!([])),
                ("details", json!("")),
                ("notes", json!("")),
                ("group_id", Value::Null),
                ("tags", json!([])),
                ("organization_fields", json!({})),
            ] {
                m.insert(k.to_owned(), empty);
            }
            m
        };
        if let Some(changes) = store.org_changes.get(&i) {
            v.extend(changes.clone());
        }
        let updated = store
            .orgs
            .time(i, |i| self.u.updated(Kind::Organization, i));
        v.insert("updated_at".to_owned(), Value::from(data::iso(updated)));
        Value::Object(v)
    }

    /// The live organization with this external id as the API renders it.
    pub(crate) fn organization_by_external_id(&self, external_id: &str) -> Option<Value> {
        let store = self.read();
        let i = self.org_by_external_id(&store, external_id)?;
        Some(self.render_org(&store, "http://sandbox.invalid", i))
    }

    /// The lower-cased name of every live organization but `except`.
    fn org_name_taken(&self, store: &Store, name: &str, except: Option<u64>) -> bool {
        let name = name.trim().to_lowercase();
        let n = self.u.count(Kind::Organization) + store.new_orgs;
        (0..n).filter(|&i| Some(i) != except).any(|i| {
            !store.deleted_orgs.contains(&i)
                && self.render_org(store, "", i)["name"]
                    .as_str()
                    .is_some_and(|s| s.trim().to_lowercase() == name)
        })
    }

    /// Checks and applies `fields` to organization `existing` (or a new
    /// one): `Err((code, details))` names what Zendesk refuses.
    fn write_org(
        &self,
        store: &mut Store,
        existing: Option<u64>,
        fields: Map<String, Value>,
    ) -> Result<u64, (&'static str, String)> {
        let fields: Map<String, Value> = fields
            .into_iter()
            .filter(|(k, _)| ORG_FIELDS.contains(&k.as_str()))
            .collect();
        if let Some(name) = fields.get("name") {
            let name = name.as_str().unwrap_or_default().trim().to_owned();
            if name.is_empty() {
                return Err(("InvalidValue", "Name: cannot be blank".to_owned()));
            }
            if self.org_name_taken(store, &name, existing) {
                return Err((
                    "DuplicateValue",
                    format!("Name: {name} has already been taken"),
                ));
            }
        } else if existing.is_none() {
            return Err(("InvalidValue", "Name: cannot be blank".to_owned()));
        }
        let external = fields
            .get("external_id")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_lowercase());
        if let Some(e) = &external
            && let Some(other) = self.org_by_external_id(store, e)
            && Some(other) != existing
        {
            return Err((
                "DuplicateValue",
                format!("External: {e} has already been taken"),
            ));
        }
        let i = match existing {
            Some(i) => i,
            None => {
                let i = self.u.count(Kind::Organization) + store.new_orgs;
                store.new_orgs += 1;
                let now = data::iso(self.clock.now());
                let created = store.org_changes.entry(i).or_default();
                created.insert("created_at".to_owned(), Value::from(now));
                i
            }
        };
        if let Some(old) = self.render_org(store, "", i)["external_id"].as_str() {
            store.org_external.remove(&old.trim().to_lowercase());
        }
        store.org_changes.entry(i).or_default().extend(fields);
        if let Some(now) = self.render_org(store, "", i)["external_id"].as_str() {
            store.org_external.insert(now.trim().to_lowercase(), i);
        }
        store.orgs.touch(i, self.clock.now());
        Ok(self.u.organization_id(i))
    }

    /// Adds `tags` to the tags of user or organization `id`, keeping the
    /// others; the tags after, or `None` for no such record.
    fn add_tags(&self, users: bool, id: u64, tags: &[String]) -> Option<Vec<Value>> {
        let mut store = self.write();
        let (current, i) = if users {
            let i = id.checked_sub(USER_BASE)?;
            if i >= self.u.size + store.new_users {
                return None;
            }
            (self.render_user(&store, "", i)["tags"].clone(), i)
        } else {
            let i = self.org_index(&store, id)?;
            (self.render_org(&store, "", i)["tags"].clone(), i)
        };
        let mut all: Vec<Value> = current.as_array().cloned().unwrap_or_default();
        for t in tags {
            let t = Value::from(t.trim().to_lowercase());
            if !all.contains(&t) {
                all.push(t);
            }
        }
        let now = self.clock.now();
        if users {
            store
                .user_changes
                .entry(i)
                .or_default()
                .insert("tags".to_owned(), Value::Array(all.clone()));
            store.users.touch(i, now);
        } else {
            store
                .org_changes
                .entry(i)
                .or_default()
                .insert("tags".to_owned(), Value::Array(all.clone()));
            store.orgs.touch(i, now);
        }
        Some(all)
    }
}

/// The body's `key` array, or Zendesk's 400.
fn items(body: &Bytes, key: &str) -> Result<Vec<Value>, Box<Response>> {
    let bad = |d: &str| Box::new(error(StatusCode::BAD_REQUEST, "InvalidValue", d));
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut m)) => match m.remove(key) {
            Some(Value::Array(items)) if items.len() <= MAX_BULK => Ok(items),
            Some(Value::Array(_)) => Err(bad(&format!(
                "Too many {key}: at most {MAX_BULK} per request"
            ))),
            _ => Err(bad(&format!("{key} must be an array"))),
        },
        _ => Err(bad("The request body is not valid JSON")),
    }
}

/// Organizations named in a query: (the id asked for or found, its index if live).
type Named = Vec<(Option<u64>, Option<u64>)>;

/// The organizations named by `ids` or `external_ids` (at most 100):
/// (the id asked for or found, its index if live).
fn named(
    st: &ZendeskState,
    store: &Store,
    q: &HashMap<String, String>,
) -> Result<Named, Box<Response>> {
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let found: Vec<(Option<u64>, Option<u64>)> = if let Some(ids) = q.get("ids") {
        list(ids)
            .iter()
            .map(|s| {
                let id = s.parse::<u64>().ok();
                (id, id.and_then(|id| st.org_index(store, id)))
            })
            .collect()
    } else if let Some(ext) = q.get("external_ids") {
        list(ext)
            .iter()
            .map(|e| {
                let i = st.org_by_external_id(store, e);
                (i.map(|i| st.u.organization_id(i)), i)
            })
            .collect()
    } else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "ids or external_ids is required",
        )));
    };
    if found.len() > MAX_BULK {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            &format!("Too many ids: at most {MAX_BULK} per request"),
        )));
    }
    Ok(found)
}

pub(super) async fn show_many(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let base = base_url(&headers);
    let store = st.read();
    let named = match named(&st, &store, &q) {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let orgs: Vec<Value> = named
        .into_iter()
        .filter_map(|(_, i)| i)
        .map(|i| st.render_org(&store, &base, i))
        .collect();
    let count = orgs.len();
    respond(
        StatusCode::OK,
        json!({"organizations": orgs, "next_page": null, "previous_page": null, "count": count})
            .to_string(),
    )
}

pub(super) async fn create_many(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let orgs = match items(&body, "organizations") {
        Ok(o) => o,
        Err(e) => return *e,
    };
    let base = base_url(&headers);
    let mut store = st.write();
    let results: Vec<Value> = orgs
        .into_iter()
        .enumerate()
        .map(|(index, org)| {
            let Value::Object(fields) = org else {
                return failed(
                    index,
                    "create",
                    "InvalidValue",
                    "an organization must be a JSON object".to_owned(),
                );
            };
            match st.write_org(&mut store, None, fields) {
                Ok(id) => json!({
                    "index": index, "id": id, "action": "create",
                    "success": true, "status": "Created",
                }),
                Err((code, details)) => failed(index, "create", code, details),
            }
        })
        .collect();
    st.queue_job(&mut store, &base, "Bulk Create Organizations", results)
}

fn failed_id(id: Option<u64>, action: &str, code: &str, details: String) -> Value {
    json!({"id": id, "action": action, "success": false, "error": code, "details": details})
}

pub(super) async fn update_many(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let orgs = match items(&body, "organizations") {
        Ok(o) => o,
        Err(e) => return *e,
    };
    let base = base_url(&headers);
    let mut store = st.write();
    let results: Vec<Value> = orgs
        .into_iter()
        .map(|org| {
            let Value::Object(mut fields) = org else {
                return failed_id(
                    None,
                    "update",
                    "InvalidValue",
                    "an organization must be a JSON object".to_owned(),
                );
            };
            let id = fields.remove("id").and_then(|v| v.as_u64());
            let Some(i) = id.and_then(|id| st.org_index(&store, id)) else {
                return failed_id(
                    id,
                    "update",
                    "RecordNotFound",
                    "Organization not found".to_owned(),
                );
            };
            match st.write_org(&mut store, Some(i), fields) {
                Ok(id) => json!({
                    "id": id, "action": "update", "success": true, "status": "Updated",
                }),
                Err((code, details)) => failed_id(id, "update", code, details),
            }
        })
        .collect();
    st.queue_job(&mut store, &base, "Bulk Update Organizations", results)
}

pub(super) async fn destroy_many(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let base = base_url(&headers);
    let mut store = st.write();
    let named = match named(&st, &store, &q) {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let now = st.clock.now();
    let results: Vec<Value> = named
        .into_iter()
        .map(|(id, i)| match i {
            Some(i) => {
                if let Some(e) = st.render_org(&store, "", i)["external_id"].as_str() {
                    store.org_external.remove(&e.trim().to_lowercase());
                }
                store.deleted_orgs.insert(i);
                store.orgs.touch(i, now);
                json!({"id": id, "action": "delete", "success": true, "status": "Deleted"})
            }
            None => failed_id(id, "delete", "RecordNotFound", "Not found".to_owned()),
        })
        .collect();
    st.queue_job(&mut store, &base, "Bulk Delete Organizations", results)
}

/// `PUT .../{id}/tags`: `{"tags": [...]}` added to the record's tags.
fn put_tags(
    st: &ZendeskState,
    headers: &HeaderMap,
    users: bool,
    id: &str,
    body: &Bytes,
) -> Response {
    if let Err(e) = st.authorize(headers) {
        return *e;
    }
    let tags: Vec<String> = match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("tags").and_then(Value::as_array) {
            Some(tags) => tags
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    "tags must be an array",
                );
            }
        },
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                "The request body is not valid JSON",
            );
        }
    };
    let id = id.trim_end_matches(".json").parse::<u64>().ok();
    match id.and_then(|id| st.add_tags(users, id, &tags)) {
        Some(all) => respond(StatusCode::OK, json!({"tags": all}).to_string()),
        None => error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found"),
    }
}

pub(super) async fn user_tags(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    put_tags(&st, &headers, true, &id, &body)
}

pub(super) async fn organization_tags(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    put_tags(&st, &headers, false, &id, &body)
}

/// `GET users/search`: `query=email:ADDRESS` (exact, any case) or
/// `external_id=ID`; other queries match an email exactly.
pub(super) async fn search_users(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let base = base_url(&headers);
    let store = st.read();
    let found: Option<u64> = if let Some(text) = q.get("query") {
        let email = text.trim().strip_prefix("email:").unwrap_or(text);
        st.find_user(&store, email.trim().trim_matches('"'))
    } else if let Some(ext) = q.get("external_id") {
        store
            .user_changes
            .iter()
            .find(|(_, c)| c.get("external_id").and_then(Value::as_str) == Some(ext.as_str()))
            .map(|(&i, _)| i)
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "query or external_id is required",
        );
    };
    let users: Vec<Value> = found
        .map(|i| st.render_user(&store, &base, i))
        .into_iter()
        .collect();
    let count = users.len();
    respond(
        StatusCode::OK,
        json!({"users": users, "next_page": null, "previous_page": null, "count": count})
            .to_string(),
    )
}
