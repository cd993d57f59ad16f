//! Mailchimp list members pass the shared sync-target suite, and the suite
//! fails deliberately broken versions of the target on the check each flaw
//! breaks; the source's `list_members` stream passes the shared source suite
//! (incremental), and fails it when its saved state is ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_conformance::sync_target::{Held, SyncCapabilities, SyncEnv, SyncHarness};
use weft_conformance::{Check, Outcome};
use weft_core::{
    BoxError, EventStream, ReadRequest, RecordOutcome, Source, StreamSpec, SyncRecord, SyncTarget,
    SyncWriteMode,
};
use weft_http::HttpSettings;
use weft_mailchimp::{MAX_MEMBERS_PER_CALL, MailchimpConfig, MailchimpSource, MailchimpTarget};
use weft_sandbox::{Api, Control, DEFAULT_MAILCHIMP_KEY, RecordedWrite, SandboxConfig};

/// One deliberate defect of a wrapped target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Acknowledges updates without sending them.
    DropsUpdates,
    /// Turns rejects into acknowledgements.
    AcksRejects,
    /// Acknowledges every record of a batch that failed.
    AcksFailedBatches,
    /// Puts the API key into its batch errors.
    LeaksSecret,
    /// Sends every mode as an upsert.
    IgnoresMode,
    /// Declares `mirror` but never sends deletes.
    SkipsDeletes,
}

struct Flawed {
    inner: MailchimpTarget,
    flaw: Option<Flaw>,
}

#[async_trait]
impl SyncTarget for Flawed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn required_fields(&self) -> Vec<String> {
        self.inner.required_fields()
    }
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }
    fn modes(&self) -> &'static [SyncWriteMode] {
        self.inner.modes()
    }
    fn check(&self, spec: &weft_core::SyncSpec) -> Result<(), BoxError> {
        self.inner.check(spec)
    }
    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let ack_all = |records: &[SyncRecord]| {
            records
                .iter()
                .map(|r| RecordOutcome {
                    key: r.key.clone(),
                    result: Ok(()),
                })
                .collect::<Vec<_>>()
        };
        let mode = if self.flaw == Some(Flaw::IgnoresMode) {
            SyncWriteMode::Upsert
        } else {
            mode
        };
        match self.flaw {
            Some(Flaw::DropsUpdates)
                if records
                    .iter()
                    .all(|r| r.action == weft_core::SyncAction::Update) =>
            {
                return Ok(ack_all(&records));
            }
            Some(Flaw::SkipsDeletes)
                if records
                    .iter()
                    .all(|r| r.action == weft_core::SyncAction::Delete) =>
            {
                return Ok(ack_all(&records));
            }
            _ => {}
        }
        match self.inner.apply(mode, records.clone()).await {
            Ok(outcomes) if self.flaw == Some(Flaw::AcksRejects) => Ok(outcomes
                .into_iter()
                .map(|o| RecordOutcome {
                    key: o.key,
                    result: Ok(()),
                })
                .collect()),
            Ok(outcomes) => Ok(outcomes),
            Err(_) if self.flaw == Some(Flaw::AcksFailedBatches) => Ok(ack_all(&records)),
            Err(e) if self.flaw == Some(Flaw::LeaksSecret) => {
                Err(format!("{e} (key {DEFAULT_MAILCHIMP_KEY})").into())
            }
            Err(e) => Err(e),
        }
    }
}

struct Harness {
    flaw: Option<Flaw>,
    per_call_limit: usize,
    /// Attempts per request (1: a fault fails its batch).
    attempts: u32,
}

fn harness(flaw: Option<Flaw>) -> Harness {
    Harness {
        flaw,
        per_call_limit: MAX_MEMBERS_PER_CALL,
        attempts: 8,
    }
}

#[async_trait]
impl SyncHarness for Harness {
    fn capabilities(&self) -> SyncCapabilities {
        SyncCapabilities {
            api: Api::Mailchimp,
            sandbox: SandboxConfig {
                size: 20,
                ..SandboxConfig::default()
            },
            per_call_limit: self.per_call_limit,
            secrets: vec![DEFAULT_MAILCHIMP_KEY.to_string()],
            mapping: BTreeMap::from([
                ("email_address".to_string(), "key".to_string()),
                ("merge_fields.FNAME".to_string(), "name".to_string()),
            ]),
        }
    }

    async fn build(&self, env: &SyncEnv<'_>) -> Result<Arc<dyn SyncTarget>, BoxError> {
        let list = env.sandbox.control().mailchimp_list_id();
        let mut config =
            MailchimpConfig::new(weft_conformance::secret_file(DEFAULT_MAILCHIMP_KEY)?, list);
        config.base_url = Some(format!("{}/3.0", env.sandbox.base_url(Api::Mailchimp)));
        config.http = Some(HttpSettings {
            max_attempts: self.attempts,
            ..weft_conformance::sync_target::fast_retries()
        });
        let inner = MailchimpTarget::new(&config, env.budgets)?;
        Ok(Arc::new(Flawed {
            inner,
            flaw: self.flaw,
        }))
    }

    fn held(
        &self,
        control: &Control,
        emails: &[String],
    ) -> Result<BTreeMap<String, Held>, BoxError> {
        let members = control.mailchimp_members(&control.mailchimp_list_id());
        let mut out = BTreeMap::new();
        for m in members {
            let email = m["email_address"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            if !emails.contains(&email) {
                continue;
            }
            let name = m["merge_fields"]["FNAME"].as_str().map(str::to_string);
            let active = m["status"].as_str() == Some("subscribed");
            out.insert(email, Held { name, active });
        }
        Ok(out)
    }

    fn records_in(&self, write: &RecordedWrite) -> Option<usize> {
        if write.method != "POST" || !write.path.starts_with("/3.0/lists/") {
            return None;
        }
        let body: Value = serde_json::from_str(&write.body).ok()?;
        body.get("members").and_then(Value::as_array).map(Vec::len)
    }
}

#[tokio::test]
async fn mailchimp_passes_the_sync_target_suite() {
    let report = weft_conformance::sync_target::run_suite(&harness(None)).await;
    report.assert_passed();
    assert!(
        report.checks.iter().all(|c| c.outcome == Outcome::Passed),
        "{report}"
    );
}

/// Each flaw fails its check (and the suite names it).
#[tokio::test]
async fn the_suite_fails_each_broken_target_on_its_check() {
    let cases = [
        (Flaw::DropsUpdates, Check::SyncLifecycle),
        (Flaw::SkipsDeletes, Check::SyncLifecycle),
        (Flaw::AcksRejects, Check::SyncRejectRetried),
        (Flaw::AcksFailedBatches, Check::SyncFaultStorm),
        (Flaw::AcksFailedBatches, Check::SyncAuthFailure),
        (Flaw::LeaksSecret, Check::SyncAuthFailure),
        (Flaw::IgnoresMode, Check::SyncModes),
    ];
    for (flaw, check) in cases {
        let mut h = harness(Some(flaw));
        if flaw == Flaw::AcksFailedBatches {
            // Without retries the storm fails batches, which this flaw acknowledges.
            h.attempts = 1;
        }
        let report = weft_conformance::sync_target::run_suite(&h).await;
        assert!(
            report.failed().contains(&check),
            "{flaw:?} should fail {check}:\n{report}"
        );
    }
    // A harness declaring a smaller per-call limit than the target sends.
    let report = weft_conformance::sync_target::run_suite(&Harness {
        per_call_limit: 100,
        ..harness(None)
    })
    .await;
    assert_eq!(report.failed(), vec![Check::SyncBatchLimit], "{report}");
}

/// Members per page in the source suite.
const SOURCE_PAGE: u32 = 4;

/// The members of every audience (one list in the sandbox, 30 members, 4
/// per page), read incrementally on `last_changed`.
struct Members {
    /// A broken source: drops the saved state (every read starts over).
    ignores_state: bool,
}

/// A source that reads every stream from the start whatever state it is given.
struct IgnoresState(MailchimpSource);

#[async_trait]
impl Source for IgnoresState {
    fn connector(&self) -> &str {
        self.0.connector()
    }
    fn streams(&self) -> Vec<StreamSpec> {
        self.0.streams()
    }
    async fn check(&self) -> Result<(), BoxError> {
        self.0.check().await
    }
    fn read(&self, mut request: ReadRequest) -> EventStream<'_> {
        request.state = None;
        self.0.read(request)
    }
}

#[async_trait]
impl SourceHarness for Members {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Mailchimp,
            stream: "list_members".into(),
            incremental: true,
            page_size: SOURCE_PAGE as usize,
            secrets: vec![DEFAULT_MAILCHIMP_KEY.into()],
            sandbox: SandboxConfig {
                mailchimp_members: 30,
                ..SandboxConfig::default()
            },
        }
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let mut config =
            MailchimpConfig::source(weft_conformance::secret_file(DEFAULT_MAILCHIMP_KEY)?);
        config.base_url = Some(format!("{}/3.0", env.sandbox.base_url(Api::Mailchimp)));
        config.page_size = SOURCE_PAGE;
        config.requests_per_second = Some(env.requests_per_second);
        config.http = Some(HttpSettings {
            initial_backoff_ms: 10,
            max_backoff_ms: 100,
            ..HttpSettings::default()
        });
        let source = MailchimpSource::new(&config, env.budgets)?;
        Ok(if self.ignores_state {
            Box::new(IgnoresState(source))
        } else {
            Box::new(source)
        })
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        let list = control.mailchimp_list_id();
        Ok(control
            .mailchimp_member_ids(&list)
            .into_iter()
            .map(|id| format!("{list}|{id}"))
            .collect())
    }
}

#[tokio::test]
async fn mailchimp_members_pass_the_source_suite() {
    let report = weft_conformance::source::run_suite(&Members {
        ignores_state: false,
    })
    .await;
    report.assert_passed();
    let skipped: Vec<Check> = report
        .checks
        .iter()
        .filter(|c| c.outcome != Outcome::Passed)
        .map(|c| c.check)
        .collect();
    // Mailchimp lists are offset-paged, never sliced.
    assert_eq!(skipped, vec![Check::SlicedExactlyOnce], "{report}");
}

#[tokio::test]
async fn a_source_ignoring_its_state_fails_the_checkpoint_check() {
    let report = weft_conformance::source::run_suite(&Members {
        ignores_state: true,
    })
    .await;
    assert_eq!(
        report.failed(),
        vec![Check::CheckpointRoundTrip],
        "{report}"
    );
}
