//! Volume anomalies: the rows a pipeline run loaded for a stream against
//! the rows the pipeline's earlier runs loaded for it.
//!
//! History comes from what the warehouse committed, through the
//! [`Warehouse`] trait only: the pipeline's runs in `_weft._weft_runs` and
//! its loads in `_weft._weft_loads` since the oldest of them. Run ids and
//! load ids are time-ordered and drawn from the runner's clock, so a load
//! belongs to the newest run whose id is not after its own. An earlier run
//! counts when it succeeded (a stream it committed nothing for loaded 0
//! rows) or when it failed after committing loads of the stream; runs that
//! were cancelled, abandoned or are still running, and failed runs without a
//! load of the stream, say nothing about its usual volume.
//!
//! The judgement ([`judge_volume`]) is a pure function of the rows and the
//! history: the median and the MAD (median absolute deviation) of the
//! history; a volume is flagged when it is at most the median / factor (or
//! at least the median x factor) AND more than [`MAD_LIMIT`] scaled MADs
//! (at least one row each) from the median. A history whose median is 0
//! has no usual volume and flags nothing.

use std::collections::BTreeMap;

use chrono::Utc;
use weft_core::{RunReport, StreamStatus};
use weft_warehouse::{
    LoadRow, QualityKind, QualityRow, QualityStatus, RunKind, RunRecord, RunStatus, Warehouse,
};

use crate::PipelineConfig;
use crate::config::{CheckAction, QualitySettings};
use crate::quality::{fail_stream, flag_notice, settings_of};

/// Earlier runs compared with, by default (`quality.volume_runs`).
pub(crate) const DEFAULT_RUNS: usize = 20;
/// Earlier runs needed before judging, by default (`quality.volume_min_runs`).
pub(crate) const DEFAULT_MIN_RUNS: usize = 5;
/// How many times below or above the median a flagged volume is, by
/// default (`quality.volume_factor`).
pub(crate) const DEFAULT_FACTOR: f64 = 10.0;
/// Makes the MAD of normally distributed values estimate their standard
/// deviation.
pub const MAD_SCALE: f64 = 1.4826;
/// Scaled MADs from the median a flagged volume lies beyond (the scaled
/// MAD counts as at least one row: counts are whole).
pub const MAD_LIMIT: f64 = 3.0;

/// What a volume is judged by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumeRules {
    /// Earlier runs needed before judging.
    pub min_runs: usize,
    /// A flagged volume is at most the median / this, or at least the
    /// median x this (greater than 1).
    pub factor: f64,
}

/// Which way a flagged volume is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// Far fewer rows than usual (0 where there are usually thousands).
    Low,
    /// Far more rows than usual.
    High,
}

/// How a volume was judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VolumeVerdict {
    /// Fewer earlier runs than the rules need: not judged.
    TooFewRuns {
        /// Earlier runs known.
        runs: usize,
        /// Earlier runs needed.
        needed: usize,
    },
    /// The median of the history is 0: no usual volume to compare with.
    NoUsualVolume {
        /// Earlier runs compared with.
        runs: usize,
    },
    /// Judged against the history.
    Judged {
        /// Earlier runs compared with.
        runs: usize,
        /// Their median rows.
        median: f64,
        /// Their median absolute deviation from the median.
        mad: f64,
        /// The most rows flagged as too few (`None`: no count is).
        low_max: Option<u64>,
        /// The fewest rows flagged as too many.
        high_min: u64,
        /// Whether, and which way, the volume is off.
        anomaly: Option<Anomaly>,
    },
}

/// The median of `values` (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => sorted.get(n / 2).copied(),
        _ => Some((sorted.get(n / 2 - 1)? + sorted.get(n / 2)?) / 2.0),
    }
}

/// The median absolute deviation of `values` from `center` (0 when empty).
pub fn mad(values: &[f64], center: f64) -> f64 {
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    median(&deviations).unwrap_or(0.0)
}

/// Judges `observed` rows against `history` (the rows of earlier runs, in
/// any order) by `rules`: see the module doc.
pub fn judge_volume(observed: u64, history: &[u64], rules: VolumeRules) -> VolumeVerdict {
    let runs = history.len();
    if runs < rules.min_runs.max(1) {
        return VolumeVerdict::TooFewRuns {
            runs,
            needed: rules.min_runs.max(1),
        };
    }
    let values: Vec<f64> = history.iter().map(|&v| v as f64).collect();
    let median = median(&values).unwrap_or(0.0);
    if median <= 0.0 {
        return VolumeVerdict::NoUsualVolume { runs };
    }
    let mad = mad(&values, median);
    let spread = MAD_LIMIT * (MAD_SCALE * mad).max(1.0);
    // The greatest whole count x with x <= median / factor and
    // median - x > spread, and the least with x >= median x factor and
    // x - median > spread.
    let low = (median / rules.factor)
        .floor()
        .min((median - spread).ceil() - 1.0);
    let low_max = (low >= 0.0).then_some(low as u64);
    let high = (median * rules.factor)
        .ceil()
        .max((median + spread).floor() + 1.0);
    // Saturates at u64::MAX for a history beyond any real count.
    let high_min = high as u64;
    let anomaly = if low_max.is_some_and(|l| observed <= l) {
        Some(Anomaly::Low)
    } else if observed >= high_min {
        Some(Anomaly::High)
    } else {
        None
    };
    VolumeVerdict::Judged {
        runs,
        median,
        mad,
        low_max,
        high_min,
        anomaly,
    }
}

/// A count for people: whole numbers without a fraction, else one decimal.
fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The rows each stream in `streams` loaded in each earlier run of the
/// pipeline that counts (see the module doc), newest run first, at most
/// `max_runs` each; and the newest load of `current` for each stream.
///
/// `runs` are the pipeline's runs in any order (other kinds are ignored);
/// `loads` its loads since the oldest of them.
pub(crate) fn run_volumes(
    current: &str,
    runs: &[RunRecord],
    loads: &[LoadRow],
    streams: &[&str],
    max_runs: usize,
) -> BTreeMap<String, (Vec<u64>, Option<String>)> {
    let mut bounds: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.kind == RunKind::Pipeline && r.run_id.as_str() != current)
        .collect();
    bounds.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    // Per run (index into `bounds`, or None for the current run): rows and
    // the newest load, per stream.
    let mut per_run: BTreeMap<Option<usize>, BTreeMap<&str, (u64, &str)>> = BTreeMap::new();
    for load in loads {
        let id = load.load_id.as_str();
        let run = if id >= current {
            // After the current run started: no later run exists yet.
            None
        } else {
            match bounds.partition_point(|r| r.run_id.as_str() <= id) {
                0 => continue,
                n => Some(n - 1),
            }
        };
        let entry = per_run
            .entry(run)
            .or_default()
            .entry(load.stream.as_str())
            .or_insert((0, id));
        entry.0 += load.rows;
        entry.1 = entry.1.max(id);
    }
    let mut out = BTreeMap::new();
    for &stream in streams {
        let mut history = Vec::new();
        for (i, run) in bounds.iter().enumerate().rev() {
            if history.len() >= max_runs {
                break;
            }
            let committed = per_run.get(&Some(i)).and_then(|m| m.get(stream));
            match (run.status, committed) {
                (RunStatus::Succeeded, c) => history.push(c.map_or(0, |c| c.0)),
                (RunStatus::Failed, Some(c)) => history.push(c.0),
                _ => {}
            }
        }
        let newest = per_run
            .get(&None)
            .and_then(|m| m.get(stream))
            .map(|c| c.1.to_string());
        out.insert(stream.to_string(), (history, newest));
    }
    out
}

/// Judges the volume of every stream of `report` that committed
/// (succeeded or stopped at a quota) and whose `quality.volume` is not
/// `off`: each flagged one is a `quality P.S: …` notice, and with `fail`
/// the stream fails. Returns one `volume` row per stream judged or not (a
/// full refresh is not judged). A history that cannot be read is a notice
/// and no rows.
pub(crate) async fn check_volumes(
    warehouse: &dyn Warehouse,
    p: &PipelineConfig,
    run_id: &str,
    full_refresh: bool,
    report: &mut RunReport,
) -> Vec<QualityRow> {
    let checked: Vec<(String, QualitySettings)> = report
        .streams
        .iter()
        .filter(|s| {
            matches!(
                s.status,
                StreamStatus::Succeeded | StreamStatus::QuotaReached
            )
        })
        .map(|s| (s.stream.clone(), settings_of(p, &s.stream)))
        .filter(|(_, q)| q.volume.unwrap_or_default() != CheckAction::Off)
        .collect();
    if checked.is_empty() {
        return Vec::new();
    }
    let max_runs = checked
        .iter()
        .map(|(_, q)| q.volume_runs.unwrap_or(DEFAULT_RUNS))
        .max()
        .unwrap_or(DEFAULT_RUNS);
    let volumes = match history(warehouse, &p.name, run_id, &checked, max_runs).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(pipeline = %p.name, error = %e, "reading the volume history failed");
            return Vec::new();
        }
    };
    let mut rows = Vec::new();
    for stream in &mut report.streams {
        let Some((_, q)) = checked.iter().find(|(s, _)| *s == stream.stream) else {
            continue;
        };
        let Some((history, load_id)) = volumes.get(&stream.stream) else {
            continue;
        };
        let runs = q.volume_runs.unwrap_or(DEFAULT_RUNS);
        let history = &history[..history.len().min(runs)];
        let rules = VolumeRules {
            min_runs: q.volume_min_runs.unwrap_or(DEFAULT_MIN_RUNS),
            factor: q.volume_factor.unwrap_or(DEFAULT_FACTOR),
        };
        let observed = stream.rows;
        let verdict = judge_volume(observed, history, rules);
        let mut row = QualityRow {
            run_id: run_id.to_string(),
            pipeline: p.name.clone(),
            stream: stream.stream.clone(),
            load_id: load_id.clone(),
            kind: QualityKind::Volume,
            column: None,
            observed: Some(observed as f64),
            expected: None,
            threshold: None,
            status: QualityStatus::Ok,
            message: String::new(),
            checked_at: Utc::now(),
        };
        let mut flagged = None;
        if full_refresh {
            row.message = format!("{observed} rows; not judged: a full refresh");
        } else {
            match verdict {
                VolumeVerdict::TooFewRuns { runs, needed } => {
                    row.message = format!(
                        "{observed} rows; not judged: {runs} earlier run{} known, {needed} needed",
                        if runs == 1 { "" } else { "s" }
                    );
                }
                VolumeVerdict::NoUsualVolume { runs } => {
                    row.expected = Some(0.0);
                    row.message = format!(
                        "{observed} rows; not judged: the median of {runs} earlier runs is 0"
                    );
                }
                VolumeVerdict::Judged {
                    runs,
                    median,
                    mad,
                    low_max,
                    high_min,
                    anomaly,
                } => {
                    row.expected = Some(median);
                    row.threshold = Some(match low_max {
                        Some(l) => format!("<= {l} or >= {high_min}"),
                        None => format!(">= {high_min}"),
                    });
                    let usual = format!(
                        "usually {} (median of {runs} earlier runs, MAD {})",
                        number(median),
                        number(mad)
                    );
                    row.message = match anomaly {
                        Some(Anomaly::Low) => {
                            format!("{observed} rows, far below the usual: {usual}")
                        }
                        Some(Anomaly::High) => {
                            format!("{observed} rows, far above the usual: {usual}")
                        }
                        None => format!("{observed} rows, {usual}"),
                    };
                    flagged = anomaly;
                }
            }
        }
        if flagged.is_some() {
            let fails = q.volume == Some(CheckAction::Fail);
            row.status = if fails {
                QualityStatus::Fail
            } else {
                QualityStatus::Warn
            };
            flag_notice(stream, &p.name, &format!("volume {}", row.message));
            if fails {
                fail_stream(
                    stream,
                    &format!(
                        "volume anomaly (the loaded data stays committed): {}",
                        row.message
                    ),
                );
            }
        }
        rows.push(row);
    }
    rows
}

/// [`run_volumes`] of `checked` streams from the warehouse: the pipeline's
/// newest runs (enough to find `max_runs` that count, mostly) and its loads
/// since the oldest of them.
async fn history(
    warehouse: &dyn Warehouse,
    pipeline: &str,
    run_id: &str,
    checked: &[(String, QualitySettings)],
    max_runs: usize,
) -> Result<BTreeMap<String, (Vec<u64>, Option<String>)>, weft_warehouse::WarehouseError> {
    let runs = warehouse
        .runs(
            Some(pipeline),
            max_runs.saturating_mul(2).saturating_add(10),
        )
        .await?;
    let oldest = runs
        .iter()
        .map(|r| r.run_id.as_str())
        .chain([run_id])
        .min()
        .unwrap_or(run_id);
    let loads = warehouse.loads_since(pipeline, oldest).await?;
    let streams: Vec<&str> = checked.iter().map(|(s, _)| s.as_str()).collect();
    Ok(run_volumes(run_id, &runs, &loads, &streams, max_runs))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    use super::*;

    const RULES: VolumeRules = VolumeRules {
        min_runs: 5,
        factor: 10.0,
    };

    fn anomaly(observed: u64, history: &[u64]) -> Option<Anomaly> {
        match judge_volume(observed, history, RULES) {
            VolumeVerdict::Judged { anomaly, .. } => anomaly,
            other => panic!("not judged: {other:?}"),
        }
    }

    #[test]
    fn median_and_mad_of_known_values() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // |x - 3| = 2, 2, 0, 1, 97 -> median 2.
        assert_eq!(mad(&[1.0, 5.0, 3.0, 2.0, 100.0], 3.0), 2.0);
        assert_eq!(mad(&[], 1.0), 0.0);
    }

    #[test]
    fn zero_or_tenfold_rows_against_a_steady_history_are_flagged() {
        let history = [1000, 1010, 990, 1005, 995];
        // median 1000, MAD 5: flagged at <= 100 or >= 10000.
        assert_eq!(
            judge_volume(0, &history, RULES),
            VolumeVerdict::Judged {
                runs: 5,
                median: 1000.0,
                mad: 5.0,
                low_max: Some(100),
                high_min: 10_000,
                anomaly: Some(Anomaly::Low),
            }
        );
        assert_eq!(anomaly(100, &history), Some(Anomaly::Low));
        assert_eq!(anomaly(101, &history), None);
        assert_eq!(anomaly(1000, &history), None);
        assert_eq!(anomaly(9_999, &history), None);
        assert_eq!(anomaly(10_000, &history), Some(Anomaly::High));
        assert_eq!(anomaly(50_000, &history), Some(Anomaly::High));
    }

    #[test]
    fn noisy_or_tiny_histories_flag_less() {
        // Mostly 1 row, sometimes 0: MAD 0, but the scaled MAD counts as a
        // row, so 0 is within 3 of the median and not flagged.
        assert_eq!(anomaly(0, &[0, 1, 1, 1, 0, 1, 1]), None);
        // A wide spread: 3 scaled MADs below the median is below 0.
        let wide = [10, 500, 1000, 1500, 3000];
        assert!(matches!(
            judge_volume(0, &wide, RULES),
            VolumeVerdict::Judged {
                low_max: None,
                anomaly: None,
                ..
            }
        ));
        // A steady 4 rows: 0 is flagged, 3 is not.
        assert_eq!(anomaly(0, &[4, 4, 4, 4, 4]), Some(Anomaly::Low));
        assert_eq!(anomaly(3, &[4, 4, 4, 4, 4]), None);
    }

    #[test]
    fn short_or_empty_histories_are_not_judged() {
        assert_eq!(
            judge_volume(0, &[1000, 1000], RULES),
            VolumeVerdict::TooFewRuns { runs: 2, needed: 5 }
        );
        assert_eq!(
            judge_volume(500, &[0, 0, 0, 900, 0], RULES),
            VolumeVerdict::NoUsualVolume { runs: 5 }
        );
        let one = VolumeRules {
            min_runs: 0,
            factor: 10.0,
        };
        assert_eq!(
            judge_volume(0, &[], one),
            VolumeVerdict::TooFewRuns { runs: 0, needed: 1 }
        );
    }

    fn run(id: &str, status: RunStatus) -> RunRecord {
        RunRecord {
            run_id: id.to_string(),
            status,
            ..RunRecord::start("p", "manual")
        }
    }

    fn load(id: &str, stream: &str, rows: u64) -> LoadRow {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        LoadRow {
            load_id: id.to_string(),
            pipeline: "p".to_string(),
            stream: stream.to_string(),
            rows,
            files: 1,
            bytes: 1,
            rejects: 0,
            started_at: at,
            committed_at: at,
        }
    }

    #[test]
    fn loads_are_grouped_into_the_runs_that_count() {
        let runs = [
            run("r1", RunStatus::Succeeded),
            run("r2", RunStatus::Succeeded),
            run("r3", RunStatus::Failed),
            run("r4", RunStatus::Failed),
            run("r5", RunStatus::Cancelled),
            run("r6", RunStatus::Succeeded),
            run("r7", RunStatus::Running),
            RunRecord {
                kind: RunKind::Sync,
                ..run("r65", RunStatus::Succeeded)
            },
        ];
        let loads = [
            load("r0-x", "a", 999), // before every run known: ignored
            load("r1-1", "a", 10),
            load("r1-2", "a", 5),
            load("r1-3", "b", 7),
            load("r2-1", "b", 8), // r2 loaded nothing of a: 0
            load("r3-1", "a", 4), // failed with a load of a: counts
            load("r5-1", "a", 1), // cancelled: ignored
            load("r6-1", "a", 12),
            load("r65-1", "a", 3), // after a sync run: still r6's
            load("r7-1", "a", 6),  // the current run
            load("r7-2", "a", 6),
        ];
        let got = run_volumes("r7", &runs, &loads, &["a", "b", "c"], 20);
        assert_eq!(got["a"], (vec![15, 4, 0, 15], Some("r7-2".to_string())));
        // r3 and r4 failed without a load of b.
        assert_eq!(got["b"], (vec![0, 8, 7], None));
        assert_eq!(got["c"], (vec![0, 0, 0], None));
        let newest_two = run_volumes("r7", &runs, &loads, &["a"], 2);
        assert_eq!(newest_two["a"].0, [15, 4]);
    }

    #[test]
    fn quality_settings_parse_on_the_pipeline_and_per_stream() {
        use crate::WeftConfig;
        let text = "[warehouse]\nkind = \"duckdb\"\npath = \"w.duckdb\"\n[[pipelines]]\n\
                    name = \"stripe\"\nconnector = \"stripe\"\nquality.volume_runs = 30\n\
                    quality.volume_min_runs = 3\n\
                    [pipelines.per_stream.customers]\nquality.volume = \"fail\"\n\
                    quality.volume_factor = 5.0\n\
                    [pipelines.per_stream.charges]\nquality = { volume = \"off\" }\n";
        let config = WeftConfig::parse(text);
        let Ok(config) = config else {
            panic!("{config:?}");
        };
        let p = &config.pipelines[0];
        assert_eq!(
            settings_of(p, "customers"),
            QualitySettings {
                volume: Some(CheckAction::Fail),
                volume_runs: Some(30),
                volume_min_runs: Some(3),
                volume_factor: Some(5.0),
                ..QualitySettings::default()
            }
        );
        assert_eq!(settings_of(p, "charges").volume, Some(CheckAction::Off));
        assert_eq!(settings_of(p, "refunds").volume, None);
        assert_eq!(settings_of(p, "refunds").volume_runs, Some(30));
        for (bad, expected) in [
            ("quality.volume_runs = 30", "quality.volume_runs = 0"),
            ("quality.volume_factor = 5.0", "quality.volume_factor = 1.0"),
            ("quality.volume = \"fail\"", "quality.volume = \"abort\""),
            ("quality.volume = \"fail\"", "quality.volumes = \"fail\""),
        ] {
            let err = WeftConfig::parse(&text.replace(bad, expected))
                .err()
                .unwrap_or_default();
            assert!(!err.is_empty(), "{expected} was accepted");
        }
        let err = WeftConfig::parse(&text.replace("volume_min_runs = 3", "volume_min_runs = 0"))
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "pipeline `stripe`: quality.volume_min_runs must be at least 1"
        );
    }

    proptest! {
        #[test]
        fn the_median_itself_is_never_flagged(history in prop::collection::vec(0u64..100_000, 5..40)) {
            let values: Vec<f64> = history.iter().map(|&v| v as f64).collect();
            let m = median(&values).unwrap_or(0.0);
            let verdict = judge_volume(m.round() as u64, &history, RULES);
            prop_assert!(
                !matches!(verdict, VolumeVerdict::Judged { anomaly: Some(_), .. }),
                "{verdict:?}"
            );
        }

        #[test]
        fn flags_are_monotone_and_order_free(
            history in prop::collection::vec(0u64..100_000, 5..40),
            a in 0u64..2_000_000,
            b in 0u64..2_000_000,
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            if anomaly_of(hi, &history) == Some(Anomaly::Low) {
                prop_assert_eq!(anomaly_of(lo, &history), Some(Anomaly::Low));
            }
            if anomaly_of(lo, &history) == Some(Anomaly::High) {
                prop_assert_eq!(anomaly_of(hi, &history), Some(Anomaly::High));
            }
            let mut reversed = history.clone();
            reversed.reverse();
            prop_assert_eq!(
                judge_volume(a, &history, RULES),
                judge_volume(a, &reversed, RULES)
            );
        }

        #[test]
        fn zero_and_tenfold_are_flagged_against_a_steady_history(
            usual in 4u64..1_000_000,
            runs in 5usize..30,
        ) {
            let history = vec![usual; runs];
            prop_assert_eq!(anomaly_of(0, &history), Some(Anomaly::Low));
            prop_assert_eq!(anomaly_of(usual * 10, &history), Some(Anomaly::High));
            prop_assert_eq!(anomaly_of(usual, &history), None);
        }
    }

    fn anomaly_of(observed: u64, history: &[u64]) -> Option<Anomaly> {
        match judge_volume(observed, history, RULES) {
            VolumeVerdict::Judged { anomaly, .. } => anomaly,
            _ => None,
        }
    }
}
