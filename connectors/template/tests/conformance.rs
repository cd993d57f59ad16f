//! The template runs the shared source acceptance suite against the
//! sandbox's example API: the one test every connector has.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use async_trait::async_trait;
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{BoxError, Source};
use weft_http::HttpSettings;
use weft_sandbox::{Api, Control, DEFAULT_EXAMPLE_KEY, SandboxConfig};
use weft_template::{TemplateConfig, TemplateSource};

/// Widgets by `updated_at`, 10 per page.
struct Template;

#[async_trait]
impl SourceHarness for Template {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Example,
            stream: "widgets".into(),
            incremental: true,
            page_size: 10,
            secrets: vec![DEFAULT_EXAMPLE_KEY.into()],
            sandbox: SandboxConfig {
                size: 95,
                ..SandboxConfig::default()
            },
        }
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let mut config = TemplateConfig::new(weft_conformance::secret_file(DEFAULT_EXAMPLE_KEY)?);
        config.base_url = Some(env.sandbox.base_url(Api::Example));
        config.page_size = 10;
        config.settle_secs = 0;
        config.requests_per_second = env.requests_per_second;
        config.http = Some(HttpSettings {
            initial_backoff_ms: 10,
            max_backoff_ms: 100,
            ..HttpSettings::default()
        });
        Ok(Box::new(TemplateSource::new(&config, env.budgets)?))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control.example_widget_ids().into_iter().collect())
    }
}

#[tokio::test]
async fn template_passes_the_source_suite() {
    weft_conformance::source::run_suite(&Template)
        .await
        .assert_passed();
}
