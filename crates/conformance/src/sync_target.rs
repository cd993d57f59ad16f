//! Sync-target checks: what every reverse-sync destination must do.
//!
//! Each check starts a fresh [`Sandbox`] from the harness's config, builds
//! the target through [`SyncHarness::build`], and drives it with
//! [`run_sync`] from a [`MemorySyncStore`] holding the suite's model: people
//! with columns `key` (the lower-cased email, the sync's primary key),
//! `email` and `name`, mapped to the destination by
//! [`SyncCapabilities::mapping`]. It judges what the destination holds
//! afterwards ([`SyncHarness::held`], read through the sandbox's control
//! handle), the run reports, the store's snapshot, rejects and log, and the
//! write requests the sandbox recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use weft_core::{
    BoxError, CoreError, SyncOptions, SyncReport, SyncSpec, SyncTarget, SyncWriteMode, check_sync,
    run_sync,
};
use weft_http::{BudgetRegistry, HttpSettings};
use weft_sandbox::{Api, Control, Faults, RecordedWrite, RetryAfterStyle, Sandbox, SandboxConfig};

use crate::{Check, MemorySyncStore, Outcome, Report, Row};

/// The sync-target checks, in the order [`run_suite`] runs them.
pub const CHECKS: [Check; 6] = [
    Check::SyncLifecycle,
    Check::SyncRejectRetried,
    Check::SyncBatchLimit,
    Check::SyncFaultStorm,
    Check::SyncAuthFailure,
    Check::SyncModes,
];

/// The sync's name in every check.
pub const SYNC: &str = "conformance_people";
/// People in the model of most checks.
pub const PEOPLE: usize = 6;
/// People in the fault-storm check.
pub const STORM_PEOPLE: usize = 30;
/// Records per batch in the fault-storm check.
pub const STORM_BATCH: usize = 2;
/// Runs the fault-storm check allows before the destination must be exact.
/// A run stops at its first failed batch, and an API written record by
/// record fails a batch of 2 creates (not retried: not idempotent) about
/// 44% of the time under the storm, so settling takes ~15 runs there.
pub const STORM_RUNS: usize = 40;

/// What a destination declares about itself.
#[derive(Debug, Clone)]
pub struct SyncCapabilities {
    /// The sandbox API it writes to.
    pub api: Api,
    /// The sandbox the suite starts (credentials, seed).
    pub sandbox: SandboxConfig,
    /// The most records one write request to the API may carry (1 for an
    /// API written record by record).
    pub per_call_limit: usize,
    /// Credentials the target is built with; none may appear in an error or
    /// in the sync log.
    pub secrets: Vec<String>,
    /// Destination field -> model column (`email`, `name` or `key`).
    pub mapping: BTreeMap<String, String>,
}

/// The retry settings a harness builds its target with: backoffs of 1 to
/// 5 ms and a 1 ms floor under `Retry-After`, so the fault storm's 500s and
/// 429s are retried without slowing the suite (attempts as by default).
pub fn fast_retries() -> HttpSettings {
    HttpSettings {
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        min_retry_after_ms: 1,
        ..HttpSettings::default()
    }
}

/// What the suite hands to [`SyncHarness::build`].
pub struct SyncEnv<'a> {
    /// The running sandbox (`base_url(api)` for the target's base URL).
    pub sandbox: &'a Sandbox,
    /// The registry the target must take its rate budget from.
    pub budgets: &'a BudgetRegistry,
}

/// One person as the destination holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The name the destination holds (from the mapped `name` column).
    pub name: Option<String>,
    /// False once a mirror delete removed, archived or unsubscribed them.
    pub active: bool,
}

/// How the suite builds and inspects one destination.
///
/// Contract: `build` returns a new target each call, taking its budget from
/// `env.budgets` and retrying fast (the fault storm sends 500s and 429s);
/// `held` reads the destination's current records for the given (lower-case)
/// emails from the sandbox's control handle, leaving out emails it does not
/// hold.
#[async_trait]
pub trait SyncHarness: Send + Sync {
    /// The destination's capabilities and mapping.
    fn capabilities(&self) -> SyncCapabilities;

    /// Builds the target against `env.sandbox`.
    async fn build(&self, env: &SyncEnv<'_>) -> Result<Arc<dyn SyncTarget>, BoxError>;

    /// What the destination holds for each of `emails` it has.
    fn held(
        &self,
        control: &Control,
        emails: &[String],
    ) -> Result<BTreeMap<String, Held>, BoxError>;

    /// How many records one recorded write request carried; `None` for a
    /// request that writes no records (a token, a job's upload close).
    fn records_in(&self, write: &RecordedWrite) -> Option<usize>;

    /// A model row the API rejects (columns `email`, `name`); by default an
    /// email without a domain.
    fn rejected_row(&self) -> Row {
        person_row("not-an-email", "Rejected Person")
    }

    /// Whether the destination changes what it holds for a person on an
    /// update (true by default). False for one that cannot edit a record it
    /// has (Zoom keeps a registration's details as first registered): the
    /// suite then expects updates acknowledged and the first names kept.
    fn edits(&self) -> bool {
        true
    }
}

/// Runs every sync-target check against `harness` and reports each.
///
/// Never panics; call [`Report::assert_passed`] on the result in a test.
pub async fn run_suite<H: SyncHarness + ?Sized>(harness: &H) -> Report {
    let caps = harness.capabilities();
    let mut report = Report::new(format!("{} (sync target)", caps.api));
    let suite = Suite {
        harness,
        caps: &caps,
    };
    report.record(Check::SyncLifecycle, suite.lifecycle().await);
    report.record(Check::SyncRejectRetried, suite.reject_retried().await);
    report.record(Check::SyncBatchLimit, suite.batch_limit().await);
    report.record(Check::SyncFaultStorm, suite.fault_storm().await);
    report.record(Check::SyncAuthFailure, suite.auth_failure().await);
    report.record(Check::SyncModes, suite.modes().await);
    report
}

/// A model row with the suite's columns.
pub fn person_row(email: &str, name: &str) -> Row {
    let mut row = Row::new();
    row.insert("key".into(), Value::from(email.trim().to_lowercase()));
    row.insert("email".into(), Value::from(email));
    row.insert("name".into(), Value::from(name));
    row
}

/// The email of the suite's person `i`.
pub fn email(i: usize) -> String {
    format!("conformance.person{i:04}@example.com")
}

/// What one check needs running: its sandbox, the target and the store.
struct Rig {
    sandbox: Sandbox,
    target: Arc<dyn SyncTarget>,
    store: MemorySyncStore,
}

impl Rig {
    fn control(&self) -> Control {
        self.sandbox.control()
    }
}

struct Suite<'a, H: ?Sized> {
    harness: &'a H,
    caps: &'a SyncCapabilities,
}

impl<H: SyncHarness + ?Sized> Suite<'_, H> {
    /// The mode the checks write in: `upsert`, or `mirror` for a target
    /// without it (whose updates then keep people registered rather than
    /// edit them), or `create_only`.
    fn write_mode(target: &dyn SyncTarget) -> SyncWriteMode {
        let modes = target.modes();
        [SyncWriteMode::Upsert, SyncWriteMode::Mirror]
            .into_iter()
            .find(|m| modes.contains(m))
            .unwrap_or(SyncWriteMode::CreateOnly)
    }

    fn spec(&self, mode: SyncWriteMode) -> SyncSpec {
        SyncSpec {
            name: SYNC.into(),
            model: "conformance.people".into(),
            primary_key: "key".into(),
            mode,
            mapping: self.caps.mapping.clone(),
        }
    }

    async fn rig(&self) -> Result<Rig, String> {
        let sandbox = Sandbox::start(self.caps.sandbox.clone())
            .await
            .map_err(|e| format!("the sandbox did not start: {e}"))?;
        sandbox.control().set_rate_limits(self.caps.api, false);
        let budgets = BudgetRegistry::new();
        let env = SyncEnv {
            sandbox: &sandbox,
            budgets: &budgets,
        };
        let target = self
            .harness
            .build(&env)
            .await
            .map_err(|e| format!("the target did not build: {e}"))?;
        Ok(Rig {
            sandbox,
            target,
            store: MemorySyncStore::new(),
        })
    }

    async fn sync(&self, rig: &Rig, mode: SyncWriteMode) -> Result<SyncReport, String> {
        run_sync(
            &rig.store,
            &*rig.target,
            &self.spec(mode),
            SyncOptions::default(),
        )
        .await
        .map_err(|e| format!("sync ({}) failed: {e}", mode.as_str()))
    }

    fn held(&self, rig: &Rig, emails: &[String]) -> Result<BTreeMap<String, Held>, String> {
        self.harness
            .held(&rig.control(), emails)
            .map_err(|e| format!("reading the destination failed: {e}"))
    }

    /// Fails unless the destination holds exactly `expected` (active, by
    /// name) among `emails`.
    fn expect_held(
        &self,
        rig: &Rig,
        emails: &[String],
        expected: &BTreeMap<String, String>,
        when: &str,
    ) -> Result<(), String> {
        let held = self.held(rig, emails)?;
        let active: BTreeMap<String, String> = held
            .into_iter()
            .filter(|(_, h)| h.active)
            .map(|(e, h)| (e, h.name.unwrap_or_default()))
            .collect();
        if &active == expected {
            return Ok(());
        }
        let mut wrong: Vec<String> = Vec::new();
        for (email, name) in expected {
            match active.get(email) {
                Some(n) if n == name => {}
                got => {
                    let log: Vec<String> = rig
                        .store
                        .log()
                        .iter()
                        .filter(|e| &e.key == email)
                        .map(|e| format!("{} {}", e.action, e.rejected.as_deref().unwrap_or("ok")))
                        .collect();
                    wrong.push(format!(
                        "{email}: holds {got:?}, expected {name:?} (log: {log:?})"
                    ));
                }
            }
        }
        for email in active.keys().filter(|e| !expected.contains_key(*e)) {
            wrong.push(format!("{email}: held but not expected"));
        }
        Err(format!("{when}: {}", wrong.join("; ")))
    }

    fn no_secret(&self, what: &str, text: &str) -> Result<(), String> {
        match self
            .caps
            .secrets
            .iter()
            .find(|s| !s.is_empty() && text.contains(s.as_str()))
        {
            Some(_) => Err(format!("{what} contains a credential")),
            None => Ok(()),
        }
    }

    /// Creates, an update of two names, a no-op re-run, a mirror delete.
    async fn lifecycle(&self) -> Result<Outcome, String> {
        let rig = self.rig().await?;
        let emails: Vec<String> = (0..PEOPLE).map(email).collect();
        let mut expected = BTreeMap::new();
        for (i, e) in emails.iter().enumerate() {
            let name = format!("Person {i}");
            rig.store.put(e, person_row(e, &name));
            expected.insert(e.clone(), name);
        }
        let mode = Self::write_mode(&*rig.target);
        let first = self.sync(&rig, mode).await?;
        if (first.created, first.updated, first.rejected) != (PEOPLE as u64, 0, 0) {
            return Err(format!(
                "first run: created/updated/rejected {}/{}/{}, expected {PEOPLE}/0/0",
                first.created, first.updated, first.rejected
            ));
        }
        self.expect_held(&rig, &emails, &expected, "after the first run")?;
        for i in [1, 4] {
            let name = format!("Renamed {i}");
            rig.store.put(&emails[i], person_row(&emails[i], &name));
            if self.harness.edits() {
                expected.insert(emails[i].clone(), name);
            }
        }
        let second = self.sync(&rig, mode).await?;
        if (second.created, second.updated, second.rejected) != (0, 2, 0) {
            return Err(format!(
                "after renaming 2: created/updated/rejected {}/{}/{}, expected 0/2/0",
                second.created, second.updated, second.rejected
            ));
        }
        self.expect_held(&rig, &emails, &expected, "after renaming 2")?;
        let requests = rig.control().request_count(self.caps.api);
        let third = self.sync(&rig, mode).await?;
        let sent = rig.control().request_count(self.caps.api) - requests;
        if third.batches != 0 || sent != 0 {
            return Err(format!(
                "a re-run with nothing changed sent {} batches ({sent} requests)",
                third.batches
            ));
        }
        if rig.target.modes().contains(&SyncWriteMode::Mirror) {
            rig.store.remove(&emails[2]);
            expected.remove(&emails[2]);
            let mirror = self.sync(&rig, SyncWriteMode::Mirror).await?;
            if (mirror.deleted, mirror.created, mirror.updated) != (1, 0, 0) {
                return Err(format!(
                    "mirror after removing 1: deleted/created/updated/rejected {}/{}/{}/{}, \
                     expected 1/0/0/0 (plan {:?}, rejects {:?})",
                    mirror.deleted,
                    mirror.created,
                    mirror.updated,
                    mirror.rejected,
                    mirror.plan,
                    rig.store.rejects()
                ));
            }
            self.expect_held(&rig, &emails, &expected, "after the mirror delete")?;
        }
        for entry in rig.store.log() {
            self.no_secret(
                "the sync log",
                &serde_json::to_string(&entry.fields).unwrap_or_default(),
            )?;
        }
        Ok(Outcome::Passed)
    }

    /// A rejected row is recorded with a reason, not snapshotted, planned
    /// again next run; its valid neighbours arrive.
    async fn reject_retried(&self) -> Result<Outcome, String> {
        let rig = self.rig().await?;
        let emails: Vec<String> = (0..3).map(email).collect();
        let mut expected = BTreeMap::new();
        for (i, e) in emails.iter().enumerate() {
            rig.store.put(e, person_row(e, &format!("Person {i}")));
            expected.insert(e.clone(), format!("Person {i}"));
        }
        let bad = self.harness.rejected_row();
        let bad_key = bad
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        rig.store.put(&bad_key, bad);
        let mode = Self::write_mode(&*rig.target);
        for run in 1..=2 {
            let report = self.sync(&rig, mode).await?;
            let expected_created = if run == 1 { 3 } else { 0 };
            if (report.created, report.rejected, report.plan.creates)
                != (expected_created, 1, expected_created + 1)
            {
                return Err(format!(
                    "run {run}: planned {} creates, created {}, rejected {}; expected {} / {expected_created} / 1",
                    report.plan.creates,
                    report.created,
                    report.rejected,
                    expected_created + 1
                ));
            }
        }
        let rejects = rig.store.rejects();
        match rejects.get(&bad_key) {
            Some(reason) if !reason.trim().is_empty() => {
                self.no_secret("a reject reason", reason)?
            }
            Some(_) => return Err("the reject was recorded without a reason".into()),
            None => return Err(format!("no reject recorded for {bad_key:?}: {rejects:?}")),
        }
        if rig.store.snapshot_keys().contains(&bad_key) {
            return Err("the rejected record is in the snapshot".into());
        }
        self.expect_held(&rig, &emails, &expected, "after two runs with a reject")?;
        Ok(Outcome::Passed)
    }

    /// Two and a half API calls' worth of records: every write request
    /// carries at most the limit, and every record arrives.
    async fn batch_limit(&self) -> Result<Outcome, String> {
        let rig = self.rig().await?;
        let limit = self.caps.per_call_limit.max(1);
        let n = (limit * 5 / 2).clamp(PEOPLE, 1_250);
        let emails: Vec<String> = (0..n).map(email).collect();
        let mut expected = BTreeMap::new();
        for (i, e) in emails.iter().enumerate() {
            rig.store.put(e, person_row(e, &format!("Person {i}")));
            expected.insert(e.clone(), format!("Person {i}"));
        }
        let report = self.sync(&rig, Self::write_mode(&*rig.target)).await?;
        if report.created != n as u64 {
            return Err(format!("created {} of {n}", report.created));
        }
        let sizes: Vec<usize> = rig
            .control()
            .writes(self.caps.api)
            .iter()
            .filter_map(|w| self.harness.records_in(w))
            .collect();
        if let Some(big) = sizes.iter().find(|&&s| s > limit) {
            return Err(format!(
                "a write request carried {big} records (limit {limit})"
            ));
        }
        let total: usize = sizes.iter().sum();
        if total < n {
            return Err(format!(
                "write requests carried {total} records, fewer than the {n} created"
            ));
        }
        self.expect_held(&rig, &emails, &expected, "after the large run")?;
        Ok(Outcome::Passed)
    }

    /// 500s and 429s on a share of requests: re-runs end with exactly the
    /// model at the destination, and nothing left planned.
    async fn fault_storm(&self) -> Result<Outcome, String> {
        let rig = self.rig().await?;
        let emails: Vec<String> = (0..STORM_PEOPLE).map(email).collect();
        let mut expected = BTreeMap::new();
        for (i, e) in emails.iter().enumerate() {
            rig.store.put(e, person_row(e, &format!("Person {i}")));
            expected.insert(e.clone(), format!("Person {i}"));
        }
        let storm = Faults {
            error_rate: 0.25,
            rate_limit_rate: 0.15,
            retry_after: RetryAfterStyle::Zero,
            ..Faults::default()
        };
        let mut last = String::new();
        let mut done = false;
        for round in 0..STORM_RUNS {
            rig.control().set_faults(self.caps.api, storm.clone());
            if round == 1 {
                // A renamed person mid-storm must arrive too.
                rig.store
                    .put(&emails[0], person_row(&emails[0], "Stormy Renamed"));
                if self.harness.edits() {
                    expected.insert(emails[0].clone(), "Stormy Renamed".into());
                }
            }
            // Small batches, so the storm meets many requests.
            let options = SyncOptions {
                batch_size: Some(STORM_BATCH),
                ..SyncOptions::default()
            };
            let result = run_sync(
                &rig.store,
                &*rig.target,
                &self.spec(Self::write_mode(&*rig.target)),
                options,
            )
            .await
            .map_err(|e| e.to_string());
            match result {
                Ok(r) if round > 0 && r.plan.creates + r.plan.updates == 0 => {
                    done = true;
                    break;
                }
                Ok(r) => last = format!("run {round}: {} rejected", r.rejected),
                Err(e) => {
                    self.no_secret("a sync error", &e)?;
                    last = e;
                }
            }
        }
        rig.control().set_faults(self.caps.api, Faults::default());
        if !done {
            return Err(format!(
                "the storm never settled in {STORM_RUNS} runs; last: {last}"
            ));
        }
        self.expect_held(&rig, &emails, &expected, "after the storm")?;
        Ok(Outcome::Passed)
    }

    /// Every request answered 401: the run fails as a whole with an error
    /// free of credentials, and nothing is acknowledged or rejected.
    async fn auth_failure(&self) -> Result<Outcome, String> {
        let rig = self.rig().await?;
        for i in 0..2 {
            rig.store
                .put(&email(i), person_row(&email(i), &format!("Person {i}")));
        }
        rig.control().set_faults(
            self.caps.api,
            Faults {
                bad_auth: true,
                ..Faults::default()
            },
        );
        let result = run_sync(
            &rig.store,
            &*rig.target,
            &self.spec(Self::write_mode(&*rig.target)),
            SyncOptions::default(),
        )
        .await;
        rig.control().set_faults(self.caps.api, Faults::default());
        match result {
            Ok(r) => {
                return Err(format!(
                    "the run succeeded against a destination refusing every credential \
                     (created {}, rejected {})",
                    r.created, r.rejected
                ));
            }
            Err(e @ CoreError::SyncTarget { .. }) => self.no_secret("the error", &e.to_string())?,
            Err(e) => return Err(format!("expected a failed batch, got: {e}")),
        }
        if !rig.store.snapshot_keys().is_empty() || !rig.store.rejects().is_empty() {
            return Err(format!(
                "a refused batch left acknowledged {:?} / rejected {:?}",
                rig.store.snapshot_keys(),
                rig.store.rejects()
            ));
        }
        Ok(Outcome::Passed)
    }

    /// Modes the target does not declare are refused before anything is
    /// sent; declared `create_only` / `update_only` are enforced against the
    /// destination's own records.
    async fn modes(&self) -> Result<Outcome, String> {
        let rig = self.rig().await?;
        // Building may call the API (a token, a describe); checking may not.
        let built = rig.control().request_count(self.caps.api);
        let declared = rig.target.modes();
        if !declared.contains(&SyncWriteMode::Upsert) && !declared.contains(&SyncWriteMode::Mirror)
        {
            return Err("the target declares neither `upsert` nor `mirror`".into());
        }
        let mode = Self::write_mode(&*rig.target);
        for &mode in SyncWriteMode::ALL {
            let checked = check_sync(&*rig.target, &self.spec(mode));
            match (declared.contains(&mode), checked) {
                (true, Err(e)) => {
                    return Err(format!("declared mode {} is refused: {e}", mode.as_str()));
                }
                (false, Ok(())) => {
                    return Err(format!(
                        "undeclared mode {} passes check_sync",
                        mode.as_str()
                    ));
                }
                (false, Err(CoreError::SyncMode { .. })) | (true, Ok(())) => {}
                (false, Err(e)) => {
                    return Err(format!(
                        "undeclared mode {} refused with {e}",
                        mode.as_str()
                    ));
                }
            }
        }
        let requests = rig.control().request_count(self.caps.api) - built;
        if requests != 0 {
            return Err(format!("checking modes sent {requests} requests"));
        }
        let a = email(0);
        let b = email(1);
        if declared.contains(&SyncWriteMode::CreateOnly) {
            // `a` exists at the destination (an earlier upsert from another
            // store): create_only must not change it, and creates `b`.
            let other = MemorySyncStore::new();
            other.put(&a, person_row(&a, "Original A"));
            run_sync(
                &other,
                &*rig.target,
                &self.spec(mode),
                SyncOptions::default(),
            )
            .await
            .map_err(|e| format!("seeding the destination failed: {e}"))?;
            rig.store.put(&a, person_row(&a, "Changed A"));
            rig.store.put(&b, person_row(&b, "New B"));
            let r = self.sync(&rig, SyncWriteMode::CreateOnly).await?;
            if (r.created, r.rejected) != (1, 1) {
                return Err(format!(
                    "create_only with one existing record: created {}, rejected {}; expected 1, 1",
                    r.created, r.rejected
                ));
            }
            let expected = BTreeMap::from([
                (a.clone(), "Original A".to_string()),
                (b.clone(), "New B".to_string()),
            ]);
            self.expect_held(
                &rig,
                &[a.clone(), b.clone()],
                &expected,
                "after create_only",
            )?;
        }
        if declared.contains(&SyncWriteMode::UpdateOnly) {
            // `c` is in weft's snapshot but not at the destination:
            // update_only must not create it.
            let c = email(2);
            let store = MemorySyncStore::new();
            store.seed_snapshot(&c);
            store.put(&c, person_row(&c, "Never Created"));
            let r = run_sync(
                &store,
                &*rig.target,
                &self.spec(SyncWriteMode::UpdateOnly),
                SyncOptions::default(),
            )
            .await
            .map_err(|e| format!("update_only failed: {e}"))?;
            if (r.updated, r.rejected) != (0, 1) {
                return Err(format!(
                    "update_only of a record the destination lacks: updated {}, rejected {}; expected 0, 1",
                    r.updated, r.rejected
                ));
            }
            if self.held(&rig, std::slice::from_ref(&c))?.contains_key(&c) {
                return Err("update_only created a record the destination did not have".into());
            }
        }
        Ok(Outcome::Passed)
    }
}
