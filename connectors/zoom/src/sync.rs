//! The destination side: warehouse rows -> Zoom webinar registrants
//! (reverse sync).
//!
//! A new person is registered with `POST /v2/webinars/{id}/registrants`
//! (one call per person, several at once). Zoom answers an email already
//! registered with its existing registration, so the call is safe to
//! repeat and weft-http retries it. Statuses change through `PUT
//! /v2/webinars/{id}/registrants/status`, 30 registrants (by email) per
//! call.
//!
//! Zoom cannot edit a registration: there is no update of a registrant's
//! name or fields. So this destination offers the two modes whose meaning
//! survives that, and refuses `upsert` and `update_only` at config check:
//! - `create_only`: registers people the webinar does not have. The
//!   webinar's registrants (any status) are listed once per target, and a
//!   person already registered is a reject, never changed.
//! - `mirror`: **the registration follows the model**. A person in the
//!   model is registered and approved (re-approved if an earlier run
//!   cancelled them, or a webinar with manual approval left them pending);
//!   a changed row approves them again, and its new details reach Zoom only
//!   through a new registration; a person who left the model is cancelled
//!   (or denied: `mirror_action = "deny"`). Deletes carry only the key, so
//!   in mirror mode **the sync's primary key must be the email**, and the
//!   webinar comes from the config (`webinar_id`).
//!
//! The webinar is the config's `webinar_id`, or per row a mapped
//! `webinar_id` column (in `create_only`). Zoom's 4xx answer about one
//! person (an invalid email, registration closed, an unknown webinar) is
//! that record's reject with Zoom's message; 401, 403, 429, 5xx and
//! transport failures (after retries) fail the whole batch, which is safe
//! to send again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::{StreamExt, stream};
use serde_json::{Map, Value};
use weft_core::{
    BoxError, PlannedRequest, RecordOutcome, StreamMetrics, SyncAction, SyncRecord, SyncSpec,
    SyncTarget, SyncWriteMode,
};
use weft_http::{BudgetRegistry, HttpError};

use crate::client::ZoomClient;
use crate::config::MirrorAction;
use crate::{ZoomConfig, ZoomError};

/// Registrants per status update, Zoom's documented maximum; also the
/// largest batch `apply` takes.
pub const MAX_STATUS_REGISTRANTS: usize = 30;

/// Registrant fields a mapping may fill, besides `webinar_id`.
pub const REGISTRANT_FIELDS: [&str; 16] = [
    "email",
    "first_name",
    "last_name",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "phone",
    "comments",
    "industry",
    "job_title",
    "org",
    "no_of_employees",
    "purchasing_time_frame",
    "role_in_purchase_process",
];

/// The mapped field naming a row's webinar.
const WEBINAR_FIELD: &str = "webinar_id";

/// Zoom webinar registrants as a reverse-sync destination.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let mut config = weft_zoom::ZoomConfig::new(
///     "acct-123",
///     "client-abc",
///     SecretRef::Env { env: "ZOOM_CLIENT_SECRET".into() },
/// );
/// config.webinar_id = Some(93_000_000_001);
/// let target = weft_zoom::ZoomTarget::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
pub struct ZoomTarget {
    client: ZoomClient,
    webinar_id: Option<i64>,
    mirror_action: MirrorAction,
    concurrency: usize,
    metrics: Arc<StreamMetrics>,
    /// Emails registered per webinar (any status, lower-cased), listed once
    /// for `create_only` and kept up to date with this target's own adds.
    registered: Mutex<HashMap<i64, HashSet<String>>>,
}

impl ZoomTarget {
    /// A target for the account of `config`, sharing its budget in `budgets`.
    pub fn new(config: &ZoomConfig, budgets: &BudgetRegistry) -> Result<ZoomTarget, ZoomError> {
        Ok(ZoomTarget {
            client: ZoomClient::new(config, budgets)?,
            webinar_id: config.webinar_id,
            mirror_action: config.mirror_action,
            concurrency: config.fan_out_concurrency,
            metrics: Arc::new(StreamMetrics::default()),
            registered: Mutex::new(HashMap::new()),
        })
    }

    /// Requests, retries and waits of this target's calls so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.metrics
    }

    /// Lists the registrants of each of `webinars` not listed yet (once
    /// per target, before registrations run concurrently).
    async fn list_registered(&self, webinars: &[i64]) -> Result<(), HttpError> {
        for &webinar in webinars {
            if self.lock().contains_key(&webinar) {
                continue;
            }
            let listed = self
                .client
                .registered_emails(webinar, &self.metrics)
                .await?;
            self.lock().entry(webinar).or_insert(listed);
        }
        Ok(())
    }

    /// Whether `email` is known registered for `webinar` (listed by
    /// [`ZoomTarget::list_registered`], or added by this target).
    fn is_registered(&self, webinar: i64, email: &str) -> bool {
        self.lock()
            .get(&webinar)
            .is_some_and(|known| known.contains(email))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, HashSet<String>>> {
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers one person: `Ok(Ok)` registered, `Ok(Err)` rejected, `Err`
    /// the batch fails.
    async fn register(
        &self,
        mode: SyncWriteMode,
        r: &Registration,
    ) -> Result<Result<(), String>, HttpError> {
        if mode == SyncWriteMode::CreateOnly && self.is_registered(r.webinar, &r.email) {
            return Ok(Err(format!(
                "already registered for webinar {}; mode create_only does not change a \
                 registration",
                r.webinar
            )));
        }
        let req = ZoomClient::add_registrant_request(r.webinar, r.body.clone());
        match rejected_or(self.client.http.send(&req, &self.metrics).await)? {
            Ok(_) => {
                if let Some(known) = self.lock().get_mut(&r.webinar) {
                    known.insert(r.email.clone());
                }
                Ok(Ok(()))
            }
            Err(reason) => Ok(Err(reason)),
        }
    }

    /// One status update for up to 30 emails: `Ok(Ok)` applied to all,
    /// `Ok(Err)` a reject for all, `Err` the batch fails.
    async fn set_status(
        &self,
        webinar: i64,
        action: &str,
        emails: &[&str],
    ) -> Result<Result<(), String>, HttpError> {
        let req = ZoomClient::status_request(webinar, action, emails);
        rejected_or(self.client.http.send(&req, &self.metrics).await).map(|r| r.map(drop))
    }
}

/// What is sent for one record.
#[derive(Debug, Clone, PartialEq)]
struct Registration {
    webinar: i64,
    /// Trimmed, lower-cased.
    email: String,
    /// The add-registrant body (creates and updates); empty for deletes.
    body: Value,
}

/// The registration for `record`, or why it cannot be sent.
fn registration(record: &SyncRecord, default_webinar: Option<i64>) -> Result<Registration, String> {
    let webinar = match record.fields.get(WEBINAR_FIELD) {
        None | Some(Value::Null) => default_webinar,
        Some(v) => Some(webinar_of(v)?),
    }
    .ok_or_else(|| {
        "no webinar: set `webinar_id` in the sync's config or map a `webinar_id` column".to_string()
    })?;
    if record.action == SyncAction::Delete {
        let email = record.key.trim();
        if !email.contains('@') {
            return Err(format!(
                "cannot cancel key {:?}: a mirror sync to Zoom needs the email as its primary key",
                record.key
            ));
        }
        return Ok(Registration {
            webinar,
            email: email.to_lowercase(),
            body: Value::Null,
        });
    }
    let email = match record.fields.get("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_) | Value::Null) | None => {
            return Err("`email` is missing or empty".into());
        }
        Some(other) => return Err(format!("`email` is not text: {other}")),
    };
    let mut body = Map::new();
    for (name, value) in &record.fields {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        if name != WEBINAR_FIELD {
            body.insert(name.clone(), Value::from(text));
        }
    }
    if body
        .get("first_name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("`first_name` is missing or empty (Zoom requires it)".into());
    }
    body.insert("email".into(), Value::from(email.clone()));
    Ok(Registration {
        webinar,
        email: email.to_lowercase(),
        body: Value::Object(body),
    })
}

/// A webinar id from a mapped value (a number or numeric text).
fn webinar_of(v: &Value) -> Result<i64, String> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("`webinar_id` is not a webinar id: {v}"))
}

/// Splits a call's failure: a 4xx about these registrants (validation,
/// registration closed, no such webinar) is a reject (inner `Err`); 401,
/// 403, throttling, 5xx and transport failures fail the batch.
fn rejected_or<T>(r: Result<T, HttpError>) -> Result<Result<T, String>, HttpError> {
    weft_http::split_reject(r, reject_reason)
}

/// Zoom's message for a 4xx (`{"code", "message", "errors": [{"field", "message"}]}`).
fn reject_reason(e: &HttpError) -> Option<String> {
    let HttpError::Status { status, body, .. } = e else {
        return None;
    };
    if !(400..500).contains(status) || matches!(status, 401 | 403 | 429) {
        return None;
    }
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let mut msg = v.get("message")?.as_str()?.to_string();
        if let Some(code) = v.get("code").and_then(Value::as_i64) {
            msg = format!("{msg} (code {code})");
        }
        let fields: Vec<String> = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e.get("field").and_then(Value::as_str))
                    .map(|f| format!("`{f}`"))
                    .collect()
            })
            .unwrap_or_default();
        if !fields.is_empty() {
            msg = format!("{msg}: invalid {}", fields.join(", "));
        }
        Some(msg)
    });
    Some(message.unwrap_or_else(|| format!("HTTP {status}: {body}")))
}

/// The status action each record gets after its registration (mirror mode).
fn status_action(
    mode: SyncWriteMode,
    action: SyncAction,
    mirror: MirrorAction,
) -> Option<&'static str> {
    match (mode, action) {
        (SyncWriteMode::Mirror, SyncAction::Delete) => Some(mirror.as_str()),
        (SyncWriteMode::Mirror, _) => Some("approve"),
        _ => None,
    }
}

/// Status updates to send: (webinar, action) -> record indexes, in order.
type StatusGroups = BTreeMap<(i64, &'static str), Vec<usize>>;

#[async_trait]
impl SyncTarget for ZoomTarget {
    fn name(&self) -> &str {
        "zoom"
    }

    fn required_fields(&self) -> Vec<String> {
        vec!["email".into(), "first_name".into()]
    }

    fn max_batch(&self) -> usize {
        MAX_STATUS_REGISTRANTS
    }

    fn modes(&self) -> &'static [SyncWriteMode] {
        &[SyncWriteMode::CreateOnly, SyncWriteMode::Mirror]
    }

    fn check(&self, spec: &SyncSpec) -> Result<(), BoxError> {
        let err = |reason: String| ZoomError::Sync {
            sync: spec.name.clone(),
            reason,
        };
        for name in spec.mapping.keys() {
            if name != WEBINAR_FIELD && !REGISTRANT_FIELDS.contains(&name.as_str()) {
                return Err(Box::new(err(format!(
                    "`{name}` is not a Zoom registrant field (use {}, or {WEBINAR_FIELD})",
                    REGISTRANT_FIELDS.join(", ")
                ))));
            }
        }
        let mapped_webinar = spec.mapping.contains_key(WEBINAR_FIELD);
        if self.webinar_id.is_none() && !mapped_webinar {
            return Err(Box::new(err(
                "no webinar: set `webinar_id` in the sync's config or map a `webinar_id` column"
                    .into(),
            )));
        }
        if spec.mode == SyncWriteMode::Mirror {
            if self.webinar_id.is_none() || mapped_webinar {
                return Err(Box::new(err(
                    "mode `mirror` cancels registrations of one webinar: set `webinar_id` in the \
                     sync's config and do not map a `webinar_id` column"
                        .into(),
                )));
            }
            if spec.mapping.get("email") != Some(&spec.primary_key) {
                return Err(Box::new(err(format!(
                    "mode `mirror` cancels registrants by the sync's key, so `email` must be \
                     mapped from the primary key `{}`",
                    spec.primary_key
                ))));
            }
        }
        Ok(())
    }

    fn preview(&self, mode: SyncWriteMode, records: &[SyncRecord]) -> Vec<PlannedRequest> {
        let regs: Vec<(SyncAction, Registration)> = records
            .iter()
            .filter_map(|r| Some((r.action, registration(r, self.webinar_id).ok()?)))
            .collect();
        let mut out: Vec<PlannedRequest> = regs
            .iter()
            .filter(|(a, _)| *a == SyncAction::Create)
            .map(|(_, r)| ZoomClient::add_registrant_request(r.webinar, r.body.clone()).planned())
            .collect();
        let mut groups: BTreeMap<(i64, &'static str), Vec<&str>> = BTreeMap::new();
        for (action, r) in &regs {
            if let Some(status) = status_action(mode, *action, self.mirror_action) {
                groups
                    .entry((r.webinar, status))
                    .or_default()
                    .push(&r.email);
            }
        }
        for ((webinar, action), emails) in groups {
            for chunk in emails.chunks(MAX_STATUS_REGISTRANTS) {
                out.push(ZoomClient::status_request(webinar, action, chunk).planned());
            }
        }
        out
    }

    /// Registers the batch's new people (several at once), then sends its
    /// status updates (mirror mode) in calls of at most 30.
    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let mut results: Vec<Option<Result<(), String>>> = vec![None; records.len()];
        let mut regs: Vec<Option<Registration>> = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            match registration(record, self.webinar_id) {
                Ok(r) => regs.push(Some(r)),
                Err(reason) => {
                    results[i] = Some(Err(reason));
                    regs.push(None);
                }
            }
        }
        let creates: Vec<(usize, Registration)> = regs
            .iter()
            .enumerate()
            .filter(|(i, _)| records[*i].action == SyncAction::Create)
            .filter_map(|(i, r)| Some((i, r.clone()?)))
            .collect();
        if mode == SyncWriteMode::CreateOnly {
            let mut webinars: Vec<i64> = creates.iter().map(|(_, r)| r.webinar).collect();
            webinars.sort_unstable();
            webinars.dedup();
            self.list_registered(&webinars)
                .await
                .map_err(ZoomError::from)?;
        }
        let registered: Vec<(usize, Result<Result<(), String>, HttpError>)> = stream::iter(creates)
            .map(|(i, r)| async move { (i, self.register(mode, &r).await) })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for (i, outcome) in registered {
            match outcome.map_err(ZoomError::from)? {
                Ok(()) => {}
                Err(reason) => results[i] = Some(Err(reason)),
            }
        }
        let mut groups = StatusGroups::new();
        for (i, reg) in regs.iter().enumerate() {
            let (Some(reg), None) = (reg, &results[i]) else {
                continue;
            };
            if let Some(status) = status_action(mode, records[i].action, self.mirror_action) {
                groups.entry((reg.webinar, status)).or_default().push(i);
            }
        }
        for ((webinar, action), indexes) in groups {
            for chunk in indexes.chunks(MAX_STATUS_REGISTRANTS) {
                let emails: Vec<&str> = chunk
                    .iter()
                    .filter_map(|&i| regs[i].as_ref().map(|r| r.email.as_str()))
                    .collect();
                let outcome = self
                    .set_status(webinar, action, &emails)
                    .await
                    .map_err(ZoomError::from)?;
                if let Err(reason) = outcome {
                    for &i in chunk {
                        results[i] = Some(Err(reason.clone()));
                    }
                }
            }
        }
        Ok(records
            .into_iter()
            .zip(results)
            .map(|(record, result)| RecordOutcome {
                key: record.key,
                result: result.unwrap_or(Ok(())),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(action: SyncAction, key: &str, fields: &[(&str, Value)]) -> SyncRecord {
        SyncRecord {
            key: key.into(),
            action,
            row_hash: "h".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn registrations_carry_text_fields_and_the_row_or_config_webinar() {
        let r = record(
            SyncAction::Create,
            "ann@x.com",
            &[
                ("email", json!(" Ann@X.com ")),
                ("first_name", json!("Ann")),
                ("zip", json!(94_045)),
                ("phone", Value::Null),
            ],
        );
        let reg = registration(&r, Some(7)).unwrap();
        assert_eq!(reg.webinar, 7);
        assert_eq!(reg.email, "ann@x.com");
        assert_eq!(
            reg.body,
            json!({"email": "Ann@X.com", "first_name": "Ann", "zip": "94045"})
        );
        let own = record(
            SyncAction::Create,
            "k",
            &[
                ("email", json!("b@x.com")),
                ("first_name", json!("B")),
                ("webinar_id", json!("42")),
            ],
        );
        let reg = registration(&own, Some(7)).unwrap();
        assert_eq!(reg.webinar, 42);
        assert!(reg.body.get("webinar_id").is_none());
    }

    #[test]
    fn bad_records_are_named() {
        let no_webinar = record(
            SyncAction::Create,
            "k",
            &[("email", json!("a@x.com")), ("first_name", json!("A"))],
        );
        assert!(
            registration(&no_webinar, None)
                .unwrap_err()
                .starts_with("no webinar")
        );
        let no_first = record(SyncAction::Create, "k", &[("email", json!("a@x.com"))]);
        assert_eq!(
            registration(&no_first, Some(1)).unwrap_err(),
            "`first_name` is missing or empty (Zoom requires it)"
        );
        let bad_webinar = record(
            SyncAction::Create,
            "k",
            &[
                ("email", json!("a@x.com")),
                ("first_name", json!("A")),
                ("webinar_id", json!("soon")),
            ],
        );
        assert!(
            registration(&bad_webinar, Some(1))
                .unwrap_err()
                .contains("not a webinar id")
        );
        let delete = record(SyncAction::Delete, "u-1", &[]);
        assert!(
            registration(&delete, Some(1))
                .unwrap_err()
                .contains("primary key")
        );
        let delete = record(SyncAction::Delete, " Ann@X.com", &[]);
        assert_eq!(registration(&delete, Some(1)).unwrap().email, "ann@x.com");
    }

    #[test]
    fn only_a_registrants_own_4xx_is_a_reject() {
        let status = |status: u16, body: &str| HttpError::Status {
            api: "zoom".into(),
            method: "POST".into(),
            url: "u".into(),
            status,
            body: body.into(),
        };
        let validation = status(
            400,
            r#"{"code":300,"message":"Validation Failed.","errors":[{"field":"email","message":"Invalid field."}]}"#,
        );
        assert_eq!(
            reject_reason(&validation).unwrap(),
            "Validation Failed. (code 300): invalid `email`"
        );
        let closed = status(
            400,
            r#"{"code":3000,"message":"This webinar has ended. Registration is closed."}"#,
        );
        assert_eq!(
            reject_reason(&closed).unwrap(),
            "This webinar has ended. Registration is closed. (code 3000)"
        );
        assert_eq!(
            reject_reason(&status(404, "gone")).unwrap(),
            "HTTP 404: gone"
        );
        for batch in [401, 403, 429, 500] {
            assert!(reject_reason(&status(batch, "{}")).is_none(), "{batch}");
        }
    }

    #[test]
    fn mirror_approves_present_people_and_cancels_or_denies_the_rest() {
        use SyncAction::*;
        let m = SyncWriteMode::Mirror;
        assert_eq!(
            status_action(m, Create, MirrorAction::Cancel),
            Some("approve")
        );
        assert_eq!(
            status_action(m, Update, MirrorAction::Cancel),
            Some("approve")
        );
        assert_eq!(
            status_action(m, Delete, MirrorAction::Cancel),
            Some("cancel")
        );
        assert_eq!(status_action(m, Delete, MirrorAction::Deny), Some("deny"));
        assert_eq!(
            status_action(SyncWriteMode::CreateOnly, Create, MirrorAction::Cancel),
            None
        );
    }
}
