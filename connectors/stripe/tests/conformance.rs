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

/// Stripe customers as a reverse-sync destination: one customer per write.
struct StripeSync;

#[async_trait]
impl weft_conformance::sync_target::SyncHarness for StripeSync {
    fn capabilities(&self) -> weft_conformance::sync_target::SyncCapabilities {
        weft_conformance::sync_target::SyncCapabilities {
            api: Api::Stripe,
            sandbox: SandboxConfig {
                size: 20,
                ..SandboxConfig::default()
            },
            per_call_limit: 1,
            secrets: vec![DEFAULT_STRIPE_KEY.into()],
            // Mirror deletes by the key, so the email is mapped from it.
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
        let mut config = StripeConfig::new(
            Some(env.sandbox.base_url(Api::Stripe)),
            weft_conformance::secret_file(DEFAULT_STRIPE_KEY)?,
        );
        config.requests_per_second = Some(100_000.0);
        config.http = Some(weft_conformance::sync_target::fast_retries());
        Ok(std::sync::Arc::new(weft_stripe::StripeTarget::new(
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
                let customer = control.stripe_customer_by_email(e)?;
                let held = weft_conformance::sync_target::Held {
                    name: customer["name"].as_str().map(str::to_string),
                    active: customer["deleted"] != serde_json::Value::Bool(true),
                };
                Some((e.clone(), held))
            })
            .collect())
    }

    fn records_in(&self, write: &weft_sandbox::RecordedWrite) -> Option<usize> {
        let customer_write = matches!(write.method.as_str(), "POST" | "DELETE")
            && (write.path == "/v1/customers" || write.path.starts_with("/v1/customers/"));
        customer_write.then_some(1)
    }

    // The default rejected row (`not-an-email`) is refused by Stripe itself
    // (`email_invalid`, a 400), which exercises the per-record reject path.
}

#[tokio::test]
async fn stripe_passes_the_sync_target_suite() {
    weft_conformance::sync_target::run_suite(&StripeSync)
        .await
        .assert_passed();
}

/// Resets after Stripe wrote make weft-http send creates again: under the
/// same Idempotency-Key they replay, so each email is created exactly once.
#[tokio::test]
async fn stripe_sync_creates_each_customer_once_through_a_fault_storm() {
    use weft_conformance::MemorySyncStore;
    use weft_conformance::sync_target::{SyncEnv, SyncHarness, email, person_row};
    use weft_core::{SyncOptions, SyncSpec, SyncWriteMode, run_sync};
    use weft_sandbox::{Faults, RetryAfterStyle, Sandbox};

    let harness = StripeSync;
    let caps = harness.capabilities();
    let sandbox = Sandbox::start(caps.sandbox.clone()).await.unwrap();
    sandbox.control().set_rate_limits(Api::Stripe, false);
    let budgets = weft_http::BudgetRegistry::new();
    let target = harness
        .build(&SyncEnv {
            sandbox: &sandbox,
            budgets: &budgets,
        })
        .await
        .unwrap();
    let store = MemorySyncStore::new();
    let emails: Vec<String> = (0..20).map(email).collect();
    for (i, e) in emails.iter().enumerate() {
        store.put(e, person_row(e, &format!("Person {i}")));
    }
    let spec = SyncSpec {
        name: "stripe_once".into(),
        model: "people".into(),
        primary_key: "key".into(),
        mode: SyncWriteMode::Upsert,
        mapping: caps.mapping.clone(),
    };
    sandbox.control().set_faults(
        Api::Stripe,
        Faults {
            error_rate: 0.2,
            // Resets after the response started: the write happened, and the
            // retry under the same Idempotency-Key is answered from the cache.
            reset_rate: 0.2,
            retry_after: RetryAfterStyle::Zero,
            ..Faults::default()
        },
    );
    let mut settled = false;
    for _ in 0..15 {
        let options = SyncOptions {
            batch_size: Some(3),
            ..SyncOptions::default()
        };
        if let Ok(r) = run_sync(&store, &*target, &spec, options).await
            && r.plan.creates + r.plan.updates == 0
        {
            settled = true;
            break;
        }
    }
    sandbox.control().set_faults(Api::Stripe, Faults::default());
    assert!(settled, "the storm never settled");
    // Some creates were sent more than once (a reset after Stripe wrote)...
    let create_posts = sandbox
        .control()
        .writes(Api::Stripe)
        .iter()
        .filter(|w| w.method == "POST" && w.path == "/v1/customers")
        .count();
    assert!(
        create_posts > emails.len(),
        "{create_posts} create requests"
    );
    // ...and each email was still created exactly once.
    for (i, e) in emails.iter().enumerate() {
        assert_eq!(sandbox.control().stripe_customer_creates(e), 1, "{e}");
        let c = sandbox.control().stripe_customer_by_email(e).unwrap();
        assert_eq!(c["name"], format!("Person {i}"));
    }
}

/// Two rows with one email in a batch: the first creates the customer, the
/// second finds and updates it (never a second customer).
#[tokio::test]
async fn rows_sharing_an_email_create_one_customer() {
    use weft_conformance::sync_target::{SyncEnv, SyncHarness};
    use weft_core::{SyncAction, SyncRecord, SyncWriteMode};
    use weft_sandbox::Sandbox;

    let harness = StripeSync;
    let sandbox = Sandbox::start(harness.capabilities().sandbox)
        .await
        .unwrap();
    sandbox.control().set_rate_limits(Api::Stripe, false);
    let budgets = weft_http::BudgetRegistry::new();
    let target = harness
        .build(&SyncEnv {
            sandbox: &sandbox,
            budgets: &budgets,
        })
        .await
        .unwrap();
    let row = |key: &str, email: &str, name: &str| SyncRecord {
        key: key.into(),
        action: SyncAction::Create,
        row_hash: format!("hash-{key}"),
        fields: [("email", email), ("name", name)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
            .collect(),
    };
    let records = vec![
        row("u1", "shared@example.com", "First"),
        row("u2", "Shared@Example.com", "Second"),
        row("u3", "other@example.com", "Other"),
    ];
    let out = target.apply(SyncWriteMode::Upsert, records).await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| o.result.is_ok()), "{out:?}");
    let control = sandbox.control();
    assert_eq!(control.stripe_customer_creates("shared@example.com"), 1);
    assert_eq!(control.stripe_customer_creates("other@example.com"), 1);
    let shared = control
        .stripe_customer_by_email("shared@example.com")
        .unwrap();
    assert_eq!(shared["name"], "Second");
}
