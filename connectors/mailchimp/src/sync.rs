//! The destination side: warehouse rows -> list members (reverse sync).
//!
//! Creates and updates become members of one `POST /lists/{list_id}` batch
//! (at most 500 per call, `update_existing: true`); mirror-mode deletes
//! become the same call with `status: unsubscribed`. Mailchimp answers per
//! member (`new_members`, `updated_members`, `errors`), matched back to the
//! records by email, case-insensitively.
//!
//! Modes are enforced by Mailchimp itself: `create_only` sends
//! `update_existing: false` (a member already on the list comes back as an
//! error, unchanged); `update_only` sends no status for new members, which
//! Mailchimp refuses to create.
//!
//! **The sync's primary key must be the member's email** (normalised, e.g.
//! `lower(trim(email))`): a delete carries no fields, so its key is the
//! email unsubscribed. [`MailchimpTarget::check_spec`] checks this.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use weft_core::{
    BoxError, PlannedRequest, RecordOutcome, StreamMetrics, SyncAction, SyncRecord, SyncSpec,
    SyncTarget, SyncWriteMode,
};
use weft_http::BudgetRegistry;

use crate::client::{BatchResponse, MailchimpClient};
use crate::config::STATUSES;
use crate::{MailchimpConfig, MailchimpError};

/// Members per batch call, Mailchimp's documented maximum.
pub const MAX_MEMBERS_PER_CALL: usize = 500;

/// The reject reason of a member Mailchimp did not mention in its answer.
pub const NO_RESULT: &str = "no result from Mailchimp for this member";

/// Top-level member fields the batch endpoint takes as they are.
const PLAIN_FIELDS: [&str; 7] = [
    "email_type",
    "language",
    "vip",
    "ip_signup",
    "timestamp_signup",
    "ip_opt",
    "timestamp_opt",
];

/// Member fields that are objects, filled from `name.key` destination fields.
const NESTED_FIELDS: [&str; 3] = ["merge_fields", "interests", "location"];

/// Mailchimp list members as a reverse-sync destination.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let config = weft_mailchimp::MailchimpConfig::new(
///     SecretRef::Env { env: "MAILCHIMP_API_KEY".into() },
///     "a1b2c3d4e5",
/// );
/// let target = weft_mailchimp::MailchimpTarget::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
pub struct MailchimpTarget {
    client: MailchimpClient,
    new_status: String,
    metrics: Arc<StreamMetrics>,
}

impl MailchimpTarget {
    /// A target writing to `config.list_id`, sharing the account's budget in `budgets`.
    pub fn new(
        config: &MailchimpConfig,
        budgets: &BudgetRegistry,
    ) -> Result<MailchimpTarget, MailchimpError> {
        if config.list_id.is_empty() {
            return Err(MailchimpError::Config {
                field: "list_id",
                reason: "is required for a sync: the audience members are written to".into(),
            });
        }
        Ok(MailchimpTarget {
            client: MailchimpClient::new(config, budgets)?,
            new_status: config.new_member_status().to_string(),
            metrics: Arc::new(StreamMetrics::default()),
        })
    }

    /// Checks a sync fits Mailchimp: `email_address` is mapped from the
    /// sync's primary key (deletes use the key as the email), and every
    /// mapped destination field is a list-member field (`email_address`,
    /// `status`, `merge_fields.FNAME`, `interests.<id>`, `location.latitude`,
    /// `language`, `vip`, ...).
    pub fn check_spec(spec: &SyncSpec) -> Result<(), MailchimpError> {
        let err = |reason: String| MailchimpError::Sync {
            sync: spec.name.clone(),
            reason,
        };
        match spec.mapping.get("email_address") {
            Some(column) if *column == spec.primary_key => {}
            Some(column) => {
                return Err(err(format!(
                    "`email_address` is mapped from `{column}` but the primary key is `{}`: \
                     the primary key must be the (normalised) email, which deletes unsubscribe",
                    spec.primary_key
                )));
            }
            None => return Err(err("`email_address` is not mapped".into())),
        }
        for name in spec.mapping.keys() {
            check_field_name(name).map_err(err)?;
        }
        if spec.mode == SyncWriteMode::UpdateOnly && spec.mapping.contains_key("status") {
            return Err(err(
                "mode `update_only` cannot map `status`: a status lets Mailchimp create \
                 members that are not on the list"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Requests, retries and waits of this target's calls so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.metrics
    }

    /// The member object sent for `record`, or why it cannot be sent.
    ///
    /// Under `update_only` no status is sent for new members, so Mailchimp
    /// itself refuses to create one ("Status is required for a new member").
    fn member(&self, record: &SyncRecord, mode: SyncWriteMode) -> Result<Value, String> {
        if record.action == SyncAction::Delete {
            let email = record.key.trim();
            if !email.contains('@') {
                return Err(format!(
                    "cannot unsubscribe key {:?}: a Mailchimp sync's primary key must be the email",
                    record.key
                ));
            }
            return Ok(serde_json::json!({ "email_address": email, "status": "unsubscribed" }));
        }
        let email = match record.fields.get("email_address") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
            Some(Value::String(_)) | Some(Value::Null) | None => {
                return Err("`email_address` is missing or empty".into());
            }
            Some(other) => return Err(format!("`email_address` is not text: {other}")),
        };
        let mut member = Map::new();
        let mut objects: BTreeMap<&'static str, Map<String, Value>> = BTreeMap::new();
        member.insert("email_address".into(), Value::from(email));
        if mode != SyncWriteMode::UpdateOnly {
            member.insert(
                "status_if_new".into(),
                Value::from(self.new_status.as_str()),
            );
        }
        if record.action == SyncAction::Create {
            // Only new members get a status unless the mapping sets one: an
            // update never re-subscribes someone who unsubscribed.
            member.insert("status".into(), Value::from(self.new_status.as_str()));
        }
        for (name, value) in &record.fields {
            match check_field_name(name)? {
                Slot::Email => {}
                Slot::Status => match value {
                    Value::Null => {}
                    Value::String(s) if STATUSES.contains(&s.as_str()) => {
                        member.insert("status".into(), value.clone());
                    }
                    other => {
                        return Err(format!(
                            "`status` must be one of {}, got {other}",
                            STATUSES.join(", ")
                        ));
                    }
                },
                Slot::Plain(field) => {
                    if !value.is_null() {
                        member.insert(field.into(), value.clone());
                    }
                }
                Slot::Nested(field, None) => match value {
                    Value::Null => {}
                    Value::Object(obj) => {
                        let slot = objects.entry(field).or_default();
                        slot.extend(obj.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    other => return Err(format!("`{field}` must be an object, got {other}")),
                },
                Slot::Nested(field, Some(sub)) => {
                    // A null merge field clears it; other nulls are left out.
                    let v = match value {
                        Value::Null if field == "merge_fields" => Value::from(""),
                        Value::Null => continue,
                        v => v.clone(),
                    };
                    objects.entry(field).or_default().insert(sub.to_string(), v);
                }
            }
        }
        for (field, object) in objects {
            member.insert(field.into(), Value::Object(object));
        }
        Ok(Value::Object(member))
    }
}

/// Where a destination field goes in the member object.
enum Slot<'a> {
    Email,
    Status,
    Plain(&'static str),
    /// `merge_fields` (whole object) or `merge_fields.FNAME`.
    Nested(&'static str, Option<&'a str>),
}

/// Which member field `name` fills, or why it is not one.
fn check_field_name(name: &str) -> Result<Slot<'_>, String> {
    let (top, sub) = match name.split_once('.') {
        Some((top, sub)) => (top, Some(sub)),
        None => (name, None),
    };
    let unknown = || {
        format!(
            "`{name}` is not a Mailchimp list-member field (use email_address, status, {}, \
             or merge_fields.TAG / interests.ID / location.latitude)",
            PLAIN_FIELDS.join(", ")
        )
    };
    match (top, sub) {
        ("email_address", None) => Ok(Slot::Email),
        ("status", None) => Ok(Slot::Status),
        (_, Some("")) => Err(unknown()),
        (top, sub) => {
            if let Some(f) = NESTED_FIELDS.iter().find(|f| **f == top) {
                Ok(Slot::Nested(f, sub))
            } else if let (Some(f), None) = (PLAIN_FIELDS.iter().find(|f| **f == top), sub) {
                Ok(Slot::Plain(f))
            } else {
                Err(unknown())
            }
        }
    }
}

/// The email as Mailchimp compares it.
fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

#[async_trait]
impl SyncTarget for MailchimpTarget {
    fn name(&self) -> &str {
        "mailchimp"
    }

    fn required_fields(&self) -> Vec<String> {
        vec!["email_address".into()]
    }

    fn max_batch(&self) -> usize {
        MAX_MEMBERS_PER_CALL
    }

    fn modes(&self) -> &'static [SyncWriteMode] {
        SyncWriteMode::ALL
    }

    fn check(&self, spec: &SyncSpec) -> Result<(), BoxError> {
        Ok(MailchimpTarget::check_spec(spec)?)
    }

    fn preview(&self, mode: SyncWriteMode, records: &[SyncRecord]) -> Vec<PlannedRequest> {
        let members: Vec<Value> = records
            .iter()
            .filter_map(|r| self.member(r, mode).ok())
            .collect();
        if members.is_empty() {
            return Vec::new();
        }
        let (path, body) = self
            .client
            .batch_request(members, mode != SyncWriteMode::CreateOnly);
        vec![PlannedRequest {
            method: "POST".into(),
            path,
            body,
        }]
    }

    /// Sends the records in calls of at most 500 members. A failed call
    /// (HTTP error after retries) fails the whole batch: nothing is
    /// acknowledged, and the upserts are safe to send again next run.
    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let mut results: Vec<Option<Result<(), String>>> = vec![None; records.len()];
        // (record index, normalised email, member)
        let mut pending = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            match self.member(record, mode) {
                Ok(member) => {
                    let email = member
                        .get("email_address")
                        .and_then(Value::as_str)
                        .map(normalise)
                        .unwrap_or_default();
                    pending.push((i, email, member));
                }
                Err(reason) => results[i] = Some(Err(reason)),
            }
        }
        while !pending.is_empty() {
            let rest = pending.split_off(pending.len().min(MAX_MEMBERS_PER_CALL));
            let chunk = std::mem::replace(&mut pending, rest);
            let mut by_email: HashMap<String, Vec<usize>> = HashMap::new();
            let mut members = Vec::with_capacity(chunk.len());
            for (i, email, member) in chunk {
                by_email.entry(email).or_default().push(i);
                members.push(member);
            }
            let sent = members.len();
            // create_only: Mailchimp answers members already on the list
            // with an error (ERROR_CONTACT_EXISTS) instead of changing them.
            let update_existing = mode != SyncWriteMode::CreateOnly;
            let answer = self
                .client
                .batch_members(members, update_existing, &self.metrics)
                .await?;
            tracing::debug!(
                sent,
                created = answer.new_members.len(),
                updated = answer.updated_members.len(),
                errors = answer.errors.len(),
                "mailchimp batch subscribe"
            );
            apply_answer(&answer, &by_email, &mut results);
        }
        Ok(records
            .into_iter()
            .zip(results)
            .map(|(record, result)| RecordOutcome {
                key: record.key,
                result: result.unwrap_or_else(|| Err(NO_RESULT.into())),
            })
            .collect())
    }
}

/// Marks the records Mailchimp answered for; an error wins over a success
/// for the same email.
fn apply_answer(
    answer: &BatchResponse,
    by_email: &HashMap<String, Vec<usize>>,
    results: &mut [Option<Result<(), String>>],
) {
    let ok = answer.new_members.iter().chain(&answer.updated_members);
    for m in ok {
        for &i in by_email
            .get(&normalise(&m.email_address))
            .into_iter()
            .flatten()
        {
            results[i].get_or_insert(Ok(()));
        }
    }
    for e in &answer.errors {
        let mut reason = if e.error.is_empty() {
            "rejected by Mailchimp".to_string()
        } else {
            e.error.clone()
        };
        if let (Some(field), Some(msg)) = (&e.field, &e.field_message)
            && !field.is_empty()
            && !msg.is_empty()
        {
            reason.push_str(&format!(" ({field}: {msg})"));
        }
        for &i in by_email
            .get(&normalise(&e.email_address))
            .into_iter()
            .flatten()
        {
            results[i] = Some(Err(reason.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_sync_needs_a_list_id() {
        let config = MailchimpConfig::source(weft_core::SecretRef::Env {
            env: "WEFT_MC_UNSET_KEY_FOR_TEST".into(),
        });
        let err = MailchimpTarget::new(&config, &BudgetRegistry::new())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`list_id` is required for a sync"), "{err}");
    }

    fn spec(pk: &str, mapping: &[(&str, &str)]) -> SyncSpec {
        let mapping: serde_json::Map<String, Value> = mapping
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        serde_json::from_value(serde_json::json!({
            "name": "people_to_mailchimp",
            "model": "models.people",
            "primary_key": pk,
            "mode": "mirror",
            "mapping": mapping,
        }))
        .unwrap()
    }

    #[test]
    fn check_spec_wants_email_as_key_and_member_fields() {
        MailchimpTarget::check_spec(&spec(
            "email",
            &[
                ("email_address", "email"),
                ("merge_fields.FNAME", "first_name"),
                ("vip", "is_vip"),
                ("status", "status"),
            ],
        ))
        .unwrap();
        let e = MailchimpTarget::check_spec(&spec("id", &[("email_address", "email")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("primary key is `id`"), "{e}");
        let e = MailchimpTarget::check_spec(&spec("email", &[("merge_fields.FNAME", "f")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`email_address` is not mapped"), "{e}");
        let e = MailchimpTarget::check_spec(&spec(
            "email",
            &[("email_address", "email"), ("tags", "t")],
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`tags` is not a Mailchimp list-member field"),
            "{e}"
        );
        assert!(check_field_name("merge_fields.").is_err());
        assert!(check_field_name("vip.x").is_err());
    }
}
