//! The reverse-sync workload: a `rows`-row people model (1% renamed when
//! `changed`), the sync spec that sends it, and a target that counts what it
//! receives. Used by the criterion `warehouse` bench and the `e2e diff` mode.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use weft_core::{BoxError, RecordOutcome, SyncRecord, SyncSpec, SyncTarget, SyncWriteMode};
use weft_warehouse::{Materialized, Model};

/// `models.people`: `rows` people with email, name and visits; with `changed`,
/// every hundredth name differs (exactly `rows / 100` updates).
pub fn people_model(rows: u64, changed: bool) -> Model {
    people_model_from(&format!("range({rows}) t(i)"), changed)
}

/// [`people_model`] in PostgreSQL's SQL (`generate_series` for `range`).
pub fn people_model_postgres(rows: u64, changed: bool) -> Model {
    let last = rows.saturating_sub(1);
    people_model_from(&format!("generate_series(0, {last}) t(i)"), changed)
}

fn people_model_from(series: &str, changed: bool) -> Model {
    let name = if changed {
        "CASE WHEN i % 100 = 0 THEN 'Person ' || CAST(i AS VARCHAR) || ' (renamed)' \
         ELSE 'Person ' || CAST(i AS VARCHAR) END"
    } else {
        "'Person ' || CAST(i AS VARCHAR)"
    };
    Model {
        name: "models.people".to_string(),
        sql: format!(
            "SELECT 'person.' || CAST(i AS VARCHAR) || '@example.com' AS email, {name} AS name, \
             i % 97 AS visits FROM {series}"
        ),
        materialized: Materialized::Table,
    }
}

/// Upserts `models.people` by email, mapping email, name and visits.
pub fn people_sync() -> SyncSpec {
    SyncSpec {
        name: "people".to_string(),
        model: "models.people".to_string(),
        primary_key: "email".to_string(),
        mode: SyncWriteMode::Upsert,
        mapping: [
            ("email_address", "email"),
            ("NAME", "name"),
            ("VISITS", "visits"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
    }
}

/// Accepts every sync record and counts them per action (`Create`, `Update`...).
#[derive(Debug, Default)]
pub struct Counting {
    sent: Mutex<BTreeMap<String, u64>>,
}

impl Counting {
    /// Records received so far, per action.
    pub fn sent(&self) -> BTreeMap<String, u64> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.clear();
        }
    }
}

#[async_trait]
impl SyncTarget for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn required_fields(&self) -> Vec<String> {
        vec!["email_address".to_string()]
    }

    fn max_batch(&self) -> usize {
        10_000
    }

    fn modes(&self) -> &'static [weft_core::SyncWriteMode] {
        weft_core::SyncWriteMode::ALL
    }

    async fn apply(
        &self,
        _mode: weft_core::SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| "the counting target's lock is poisoned")?;
        for r in &records {
            *sent.entry(format!("{:?}", r.action)).or_default() += 1;
        }
        Ok(records
            .iter()
            .map(|r| RecordOutcome {
                key: r.key.clone(),
                result: Ok(()),
            })
            .collect())
    }
}
