//! The stock gate's invariants under concurrency, on every implementation:
//! never more taken than the stock, never more per user than the limit,
//! units given back come back exactly once and never beyond the limits,
//! counters load once per pool from the database (a failed load is retried
//! later), `reset` replaces them, `counters` reads them back, and pools do
//! not affect each other; claims taken under leases settle, give back once,
//! and stale leases are swept by what the database says. Then what only
//! shared gates promise: instances
//! sharing Redis or PostgreSQL never oversell, and a lost Redis answers
//! "unavailable" quickly.
//!
//! Every test talks to the gate as an `Arc<dyn StockGate>` built by
//! [`gate_over`] for the backend it runs on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gate::{
    ClaimError, GiveBackError, Holder, Limits, PoolId, RedisStockGate, Refusal, Snapshot,
    StaleClaim, StockClaim, StockGate, StockLoader, SweepReport, Written, sweep,
};
use tokio::sync::{Barrier, Semaphore};

use crate::support::{Kind, PG_SHARDS, Proxy, Store};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// A stand-in database and the gate under test
// ---------------------------------------------------------------------------

/// Pools as the database knows them; counts loads and can be down or held.
struct Database {
    pools: Mutex<HashMap<PoolId, (Limits, Snapshot)>>,
    loads: Mutex<HashMap<PoolId, usize>>,
    down: AtomicBool,
    /// Claims whose durable row exists.
    claimed: Mutex<HashSet<String>>,
    /// Each load waits for a permit here before answering, and uses it up.
    open: Semaphore,
}

impl Database {
    fn new() -> Arc<Self> {
        Self::with_permits(Semaphore::MAX_PERMITS)
    }

    /// A database whose loads wait until [`Database::answer`] is called.
    fn holding_loads() -> Arc<Self> {
        Self::with_permits(0)
    }

    fn with_permits(permits: usize) -> Arc<Self> {
        Arc::new(Self {
            pools: Mutex::new(HashMap::new()),
            loads: Mutex::new(HashMap::new()),
            down: AtomicBool::new(false),
            claimed: Mutex::new(HashSet::new()),
            open: Semaphore::new(permits),
        })
    }

    fn add(&self, pool: &PoolId, limits: Limits) -> &Self {
        self.add_with(pool, limits, Snapshot::default())
    }

    fn add_with(&self, pool: &PoolId, limits: Limits, snapshot: Snapshot) -> &Self {
        self.pools
            .lock()
            .expect("pools lock")
            .insert(pool.clone(), (limits, snapshot));
        self
    }

    /// Records the claim's durable row.
    fn write_claim(&self, claim: &str) {
        self.claimed
            .lock()
            .expect("claimed lock")
            .insert(claim.to_owned());
    }

    fn answer(&self) {
        self.open
            .add_permits(Semaphore::MAX_PERMITS - self.open.available_permits());
    }

    /// Lets the longest-waiting load answer.
    fn answer_one(&self) {
        self.open.add_permits(1);
    }

    fn loads_of(&self, pool: &PoolId) -> usize {
        self.loads
            .lock()
            .expect("loads lock")
            .get(pool)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl StockLoader for Database {
    async fn load(&self, pool: &PoolId) -> Result<(Limits, Snapshot), String> {
        *self
            .loads
            .lock()
            .expect("loads lock")
            .entry(pool.clone())
            .or_default() += 1;
        // Each permit answers one load.
        self.open
            .acquire()
            .await
            .map_err(|e| e.to_string())?
            .forget();
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".to_owned());
        }
        self.pools
            .lock()
            .expect("pools lock")
            .get(pool)
            .cloned()
            .ok_or_else(|| format!("no pool {pool}"))
    }

    async fn claimed(&self, _pool: &PoolId, claim: &str) -> Result<bool, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".to_owned());
        }
        Ok(self.claimed.lock().expect("claimed lock").contains(claim))
    }
}

/// A gate of this kind over a store of its own, loading from `db`.
async fn gate_over(kind: &Kind, db: &Arc<Database>) -> Arc<dyn StockGate> {
    Store::open(kind.clone()).await.gate(loader(db)).await
}

fn loader(db: &Arc<Database>) -> Arc<dyn StockLoader> {
    Arc::clone(db) as Arc<dyn StockLoader>
}

fn limits(stock: Option<u64>, per_user: Option<u32>) -> Limits {
    Limits { stock, per_user }
}

/// A gate over one pool with these limits and nothing taken.
async fn one_pool(
    kind: &Kind,
    stock: Option<u64>,
    per_user: Option<u32>,
) -> (Arc<dyn StockGate>, PoolId) {
    let pool = PoolId::new("coupon:one");
    let db = Database::new();
    db.add(&pool, limits(stock, per_user));
    (gate_over(kind, &db).await, pool)
}

/// What a rush came to.
#[derive(Debug, Default)]
struct Outcome {
    taken_by: HashMap<String, u32>,
    sold_out: usize,
    limit_reached: usize,
}

impl Outcome {
    fn successes(&self) -> u32 {
        self.taken_by.values().sum()
    }
}

/// How a rush's attempts take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taking {
    /// `take`.
    Plainly,
    /// `take_claim`, each attempt under a lease of its own (`claim-<i>`).
    UnderLeases,
}

/// Every attempt (a user) as its own task, all released at once; each takes
/// one unit.
async fn rush(gate: &Arc<dyn StockGate>, pool: &PoolId, attempts: Vec<String>) -> Outcome {
    rush_across(std::slice::from_ref(gate), pool, attempts, Taking::Plainly).await
}

/// [`rush`] with each attempt taking under a lease of its own.
async fn rush_claims(gate: &Arc<dyn StockGate>, pool: &PoolId, attempts: Vec<String>) -> Outcome {
    rush_across(
        std::slice::from_ref(gate),
        pool,
        attempts,
        Taking::UnderLeases,
    )
    .await
}

/// A rush whose attempts take turns between several gate instances.
async fn rush_across(
    gates: &[Arc<dyn StockGate>],
    pool: &PoolId,
    attempts: Vec<String>,
    taking: Taking,
) -> Outcome {
    let start = Arc::new(Barrier::new(attempts.len()));
    let tasks: Vec<_> = attempts
        .into_iter()
        .enumerate()
        .map(|(i, user)| {
            let gate = Arc::clone(&gates[i % gates.len()]);
            let (pool, start) = (pool.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                let taken = match taking {
                    Taking::Plainly => gate.take(&pool, &user, 1).await,
                    Taking::UnderLeases => gate
                        .take_claim(&pool, &user, 1, &format!("claim-{i}"))
                        .await
                        .map(drop),
                };
                (user, taken)
            })
        })
        .collect();
    let mut outcome = Outcome::default();
    for task in tasks {
        let (user, taken) = task.await.expect("rush task ran to the end");
        match taken {
            Ok(()) => *outcome.taken_by.entry(user).or_default() += 1,
            Err(Refusal::SoldOut) => outcome.sold_out += 1,
            Err(Refusal::LimitReached) => outcome.limit_reached += 1,
            Err(Refusal::Unavailable(why)) => panic!("gate unavailable in a rush: {why}"),
        }
    }
    outcome
}

/// `users` users making `each` attempts, interleaved.
fn attempts(users: usize, each: usize) -> Vec<String> {
    (0..each)
        .flat_map(|_| (0..users).map(|u| format!("user-{u}")))
        .collect()
}

async fn remaining(gate: &Arc<dyn StockGate>, pool: &PoolId) -> Option<u64> {
    gate.remaining(pool).await.expect("gate is available")
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ---------------------------------------------------------------------------
// 1. Rushes: never more than the stock, never more per user than the limit
// ---------------------------------------------------------------------------

on_every_gate!(a_rush_of_500_users_on_50_units_sells_exactly_50);
async fn a_rush_of_500_users_on_50_units_sells_exactly_50(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(50), Some(1)).await;

    let outcome = rush(&gate, &pool, attempts(500, 1)).await;

    assert_eq!(outcome.successes(), 50);
    assert_eq!(outcome.sold_out, 450);
    assert!(outcome.taken_by.values().all(|n| *n == 1));
    assert_eq!(remaining(&gate, &pool).await, Some(0));
}

on_every_gate!(a_rush_of_100_users_taking_20_times_each_gets_exactly_the_limit_of_5);
async fn a_rush_of_100_users_taking_20_times_each_gets_exactly_the_limit_of_5(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(1_000), Some(5)).await;

    let outcome = rush(&gate, &pool, attempts(100, 20)).await;

    assert_eq!(outcome.successes(), 500, "min(1000, 100 users × 5)");
    assert_eq!(outcome.taken_by.len(), 100);
    assert!(outcome.taken_by.values().all(|n| *n == 5), "{outcome:?}");
    assert_eq!(outcome.limit_reached, 1_500);
    assert_eq!(remaining(&gate, &pool).await, Some(500));
}

on_every_gate!(when_stock_is_scarcer_than_the_limits_it_sells_out_and_nobody_passes_the_limit);
async fn when_stock_is_scarcer_than_the_limits_it_sells_out_and_nobody_passes_the_limit(
    kind: Kind,
) {
    let (gate, pool) = one_pool(&kind, Some(300), Some(5)).await;

    let outcome = rush(&gate, &pool, attempts(100, 20)).await;

    assert_eq!(outcome.successes(), 300, "min(300, 100 users × 5)");
    assert!(outcome.taken_by.values().all(|n| *n <= 5), "{outcome:?}");
    assert_eq!(outcome.sold_out + outcome.limit_reached, 1_700);
    assert_eq!(remaining(&gate, &pool).await, Some(0));
}

on_every_gate!(one_user_firing_200_takes_at_once_gets_exactly_the_limit_plainly_or_under_leases);
async fn one_user_firing_200_takes_at_once_gets_exactly_the_limit_plainly_or_under_leases(
    kind: Kind,
) {
    // Under leases the Redis gate batches the takes: one user's 200 land in
    // the same few batches and must still be counted in turn.
    for (taking, limit, limit_reached, left) in [
        (Taking::Plainly, 1, 199, 99),
        (Taking::UnderLeases, 3, 197, 97),
    ] {
        let (gate, pool) = one_pool(&kind, Some(100), Some(limit)).await;

        let outcome =
            rush_across(std::slice::from_ref(&gate), &pool, attempts(1, 200), taking).await;

        assert_eq!(outcome.successes(), limit, "{taking:?}");
        assert_eq!(outcome.limit_reached, limit_reached, "{taking:?}");
        assert_eq!(remaining(&gate, &pool).await, Some(left), "{taking:?}");
    }
}

on_every_gate!(a_rush_of_claims_sells_exactly_the_stock_and_leases_each_unit_once);
async fn a_rush_of_claims_sells_exactly_the_stock_and_leases_each_unit_once(kind: Kind) {
    // Under leases the Redis gate sends takes in batches: the same rules,
    // taken in turn inside each batch.
    let (gate, pool) = one_pool(&kind, Some(50), Some(2)).await;

    let outcome = rush_claims(&gate, &pool, attempts(100, 3)).await;

    assert_eq!(outcome.successes(), 50);
    assert!(outcome.taken_by.values().all(|n| *n <= 2), "{outcome:?}");
    assert_eq!(outcome.sold_out + outcome.limit_reached, 250);
    assert_eq!(remaining(&gate, &pool).await, Some(0));
    let leases = gate.stale_claims(Duration::ZERO).await.expect("available");
    if kind == Kind::Memory {
        // Its leases would die with its counters: it keeps none.
        assert!(leases.is_empty(), "{leases:?}");
        return;
    }
    assert_eq!(leases.len(), 50, "one lease per unit taken");
    let mut by_user: HashMap<String, u32> = HashMap::new();
    for lease in &leases {
        *by_user.entry(lease.user.clone()).or_default() += lease.quantity;
    }
    assert_eq!(by_user, outcome.taken_by);
}

on_every_gate!(claims_taken_at_once_by_one_user_are_numbered_one_to_the_limit);
async fn claims_taken_at_once_by_one_user_are_numbered_one_to_the_limit(kind: Kind) {
    // The coupon writer numbers a user's coupons by these counts: under a
    // burst of one user's claims (batched together by the Redis gate) each
    // must get its own number.
    let (gate, pool) = one_pool(&kind, Some(100), Some(40)).await;
    let start = Arc::new(Barrier::new(60));

    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (gate, pool, start) = (Arc::clone(&gate), pool.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                gate.take_claim(&pool, "ann", 1, &format!("claim-{i}"))
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task ran to the end") {
            Ok(taken) => numbers.push(taken.held),
            Err(Refusal::LimitReached) => refused += 1,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }

    assert_eq!(refused, 20);
    numbers.sort_unstable();
    let expected: Vec<Option<u32>> = match kind {
        // Its take function does not answer the holding.
        Kind::Postgres => vec![None; 40],
        Kind::Memory | Kind::Redis(_) => (1..=40).map(Some).collect(),
    };
    assert_eq!(numbers, expected);
}

on_every_gate!(a_claim_after_a_give_back_is_numbered_by_what_the_user_then_holds);
async fn a_claim_after_a_give_back_is_numbered_by_what_the_user_then_holds(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), Some(3)).await;
    let counted = |n: u32| (kind != Kind::Postgres).then_some(n);

    for (claim, number) in [("first", 1), ("second", 2)] {
        let taken = gate
            .take_claim(&pool, "ann", 1, claim)
            .await
            .expect("a unit");
        assert_eq!(taken.held, counted(number), "{claim}");
    }
    gate.give_back_claim(&pool, "ann", 1, "first")
        .await
        .expect("given back");
    let taken = gate
        .take_claim(&pool, "ann", 1, "third")
        .await
        .expect("a unit");
    assert_eq!(
        taken.held,
        counted(2),
        "two held again: the number is the count, which the caller must de-duplicate"
    );
    let other = gate
        .take_claim(&pool, "bob", 1, "bobs")
        .await
        .expect("a unit");
    assert_eq!(other.held, counted(1), "counted per user");
}

on_every_gate!(a_claim_on_a_pool_without_a_per_user_limit_is_not_numbered);
async fn a_claim_on_a_pool_without_a_per_user_limit_is_not_numbered(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), None).await;

    let taken = gate
        .take_claim(&pool, "ann", 1, "first")
        .await
        .expect("a unit");

    assert_eq!(taken.held, None);
    assert_eq!(remaining(&gate, &pool).await, Some(9));
}

on_every_gate!(claims_on_two_pools_at_once_are_counted_apart);
async fn claims_on_two_pools_at_once_are_counted_apart(kind: Kind) {
    let (first, second) = (PoolId::new("coupon:first"), PoolId::new("coupon:second"));
    let db = Database::new();
    db.add(&first, limits(Some(30), Some(1)))
        .add(&second, limits(Some(20), Some(1)));
    let gate = gate_over(&kind, &db).await;
    let start = Arc::new(Barrier::new(200));

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let pool = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let (gate, start) = (Arc::clone(&gate), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                let taken = gate
                    .take_claim(&pool, &format!("user-{}", i / 2), 1, &format!("claim-{i}"))
                    .await;
                (pool, taken)
            })
        })
        .collect();
    let mut taken: HashMap<PoolId, u32> = HashMap::new();
    for task in tasks {
        let (pool, outcome) = task.await.expect("task ran to the end");
        match outcome {
            Ok(_) => *taken.entry(pool).or_default() += 1,
            Err(Refusal::SoldOut) => {}
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }

    assert_eq!(taken.get(&first), Some(&30));
    assert_eq!(taken.get(&second), Some(&20));
    assert_eq!(remaining(&gate, &first).await, Some(0));
    assert_eq!(remaining(&gate, &second).await, Some(0));
}

on_every_gate!(racing_takes_at_the_sell_out_boundary_never_oversell_and_losers_keep_nothing);
async fn racing_takes_at_the_sell_out_boundary_never_oversell_and_losers_keep_nothing(kind: Kind) {
    // Many small rushes, so that many takes pass the sold-out shortcut
    // together and only the compare-and-swap (in memory) or the conditional
    // update (in PostgreSQL) stands between them and an oversell, and the
    // losers' reserved user slots must be freed again. Rounds cost a few
    // microseconds in memory and a few durable commits in PostgreSQL.
    let rounds = match kind {
        Kind::Memory => 2_000,
        Kind::Redis(_) => 300,
        Kind::Postgres => 40,
    };
    let db = Database::new();
    let pools: Vec<PoolId> = (0..rounds)
        .map(|r| PoolId::new(format!("coupon:round-{r}")))
        .collect();
    for pool in &pools {
        db.add(pool, limits(Some(4), Some(1)));
    }
    let gate = gate_over(&kind, &db).await;

    for pool in &pools {
        let outcome = rush(&gate, pool, attempts(16, 1)).await;
        assert_eq!(outcome.successes(), 4, "{pool}: {outcome:?}");
        assert_eq!(outcome.sold_out, 12, "{pool}: {outcome:?}");
        for u in 0..16 {
            let user = format!("user-{u}");
            let held = match gate.give_back(pool, &user, 1).await {
                Ok(()) => 1,
                Err(GiveBackError::Excess { returned, .. }) => returned,
                Err(e) => panic!("give-back failed: {e}"),
            };
            let won = u32::from(outcome.taken_by.contains_key(&user));
            assert_eq!(held, won, "{pool}: what {user} holds");
        }
        assert_eq!(remaining(&gate, pool).await, Some(4));
    }
}

// ---------------------------------------------------------------------------
// 2. Unlimited stock, quantities above one
// ---------------------------------------------------------------------------

on_every_gate!(unlimited_stock_still_holds_each_user_to_the_limit);
async fn unlimited_stock_still_holds_each_user_to_the_limit(kind: Kind) {
    let (gate, pool) = one_pool(&kind, None, Some(3)).await;

    let outcome = rush(&gate, &pool, attempts(50, 4)).await;

    assert_eq!(outcome.successes(), 150);
    assert!(outcome.taken_by.values().all(|n| *n == 3), "{outcome:?}");
    assert_eq!(outcome.limit_reached, 50);
    assert_eq!(outcome.sold_out, 0);
    assert_eq!(remaining(&gate, &pool).await, None, "unlimited");
}

on_every_gate!(a_take_of_several_units_is_refused_whole_when_the_user_has_fewer_left);
async fn a_take_of_several_units_is_refused_whole_when_the_user_has_fewer_left(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(100), Some(5)).await;

    gate.take(&pool, "ann", 3).await.expect("3 of 5");
    assert_eq!(
        gate.take(&pool, "ann", 3).await,
        Err(Refusal::LimitReached),
        "3 more would make 6"
    );
    assert_eq!(
        remaining(&gate, &pool).await,
        Some(97),
        "nothing partly taken"
    );
    gate.take(&pool, "ann", 2)
        .await
        .expect("the 2 left for ann");
    assert_eq!(gate.take(&pool, "ann", 1).await, Err(Refusal::LimitReached));
    assert_eq!(
        gate.take(&pool, "bob", 6).await,
        Err(Refusal::LimitReached),
        "more than the limit at once"
    );
    assert_eq!(
        gate.take(&pool, "bob", u32::MAX).await,
        Err(Refusal::SoldOut),
        "more than the pool holds: sold out wins over the limit"
    );
    assert_eq!(remaining(&gate, &pool).await, Some(95));
}

on_every_gate!(a_take_of_several_units_is_refused_whole_when_the_pool_has_fewer_left);
async fn a_take_of_several_units_is_refused_whole_when_the_pool_has_fewer_left(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(4), Some(5)).await;

    gate.take(&pool, "ann", 3).await.expect("3 of 4");
    assert_eq!(gate.take(&pool, "bob", 2).await, Err(Refusal::SoldOut));
    assert_eq!(
        remaining(&gate, &pool).await,
        Some(1),
        "nothing partly taken"
    );
    gate.take(&pool, "bob", 1)
        .await
        .expect("bob's refused take did not use up his limit");
    gate.give_back(&pool, "bob", 1)
        .await
        .expect("bob holds exactly the 1 he took");
    gate.take(&pool, "bob", 1)
        .await
        .expect("and can take it again");
}

on_every_gate!(taking_zero_units_is_refused_as_unavailable_and_takes_nothing);
async fn taking_zero_units_is_refused_as_unavailable_and_takes_nothing(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(1), Some(1)).await;

    let refused = gate.take(&pool, "ann", 0).await;

    assert!(
        matches!(&refused, Err(Refusal::Unavailable(why)) if why.contains("at least 1")),
        "{refused:?}"
    );
    assert_eq!(remaining(&gate, &pool).await, Some(1));
    gate.take(&pool, "ann", 1)
        .await
        .expect("ann's limit untouched");
    gate.give_back(&pool, "ann", 0)
        .await
        .expect("giving back nothing is a no-op");
    assert_eq!(remaining(&gate, &pool).await, Some(0));
}

// ---------------------------------------------------------------------------
// 3. Giving back
// ---------------------------------------------------------------------------

on_every_gate!(units_given_back_can_be_taken_by_the_next_user);
async fn units_given_back_can_be_taken_by_the_next_user(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(1), Some(1)).await;

    gate.take(&pool, "ann", 1).await.expect("the only unit");
    assert_eq!(gate.take(&pool, "bob", 1).await, Err(Refusal::SoldOut));
    gate.give_back(&pool, "ann", 1)
        .await
        .expect("ann's hold released");
    assert_eq!(remaining(&gate, &pool).await, Some(1));
    gate.take(&pool, "bob", 1)
        .await
        .expect("bob gets ann's unit");
    assert_eq!(gate.take(&pool, "cat", 1).await, Err(Refusal::SoldOut));
}

on_every_gate!(giving_back_more_than_the_user_took_returns_only_what_they_took);
async fn giving_back_more_than_the_user_took_returns_only_what_they_took(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(4), Some(2)).await;
    gate.take(&pool, "ann", 1).await.expect("ann takes 1");
    gate.take(&pool, "bob", 2).await.expect("bob takes 2");

    assert_eq!(
        gate.give_back(&pool, "ann", 3).await,
        Err(GiveBackError::Excess {
            requested: 3,
            returned: 1
        })
    );
    assert_eq!(
        remaining(&gate, &pool).await,
        Some(2),
        "bob's 2 are still taken, not given back on ann's behalf"
    );
    assert_eq!(
        gate.give_back(&pool, "cat", 1).await,
        Err(GiveBackError::Excess {
            requested: 1,
            returned: 0
        }),
        "cat took nothing"
    );
    assert_eq!(remaining(&gate, &pool).await, Some(2));
    gate.take(&pool, "ann", 2).await.expect("ann holds 0 again");
    assert_eq!(gate.take(&pool, "cat", 1).await, Err(Refusal::SoldOut));
}

on_every_gate!(giving_back_more_than_was_taken_never_creates_stock_beyond_the_limit);
async fn giving_back_more_than_was_taken_never_creates_stock_beyond_the_limit(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(2), None).await;
    gate.take(&pool, "ann", 1).await.expect("ann takes 1");

    assert_eq!(
        gate.give_back(&pool, "ann", 5).await,
        Err(GiveBackError::Excess {
            requested: 5,
            returned: 1
        })
    );
    assert_eq!(remaining(&gate, &pool).await, Some(2), "not 6");
    gate.take(&pool, "bob", 2).await.expect("the whole stock");
    assert_eq!(gate.take(&pool, "cat", 1).await, Err(Refusal::SoldOut));
}

on_every_gate!(giving_back_to_a_pool_not_loaded_yet_is_left_to_the_database);
async fn giving_back_to_a_pool_not_loaded_yet_is_left_to_the_database(kind: Kind) {
    let pool = PoolId::new("hold:after-restart");
    let db = Database::new();
    db.add_with(
        &pool,
        limits(Some(10), Some(2)),
        Snapshot {
            taken: 3,
            by_user: HashMap::from([("ann".to_owned(), 2)]),
        },
    );
    let gate = gate_over(&kind, &db).await;

    gate.give_back(&pool, "ann", 2)
        .await
        .expect("nothing to give back to");

    assert_eq!(db.loads_of(&pool), 0, "a give-back does not load");
    assert_eq!(
        remaining(&gate, &pool).await,
        Some(7),
        "the database's truth"
    );
    assert_eq!(gate.take(&pool, "ann", 1).await, Err(Refusal::LimitReached));
}

// ---------------------------------------------------------------------------
// 4. Takes and give-backs interleaved
// ---------------------------------------------------------------------------

on_every_gate!(takes_and_give_backs_interleaved_end_with_counts_matching_what_was_kept);
async fn takes_and_give_backs_interleaved_end_with_counts_matching_what_was_kept(kind: Kind) {
    const STOCK: u64 = 200;
    const LIMIT: u32 = 4;
    const USERS: usize = 100;
    let (gate, pool) = one_pool(&kind, Some(STOCK), Some(LIMIT)).await;
    let kept: Arc<Vec<AtomicU32>> = Arc::new((0..USERS).map(|_| AtomicU32::new(0)).collect());
    let start = Arc::new(Barrier::new(1_000));

    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let (gate, pool) = (Arc::clone(&gate), pool.clone());
            let (kept, start) = (Arc::clone(&kept), Arc::clone(&start));
            tokio::spawn(async move {
                let u = i % USERS;
                let user = format!("user-{u}");
                start.wait().await;
                if gate.take(&pool, &user, 1).await.is_err() {
                    return;
                }
                // Counted after the take and uncounted before the give-back,
                // so `kept` never runs ahead of the gate.
                let now = kept[u].fetch_add(1, Ordering::SeqCst) + 1;
                assert!(now <= LIMIT, "{user} holds {now}");
                if i % 2 == 0 {
                    tokio::task::yield_now().await;
                    kept[u].fetch_sub(1, Ordering::SeqCst);
                    gate.give_back(&pool, &user, 1)
                        .await
                        .expect("the gate counted this take");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task ran to the end");
    }

    let kept: Vec<u32> = kept.iter().map(|k| k.load(Ordering::SeqCst)).collect();
    let total: u64 = kept.iter().map(|k| u64::from(*k)).sum();
    assert!(total > 0 && total <= STOCK);
    assert_eq!(remaining(&gate, &pool).await, Some(STOCK - total));
    // Giving back a full limit's worth shows what the gate counted per user.
    for (u, kept) in kept.iter().enumerate() {
        let counted = match gate.give_back(&pool, &format!("user-{u}"), LIMIT).await {
            Ok(()) => LIMIT,
            Err(GiveBackError::Excess { returned, .. }) => returned,
            Err(e) => panic!("give-back failed: {e}"),
        };
        assert_eq!(counted, *kept, "user-{u}");
    }
    assert_eq!(remaining(&gate, &pool).await, Some(STOCK));
}

// ---------------------------------------------------------------------------
// 5. Loading from the database
// ---------------------------------------------------------------------------

on_every_gate!(the_loader_runs_once_per_pool_under_a_concurrent_first_burst);
async fn the_loader_runs_once_per_pool_under_a_concurrent_first_burst(kind: Kind) {
    let (coupons, tickets) = (PoolId::new("coupon:a"), PoolId::new("ticket:b"));
    let db = Database::holding_loads();
    db.add(&coupons, limits(Some(10_000), Some(1)))
        .add(&tickets, limits(Some(10_000), Some(1)));
    let gate = gate_over(&kind, &db).await;

    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let gate = Arc::clone(&gate);
            let pool = if i % 2 == 0 { &coupons } else { &tickets }.clone();
            tokio::spawn(async move { gate.take(&pool, &format!("user-{i}"), 1).await })
        })
        .collect();
    wait_until("both pools are loading", || {
        db.loads_of(&coupons) == 1 && db.loads_of(&tickets) == 1
    })
    .await;
    // Let the rest of the burst pile up behind the loads.
    tokio::time::sleep(Duration::from_millis(50)).await;
    db.answer();
    for task in tasks {
        task.await
            .expect("task ran to the end")
            .expect("every take succeeds");
    }

    assert_eq!(db.loads_of(&coupons), 1);
    assert_eq!(db.loads_of(&tickets), 1);
    assert_eq!(remaining(&gate, &coupons).await, Some(9_500));
    assert_eq!(db.loads_of(&coupons), 1, "remaining does not load again");
}

on_every_gate!(a_failed_load_refuses_as_unavailable_and_the_next_call_loads_again);
async fn a_failed_load_refuses_as_unavailable_and_the_next_call_loads_again(kind: Kind) {
    let pool = PoolId::new("coupon:flaky");
    let db = Database::new();
    db.add(&pool, limits(Some(1), Some(1)));
    db.down.store(true, Ordering::SeqCst);
    let gate = gate_over(&kind, &db).await;

    let refused = gate.take(&pool, "ann", 1).await;
    assert!(
        matches!(&refused, Err(Refusal::Unavailable(why)) if why.contains("connection refused") && why.contains("coupon:flaky")),
        "{refused:?}"
    );
    assert!(gate.remaining(&pool).await.is_err());
    assert_eq!(db.loads_of(&pool), 2, "the failure was not kept");

    db.down.store(false, Ordering::SeqCst);
    gate.take(&pool, "ann", 1).await.expect("loaded this time");
    assert_eq!(gate.take(&pool, "bob", 1).await, Err(Refusal::SoldOut));
    assert_eq!(db.loads_of(&pool), 3);
}

on_every_gate!(callers_waiting_on_a_load_that_fails_share_its_failure);
async fn callers_waiting_on_a_load_that_fails_share_its_failure(kind: Kind) {
    let pool = PoolId::new("coupon:down");
    let db = Database::holding_loads();
    db.add(&pool, limits(Some(10), Some(1)));
    db.down.store(true, Ordering::SeqCst);
    let gate = gate_over(&kind, &db).await;
    let arrived = Arc::new(AtomicUsize::new(0));

    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (gate, pool, arrived) = (Arc::clone(&gate), pool.clone(), Arc::clone(&arrived));
            tokio::spawn(async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                gate.take(&pool, &format!("user-{i}"), 1).await
            })
        })
        .collect();
    wait_until("every caller has arrived and one is loading", || {
        arrived.load(Ordering::SeqCst) == 100 && db.loads_of(&pool) == 1
    })
    .await;
    // Each caller is queued behind the load within microseconds of arriving.
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.answer();
    for task in tasks {
        let refused = task.await.expect("task ran to the end");
        assert!(
            matches!(refused, Err(Refusal::Unavailable(_))),
            "{refused:?}"
        );
    }

    assert_eq!(db.loads_of(&pool), 1, "one failed load, not one per caller");
    db.down.store(false, Ordering::SeqCst);
    gate.take(&pool, "ann", 1)
        .await
        .expect("a later call loads again");
    assert_eq!(db.loads_of(&pool), 2);
}

on_every_gate!(counters_start_from_the_loaded_snapshot);
async fn counters_start_from_the_loaded_snapshot(kind: Kind) {
    let pool = PoolId::new("reward:limited");
    let db = Database::new();
    db.add_with(
        &pool,
        limits(Some(5), Some(2)),
        Snapshot {
            taken: 3,
            by_user: HashMap::from([("ann".to_owned(), 2), ("bob".to_owned(), 1)]),
        },
    );
    let gate = gate_over(&kind, &db).await;

    assert_eq!(remaining(&gate, &pool).await, Some(2));
    assert_eq!(gate.take(&pool, "ann", 1).await, Err(Refusal::LimitReached));
    gate.take(&pool, "bob", 1).await.expect("bob's second");
    gate.take(&pool, "cat", 1).await.expect("the last unit");
    assert_eq!(gate.take(&pool, "dan", 1).await, Err(Refusal::SoldOut));
}

// ---------------------------------------------------------------------------
// 6. Reset
// ---------------------------------------------------------------------------

on_every_gate!(after_a_reset_to_a_sold_out_snapshot_every_take_is_sold_out);
async fn after_a_reset_to_a_sold_out_snapshot_every_take_is_sold_out(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(50), Some(1)).await;
    gate.take(&pool, "ann", 1).await.expect("one of 50");

    gate.reset(
        &pool,
        limits(Some(50), Some(1)),
        Snapshot {
            taken: 50,
            by_user: HashMap::new(),
        },
    )
    .await
    .expect("reset");

    assert_eq!(remaining(&gate, &pool).await, Some(0));
    let outcome = rush(&gate, &pool, attempts(200, 1)).await;
    assert_eq!(outcome.successes(), 0);
    assert_eq!(outcome.sold_out, 200);
}

on_every_gate!(reset_replaces_the_limits_and_the_per_user_counts);
async fn reset_replaces_the_limits_and_the_per_user_counts(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(5), Some(1)).await;
    gate.take(&pool, "ann", 1).await.expect("ann's one");
    gate.take(&pool, "bob", 1).await.expect("bob's one");

    gate.reset(
        &pool,
        limits(Some(8), Some(2)),
        Snapshot {
            taken: 6,
            by_user: HashMap::from([("bob".to_owned(), 2), ("cat".to_owned(), 1)]),
        },
    )
    .await
    .expect("reset");

    assert_eq!(remaining(&gate, &pool).await, Some(2));
    assert_eq!(gate.take(&pool, "bob", 1).await, Err(Refusal::LimitReached));
    gate.take(&pool, "ann", 2)
        .await
        .expect("ann holds nothing in the snapshot");
    assert_eq!(gate.take(&pool, "cat", 1).await, Err(Refusal::SoldOut));
}

on_every_gate!(a_reset_pool_needs_no_load);
async fn a_reset_pool_needs_no_load(kind: Kind) {
    let pool = PoolId::new("coupon:unknown-to-the-loader");
    let db = Database::new();
    let gate = gate_over(&kind, &db).await;

    gate.reset(&pool, limits(Some(3), None), Snapshot::default())
        .await
        .expect("reset");

    gate.take(&pool, "ann", 3).await.expect("all three");
    assert_eq!(gate.take(&pool, "bob", 1).await, Err(Refusal::SoldOut));
    assert_eq!(db.loads_of(&pool), 0);
}

on_every_gate!(a_reset_during_a_load_wins_over_what_the_load_read);
async fn a_reset_during_a_load_wins_over_what_the_load_read(kind: Kind) {
    let pool = PoolId::new("coupon:reconciled");
    let db = Database::holding_loads();
    db.add(&pool, limits(Some(100), Some(1)));
    let gate = gate_over(&kind, &db).await;

    let first = {
        let (gate, pool) = (Arc::clone(&gate), pool.clone());
        tokio::spawn(async move { gate.take(&pool, "ann", 1).await })
    };
    wait_until("the pool is loading", || db.loads_of(&pool) == 1).await;
    gate.reset(&pool, limits(Some(1), Some(1)), Snapshot::default())
        .await
        .expect("reset");
    db.answer();

    first
        .await
        .expect("task ran to the end")
        .expect("the only unit after the reset");
    assert_eq!(remaining(&gate, &pool).await, Some(0));
    assert_eq!(gate.take(&pool, "bob", 1).await, Err(Refusal::SoldOut));
}

// ---------------------------------------------------------------------------
// 7. Pools are independent
// ---------------------------------------------------------------------------

on_every_gate!(pools_are_independent);
async fn pools_are_independent(kind: Kind) {
    let (coupons, rewards) = (PoolId::new("coupon:x"), PoolId::new("reward:y"));
    let db = Database::new();
    db.add(&coupons, limits(Some(10), Some(1)))
        .add(&rewards, limits(Some(10), Some(1)));
    let gate = gate_over(&kind, &db).await;

    let (sold, fresh) = tokio::join!(
        rush(&gate, &coupons, attempts(100, 1)),
        rush(&gate, &rewards, attempts(5, 1)),
    );
    assert_eq!(sold.successes(), 10);
    assert_eq!(fresh.successes(), 5, "the same users, counted per pool");
    assert_eq!(remaining(&gate, &coupons).await, Some(0));
    assert_eq!(remaining(&gate, &rewards).await, Some(5));

    gate.reset(&coupons, limits(Some(0), None), Snapshot::default())
        .await
        .expect("reset");
    gate.give_back(&rewards, "user-0", 1)
        .await
        .expect("user-0 took one reward");
    assert_eq!(remaining(&gate, &coupons).await, Some(0));
    assert_eq!(remaining(&gate, &rewards).await, Some(6));
}

// ---------------------------------------------------------------------------
// 8. Reading the counters back, forgetting a pool
// ---------------------------------------------------------------------------

on_every_gate!(counters_read_back_the_limits_and_what_each_user_holds);
async fn counters_read_back_the_limits_and_what_each_user_holds(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), Some(3)).await;
    assert_eq!(
        gate.counters(&pool).await.expect("gate is available"),
        None,
        "not loaded yet"
    );

    gate.take(&pool, "ann", 2).await.expect("ann takes 2");
    gate.take(&pool, "bob", 1).await.expect("bob takes 1");
    gate.take(&pool, "cat", 1).await.expect("cat takes 1");
    gate.give_back(&pool, "cat", 1)
        .await
        .expect("cat gives back");

    assert_eq!(
        gate.counters(&pool).await.expect("gate is available"),
        Some((
            limits(Some(10), Some(3)),
            Snapshot {
                taken: 3,
                by_user: HashMap::from([("ann".to_owned(), 2), ("bob".to_owned(), 1)]),
            }
        ))
    );
}

on_every_gate!(a_take_refused_by_the_limit_leaves_every_users_count_as_it_was);
async fn a_take_refused_by_the_limit_leaves_every_users_count_as_it_was(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), Some(3)).await;
    gate.take(&pool, "ann", 2).await.expect("ann takes 2");

    assert_eq!(gate.take(&pool, "ann", 2).await, Err(Refusal::LimitReached));
    assert_eq!(
        gate.take_claim(&pool, "bob", 4, "bob-claim").await,
        Err(Refusal::LimitReached),
        "bob, holding none, asks for more than the limit"
    );

    assert_eq!(
        gate.counters(&pool).await.expect("gate is available"),
        Some((
            limits(Some(10), Some(3)),
            Snapshot {
                taken: 2,
                by_user: HashMap::from([("ann".to_owned(), 2)]),
            }
        )),
        "ann still holds 2 and bob is not counted at all"
    );
    assert_eq!(
        gate.stale_claims(Duration::ZERO)
            .await
            .expect("gate is available"),
        Vec::new(),
        "a refused claim leaves no lease"
    );
    gate.take(&pool, "ann", 1).await.expect("ann's last unit");
}

on_every_gate!(counters_read_back_a_reset_and_keep_no_users_without_a_per_user_limit);
async fn counters_read_back_a_reset_and_keep_no_users_without_a_per_user_limit(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(5), Some(1)).await;
    let reconciled = Snapshot {
        taken: 4,
        by_user: HashMap::from([("ann".to_owned(), 1), ("bob".to_owned(), 0)]),
    };

    gate.reset(&pool, limits(Some(7), Some(2)), reconciled)
        .await
        .expect("reset");
    let (_, read) = gate
        .counters(&pool)
        .await
        .expect("gate is available")
        .expect("a reset pool is loaded");
    assert_eq!(read.taken, 4);
    assert_eq!(
        read.by_user,
        HashMap::from([("ann".to_owned(), 1)]),
        "users holding none are left out"
    );

    gate.reset(&pool, limits(None, None), Snapshot::default())
        .await
        .expect("reset to unlimited");
    gate.take(&pool, "ann", 5).await.expect("no limits now");
    assert_eq!(
        gate.counters(&pool).await.expect("gate is available"),
        Some((
            limits(None, None),
            Snapshot {
                taken: 5,
                by_user: HashMap::new()
            }
        ))
    );
}

on_every_gate!(a_forgotten_pool_is_loaded_again_from_the_database);
async fn a_forgotten_pool_is_loaded_again_from_the_database(kind: Kind) {
    let pool = PoolId::new("coupon:deleted-then-restored");
    let db = Database::new();
    db.add(&pool, limits(Some(3), Some(1)));
    let gate = gate_over(&kind, &db).await;
    gate.take(&pool, "ann", 1).await.expect("ann's one");

    gate.forget(&pool).await.expect("forget");

    assert_eq!(gate.counters(&pool).await.expect("available"), None);
    db.add_with(
        &pool,
        limits(Some(3), Some(1)),
        Snapshot {
            taken: 2,
            by_user: HashMap::from([("ann".to_owned(), 1), ("bob".to_owned(), 1)]),
        },
    );
    assert_eq!(
        remaining(&gate, &pool).await,
        Some(1),
        "the database's truth"
    );
    assert_eq!(gate.take(&pool, "bob", 1).await, Err(Refusal::LimitReached));
    assert_eq!(db.loads_of(&pool), 2);
}

// ---------------------------------------------------------------------------
// 9. Leases: claims settle, give back once, and are swept when their process died
// ---------------------------------------------------------------------------

/// Long enough that no lease of a test is stale by it.
const FRESH: Duration = Duration::from_secs(3600);

/// Waits until every lease taken so far is older than `older_than`.
async fn age(older_than: Duration) {
    tokio::time::sleep(older_than + Duration::from_millis(20)).await;
}

on_every_gate!(a_settled_claim_keeps_its_unit_and_leaves_no_lease);
async fn a_settled_claim_keeps_its_unit_and_leaves_no_lease(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(3), Some(1)).await;

    gate.take_claim(&pool, "ann", 1, "coupon-1")
        .await
        .expect("a unit");
    gate.settle(&pool, "coupon-1").await.expect("settled");
    age(Duration::from_millis(10)).await;

    assert_eq!(remaining(&gate, &pool).await, Some(2));
    assert_eq!(
        gate.stale_claims(Duration::ZERO).await.expect("available"),
        []
    );
    gate.give_back_claim(&pool, "ann", 1, "coupon-1")
        .await
        .expect("a settled claim gives back nothing, quietly");
    let expected_after_a_late_give_back = match kind {
        // Without leases the in-memory gate trusts the caller, as give_back does.
        Kind::Memory => Some(3),
        Kind::Redis(_) | Kind::Postgres => Some(2),
    };
    assert_eq!(
        remaining(&gate, &pool).await,
        expected_after_a_late_give_back
    );
}

on_every_gate!(claims_settled_together_keep_their_units_and_leave_no_leases);
async fn claims_settled_together_keep_their_units_and_leave_no_leases(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), Some(1)).await;
    let claims: Vec<String> = (0..4).map(|i| format!("coupon-{i}")).collect();
    for (i, claim) in claims.iter().enumerate() {
        gate.take_claim(&pool, &format!("user-{i}"), 1, claim)
            .await
            .expect("a unit");
    }
    gate.take_claim(&pool, "bob", 1, "coupon-unsettled")
        .await
        .expect("a unit");

    gate.settle_many(&pool, &claims[..3])
        .await
        .expect("settled");
    gate.settle_many(&pool, &[])
        .await
        .expect("nothing to settle");
    age(Duration::from_millis(10)).await;

    assert_eq!(remaining(&gate, &pool).await, Some(5));
    let mut stale: Vec<String> = gate
        .stale_claims(Duration::ZERO)
        .await
        .expect("available")
        .into_iter()
        .map(|c| c.claim)
        .collect();
    stale.sort();
    let expected: Vec<String> = match kind {
        Kind::Memory => Vec::new(),
        Kind::Redis(_) | Kind::Postgres => vec!["coupon-3".into(), "coupon-unsettled".into()],
    };
    assert_eq!(stale, expected);
}

on_shared_gates!(a_failed_claim_gives_its_unit_back_exactly_once);
async fn a_failed_claim_gives_its_unit_back_exactly_once(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(2), None).await;
    gate.take_claim(&pool, "ann", 1, "coupon-1")
        .await
        .expect("a unit");
    gate.take(&pool, "bob", 1).await.expect("bob's unit");

    gate.give_back_claim(&pool, "ann", 1, "coupon-1")
        .await
        .expect("given back");
    assert_eq!(remaining(&gate, &pool).await, Some(1));
    gate.give_back_claim(&pool, "ann", 1, "coupon-1")
        .await
        .expect("the second give-back is a no-op");

    assert_eq!(remaining(&gate, &pool).await, Some(1), "bob's unit stays");
    assert_eq!(
        gate.stale_claims(Duration::ZERO).await.expect("available"),
        []
    );
}

on_shared_gates!(a_stale_lease_of_an_unwritten_claim_is_swept_back_and_of_a_written_one_settled);
async fn a_stale_lease_of_an_unwritten_claim_is_swept_back_and_of_a_written_one_settled(
    kind: Kind,
) {
    let pool = PoolId::new("coupon:swept");
    let db = Database::new();
    db.add(&pool, limits(Some(10), Some(2)));
    let gate = gate_over(&kind, &db).await;
    gate.take_claim(&pool, "ann", 1, "written")
        .await
        .expect("a unit");
    gate.take_claim(&pool, "bob", 2, "lost")
        .await
        .expect("two units");
    db.write_claim("written");
    let older_than = Duration::from_millis(200);

    assert_eq!(
        sweep(gate.as_ref(), db.as_ref(), FRESH).await,
        SweepReport::default(),
        "fresh leases are left to their claims"
    );
    age(older_than).await;
    let mut stale = gate.stale_claims(older_than).await.expect("available");
    stale.sort_by(|a, b| a.claim.cmp(&b.claim));
    assert_eq!(
        stale,
        [
            StaleClaim {
                pool: pool.clone(),
                claim: "lost".into(),
                user: "bob".into(),
                quantity: 2
            },
            StaleClaim {
                pool: pool.clone(),
                claim: "written".into(),
                user: "ann".into(),
                quantity: 1
            },
        ]
    );
    let report = sweep(gate.as_ref(), db.as_ref(), older_than).await;

    assert_eq!((report.settled, report.returned, report.failed), (1, 1, 0));
    assert_eq!(remaining(&gate, &pool).await, Some(9), "ann's unit stays");
    let (_, counted) = gate
        .counters(&pool)
        .await
        .expect("available")
        .expect("loaded");
    assert_eq!(counted.by_user.get("bob"), None, "bob's units came back");
    assert_eq!(
        sweep(gate.as_ref(), db.as_ref(), Duration::ZERO).await,
        SweepReport::default(),
        "nothing is left to sweep"
    );
}

/// A pool of 5 over its own database, with one unit taken under a lease
/// that is already stale: a sweep at age zero resolves it.
async fn one_stale_lease(kind: &Kind, name: &str) -> (Arc<dyn StockGate>, PoolId, Arc<Database>) {
    let (pool, db) = (PoolId::new(name), Database::new());
    db.add(&pool, limits(Some(5), None));
    let gate = gate_over(kind, &db).await;
    gate.take_claim(&pool, "ann", 1, "lost")
        .await
        .expect("a unit");
    age(Duration::ZERO).await;
    (gate, pool, db)
}

on_shared_gates!(a_lease_that_cannot_be_checked_stays_for_the_next_sweep);
async fn a_lease_that_cannot_be_checked_stays_for_the_next_sweep(kind: Kind) {
    let (gate, pool, db) = one_stale_lease(&kind, "coupon:unchecked").await;
    db.down.store(true, Ordering::SeqCst);

    let report = sweep(gate.as_ref(), db.as_ref(), Duration::ZERO).await;

    assert_eq!((report.settled, report.returned, report.failed), (0, 0, 1));
    assert_eq!(remaining(&gate, &pool).await, Some(4));
    db.down.store(false, Ordering::SeqCst);
    let report = sweep(gate.as_ref(), db.as_ref(), Duration::ZERO).await;
    assert_eq!((report.returned, report.failed), (1, 0));
    assert_eq!(remaining(&gate, &pool).await, Some(5));
}

on_shared_gates!(a_sweep_leaves_the_leases_of_pools_its_loader_does_not_own);
async fn a_sweep_leaves_the_leases_of_pools_its_loader_does_not_own(kind: Kind) {
    /// Another module's loader: it owns none of this test's pools.
    struct Elsewhere;
    #[async_trait]
    impl StockLoader for Elsewhere {
        async fn load(&self, pool: &PoolId) -> Result<(Limits, Snapshot), String> {
            Err(format!("{pool} is not mine"))
        }
        async fn claimed(&self, pool: &PoolId, _claim: &str) -> Result<bool, String> {
            Err(format!("{pool} is not mine"))
        }
        fn owns(&self, _pool: &PoolId) -> bool {
            false
        }
    }
    let (gate, pool, db) = one_stale_lease(&kind, "coupon:owned-elsewhere").await;

    let report = sweep(gate.as_ref(), &Elsewhere, Duration::ZERO).await;

    assert_eq!((report.settled, report.returned, report.failed), (0, 0, 0));
    assert_eq!(remaining(&gate, &pool).await, Some(4));
    let report = sweep(gate.as_ref(), db.as_ref(), Duration::ZERO).await;
    assert_eq!((report.returned, report.failed), (1, 0));
    assert_eq!(remaining(&gate, &pool).await, Some(5));
}

on_shared_gates!(a_reset_drops_the_pools_leases);
async fn a_reset_drops_the_pools_leases(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(5), Some(1)).await;
    gate.take_claim(&pool, "ann", 1, "coupon-1")
        .await
        .expect("a unit");

    let snapshot = Snapshot {
        taken: 1,
        by_user: HashMap::from([("ann".to_owned(), 1)]),
    };
    gate.reset(&pool, limits(Some(5), Some(1)), snapshot)
        .await
        .expect("reset");

    assert_eq!(
        gate.stale_claims(Duration::ZERO).await.expect("available"),
        []
    );
    gate.give_back_claim(&pool, "ann", 1, "coupon-1")
        .await
        .expect("no lease, nothing due");
    assert_eq!(
        remaining(&gate, &pool).await,
        Some(4),
        "the reset's count stands"
    );
}

on_every_gate!(concurrent_claims_taken_and_given_back_leave_exactly_the_kept_ones_counted);
async fn concurrent_claims_taken_and_given_back_leave_exactly_the_kept_ones_counted(kind: Kind) {
    const STOCK: u64 = 40;
    let (gate, pool) = one_pool(&kind, Some(STOCK), Some(3)).await;
    // Shared gates give each failed claim back twice at once: only one counts.
    let give_backs = if kind == Kind::Memory { 1 } else { 2 };
    let start = Arc::new(Barrier::new(300));

    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let (gate, pool, start) = (Arc::clone(&gate), pool.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                let (user, claim) = (format!("user-{}", i % 30), format!("claim-{i}"));
                start.wait().await;
                if gate.take_claim(&pool, &user, 1, &claim).await.is_err() {
                    return 0;
                }
                if i % 2 == 0 {
                    gate.settle(&pool, &claim).await.expect("settled");
                    return 1;
                }
                let backs: Vec<_> = (0..give_backs)
                    .map(|_| {
                        let (gate, pool) = (Arc::clone(&gate), pool.clone());
                        let (user, claim) = (user.clone(), claim.clone());
                        tokio::spawn(
                            async move { gate.give_back_claim(&pool, &user, 1, &claim).await },
                        )
                    })
                    .collect();
                for back in backs {
                    back.await.expect("ran").expect("given back");
                }
                0
            })
        })
        .collect();
    let mut kept = 0;
    for task in tasks {
        kept += task.await.expect("task ran to the end");
    }

    let (_, counted) = gate
        .counters(&pool)
        .await
        .expect("available")
        .expect("loaded");
    assert_eq!(counted.taken, kept);
    assert_eq!(
        counted.by_user.values().map(|n| u64::from(*n)).sum::<u64>(),
        kept
    );
    assert!(counted.by_user.values().all(|n| *n <= 3), "{counted:?}");
    assert_eq!(remaining(&gate, &pool).await, Some(STOCK - kept));
    assert_eq!(
        gate.stale_claims(Duration::ZERO).await.expect("available"),
        []
    );
}

// ---------------------------------------------------------------------------
// 10. Several instances sharing one backend
// ---------------------------------------------------------------------------

on_shared_gates!(two_instances_in_one_rush_sell_exactly_the_stock);
async fn two_instances_in_one_rush_sell_exactly_the_stock(kind: Kind) {
    let pool = PoolId::new("coupon:shared");
    let db = Database::new();
    db.add(&pool, limits(Some(50), Some(1)));
    let store = Store::open(kind).await;
    let gates = [store.gate(loader(&db)).await, store.gate(loader(&db)).await];

    // Every user tries twice, once through each instance.
    let outcome = rush_across(&gates, &pool, attempts(200, 2), Taking::Plainly).await;

    assert_eq!(outcome.successes(), 50);
    assert!(outcome.taken_by.values().all(|n| *n == 1), "{outcome:?}");
    assert_eq!(outcome.sold_out + outcome.limit_reached, 350);
    for gate in &gates {
        assert_eq!(remaining(gate, &pool).await, Some(0));
    }
    assert!(db.loads_of(&pool) <= 2, "at most one load per instance");
}

on_shared_gates!(a_rush_with_takes_and_give_backs_on_two_instances_ends_consistent);
async fn a_rush_with_takes_and_give_backs_on_two_instances_ends_consistent(kind: Kind) {
    const STOCK: u64 = 30;
    let pool = PoolId::new("hold:shared");
    let db = Database::new();
    db.add(&pool, limits(Some(STOCK), Some(2)));
    let store = Store::open(kind).await;
    let gates = [store.gate(loader(&db)).await, store.gate(loader(&db)).await];
    let start = Arc::new(Barrier::new(400));

    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let (taker, giver) = (Arc::clone(&gates[i % 2]), Arc::clone(&gates[(i + 1) % 2]));
            let (pool, start) = (pool.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                let user = format!("user-{}", i % 40);
                start.wait().await;
                if taker.take(&pool, &user, 1).await.is_err() {
                    return 0;
                }
                if i % 3 == 0 {
                    giver
                        .give_back(&pool, &user, 1)
                        .await
                        .expect("the other instance counts this take too");
                    return 0;
                }
                1
            })
        })
        .collect();
    let mut kept = 0;
    for task in tasks {
        kept += task.await.expect("task ran to the end");
    }

    let (_, counted) = gates[0]
        .counters(&pool)
        .await
        .expect("available")
        .expect("loaded");
    assert_eq!(counted.taken, kept);
    assert!(counted.by_user.values().all(|n| *n <= 2), "{counted:?}");
    assert_eq!(
        counted.by_user.values().map(|n| u64::from(*n)).sum::<u64>(),
        kept
    );
    assert_eq!(remaining(&gates[1], &pool).await, Some(STOCK - kept));
}

on_shared_gates!(a_load_that_finds_the_pool_installed_keeps_the_takes_made_since);
async fn a_load_that_finds_the_pool_installed_keeps_the_takes_made_since(kind: Kind) {
    let pool = PoolId::new("coupon:loaded-twice");
    let db = Database::holding_loads();
    db.add(&pool, limits(Some(10), Some(1)));
    let store = Store::open(kind).await;
    let first = store.gate(loader(&db)).await;
    let second = store.gate(loader(&db)).await;
    let first_take = {
        let (first, pool) = (Arc::clone(&first), pool.clone());
        tokio::spawn(async move { first.take(&pool, "ann", 1).await })
    };
    wait_until("the first instance is loading", || db.loads_of(&pool) == 1).await;
    let second_take = {
        let (second, pool) = (Arc::clone(&second), pool.clone());
        tokio::spawn(async move { second.take(&pool, "cat", 1).await })
    };
    wait_until("both instances are loading", || db.loads_of(&pool) == 2).await;

    // The first load answers; that instance installs the pool and sells.
    // The second load read the same snapshot (nothing taken) and must not
    // install it over the counters the first instance is using.
    db.answer_one();
    first_take
        .await
        .expect("task ran to the end")
        .expect("ann's unit");
    first.take(&pool, "bob", 1).await.expect("bob's unit");
    db.answer();
    second_take
        .await
        .expect("task ran to the end")
        .expect("cat's unit");

    assert_eq!(remaining(&first, &pool).await, Some(7));
    assert_eq!(
        second.take(&pool, "ann", 1).await,
        Err(Refusal::LimitReached)
    );
    assert_eq!(db.loads_of(&pool), 2, "each instance loaded once");
}

on_shared_gates!(a_pool_installed_with_other_shards_or_none_still_serves);
async fn a_pool_installed_with_other_shards_or_none_still_serves(kind: Kind) {
    // Instances restarted with another configuration share what the first
    // one installed; and a pool of one unit leaves most shards empty.
    let pool = PoolId::new("ticket:last-one");
    let db = Database::new();
    db.add(&pool, limits(Some(1), Some(1)));
    let store = Store::open(kind).await;
    let gates = [store.gate(loader(&db)).await, store.gate(loader(&db)).await];

    let outcome = rush_across(
        &gates,
        &pool,
        attempts(usize::from(PG_SHARDS) * 8, 1),
        Taking::Plainly,
    )
    .await;

    assert_eq!(outcome.successes(), 1);
    assert_eq!(remaining(&gates[0], &pool).await, Some(0));
}

// ---------------------------------------------------------------------------
// 11. Redis away
// ---------------------------------------------------------------------------

/// How long a call may take to say "unavailable" when Redis is away: the
/// response timeout (one second) and some slack for a slow machine.
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(4);

on_backends!(an_unreachable_redis_is_unavailable_at_once: redis);
async fn an_unreachable_redis_is_unavailable_at_once(_kind: Kind) {
    let db = Database::new();
    let began = Instant::now();

    let connected = RedisStockGate::connect("redis://127.0.0.1:1", "test", loader(&db)).await;

    let refused = connected.expect_err("nothing listens on port 1");
    assert!(refused.0.contains("redis"), "{refused}");
    assert!(
        began.elapsed() < UNAVAILABLE_WITHIN,
        "{:?}",
        began.elapsed()
    );
}

on_backends!(a_redis_that_goes_silent_answers_unavailable_quickly_and_recovers: redis);
async fn a_redis_that_goes_silent_answers_unavailable_quickly_and_recovers(kind: Kind) {
    let Kind::Redis(url) = kind else {
        unreachable!("a Redis test")
    };
    let pool = PoolId::new("coupon:silent");
    let db = Database::new();
    db.add(&pool, limits(Some(100), Some(1)));
    let proxy = Proxy::start(&url).await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let gate = RedisStockGate::connect(&proxy.url, &prefix, loader(&db))
        .await
        .expect("Redis through the proxy");
    gate.take(&pool, "ann", 1).await.expect("Redis answers");

    proxy.freeze();
    let began = Instant::now();
    let (taken, left, given) = tokio::join!(
        gate.take(&pool, "bob", 1),
        gate.remaining(&pool),
        gate.give_back(&pool, "ann", 1),
    );

    assert!(matches!(taken, Err(Refusal::Unavailable(_))), "{taken:?}");
    assert!(left.is_err(), "{left:?}");
    assert!(
        matches!(given, Err(GiveBackError::Unavailable(_))),
        "{given:?}"
    );
    assert!(
        began.elapsed() < UNAVAILABLE_WITHIN,
        "{:?}",
        began.elapsed()
    );

    proxy.thaw();
    let deadline = Instant::now() + PATIENCE;
    while gate.take(&pool, "cat", 1).await.is_err() {
        assert!(Instant::now() < deadline, "the gate never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gate.forget(&pool).await.expect("clean up");
}

// ---------------------------------------------------------------------------
// The claim protocol: take → bounded write → settle, leave or give back
// ---------------------------------------------------------------------------

/// A claim of `quantity` units of `pool` for a new user, under `lease`.
fn stock_claim(pool: &PoolId, lease: &str, quantity: u32) -> StockClaim {
    StockClaim {
        pool: pool.clone(),
        holder: Holder::from(kernel::UserId::new()),
        lease: lease.to_owned(),
        quantity,
    }
}

/// The leases the gate still holds, by name.
async fn leases(gate: &Arc<dyn StockGate>) -> Vec<String> {
    let stale = gate.stale_claims(Duration::ZERO).await.expect("available");
    stale.into_iter().map(|c| c.claim).collect()
}

on_every_gate!(a_durable_claim_keeps_its_units_and_drops_its_lease);
async fn a_durable_claim_keeps_its_units_and_drops_its_lease(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), None).await;

    let answer = stock_claim(&pool, "claim-1", 3)
        .run(Arc::clone(&gate), |_| async { Written::Durable("written") })
        .await;

    assert_eq!(answer, Ok("written"));
    assert_eq!(remaining(&gate, &pool).await, Some(7));
    assert_eq!(leases(&gate).await, Vec::<String>::new());
}

on_every_gate!(an_unwritten_claim_gives_back_all_its_units_once);
async fn an_unwritten_claim_gives_back_all_its_units_once(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), Some(5)).await;

    let answer = stock_claim(&pool, "claim-1", 3)
        .run(Arc::clone(&gate), |taken| async move {
            Written::NotWritten(taken.held)
        })
        .await;

    // Gates that cannot tell the count cheaply (PostgreSQL) report none.
    let held = answer.expect("taken");
    assert!(matches!(held, None | Some(3)), "the take's count: {held:?}");
    assert_eq!(remaining(&gate, &pool).await, Some(10));
    assert_eq!(leases(&gate).await, Vec::<String>::new());
}

on_every_gate!(a_claim_whose_write_may_have_committed_is_left_to_the_sweep);
async fn a_claim_whose_write_may_have_committed_is_left_to_the_sweep(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), None).await;

    let answer = stock_claim(&pool, "claim-1", 2)
        .run(Arc::clone(&gate), |_| async { Written::Unknown(()) })
        .await;

    assert_eq!(answer, Ok(()));
    assert_eq!(
        remaining(&gate, &pool).await,
        Some(8),
        "its units stay taken"
    );
    let expected = if kind == Kind::Memory {
        Vec::new()
    } else {
        vec!["claim-1".to_owned()]
    };
    assert_eq!(leases(&gate).await, expected, "the sweep will find it");
}

on_every_gate!(a_refused_take_never_runs_the_write);
async fn a_refused_take_never_runs_the_write(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(2), None).await;
    let wrote = Arc::new(AtomicBool::new(false));

    let flag = Arc::clone(&wrote);
    let answer = stock_claim(&pool, "claim-1", 3)
        .run(Arc::clone(&gate), move |_| async move {
            flag.store(true, Ordering::SeqCst);
            Written::Durable(())
        })
        .await;

    assert_eq!(answer, Err(ClaimError::Refused(Refusal::SoldOut)));
    assert!(!wrote.load(Ordering::SeqCst));
    assert_eq!(remaining(&gate, &pool).await, Some(2));
}

on_every_gate!(a_caller_that_hangs_up_mid_write_still_gets_its_units_given_back);
async fn a_caller_that_hangs_up_mid_write_still_gets_its_units_given_back(kind: Kind) {
    let (gate, pool) = one_pool(&kind, Some(10), None).await;
    let (written, write_answers) = tokio::sync::oneshot::channel::<()>();

    let claim = stock_claim(&pool, "claim-1", 4).run(Arc::clone(&gate), |_| async move {
        let _ = write_answers.await;
        Written::NotWritten(())
    });
    let hung_up = tokio::time::timeout(Duration::from_millis(200), claim).await;
    assert!(hung_up.is_err(), "the write was still running");
    assert_eq!(remaining(&gate, &pool).await, Some(6), "taken meanwhile");
    written.send(()).expect("the claim's task is still running");

    let deadline = Instant::now() + PATIENCE;
    while remaining(&gate, &pool).await != Some(10) {
        assert!(Instant::now() < deadline, "the units never came back");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
