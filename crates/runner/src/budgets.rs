//! One budget per API account across runners: every runner process that
//! shares a warehouse heartbeats the account budgets it uses there
//! ([`weft_warehouse::hold_budgets`]) and spaces its requests at its share
//! of the rate — all of it alone, 95% / N with N runners (the 5% absorbs
//! the edges of independent limiters within one second). A budget idle
//! for the holder TTL stops being announced, so an idle runner does not keep
//! a share it is not using.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft_http::{Budget, BudgetRegistry};
use weft_warehouse::Warehouse;

/// How often a runner heartbeats its budgets and re-reads the holders.
const EVERY: Duration = Duration::from_secs(1);

/// A holder row lives this long without a heartbeat.
const TTL: Duration = Duration::from_secs(3);

/// This process's part in sharing its account budgets through a warehouse.
pub(crate) struct BudgetSharing {
    warehouse: Arc<dyn Warehouse>,
    owner: String,
    /// Budgets already heartbeated (the others know of this runner).
    announced: Mutex<HashSet<String>>,
    task: tokio::task::JoinHandle<()>,
}

fn name(b: &Budget) -> String {
    format!("{}/{}", b.key().api, b.key().account)
}

impl BudgetSharing {
    /// Starts heartbeating, when the warehouse is one several runners share.
    pub(crate) fn start(warehouse: &Arc<dyn Warehouse>) -> Option<Arc<BudgetSharing>> {
        if !warehouse.shared_by_processes() {
            return None;
        }
        let sharing = Arc::new_cyclic(|me: &std::sync::Weak<BudgetSharing>| {
            let me = me.clone();
            BudgetSharing {
                warehouse: Arc::clone(warehouse),
                owner: weft_core::new_load_id(),
                announced: Mutex::new(HashSet::new()),
                task: tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(EVERY).await;
                        let Some(sharing) = me.upgrade() else { return };
                        sharing.sync().await;
                    }
                }),
            }
        });
        Some(sharing)
    }

    /// Heartbeats every rate-limited budget this process used within the
    /// holder TTL (an idle one leaves its share to the others) and sets
    /// each one's share; returns the budgets other runners also hold that
    /// this runner had not announced before.
    async fn sync(&self) -> Vec<String> {
        let budgets: Vec<Arc<Budget>> = BudgetRegistry::global()
            .rate_limited()
            .into_iter()
            .filter(|b| b.idle_for() < TTL)
            .collect();
        let names: Vec<String> = budgets.iter().map(|b| name(b)).collect();
        let holders = match weft_warehouse::hold_budgets(
            self.warehouse.as_ref(),
            &self.owner,
            &names,
            TTL,
        )
        .await
        {
            Ok(holders) => holders,
            Err(e) => {
                tracing::warn!(error = %e, "sharing the rate budgets failed; keeping the last shares");
                return Vec::new();
            }
        };
        let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        // A budget that went idle dropped out; it joins again when used.
        announced.retain(|n| names.contains(n));
        let mut joined = Vec::new();
        for (budget, name) in budgets.iter().zip(names.iter().cloned()) {
            let n = holders.get(&name).copied().unwrap_or(1);
            let share = if n <= 1 { 1.0 } else { 0.95 / n as f64 };
            if (budget.share() - share).abs() > 1e-9 {
                tracing::info!(budget = %name, runners = n, share, "rate budget shared");
            }
            budget.set_share(share);
            if announced.insert(name.clone()) && n > 1 {
                joined.push(name);
            }
        }
        joined
    }

    /// Called once a run's source exists (its budgets with it): announces
    /// them, takes this runner's share and, when other runners already read
    /// one of the accounts, waits until they have seen this one and slowed
    /// down, so together they never exceed the account's rate.
    pub(crate) async fn join(&self) {
        if !self.sync().await.is_empty() {
            tokio::time::sleep(EVERY + EVERY / 2).await;
        }
    }

    /// Stops heartbeating and leaves every budget to the other runners.
    pub(crate) async fn leave(&self) {
        self.task.abort();
        if let Err(e) = weft_warehouse::release_budgets(self.warehouse.as_ref(), &self.owner).await
        {
            tracing::warn!(error = %e, "leaving the shared rate budgets failed; they expire on their own");
        }
    }
}

impl Drop for BudgetSharing {
    fn drop(&mut self) {
        self.task.abort();
    }
}
