//! A source of your own: a small connector for a paged JSON list, written
//! on `weft_core::Connector` with weft-http doing the requests, the rate
//! budget, retries and pagination — then put through the shared acceptance
//! suite, the same one every weft connector passes.
//!
//! The API here is the sandbox's Stripe customers list (`GET /v1/customers`,
//! `data` + `has_more`, `starting_after=<last id>`), read in full on every
//! run with a checkpoint after each page, so an interrupted read resumes
//! where it stopped.
//!
//! `cargo run -p weft-examples --example custom_source`

use std::collections::BTreeSet;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::json;
use weft_arrow::{FieldType, Schema};
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness};
use weft_core::{
    BoxError, Connector, EventSender, ReadRequest, SecretRef, Source, SourceEvent, StreamMetrics,
    StreamSpec, StreamState, WriteDisposition,
};
use weft_http::{
    Auth, BudgetKey, BudgetRegistry, CursorFrom, HttpClient, HttpError, Limits, Pagination,
    RequestSpec,
};
use weft_sandbox::{Api, Control, SandboxConfig};

/// The connector: a cheap handle (clones share the client).
#[derive(Clone)]
struct People {
    client: HttpClient,
    page_size: u32,
}

impl People {
    /// Builds the client: bearer auth and the account's budget from `budgets`
    /// (shared with every other job on the same account).
    fn new(
        base_url: &str,
        key: &SecretRef,
        requests_per_second: f64,
        page_size: u32,
        budgets: &BudgetRegistry,
    ) -> Result<Self, BoxError> {
        let budget = budgets.budget(
            BudgetKey::new("people-example", base_url),
            Limits::per_second(requests_per_second),
        );
        let client = HttpClient::builder("people-example", url::Url::parse(base_url)?)
            .auth(Auth::Bearer(key.resolve()?))
            .budget(budget)
            .build()?;
        Ok(People { client, page_size })
    }

    /// The one stream: customers by `id`, merged, its columns declared.
    fn spec() -> StreamSpec {
        let schema = Schema::new(vec![
            FieldType::String.field("id", false, "Unique identifier."),
            FieldType::String.field("email", true, "The customer's email address."),
            FieldType::String.field("name", true, "The customer's full name."),
            FieldType::UnixSeconds.field("created", true, "When the customer was created."),
        ]);
        StreamSpec::new("customers", schema)
            .with_primary_key(["id"])
            .with_disposition(WriteDisposition::Merge)
    }
}

#[async_trait]
impl Connector for People {
    type Error = HttpError;
    const NAME: &'static str = "people-example";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        vec![People::spec()]
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let req = RequestSpec::get("/v1/customers").query("limit", "1");
        self.client.send(&req, &StreamMetrics::default()).await?;
        Ok(())
    }

    async fn read_stream(self, request: ReadRequest, tx: EventSender) -> Result<(), HttpError> {
        // Resume after the last page a checkpoint covered, if any.
        let after = request
            .state
            .as_ref()
            .and_then(|s| s.get::<String>("after"));
        let mut first =
            RequestSpec::get("/v1/customers").query("limit", self.page_size.to_string());
        if let Some(after) = after {
            first = first.query("starting_after", after);
        }
        let style = Pagination::BodyCursor {
            items: "/data".into(),
            has_more: Some("/has_more".into()),
            param: "starting_after".into(),
            cursor_from: CursorFrom::LastItemField("id".into()),
        };
        let mut pages = weft_http::paginate(self.client.clone(), first, style, request.metrics);
        while let Some(page) = pages.next().await {
            let page = page?;
            // The state after this page: where the next one starts, or done.
            let state = match &page.next_cursor {
                Some(next) => json!({ "after": next }),
                None => json!({ "done": true }),
            };
            let sent = tx.send(Ok(SourceEvent::Page(page.into_json_page()))).await;
            let checkpoint = tx
                .send(Ok(SourceEvent::Checkpoint(StreamState(state))))
                .await;
            if sent.is_err() || checkpoint.is_err() {
                break; // the pipeline stopped reading
            }
        }
        Ok(())
    }
}

/// How the acceptance suite builds and judges the connector.
struct Harness {
    dir: tempfile::TempDir,
}

#[async_trait]
impl SourceHarness for Harness {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Stripe,
            stream: "customers".into(),
            incremental: false,
            page_size: 10,
            secrets: vec![weft_sandbox::DEFAULT_STRIPE_KEY.into()],
            sandbox: SandboxConfig {
                size: 55,
                ..SandboxConfig::default()
            },
        }
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let key = self.dir.path().join("key");
        std::fs::write(&key, weft_sandbox::DEFAULT_STRIPE_KEY)?;
        let source = People::new(
            &env.sandbox.base_url(Api::Stripe),
            &SecretRef::File { file: key },
            env.requests_per_second,
            10,
            env.budgets,
        )?;
        Ok(Box::new(source))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control.stripe_customer_ids().into_iter().collect())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let harness = Harness {
        dir: tempfile::tempdir()?,
    };
    let report = weft_conformance::source::run_suite(&harness).await;
    println!("{report}");
    report.assert_passed();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn the_example_connector_passes_the_acceptance_suite() {
        let harness = Harness {
            dir: tempfile::tempdir().unwrap(),
        };
        weft_conformance::source::run_suite(&harness)
            .await
            .assert_passed();
    }
}
