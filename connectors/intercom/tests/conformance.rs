//! Intercom runs the shared source acceptance suite (weft-conformance) against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use async_trait::async_trait;
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{BoxError, SecretRef, Source};
use weft_http::HttpSettings;
use weft_intercom::{IntercomConfig, IntercomSource};
use weft_sandbox::{Api, Control, DEFAULT_INTERCOM_TOKEN, SandboxConfig};

/// Contacts through the search API on `updated_at`, 10 per page.
struct Intercom {
    token_file: tempfile::NamedTempFile,
}

#[async_trait]
impl SourceHarness for Intercom {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Intercom,
            stream: "contacts".into(),
            incremental: true,
            page_size: 10,
            secrets: vec![DEFAULT_INTERCOM_TOKEN.into()],
            sandbox: SandboxConfig {
                size: 100,
                ..SandboxConfig::default()
            },
        }
    }

    fn slice_key(&self) -> Option<String> {
        Some("updated_at".into())
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let mut config = IntercomConfig::new(SecretRef::File {
            file: self.token_file.path().to_path_buf(),
        });
        config.base_url = Some(env.sandbox.base_url(Api::Intercom));
        config.page_size = 10;
        config.settle_secs = 0;
        config.requests_per_minute = (env.requests_per_second * 60.0).round() as u32;
        config.http = Some(HttpSettings {
            initial_backoff_ms: 10,
            max_backoff_ms: 100,
            ..HttpSettings::default()
        });
        Ok(Box::new(IntercomSource::new(&config, env.budgets)?))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control.intercom_contact_ids().into_iter().collect())
    }
}

#[tokio::test]
async fn intercom_passes_the_source_suite() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), DEFAULT_INTERCOM_TOKEN).unwrap();
    weft_conformance::source::run_suite(&Intercom { token_file })
        .await
        .assert_passed();
}
