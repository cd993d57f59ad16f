//! Schedules: cron expressions (croner) in a time zone (chrono-tz), and the
//! jobs `weft serve` runs at their times.
//!
//! A job is what runs at one scheduled time: pipelines, then the models,
//! then syncs. `schedule = "…"` on a pipeline makes a job of that pipeline
//! alone, on a sync a job of the models and that sync; `[[jobs]]` chains
//! several.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;

/// A cron schedule in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
}

impl Schedule {
    /// Parses a five-field cron expression (`*/15 * * * *`), a six-field one
    /// with seconds first (`*/10 * * * * *`) or an alias (`@hourly`), read in
    /// `timezone` (an IANA name such as `Europe/Berlin`; default UTC).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Schedule, String> {
        let fields = expression.split_whitespace().count();
        if !expression.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "schedule `{expression}` has {fields} fields; expected 5 (minute hour \
                 day-of-month month day-of-week) or 6 (seconds first)"
            ));
        }
        let cron = Cron::from_str(expression)
            .map_err(|e| format!("schedule `{expression}` is not a cron expression: {e}"))?;
        let timezone = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                format!("timezone `{name}` is not an IANA time zone name (e.g. `Europe/Berlin`)")
            })?,
        };
        Ok(Schedule {
            expression: expression.to_string(),
            cron,
            timezone,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first scheduled time strictly after `after` (`None` when there is
    /// none, e.g. a date that never comes).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// How many scheduled times fall in `(from, to]`, counting at most `cap`.
    pub fn count_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, cap: u64) -> u64 {
        let mut n = 0;
        let mut t = from;
        while n < cap {
            match self.next_after(t) {
                Some(next) if next <= to => {
                    n += 1;
                    t = next;
                }
                _ => break,
            }
        }
        n
    }
}

/// A `[[jobs]]` table: pipelines, then models, then syncs, at each scheduled time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Job name (its lease is `job:NAME`; runs record it).
    pub name: String,
    /// Cron expression (see [`Schedule::parse`]).
    pub schedule: String,
    /// IANA time zone the expression is read in; default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Pipelines run first, in order.
    #[serde(default)]
    pub pipelines: Vec<String>,
    /// Whether the SQL models run after the pipelines; default: when the
    /// job has syncs.
    #[serde(default)]
    pub models: Option<bool>,
    /// Syncs run last, in order (after the loads they read from).
    #[serde(default)]
    pub syncs: Vec<String>,
}

/// A job ready to schedule.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job name.
    pub name: String,
    /// When it runs.
    pub schedule: Schedule,
    /// Pipelines, in order.
    pub pipelines: Vec<String>,
    /// Whether the models run after the pipelines.
    pub models: bool,
    /// Syncs, in order.
    pub syncs: Vec<String>,
}

impl Job {
    /// The job's lease name.
    pub fn lease(&self) -> String {
        format!("job:{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_and_six_field_expressions_and_time_zones() {
        let every_15 = Schedule::parse("*/15 * * * *", None).unwrap();
        assert_eq!(
            every_15.next_after(at("2030-03-01T10:07:12Z")),
            Some(at("2030-03-01T10:15:00Z"))
        );
        let every_10s = Schedule::parse("*/10 * * * * *", None).unwrap();
        assert_eq!(
            every_10s.next_after(at("2030-03-01T10:07:12Z")),
            Some(at("2030-03-01T10:07:20Z"))
        );
        // 02:00 in Berlin is 01:00 UTC in winter.
        let berlin = Schedule::parse("0 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            berlin.next_after(at("2030-01-10T12:00:00Z")),
            Some(at("2030-01-11T01:00:00Z"))
        );
        assert_eq!(
            every_10s.count_between(at("2030-03-01T10:00:00Z"), at("2030-03-01T10:01:00Z"), 100),
            6
        );
        assert_eq!(
            every_10s.count_between(at("2030-03-01T10:00:00Z"), at("2030-03-01T10:01:00Z"), 4),
            4
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_wrong() {
        let e = Schedule::parse("every minute", None).unwrap_err();
        assert!(e.contains("has 2 fields"), "{e}");
        let e = Schedule::parse("61 * * * *", None).unwrap_err();
        assert!(e.contains("is not a cron expression"), "{e}");
        let e = Schedule::parse("* * * * *", Some("Mars/Olympus")).unwrap_err();
        assert!(e.contains("timezone `Mars/Olympus`"), "{e}");
        assert!(Schedule::parse("@hourly", None).is_ok());
    }
}
