//! Measures successful takes per second on PostgreSQL with durable commits
//! (`synchronous_commit` on, as `Db` always sets it): a bare hot-row
//! `update … set remaining = remaining - 1 where remaining > 0`, then
//! [`PgStockGate`] over 1, 4, 16 and 64 shard rows. Every gate take is by a new
//! user against a per-user limit of one (so it also writes a holding), from a
//! stock too large to sell out. Each row runs its tasks for a fixed time.
//!
//! It works in a fresh schema of the database named by
//! `STAMPEDE_TEST_DATABASE_URL` and drops it at the end:
//!
//! `STAMPEDE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
//!  cargo run --release -p gate --example pg_gate -- [SECONDS]`

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gate::{Limits, PgStockGate, PoolId, Snapshot, StockGate, StockLoader};
use kernel::db::{Db, DbOptions};
use kernel::testing::{DATABASE_URL_VAR, TestDatabase};
use sqlx::postgres::PgPool;

const TASKS: [u32; 3] = [8, 32, 64];
const SHARDS: [u16; 4] = [1, 4, 16, 64];
const STOCK: u64 = 1_000_000_000_000;

type BoxError = Box<dyn Error + Send + Sync>;

/// Every pool: a stock no run can sell out, one unit per user.
struct Plenty;

#[async_trait]
impl StockLoader for Plenty {
    async fn load(&self, _pool: &PoolId) -> Result<(Limits, Snapshot), String> {
        Ok((
            Limits {
                stock: Some(STOCK),
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

/// What is being measured.
#[derive(Clone)]
enum Contender {
    HotRow(PgPool),
    Gate(Arc<dyn StockGate>, PoolId),
}

impl Contender {
    async fn take(&self, user: &str) -> Result<(), BoxError> {
        match self {
            Self::HotRow(pool) => {
                let updated = sqlx::query(
                    "update bench_hot_rows set remaining = remaining - 1 \
                     where row_id = 1 and remaining > 0",
                )
                .execute(pool)
                .await?
                .rows_affected();
                if updated == 1 {
                    Ok(())
                } else {
                    Err("the hot row ran out".into())
                }
            }
            Self::Gate(gate, pool) => Ok(gate.take(pool, user, 1).await?),
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), BoxError> {
    let seconds: u64 = std::env::args().nth(1).map_or(Ok(5), |a| a.parse())?;
    if !std::env::var(DATABASE_URL_VAR).is_ok_and(|url| url.starts_with("postgres")) {
        return Err(format!("set {DATABASE_URL_VAR} to a PostgreSQL URL").into());
    }
    let database = TestDatabase::create().await;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("{seconds} s per row, cores: {cores}, synchronous_commit on");
    println!();
    println!("| contender | tasks | takes | takes/s |");
    println!("| --- | --- | --- | --- |");
    for tasks in TASKS {
        let options = DbOptions {
            max_connections: tasks,
            ..DbOptions::default()
        };
        let db = Db::connect(database.url(), &options).await?;
        db.migrate(gate::stock_migrations()).await?;
        let Db::Postgres(pg) = &db else {
            return Err("not PostgreSQL".into());
        };
        sqlx::query(
            "create table if not exists bench_hot_rows \
             (row_id integer primary key, remaining bigint not null)",
        )
        .execute(pg)
        .await?;
        sqlx::query(
            "insert into bench_hot_rows values (1, $1) \
             on conflict (row_id) do update set remaining = excluded.remaining",
        )
        .bind(i64::try_from(STOCK)?)
        .execute(pg)
        .await?;
        let mut contenders = vec![(
            "hot row, bare update".to_owned(),
            Contender::HotRow(pg.clone()),
        )];
        for shards in SHARDS {
            let gate: Arc<dyn StockGate> =
                Arc::new(PgStockGate::new(db.clone(), shards, Arc::new(Plenty))?);
            let pool = PoolId::new(format!("bench:{tasks}:{shards}"));
            gate.remaining(&pool).await?;
            let name = format!(
                "PgStockGate, {shards} shard{}",
                if shards == 1 { "" } else { "s" }
            );
            contenders.push((name, Contender::Gate(gate, pool)));
        }
        for (name, contender) in contenders {
            let takes = run(&contender, tasks, Duration::from_secs(seconds)).await?;
            println!(
                "| {name} | {tasks} | {takes} | {:.0} |",
                takes as f64 / seconds as f64
            );
        }
        db.close().await;
    }
    Ok(())
}

/// Successful takes by `tasks` tasks taking as fast as they can for `time`.
async fn run(contender: &Contender, tasks: u32, time: Duration) -> Result<u64, BoxError> {
    let taken = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + time;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (contender, taken) = (contender.clone(), Arc::clone(&taken));
            tokio::spawn(async move {
                let mut i = 0_u64;
                while Instant::now() < deadline {
                    contender.take(&format!("user-{t}-{i}")).await?;
                    taken.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    Ok(taken.load(Ordering::Relaxed))
}
