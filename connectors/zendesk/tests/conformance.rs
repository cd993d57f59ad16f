//! Zendesk runs the shared source acceptance suite (weft-conformance) against the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use async_trait::async_trait;
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{BoxError, SecretRef, Source};
use weft_http::HttpSettings;
use weft_sandbox::{Api, Control, DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_TOKEN, SandboxConfig};
use weft_zendesk::{ZendeskConfig, ZendeskSource};

/// Tickets through the cursor-based incremental export, 10 per page, or
/// their comments (`ticket_comments`: the export, then each ticket's list),
/// or a list read in full every run, 100 per page (`ticket_metrics`: one
/// per ticket, 250 of them in three pages; `organization_memberships`).
struct Zendesk {
    token_file: tempfile::NamedTempFile,
    stream: &'static str,
}

#[async_trait]
impl SourceHarness for Zendesk {
    fn capabilities(&self) -> SourceCapabilities {
        if LISTS.contains(&self.stream) {
            return SourceCapabilities {
                api: Api::Zendesk,
                stream: self.stream.into(),
                incremental: false,
                // Lists always ask for Zendesk's largest page.
                page_size: 100,
                secrets: vec![DEFAULT_ZENDESK_TOKEN.into()],
                sandbox: SandboxConfig {
                    size: 250,
                    ..SandboxConfig::default()
                },
            };
        }
        SourceCapabilities {
            api: Api::Zendesk,
            stream: self.stream.into(),
            incremental: true,
            // A page of 10 tickets carries at most 3 generated comments each.
            page_size: if self.stream == "ticket_comments" {
                30
            } else {
                10
            },
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
        let ids = match self.stream {
            "ticket_comments" => control.zendesk_comment_ids(),
            list if LISTS.contains(&list) => control
                .zendesk_list_ids(list)
                .ok_or_else(|| format!("the sandbox serves no list `{list}`"))?,
            _ => control.zendesk_ticket_ids(),
        };
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
    }
}

#[tokio::test]
async fn zendesk_passes_the_source_suite() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), DEFAULT_ZENDESK_TOKEN).unwrap();
    weft_conformance::source::run_suite(&Zendesk {
        token_file,
        stream: "tickets",
    })
    .await
    .assert_passed();
}

/// The full-refresh lists the suite reads.
const LISTS: [&str; 2] = ["ticket_metrics", "organization_memberships"];

#[tokio::test]
async fn zendesk_lists_pass_the_source_suite() {
    for stream in LISTS {
        let token_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token_file.path(), DEFAULT_ZENDESK_TOKEN).unwrap();
        weft_conformance::source::run_suite(&Zendesk { token_file, stream })
            .await
            .assert_passed();
    }
}

#[tokio::test]
async fn zendesk_ticket_comments_pass_the_source_suite() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), DEFAULT_ZENDESK_TOKEN).unwrap();
    weft_conformance::source::run_suite(&Zendesk {
        token_file,
        stream: "ticket_comments",
    })
    .await
    .assert_passed();
}

/// Users as a reverse-sync destination (`create_or_update_many` + job statuses).
struct ZendeskSync;

#[async_trait]
impl weft_conformance::sync_target::SyncHarness for ZendeskSync {
    fn capabilities(&self) -> weft_conformance::sync_target::SyncCapabilities {
        weft_conformance::sync_target::SyncCapabilities {
            api: Api::Zendesk,
            sandbox: SandboxConfig {
                size: 20,
                ..SandboxConfig::default()
            },
            per_call_limit: weft_zendesk::MAX_USERS_PER_CALL,
            secrets: vec![DEFAULT_ZENDESK_TOKEN.into()],
            mapping: [("email", "key"), ("name", "name")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    async fn build(
        &self,
        env: &weft_conformance::sync_target::SyncEnv<'_>,
    ) -> Result<std::sync::Arc<dyn weft_core::SyncTarget>, BoxError> {
        let mut config = ZendeskConfig::new(
            "conformance",
            DEFAULT_ZENDESK_EMAIL,
            weft_conformance::secret_file(DEFAULT_ZENDESK_TOKEN)?,
        );
        config.base_url = Some(env.sandbox.base_url(Api::Zendesk));
        config.requests_per_minute = 600_000;
        config.http = Some(weft_conformance::sync_target::fast_retries());
        Ok(std::sync::Arc::new(weft_zendesk::ZendeskTarget::new(
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
        Ok(emails
            .iter()
            .filter_map(|e| {
                let user = control.zendesk_user_by_email(e)?;
                let held = weft_conformance::sync_target::Held {
                    name: user["name"].as_str().map(str::to_string),
                    active: user["suspended"] != serde_json::Value::Bool(true),
                };
                Some((e.clone(), held))
            })
            .collect())
    }

    fn records_in(&self, write: &weft_sandbox::RecordedWrite) -> Option<usize> {
        if !write
            .path
            .starts_with("/api/v2/users/create_or_update_many")
        {
            return None;
        }
        let body: serde_json::Value = serde_json::from_str(&write.body).ok()?;
        body["users"].as_array().map(Vec::len)
    }
}

#[tokio::test]
async fn zendesk_passes_the_sync_target_suite() {
    weft_conformance::sync_target::run_suite(&ZendeskSync)
        .await
        .assert_passed();
}

/// Organizations as a reverse-sync destination: looked up by external id
/// (`show_many`), then `create_many` / `update_many` jobs; `external_id`
/// is the suite's key. `mirror` is the config's mirror kind (unset: delete).
struct ZendeskOrganizationSync {
    mirror: Option<weft_zendesk::ZendeskMirror>,
}

/// The tag the tag-mirror harness adds.
const REMOVED_TAG: &str = "weft_removed";

#[async_trait]
impl weft_conformance::sync_target::SyncHarness for ZendeskOrganizationSync {
    fn capabilities(&self) -> weft_conformance::sync_target::SyncCapabilities {
        weft_conformance::sync_target::SyncCapabilities {
            api: Api::Zendesk,
            sandbox: SandboxConfig {
                size: 20,
                ..SandboxConfig::default()
            },
            per_call_limit: weft_zendesk::MAX_ORGANIZATIONS_PER_CALL,
            secrets: vec![DEFAULT_ZENDESK_TOKEN.into()],
            mapping: [("external_id", "key"), ("name", "name")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    async fn build(
        &self,
        env: &weft_conformance::sync_target::SyncEnv<'_>,
    ) -> Result<std::sync::Arc<dyn weft_core::SyncTarget>, BoxError> {
        let mut config = ZendeskConfig::new(
            "conformance",
            DEFAULT_ZENDESK_EMAIL,
            weft_conformance::secret_file(DEFAULT_ZENDESK_TOKEN)?,
        );
        config.base_url = Some(env.sandbox.base_url(Api::Zendesk));
        config.requests_per_minute = 600_000;
        config.sync_object = weft_zendesk::ZendeskObject::Organizations;
        config.mirror = self.mirror.clone();
        config.http = Some(weft_conformance::sync_target::fast_retries());
        Ok(std::sync::Arc::new(weft_zendesk::ZendeskTarget::new(
            &config,
            env.budgets,
        )?))
    }

    fn held(
        &self,
        control: &Control,
        keys: &[String],
    ) -> Result<std::collections::BTreeMap<String, weft_conformance::sync_target::Held>, BoxError>
    {
        Ok(keys
            .iter()
            .filter_map(|k| {
                let org = control.zendesk_organization_by_external_id(k)?;
                let tagged = org["tags"]
                    .as_array()
                    .is_some_and(|t| t.contains(&serde_json::json!(REMOVED_TAG)));
                let held = weft_conformance::sync_target::Held {
                    name: org["name"].as_str().map(str::to_string),
                    active: !tagged,
                };
                Some((k.clone(), held))
            })
            .collect())
    }

    fn records_in(&self, write: &weft_sandbox::RecordedWrite) -> Option<usize> {
        let bulk = ["create_many", "update_many"].iter().any(|call| {
            write
                .path
                .starts_with(&format!("/api/v2/organizations/{call}"))
        });
        if !bulk {
            return None;
        }
        let body: serde_json::Value = serde_json::from_str(&write.body).ok()?;
        body["organizations"].as_array().map(Vec::len)
    }

    /// Zendesk refuses to create an organization without a name.
    fn rejected_row(&self) -> weft_conformance::Row {
        weft_conformance::sync_target::person_row("rejected.org@example.com", "")
    }
}

#[tokio::test]
async fn zendesk_organizations_pass_the_sync_target_suite() {
    weft_conformance::sync_target::run_suite(&ZendeskOrganizationSync { mirror: None })
        .await
        .assert_passed();
}

#[tokio::test]
async fn zendesk_organizations_with_a_tag_mirror_pass_the_sync_target_suite() {
    let mirror = weft_zendesk::ZendeskMirror::Tag {
        tags: vec![REMOVED_TAG.into()],
    };
    weft_conformance::sync_target::run_suite(&ZendeskOrganizationSync {
        mirror: Some(mirror),
    })
    .await
    .assert_passed();
}
