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
        capabilities("contacts", 10)
    }

    fn slice_key(&self) -> Option<String> {
        Some("updated_at".into())
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        build(self.token_file.path(), env)
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control.intercom_contact_ids().into_iter().collect())
    }
}

/// What the suite reads of `stream`, at most `page_size` records a page.
fn capabilities(stream: &str, page_size: usize) -> SourceCapabilities {
    SourceCapabilities {
        api: Api::Intercom,
        stream: stream.into(),
        incremental: true,
        page_size,
        secrets: vec![DEFAULT_INTERCOM_TOKEN.into()],
        sandbox: SandboxConfig {
            size: 100,
            ..SandboxConfig::default()
        },
    }
}

/// The source every Intercom harness reads (10 search results a page), its
/// token in `token_file`.
fn build(token_file: &std::path::Path, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
    let mut config = IntercomConfig::new(SecretRef::File {
        file: token_file.to_path_buf(),
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

#[tokio::test]
async fn intercom_passes_the_source_suite() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), DEFAULT_INTERCOM_TOKEN).unwrap();
    weft_conformance::source::run_suite(&Intercom { token_file })
        .await
        .assert_passed();
}

/// Conversation parts: the children of conversations searched on
/// `updated_at`, 10 conversations (at most 30 parts) per page.
struct IntercomParts {
    token_file: tempfile::NamedTempFile,
}

#[async_trait]
impl SourceHarness for IntercomParts {
    fn capabilities(&self) -> SourceCapabilities {
        capabilities("conversation_parts", 30)
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        build(self.token_file.path(), env)
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control
            .intercom_conversation_part_ids()
            .into_iter()
            .collect())
    }
}

#[tokio::test]
async fn intercom_conversation_parts_pass_the_source_suite() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), DEFAULT_INTERCOM_TOKEN).unwrap();
    weft_conformance::source::run_suite(&IntercomParts { token_file })
        .await
        .assert_passed();
}

/// Contacts as a reverse-sync destination, one request per record.
struct IntercomSync;

#[async_trait]
impl weft_conformance::sync_target::SyncHarness for IntercomSync {
    fn capabilities(&self) -> weft_conformance::sync_target::SyncCapabilities {
        weft_conformance::sync_target::SyncCapabilities {
            api: Api::Intercom,
            sandbox: SandboxConfig {
                size: 20,
                ..SandboxConfig::default()
            },
            per_call_limit: 1,
            secrets: vec![DEFAULT_INTERCOM_TOKEN.into()],
            mapping: [("email", "email"), ("name", "name")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    async fn build(
        &self,
        env: &weft_conformance::sync_target::SyncEnv<'_>,
    ) -> Result<std::sync::Arc<dyn weft_core::SyncTarget>, BoxError> {
        let mut config =
            IntercomConfig::new(weft_conformance::secret_file(DEFAULT_INTERCOM_TOKEN)?);
        config.base_url = Some(env.sandbox.base_url(Api::Intercom));
        config.http = Some(weft_conformance::sync_target::fast_retries());
        Ok(std::sync::Arc::new(weft_intercom::IntercomTarget::new(
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
        Ok(control
            .intercom_written_contacts()
            .into_iter()
            .filter_map(|c| {
                let email = c["email"].as_str()?.to_lowercase();
                emails.contains(&email).then(|| {
                    let held = weft_conformance::sync_target::Held {
                        name: c["name"].as_str().map(str::to_string),
                        active: c["unsubscribed_from_emails"] != serde_json::Value::Bool(true),
                    };
                    (email, held)
                })
            })
            .collect())
    }

    fn records_in(&self, write: &weft_sandbox::RecordedWrite) -> Option<usize> {
        let contact_write = (write.method == "POST" && write.path == "/contacts")
            || (write.method == "PUT" && write.path.starts_with("/contacts/"));
        contact_write.then_some(1)
    }

    /// The target itself refuses a contact without an email.
    fn rejected_row(&self) -> weft_conformance::Row {
        let mut row = weft_conformance::sync_target::person_row("", "No Email");
        row.insert("key".into(), serde_json::Value::from("no-email-person"));
        row
    }
}

#[tokio::test]
async fn intercom_passes_the_sync_target_suite() {
    weft_conformance::sync_target::run_suite(&IntercomSync)
        .await
        .assert_passed();
}
