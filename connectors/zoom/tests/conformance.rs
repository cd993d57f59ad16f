//! Zoom runs the shared source acceptance suite (weft-conformance) against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use async_trait::async_trait;
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{BoxError, SecretRef, Source};
use weft_http::HttpSettings;
use weft_sandbox::{Api, Control, SandboxConfig};
use weft_zoom::{ZoomConfig, ZoomSource};

/// Webinars (a fan-out over users), read 2 per page; a full-refresh stream.
struct Zoom {
    secret_file: PathBuf,
}

#[async_trait]
impl SourceHarness for Zoom {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Zoom,
            stream: "webinars".into(),
            incremental: false,
            page_size: 2,
            secrets: vec![weft_sandbox::DEFAULT_ZOOM_CLIENT_SECRET.into()],
            sandbox: SandboxConfig {
                size: 100,
                ..SandboxConfig::default()
            },
        }
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let base = env.sandbox.base_url(Api::Zoom);
        let mut config = ZoomConfig::new(
            weft_sandbox::DEFAULT_ZOOM_ACCOUNT_ID,
            weft_sandbox::DEFAULT_ZOOM_CLIENT_ID,
            SecretRef::File {
                file: self.secret_file.clone(),
            },
        );
        config.token_url = Some(format!("{base}/oauth/token"));
        config.base_url = Some(base);
        config.page_size = 2;
        config.requests_per_second = Some(env.requests_per_second);
        config.http = Some(HttpSettings {
            initial_backoff_ms: 10,
            max_backoff_ms: 100,
            ..HttpSettings::default()
        });
        Ok(Box::new(ZoomSource::new(config, env.budgets)?))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control
            .zoom_webinar_ids()
            .into_iter()
            .map(|id| id.to_string())
            .collect())
    }
}

#[tokio::test]
async fn zoom_passes_the_source_suite() {
    let dir = std::env::temp_dir().join(format!("weft-zoom-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("zoom-secret");
    std::fs::write(&secret_file, weft_sandbox::DEFAULT_ZOOM_CLIENT_SECRET).unwrap();
    weft_conformance::source::run_suite(&Zoom { secret_file })
        .await
        .assert_passed();
    std::fs::remove_dir_all(dir).unwrap();
}
