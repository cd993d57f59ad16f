//! The destination side: warehouse rows -> Stripe customers (reverse sync).
//!
//! Stripe has no batch write, so each record is its own calls, several at
//! once within a batch (`concurrency`), all through the key's shared budget:
//! `GET /v1/customers/search?query=email:'…'`, then
//! `POST /v1/customers/{id}` (update) when a customer has the email or
//! `POST /v1/customers` (create) when none does. When several customers
//! share the email, the **most recently created** one is updated (and, in
//! mirror mode, deleted); the others are left alone.
//!
//! Records sharing an email are written one after the other (the first
//! creates, the next finds and updates). Every POST carries `Idempotency-Key: weft-<hash>`, a hash of the record's
//! key, the call (`create`, or `update` and the customer id) and its row
//! hash: weft-http retries it safely, and a record re-sent after a failed
//! batch (Stripe's search can lag a fresh create by a little) is answered
//! from Stripe's cache instead of creating the customer twice. A replayed
//! answer wrote nothing *now*, so the target checks it: a replayed update
//! (the same values sent within Stripe's 24-hour key window, perhaps before
//! another change) is sent again under a fresh key; a replayed create whose
//! customer was deleted since is created again under a fresh key.
//!
//! Mapped values are sent as text; a `NULL` is left out of a create and
//! clears the field in an update (for `metadata.KEY`, removes the key).
//!
//! Modes are enforced against Stripe's own customers, found by the search:
//! under `create_only` an existing customer is a reject (never changed),
//! under `update_only` a missing one is a reject (never created). Mirror
//! deletes `DELETE /v1/customers/{id}` the customer found by the record's
//! key as email, so **the sync's primary key must be the email** (checked
//! by [`SyncTarget::check`]); a customer Stripe does not have is already
//! gone (acknowledged).
//!
//! A 4xx answer for one customer (an invalid email, a metadata limit) is
//! that record's reject, with Stripe's `error.message`; auth (401), a
//! restricted key's 403, 409 conflicts, throttling, 5xx and transport
//! failures (after weft-http's retries) fail the whole batch, which is safe
//! to send again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::{StreamExt, stream};
use serde_json::Value;
use weft_core::{
    BoxError, PlannedRequest, RecordOutcome, StreamMetrics, SyncAction, SyncRecord, SyncSpec,
    SyncTarget, SyncWriteMode,
};
use weft_http::{BudgetRegistry, HttpError, Response};

use crate::client::StripeClient;
use crate::{StripeConfig, StripeError};

/// Largest batch `apply` takes.
pub const MAX_BATCH: usize = 100;

/// Customer fields a mapping may fill (besides `metadata.KEY`).
pub const CUSTOMER_FIELDS: [&str; 10] = [
    "email",
    "name",
    "phone",
    "description",
    "address.line1",
    "address.line2",
    "address.city",
    "address.state",
    "address.postal_code",
    "address.country",
];

/// Stripe customers as a reverse-sync destination.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let config = weft_stripe::StripeConfig::new(
///     None,
///     SecretRef::Env { env: "STRIPE_API_KEY".into() },
/// );
/// let target = weft_stripe::StripeTarget::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
pub struct StripeTarget {
    client: StripeClient,
    concurrency: usize,
    metrics: StreamMetrics,
}

impl StripeTarget {
    /// A target for the account of `config.api_key`, sharing its budget in `budgets`.
    pub fn new(
        config: &StripeConfig,
        budgets: &BudgetRegistry,
    ) -> Result<StripeTarget, StripeError> {
        Ok(StripeTarget {
            client: StripeClient::new(config, budgets)?,
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
            let email = record.key.trim();
            if !email.contains('@') {
                return Ok(Err(format!(
                    "cannot delete key {:?}: a mirror sync to Stripe needs the email as its \
                     primary key",
                    record.key
                )));
            }
            let id = match rejected_or(self.client.find_customer(email, m).await)? {
                Ok(Some(id)) => id,
                // Stripe does not have it: nothing to delete.
                Ok(None) => return Ok(Ok(())),
                Err(reason) => return Ok(Err(reason)),
            };
            return match self.client.delete_customer(&id, m).await {
                // Deleted meanwhile (or by an earlier attempt): gone either way.
                Err(e) if e.status() == Some(404) => Ok(Ok(())),
                other => rejected_or(other),
            };
        }
        let (email, form) = match customer_form(record) {
            Ok(f) => f,
            Err(reason) => return Ok(Err(reason)),
        };
        let found = match rejected_or(self.client.find_customer(&email, m).await)? {
            Ok(found) => found,
            Err(reason) => return Ok(Err(reason)),
        };
        match (found, mode) {
            (Some(id), SyncWriteMode::CreateOnly) => Ok(Err(format!(
                "Stripe already has a customer with this email ({id}); mode create_only does \
                 not change it"
            ))),
            (None, SyncWriteMode::UpdateOnly) => Ok(Err(
                "Stripe has no customer with this email (mode update_only does not create one)"
                    .into(),
            )),
            (Some(id), _) => self.update(record, &id, form).await,
            (None, _) => self.create(record, form).await,
        }
    }

    /// `POST /v1/customers/{id}`; a replayed answer is sent again under a fresh key.
    async fn update(
        &self,
        record: &SyncRecord,
        id: &str,
        form: Vec<(String, String)>,
    ) -> Result<Result<(), String>, HttpError> {
        let m = &self.metrics;
        let path = format!("/v1/customers/{id}");
        let call = format!("update {id}");
        let key = idempotency_key(&record.key, &call, &record.row_hash);
        let sent = self
            .client
            .post_customer(&path, form.clone(), &key, m)
            .await;
        let resp = match rejected_or(sent)? {
            Ok(resp) => resp,
            Err(reason) => return Ok(Err(reason)),
        };
        if !replayed(&resp) {
            return Ok(Ok(()));
        }
        // Stripe answered an identical earlier update from its cache and
        // wrote nothing now; the customer may have changed since.
        let fresh = fresh_key(&record.key, &call, &record.row_hash);
        let sent = self.client.post_customer(&path, form, &fresh, m).await;
        rejected_or(sent).map(|r| r.map(drop))
    }

    /// `POST /v1/customers`; a replay of a customer deleted since creates afresh.
    async fn create(
        &self,
        record: &SyncRecord,
        form: Vec<(String, String)>,
    ) -> Result<Result<(), String>, HttpError> {
        let m = &self.metrics;
        let path = "/v1/customers";
        let key = idempotency_key(&record.key, "create", &record.row_hash);
        let sent = self.client.post_customer(path, form.clone(), &key, m).await;
        let resp = match rejected_or(sent)? {
            Ok(resp) => resp,
            Err(reason) => return Ok(Err(reason)),
        };
        if !replayed(&resp) {
            return Ok(Ok(()));
        }
        // The same create was sent before (a retried batch whose create the
        // search did not show yet): that customer stands, unless deleted since.
        let id = resp
            .json::<Value>()
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
        let gone = match &id {
            Some(id) => self.client.customer_deleted(id, m).await?,
            None => true,
        };
        if !gone {
            return Ok(Ok(()));
        }
        let fresh = fresh_key(&record.key, "create", &record.row_hash);
        let sent = self.client.post_customer(path, form, &fresh, m).await;
        rejected_or(sent).map(|r| r.map(drop))
    }
}

/// True when Stripe answered from its idempotency cache.
fn replayed(resp: &Response) -> bool {
    resp.header("idempotent-replayed")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `weft-<32 hex digits>`: FNV-1a (128-bit) of the record's key, the call
/// and the row hash, so the same record sent for the same call gets the
/// same key, in any process.
pub fn idempotency_key(key: &str, call: &str, row_hash: &str) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    for (n, part) in [key, call, row_hash].iter().enumerate() {
        if n > 0 {
            hash = (hash ^ 0x1f).wrapping_mul(PRIME);
        }
        for b in part.bytes() {
            hash = (hash ^ u128::from(b)).wrapping_mul(PRIME);
        }
    }
    format!("weft-{hash:032x}")
}

/// A key no earlier request used: the call's key salted with the time and a
/// process-wide counter.
fn fresh_key(key: &str, call: &str, row_hash: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let salted = format!("{call} again {nanos} {seq}");
    idempotency_key(key, &salted, row_hash)
}

/// Splits a call's failure: a 4xx about this customer is its reject (inner
/// `Err`); anything else fails the batch (outer `Err`). 403 (a restricted
/// key) and 409 (a concurrent request with the same key) concern every
/// record or pass: they fail the batch.
fn rejected_or<T>(r: Result<T, HttpError>) -> Result<Result<T, String>, HttpError> {
    weft_http::split_reject(r, reject_reason)
}

/// Stripe's message for a 4xx (`{"error": {"message", "code", "param", "type"}}`).
fn reject_reason(e: &HttpError) -> Option<String> {
    let HttpError::Status { status, body, .. } = e else {
        return None;
    };
    if !(400..500).contains(status) || matches!(status, 403 | 409) {
        return None;
    }
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        let msg = error.get("message")?.as_str()?;
        Some(match error.get("code").and_then(Value::as_str) {
            Some(code) => format!("{msg} ({code})"),
            None => msg.to_string(),
        })
    });
    Some(message.unwrap_or_else(|| format!("HTTP {status}: {body}")))
}

/// The form parameter for destination field `name`, or why it is not one.
fn param_of(name: &str) -> Result<String, String> {
    if let Some(key) = name.strip_prefix("metadata.") {
        if key.is_empty() || key.contains(['[', ']']) {
            return Err(format!(
                "`{name}`: a metadata key must be non-empty, without `[` or `]`"
            ));
        }
        return Ok(format!("metadata[{key}]"));
    }
    if !CUSTOMER_FIELDS.contains(&name) {
        return Err(format!(
            "`{name}` is not a Stripe customer field (use {} or metadata.KEY)",
            CUSTOMER_FIELDS.join(", ")
        ));
    }
    Ok(match name.strip_prefix("address.") {
        Some(part) => format!("address[{part}]"),
        None => name.to_string(),
    })
}

/// The trimmed email and the form body for a create or update, or why the
/// record cannot be sent. Parameters come in field order, so the same record
/// always gives the same body (and idempotency fingerprint).
fn customer_form(record: &SyncRecord) -> Result<(String, Vec<(String, String)>), String> {
    let email = match record.fields.get("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err("`email` is missing or empty".into());
        }
        Some(other) => return Err(format!("`email` is not text: {other}")),
    };
    let update = record.action == SyncAction::Update;
    let mut form = Vec::with_capacity(record.fields.len());
    for (name, value) in &record.fields {
        let param = param_of(name)?;
        let text = match value {
            Value::Null if update => String::new(),
            Value::Null => continue,
            Value::String(_) if name == "email" => email.clone(),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "`{name}` must be text, a number or a boolean, got {other}"
                ));
            }
        };
        form.push((param, text));
    }
    Ok((email, form))
}

/// The records in groups sharing an email (case-insensitively; a delete's
/// is its key), in their order: a group is written one record after the
/// other, so two rows with one email do not both find no customer and both
/// create one.
fn same_email_groups(records: Vec<SyncRecord>) -> Vec<Vec<SyncRecord>> {
    let mut groups: Vec<Vec<SyncRecord>> = Vec::new();
    let mut by_email: HashMap<String, usize> = HashMap::new();
    for r in records {
        let email = match (r.action, r.fields.get("email")) {
            (SyncAction::Delete, _) => r.key.trim().to_lowercase(),
            (_, Some(Value::String(e))) => e.trim().to_lowercase(),
            // Rejected without a request: a group of its own.
            _ => {
                groups.push(vec![r]);
                continue;
            }
        };
        match by_email.get(&email) {
            Some(&g) => groups[g].push(r),
            None => {
                by_email.insert(email, groups.len());
                groups.push(vec![r]);
            }
        }
    }
    groups
}

#[async_trait]
impl SyncTarget for StripeTarget {
    fn name(&self) -> &str {
        "stripe"
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

    fn check(&self, spec: &SyncSpec) -> Result<(), BoxError> {
        let err = |reason: String| StripeError::Sync {
            sync: spec.name.clone(),
            reason,
        };
        for name in spec.mapping.keys() {
            param_of(name).map_err(err)?;
        }
        if spec.mode == SyncWriteMode::Mirror
            && spec.mapping.get("email") != Some(&spec.primary_key)
        {
            return Err(Box::new(err(format!(
                "mode `mirror` deletes customers found by the sync's key, so `email` must be \
                 mapped from the primary key `{}`",
                spec.primary_key
            ))));
        }
        Ok(())
    }

    /// Writes the records `concurrency` at a time. A failure that is not
    /// one customer's (see the module docs) fails the whole batch: nothing
    /// is acknowledged, and every write is safe to send again.
    fn preview(&self, mode: SyncWriteMode, records: &[SyncRecord]) -> Vec<PlannedRequest> {
        let mut out = Vec::new();
        for record in records {
            let (email, body) = match record.action {
                SyncAction::Delete => (record.key.trim().to_string(), Value::Null),
                _ => match customer_form(record) {
                    Ok((email, form)) => {
                        let fields = form.into_iter().map(|(k, v)| (k, Value::from(v)));
                        (email, Value::Object(fields.collect()))
                    }
                    Err(_) => continue,
                },
            };
            out.push(PlannedRequest {
                method: "GET".into(),
                path: format!("v1/customers/search?query=email:'{email}'"),
                body: Value::Null,
            });
            let (method, path) = match (record.action, mode) {
                (SyncAction::Delete, _) => ("DELETE", "v1/customers/{id of the customer found}"),
                (_, SyncWriteMode::CreateOnly) => ("POST", "v1/customers (when none is found)"),
                (_, SyncWriteMode::UpdateOnly) => {
                    ("POST", "v1/customers/{id of the customer found}")
                }
                _ => ("POST", "v1/customers/{id} when found, else v1/customers"),
            };
            out.push(PlannedRequest {
                method: method.into(),
                path: path.into(),
                body,
            });
        }
        out
    }

    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let groups: Vec<Vec<(String, Result<Result<(), String>, HttpError>)>> =
            stream::iter(same_email_groups(records))
                .map(|group| async move {
                    let mut done = Vec::with_capacity(group.len());
                    for r in group {
                        let result = self.one(mode, &r).await;
                        done.push((r.key, result));
                    }
                    done
                })
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
        let mut outcomes = Vec::with_capacity(groups.iter().map(Vec::len).sum());
        for (key, result) in groups.into_iter().flatten() {
            outcomes.push(RecordOutcome {
                key,
                result: result.map_err(StripeError::from)?,
            });
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn record(action: SyncAction, fields: &[(&str, Value)]) -> SyncRecord {
        SyncRecord {
            key: "ann@x.com".into(),
            action,
            row_hash: "h1".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn forms_map_fields_and_nulls_clear_only_on_update() {
        let fields = [
            ("email", json!(" Ann@x.com ")),
            ("name", json!("Ann")),
            ("phone", Value::Null),
            ("address.city", json!("Oslo")),
            ("metadata.seats", json!(12)),
            ("metadata.vip", json!(true)),
        ];
        let (email, form) = customer_form(&record(SyncAction::Create, &fields)).unwrap();
        assert_eq!(email, "Ann@x.com");
        assert_eq!(
            pairs(&form),
            vec![
                ("address[city]", "Oslo"),
                ("email", "Ann@x.com"),
                ("metadata[seats]", "12"),
                ("metadata[vip]", "true"),
                ("name", "Ann"),
            ]
        );
        let (_, form) = customer_form(&record(SyncAction::Update, &fields)).unwrap();
        assert!(pairs(&form).contains(&("phone", "")), "{form:?}");
        let no_email = record(SyncAction::Create, &[("name", json!("X"))]);
        assert_eq!(
            customer_form(&no_email).unwrap_err(),
            "`email` is missing or empty"
        );
        let nested = record(
            SyncAction::Create,
            &[("email", json!("a@b.co")), ("name", json!({"a": 1}))],
        );
        assert!(
            customer_form(&nested)
                .unwrap_err()
                .starts_with("`name` must be text")
        );
    }

    #[test]
    fn records_sharing_an_email_are_grouped_in_order() {
        let r = |key: &str, action, email: Option<&str>| SyncRecord {
            key: key.into(),
            action,
            row_hash: "h".into(),
            fields: email
                .map(|e| BTreeMap::from([("email".to_string(), json!(e))]))
                .unwrap_or_default(),
        };
        let groups = same_email_groups(vec![
            r("1", SyncAction::Create, Some("a@x.com")),
            r("2", SyncAction::Create, Some("b@x.com")),
            r("3", SyncAction::Update, Some(" A@X.com")),
            r("4", SyncAction::Create, None),
            r("b@x.com", SyncAction::Delete, None),
            r("5", SyncAction::Create, None),
        ]);
        let keys: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|r| r.key.as_str()).collect())
            .collect();
        assert_eq!(
            keys,
            vec![vec!["1", "3"], vec!["2", "b@x.com"], vec!["4"], vec!["5"]]
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(param_of("address.line1").unwrap(), "address[line1]");
        assert_eq!(param_of("metadata.plan").unwrap(), "metadata[plan]");
        let e = param_of("nickname").unwrap_err();
        assert!(
            e.starts_with("`nickname` is not a Stripe customer field"),
            "{e}"
        );
        assert!(param_of("metadata.").is_err());
        assert!(param_of("metadata.a[b]").is_err());
        assert!(param_of("address.planet").is_err());
    }

    #[test]
    fn idempotency_keys_are_stable_and_tell_calls_apart() {
        let k = idempotency_key("ann@x.com", "create", "h1");
        assert_eq!(k, idempotency_key("ann@x.com", "create", "h1"));
        assert!(k.starts_with("weft-") && k.len() == 5 + 32, "{k}");
        assert_ne!(k, idempotency_key("ann@x.com", "create", "h2"));
        assert_ne!(k, idempotency_key("ann@x.com", "update cus_1", "h1"));
        assert_ne!(k, idempotency_key("bob@x.com", "create", "h1"));
        // Parts are separated: moving a character between them changes the key.
        assert_ne!(
            idempotency_key("ab", "c", "h"),
            idempotency_key("a", "bc", "h")
        );
        assert_ne!(
            fresh_key("ann@x.com", "create", "h1"),
            fresh_key("ann@x.com", "create", "h1")
        );
    }

    #[test]
    fn only_a_customers_own_4xx_is_a_reject() {
        let status = |status: u16, body: &str| HttpError::Status {
            api: "stripe".into(),
            method: "POST".into(),
            status,
            url: "u".into(),
            body: body.into(),
        };
        let body = r#"{"error":{"code":"email_invalid","message":"Invalid email address: x","param":"email","type":"invalid_request_error"}}"#;
        assert_eq!(
            reject_reason(&status(400, body)).as_deref(),
            Some("Invalid email address: x (email_invalid)")
        );
        assert_eq!(
            reject_reason(&status(404, "not json")).as_deref(),
            Some("HTTP 404: not json")
        );
        assert_eq!(reject_reason(&status(403, body)), None);
        assert_eq!(reject_reason(&status(409, body)), None);
        assert_eq!(reject_reason(&status(500, body)), None);
    }
}
