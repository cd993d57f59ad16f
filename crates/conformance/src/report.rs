//! What a suite run found: one outcome per check.

use std::fmt;

/// A check of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Check {
    /// Two discovers (of one source and of a second build) give identical stream specs.
    DiscoverStable,
    /// A full read yields every expected record exactly once.
    PaginationExactlyOnce,
    /// Watermarks in checkpoints never move backwards, within a read and across runs.
    CursorForward,
    /// A checkpoint serialised and fed back resumes without losing records; an
    /// incremental re-read with nothing changed re-reads only the boundary.
    CheckpointRoundTrip,
    /// A 401 is a clear error, not retried, with no secret in it.
    AuthFailure,
    /// Server errors (5xx) are retried until the read succeeds, completely.
    ServerErrorRetried,
    /// Two sources built from one budget registry stay under the shared rate (no 429).
    SharedBudget,
    /// Records arrive in bounded pages, never all buffered into one.
    MemoryBounded,
    /// A sliced read (windows read concurrently) yields every record once; a
    /// read resumed mid-way re-reads no slice its checkpoint had finished.
    SlicedExactlyOnce,
    /// Merge upserts by primary key; among duplicates the latest cursor wins.
    MergeSemantics,
    /// Append inserts every row.
    AppendSemantics,
    /// Replace leaves exactly the last run's rows.
    ReplaceSemantics,
    /// A new column in a later load is added; earlier rows hold null in it.
    SchemaEvolution,
    /// A load that crashes before commit leaves nothing; re-running commits it
    /// exactly once; re-committing a known load id is a no-op.
    CrashBeforeCommit,
    /// Loads sealed with `commit_background` while the next one is written
    /// commit in order, each with its state and one receipt; a load abandoned
    /// after them leaves them committed.
    BackgroundCommit,
    /// A sync target creates, updates and (in mirror mode) deletes with exact
    /// counts at the destination; a re-run with nothing changed sends nothing.
    SyncLifecycle,
    /// A record the destination rejects is recorded with its reason, kept out
    /// of the snapshot and sent again next run.
    SyncRejectRetried,
    /// No write request carries more records than the API allows.
    SyncBatchLimit,
    /// 500s and 429s on a share of requests: re-runs end with exactly the model.
    SyncFaultStorm,
    /// A destination refusing the credentials fails the batch with an error
    /// free of secrets, acknowledging and rejecting nothing.
    SyncAuthFailure,
    /// Undeclared modes are refused before anything is sent; `create_only` and
    /// `update_only` are enforced against the destination's own records.
    SyncModes,
}

impl Check {
    /// The check's name in reports (`pagination_exactly_once`).
    pub fn name(self) -> &'static str {
        match self {
            Check::DiscoverStable => "discover_stable",
            Check::PaginationExactlyOnce => "pagination_exactly_once",
            Check::CursorForward => "cursor_forward",
            Check::CheckpointRoundTrip => "checkpoint_round_trip",
            Check::AuthFailure => "auth_failure",
            Check::ServerErrorRetried => "server_error_retried",
            Check::SharedBudget => "shared_budget",
            Check::MemoryBounded => "memory_bounded",
            Check::SlicedExactlyOnce => "sliced_exactly_once",
            Check::MergeSemantics => "merge_semantics",
            Check::AppendSemantics => "append_semantics",
            Check::ReplaceSemantics => "replace_semantics",
            Check::SchemaEvolution => "schema_evolution",
            Check::CrashBeforeCommit => "crash_before_commit",
            Check::BackgroundCommit => "background_commit",
            Check::SyncLifecycle => "sync_lifecycle",
            Check::SyncRejectRetried => "sync_reject_retried",
            Check::SyncBatchLimit => "sync_batch_limit",
            Check::SyncFaultStorm => "sync_fault_storm",
            Check::SyncAuthFailure => "sync_auth_failure",
            Check::SyncModes => "sync_modes",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The implementation did what the check requires.
    Passed,
    /// It did not; `reason` says what was observed.
    Failed {
        /// What was expected and what happened.
        reason: String,
    },
    /// The check does not apply to the declared capabilities.
    Skipped {
        /// Which capability rules it out.
        reason: String,
    },
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check.
    pub check: Check,
    /// What happened.
    pub outcome: Outcome,
}

/// Every check of one suite run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What was checked (`stripe/customers`, `duckdb`).
    pub subject: String,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// A report on `subject` with no checks yet.
    pub(crate) fn new(subject: impl Into<String>) -> Self {
        Report {
            subject: subject.into(),
            checks: Vec::new(),
        }
    }

    /// Records a check's result (`Err` = failed with that reason).
    pub(crate) fn record(&mut self, check: Check, result: Result<Outcome, String>) {
        let outcome = result.unwrap_or_else(|reason| Outcome::Failed { reason });
        self.checks.push(CheckResult { check, outcome });
    }

    /// The checks that failed, in order.
    pub fn failed(&self) -> Vec<Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
            .map(|c| c.check)
            .collect()
    }

    /// The outcome of `check`, if it ran.
    pub fn outcome(&self, check: Check) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.check == check)
            .map(|c| &c.outcome)
    }

    /// Panics with every failed check's name and reason, unless all passed
    /// (or were skipped).
    pub fn assert_passed(&self) {
        let failed = self.failed();
        assert!(
            failed.is_empty(),
            "conformance of {} failed {} check(s): {}\n{self}",
            self.subject,
            failed.len(),
            failed
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance of {}:", self.subject)?;
        for c in &self.checks {
            match &c.outcome {
                Outcome::Passed => writeln!(f, "  ok    {}", c.check)?,
                Outcome::Failed { reason } => writeln!(f, "  FAIL  {}: {reason}", c.check)?,
                Outcome::Skipped { reason } => writeln!(f, "  skip  {}: {reason}", c.check)?,
            }
        }
        Ok(())
    }
}
