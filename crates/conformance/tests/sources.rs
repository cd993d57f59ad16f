//! The source suite passes a correct source and fails each deliberately
//! broken one on exactly the check that its flaw breaks.
//!
//! The source under test is a small Stripe-customers reader written here
//! (through weft-http, against the sandbox), with one flaw switched on at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_schema::{DataType, Field, Schema};
use async_trait::async_trait;
use serde_json::{Value, json};
use weft_conformance::source::{SourceCapabilities, SourceEnv, SourceHarness, run_suite};
use weft_conformance::{Check, Outcome};
use weft_core::{
    BoxError, EventSender, EventStream, JsonPage, ReadRequest, Source, SourceEvent, StreamSpec,
    StreamState, spawn_events,
};
use weft_http::{
    Auth, BudgetKey, BudgetRegistry, HttpClient, HttpSettings, Limits, Order, RequestSpec,
    SecretString, SliceError, SlicePage, SliceSettings, SliceState, SlicedList, Window,
    read_sliced,
};
use weft_sandbox::{Api, Control, DEFAULT_STRIPE_KEY, SandboxConfig};

const PAGE: usize = 10;

/// One deliberate defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Each discover describes the stream a little differently.
    UnstableDiscover,
    /// After the first page, the first record comes again in a page of its own.
    RepeatsRecord,
    /// The third checkpoint's page counter goes back to 1.
    CursorBackwards,
    /// Each checkpoint is emitted before the page it covers.
    CheckpointLosesPage,
    /// A 401 is retried five times.
    RetriesAuth,
    /// Errors quote the API key.
    LeaksSecret,
    /// Takes its budget from a registry of its own, not the shared one.
    IgnoresBudget,
    /// Reads everything, then emits one page.
    BuffersAll,
    /// A sliced read that ignores the slices its saved state lists: a resumed
    /// read starts the backfill over.
    RestartsSlices,
    /// Sends each request once: a 5xx ends the read.
    GivesUpOnServerErrors,
}

struct Customers {
    http: HttpClient,
    flaw: Option<Flaw>,
    sliced: bool,
    discovers: AtomicU64,
}

#[derive(Debug)]
enum ReadError {
    Http(weft_http::HttpError),
    Leaky(String),
}

impl std::error::Error for ReadError {}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Http(e) => write!(f, "customers: {e}"),
            ReadError::Leaky(m) => f.write_str(m),
        }
    }
}

fn spec(description: String) -> StreamSpec {
    let mut spec = StreamSpec::new(
        "customers",
        Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("created", DataType::Int64, true),
        ]),
    )
    .with_primary_key(["id"]);
    spec.description = description;
    spec
}

#[async_trait]
impl Source for Customers {
    fn connector(&self) -> &str {
        "test-customers"
    }

    fn streams(&self) -> Vec<StreamSpec> {
        let n = self.discovers.fetch_add(1, Ordering::Relaxed);
        let description = match self.flaw {
            Some(Flaw::UnstableDiscover) => format!("customers (discover #{n})"),
            _ => "customers".to_string(),
        };
        vec![spec(description)]
    }

    async fn check(&self) -> Result<(), BoxError> {
        Ok(())
    }

    fn read(&self, request: ReadRequest) -> EventStream<'_> {
        let http = self.http.clone();
        let flaw = self.flaw;
        let sliced = self.sliced;
        spawn_events(move |tx| async move {
            let read = match sliced {
                true => read_in_slices(&http, flaw, &request, &tx).await,
                false => read(&http, flaw, &request, &tx).await,
            };
            read.map_err(|e| Box::new(e) as BoxError)
        })
    }
}

/// `/v1/customers` listed by windows of `created`, newest first.
struct CustomerWindows<'a> {
    http: &'a HttpClient,
    request: &'a ReadRequest,
}

#[async_trait]
impl SlicedList for CustomerWindows<'_> {
    type Error = ReadError;

    fn order(&self) -> Order {
        Order::Descending
    }

    async fn page(&self, window: Window, after: Option<&Value>) -> Result<SlicePage, ReadError> {
        let mut req = RequestSpec::get("/v1/customers")
            .query("limit", PAGE.to_string())
            .query("created[gte]", window.lo.to_string());
        if window.hi < i64::MAX {
            req = req.query("created[lt]", window.hi.to_string());
        }
        if let Some(a) = after.and_then(Value::as_str) {
            req = req.query("starting_after", a);
        }
        let body: Value = self
            .http
            .get_json(&req, &self.request.metrics)
            .await
            .map_err(ReadError::Http)?;
        let records: Vec<Value> = body["data"].as_array().cloned().unwrap_or_default();
        let next = (body["has_more"] == json!(true))
            .then(|| records.last().map(|r| r["id"].clone()))
            .flatten();
        Ok(SlicePage {
            records: records
                .iter()
                .map(|r| {
                    let created = r["created"].as_i64();
                    (created, serde_json::value::to_raw_value(r).unwrap())
                })
                .collect(),
            next,
            reached: None,
        })
    }
}

async fn read_in_slices(
    http: &HttpClient,
    flaw: Option<Flaw>,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), ReadError> {
    let saved = match flaw {
        Some(Flaw::RestartsSlices) => None,
        _ => request
            .state
            .as_ref()
            .and_then(|s| SliceState::from_value(s.0.get("slices")).ok().flatten()),
    };
    let previous: Option<i64> = request.state.as_ref().and_then(|s| s.get("created"));
    let plan = saved.unwrap_or_else(|| SliceState::plan(Window::new(0, i64::MAX), i64::MAX));
    let list = CustomerWindows { http, request };
    let done = read_sliced(
        &list,
        http.budget(),
        plan,
        &SliceSettings::default(),
        request,
        tx,
        |left| StreamState(json!({ "created": previous, "slices": left })),
    )
    .await
    .map_err(|e| match e {
        SliceError::Source(e) => e,
        SliceError::Stopped => ReadError::Leaky("stopped".into()),
        SliceError::Loop { cursor, .. } => ReadError::Leaky(format!("pagination loop at {cursor}")),
    })?;
    let state = StreamState(json!({ "created": done.cursor(previous) }));
    send(tx, SourceEvent::Checkpoint(state)).await;
    Ok(())
}

async fn page(
    http: &HttpClient,
    flaw: Option<Flaw>,
    request: &ReadRequest,
    after: Option<&str>,
) -> Result<Value, ReadError> {
    let mut req = RequestSpec::get("/v1/customers").query("limit", PAGE.to_string());
    if let Some(a) = after {
        req = req.query("starting_after", a);
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        match http.get_json::<Value>(&req, &request.metrics).await {
            Ok(v) => return Ok(v),
            Err(e)
                if flaw == Some(Flaw::RetriesAuth) && e.status() == Some(401) && attempts < 6 => {}
            Err(e) if flaw == Some(Flaw::LeaksSecret) => {
                return Err(ReadError::Leaky(format!(
                    "customers with key {DEFAULT_STRIPE_KEY} failed: {e}"
                )));
            }
            Err(e) => return Err(ReadError::Http(e)),
        }
    }
}

async fn read(
    http: &HttpClient,
    flaw: Option<Flaw>,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), ReadError> {
    let mut pages: i64 = request
        .state
        .as_ref()
        .and_then(|s| s.get("pages"))
        .unwrap_or(0);
    let mut after: Option<String> = request.state.as_ref().and_then(|s| s.get("after"));
    let mut first_record: Option<Value> = None;
    let mut buffered: Vec<Value> = Vec::new();
    let mut states = Vec::new();
    loop {
        let body = page(http, flaw, request, after.as_deref()).await?;
        let records = body["data"].as_array().cloned().unwrap_or_default();
        let more = body["has_more"].as_bool().unwrap_or(false);
        if records.is_empty() {
            break;
        }
        pages += 1;
        after = records
            .last()
            .and_then(|r| r["id"].as_str())
            .map(String::from);
        if first_record.is_none() {
            first_record = records.first().cloned();
        } else if pages == 2 && flaw == Some(Flaw::RepeatsRecord) {
            let repeated: Vec<Value> = first_record.clone().into_iter().collect();
            send(tx, records_page(&repeated)).await;
        }
        let shown_pages = if pages == 3 && flaw == Some(Flaw::CursorBackwards) {
            1
        } else {
            pages
        };
        let state = StreamState(json!({ "pages": shown_pages, "after": after }));
        if flaw == Some(Flaw::BuffersAll) {
            buffered.extend(records);
            states.push(state);
        } else if flaw == Some(Flaw::CheckpointLosesPage) {
            send(tx, SourceEvent::Checkpoint(state)).await;
            send(tx, records_page(&records)).await;
        } else {
            send(tx, records_page(&records)).await;
            send(tx, SourceEvent::Checkpoint(state)).await;
        }
        if !more {
            break;
        }
    }
    if !buffered.is_empty() {
        send(tx, records_page(&buffered)).await;
        for state in states {
            send(tx, SourceEvent::Checkpoint(state)).await;
        }
    }
    Ok(())
}

fn records_page(records: &[Value]) -> SourceEvent {
    SourceEvent::Page(JsonPage {
        records: records
            .iter()
            .map(|r| serde_json::value::to_raw_value(r).unwrap())
            .collect(),
    })
}

async fn send(tx: &EventSender, event: SourceEvent) {
    let _ = tx.send(Ok(event)).await;
}

/// The customers reader with one flaw (or none), read in slices or page by page.
struct Harness(Option<Flaw>, bool);

#[async_trait]
impl SourceHarness for Harness {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            api: Api::Stripe,
            stream: "customers".into(),
            incremental: false,
            page_size: PAGE,
            secrets: vec![DEFAULT_STRIPE_KEY.into()],
            sandbox: SandboxConfig {
                size: 100,
                ..SandboxConfig::default()
            },
        }
    }

    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError> {
        let own = BudgetRegistry::new();
        let registry = match self.0 {
            Some(Flaw::IgnoresBudget) => &own,
            _ => env.budgets,
        };
        let budget = registry.budget(
            BudgetKey::for_credential("stripe", DEFAULT_STRIPE_KEY),
            Limits::per_second(env.requests_per_second),
        );
        let http = HttpClient::builder("stripe", env.sandbox.base_url(Api::Stripe).parse()?)
            .auth(Auth::Bearer(SecretString::from(DEFAULT_STRIPE_KEY)))
            .budget(budget)
            .settings(HttpSettings {
                initial_backoff_ms: 10,
                max_backoff_ms: 100,
                max_attempts: if self.0 == Some(Flaw::GivesUpOnServerErrors) {
                    1
                } else {
                    HttpSettings::default().max_attempts
                },
                ..HttpSettings::default()
            })
            .build()?;
        Ok(Box::new(Customers {
            http,
            flaw: self.0,
            sliced: self.1,
            discovers: AtomicU64::new(0),
        }))
    }

    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError> {
        Ok(control.stripe_customer_ids().into_iter().collect())
    }

    fn slice_key(&self) -> Option<String> {
        self.1.then(|| "created".to_string())
    }
}

async fn failed(flaw: Option<Flaw>) -> Vec<Check> {
    let report = run_suite(&Harness(flaw, flaw == Some(Flaw::RestartsSlices))).await;
    println!("{report}");
    assert_eq!(report.checks.len(), 9, "{report}");
    report.failed()
}

#[tokio::test]
async fn a_correct_source_passes_every_check() {
    // Read in slices, it passes every check; page by page, every check but
    // the sliced one, which it skips.
    for sliced in [true, false] {
        let report = run_suite(&Harness(None, sliced)).await;
        report.assert_passed();
        assert_eq!(
            report.checks.iter().map(|c| c.check).collect::<Vec<_>>(),
            weft_conformance::source::CHECKS.to_vec()
        );
        for c in &report.checks {
            let skipped = !sliced && c.check == Check::SlicedExactlyOnce;
            assert_eq!(
                matches!(c.outcome, Outcome::Skipped { .. }),
                skipped,
                "sliced {sliced}: {report}"
            );
        }
    }
}

#[tokio::test]
async fn restarting_the_slices_on_resume_fails_the_sliced_check() {
    assert_eq!(
        failed(Some(Flaw::RestartsSlices)).await,
        [Check::SlicedExactlyOnce]
    );
}

#[tokio::test]
async fn unstable_discover_fails_discover_stable() {
    assert_eq!(
        failed(Some(Flaw::UnstableDiscover)).await,
        [Check::DiscoverStable]
    );
}

#[tokio::test]
async fn a_repeated_record_fails_pagination() {
    assert_eq!(
        failed(Some(Flaw::RepeatsRecord)).await,
        [Check::PaginationExactlyOnce]
    );
}

#[tokio::test]
async fn a_backwards_cursor_fails_cursor_forward() {
    assert_eq!(
        failed(Some(Flaw::CursorBackwards)).await,
        [Check::CursorForward]
    );
}

#[tokio::test]
async fn a_checkpoint_ahead_of_its_page_fails_the_round_trip() {
    assert_eq!(
        failed(Some(Flaw::CheckpointLosesPage)).await,
        [Check::CheckpointRoundTrip]
    );
}

#[tokio::test]
async fn retrying_a_401_fails_auth() {
    assert_eq!(failed(Some(Flaw::RetriesAuth)).await, [Check::AuthFailure]);
}

#[tokio::test]
async fn giving_up_on_a_server_error_fails_server_error_retried() {
    assert_eq!(
        failed(Some(Flaw::GivesUpOnServerErrors)).await,
        [Check::ServerErrorRetried]
    );
}

#[tokio::test]
async fn leaking_the_key_fails_auth() {
    let report = run_suite(&Harness(Some(Flaw::LeaksSecret), false)).await;
    assert_eq!(report.failed(), [Check::AuthFailure], "{report}");
    let Some(Outcome::Failed { reason }) = report.outcome(Check::AuthFailure) else {
        panic!("{report}");
    };
    assert_eq!(
        reason,
        "the authentication error reveals a credential in its text"
    );
    assert!(!report.to_string().contains(DEFAULT_STRIPE_KEY));
}

#[tokio::test]
async fn a_private_budget_fails_shared_budget() {
    assert_eq!(
        failed(Some(Flaw::IgnoresBudget)).await,
        [Check::SharedBudget]
    );
}

#[tokio::test]
async fn buffering_every_record_fails_memory_bounded() {
    assert_eq!(failed(Some(Flaw::BuffersAll)).await, [Check::MemoryBounded]);
}
