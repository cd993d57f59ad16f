//! Stripe runs the shared source acceptance suite (weft-conformance) against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use async_trait::async_trait;
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{BoxError, SecretRef, Source};
use weft_http::HttpSettings;
use weft_sandbox::{Api, Control, DEFAULT_STRIPE_KEY, SandboxConfig};
use weft_stripe::{StripeConfig, StripeSource};

/// Customers, read 10 per page, in slices of `created`; incremental on it.
struct Stripe {
    key_file: tempfile::NamedTempFile,
}

#[async_trait]
impl SourceHarness for Stripe {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Stripe,
            stream: "customers".into(),
            incremental: true,
            page_size: 10,
            secrets: vec![DEFAULT_STRIPE_KEY.into()],
            sandbox: SandboxConfig {
                size: 100,
                ..SandboxConfig::default()
            },
        }
    }

    fn slice_key(&self) -> Option<String> {
        Some("created".into())
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let mut config = StripeConfig::new(
            Some(env.sandbox.base_url(Api::Stripe)),
            SecretRef::File {
                file: self.key_file.path().to_path_buf(),
            },
        );
        config.page_size = 10;
        config.settle_secs = 0;
        config.requests_per_second = Some(env.requests_per_second);
        config.http = Some(HttpSettings {
            initial_backoff_ms: 10,
            max_backoff_ms: 100,
            ..HttpSettings::default()
        });
        Ok(Box::new(StripeSource::new(config, env.budgets)?))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control.stripe_customer_ids().into_iter().collect())
    }
}

#[tokio::test]
async fn stripe_passes_the_source_suite() {
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), DEFAULT_STRIPE_KEY).unwrap();
    weft_conformance::source::run_suite(&Stripe { key_file })
        .await
        .assert_passed();
}
