//! The destination side: warehouse rows -> Zendesk users or organizations
//! (reverse sync), chosen by the sync config's `sync_object`.
//!
//! **Users.** Creates and updates become one `POST
//! /api/v2/users/create_or_update_many` call of at most 100 users. Zendesk
//! identifies users by `external_id` when it is sent, else by `email`, so
//! re-sending a batch never creates a user twice.
//!
//! **Organizations.** Zendesk has no `create_or_update_many` for
//! organizations (its bulk calls are `create_many`, `update_many` and
//! `destroy_many`; `create_or_update` takes one organization), so a batch
//! of at most 100 is first looked up by external id (`GET
//! /api/v2/organizations/show_many?external_ids=...`): the ones Zendesk has
//! go to `PUT organizations/update_many` with their ids, the others to
//! `POST organizations/create_many`. Organizations are matched by
//! `external_id` only (Zendesk does not match them by name, and refuses a
//! second organization with the same name), so `external_id` must be
//! mapped; a re-sent create of an organization Zendesk already has is a
//! reject (`DuplicateValue`), and the next run finds it and updates it.
//!
//! **Jobs.** Every bulk call answers with a queued job; the job is polled
//! (`GET /api/v2/job_statuses/{id}`, [`weft_http::poll_job`]) until it
//! completes, and each of its results is matched back to its record: by
//! `index` (creates), or by the Zendesk `id` the batch looked up (updates
//! and deletes, whose results carry no index). A result with `success:
//! false` (status `Failed`) is that record's reject, with Zendesk's `error`
//! and `details`; a job that ends `failed` or `killed` fails the whole
//! batch. One path (`run_job`, `job_outcomes`) serves every call.
//!
//! **Mirror deletes** (the config's `mirror`) carry only the record's key,
//! so in mirror mode **the sync's primary key must map to the identity**:
//! `email` for users, `external_id` for organizations (checked by
//! [`SyncTarget::check`]). Kinds: `suspend` (users; `suspended: true` in
//! the same `create_or_update_many` call), `delete` (organizations;
//! `DELETE organizations/destroy_many?ids=...`), `tag` (`PUT
//! /api/v2/{users|organizations}/{id}/tags`, Zendesk's *add tags*, which
//! keeps the record's other tags; users are found with `users/search`), and
//! `field` (one field set, through the same call as updates). A record the
//! mirror would delete that Zendesk no longer has is acknowledged: there is
//! nothing left to remove. A kind the object does not offer is refused at
//! config check.
//!
//! Jobs are resumable. Right after a bulk call answers with its job id, and
//! before polling, the job is journaled with the records it carries
//! ([`SyncTarget::apply_journaled`]; for a job whose results come by id, the
//! journaled reference also carries those ids, `{job}#ids=1,2`); a run
//! killed while the job runs leaves it pending, and the next run polls the
//! same job ([`SyncTarget::resume_job`]) and maps its results to the
//! journaled records, without sending them again. A job Zendesk no longer
//! knows (`404`: job statuses expire after about an hour) or that ended
//! `failed`/`killed` cannot be resumed: its records are planned and sent
//! again, which the lookups and upserts make safe. Tag additions answer at
//! once and are safe to repeat.
//!
//! `update_only` and `create_only` are not offered: `create_or_update_many`
//! cannot be told to do only one of the two, and Zendesk reports which it
//! did only afterwards. A sync in either mode is refused at config check.

mod organizations;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};
use weft_core::{
    BoxError, CancellationToken, NoJournal, PendingJob, PlannedRequest, RecordOutcome,
    StreamMetrics, SyncAction, SyncJournal, SyncRecord, SyncSpec, SyncTarget, SyncWriteMode,
};
use weft_http::{BudgetRegistry, HttpError, JobPoll, PollPolicy, RequestSpec, poll_job};

use crate::client::ZendeskClient;
use crate::{ZendeskConfig, ZendeskError, ZendeskMirror, ZendeskObject};

/// Users per `create_or_update_many` call, Zendesk's documented maximum.
pub const MAX_USERS_PER_CALL: usize = 100;

/// Organizations per `show_many`, `create_many`, `update_many` and
/// `destroy_many` call, Zendesk's documented maximum.
pub const MAX_ORGANIZATIONS_PER_CALL: usize = 100;

/// The reject reason of a record the job's results do not mention.
pub const NO_RESULT: &str = "no result from Zendesk's job for this record";

/// Separates a job id from the record ids its results are matched by, in a
/// journaled job reference (Zendesk job ids are hex).
const IDS_MARK: &str = "#ids=";

/// `{"job_status": {...}}`, as both job endpoints answer.
#[derive(Debug, Deserialize)]
pub(crate) struct JobEnvelope {
    pub(crate) job_status: JobStatus,
}

/// A Zendesk background job.
#[derive(Debug, Deserialize)]
pub(crate) struct JobStatus {
    pub(crate) id: String,
    /// `queued`, `working`, `completed`, `failed` or `killed`.
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) results: Option<Vec<JobResult>>,
}

/// One record's result in a completed job.
#[derive(Debug, Deserialize)]
pub(crate) struct JobResult {
    #[serde(default)]
    pub(crate) index: Option<usize>,
    #[serde(default)]
    pub(crate) id: Option<u64>,
    #[serde(default)]
    pub(crate) success: Option<bool>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) details: Option<String>,
}

/// One outcome per record of a batch; `None` until something answers for it.
type Slots = Vec<Option<Result<(), String>>>;

/// A bulk write Zendesk answers with a job, and how its results map back.
struct JobCall {
    request: RequestSpec,
    /// Positions (in the batch) of the records the call carries, in its order.
    slots: Vec<usize>,
    /// The Zendesk ids of those records, when the job's results name them by
    /// id (`update_many`, `destroy_many`); `None`: by index only.
    ids: Option<Vec<u64>>,
}

/// What one batch sends, once looked up.
struct Plan {
    /// Outcomes known before sending: local rejects, and mirror deletes of
    /// records Zendesk does not have.
    outcomes: Slots,
    /// The bulk calls, in the order they are sent.
    jobs: Vec<JobCall>,
    /// Mirror deletes of kind `tag`: (position, Zendesk id).
    tags: Vec<(usize, u64)>,
}

/// Zendesk users or organizations as a reverse-sync destination.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let mut config = weft_zendesk::ZendeskConfig::new(
///     "acme",
///     "agent@acme.example",
///     SecretRef::Env { env: "ZENDESK_API_TOKEN".into() },
/// );
/// config.sync_object = weft_zendesk::ZendeskObject::Organizations;
/// config.mirror = Some(weft_zendesk::ZendeskMirror::Tag { tags: vec!["churned".into()] });
/// let target = weft_zendesk::ZendeskTarget::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
pub struct ZendeskTarget {
    client: ZendeskClient,
    poll: PollPolicy,
    metrics: Arc<StreamMetrics>,
    object: ZendeskObject,
    mirror: ZendeskMirror,
}

impl ZendeskTarget {
    /// A target for the account of `config`, sharing its budget in
    /// `budgets`, writing `config.sync_object`.
    pub fn new(
        config: &ZendeskConfig,
        budgets: &BudgetRegistry,
    ) -> Result<ZendeskTarget, ZendeskError> {
        Ok(ZendeskTarget {
            client: ZendeskClient::new(config, budgets)?,
            poll: PollPolicy::default(),
            metrics: Arc::new(StreamMetrics::default()),
            object: config.sync_object,
            mirror: config.mirror_action(),
        })
    }

    /// Polls jobs with `policy` instead of the default (250 ms doubling to
    /// 5 s, at most 10 minutes).
    pub fn with_poll_policy(mut self, policy: PollPolicy) -> ZendeskTarget {
        self.poll = policy;
        self
    }

    /// Requests, retries and waits of this target's calls so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.metrics
    }

    /// The completed job `id`, polled until done.
    async fn finished(&self, id: &str) -> Result<JobStatus, HttpError> {
        let what = format!("zendesk job {id}");
        poll_job(&what, self.poll, &CancellationToken::new(), || async {
            let job = self.client.job_status(id, &self.metrics).await?;
            Ok(match job.status.as_str() {
                "completed" | "failed" | "killed" => JobPoll::Done(job),
                _ => JobPoll::Pending,
            })
        })
        .await
    }

    /// Sends `call`, journals its job with the records it carries, waits
    /// for the job and answers one outcome per record of the call.
    async fn run_job(
        &self,
        call: &JobCall,
        records: &[SyncRecord],
        journal: &dyn SyncJournal,
    ) -> Result<Slots, BoxError> {
        let queued = self.client.submit_job(&call.request, &self.metrics).await?;
        let carried: Vec<SyncRecord> = call.slots.iter().map(|&i| records[i].clone()).collect();
        journal
            .submitted(&job_reference(&queued.id, call.ids.as_deref()), &carried)
            .await?;
        let job = self
            .finished(&queued.id)
            .await
            .map_err(ZendeskError::from)?;
        Ok(job_outcomes(job, call.slots.len(), call.ids.as_deref())?)
    }

    /// Users: one `create_or_update_many` call per 100 users (mirror
    /// deletes of kind suspend or field among them); deletes of kind tag
    /// are looked up by email.
    async fn plan_users(&self, records: &[SyncRecord]) -> Result<Plan, BoxError> {
        let mut outcomes: Slots = vec![None; records.len()];
        let mut sent: Vec<(usize, Value)> = Vec::new();
        let mut tags = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match users::write(record, &self.mirror) {
                Ok(users::Write::Send(user)) => sent.push((i, user)),
                Ok(users::Write::Tag(email)) => {
                    match self.client.user_id_by_email(&email, &self.metrics).await? {
                        Some(id) => tags.push((i, id)),
                        None => outcomes[i] = Some(Ok(())),
                    }
                }
                Err(reason) => outcomes[i] = Some(Err(reason)),
            }
        }
        let jobs = sent
            .chunks(MAX_USERS_PER_CALL)
            .map(|chunk| JobCall {
                request: ZendeskClient::users_upsert(
                    chunk.iter().map(|(_, u)| u.clone()).collect(),
                ),
                slots: chunk.iter().map(|&(i, _)| i).collect(),
                ids: None,
            })
            .collect();
        Ok(Plan {
            outcomes,
            jobs,
            tags,
        })
    }

    /// Organizations: looked up by external id, then `create_many` for the
    /// ones Zendesk lacks and `update_many` (by id) for the others; mirror
    /// deletes become `destroy_many`, a field in `update_many`, or tags.
    async fn plan_organizations(&self, records: &[SyncRecord]) -> Result<Plan, BoxError> {
        let mut outcomes: Slots = vec![None; records.len()];
        let mut wanted: Vec<(usize, String)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match organizations::external_id(record) {
                Ok(id) => wanted.push((i, id)),
                Err(reason) => outcomes[i] = Some(Err(reason)),
            }
        }
        let mut found: HashMap<String, u64> = HashMap::new();
        for chunk in wanted.chunks(MAX_ORGANIZATIONS_PER_CALL) {
            let external: Vec<String> = chunk.iter().map(|(_, e)| e.clone()).collect();
            for (external_id, id) in self
                .client
                .organizations_by_external_id(&external, &self.metrics)
                .await?
            {
                found.insert(external_id.to_lowercase(), id);
            }
        }
        let mut creates: Vec<(usize, Value)> = Vec::new();
        let mut updates: Vec<(usize, u64, Value)> = Vec::new();
        let mut destroys: Vec<(usize, u64)> = Vec::new();
        let mut tags = Vec::new();
        for (i, external_id) in wanted {
            let record = &records[i];
            let id = found.get(&external_id.to_lowercase()).copied();
            match (record.action, id) {
                (SyncAction::Delete, None) => outcomes[i] = Some(Ok(())),
                (SyncAction::Delete, Some(id)) => match &self.mirror {
                    ZendeskMirror::Delete => destroys.push((i, id)),
                    ZendeskMirror::Tag { .. } => tags.push((i, id)),
                    ZendeskMirror::Field { field, value } => {
                        let mut org = Map::new();
                        org.insert("id".into(), Value::from(id));
                        set_field(&mut org, organizations::CUSTOM, field, value.clone());
                        updates.push((i, id, Value::Object(org)));
                    }
                    ZendeskMirror::Suspend => {
                        outcomes[i] = Some(Err(
                            "mirror kind `suspend` is not available for Zendesk organizations"
                                .into(),
                        ));
                    }
                },
                (_, None) => creates.push((i, organizations::body(record, &external_id))),
                (_, Some(id)) => {
                    let mut org = organizations::body(record, &external_id);
                    if let Value::Object(fields) = &mut org {
                        fields.insert("id".into(), Value::from(id));
                    }
                    updates.push((i, id, org));
                }
            }
        }
        let mut jobs = Vec::new();
        for chunk in creates.chunks(MAX_ORGANIZATIONS_PER_CALL) {
            jobs.push(JobCall {
                request: ZendeskClient::organizations_create(
                    chunk.iter().map(|(_, o)| o.clone()).collect(),
                ),
                slots: chunk.iter().map(|&(i, _)| i).collect(),
                ids: None,
            });
        }
        for chunk in updates.chunks(MAX_ORGANIZATIONS_PER_CALL) {
            jobs.push(JobCall {
                request: ZendeskClient::organizations_update(
                    chunk.iter().map(|(_, _, o)| o.clone()).collect(),
                ),
                slots: chunk.iter().map(|&(i, _, _)| i).collect(),
                ids: Some(chunk.iter().map(|&(_, id, _)| id).collect()),
            });
        }
        for chunk in destroys.chunks(MAX_ORGANIZATIONS_PER_CALL) {
            let ids: Vec<u64> = chunk.iter().map(|&(_, id)| id).collect();
            jobs.push(JobCall {
                request: ZendeskClient::organizations_destroy(&ids),
                slots: chunk.iter().map(|&(i, _)| i).collect(),
                ids: Some(ids),
            });
        }
        Ok(Plan {
            outcomes,
            jobs,
            tags,
        })
    }

    /// The identity field of the object (`email`, `external_id`).
    fn identity(&self) -> &'static str {
        match self.object {
            ZendeskObject::Users => "email",
            ZendeskObject::Organizations => "external_id",
        }
    }

    /// The mirror kinds the object offers.
    fn mirror_kinds(&self) -> &'static [&'static str] {
        match self.object {
            ZendeskObject::Users => &["suspend", "tag", "field"],
            ZendeskObject::Organizations => &["delete", "tag", "field"],
        }
    }
}

/// Inserts destination field `name` = `value` into `object`: a
/// `{custom}.KEY` field nested under `custom` (null kept: it clears the
/// field), any other field as is (null left out).
fn set_field(object: &mut Map<String, Value>, custom: &str, name: &str, value: Value) {
    if let Some(key) = name.strip_prefix(custom).and_then(|r| r.strip_prefix('.')) {
        let nested = object
            .entry(custom.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(nested) = nested {
            nested.insert(key.to_string(), value);
        }
    } else if !value.is_null() {
        object.insert(name.to_string(), value);
    }
}

/// The journaled reference of job `id`: the id, and the record ids its
/// results are matched by when they come by id.
fn job_reference(id: &str, ids: Option<&[u64]>) -> String {
    match ids {
        None => id.to_string(),
        Some(ids) => {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            format!("{id}{IDS_MARK}{}", ids.join(","))
        }
    }
}

/// A journaled reference split into the job id and the record ids (`None`
/// for a job whose results come by index, as every users job's do).
fn parse_reference(reference: &str) -> (&str, Option<Vec<u64>>) {
    match reference.split_once(IDS_MARK) {
        None => (reference, None),
        Some((id, ids)) => (
            id,
            Some(
                ids.split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect(),
            ),
        ),
    }
}

/// The outcome of each of the `len` records of a finished job's call, by
/// position in the call: a result's `index`, else (for calls whose results
/// name records by id) the position of its `id` in `ids`; `None` where the
/// job's results do not mention the position. A result with `success:
/// false` or status `Failed` is a reject with Zendesk's reason, and a
/// failure for a position wins over a success. A job that did not complete
/// is an error.
fn job_outcomes(job: JobStatus, len: usize, ids: Option<&[u64]>) -> Result<Slots, ZendeskError> {
    if job.status != "completed" {
        return Err(ZendeskError::Job {
            job: job.id,
            status: job.status,
            message: job.message.unwrap_or_default(),
        });
    }
    let mut out: Slots = vec![None; len];
    for r in job.results.unwrap_or_default() {
        let position = r.index.filter(|&n| n < len).or_else(|| {
            let id = r.id?;
            ids?.iter().position(|&x| x == id)
        });
        let Some(slot) = position.and_then(|n| out.get_mut(n)) else {
            continue;
        };
        let failed = r.success == Some(false)
            || r.status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("failed"));
        let outcome = if failed { Err(reason(&r)) } else { Ok(()) };
        if !matches!(slot, Some(Err(_))) {
            *slot = Some(outcome);
        }
    }
    Ok(out)
}

/// Checks one destination field name of `object`.
fn check_field(object: ZendeskObject, name: &str) -> Result<(), String> {
    let (fields, custom): (&[&str], &str) = match object {
        ZendeskObject::Users => (&users::FIELDS, users::CUSTOM),
        ZendeskObject::Organizations => (&organizations::FIELDS, organizations::CUSTOM),
    };
    match name.strip_prefix(custom).and_then(|r| r.strip_prefix('.')) {
        Some(key) if !key.is_empty() => Ok(()),
        _ if fields.contains(&name) => Ok(()),
        _ => Err(format!(
            "`{name}` is not a Zendesk {} field (use {} or {custom}.KEY)",
            match object {
                ZendeskObject::Users => "user",
                ZendeskObject::Organizations => "organization",
            },
            fields.join(", ")
        )),
    }
}

/// Zendesk's reason for a failed result.
fn reason(r: &JobResult) -> String {
    match (r.error.as_deref(), r.details.as_deref()) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => "rejected by Zendesk".to_string(),
    }
}

/// A tag addition Zendesk refused for this record alone (a 4xx other than
/// authentication, permission and rate limits) is its reject; anything
/// else fails the batch.
fn tag_outcome(result: Result<(), HttpError>) -> Result<Result<(), String>, ZendeskError> {
    weft_http::split_reject(result, |e| {
        e.status()
            .is_some_and(|s| (400..500).contains(&s) && ![401, 403, 429].contains(&s))
            .then(|| e.to_string())
    })
    .map_err(ZendeskError::from)
}

#[async_trait]
impl SyncTarget for ZendeskTarget {
    fn name(&self) -> &str {
        "zendesk"
    }

    fn required_fields(&self) -> Vec<String> {
        vec![self.identity().into()]
    }

    fn max_batch(&self) -> usize {
        match self.object {
            ZendeskObject::Users => MAX_USERS_PER_CALL,
            ZendeskObject::Organizations => MAX_ORGANIZATIONS_PER_CALL,
        }
    }

    fn modes(&self) -> &'static [SyncWriteMode] {
        &[SyncWriteMode::Upsert, SyncWriteMode::Mirror]
    }

    fn preview(&self, _mode: SyncWriteMode, records: &[SyncRecord]) -> Vec<PlannedRequest> {
        let poll = PlannedRequest {
            method: "GET".into(),
            path: "api/v2/job_statuses/{job id}.json (until completed)".into(),
            body: Value::Null,
        };
        let tag_requests = |what: &str, lookup: Option<PlannedRequest>| {
            let mut out: Vec<PlannedRequest> = lookup.into_iter().collect();
            if let ZendeskMirror::Tag { tags } = &self.mirror {
                out.push(
                    ZendeskClient::add_tags(self.object, &format!("{{{what} id}}"), tags).planned(),
                );
            }
            out
        };
        let mut out = Vec::new();
        match self.object {
            ZendeskObject::Users => {
                let mut sent = Vec::new();
                let mut tagged = Vec::new();
                for r in records {
                    match users::write(r, &self.mirror) {
                        Ok(users::Write::Send(u)) => sent.push(u),
                        Ok(users::Write::Tag(email)) => tagged.push(email),
                        Err(_) => {}
                    }
                }
                if !sent.is_empty() {
                    out.push(ZendeskClient::users_upsert(sent).planned());
                    out.push(poll.clone());
                }
                for email in tagged {
                    out.extend(tag_requests(
                        "user",
                        Some(ZendeskClient::users_search(&email).planned()),
                    ));
                }
            }
            ZendeskObject::Organizations => {
                let mut external = Vec::new();
                let mut upserts = Vec::new();
                let mut deletes = 0usize;
                for r in records {
                    let Ok(id) = organizations::external_id(r) else {
                        continue;
                    };
                    if r.action == SyncAction::Delete {
                        deletes += 1;
                    } else {
                        upserts.push(organizations::body(r, &id));
                    }
                    external.push(id);
                }
                if external.is_empty() {
                    return out;
                }
                out.push(ZendeskClient::organizations_show(&external).planned());
                if !upserts.is_empty() {
                    let mut create = ZendeskClient::organizations_create(upserts.clone()).planned();
                    create.path.push_str(" (the ones not found)");
                    out.push(create);
                    let mut update = ZendeskClient::organizations_update(upserts).planned();
                    update.path.push_str(" (the ones found, each with its id)");
                    out.push(update);
                }
                if deletes > 0 {
                    match &self.mirror {
                        ZendeskMirror::Delete => {
                            let mut destroy = ZendeskClient::organizations_destroy(&[]).planned();
                            destroy.path.push_str("{ids of the ones found}");
                            out.push(destroy);
                        }
                        ZendeskMirror::Field { field, value } => {
                            let mut org = Map::new();
                            org.insert("id".into(), Value::from("{id}"));
                            set_field(&mut org, organizations::CUSTOM, field, value.clone());
                            let mut update =
                                ZendeskClient::organizations_update(vec![Value::Object(org)])
                                    .planned();
                            update.path.push_str(" (each deleted one found)");
                            out.push(update);
                        }
                        _ => out.extend(tag_requests("organization", None)),
                    }
                }
                out.push(poll);
            }
        }
        out
    }

    fn check(&self, spec: &SyncSpec) -> Result<(), BoxError> {
        let err = |reason: String| ZendeskError::Sync {
            sync: spec.name.clone(),
            reason,
        };
        for name in spec.mapping.keys() {
            check_field(self.object, name).map_err(err)?;
        }
        let object = self.object.as_str();
        let kind = self.mirror.kind();
        if !self.mirror_kinds().contains(&kind) {
            return Err(Box::new(err(format!(
                "mirror kind `{kind}` is not available for {object} (use {})",
                self.mirror_kinds().join(", ")
            ))));
        }
        if let ZendeskMirror::Field { field, .. } = &self.mirror {
            check_field(self.object, field).map_err(|e| err(format!("mirror field: {e}")))?;
            if field == self.identity() {
                return Err(Box::new(err(format!(
                    "mirror field `{field}` is how Zendesk finds {object}; it cannot be the \
                     field a delete sets"
                ))));
            }
        }
        let identity = self.identity();
        if spec.mode == SyncWriteMode::Mirror
            && spec.mapping.get(identity) != Some(&spec.primary_key)
        {
            return Err(Box::new(err(format!(
                "mode `mirror` finds {object} by the sync's key, so `{identity}` must be mapped \
                 from the primary key `{}`",
                spec.primary_key
            ))));
        }
        Ok(())
    }

    /// Sends the records in calls of at most 100 and waits for each call's
    /// job. A failed call or job fails the whole batch: nothing is
    /// acknowledged, and the writes are safe to send again.
    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        self.apply_journaled(mode, records, &NoJournal).await
    }

    /// As `apply`, journaling each call's job (with the records it
    /// carries, in the call's order) as soon as Zendesk answers with its
    /// id, before polling it.
    async fn apply_journaled(
        &self,
        _mode: SyncWriteMode,
        records: Vec<SyncRecord>,
        journal: &dyn SyncJournal,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let mut plan = match self.object {
            ZendeskObject::Users => self.plan_users(&records).await?,
            ZendeskObject::Organizations => self.plan_organizations(&records).await?,
        };
        for call in &plan.jobs {
            let outcomes = self.run_job(call, &records, journal).await?;
            for (&i, outcome) in call.slots.iter().zip(outcomes) {
                if outcome.is_some() {
                    plan.outcomes[i] = outcome;
                }
            }
        }
        if let ZendeskMirror::Tag { tags } = &self.mirror {
            for &(i, id) in &plan.tags {
                let added = self
                    .client
                    .add_tags_to(self.object, id, tags, &self.metrics)
                    .await;
                plan.outcomes[i] = Some(tag_outcome(added)?);
            }
        }
        Ok(records
            .into_iter()
            .zip(plan.outcomes)
            .map(|(record, result)| RecordOutcome {
                key: record.key,
                result: result.unwrap_or_else(|| Err(NO_RESULT.into())),
            })
            .collect())
    }

    /// Polls the journaled job and maps its results (by index, or by the
    /// journaled ids) to the journaled records. A job Zendesk no longer
    /// knows (404) or that ended `failed`/`killed` answers `None`: its
    /// records are sent again.
    async fn resume_job(&self, job: &PendingJob) -> Result<Option<Vec<RecordOutcome>>, BoxError> {
        let (id, ids) = parse_reference(&job.job);
        let status = match self.finished(id).await {
            Ok(status) => status,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(Box::new(ZendeskError::from(e))),
        };
        if status.status != "completed" {
            // Nothing to read back (the engine logs the job as not resumed).
            return Ok(None);
        }
        let outcomes = job_outcomes(status, job.records.len(), ids.as_deref())?;
        Ok(Some(
            job.records
                .iter()
                .zip(outcomes)
                .map(|(record, result)| RecordOutcome {
                    key: record.key.clone(),
                    result: result.unwrap_or_else(|| Err(NO_RESULT.into())),
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_named() {
        assert!(check_field(ZendeskObject::Users, "user_fields.plan").is_ok());
        assert!(check_field(ZendeskObject::Users, "suspended").is_ok());
        let e = check_field(ZendeskObject::Users, "nickname").unwrap_err();
        assert!(
            e.starts_with("`nickname` is not a Zendesk user field"),
            "{e}"
        );
        assert!(check_field(ZendeskObject::Users, "user_fields.").is_err());
        assert!(check_field(ZendeskObject::Organizations, "organization_fields.tier").is_ok());
        assert!(check_field(ZendeskObject::Organizations, "domain_names").is_ok());
        let e = check_field(ZendeskObject::Organizations, "email").unwrap_err();
        assert!(
            e.starts_with("`email` is not a Zendesk organization field"),
            "{e}"
        );
        assert!(check_field(ZendeskObject::Organizations, "user_fields.plan").is_err());
    }

    #[test]
    fn results_map_by_index_else_by_id_and_references_round_trip() {
        let job: JobStatus = serde_json::from_value(json!({
            "id": "j", "status": "completed", "results": [
                {"id": 22, "action": "update", "status": "Updated", "success": true},
                {"id": 11, "action": "update", "success": false,
                 "error": "InvalidValue", "details": "Name: is too long"},
                {"id": 99, "action": "update", "status": "Updated", "success": true},
            ]
        }))
        .unwrap();
        let out = job_outcomes(job, 3, Some(&[11, 22, 33])).unwrap();
        assert_eq!(
            out,
            vec![
                Some(Err("InvalidValue: Name: is too long".into())),
                Some(Ok(())),
                None
            ]
        );
        let reference = job_reference("abc", Some(&[11, 22, 33]));
        assert_eq!(reference, "abc#ids=11,22,33");
        assert_eq!(parse_reference(&reference), ("abc", Some(vec![11, 22, 33])));
        assert_eq!(parse_reference("abc"), ("abc", None));
        assert_eq!(job_reference("abc", None), "abc");
    }

    #[test]
    fn custom_fields_nest_and_keep_nulls() {
        let mut o = Map::new();
        set_field(&mut o, "user_fields", "user_fields.plan", Value::Null);
        set_field(&mut o, "user_fields", "phone", Value::Null);
        set_field(&mut o, "user_fields", "notes", json!("n"));
        assert_eq!(
            Value::Object(o),
            json!({"user_fields": {"plan": null}, "notes": "n"})
        );
    }
}
