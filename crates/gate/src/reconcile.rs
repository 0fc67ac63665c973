//! Reconciliation: every pool's counters in a stock gate compared with the
//! database (the source of truth), differences reported and, unless asked
//! only to report, repaired.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::stock::{Limits, PoolId, Snapshot, StockGate, StockLoader};

/// Lists the pools a module keeps in its gate (each module's service
/// answers it from its own tables).
#[async_trait]
pub trait PoolLister: Send + Sync {
    /// Every pool of the module, loaded or not.
    async fn pools(&self) -> Result<Vec<PoolId>, String>;
}

/// One module's stock as the server registers it: its gate, the loader that
/// rebuilds the gate's counters from the database, and what lists its pools.
#[derive(Clone)]
pub struct ModuleStock {
    pub module: &'static str,
    pub gate: Arc<dyn StockGate>,
    pub loader: Arc<dyn StockLoader>,
    pub lister: Arc<dyn PoolLister>,
}

impl ModuleStock {
    /// The module's pools as they are now, with the gate and loader.
    pub async fn pool_set(&self) -> Result<PoolSet, String> {
        Ok(PoolSet {
            module: self.module,
            gate: self.gate.clone(),
            loader: self.loader.clone(),
            pools: self.lister.pools().await?,
        })
    }
}

/// Every registered module's pool set.
pub async fn pool_sets(stocks: &[ModuleStock]) -> Result<Vec<PoolSet>, String> {
    let mut sets = Vec::with_capacity(stocks.len());
    for stock in stocks {
        sets.push(stock.pool_set().await?);
    }
    Ok(sets)
}

/// One module's pools with the gate and loader that serve them.
pub struct PoolSet {
    pub module: &'static str,
    pub gate: Arc<dyn StockGate>,
    pub loader: Arc<dyn StockLoader>,
    pub pools: Vec<PoolId>,
}

/// What reconciliation found for one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The gate's counters equal the database's.
    Agrees,
    /// The gate has not loaded the pool; it will load it from the database
    /// on first use.
    NotLoaded,
    /// The counters differed; `repaired` when they were reset from the database.
    Differs,
}

/// One pool's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PoolCheck {
    pub module: &'static str,
    pub pool: String,
    pub verdict: Verdict,
    /// Units taken by the gate's count (null when not loaded).
    pub gate_taken: Option<u64>,
    /// Units taken by the database's count.
    pub database_taken: u64,
    /// Users whose count differs between the two.
    pub users_differing: usize,
    pub repaired: bool,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Report {
    pub checked: usize,
    pub differing: usize,
    pub repaired: usize,
    /// Only pools that were not in agreement.
    pub pools: Vec<PoolCheck>,
    /// Pools that could not be checked, with why.
    pub errors: Vec<String>,
}

/// How long a difference must last to count: a claim between its take and
/// its durable write is a difference that heals itself.
const SETTLE: Duration = Duration::from_millis(250);

/// Compares every pool's counters with the database and, unless `dry_run`,
/// resets the ones that still differ after a moment.
pub async fn reconcile(sets: &[PoolSet], dry_run: bool) -> Report {
    let mut report = Report {
        checked: 0,
        differing: 0,
        repaired: 0,
        pools: Vec::new(),
        errors: Vec::new(),
    };
    for set in sets {
        for pool in &set.pools {
            report.checked += 1;
            match check(set, pool, dry_run).await {
                Ok(check) if check.verdict == Verdict::Agrees => {}
                Ok(check) => {
                    if check.verdict == Verdict::Differs {
                        report.differing += 1;
                        report.repaired += usize::from(check.repaired);
                    }
                    report.pools.push(check);
                }
                Err(e) => report.errors.push(format!("{pool}: {e}")),
            }
        }
    }
    report
}

async fn check(set: &PoolSet, pool: &PoolId, dry_run: bool) -> Result<PoolCheck, String> {
    let mut database = set.loader.load(pool).await?;
    let mut counted = set.gate.counters(pool).await.map_err(|e| e.to_string())?;
    if counted.as_ref().is_some_and(|c| !same(c, &database)) {
        tokio::time::sleep(SETTLE).await;
        database = set.loader.load(pool).await?;
        counted = set.gate.counters(pool).await.map_err(|e| e.to_string())?;
    }
    let verdict = match &counted {
        None => Verdict::NotLoaded,
        Some(c) if same(c, &database) => Verdict::Agrees,
        Some(_) => Verdict::Differs,
    };
    let repaired = verdict == Verdict::Differs && !dry_run && {
        set.gate
            .reset(pool, database.0, database.1.clone())
            .await
            .map_err(|e| e.to_string())?;
        true
    };
    Ok(PoolCheck {
        module: set.module,
        pool: pool.to_string(),
        verdict,
        gate_taken: counted.as_ref().map(|(_, s)| s.taken),
        database_taken: database.1.taken,
        users_differing: counted
            .as_ref()
            .map_or(0, |(_, s)| users_differing(&s.by_user, &database.1.by_user)),
        repaired,
    })
}

/// Equal limits, totals and per-user counts (a user holding none may be
/// absent on one side and zero on the other).
fn same(a: &(Limits, Snapshot), b: &(Limits, Snapshot)) -> bool {
    a.0 == b.0 && a.1.taken == b.1.taken && users_differing(&a.1.by_user, &b.1.by_user) == 0
}

fn users_differing(a: &HashMap<String, u32>, b: &HashMap<String, u32>) -> usize {
    let held = |m: &HashMap<String, u32>, user: &String| m.get(user).copied().unwrap_or(0);
    let mut users: Vec<&String> = a.keys().chain(b.keys()).collect();
    users.sort_unstable();
    users.dedup();
    users
        .into_iter()
        .filter(|user| held(a, user) != held(b, user))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stock::MemoryStockGate;
    use std::sync::Mutex;

    /// A database that answers with whatever the test put in it.
    struct Truth(Mutex<(Limits, Snapshot)>);

    #[async_trait]
    impl StockLoader for Truth {
        async fn load(&self, _: &PoolId) -> Result<(Limits, Snapshot), String> {
            self.0.lock().map(|t| t.clone()).map_err(|e| e.to_string())
        }

        async fn claimed(&self, _: &PoolId, _: &str) -> Result<bool, String> {
            Ok(true)
        }
    }

    fn state(taken: u64, users: &[(&str, u32)]) -> (Limits, Snapshot) {
        (
            Limits {
                stock: Some(10),
                per_user: Some(2),
            },
            Snapshot {
                taken,
                by_user: users.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect(),
            },
        )
    }

    fn set(truth: Arc<Truth>, gate: Arc<dyn StockGate>) -> Vec<PoolSet> {
        vec![PoolSet {
            module: "test",
            gate,
            loader: truth,
            pools: vec![PoolId::new("test:1")],
        }]
    }

    #[tokio::test]
    async fn a_gate_that_drifted_is_reported_and_reset_to_the_database() {
        let truth = Arc::new(Truth(Mutex::new(state(2, &[("ann", 1), ("bob", 1)]))));
        let gate: Arc<dyn StockGate> = Arc::new(MemoryStockGate::new(truth.clone()));
        let pool = PoolId::new("test:1");
        gate.take(&pool, "cat", 1).await.expect("a take");
        // The take never reached the database (say, the process died).

        let dry = reconcile(&set(truth.clone(), gate.clone()), true).await;
        assert_eq!((dry.checked, dry.differing, dry.repaired), (1, 1, 0));
        assert_eq!(dry.pools[0].gate_taken, Some(3));
        assert_eq!(dry.pools[0].database_taken, 2);
        assert_eq!(dry.pools[0].users_differing, 1);

        let fixed = reconcile(&set(truth.clone(), gate.clone()), false).await;
        assert_eq!((fixed.differing, fixed.repaired), (1, 1));
        assert_eq!(gate.remaining(&pool).await.expect("remaining"), Some(8));
        let again = reconcile(&set(truth, gate), false).await;
        assert_eq!((again.checked, again.differing), (1, 0));
        assert!(again.pools.is_empty());
    }

    #[tokio::test]
    async fn an_unloaded_pool_is_left_to_load_itself() {
        let truth = Arc::new(Truth(Mutex::new(state(0, &[]))));
        let gate: Arc<dyn StockGate> = Arc::new(MemoryStockGate::new(truth.clone()));

        let report = reconcile(&set(truth, gate), false).await;

        assert_eq!(report.pools[0].verdict, Verdict::NotLoaded);
        assert_eq!(report.differing, 0);
    }

    #[test]
    fn a_user_holding_none_matches_an_absent_user() {
        let a: HashMap<String, u32> = [("ann".to_owned(), 0), ("bob".to_owned(), 1)].into();
        let b: HashMap<String, u32> = [("bob".to_owned(), 1)].into();
        assert_eq!(users_differing(&a, &b), 0);
        assert_eq!(users_differing(&a, &HashMap::new()), 1);
    }
}
