//! The destination side: warehouse rows -> Intercom contacts (reverse sync).
//!
//! Intercom has no batch endpoint, so each record is one upsert, several at
//! once within a batch (`concurrency`), all through the app's shared
//! budget: `POST /contacts/search` by `external_id` (when mapped) or email,
//! then `PUT /contacts/{id}` when found or `POST /contacts` (role `user`)
//! when not; a 409 on create (someone created it meanwhile) searches again
//! and updates. Deletes (mirror mode) unsubscribe the contact from emails
//! (`unsubscribed_from_emails: true`), found by the key as email (when it
//! contains `@`) or else as external id; a contact Intercom does not have is already gone (acknowledged).
//!
//! Modes are enforced against Intercom's own contacts, found by the search:
//! under `create_only` a contact that exists is a reject (never changed),
//! under `update_only` one that does not is a reject (never created).
//!
//! A 4xx answer for one contact is that record's reject, with Intercom's
//! message; auth, throttling, 5xx and transport failures (after weft-http's
//! retries) fail the whole batch, which is safe to send again.

use async_trait::async_trait;
use futures::{StreamExt, stream};
use serde_json::{Map, Value};
use weft_core::{
    BoxError, PlannedRequest, RecordOutcome, StreamMetrics, SyncAction, SyncRecord, SyncTarget,
    SyncWriteMode,
};
use weft_http::{BudgetRegistry, HttpError};

use crate::client::IntercomClient;
use crate::{IntercomConfig, IntercomError};

/// Largest batch `apply` takes.
pub const MAX_BATCH: usize = 50;

/// Contact fields a mapping may fill (besides `custom_attributes.NAME`).
const CONTACT_FIELDS: [&str; 10] = [
    "role",
    "external_id",
    "email",
    "phone",
    "name",
    "avatar",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
];

/// Intercom contacts as a reverse-sync destination.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let config = weft_intercom::IntercomConfig::new(SecretRef::Env { env: "INTERCOM_ACCESS_TOKEN".into() });
/// let target = weft_intercom::IntercomTarget::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
pub struct IntercomTarget {
    client: IntercomClient,
    concurrency: usize,
    metrics: StreamMetrics,
}

impl IntercomTarget {
    /// A target for the app of `config.access_token`, sharing its budget in `budgets`.
    pub fn new(
        config: &IntercomConfig,
        budgets: &BudgetRegistry,
    ) -> Result<IntercomTarget, IntercomError> {
        Ok(IntercomTarget {
            client: IntercomClient::new(config, budgets)?,
            concurrency: config.concurrency,
            metrics: StreamMetrics::default(),
        })
    }

    /// Requests, retries and waits of this target's calls so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.metrics
    }

    /// One record: `Ok(Ok)` acknowledged, `Ok(Err)` rejected, `Err` the batch fails.
    async fn one(
        &self,
        mode: SyncWriteMode,
        record: &SyncRecord,
    ) -> Result<Result<(), String>, HttpError> {
        let m = &self.metrics;
        if record.action == SyncAction::Delete {
            let (email, external_id) = key_identity(&record.key);
            let found = self.client.find(email, external_id, m).await;
            let id = match rejected_or(found)? {
                Ok(Some(id)) => id,
                // Intercom does not have it: nothing to unsubscribe.
                Ok(None) => return Ok(Ok(())),
                Err(reason) => return Ok(Err(reason)),
            };
            let mut body = Map::new();
            body.insert("unsubscribed_from_emails".into(), Value::Bool(true));
            return rejected_or(self.client.update(&id, body, m).await).map(|r| r.map(drop));
        }
        let body = match contact(record) {
            Ok(body) => body,
            Err(reason) => return Ok(Err(reason)),
        };
        let email = body
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string);
        let external_id = body
            .get("external_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let find = || {
            self.client
                .find(email.as_deref(), external_id.as_deref(), m)
        };
        let id = match rejected_or(find().await)? {
            Ok(id) => id,
            Err(reason) => return Ok(Err(reason)),
        };
        let id = match (id, mode) {
            (Some(_), SyncWriteMode::CreateOnly) => {
                return Ok(Err(
                    "Intercom already has a contact with this email or external_id \
                     (mode create_only does not change it)"
                        .into(),
                ));
            }
            (None, SyncWriteMode::UpdateOnly) => {
                return Ok(Err(
                    "Intercom has no contact with this email or external_id \
                     (mode update_only does not create one)"
                        .into(),
                ));
            }
            (Some(id), _) => id,
            (None, _) => {
                let mut create = body.clone();
                create.entry("role").or_insert_with(|| Value::from("user"));
                match self.client.create(create, m).await {
                    Ok(()) => return Ok(Ok(())),
                    // Created by someone else meanwhile: update it instead.
                    Err(e) if e.status() == Some(409) && mode != SyncWriteMode::CreateOnly => {
                        match rejected_or(find().await)? {
                            Ok(Some(id)) => id,
                            // Not searchable yet: the conflict names the contact.
                            Ok(None) => match conflicting_id(&e) {
                                Some(id) => id,
                                None => return Ok(Err(reject_reason(&e).unwrap_or_default())),
                            },
                            Err(reason) => return Ok(Err(reason)),
                        }
                    }
                    Err(e) => return rejected_or::<()>(Err(e)),
                }
            }
        };
        rejected_or(self.client.update(&id, body, m).await).map(|r| r.map(drop))
    }
}

/// Who a delete's key names: the contact's email when it looks like one,
/// else its external id.
fn key_identity(key: &str) -> (Option<&str>, Option<&str>) {
    let key = key.trim();
    if key.contains('@') {
        (Some(key), None)
    } else {
        (None, Some(key))
    }
}

/// The contact a 409 names: Intercom answers a create whose email exists
/// with "A contact matching those details already exists with id=…".
fn conflicting_id(e: &HttpError) -> Option<String> {
    let HttpError::Status {
        status: 409, body, ..
    } = e
    else {
        return None;
    };
    let (_, rest) = body.split_once("id=")?;
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Splits a call's failure: a 4xx about this contact is its reject (inner
/// `Err`); anything else fails the batch (outer `Err`).
fn rejected_or<T>(r: Result<T, HttpError>) -> Result<Result<T, String>, HttpError> {
    weft_http::split_reject(r, reject_reason)
}

/// Intercom's message for a 4xx (`{"type":"error.list","errors":[{"code","message"}]}`).
fn reject_reason(e: &HttpError) -> Option<String> {
    let HttpError::Status { status, body, .. } = e else {
        return None;
    };
    if !(400..500).contains(status) {
        return None;
    }
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let first = v.get("errors")?.get(0)?;
        let msg = first.get("message")?.as_str()?;
        Some(match first.get("code").and_then(Value::as_str) {
            Some(code) => format!("{msg} ({code})"),
            None => msg.to_string(),
        })
    });
    Some(message.unwrap_or_else(|| format!("HTTP {status}: {body}")))
}

/// The contact body for a create or update, or why the record cannot be sent.
fn contact(record: &SyncRecord) -> Result<Map<String, Value>, String> {
    match record.fields.get("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err("`email` is missing or empty".into());
        }
        Some(other) => return Err(format!("`email` is not text: {other}")),
    }
    let mut body = Map::new();
    let mut custom = Map::new();
    for (name, value) in &record.fields {
        if value.is_null() {
            continue;
        }
        if let Some(attr) = name.strip_prefix("custom_attributes.")
            && !attr.is_empty()
        {
            custom.insert(attr.to_string(), value.clone());
        } else if name == "custom_attributes" {
            match value {
                Value::Object(obj) => custom.extend(obj.clone()),
                other => {
                    return Err(format!(
                        "`custom_attributes` must be an object, got {other}"
                    ));
                }
            }
        } else if CONTACT_FIELDS.contains(&name.as_str()) {
            let v = match (name.as_str(), value) {
                ("email", Value::String(s)) => Value::from(s.trim()),
                _ => value.clone(),
            };
            body.insert(name.clone(), v);
        } else {
            return Err(format!(
                "`{name}` is not an Intercom contact field (use {} or custom_attributes.NAME)",
                CONTACT_FIELDS.join(", ")
            ));
        }
    }
    if !custom.is_empty() {
        body.insert("custom_attributes".into(), Value::Object(custom));
    }
    Ok(body)
}

#[async_trait]
impl SyncTarget for IntercomTarget {
    fn name(&self) -> &str {
        "intercom"
    }

    fn required_fields(&self) -> Vec<String> {
        vec!["email".into()]
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn modes(&self) -> &'static [SyncWriteMode] {
        SyncWriteMode::ALL
    }

    fn preview(&self, mode: SyncWriteMode, records: &[SyncRecord]) -> Vec<PlannedRequest> {
        let mut out = Vec::new();
        for record in records {
            let (email, external_id, write) = if record.action == SyncAction::Delete {
                let (e, x) = key_identity(&record.key);
                let body = serde_json::json!({"unsubscribed_from_emails": true});
                (
                    e.map(str::to_string),
                    x.map(str::to_string),
                    ("PUT", "contacts/{id of the contact found}", body),
                )
            } else {
                let Ok(body) = contact(record) else { continue };
                let e = body
                    .get("email")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let x = body
                    .get("external_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let path = match mode {
                    SyncWriteMode::CreateOnly => "contacts (when none is found)",
                    SyncWriteMode::UpdateOnly => "contacts/{id of the contact found}",
                    _ => "contacts/{id} when found, else POST contacts",
                };
                let method = if mode == SyncWriteMode::CreateOnly {
                    "POST"
                } else {
                    "PUT"
                };
                (e, x, (method, path, Value::Object(body)))
            };
            if let Some(body) =
                IntercomClient::search_body(email.as_deref(), external_id.as_deref())
            {
                out.push(PlannedRequest {
                    method: "POST".into(),
                    path: "contacts/search".into(),
                    body,
                });
            }
            out.push(PlannedRequest {
                method: write.0.into(),
                path: write.1.into(),
                body: write.2,
            });
        }
        out
    }

    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let results: Vec<(String, Result<Result<(), String>, HttpError>)> = stream::iter(records)
            .map(|r| async move {
                let result = self.one(mode, &r).await;
                (r.key, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut outcomes = Vec::with_capacity(results.len());
        for (key, result) in results {
            outcomes.push(RecordOutcome {
                key,
                result: result.map_err(IntercomError::from)?,
            });
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_conflict_names_the_existing_contact() {
        let conflict = |status: u16, body: &str| HttpError::Status {
            api: "intercom".into(),
            method: "POST".into(),
            status,
            url: "u".into(),
            body: body.into(),
        };
        let e = conflict(
            409,
            r#"{"type":"error.list","errors":[{"code":"conflict","message":"A contact matching those details already exists with id=6bcd98010000000000000008"}]}"#,
        );
        assert_eq!(
            conflicting_id(&e).as_deref(),
            Some("6bcd98010000000000000008")
        );
        assert_eq!(conflicting_id(&conflict(409, "{}")), None);
        assert_eq!(conflicting_id(&conflict(400, "id=abc")), None);
    }
}
