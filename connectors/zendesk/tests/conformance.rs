//! Zendesk runs the shared source acceptance suite (weft-conformance) against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use async_trait::async_trait;
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{BoxError, SecretRef, Source};
use weft_http::HttpSettings;
use weft_sandbox::{Api, Control, DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_TOKEN, SandboxConfig};
use weft_zendesk::{ZendeskConfig, ZendeskSource};

/// Tickets through the cursor-based incremental export, 10 per page.
struct Zendesk {
    token_file: tempfile::NamedTempFile,
}

#[async_trait]
impl SourceHarness for Zendesk {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Zendesk,
            stream: "tickets".into(),
            incremental: true,
            page_size: 10,
            secrets: vec![DEFAULT_ZENDESK_TOKEN.into()],
            sandbox: SandboxConfig {
                size: 100,
                ..SandboxConfig::default()
            },
        }
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let mut config = ZendeskConfig::new(
            "conformance",
            DEFAULT_ZENDESK_EMAIL,
            SecretRef::File {
                file: self.token_file.path().to_path_buf(),
            },
        );
        config.subdomain = None;
        config.base_url = Some(env.sandbox.base_url(Api::Zendesk));
        config.page_size = 10;
        config.settle_secs = 0;
        // Both of Zendesk's budgets (the plan's and the exports') at the suite's rate.
        let per_minute = (env.requests_per_second * 60.0).round() as u32;
        config.requests_per_minute = per_minute;
        config.incremental_requests_per_minute = per_minute;
        config.export_burst = 1;
        config.http = Some(HttpSettings {
            initial_backoff_ms: 10,
            max_backoff_ms: 100,
            ..HttpSettings::default()
        });
        Ok(Box::new(ZendeskSource::new(config, env.budgets)?))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control
            .zendesk_ticket_ids()
            .into_iter()
            .map(|id| id.to_string())
            .collect())
    }
}

#[tokio::test]
async fn zendesk_passes_the_source_suite() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), DEFAULT_ZENDESK_TOKEN).unwrap();
    weft_conformance::source::run_suite(&Zendesk { token_file })
        .await
        .assert_passed();
}
