//! Completeness: the records a stream's source said its window holds
//! against the records the run took in.
//!
//! A source that can count cheaply says so while it reads
//! ([`weft_core::StreamMetrics::add_source_count`]: Salesforce's `COUNT()`
//! of the changed rows, Mailchimp's `total_items` and Zoom's `total_records`
//! of each listing); the run's report carries the sum as
//! [`weft_core::StreamReport::source_count`].
//! The records taken in are the rows the run committed plus those it
//! quarantined (a rejected record was received, and kept with its reason).
//!
//! Only a shortfall is flagged: more records than counted are records that
//! changed while the read was under way (they fall into the window after it
//! was counted), not a loss. A shortfall within `quality.completeness_tolerance`
//! (a share of the count, default 0) passes.

use chrono::Utc;
use weft_core::{RunReport, StreamStatus};
use weft_warehouse::{QualityKind, QualityRow, QualityStatus};

use crate::PipelineConfig;
use crate::config::CheckAction;
use crate::quality::{fail_stream, flag_notice, settings_of};

/// How a stream's records compare with its source's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletenessVerdict {
    /// As many records as counted, or more (changed while reading), or a
    /// shortfall within the tolerance.
    Complete {
        /// Records the count says are missing (0 when none are).
        missing: u64,
    },
    /// Fewer records than counted, beyond the tolerance.
    Short {
        /// Records the count says are missing.
        missing: u64,
        /// The most missing records the tolerance allows.
        allowed: u64,
    },
}

/// Judges `observed` records against the source's `counted` with a
/// `tolerance` (a share of the count, 0 to 1): a shortfall of more than
/// `floor(counted x tolerance)` records is [`CompletenessVerdict::Short`].
pub fn judge_completeness(observed: u64, counted: u64, tolerance: f64) -> CompletenessVerdict {
    let missing = counted.saturating_sub(observed);
    let allowed = (counted as f64 * tolerance.clamp(0.0, 1.0)).floor() as u64;
    if missing > allowed {
        CompletenessVerdict::Short { missing, allowed }
    } else {
        CompletenessVerdict::Complete { missing }
    }
}

/// Judges every stream of `report` that read to its end and whose source
/// counted (and whose `quality.completeness` is not `off`): a shortfall is
/// a `quality P.S: completeness …` notice, and with `fail` the stream
/// fails. Returns one `completeness` row per stream judged.
pub(crate) fn check_completeness(
    p: &PipelineConfig,
    run_id: &str,
    report: &mut RunReport,
) -> Vec<QualityRow> {
    let mut rows = Vec::new();
    for stream in &mut report.streams {
        let Some(counted) = stream.source_count else {
            continue;
        };
        // A stream stopped early (failed, cancelled, at a quota) did not read
        // what it counted: nothing to judge.
        if stream.status != StreamStatus::Succeeded {
            continue;
        }
        let q = settings_of(p, &stream.stream);
        let action = q.completeness.unwrap_or_default();
        if action == CheckAction::Off {
            continue;
        }
        let tolerance = q.completeness_tolerance.unwrap_or(0.0);
        let observed = stream.rows + stream.rejected;
        let verdict = judge_completeness(observed, counted, tolerance);
        let took = if stream.rejected > 0 {
            format!(
                "{observed} records taken in ({} rows, {} rejected)",
                stream.rows, stream.rejected
            )
        } else {
            format!("{observed} rows loaded")
        };
        let (status, message) = match verdict {
            CompletenessVerdict::Complete { missing: 0 } if observed > counted => (
                QualityStatus::Ok,
                format!("{took}, the source counted {counted} (the rest changed while reading)"),
            ),
            CompletenessVerdict::Complete { missing: 0 } => (
                QualityStatus::Ok,
                format!("{took}, the source counted {counted}"),
            ),
            CompletenessVerdict::Complete { missing } => (
                QualityStatus::Ok,
                format!(
                    "{took}, the source counted {counted}: {missing} missing, within the tolerance"
                ),
            ),
            CompletenessVerdict::Short { missing, allowed } => (
                if action == CheckAction::Fail {
                    QualityStatus::Fail
                } else {
                    QualityStatus::Warn
                },
                format!(
                    "{took}, but the source counted {counted}: {missing} missing (at most {allowed} allowed)"
                ),
            ),
        };
        if status != QualityStatus::Ok {
            flag_notice(stream, &p.name, &format!("completeness {message}"));
            if status == QualityStatus::Fail {
                fail_stream(
                    stream,
                    &format!("incomplete read (the loaded data stays committed): {message}"),
                );
            }
        }
        rows.push(QualityRow {
            run_id: run_id.to_string(),
            pipeline: p.name.clone(),
            stream: stream.stream.clone(),
            load_id: None,
            kind: QualityKind::Completeness,
            column: None,
            observed: Some(observed as f64),
            expected: Some(counted as f64),
            threshold: Some(format!(
                ">= {}",
                counted.saturating_sub((counted as f64 * tolerance.clamp(0.0, 1.0)).floor() as u64)
            )),
            status,
            message,
            checked_at: Utc::now(),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_shortfall_beyond_the_tolerance_is_short() {
        assert_eq!(
            judge_completeness(999, 1000, 0.0),
            CompletenessVerdict::Short {
                missing: 1,
                allowed: 0
            }
        );
        assert_eq!(
            judge_completeness(990, 1000, 0.01),
            CompletenessVerdict::Complete { missing: 10 }
        );
        assert_eq!(
            judge_completeness(989, 1000, 0.01),
            CompletenessVerdict::Short {
                missing: 11,
                allowed: 10
            }
        );
        // More than counted: changed while reading, never flagged.
        assert_eq!(
            judge_completeness(1005, 1000, 0.0),
            CompletenessVerdict::Complete { missing: 0 }
        );
        assert_eq!(
            judge_completeness(0, 0, 0.0),
            CompletenessVerdict::Complete { missing: 0 }
        );
    }

    proptest! {
        /// Short exactly when more records are missing than the tolerance's
        /// share of the count allows; the missing count is the shortfall.
        #[test]
        fn short_iff_the_shortfall_exceeds_the_tolerance(
            observed in 0u64..10_000,
            counted in 0u64..10_000,
            tolerance in 0.0f64..0.5,
        ) {
            let missing = counted.saturating_sub(observed);
            let allowed = (counted as f64 * tolerance).floor() as u64;
            match judge_completeness(observed, counted, tolerance) {
                CompletenessVerdict::Short { missing: m, allowed: a } => {
                    prop_assert_eq!((m, a), (missing, allowed));
                    prop_assert!(m > a);
                }
                CompletenessVerdict::Complete { missing: m } => {
                    prop_assert_eq!(m, missing);
                    prop_assert!(m <= allowed);
                }
            }
        }
    }
}
