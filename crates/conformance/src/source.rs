//! Source checks: what every source connector must do against the sandbox.
//!
//! The suite starts a [`Sandbox`] from the harness's config, builds the
//! source through [`SourceHarness::build`] (a fresh build per check, so
//! checks do not share tokens or budgets), reads one stream with
//! [`Source::read`], and judges the events: the records (by the stream's
//! primary key) against [`SourceHarness::expected_keys`], the checkpoints,
//! the page sizes. Faults and rate limits are set through the sandbox's
//! control handle while a check runs and cleared after it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use weft_core::{BoxError, Source, StreamSpec, StreamState};
use weft_http::BudgetRegistry;
use weft_sandbox::{Api, Control, Faults, Sandbox, SandboxConfig};

use crate::read::{StreamRead, chain, read_stream};
use crate::{Check, Outcome, Report};

/// The source checks, in the order [`run_suite`] runs them.
pub const CHECKS: [Check; 9] = [
    Check::DiscoverStable,
    Check::PaginationExactlyOnce,
    Check::CursorForward,
    Check::CheckpointRoundTrip,
    Check::MemoryBounded,
    Check::AuthFailure,
    Check::ServerErrorRetried,
    Check::SharedBudget,
    Check::SlicedExactlyOnce,
];

/// Latency the sandbox adds in the sliced check, so the budget sizes more
/// than one request in flight.
const SLICED_LATENCY_MS: u64 = 20;

/// The rate each source's budget is configured to in the shared-budget check.
pub const BUDGET_REQUESTS_PER_SECOND: f64 = 10.0;
/// The sandbox's limit in the shared-budget check: above one budget's rate,
/// below two budgets' (sources that do not share the budget get 429s).
pub const SANDBOX_REQUESTS_PER_SECOND: u32 = 15;
/// The rate sources are configured to in every other check (effectively unlimited).
pub const FAST_REQUESTS_PER_SECOND: f64 = 10_000.0;
/// Requests a read may send after its first 401: one re-authentication and one retry.
pub const MAX_REQUESTS_AFTER_401: u64 = 3;
/// Requests answered 500 before the sandbox recovers in the server-error check.
pub const SERVER_ERRORS: u64 = 2;
/// How long the server-error check waits for the source to send its requests.
const SERVER_ERROR_WAIT: Duration = Duration::from_secs(60);

/// What a source declares about itself and the stream the suite reads.
#[derive(Debug, Clone)]
pub struct SourceCapabilities {
    /// The sandbox API the source talks to.
    pub api: Api,
    /// The stream the suite reads (one the source's discover lists).
    pub stream: String,
    /// Whether reads resume from a cursor: an incremental re-read from the
    /// last checkpoint with nothing changed must return only records at the
    /// boundary (cursor equal to the largest one read).
    pub incremental: bool,
    /// The most records one page (or batch) may hold, as the harness
    /// configured the source (its `page_size`, or the API's fixed page).
    pub page_size: usize,
    /// Credentials the source is built with; none may appear in any error.
    pub secrets: Vec<String>,
    /// The sandbox the suite starts (seed, size, credentials).
    pub sandbox: SandboxConfig,
}

/// What the suite hands to [`SourceHarness::build`].
pub struct SourceEnv<'a> {
    /// The running sandbox (`base_url(api)` for the source's base URL).
    pub sandbox: &'a Sandbox,
    /// The registry the source must take its rate budget from.
    pub budgets: &'a BudgetRegistry,
    /// The request rate to configure the source's budget to.
    pub requests_per_second: f64,
}

/// How the suite builds and judges one source connector.
///
/// Contract: `build` returns a new source each call, configured with
/// `env.requests_per_second` and taking its budget from `env.budgets`;
/// `expected_keys` lists the primary keys (columns joined by `|`) of every
/// live record of the stream as the sandbox holds them now.
#[async_trait]
pub trait SourceHarness: Send + Sync {
    /// The source's capabilities and the stream under test.
    fn capabilities(&self) -> SourceCapabilities;

    /// Builds the source against `env.sandbox`.
    async fn build(&self, env: &SourceEnv<'_>) -> Result<Box<dyn Source>, BoxError>;

    /// The keys a full read must return, from the sandbox's control handle.
    fn expected_keys(&self, control: &Control) -> Result<BTreeSet<String>, BoxError>;

    /// Whether a record read counts as live (e.g. not a soft-deleted row);
    /// only live records are compared with [`SourceHarness::expected_keys`].
    fn is_live(&self, _record: &Value) -> bool {
        true
    }

    /// For a source that reads the stream in slices ([`weft_http::read_sliced`],
    /// saving its [`weft_http::SliceState`] under `slices` in its state): the
    /// record field whose values the slices are windows of (Stripe: `created`).
    /// `None` (the default) skips [`Check::SlicedExactlyOnce`].
    fn slice_key(&self) -> Option<String> {
        None
    }
}

/// Runs every source check against `harness` and reports each.
///
/// Never panics; call [`Report::assert_passed`] on the result in a test.
pub async fn run_suite<H: SourceHarness + ?Sized>(harness: &H) -> Report {
    let caps = harness.capabilities();
    let mut report = Report::new(format!("{}/{}", caps.api, caps.stream));
    let sandbox = match Sandbox::start(caps.sandbox.clone()).await {
        Ok(s) => s,
        Err(e) => {
            for check in CHECKS {
                report.record(check, Err(format!("the sandbox did not start: {e}")));
            }
            return report;
        }
    };
    let control = sandbox.control();
    control.set_rate_limits(caps.api, false);
    let suite = Suite {
        harness,
        caps: &caps,
        sandbox: &sandbox,
        control: &control,
    };
    report.record(Check::DiscoverStable, suite.discover_stable().await);
    let expected = harness
        .expected_keys(&control)
        .map_err(|e| format!("the harness could not list the expected records: {e}"));
    let (spec, expected) = match (suite.discover().await, expected) {
        (Ok(spec), Ok(expected)) => (spec, expected),
        (Err(e), _) | (_, Err(e)) => {
            for check in &CHECKS[1..] {
                report.record(*check, Err(e.clone()));
            }
            sandbox.shutdown().await;
            return report;
        }
    };
    let baseline = suite.baseline().await;
    match &baseline {
        Ok(b) => {
            report.record(
                Check::PaginationExactlyOnce,
                suite.pagination(&spec, &expected, b),
            );
            report.record(Check::CursorForward, suite.cursor_forward(b).await);
            report.record(
                Check::CheckpointRoundTrip,
                suite.checkpoint_round_trip(&spec, &expected, b).await,
            );
            report.record(Check::MemoryBounded, memory_bounded(&caps, b));
        }
        Err(e) => {
            for check in [
                Check::PaginationExactlyOnce,
                Check::CursorForward,
                Check::CheckpointRoundTrip,
                Check::MemoryBounded,
            ] {
                report.record(check, Err(e.clone()));
            }
        }
    }
    report.record(Check::AuthFailure, suite.auth_failure().await);
    report.record(
        Check::ServerErrorRetried,
        suite.server_error_retried(&spec, &expected).await,
    );
    report.record(
        Check::SharedBudget,
        suite.shared_budget(&spec, &expected).await,
    );
    report.record(
        Check::SlicedExactlyOnce,
        suite.sliced_exactly_once(&spec, &expected).await,
    );
    sandbox.shutdown().await;
    report
}

/// No page (or batch) holds more records than the declared page size.
fn memory_bounded(caps: &SourceCapabilities, log: &StreamRead) -> Result<Outcome, String> {
    let largest = log.pages.iter().copied().max().unwrap_or(0);
    if largest > caps.page_size {
        return Err(format!(
            "a page of {largest} records exceeds the declared page size of {}: \
             records are buffered instead of emitted page by page",
            caps.page_size
        ));
    }
    Ok(Outcome::Passed)
}

/// The read, or its error as a check failure naming `what` failed.
fn finished(read: StreamRead, what: &str) -> Result<StreamRead, String> {
    read.into_result()
        .map_err(|e| format!("{what} failed: {}", chain(e.as_ref())))
}

struct Suite<'a, H: ?Sized> {
    harness: &'a H,
    caps: &'a SourceCapabilities,
    sandbox: &'a Sandbox,
    control: &'a Control,
}

impl<H: SourceHarness + ?Sized> Suite<'_, H> {
    async fn build(&self, budgets: &BudgetRegistry, rps: f64) -> Result<Box<dyn Source>, String> {
        let env = SourceEnv {
            sandbox: self.sandbox,
            budgets,
            requests_per_second: rps,
        };
        self.harness
            .build(&env)
            .await
            .map_err(|e| format!("the harness could not build the source: {e}"))
    }

    async fn fast_source(&self) -> Result<Box<dyn Source>, String> {
        self.build(&BudgetRegistry::new(), FAST_REQUESTS_PER_SECOND)
            .await
    }

    fn spec(&self, source: &dyn Source) -> Result<StreamSpec, String> {
        source
            .streams()
            .into_iter()
            .find(|s| s.name == self.caps.stream)
            .ok_or_else(|| {
                format!(
                    "{} does not list the stream `{}`",
                    source.connector(),
                    self.caps.stream
                )
            })
    }

    /// Reads the stream from `state`; stops after checkpoint number `stop_after` (1-based).
    async fn read(
        &self,
        source: &dyn Source,
        state: Option<StreamState>,
        stop_after: Option<usize>,
    ) -> StreamRead {
        // The sandbox's clock is ahead of the wall clock (its history ends in
        // the future): start the extraction after it, so watermarks are not capped.
        let started_at = chrono::DateTime::from_timestamp(self.control.now() + 3600, 0)
            .unwrap_or_else(chrono::Utc::now);
        let read = read_stream(source, &self.caps.stream)
            .state(state)
            .started_at(started_at);
        match stop_after {
            Some(n) => read.stop_after_checkpoint(n).await,
            None => read.await,
        }
    }

    fn live_keys(&self, records: &[Value], spec: &StreamSpec) -> Result<BTreeSet<String>, String> {
        records
            .iter()
            .filter(|r| self.harness.is_live(r))
            .map(|r| key_of(r, &spec.primary_key))
            .collect()
    }

    /// The stream's spec from one discover; its primary key must not be empty.
    async fn discover(&self) -> Result<StreamSpec, String> {
        let source = self.fast_source().await?;
        let spec = self.spec(source.as_ref())?;
        if spec.primary_key.is_empty() {
            return Err(format!("stream `{}` declares no primary key", spec.name));
        }
        Ok(spec)
    }

    async fn discover_stable(&self) -> Result<Outcome, String> {
        let a = self.fast_source().await?;
        let b = self.fast_source().await?;
        let first = a.streams();
        self.spec(a.as_ref())?;
        if first != a.streams() {
            return Err(format!(
                "two discovers of one {} source differ",
                a.connector()
            ));
        }
        if first != b.streams() {
            return Err(format!(
                "two {} sources built alike discover different streams",
                a.connector()
            ));
        }
        Ok(Outcome::Passed)
    }

    async fn baseline(&self) -> Result<StreamRead, String> {
        let source = self.fast_source().await?;
        finished(
            self.read(source.as_ref(), None, None).await,
            "the full read",
        )
    }

    fn pagination(
        &self,
        spec: &StreamSpec,
        expected: &BTreeSet<String>,
        log: &StreamRead,
    ) -> Result<Outcome, String> {
        if expected.is_empty() {
            return Err("the harness expects no records: pagination cannot be judged".into());
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in &log.records {
            *counts.entry(key_of(r, &spec.primary_key)?).or_default() += 1;
        }
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        if let Some((key, n)) = repeated.first() {
            return Err(format!(
                "{} record(s) read more than once in one read (key `{key}` {n} times)",
                repeated.len()
            ));
        }
        compare_sets(
            expected,
            &self.live_keys(&log.records, spec)?,
            "a full read",
        )?;
        Ok(Outcome::Passed)
    }

    async fn cursor_forward(&self, log: &StreamRead) -> Result<Outcome, String> {
        let Some(last) = log.last_state() else {
            return Err("the full read emitted no checkpoint".into());
        };
        for (i, pair) in log.states.windows(2).enumerate() {
            watermarks_forward(&pair[0], &pair[1])
                .map_err(|e| format!("checkpoint {} -> {} of the full read: {e}", i + 1, i + 2))?;
        }
        // Across runs: resuming from the last checkpoint never saves an older one.
        let source = self.fast_source().await?;
        let next = finished(
            self.read(source.as_ref(), Some(round_trip(last)?), None)
                .await,
            "the re-read from the last checkpoint",
        )?;
        for (i, state) in next.states.iter().enumerate() {
            watermarks_forward(last, state).map_err(|e| {
                format!(
                    "the next run's checkpoint {} against the last one saved: {e}",
                    i + 1
                )
            })?;
        }
        Ok(Outcome::Passed)
    }

    async fn checkpoint_round_trip(
        &self,
        spec: &StreamSpec,
        expected: &BTreeSet<String>,
        log: &StreamRead,
    ) -> Result<Outcome, String> {
        let n = log.states.len();
        if n == 0 {
            return Err("the full read emitted no checkpoint".into());
        }
        // Stop at the middle checkpoint (as a crash after committing it would),
        // then resume from its state, serialised and parsed back.
        let stop = n.div_ceil(2);
        let source = self.fast_source().await?;
        let partial = finished(
            self.read(source.as_ref(), None, Some(stop)).await,
            "the partial read",
        )?;
        let (Some(before), Some(state)) =
            (partial.records_before_state.last(), partial.last_state())
        else {
            return Err(format!("the partial read did not reach checkpoint {stop}"));
        };
        let resumed = finished(
            self.read(source.as_ref(), Some(round_trip(state)?), None)
                .await,
            "the resumed read",
        )?;
        let mut union = self.live_keys(&partial.records[..*before], spec)?;
        union.extend(self.live_keys(&resumed.records, spec)?);
        compare_sets(
            expected,
            &union,
            &format!("records before checkpoint {stop} of {n} plus the read resumed from it"),
        )?;
        if !self.caps.incremental {
            return Ok(Outcome::Passed);
        }
        let Some(cursor) = &spec.cursor_field else {
            return Err(format!(
                "declared incremental, but stream `{}` has no cursor field",
                spec.name
            ));
        };
        let Some(last) = log.last_state() else {
            return Err("the full read emitted no checkpoint".into());
        };
        let boundary = log
            .records
            .iter()
            .filter_map(|r| r.get(cursor))
            .max_by(|a, b| json_cmp(a, b))
            .cloned()
            .ok_or_else(|| format!("no record of the full read has the cursor `{cursor}`"))?;
        let again = finished(
            self.read(source.as_ref(), Some(round_trip(last)?), None)
                .await,
            "the incremental re-read",
        )?;
        let stale: Vec<&Value> = again
            .records
            .iter()
            .filter(|r| {
                r.get(cursor)
                    .is_none_or(|c| json_cmp(c, &boundary) == std::cmp::Ordering::Less)
            })
            .collect();
        if let Some(first) = stale.first() {
            return Err(format!(
                "with nothing changed, an incremental re-read from the last checkpoint returned \
                 {} of {} records from before the boundary `{cursor}` = {boundary} \
                 (first: key `{}`): the checkpoint does not move the cursor",
                stale.len(),
                again.records.len(),
                key_of(first, &spec.primary_key).unwrap_or_default()
            ));
        }
        Ok(Outcome::Passed)
    }

    async fn sliced_exactly_once(
        &self,
        spec: &StreamSpec,
        expected: &BTreeSet<String>,
    ) -> Result<Outcome, String> {
        let Some(key) = self.harness.slice_key() else {
            return Ok(Outcome::Skipped {
                reason: "the source does not read in slices".into(),
            });
        };
        self.control.set_faults(
            self.caps.api,
            Faults {
                latency_ms: SLICED_LATENCY_MS,
                ..Faults::default()
            },
        );
        let outcome = self.sliced_reads(spec, expected, &key).await;
        self.control.set_faults(self.caps.api, Faults::default());
        outcome
    }

    async fn sliced_reads(
        &self,
        spec: &StreamSpec,
        expected: &BTreeSet<String>,
        key: &str,
    ) -> Result<Outcome, String> {
        let source = self.fast_source().await?;
        let full = finished(
            self.read(source.as_ref(), None, None).await,
            "the sliced read",
        )?;
        let m = full.metrics;
        if m.slices_split == 0 {
            return Err(format!(
                "declared sliced, but the read never split ({} slice(s) planned, {} request(s))",
                m.slices_planned, m.requests
            ));
        }
        self.pagination(spec, expected, &full)
            .map_err(|e| format!("across {} slices: {e}", m.slices_planned))?;
        // Stop a second read a third of the way (as a crash after committing
        // that checkpoint would), then resume from its state.
        let stop = full.states.len().div_ceil(3).max(1);
        let partial = finished(
            self.read(source.as_ref(), None, Some(stop)).await,
            "the partial sliced read",
        )?;
        let (Some(before), Some(state)) =
            (partial.records_before_state.last(), partial.last_state())
        else {
            return Err(format!("the partial read did not reach checkpoint {stop}"));
        };
        let left = weft_http::SliceState::from_value(state.0.get("slices"))
            .map_err(|e| format!("checkpoint {stop}: {e}"))?
            .filter(|s| !s.is_done())
            .ok_or_else(|| {
                format!(
                    "checkpoint {stop} of {} lists no slices left under `slices`",
                    full.states.len()
                )
            })?;
        let resumed = finished(
            self.read(source.as_ref(), Some(round_trip(state)?), None)
                .await,
            "the resumed sliced read",
        )?;
        let committed = &partial.records[..*before];
        let mut union = self.live_keys(committed, spec)?;
        union.extend(self.live_keys(&resumed.records, spec)?);
        compare_sets(
            expected,
            &union,
            &format!("records before sliced checkpoint {stop} plus the read resumed from it"),
        )?;
        let again = self.live_keys(&resumed.records, spec)?;
        for record in committed {
            let k = key_of(record, &spec.primary_key)?;
            if !again.contains(&k) {
                continue;
            }
            let at = record.get(key).and_then(Value::as_i64);
            if !at.is_some_and(|v| left.windows.iter().any(|w| w.contains(v))) {
                return Err(format!(
                    "record `{k}` ({key} = {}) was read again after checkpoint {stop}, outside \
                     every slice that checkpoint left ({:?}): a finished slice was re-read",
                    at.map_or_else(|| "none".to_string(), |v| v.to_string()),
                    left.windows
                ));
            }
        }
        Ok(Outcome::Passed)
    }

    async fn auth_failure(&self) -> Result<Outcome, String> {
        // Built before the fault: some sources authenticate while being built.
        let source = self.fast_source().await?;
        let api = self.caps.api;
        let before = self.control.request_count(api);
        self.control.set_faults(
            api,
            Faults {
                bad_auth: true,
                ..Faults::default()
            },
        );
        let log = self.read(source.as_ref(), None, None).await;
        self.control.set_faults(api, Faults::default());
        let sent = self.control.request_count(api) - before;
        let error = match log.into_result() {
            Ok(_) => {
                return Err(
                    "the read succeeded although the API answered every request 401".into(),
                );
            }
            Err(e) => e,
        };
        let text = format!("{}\n{error:?}", chain(error.as_ref()));
        if self
            .caps
            .secrets
            .iter()
            .any(|s| !s.is_empty() && text.contains(s.as_str()))
        {
            return Err("the authentication error reveals a credential in its text".into());
        }
        let lower = text.to_lowercase();
        if !(lower.contains("401") || lower.contains("auth")) {
            return Err(format!(
                "the error does not say authentication failed (no 401 / auth in it): {}",
                chain(error.as_ref())
            ));
        }
        if sent > MAX_REQUESTS_AFTER_401 {
            return Err(format!(
                "the 401 was retried: {sent} requests were sent (at most \
                 {MAX_REQUESTS_AFTER_401}: one re-authentication)"
            ));
        }
        Ok(Outcome::Passed)
    }

    async fn server_error_retried(
        &self,
        spec: &StreamSpec,
        expected: &BTreeSet<String>,
    ) -> Result<Outcome, String> {
        let source = self.fast_source().await?;
        let api = self.caps.api;
        let before = self.control.request_count(api);
        self.control.set_faults(
            api,
            Faults {
                error_rate: 1.0,
                ..Faults::default()
            },
        );
        // Every request fails until the source has sent SERVER_ERRORS of them;
        // then the API recovers (or the read ended first: it gave up).
        let read = self.read(source.as_ref(), None, None);
        tokio::pin!(read);
        let waited = async {
            while self.control.request_count(api) - before < SERVER_ERRORS {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let early = tokio::select! {
            log = &mut read => Some(log),
            _ = tokio::time::timeout(SERVER_ERROR_WAIT, waited) => None,
        };
        let recovered = self.control.request_count(api) - before >= SERVER_ERRORS;
        self.control.set_faults(api, Faults::default());
        let log = match early {
            Some(log) => log,
            None => read.await,
        };
        if let Some(e) = &log.error {
            return Err(format!(
                "the read failed on server errors (the first {SERVER_ERRORS} requests get a 500) instead of retrying: {}",
                chain(e.as_ref())
            ));
        }
        if !recovered {
            return Err(format!(
                "the source sent fewer than {SERVER_ERRORS} requests in {}s",
                SERVER_ERROR_WAIT.as_secs()
            ));
        }
        compare_sets(
            expected,
            &self.live_keys(&log.records, spec)?,
            "a read through server errors",
        )?;
        Ok(Outcome::Passed)
    }

    async fn shared_budget(
        &self,
        spec: &StreamSpec,
        expected: &BTreeSet<String>,
    ) -> Result<Outcome, String> {
        let budgets = BudgetRegistry::new();
        let a = self.build(&budgets, BUDGET_REQUESTS_PER_SECOND).await?;
        let b = self.build(&budgets, BUDGET_REQUESTS_PER_SECOND).await?;
        let api = self.caps.api;
        self.control
            .set_rate_limit_per_sec(api, Some(SANDBOX_REQUESTS_PER_SECOND));
        let (first, second) = tokio::join!(
            self.read(a.as_ref(), None, None),
            self.read(b.as_ref(), None, None)
        );
        self.control.set_rate_limits(api, false);
        let first = finished(first, "the first of two concurrent reads")?;
        let second = finished(second, "the second of two concurrent reads")?;
        for log in [&first, &second] {
            compare_sets(
                expected,
                &self.live_keys(&log.records, spec)?,
                "a read sharing its budget",
            )?;
        }
        let limited = first.metrics.rate_limited + second.metrics.rate_limited;
        if limited > 0 {
            return Err(format!(
                "{limited} request(s) were answered 429: two sources sharing one budget of \
                 {BUDGET_REQUESTS_PER_SECOND} req/s exceeded the API's \
                 {SANDBOX_REQUESTS_PER_SECOND} req/s (the budget is not shared or not honoured)"
            ));
        }
        Ok(Outcome::Passed)
    }
}

/// A record's primary key: its key columns' values joined by `|`.
fn key_of(record: &Value, key: &[String]) -> Result<String, String> {
    let parts = key
        .iter()
        .map(|field| match record.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(format!("a record lacks its primary key `{field}`")),
            Some(other) => Ok(other.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join("|"))
}

/// Fails with the keys missing from and unexpected in `got`.
fn compare_sets(
    expected: &BTreeSet<String>,
    got: &BTreeSet<String>,
    what: &str,
) -> Result<(), String> {
    let missing: Vec<_> = expected.difference(got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let sample = |keys: &[&String]| {
        keys.iter()
            .take(3)
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "{what} returned {} of {} expected records: {} missing ({}), {} unexpected ({})",
        expected.len() - missing.len(),
        expected.len(),
        missing.len(),
        sample(&missing),
        extra.len(),
        sample(&extra)
    ))
}

/// The state as it would be saved and loaded: serialised to JSON text and parsed back.
fn round_trip(state: &StreamState) -> Result<StreamState, String> {
    serde_json::to_string(state)
        .and_then(|text| serde_json::from_str(&text))
        .map_err(|e| format!("the checkpoint state does not round-trip through JSON: {e}"))
}

/// A watermark: a number, or a string holding an RFC 3339 timestamp.
fn watermark(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros() as f64),
        _ => None,
    }
}

/// Every watermark field of `before` is still in `after`, and not smaller.
/// Other fields (page tokens, ids) are opaque and not compared.
fn watermarks_forward(before: &StreamState, after: &StreamState) -> Result<(), String> {
    let fields: Vec<(String, &Value, Option<&Value>)> = match (&before.0, &after.0) {
        (Value::Object(b), Value::Object(a)) => b
            .iter()
            .map(|(k, v)| (format!("`{k}`"), v, a.get(k)))
            .collect(),
        (b, a) => vec![("the state".to_string(), b, Some(a))],
    };
    for (name, old, new) in fields {
        let Some(old_mark) = watermark(old) else {
            continue;
        };
        let Some(new_mark) = new.and_then(watermark) else {
            return Err(format!(
                "watermark {name} ({old}) disappeared from the state"
            ));
        };
        if new_mark < old_mark {
            return Err(format!(
                "watermark {name} moved backwards from {old} to {}",
                new.unwrap_or(&Value::Null)
            ));
        }
    }
    Ok(())
}

/// Orders cursor values: numbers numerically, timestamps by time, other strings as text.
fn json_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (watermark(a), watermark(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn watermarks_compare_numbers_and_timestamps_and_ignore_tokens() {
        let s = |v: Value| StreamState(v);
        assert!(
            watermarks_forward(&s(json!({"a": 1, "t": "x"})), &s(json!({"a": 2, "t": "b"})))
                .is_ok()
        );
        let back = watermarks_forward(&s(json!({"a": 3})), &s(json!({"a": 2}))).unwrap_err();
        assert_eq!(back, "watermark `a` moved backwards from 3 to 2");
        let gone = watermarks_forward(&s(json!({"a": 3})), &s(json!({}))).unwrap_err();
        assert_eq!(gone, "watermark `a` (3) disappeared from the state");
        let t = |x: &str| s(json!({ "at": x }));
        assert!(
            watermarks_forward(&t("2026-01-02T00:00:00Z"), &t("2026-01-01T23:00:00-02:00")).is_ok()
        );
        assert!(
            watermarks_forward(&t("2026-01-02T00:00:00Z"), &t("2026-01-01T23:00:00Z")).is_err()
        );
    }

    #[test]
    fn keys_join_columns_and_require_them() {
        let r = json!({"w": 7, "id": "x"});
        assert_eq!(key_of(&r, &["w".into(), "id".into()]).unwrap(), "7|x");
        assert_eq!(
            key_of(&r, &["nope".into()]).unwrap_err(),
            "a record lacks its primary key `nope`"
        );
    }
}
