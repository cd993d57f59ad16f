//! Data quality: the freshness of each stream against its SLA, and what the
//! other checks (volume, expectations, completeness) share.
//!
//! A stream's freshness is read from what the warehouse committed for it,
//! through the [`Warehouse`] trait only (so it is the same on DuckDB and
//! PostgreSQL): the newest time in its committed state in
//! `_weft._weft_state` when the state holds a time (a cursor such as
//! Stripe's `created` / `events_created`, Salesforce's `cursor_us`, Zoom's
//! `synced_at`), else the commit time of its newest load in
//! `_weft._weft_loads`. Its age is the runner clock's now minus that time; a
//! stream with neither was never loaded and is stale whatever its SLA.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use weft_warehouse::{QualityKind, QualityRow, QualityStatus, Warehouse};

use crate::config::QualitySettings;
use crate::metrics::scalar_time;
use crate::{PipelineConfig, RunnerError, WeftConfig};

/// How a flagged check's notice begins in the run report (`quality P.S: …`).
pub(crate) const QUALITY_PREFIX: &str = "quality ";

/// The quality settings of `stream`: its own keys, else the pipeline's.
pub(crate) fn settings_of(p: &PipelineConfig, stream: &str) -> QualitySettings {
    p.per_stream
        .get(stream)
        .map_or(p.quality, |s| s.quality.or(p.quality))
}

/// Adds a flagged check's `quality P.S: message` notice to `stream`.
pub(crate) fn flag_notice(stream: &mut weft_core::StreamReport, pipeline: &str, message: &str) {
    stream.notices.push(format!(
        "{QUALITY_PREFIX}{pipeline}.{}: {message}",
        stream.stream
    ));
}

/// Fails `stream` for a check (its committed loads stay), adding `reason`
/// to any error it already has.
pub(crate) fn fail_stream(stream: &mut weft_core::StreamReport, reason: &str) {
    stream.status = weft_core::StreamStatus::Failed;
    stream.error = Some(match stream.error.take() {
        Some(e) => format!("{e}; {reason}"),
        None => reason.to_string(),
    });
}

/// The stream name a pipeline-wide SLA is reported under when no stream of
/// the pipeline is known (none listed, none declared, nothing committed).
pub const ALL_STREAMS: &str = "*";

/// Parses a duration written as whole numbers with units, largest first or
/// not, optionally separated by spaces: `"45s"`, `"30m"`, `"2h"`, `"1d"`,
/// `"1w"`, `"1h30m"`, `"1d 12h"`. Units: `s`, `m`, `h`, `d` (24 h), `w`
/// (7 d). Zero and unit-less numbers are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("duration `{text}`: {why} (write e.g. \"30m\", \"2h\", \"1d\")");
    let mut secs: u64 = 0;
    let mut digits = String::new();
    let mut parts = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if c.is_whitespace() {
            if !digits.is_empty() {
                return Err(bad("a number has no unit"));
            }
        } else {
            let unit: u64 = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(bad(&format!("unknown unit `{c}` (use s, m, h, d or w)"))),
            };
            if digits.is_empty() {
                return Err(bad(&format!("`{c}` has no number before it")));
            }
            let n: u64 = digits.parse().map_err(|_| bad("too long"))?;
            secs = n
                .checked_mul(unit)
                .and_then(|v| secs.checked_add(v))
                .ok_or_else(|| bad("too long"))?;
            digits.clear();
            parts += 1;
        }
    }
    if !digits.is_empty() {
        return Err(bad("a number has no unit"));
    }
    if parts == 0 {
        return Err(bad("it is empty"));
    }
    if secs == 0 {
        return Err(bad("it must be longer than zero"));
    }
    Ok(Duration::from_secs(secs))
}

/// A duration as people read it: its two largest units, e.g. `45s`, `12m`,
/// `3h 5m`, `2d 4h` (`0s` under a second).
pub fn format_duration(d: Duration) -> String {
    let total = d.as_secs();
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = total;
    for (name, size) in units {
        let n = rest / size;
        rest %= size;
        if n > 0 || !parts.is_empty() {
            parts.push((n, name));
        }
    }
    let shown: Vec<String> = parts
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n}{name}"))
        .collect();
    if shown.is_empty() {
        "0s".to_string()
    } else {
        shown.join(" ")
    }
}

/// The newest time in a committed state: the greatest of its values that
/// read as a time (RFC 3339 text, or unix seconds, milliseconds or
/// microseconds of the years 2001 to 2286), anywhere in it.
pub fn newest_time(state: &serde_json::Value) -> Option<DateTime<Utc>> {
    use serde_json::Value;
    let secs = match state {
        Value::Object(map) => return map.values().filter_map(newest_time).max(),
        Value::Array(items) => return items.iter().filter_map(newest_time).max(),
        other => scalar_time(other)?,
    };
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

/// What a stream's age is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum FreshnessBasis {
    /// The newest time in the stream's committed cursor (state).
    Cursor(DateTime<Utc>),
    /// The commit time of the stream's newest load (its state holds no time).
    Load(DateTime<Utc>),
}

impl FreshnessBasis {
    /// The time the age is measured from.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            FreshnessBasis::Cursor(t) | FreshnessBasis::Load(t) => *t,
        }
    }
}

/// One stream's freshness against its SLA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freshness {
    /// Pipeline name.
    pub pipeline: String,
    /// Stream name ([`ALL_STREAMS`] when the pipeline has no known stream).
    pub stream: String,
    /// The SLA: the most the age may be.
    pub sla: Duration,
    /// What the age is measured from; `None` when never loaded.
    pub basis: Option<FreshnessBasis>,
}

impl Freshness {
    /// The age as of `now` (never negative); `None` when never loaded.
    pub fn age(&self, now: DateTime<Utc>) -> Option<Duration> {
        let basis = self.basis?;
        Some((now - basis.at()).to_std().unwrap_or(Duration::ZERO))
    }

    /// Whether the stream is older than its SLA as of `now` (or was never loaded).
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.age(now).is_none_or(|age| age > self.sla)
    }

    /// `weft check --quality`'s line, e.g. `fresh stripe.charges: ok (age
    /// 12m, sla 2h; cursor 2026-01-01T10:00:00Z)` or `… STALE (never
    /// loaded, sla 2h)`.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        let verdict = if self.is_stale(now) { "STALE" } else { "ok" };
        let sla = format_duration(self.sla);
        let detail = match (self.age(now), self.basis) {
            (Some(age), Some(basis)) => {
                let (what, at) = match basis {
                    FreshnessBasis::Cursor(t) => ("cursor", t),
                    FreshnessBasis::Load(t) => ("last load", t),
                };
                format!(
                    "age {}, sla {sla}; {what} {}",
                    format_duration(age),
                    at.format("%Y-%m-%dT%H:%M:%SZ")
                )
            }
            _ => format!("never loaded, sla {sla}"),
        };
        format!(
            "fresh {}.{}: {verdict} ({detail})",
            self.pipeline, self.stream
        )
    }
}

/// One `freshness` row of `_weft._weft_quality` per stream of run
/// `run_id`: the age in seconds against the SLA, `ok`, or `warn` when
/// stale (a run never fails for it: `weft check --quality` does).
pub(crate) fn freshness_rows(run_id: &str, streams: &[Freshness]) -> Vec<QualityRow> {
    let now = Utc::now();
    streams
        .iter()
        .map(|f| QualityRow {
            run_id: run_id.to_string(),
            pipeline: f.pipeline.clone(),
            stream: f.stream.clone(),
            load_id: None,
            kind: QualityKind::Freshness,
            column: None,
            observed: f.age(now).map(|a| a.as_secs_f64().round()),
            expected: Some(f.sla.as_secs() as f64),
            threshold: Some(format!("<= {}", f.sla.as_secs())),
            status: if f.is_stale(now) {
                QualityStatus::Warn
            } else {
                QualityStatus::Ok
            },
            message: f.render(now),
            checked_at: now,
        })
        .collect()
}

impl PipelineConfig {
    /// Whether this pipeline or any of its streams has a freshness SLA.
    pub fn has_freshness_sla(&self) -> bool {
        self.freshness_sla.is_some() || self.per_stream.values().any(|s| s.freshness_sla.is_some())
    }

    /// The freshness SLA of `stream`: its own, else the pipeline's.
    pub fn stream_freshness_sla(&self, stream: &str) -> Option<Duration> {
        self.per_stream
            .get(stream)
            .and_then(|s| s.freshness_sla)
            .or(self.freshness_sla)
            .map(|s| s.0)
    }
}

/// The freshness of every stream with an SLA, of `pipeline` or of every
/// pipeline, from what `warehouse` committed.
///
/// A pipeline-wide SLA covers the pipeline's `streams` when listed, else the
/// streams its source declared (`declared`, by pipeline: what a run or
/// `weft check` built), else the streams the warehouse has a state or a load
/// of; a stream's own SLA always covers that stream.
pub async fn freshness(
    config: &WeftConfig,
    warehouse: &dyn Warehouse,
    pipeline: Option<&str>,
    declared: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<Freshness>, RunnerError> {
    let selected: Vec<&PipelineConfig> = match pipeline {
        Some(name) => vec![config.pipeline(name)?],
        None => config.pipelines.iter().collect(),
    };
    let selected: Vec<&PipelineConfig> = selected
        .into_iter()
        .filter(|p| p.has_freshness_sla())
        .collect();
    if selected.is_empty() {
        return Ok(Vec::new());
    }
    let states = warehouse.list_state().await?;
    let mut out = Vec::new();
    for p in selected {
        let mut last_load: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        for load in warehouse.loads(&p.name).await? {
            let t = last_load.entry(load.stream).or_insert(load.committed_at);
            *t = (*t).max(load.committed_at);
        }
        let cursors: BTreeMap<&str, Option<DateTime<Utc>>> = states
            .iter()
            .filter(|s| s.pipeline == p.name)
            .map(|s| (s.stream.as_str(), newest_time(&s.state)))
            .collect();
        let known: BTreeSet<String> = cursors
            .keys()
            .map(|s| s.to_string())
            .chain(last_load.keys().cloned())
            .collect();
        let basis = |stream: &str| match cursors.get(stream).copied().flatten() {
            Some(t) => Some(FreshnessBasis::Cursor(t)),
            None => last_load.get(stream).map(|t| FreshnessBasis::Load(*t)),
        };
        let streams = covered_streams(p, declared.get(&p.name), &known);
        if streams.is_empty()
            && let Some(sla) = p.freshness_sla
        {
            out.push(Freshness {
                pipeline: p.name.clone(),
                stream: ALL_STREAMS.to_string(),
                sla: sla.0,
                basis: None,
            });
        }
        for stream in streams {
            if let Some(sla) = p.stream_freshness_sla(&stream) {
                out.push(Freshness {
                    pipeline: p.name.clone(),
                    basis: basis(&stream),
                    stream,
                    sla,
                });
            }
        }
    }
    Ok(out)
}

/// The streams an SLA of `p` covers, in order, each once.
fn covered_streams(
    p: &PipelineConfig,
    declared: Option<&Vec<String>>,
    known: &BTreeSet<String>,
) -> Vec<String> {
    let mut streams: Vec<String> = Vec::new();
    if p.freshness_sla.is_some() {
        streams = match (&p.streams, declared) {
            (Some(listed), _) => listed.clone(),
            (None, Some(declared)) if !declared.is_empty() => declared.clone(),
            _ => known.iter().cloned().collect(),
        };
    }
    for (name, s) in &p.per_stream {
        if s.freshness_sla.is_some() && !streams.contains(name) {
            streams.push(name.clone());
        }
    }
    streams
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_in_units_and_refuse_what_is_unclear() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("30m"), Ok(1_800));
        assert_eq!(secs("2h"), Ok(7_200));
        assert_eq!(secs("1d"), Ok(86_400));
        assert_eq!(secs("1w"), Ok(604_800));
        assert_eq!(secs("1h30m"), Ok(5_400));
        assert_eq!(secs(" 1d 12h "), Ok(129_600));
        for (text, why) in [
            ("", "it is empty"),
            ("90", "a number has no unit"),
            ("1 h", "a number has no unit"),
            ("2x", "unknown unit `x`"),
            ("h", "`h` has no number before it"),
            ("0m", "longer than zero"),
            ("99999999999999999999w", "too long"),
            ("9999999999999999w", "too long"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(
                err.starts_with(&format!("duration `{text}`: ")) && err.contains(why),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn durations_print_their_two_largest_units() {
        let f = |s: u64| format_duration(Duration::from_secs(s));
        assert_eq!(f(0), "0s");
        assert_eq!(f(45), "45s");
        assert_eq!(f(720), "12m");
        assert_eq!(f(3 * 3_600 + 5 * 60 + 9), "3h 5m");
        assert_eq!(f(7_200), "2h");
        assert_eq!(f(86_400 + 61), "1d");
        assert_eq!(f(2 * 86_400 + 4 * 3_600), "2d 4h");
        assert_eq!(format_duration(Duration::from_millis(900)), "0s");
    }

    #[test]
    fn the_newest_time_in_a_state_is_found_in_any_unit() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        // Stripe: the events watermark is newer than the created cursor.
        assert_eq!(
            newest_time(&json!({"created": 1_700_000_000, "events_created": 1_700_000_500})),
            Some(at(1_700_000_500))
        );
        // Salesforce keeps microseconds; other APIs milliseconds or text.
        assert_eq!(
            newest_time(&json!({"cursor_us": 1_700_000_000_000_000i64})),
            Some(at(1_700_000_000))
        );
        assert_eq!(
            newest_time(&json!([1_600_000_000_000i64, {"t": "2023-11-14T22:13:20Z"}])),
            Some(at(1_700_000_000))
        );
        assert_eq!(newest_time(&json!({"page": 3, "token": "abc"})), None);
        assert_eq!(newest_time(&json!(null)), None);
    }

    #[test]
    fn age_is_now_minus_the_basis_and_stale_past_the_sla() {
        let now = Utc::now();
        let fresh = |basis: Option<FreshnessBasis>| Freshness {
            pipeline: "stripe".into(),
            stream: "charges".into(),
            sla: Duration::from_secs(7_200),
            basis,
        };
        let t = now - chrono::Duration::seconds(12 * 60 + 30);
        let ok = fresh(Some(FreshnessBasis::Cursor(t)));
        assert_eq!(ok.age(now), Some(Duration::from_secs(750)));
        assert!(!ok.is_stale(now));
        assert_eq!(
            ok.render(now),
            format!(
                "fresh stripe.charges: ok (age 12m 30s, sla 2h; cursor {})",
                t.format("%Y-%m-%dT%H:%M:%SZ")
            )
        );
        let t = now - chrono::Duration::seconds(3 * 3_600 + 5 * 60);
        let stale = fresh(Some(FreshnessBasis::Load(t)));
        assert_eq!(stale.age(now), Some(Duration::from_secs(11_100)));
        assert!(stale.is_stale(now));
        assert!(
            stale
                .render(now)
                .starts_with("fresh stripe.charges: STALE (age 3h 5m, sla 2h; last load "),
            "{}",
            stale.render(now)
        );
        // Exactly at the SLA is still fresh; a cursor ahead of now is age 0.
        let edge = fresh(Some(FreshnessBasis::Cursor(
            now - chrono::Duration::seconds(7_200),
        )));
        assert!(!edge.is_stale(now));
        let ahead = fresh(Some(FreshnessBasis::Cursor(
            now + chrono::Duration::seconds(60),
        )));
        assert_eq!(ahead.age(now), Some(Duration::ZERO));
        let never = fresh(None);
        assert!(never.is_stale(now));
        assert_eq!(never.age(now), None);
        assert_eq!(
            never.render(now),
            "fresh stripe.charges: STALE (never loaded, sla 2h)"
        );
    }

    #[test]
    fn a_pipeline_sla_covers_listed_then_declared_then_known_streams() {
        let config = |extra: &str| {
            let text = format!(
                "[warehouse]\nkind = \"duckdb\"\npath = \"w.duckdb\"\n[[pipelines]]\n\
                 name = \"sf\"\nconnector = \"salesforce\"\n{extra}"
            );
            WeftConfig::parse(&text).unwrap().pipelines.remove(0)
        };
        let known: BTreeSet<String> = ["Lead".to_string()].into();
        let declared = vec!["Contact".to_string(), "Account".to_string()];
        let p = config("freshness_sla = \"2h\"\n");
        assert_eq!(covered_streams(&p, Some(&declared), &known), declared);
        assert_eq!(covered_streams(&p, None, &known), ["Lead"]);
        let p = config(
            "streams = [\"Contact\", \"Lead\"]\nfreshness_sla = \"2h\"\n\
             [pipelines.per_stream.Lead]\nfreshness_sla = \"30m\"\n",
        );
        assert_eq!(
            covered_streams(&p, Some(&declared), &known),
            ["Contact", "Lead"]
        );
        assert_eq!(
            p.stream_freshness_sla("Lead"),
            Some(Duration::from_secs(1_800))
        );
        assert_eq!(
            p.stream_freshness_sla("Contact"),
            Some(Duration::from_secs(7_200))
        );
        // Only a stream's own SLA: only that stream.
        let p = config("[pipelines.per_stream.Lead]\nfreshness_sla = \"1d\"\n");
        assert!(p.has_freshness_sla());
        assert_eq!(covered_streams(&p, Some(&declared), &known), ["Lead"]);
        assert_eq!(p.stream_freshness_sla("Contact"), None);
        assert!(!config("").has_freshness_sla());
    }
}
