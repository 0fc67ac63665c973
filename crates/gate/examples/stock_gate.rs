//! Measures takes per second through the in-memory stock gate, called as an
//! `Arc<dyn StockGate>` the way services call it, with 1, 2 and 4 tasks
//! hammering one pool: while it sells (stock too large to run out, a per-user
//! limit of one, every take by a new user, so every take succeeds and adds a
//! user) and once it has sold out (the drop: every take refused).
//!
//! Each figure is the median of three runs on a fresh gate.
//!
//! `cargo run --release -p gate --example stock_gate -- [TAKES_PER_TASK]`

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gate::{Limits, MemoryStockGate, PoolId, Refusal, Snapshot, StockGate, StockLoader};
use tokio::sync::Barrier;

const TASKS: [usize; 3] = [1, 2, 4];
const RUNS: usize = 3;

/// Every pool: a stock no run can sell out, one unit per user.
struct Plenty;

#[async_trait]
impl StockLoader for Plenty {
    async fn load(&self, _pool: &PoolId) -> Result<(Limits, Snapshot), String> {
        Ok((
            Limits {
                stock: Some(1_000_000_000_000),
                per_user: Some(1),
            },
            Snapshot::default(),
        ))
    }

    /// The benchmark takes no leases, so no claim is ever asked about.
    async fn claimed(&self, _pool: &PoolId, _claim: &str) -> Result<bool, String> {
        Ok(false)
    }
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    Selling,
    SoldOut,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn Error>> {
    let per_task: usize = std::env::args().nth(1).map_or(Ok(250_000), |a| a.parse())?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("takes per task: {per_task}, runs per row: {RUNS} (median shown), cores: {cores}");
    println!();
    println!("| pool | tasks | takes | time | takes/s |");
    println!("| --- | --- | --- | --- | --- |");
    for scenario in [Scenario::Selling, Scenario::SoldOut] {
        for tasks in TASKS {
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                times.push(run(scenario, tasks, per_task).await?);
            }
            times.sort();
            let median = times[RUNS / 2];
            let takes = tasks * per_task;
            println!(
                "| {} | {tasks} | {takes} | {:.3} s | {:.0} |",
                match scenario {
                    Scenario::Selling => "selling",
                    Scenario::SoldOut => "sold out",
                },
                median.as_secs_f64(),
                takes as f64 / median.as_secs_f64(),
            );
        }
    }
    Ok(())
}

/// Time for `tasks` tasks to make `per_task` takes each, every one by a
/// distinct user.
async fn run(
    scenario: Scenario,
    tasks: usize,
    per_task: usize,
) -> Result<Duration, Box<dyn Error>> {
    let gate: Arc<dyn StockGate> = Arc::new(MemoryStockGate::new(Arc::new(Plenty)));
    let pool = PoolId::new("coupon:bench");
    let expected = match scenario {
        Scenario::Selling => {
            gate.remaining(&pool).await?;
            Ok(())
        }
        Scenario::SoldOut => {
            let limits = Limits {
                stock: Some(1_000),
                per_user: Some(1),
            };
            let sold = Snapshot {
                taken: 1_000,
                ..Snapshot::default()
            };
            gate.reset(&pool, limits, sold).await?;
            Err(Refusal::SoldOut)
        }
    };
    // Users are made before the clock starts: requests arrive with theirs.
    let users: Vec<Vec<String>> = (0..tasks)
        .map(|t| (0..per_task).map(|i| format!("user-{t}-{i}")).collect())
        .collect();
    let start = Arc::new(Barrier::new(tasks + 1));
    let handles: Vec<_> = users
        .into_iter()
        .map(|users| {
            let (gate, pool, start, expected) = (
                Arc::clone(&gate),
                pool.clone(),
                Arc::clone(&start),
                expected.clone(),
            );
            tokio::spawn(async move {
                start.wait().await;
                let mut unexpected = 0_usize;
                for user in &users {
                    if gate.take(&pool, user, 1).await != expected {
                        unexpected += 1;
                    }
                }
                // Handed back so that freeing them is not timed.
                (unexpected, users)
            })
        })
        .collect();
    start.wait().await;
    let began = Instant::now();
    let mut unexpected = 0;
    let mut spent = Vec::with_capacity(tasks);
    for handle in handles {
        let (wrong, users) = handle.await?;
        unexpected += wrong;
        spent.push(users);
    }
    let elapsed = began.elapsed();
    drop((spent, gate));
    if unexpected > 0 {
        return Err(format!("{unexpected} takes did not answer {expected:?}").into());
    }
    Ok(elapsed)
}
