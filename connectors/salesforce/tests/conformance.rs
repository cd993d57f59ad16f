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
