//! The stock gate in PostgreSQL alone, for deployments without Redis: every
//! instance sharing the database shares the counters.
//!
//! Each pool's stock is spread over several shard rows, because a row stays
//! locked from its update until the commit has reached the disk: on one hot
//! row, takes run one fsync at a time, while on N rows N of them commit
//! together. A take is one call of the `stock_gate_take` function
//! (`migrations/postgres/…000451_stock_gate_take.sql`, the twin of the Redis
//! take script): one round trip and one statement, all or nothing. It
//! refuses a sold-out pool without locking anything, raises the user's
//! holding if that keeps it within the per-user limit, then takes from
//! shard rows that have room — first only from rows no other take holds,
//! starting at the next shard in turn; if those cannot
//! serve it, the call fails, its changes roll back, and a second call waits
//! for rows in ascending shard order. A row a transaction waited for stays
//! locked even when it turns out full, so waiting in any other order could
//! deadlock; holdings are locked before shards everywhere for the same
//! reason. Give-backs, resets and loads are short transactions from here.
//! The tables are `migrations/postgres` of this crate ([`stock_migrations`]).
//!
//! A take under a lease inserts the lease row in the same statement as the
//! take; a give-back through a lease deletes the row first and gives back
//! only if it was there, in one transaction. Leases are locked before
//! holdings and shards.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use kernel::db::{Db, Migrations};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};

use super::loading::Loads;
use super::{
    GiveBackError, Limits, PoolId, Refusal, Snapshot, StaleClaim, StockGate, StockLoader, Taken,
    Unavailable, zero_quantity,
};

/// The PostgreSQL stock gate's tables. It has no SQLite twin (SQLite
/// deployments use the in-memory gate), so the SQLite set is empty.
#[must_use]
pub fn stock_migrations() -> Migrations {
    Migrations {
        sqlite: Migrator::DEFAULT,
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// The pool's per-user limit, and the units its shards can still serve
/// (null when unlimited). No row: the gate does not have the pool.
const LIMIT_AND_ROOM: &str = "select p.per_user_limit, \
     case when bool_or(s.capacity is null) then null \
          else coalesce(sum(greatest(s.capacity - s.taken, 0)), 0)::bigint end as room \
     from stock_pools p left join stock_pool_shards s on s.pool_id = p.pool_id \
     where p.pool_id = $1 group by p.pool_id, p.per_user_limit";

/// One take, all or nothing, in one round trip: see the function in the
/// migration. Answers `TAKEN`, `SOLD_OUT`, `LIMIT_REACHED` or `ABSENT`.
const TAKE: &str = "select stock_gate_take($1, $2, $3, $4, $5)";
/// [`TAKE`] that also records the lease of claim $6, in the same statement.
const TAKE_CLAIM: &str = "with taken as (select stock_gate_take($1, $2, $3, $4, $5) as answer), \
     leased as (insert into stock_leases (pool_id, claim_id, user_id, quantity) \
                select $1, $6, $2, $3 from taken where answer = 'TAKEN') \
     select answer from taken";
/// The most stale leases read per call.
const STALE_BATCH: i64 = 1000;
/// Raised by the take when the rows free of other takes could not serve it.
const BUSY: &str = "GB001";
/// Raised by a waiting take when the rows could not serve it.
const SOLD_OUT: &str = "GB002";

/// Returns up to $2 units to the first shard above $3 that counts some as
/// taken; answers the shard and how many went back, or no row.
const RETURN_TO_THE_NEXT_SHARD: &str = "update stock_pool_shards s set taken = s.taken - pick.back \
     from (select shard, least(taken, $2) as back from stock_pool_shards \
           where pool_id = $1 and shard > $3 and taken > 0 \
           order by shard limit 1 for update) pick \
     where s.pool_id = $1 and s.shard = pick.shard returning pick.shard, pick.back";

/// Stock gate counters in PostgreSQL tables of the gate's own, loaded from
/// the module's tables through a [`StockLoader`] the first time any
/// instance sees a pool.
///
/// A take commits before it answers, so every success costs one durable
/// commit of its own (PostgreSQL flushes concurrent commits together).
/// Database errors are [`Refusal::Unavailable`] / [`Unavailable`].
pub struct PgStockGate {
    pool: PgPool,
    shards: u16,
    /// The shard the next take starts from, turning round.
    next_shard: AtomicU32,
    loads: Loads,
}

impl PgStockGate {
    /// A gate over a PostgreSQL database that has [`stock_migrations`]
    /// applied; pools it installs are spread over `shards` rows (at least
    /// one; one is a single hot row). Fails on an SQLite database.
    pub fn new(db: Db, shards: u16, loader: Arc<dyn StockLoader>) -> Result<Self, Unavailable> {
        let Db::Postgres(pool) = db else {
            return Err(Unavailable(
                "the PostgreSQL stock gate needs a PostgreSQL database".to_owned(),
            ));
        };
        // Instances start at different shards, so their first takes do not
        // all queue on the same row.
        let seed = RandomState::new().build_hasher().finish();
        Ok(Self {
            pool,
            shards: shards.max(1),
            next_shard: AtomicU32::new(u32::try_from(seed >> 32).unwrap_or(0)),
            loads: Loads::new(loader),
        })
    }

    fn start_shard(&self) -> i32 {
        let turn = self.next_shard.fetch_add(1, Ordering::Relaxed);
        i32::try_from(turn % u32::from(self.shards)).unwrap_or(0)
    }

    /// The pool's per-user limit and room; `None` if the gate does not have it.
    async fn limit_and_room(
        &self,
        pool: &PoolId,
    ) -> Result<Option<(Option<u32>, Option<u64>)>, Unavailable> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(LIMIT_AND_ROOM)
            .bind(pool.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(|(limit, room)| {
            Ok((
                limit
                    .map(|n| from_column("per_user_limit", n))
                    .transpose()?,
                room.map(|n| from_column("room", n)).transpose()?,
            ))
        })
        .transpose()
    }

    /// Runs `call` (which answers `None` for a pool the tables do not have),
    /// loading and installing the pool first if need be.
    async fn on_loaded<T, C>(&self, pool: &PoolId, call: impl Fn() -> C) -> Result<T, Unavailable>
    where
        C: Future<Output = Result<Option<T>, Unavailable>>,
    {
        let install = |limits, snapshot| self.install(pool, limits, snapshot);
        self.loads.on_loaded(pool, call, install).await
    }

    /// Writes a loaded pool unless some instance already has.
    async fn install(
        &self,
        pool: &PoolId,
        limits: Limits,
        snapshot: Snapshot,
    ) -> Result<(), Unavailable> {
        let mut tx = self.begin().await?;
        let added = sqlx::query(
            "insert into stock_pools (pool_id, per_user_limit) values ($1, $2) \
             on conflict (pool_id) do nothing",
        )
        .bind(pool.as_str())
        .bind(limits.per_user.map(i64::from))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if added == 1 {
            self.write_counters(&mut tx, pool, limits, &snapshot)
                .await?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Writes the pool's shards and holdings, where there are none.
    async fn write_counters(
        &self,
        conn: &mut PgConnection,
        pool: &PoolId,
        limits: Limits,
        snapshot: &Snapshot,
    ) -> Result<(), Unavailable> {
        let rows = spread(limits.stock, snapshot.taken, self.shards)?;
        let shards: Vec<i32> = rows.iter().map(|r| r.shard).collect();
        let capacities: Vec<Option<i64>> = rows.iter().map(|r| r.capacity).collect();
        let taken: Vec<i64> = rows.iter().map(|r| r.taken).collect();
        sqlx::query(
            "insert into stock_pool_shards (pool_id, shard, capacity, taken) \
             select $1, * from unnest($2::integer[], $3::bigint[], $4::bigint[])",
        )
        .bind(pool.as_str())
        .bind(shards)
        .bind(capacities)
        .bind(taken)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
        if limits.per_user.is_none() {
            return Ok(());
        }
        let (users, held): (Vec<&str>, Vec<i64>) = snapshot
            .by_user
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(user, n)| (user.as_str(), i64::from(*n)))
            .unzip();
        sqlx::query(
            "insert into stock_holdings (pool_id, user_id, held) \
             select $1, * from unnest($2::text[], $3::bigint[])",
        )
        .bind(pool.as_str())
        .bind(users)
        .bind(held)
        .execute(&mut *conn)
        .await
        .map_err(db_error)
        .map(drop)
    }

    /// One take through `stock_gate_take`: first without waiting for rows
    /// other takes hold, then, if those could not serve it, waiting for rows
    /// in order. `None` when the tables do not have the pool.
    /// With a `claim`, the take records its lease.
    async fn try_take(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: Option<&str>,
    ) -> Result<Option<Result<(), Refusal>>, Unavailable> {
        let start = self.start_shard();
        let mut waiting = false;
        loop {
            let mut query = sqlx::query_scalar(if claim.is_some() { TAKE_CLAIM } else { TAKE })
                .bind(pool.as_str())
                .bind(user)
                .bind(i64::from(quantity))
                .bind(start)
                .bind(waiting);
            if let Some(claim) = claim {
                query = query.bind(claim);
            }
            let answer: Result<String, sqlx::Error> = query.fetch_one(&self.pool).await;
            return Ok(match answer.as_deref() {
                Ok("TAKEN") => Some(Ok(())),
                Ok("SOLD_OUT") => Some(Err(Refusal::SoldOut)),
                Ok("LIMIT_REACHED") => Some(Err(Refusal::LimitReached)),
                Ok("ABSENT") => None,
                Ok(other) => {
                    return Err(Unavailable(format!(
                        "postgres: unexpected answer {other:?} from stock_gate_take"
                    )));
                }
                Err(e) if !waiting && raised(e, BUSY) => {
                    waiting = true;
                    continue;
                }
                Err(e) if raised(e, SOLD_OUT) => Some(Err(Refusal::SoldOut)),
                Err(e) => return Err(db_error(e)),
            });
        }
    }

    /// Lowers the user's holding by up to `quantity`, and says by how much.
    async fn release_holding(
        conn: &mut PgConnection,
        pool: &PoolId,
        user: &str,
        quantity: i64,
    ) -> Result<i64, Unavailable> {
        let held: Option<i64> = sqlx::query_scalar(
            "select held from stock_holdings where pool_id = $1 and user_id = $2 for update",
        )
        .bind(pool.as_str())
        .bind(user)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
        let Some(held) = held else {
            return Ok(0);
        };
        let sql = if quantity >= held {
            "delete from stock_holdings where pool_id = $1 and user_id = $2"
        } else {
            "update stock_holdings set held = held - $3 where pool_id = $1 and user_id = $2"
        };
        sqlx::query(sql)
            .bind(pool.as_str())
            .bind(user)
            .bind(quantity)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        Ok(quantity.min(held))
    }

    /// Returns up to `quantity` units to the shards in ascending order, and
    /// says how many went back (no more than they count as taken).
    async fn return_to_shards(
        conn: &mut PgConnection,
        pool: &PoolId,
        quantity: i64,
    ) -> Result<i64, Unavailable> {
        let (mut returned, mut last) = (0, -1);
        while returned < quantity {
            let back: Option<(i32, i64)> = sqlx::query_as(RETURN_TO_THE_NEXT_SHARD)
                .bind(pool.as_str())
                .bind(quantity - returned)
                .bind(last)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_error)?;
            match back {
                Some((shard, n)) => (last, returned) = (shard, returned + n),
                None => break,
            }
        }
        Ok(returned)
    }

    /// Gives back in `tx` (which may have deleted a lease), and commits.
    async fn give_back_in(
        mut tx: Transaction<'static, Postgres>,
        pool: &PoolId,
        user: &str,
        quantity: u32,
    ) -> Result<(), GiveBackError> {
        let unavailable = |e: Unavailable| GiveBackError::Unavailable(e.0);
        let commit = |tx: Transaction<'static, Postgres>| async move {
            tx.commit().await.map_err(|e| unavailable(db_error(e)))
        };
        if quantity == 0 {
            return commit(tx).await;
        }
        let limit: Option<Option<i64>> =
            sqlx::query_scalar("select per_user_limit from stock_pools where pool_id = $1")
                .bind(pool.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| unavailable(db_error(e)))?;
        // A pool the gate does not have is left to the database, which
        // already counts the unit as given back; the pool loads from there.
        let Some(limit) = limit else {
            return commit(tx).await;
        };
        let wanted = i64::from(quantity);
        let from_user = if limit.is_some() {
            Self::release_holding(&mut tx, pool, user, wanted)
                .await
                .map_err(unavailable)?
        } else {
            wanted
        };
        let returned = Self::return_to_shards(&mut tx, pool, from_user)
            .await
            .map_err(unavailable)?;
        commit(tx).await?;
        if returned < wanted {
            return Err(GiveBackError::Excess {
                requested: quantity,
                returned: u32::try_from(returned).unwrap_or(0),
            });
        }
        Ok(())
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, Unavailable> {
        self.pool.begin().await.map_err(db_error)
    }
}

impl fmt::Debug for PgStockGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStockGate")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StockGate for PgStockGate {
    async fn take(&self, pool: &PoolId, user: &str, quantity: u32) -> Result<(), Refusal> {
        if quantity == 0 {
            return Err(zero_quantity(pool));
        }
        self.on_loaded(pool, || self.try_take(pool, user, quantity, None))
            .await?
    }

    async fn take_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<Taken, Refusal> {
        if quantity == 0 {
            return Err(zero_quantity(pool));
        }
        // The take function answers no holding, so claims are not numbered.
        self.on_loaded(pool, || self.try_take(pool, user, quantity, Some(claim)))
            .await??;
        Ok(Taken::default())
    }

    async fn settle(&self, pool: &PoolId, claim: &str) -> Result<(), Unavailable> {
        sqlx::query("delete from stock_leases where pool_id = $1 and claim_id = $2")
            .bind(pool.as_str())
            .bind(claim)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
    }

    async fn settle_many(&self, pool: &PoolId, claims: &[String]) -> Result<(), Unavailable> {
        sqlx::query("delete from stock_leases where pool_id = $1 and claim_id = any($2)")
            .bind(pool.as_str())
            .bind(claims)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
    }

    async fn give_back_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<(), GiveBackError> {
        let mut tx = self
            .begin()
            .await
            .map_err(|e| GiveBackError::Unavailable(e.0))?;
        let leased: Option<i64> = sqlx::query_scalar(
            "delete from stock_leases where pool_id = $1 and claim_id = $2 returning quantity",
        )
        .bind(pool.as_str())
        .bind(claim)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| GiveBackError::Unavailable(db_error(e).0))?;
        // Settled, swept or reset already: nothing is due.
        if leased.is_none() {
            return Ok(());
        }
        Self::give_back_in(tx, pool, user, quantity).await
    }

    async fn stale_claims(&self, older_than: Duration) -> Result<Vec<StaleClaim>, Unavailable> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "select pool_id, claim_id, user_id, quantity from stock_leases \
             where taken_at <= now() - make_interval(secs => $1) order by taken_at limit $2",
        )
        .bind(older_than.as_secs_f64())
        .bind(STALE_BATCH)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|(pool, claim, user, quantity)| {
                Ok(StaleClaim {
                    pool: PoolId::new(pool),
                    claim,
                    user,
                    quantity: from_column("quantity", quantity)?,
                })
            })
            .collect()
    }

    async fn give_back(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
    ) -> Result<(), GiveBackError> {
        let tx = self
            .begin()
            .await
            .map_err(|e| GiveBackError::Unavailable(e.0))?;
        Self::give_back_in(tx, pool, user, quantity).await
    }
    async fn remaining(&self, pool: &PoolId) -> Result<Option<u64>, Unavailable> {
        let (_, room) = self.on_loaded(pool, || self.limit_and_room(pool)).await?;
        Ok(room)
    }

    async fn reset(
        &self,
        pool: &PoolId,
        limits: Limits,
        snapshot: Snapshot,
    ) -> Result<(), Unavailable> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "insert into stock_pools (pool_id, per_user_limit) values ($1, $2) \
             on conflict (pool_id) do update set per_user_limit = excluded.per_user_limit",
        )
        .bind(pool.as_str())
        .bind(limits.per_user.map(i64::from))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        delete_counters(&mut tx, pool).await?;
        self.write_counters(&mut tx, pool, limits, &snapshot)
            .await?;
        tx.commit().await.map_err(db_error)
    }

    async fn counters(&self, pool: &PoolId) -> Result<Option<(Limits, Snapshot)>, Unavailable> {
        let mut tx = self.begin().await?;
        // One snapshot of the three tables.
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let limit: Option<Option<i64>> =
            sqlx::query_scalar("select per_user_limit from stock_pools where pool_id = $1")
                .bind(pool.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        let Some(limit) = limit else {
            return Ok(None);
        };
        let shards: Vec<(Option<i64>, i64)> =
            sqlx::query_as("select capacity, taken from stock_pool_shards where pool_id = $1")
                .bind(pool.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        let holdings: Vec<(String, i64)> =
            sqlx::query_as("select user_id, held from stock_holdings where pool_id = $1")
                .bind(pool.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;

        let mut stock = Some(0_u64);
        let mut taken = 0_u64;
        for (capacity, shard_taken) in shards {
            stock = stock
                .zip(capacity.map(|n| from_column("capacity", n)).transpose()?)
                .map(|(sum, n)| sum.saturating_add(n));
            taken = taken.saturating_add(from_column("taken", shard_taken)?);
        }
        let by_user = holdings
            .into_iter()
            .map(|(user, held)| Ok((user, from_column("held", held)?)))
            .collect::<Result<HashMap<_, _>, Unavailable>>()?;
        let limits = Limits {
            stock,
            per_user: limit
                .map(|n| from_column("per_user_limit", n))
                .transpose()?,
        };
        Ok(Some((limits, Snapshot { taken, by_user })))
    }

    async fn forget(&self, pool: &PoolId) -> Result<(), Unavailable> {
        let mut tx = self.begin().await?;
        sqlx::query("delete from stock_pools where pool_id = $1")
            .bind(pool.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        delete_counters(&mut tx, pool).await?;
        tx.commit().await.map_err(db_error)?;
        self.loads.forget(pool);
        Ok(())
    }
}

/// Deletes a pool's leases, holdings, then its shards (the order takes lock
/// them in).
async fn delete_counters(conn: &mut PgConnection, pool: &PoolId) -> Result<(), Unavailable> {
    for sql in [
        "delete from stock_leases where pool_id = $1",
        "delete from stock_holdings where pool_id = $1",
        "delete from stock_pool_shards where pool_id = $1",
    ] {
        sqlx::query(sql)
            .bind(pool.as_str())
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// One shard row as installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShardRow {
    shard: i32,
    capacity: Option<i64>,
    taken: i64,
}

/// Spreads a pool over `shards` rows: each row's capacity is an even share
/// of the stock, and what is left to sell spreads evenly as room, so every
/// row can serve. Taken units beyond the stock (a stock lowered below what
/// was taken) count on the first row, which give-backs (in shard order)
/// drain first.
fn spread(stock: Option<u64>, taken: u64, shards: u16) -> Result<Vec<ShardRow>, Unavailable> {
    let even =
        |n: u64, i: u16| n / u64::from(shards) + u64::from(u64::from(i) < n % u64::from(shards));
    (0..shards)
        .map(|i| {
            let (capacity, taken) = match stock {
                None => (None, even(taken, i)),
                Some(stock) => {
                    let capacity = even(stock, i);
                    let room = even(stock.saturating_sub(taken), i);
                    let excess = if i == 0 {
                        taken.saturating_sub(stock)
                    } else {
                        0
                    };
                    (Some(capacity), capacity - room + excess)
                }
            };
            Ok(ShardRow {
                shard: i32::from(i),
                capacity: capacity.map(to_column).transpose()?,
                taken: to_column(taken)?,
            })
        })
        .collect()
}

fn to_column(n: u64) -> Result<i64, Unavailable> {
    i64::try_from(n).map_err(|_| Unavailable(format!("postgres: {n} is too large to store")))
}

fn from_column<T: TryFrom<i64>>(what: &str, n: i64) -> Result<T, Unavailable> {
    T::try_from(n).map_err(|_| Unavailable(format!("postgres: stored {what} {n} is out of range")))
}

fn db_error(e: impl fmt::Display) -> Unavailable {
    Unavailable(format!("postgres: {e}"))
}

/// Whether the database raised `e` with SQLSTATE `code`.
fn raised(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(e) if e.code().as_deref() == Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(rows: &[ShardRow]) -> (Option<i64>, i64) {
        let capacity = rows.iter().map(|r| r.capacity).sum();
        (capacity, rows.iter().map(|r| r.taken).sum())
    }

    #[test]
    fn a_pool_spreads_so_that_the_rows_add_up_and_none_is_over_capacity() {
        for (stock, taken, shards) in [(10, 3, 4), (1, 0, 8), (7, 7, 3), (100, 1, 16), (5, 0, 1)] {
            let rows = spread(Some(stock), taken, shards).expect("fits");
            assert_eq!(rows.len(), usize::from(shards));
            assert_eq!(
                sums(&rows),
                (Some(stock as i64), taken as i64),
                "{stock} {taken} {shards}"
            );
            assert!(
                rows.iter()
                    .all(|r| r.capacity.is_some_and(|c| r.taken <= c)),
                "{rows:?}"
            );
        }
    }

    #[test]
    fn taken_beyond_the_stock_lands_on_the_first_row() {
        let rows = spread(Some(4), 6, 2).expect("fits");
        assert_eq!(
            rows[0],
            ShardRow {
                shard: 0,
                capacity: Some(2),
                taken: 4
            }
        );
        assert_eq!(
            rows[1],
            ShardRow {
                shard: 1,
                capacity: Some(2),
                taken: 2
            }
        );
    }

    #[test]
    fn an_unlimited_pool_spreads_what_was_taken() {
        let rows = spread(None, 5, 2).expect("fits");
        assert_eq!(sums(&rows), (None, 5));
        assert!(rows.iter().all(|r| r.capacity.is_none()));
    }
}
