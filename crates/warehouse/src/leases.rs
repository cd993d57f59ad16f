//! Leases: which runner runs a pipeline, sync or scheduled job right now,
//! in `_weft._weft_leases`, so runners sharing one warehouse never run the
//! same thing twice at once.
//!
//! A lease row names its owner (run id, host, pid), when it was acquired,
//! its last heartbeat and when it expires, all in the warehouse's clock (so
//! runners on hosts whose clocks drift still agree). While held it is renewed
//! every third of its time to live; it is released at the end of the run. A
//! lease whose owner stopped renewing (a killed or frozen runner) is taken
//! over once it expires — at once when its owner was a process of this host
//! that no longer exists. A scheduled job's lease also keeps the last
//! scheduled time claimed (`slot_ms`), so two runners firing at the same
//! time run it once.
//!
//! Everything is plain SQL through [`Warehouse::query`], with no
//! `RETURNING` and no locks held between statements: a take-over is a
//! compare-and-set on the previous owner's run id, read back to see who won.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use weft_core::CancellationToken;

use crate::WarehouseError;
use crate::runs::host_name;
use crate::sql::literal as text;
use crate::warehouse::Warehouse;

/// `CREATE TABLE` of the leases (times are the warehouse clock's unix ms).
const CREATE: &str = "CREATE TABLE IF NOT EXISTS _weft._weft_leases (\
    name TEXT PRIMARY KEY, run_id TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL, \
    acquired_ms BIGINT NOT NULL, heartbeat_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, \
    slot_ms BIGINT)";

/// How a lease is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// How long the lease lasts without a heartbeat (renewed every third of it).
    pub ttl: Duration,
    /// How long to wait while another runner holds it.
    pub wait: Duration,
    /// The scheduled time being run (unix ms), for a scheduled job: a time
    /// already claimed by any runner is not run again.
    pub slot_ms: Option<i64>,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            ttl: Duration::from_secs(30),
            wait: Duration::ZERO,
            slot_ms: None,
        }
    }
}

/// What [`Lease::acquire`] got.
#[derive(Debug)]
pub enum Claim {
    /// The lease is this run's until released (or lost).
    Held(Lease),
    /// The scheduled time was already claimed, by this or another runner.
    SlotTaken {
        /// Who claimed it: `host H (pid P) since T, run R`.
        holder: String,
    },
}

/// One row of `_weft._weft_leases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The lease's name, e.g. `pipeline:stripe`, `sync:audience`, `job:nightly`.
    pub name: String,
    /// The owning run.
    pub run_id: String,
    /// The owner's host.
    pub host: String,
    /// The owner's process id.
    pub pid: u32,
    /// When it was acquired (unix ms, warehouse clock).
    pub acquired_ms: i64,
    /// The last heartbeat (unix ms).
    pub heartbeat_ms: i64,
    /// When it expires (unix ms); 0 once released.
    pub expires_ms: i64,
    /// The last scheduled time claimed through it (unix ms).
    pub slot_ms: Option<i64>,
}

impl LeaseRow {
    /// `host H (pid P) since T, run R`.
    pub fn holder(&self) -> String {
        let since = DateTime::from_timestamp_millis(self.acquired_ms).map_or_else(
            || self.acquired_ms.to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        format!(
            "host {} (pid {}) since {since}, run {}",
            self.host, self.pid, self.run_id
        )
    }
}

/// A held lease, renewed in the background until [`Lease::release`] (or
/// drop, which stops renewing and lets it expire).
pub struct Lease {
    warehouse: Arc<dyn Warehouse>,
    name: String,
    run_id: String,
    lost: CancellationToken,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Takes lease `name` for run `run_id`, waiting up to `options.wait`
    /// while another live runner holds it; then fails with
    /// [`WarehouseError::Running`] naming the holder.
    pub async fn acquire(
        warehouse: Arc<dyn Warehouse>,
        name: &str,
        run_id: &str,
        options: LeaseOptions,
    ) -> Result<Claim, WarehouseError> {
        warehouse.query(CREATE).await?;
        let now = warehouse.clock_ms_sql();
        let host = host_name();
        let pid = std::process::id();
        let ttl_ms = i64::try_from(options.ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let slot = options
            .slot_ms
            .map_or_else(|| "NULL".to_string(), |s| s.to_string());
        let started = Instant::now();
        warehouse
            .query(&format!(
                "INSERT INTO _weft._weft_leases \
                 (name, run_id, host, pid, acquired_ms, heartbeat_ms, expires_ms, slot_ms) \
                 VALUES ({}, {}, {}, {pid}, {now}, {now}, {now} + {ttl_ms}, {slot}) \
                 ON CONFLICT (name) DO NOTHING",
                text(name),
                text(run_id),
                text(&host)
            ))
            .await?;
        loop {
            let (row, now_ms) =
                read(warehouse.as_ref(), name)
                    .await?
                    .ok_or_else(|| WarehouseError::Corrupt {
                        what: format!("lease {name}"),
                        reason: "the row inserted for it is gone".to_string(),
                    })?;
            if row.run_id == run_id {
                return Ok(Claim::Held(Lease::renewing(
                    warehouse,
                    name,
                    run_id,
                    options.ttl,
                )));
            }
            if let (Some(wanted), Some(claimed)) = (options.slot_ms, row.slot_ms)
                && claimed >= wanted
            {
                return Ok(Claim::SlotTaken {
                    holder: row.holder(),
                });
            }
            let owner_gone = row.host == host && row.pid != pid && !process_alive(row.pid);
            if row.expires_ms < now_ms || owner_gone {
                // Compare-and-set on the previous owner; the re-read says who won.
                warehouse
                    .query(&format!(
                        "UPDATE _weft._weft_leases SET run_id = {}, host = {}, pid = {pid}, \
                         acquired_ms = {now}, heartbeat_ms = {now}, \
                         expires_ms = {now} + {ttl_ms}, slot_ms = COALESCE({slot}, slot_ms) \
                         WHERE name = {} AND run_id = {}",
                        text(run_id),
                        text(&host),
                        text(name),
                        text(&row.run_id)
                    ))
                    .await?;
                continue;
            }
            if started.elapsed() >= options.wait {
                return Err(WarehouseError::Running {
                    what: describe(name),
                    holder: row.holder(),
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn renewing(warehouse: Arc<dyn Warehouse>, name: &str, run_id: &str, ttl: Duration) -> Lease {
        let lost = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(&warehouse),
            name.to_string(),
            run_id.to_string(),
            ttl,
            lost.clone(),
        ));
        Lease {
            warehouse,
            name: name.to_string(),
            run_id: run_id.to_string(),
            lost,
            heartbeat,
        }
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cancelled when the lease is lost: another runner took it over after
    /// this one missed its heartbeats (a run holding it should stop).
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Stops renewing and releases the lease (it is free at once).
    pub async fn release(self) -> Result<(), WarehouseError> {
        self.heartbeat.abort();
        self.warehouse
            .query(&format!(
                "UPDATE _weft._weft_leases SET expires_ms = 0 WHERE name = {} AND run_id = {}",
                text(&self.name),
                text(&self.run_id)
            ))
            .await?;
        Ok(())
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("name", &self.name)
            .field("run_id", &self.run_id)
            .field("lost", &self.lost.is_cancelled())
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Renews the lease every third of `ttl`; cancels `lost` when another run
/// owns it now, or when renewing kept failing for a whole `ttl`.
async fn heartbeat(
    warehouse: Arc<dyn Warehouse>,
    name: String,
    run_id: String,
    ttl: Duration,
    lost: CancellationToken,
) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let now = warehouse.clock_ms_sql();
    let every = (ttl / 3).max(Duration::from_millis(100));
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let renew = format!(
            "UPDATE _weft._weft_leases SET heartbeat_ms = {now}, expires_ms = {now} + {ttl_ms} \
             WHERE name = {} AND run_id = {}",
            text(&name),
            text(&run_id)
        );
        let owner = match warehouse.query(&renew).await {
            Ok(_) => read(warehouse.as_ref(), &name)
                .await
                .map(|r| r.map(|(row, _)| row.run_id)),
            Err(e) => Err(e),
        };
        match owner {
            Ok(Some(owner)) if owner == run_id => last_renewed = Instant::now(),
            Ok(owner) => {
                tracing::warn!(lease = %name, run = %run_id, now_held_by = ?owner, "lease lost to another runner");
                lost.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(lease = %name, error = %e, "renewing the lease failed");
                if last_renewed.elapsed() >= ttl {
                    lost.cancel();
                    return;
                }
            }
        }
    }
}

/// Every lease, by name (empty before the first was taken).
pub async fn leases(warehouse: &dyn Warehouse) -> Result<Vec<LeaseRow>, WarehouseError> {
    warehouse.query(CREATE).await?;
    let now = warehouse.clock_ms_sql();
    let rows = warehouse
        .query_rows(&format!(
            "SELECT name, run_id, host, pid, acquired_ms, heartbeat_ms, expires_ms, slot_ms, \
             {now} FROM _weft._weft_leases ORDER BY name"
        ))
        .await?;
    rows.iter().map(|r| parse(r).map(|(row, _)| row)).collect()
}

/// The lease row `name` and the warehouse clock's now (unix ms).
async fn read(
    warehouse: &dyn Warehouse,
    name: &str,
) -> Result<Option<(LeaseRow, i64)>, WarehouseError> {
    let now = warehouse.clock_ms_sql();
    let rows = warehouse
        .query_rows(&format!(
            "SELECT name, run_id, host, pid, acquired_ms, heartbeat_ms, expires_ms, slot_ms, \
             {now} FROM _weft._weft_leases WHERE name = {}",
            text(name)
        ))
        .await?;
    rows.first().map(|r| parse(r)).transpose()
}

fn parse(row: &[serde_json::Value]) -> Result<(LeaseRow, i64), WarehouseError> {
    let bad = |what: &str| WarehouseError::Corrupt {
        what: "_weft._weft_leases row".to_string(),
        reason: format!(
            "{what} is missing or malformed in {}",
            serde_json::Value::from(row.to_vec())
        ),
    };
    let s = |i: usize, what: &str| {
        row.get(i)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| bad(what))
    };
    let n = |i: usize| {
        row.get(i).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    let req = |i: usize, what: &str| n(i).ok_or_else(|| bad(what));
    let lease = LeaseRow {
        name: s(0, "name")?,
        run_id: s(1, "run_id")?,
        host: s(2, "host")?,
        pid: u32::try_from(req(3, "pid")?).map_err(|_| bad("pid"))?,
        acquired_ms: req(4, "acquired_ms")?,
        heartbeat_ms: req(5, "heartbeat_ms")?,
        expires_ms: req(6, "expires_ms")?,
        slot_ms: n(7),
    };
    Ok((lease, req(8, "now")?))
}

/// `pipeline:stripe` -> "pipeline `stripe`".
fn describe(name: &str) -> String {
    match name.split_once(':') {
        Some((kind, what)) => format!("{kind} `{what}`"),
        None => format!("`{name}`"),
    }
}

/// Whether process `pid` of this host still runs (a zombie does not). Off
/// Linux this cannot be told, and every owner counts as alive (its lease
/// is taken over when it expires).
fn process_alive(pid: u32) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|state| !matches!(state, 'Z' | 'X')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_free_pid_is_not() {
        assert!(process_alive(std::process::id()));
        if cfg!(target_os = "linux") {
            assert!(!process_alive(u32::MAX - 1));
        }
    }

    #[test]
    fn names_read_as_what_they_lease() {
        assert_eq!(describe("pipeline:stripe"), "pipeline `stripe`");
        assert_eq!(describe("job:nightly"), "job `nightly`");
        assert_eq!(describe("odd"), "`odd`");
    }
}
