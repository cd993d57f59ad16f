//! Salesforce runs the shared source acceptance suite (weft-conformance) against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{Value, json};
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{BoxError, SecretRef, Source};
use weft_http::HttpSettings;
use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceSource};
use weft_sandbox::{Api, Control, SandboxConfig};

/// Contacts through REST query pages (the sandbox's 2,000-record batches);
/// incremental on `SystemModstamp`; deleted rows (`IsDeleted`) are not live.
struct Salesforce {
    dir: PathBuf,
}

impl Salesforce {
    fn secret(&self, name: &str, value: &str) -> SecretRef {
        let file = self.dir.join(name);
        std::fs::write(&file, value).unwrap();
        SecretRef::File { file }
    }
}

#[async_trait]
impl SourceHarness for Salesforce {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Salesforce,
            stream: "Contact".into(),
            incremental: true,
            page_size: 2_000,
            secrets: vec![
                weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET.into(),
                weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN.into(),
            ],
            sandbox: SandboxConfig {
                size: 60,
                ..SandboxConfig::default()
            },
        }
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let mut config = SalesforceConfig::new(
            env.sandbox.base_url(Api::Salesforce),
            SalesforceAuth::RefreshToken {
                client_id: weft_sandbox::DEFAULT_SALESFORCE_CLIENT_ID.into(),
                client_secret: self
                    .secret("secret", weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET),
                refresh_token: self
                    .secret("refresh", weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN),
            },
        );
        config.objects = vec!["Contact".into()];
        config.settle_secs = 0;
        config.bulk_poll_ms = 1;
        config.requests_per_second = Some(env.requests_per_second);
        config.http = Some(HttpSettings {
            initial_backoff_ms: 10,
            max_backoff_ms: 100,
            ..HttpSettings::default()
        });
        Ok(Box::new(
            SalesforceSource::connect(config, env.budgets).await?,
        ))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control.salesforce_ids("Contact")?.into_iter().collect())
    }

    fn is_live(&self, record: &Value) -> bool {
        record["IsDeleted"] == json!(false)
    }
}

#[tokio::test]
async fn salesforce_passes_the_source_suite() {
    let dir = std::env::temp_dir().join(format!("weft-sf-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    weft_conformance::source::run_suite(&Salesforce { dir: dir.clone() })
        .await
        .assert_passed();
    std::fs::remove_dir_all(dir).unwrap();
}

/// Contacts as a reverse-sync destination: composite upserts by
/// `External_Id__c` (the lower-case email), mirror deletes by Id.
struct SalesforceSync;

#[async_trait]
impl weft_conformance::sync_target::SyncHarness for SalesforceSync {
    fn capabilities(&self) -> weft_conformance::sync_target::SyncCapabilities {
        weft_conformance::sync_target::SyncCapabilities {
            api: Api::Salesforce,
            sandbox: SandboxConfig {
                size: 20,
                ..SandboxConfig::default()
            },
            per_call_limit: weft_salesforce::MAX_RECORDS_PER_CALL,
            secrets: vec![
                weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET.into(),
                weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN.into(),
            ],
            mapping: [
                ("External_Id__c", "key"),
                ("Email", "email"),
                ("LastName", "name"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    async fn build(
        &self,
        env: &weft_conformance::sync_target::SyncEnv<'_>,
    ) -> Result<std::sync::Arc<dyn weft_core::SyncTarget>, BoxError> {
        let mut config = SalesforceConfig::new(
            env.sandbox.base_url(Api::Salesforce),
            SalesforceAuth::RefreshToken {
                client_id: weft_sandbox::DEFAULT_SALESFORCE_CLIENT_ID.into(),
                client_secret: weft_conformance::secret_file(
                    weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET,
                )?,
                refresh_token: weft_conformance::secret_file(
                    weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN,
                )?,
            },
        );
        config.object = Some("Contact".into());
        config.external_id_field = Some("External_Id__c".into());
        config.requests_per_second = Some(10_000.0);
        config.http = Some(weft_conformance::sync_target::fast_retries());
        Ok(std::sync::Arc::new(
            weft_salesforce::SalesforceTarget::connect(&config, env.budgets).await?,
        ))
    }

    fn held(
        &self,
        control: &Control,
        emails: &[String],
    ) -> Result<std::collections::BTreeMap<String, weft_conformance::sync_target::Held>, BoxError>
    {
        let mut held = std::collections::BTreeMap::new();
        // In first-write order: a live record wins over a deleted one with
        // the same external id (a re-create after a mirror delete).
        for contact in control.salesforce_upserted("Contact")? {
            let Some(ext) = contact["External_Id__c"].as_str().map(str::to_lowercase) else {
                continue;
            };
            if !emails.contains(&ext) {
                continue;
            }
            let h = weft_conformance::sync_target::Held {
                name: contact["LastName"].as_str().map(str::to_string),
                active: contact["IsDeleted"] != Value::Bool(true),
            };
            let keep_old = held
                .get(&ext)
                .is_some_and(|old: &weft_conformance::sync_target::Held| old.active && !h.active);
            if !keep_old {
                held.insert(ext, h);
            }
        }
        Ok(held)
    }

    fn records_in(&self, write: &weft_sandbox::RecordedWrite) -> Option<usize> {
        if write.method != "PATCH" || !write.path.contains("/composite/sobjects/Contact/") {
            return None;
        }
        let body: Value = serde_json::from_str(&write.body).ok()?;
        body["records"].as_array().map(Vec::len)
    }
}

/// The target describes its object while connecting (a token and a
/// describe request), which the suite's mode check does not count.
#[tokio::test]
async fn salesforce_passes_the_sync_target_suite() {
    weft_conformance::sync_target::run_suite(&SalesforceSync)
        .await
        .assert_passed();
}
