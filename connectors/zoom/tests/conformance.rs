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

/// The upcoming webinar the sync suite registers people for (the third of
/// the first host).
fn sync_webinar(control: &Control) -> Result<i64, BoxError> {
    Ok(*control
        .zoom_webinar_ids()
        .get(2)
        .ok_or("the sandbox has fewer than 3 webinars")?)
}

/// Webinar registrants as a reverse-sync destination (create_only, mirror).
struct ZoomSync;

#[async_trait]
impl weft_conformance::sync_target::SyncHarness for ZoomSync {
    fn capabilities(&self) -> weft_conformance::sync_target::SyncCapabilities {
        weft_conformance::sync_target::SyncCapabilities {
            api: Api::Zoom,
            sandbox: SandboxConfig {
                size: 20,
                ..SandboxConfig::default()
            },
            per_call_limit: weft_zoom::MAX_STATUS_REGISTRANTS,
            secrets: vec![weft_sandbox::DEFAULT_ZOOM_CLIENT_SECRET.into()],
            mapping: [("email", "key"), ("first_name", "name")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    async fn build(
        &self,
        env: &weft_conformance::sync_target::SyncEnv<'_>,
    ) -> Result<std::sync::Arc<dyn weft_core::SyncTarget>, BoxError> {
        let base = env.sandbox.base_url(Api::Zoom);
        let mut config = ZoomConfig::new(
            weft_sandbox::DEFAULT_ZOOM_ACCOUNT_ID,
            weft_sandbox::DEFAULT_ZOOM_CLIENT_ID,
            weft_conformance::secret_file(weft_sandbox::DEFAULT_ZOOM_CLIENT_SECRET)?,
        );
        config.token_url = Some(format!("{base}/oauth/token"));
        config.base_url = Some(base);
        config.requests_per_second = Some(10_000.0);
        config.webinar_id = Some(sync_webinar(&env.sandbox.control())?);
        config.http = Some(weft_conformance::sync_target::fast_retries());
        Ok(std::sync::Arc::new(weft_zoom::ZoomTarget::new(
            &config,
            env.budgets,
        )?))
    }

    fn held(
        &self,
        control: &Control,
        emails: &[String],
    ) -> Result<std::collections::BTreeMap<String, weft_conformance::sync_target::Held>, BoxError>
    {
        let webinar = sync_webinar(control)?;
        let mut held = std::collections::BTreeMap::new();
        for e in emails {
            if let Some(r) = control.zoom_registrant_by_email(webinar, e)? {
                held.insert(
                    e.clone(),
                    weft_conformance::sync_target::Held {
                        name: r["first_name"].as_str().map(str::to_string),
                        active: r["status"] == "approved",
                    },
                );
            }
        }
        Ok(held)
    }

    fn records_in(&self, write: &weft_sandbox::RecordedWrite) -> Option<usize> {
        if write.path.ends_with("/registrants/status") {
            let body: serde_json::Value = serde_json::from_str(&write.body).ok()?;
            return body["registrants"].as_array().map(Vec::len);
        }
        write.path.ends_with("/registrants").then_some(1)
    }

    fn edits(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn zoom_passes_the_sync_target_suite() {
    weft_conformance::sync_target::run_suite(&ZoomSync)
        .await
        .assert_passed();
}
