//! Budget shares: runners sharing a warehouse split each API account's rate
//! between them, through `_weft._weft_budget_holders`.
//!
//! Every runner process heartbeats one row per account budget it uses —
//! (budget, owner, host, pid, heartbeat, expiry, in the warehouse's clock) —
//! and reads how many live holders each budget has; each then spaces its
//! requests at rate / holders. A holder that stops heartbeating (a killed
//! runner) drops out when its row expires, and the others take its share.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::WarehouseError;
use crate::runs::host_name;
use crate::sql::literal;
use crate::warehouse::Warehouse;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS _weft._weft_budget_holders (\
    budget TEXT NOT NULL, owner TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL, \
    heartbeat_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, PRIMARY KEY (budget, owner))";

/// Records that `owner` (one runner process) uses `budgets` for the next
/// `ttl`, and returns how many live holders each of them has (this one included).
pub async fn hold_budgets(
    warehouse: &dyn Warehouse,
    owner: &str,
    budgets: &[String],
    ttl: Duration,
) -> Result<BTreeMap<String, u64>, WarehouseError> {
    if budgets.is_empty() {
        return Ok(BTreeMap::new());
    }
    warehouse.query(CREATE).await?;
    let now = warehouse.clock_ms_sql();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let host = literal(&host_name());
    let pid = std::process::id();
    let rows: Vec<String> = budgets
        .iter()
        .map(|b| {
            format!(
                "({}, {}, {host}, {pid}, {now}, {now} + {ttl_ms})",
                literal(b),
                literal(owner)
            )
        })
        .collect();
    warehouse
        .query(&format!(
            "INSERT INTO _weft._weft_budget_holders \
             (budget, owner, host, pid, heartbeat_ms, expires_ms) VALUES {} \
             ON CONFLICT (budget, owner) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms, \
             expires_ms = EXCLUDED.expires_ms",
            rows.join(", ")
        ))
        .await?;
    warehouse
        .query(&format!(
            "DELETE FROM _weft._weft_budget_holders WHERE expires_ms < {now}"
        ))
        .await?;
    let list: Vec<String> = budgets.iter().map(|b| literal(b)).collect();
    let counted = warehouse
        .query_rows(&format!(
            "SELECT budget, count(*) FROM _weft._weft_budget_holders \
             WHERE expires_ms >= {now} AND budget IN ({}) GROUP BY budget",
            list.join(", ")
        ))
        .await?;
    let mut holders = BTreeMap::new();
    for row in counted {
        let budget = row.first().and_then(|v| v.as_str()).map(str::to_string);
        let n = row.get(1).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        match (budget, n) {
            (Some(b), Some(n)) => {
                holders.insert(b, n.max(1));
            }
            _ => {
                return Err(WarehouseError::Corrupt {
                    what: "_weft._weft_budget_holders count".to_string(),
                    reason: format!("unexpected row {}", serde_json::Value::from(row)),
                });
            }
        }
    }
    Ok(holders)
}

/// Removes `owner`'s rows: its share goes back to the other holders at
/// their next heartbeat.
pub async fn release_budgets(warehouse: &dyn Warehouse, owner: &str) -> Result<(), WarehouseError> {
    warehouse.query(CREATE).await?;
    warehouse
        .query(&format!(
            "DELETE FROM _weft._weft_budget_holders WHERE owner = {}",
            literal(owner)
        ))
        .await?;
    Ok(())
}
