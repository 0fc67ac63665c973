//! Issuing coupons through the service, with a real database and a stock
//! gate loaded from it: the invariants under a rush (never more than the
//! stock, never more per user than the limit, every success a row,
//! `remaining` = stock − rows), the give-back of a failed write, a write
//! whose answer is lost (through a store that loses it, and on PostgreSQL
//! through a proxy that loses a real commit's answer, for a batch of one
//! claim and for a batch of several), the database's own
//! guard when the gate is wrong, the issue window, and counters rebuilt from
//! the database after a restart.
//!
//! The rush, give-back and restart stories run on every gate available: in
//! memory always, Redis when `STAMPEDE_TEST_REDIS_URL` is set, the
//! PostgreSQL gate when the test database is PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use commerce::model::{
    Campaign, CampaignIssues, Coupon, CouponCampaign, CouponCampaignId, CouponId, CouponStatus,
    DiscountSpec, GrantId, NewCampaign,
};
use commerce::stock::{CampaignStock, campaign_pool};
use commerce::store::{
    CampaignAnalyticsStore, CampaignStore, ClaimStore, CouponClaim, CouponStore, IssueOutcome,
    SqlCouponStore, UserCouponStore,
};
use commerce::{CampaignStockLoader, CommerceError, CouponService};
use gate::{
    GiveBackError, Limits, MemoryStockGate, PgStockGate, PoolId, RedisStockGate, Refusal, Snapshot,
    StockGate, StockLoader, Unavailable,
};
use kernel::auth::Staff;
use kernel::clock::ManualClock;
use kernel::db::{Backend, Db, DbOptions};
use kernel::testing::{DATABASE_URL_VAR, LostCommitProxy, TestDatabase};
use kernel::{PageRequest, Principal, Role, Roles, SharedClock, Timestamp, UserId};
use time::Duration;
use time::macros::datetime;
use tokio::runtime::Handle;
use tokio::sync::Barrier;

/// The environment variable that runs the stories on the Redis gate too.
const REDIS_URL_VAR: &str = "STAMPEDE_TEST_REDIS_URL";

/// When the issue windows of these stories open.
fn opens() -> Timestamp {
    datetime!(2026-12-01 10:00 UTC).into()
}

struct Harness {
    _test: TestDatabase,
    db: Db,
    store: Arc<dyn CouponStore>,
    clock: Arc<ManualClock>,
    service: Arc<CouponService>,
}

impl Harness {
    /// A service over a fresh database, its clock inside the issue window.
    async fn start() -> Self {
        let test = TestDatabase::create().await;
        let db = Db::connect(test.url(), &DbOptions::default())
            .await
            .expect("connect");
        db.migrate(commerce::migrations()).await.expect("migrate");
        let store: Arc<dyn CouponStore> = Arc::new(SqlCouponStore::new(db.clone()));
        let clock = Arc::new(ManualClock::new(opens() + Duration::minutes(1)));
        let service = service(&store, &db.writer_runtime(), &clock, memory_gate(&store));
        Self {
            _test: test,
            db,
            store,
            clock,
            service,
        }
    }

    /// Public coupon rows of the campaign, per user.
    async fn rows(&self, campaign: CouponCampaignId) -> HashMap<UserId, i64> {
        let rows: Vec<(UserId, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select user_id, count(*) from coupons \
                 where campaign_id = $1 and ordinal is not null group by user_id",
            )
            .bind(campaign)
            .fetch_all(pool)
            .await
        })
        .expect("count rows");
        rows.into_iter().collect()
    }

    async fn remaining(&self, campaign: CouponCampaignId) -> u32 {
        self.service
            .campaign(campaign)
            .await
            .expect("the campaign")
            .remaining
    }
}

fn memory_gate(store: &Arc<dyn CouponStore>) -> Arc<dyn StockGate> {
    Arc::new(MemoryStockGate::new(Arc::new(CampaignStockLoader::new(
        Arc::clone(store),
    ))))
}

/// A stock gate implementation under test.
#[derive(Debug, Clone)]
enum GateKind {
    Memory,
    Redis(String),
    Postgres,
}

/// The gates this run can reach.
fn gate_kinds() -> Vec<GateKind> {
    let mut kinds = vec![GateKind::Memory];
    match std::env::var(REDIS_URL_VAR) {
        Ok(url) if !url.is_empty() => kinds.push(GateKind::Redis(url)),
        _ => eprintln!("{REDIS_URL_VAR} is not set: the Redis gate is not tried"),
    }
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if url.starts_with("postgres") => kinds.push(GateKind::Postgres),
        _ => eprintln!("the test database is not PostgreSQL: the PostgreSQL gate is not tried"),
    }
    kinds
}

/// A fresh gate of `kind` loading from `store`. A Redis gate gets keys of
/// its own, as if Redis had been emptied.
async fn gate_of(kind: &GateKind, db: &Db, store: &Arc<dyn CouponStore>) -> Arc<dyn StockGate> {
    let loader = Arc::new(CampaignStockLoader::new(Arc::clone(store)));
    match kind {
        GateKind::Memory => Arc::new(MemoryStockGate::new(loader)),
        GateKind::Redis(url) => {
            let prefix = format!("test-commerce-{}", uuid::Uuid::new_v4().simple());
            Arc::new(
                RedisStockGate::connect(url, prefix, loader)
                    .await
                    .expect("Redis is reachable"),
            )
        }
        GateKind::Postgres => {
            db.migrate(gate::stock_migrations())
                .await
                .expect("the gate's tables");
            Arc::new(PgStockGate::new(db.clone(), 4, loader).expect("a PostgreSQL gate"))
        }
    }
}

/// Drops what a shared gate keeps of the campaign (Redis keys outlive the test).
async fn forget(gate: &Arc<dyn StockGate>, campaign: CouponCampaignId) {
    gate.forget(&campaign_pool(campaign))
        .await
        .expect("the gate forgets the pool");
}

/// A service over `store`, its claim writer on `writer_runtime`: the
/// database's writer runtime for a store of the database, the test's own
/// runtime for a [`FlakyStore`].
fn service(
    store: &Arc<dyn CouponStore>,
    writer_runtime: &Handle,
    clock: &Arc<ManualClock>,
    gate: Arc<dyn StockGate>,
) -> Arc<CouponService> {
    let clock: SharedClock = Arc::clone(clock) as SharedClock;
    Arc::new(CouponService::new(
        Arc::clone(store),
        clock,
        gate,
        writer_runtime,
    ))
}

fn staff() -> Staff {
    Staff::check(Principal {
        user_id: UserId::new(),
        session_id: uuid::Uuid::nil(),
        roles: Roles::of(&[Role::Operator]),
    })
    .expect("an operator is staff")
}

fn new_campaign(total_quantity: i64, per_user_limit: i64) -> NewCampaign {
    NewCampaign {
        name: "Winter drop".into(),
        discount: DiscountSpec {
            kind: "PERCENT".into(),
            value: 10,
            currency: None,
        },
        total_quantity,
        per_user_limit: Some(per_user_limit),
        issue_starts_at: opens(),
        issue_ends_at: opens() + Duration::hours(1),
        valid_until: opens() + Duration::days(30),
    }
}

async fn create(service: &CouponService, total: i64, per_user: i64) -> CouponCampaign {
    service
        .create_campaign(&staff(), &new_campaign(total, per_user))
        .await
        .expect("a campaign")
}

/// What a rush came to.
#[derive(Debug, Default)]
struct Outcome {
    issued_to: HashMap<UserId, i64>,
    sold_out: usize,
    limit_reached: usize,
}

impl Outcome {
    fn successes(&self) -> i64 {
        self.issued_to.values().sum()
    }
}

/// `users` users asking `each` times, every request its own task, all
/// released at once.
async fn rush(
    service: &Arc<CouponService>,
    campaign: CouponCampaignId,
    users: usize,
    each: usize,
) -> Outcome {
    let people: Vec<UserId> = (0..users).map(|_| UserId::new()).collect();
    let requests: Vec<UserId> = (0..each).flat_map(|_| people.iter().copied()).collect();
    let start = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|user| {
            let (service, start) = (Arc::clone(service), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                (user, service.issue(user, campaign, None).await)
            })
        })
        .collect();
    let mut outcome = Outcome::default();
    for task in tasks {
        let (user, issued) = task.await.expect("a request ran to the end");
        match issued {
            Ok(coupon) => {
                assert_eq!((coupon.user_id, coupon.campaign_id), (user, campaign));
                *outcome.issued_to.entry(user).or_default() += 1;
            }
            Err(CommerceError::SoldOut) => outcome.sold_out += 1,
            Err(CommerceError::LimitReached) => outcome.limit_reached += 1,
            Err(other) => panic!("a request failed: {other}"),
        }
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rush_of_200_users_limited_to_2_on_a_stock_of_50_issues_exactly_50() {
    let h = Harness::start().await;
    for kind in gate_kinds() {
        let gate = gate_of(&kind, &h.db, &h.store).await;
        let service = service(
            &h.store,
            &h.db.writer_runtime(),
            &h.clock,
            Arc::clone(&gate),
        );
        let drop = create(&service, 50, 2).await.campaign;

        let outcome = rush(&service, drop.id, 200, 3).await;

        assert_eq!(outcome.successes(), 50, "{kind:?}");
        assert_eq!(outcome.sold_out + outcome.limit_reached, 600 - 50);
        assert!(
            outcome.issued_to.values().all(|n| *n <= 2),
            "{kind:?}: nobody over 2"
        );
        assert_eq!(
            h.rows(drop.id).await,
            outcome.issued_to,
            "{kind:?}: every success is a row, and only those"
        );
        let shown = service.campaign(drop.id).await.expect("the campaign");
        assert_eq!(shown.remaining, 0, "{kind:?}");
        forget(&gate, drop.id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_stock_covers_the_demand_every_request_succeeds() {
    let h = Harness::start().await;
    for kind in gate_kinds() {
        let gate = gate_of(&kind, &h.db, &h.store).await;
        let service = service(
            &h.store,
            &h.db.writer_runtime(),
            &h.clock,
            Arc::clone(&gate),
        );
        let drop = create(&service, 500, 2).await.campaign;

        let outcome = rush(&service, drop.id, 100, 2).await;

        assert_eq!(outcome.successes(), 200, "{kind:?}");
        assert_eq!(
            (outcome.sold_out, outcome.limit_reached),
            (0, 0),
            "{kind:?}"
        );
        assert_eq!(h.rows(drop.id).await, outcome.issued_to, "{kind:?}");
        let shown = service.campaign(drop.id).await.expect("the campaign");
        assert_eq!(shown.remaining, 500 - 200, "{kind:?}");
        forget(&gate, drop.id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_its_limit_a_user_is_refused_and_others_still_get_theirs() {
    let h = Harness::start().await;
    let drop = create(&h.service, 10, 2).await.campaign;
    let (ann, bob) = (UserId::new(), UserId::new());

    for _ in 0..2 {
        h.service
            .issue(ann, drop.id, None)
            .await
            .expect("within the limit");
    }
    let refused = h.service.issue(ann, drop.id, None).await;
    let bobs = h
        .service
        .issue(bob, drop.id, None)
        .await
        .expect("bob's first");

    assert!(
        matches!(refused, Err(CommerceError::LimitReached)),
        "{refused:?}"
    );
    assert_eq!(bobs.status, CouponStatus::Issued);
    assert_eq!(h.remaining(drop.id).await, 10 - 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coupons_are_issued_only_inside_the_issue_window() {
    let h = Harness::start().await;
    let drop = create(&h.service, 10, 5).await.campaign;
    let user = UserId::new();

    for outside in [
        opens() - Duration::microseconds(1),
        opens() + Duration::hours(1),
    ] {
        h.clock.set(outside);
        let refused = h.service.issue(user, drop.id, None).await;
        assert!(
            matches!(refused, Err(CommerceError::NotOpen { .. })),
            "{outside}: {refused:?}"
        );
    }
    h.clock.set(opens());
    h.service
        .issue(user, drop.id, None)
        .await
        .expect("open at its start");

    assert_eq!(h.remaining(drop.id).await, 9, "refusals took nothing");
    let unknown = h.service.issue(user, CouponCampaignId::new(), None).await;
    assert!(matches!(unknown, Err(CommerceError::CampaignNotFound)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_restart_the_counters_come_back_from_the_database() {
    let h = Harness::start().await;
    for kind in gate_kinds() {
        let first = gate_of(&kind, &h.db, &h.store).await;
        let before = service(
            &h.store,
            &h.db.writer_runtime(),
            &h.clock,
            Arc::clone(&first),
        );
        let drop = create(&before, 5, 2).await.campaign;
        let (ann, bob) = (UserId::new(), UserId::new());
        for user in [ann, ann, bob] {
            before.issue(user, drop.id, None).await.expect("issued");
        }
        // The process restarts; an in-memory gate starts empty, a Redis one
        // as if Redis had been lost too.
        let gate = gate_of(&kind, &h.db, &h.store).await;
        let restarted = service(
            &h.store,
            &h.db.writer_runtime(),
            &h.clock,
            Arc::clone(&gate),
        );

        let shown = restarted.campaign(drop.id).await.expect("the campaign");
        assert_eq!(shown.remaining, 5 - 3, "{kind:?}");
        let refused = restarted.issue(ann, drop.id, None).await;
        assert!(
            matches!(refused, Err(CommerceError::LimitReached)),
            "{kind:?}: {refused:?}"
        );
        restarted
            .issue(bob, drop.id, None)
            .await
            .expect("bob's second");
        restarted
            .issue(UserId::new(), drop.id, None)
            .await
            .expect("the last one");
        let sold_out = restarted.issue(UserId::new(), drop.id, None).await;
        assert!(
            matches!(sold_out, Err(CommerceError::SoldOut)),
            "{kind:?}: {sold_out:?}"
        );
        forget(&first, drop.id).await;
        forget(&gate, drop.id).await;
    }
}

#[tokio::test]
async fn the_loader_reads_each_campaigns_pool_from_the_database_and_every_pool_is_listed() {
    let h = Harness::start().await;
    let drop = create(&h.service, 7, 3).await.campaign;
    let other = create(&h.service, 1, 1).await.campaign;
    let ann = UserId::new();
    h.service.issue(ann, drop.id, None).await.expect("issued");
    h.service
        .grant(GrantId::new(), ann, drop.id)
        .await
        .expect("granted");
    let loader = CampaignStockLoader::new(Arc::clone(&h.store));

    let (limits, snapshot) = loader.load(&campaign_pool(drop.id)).await.expect("loads");

    assert_eq!(
        limits,
        Limits {
            stock: Some(7),
            per_user: Some(3)
        }
    );
    assert_eq!(snapshot.taken, 1, "the grant is not in the pool");
    assert_eq!(snapshot.by_user.get(&ann.to_string()), Some(&1));
    assert_eq!(
        h.service.stock_pools().await.expect("pools"),
        [campaign_pool(drop.id), campaign_pool(other.id)]
    );
    for foreign in [
        campaign_pool(CouponCampaignId::new()),
        PoolId::new(format!("reward:{}", drop.id)),
    ] {
        assert!(loader.load(&foreign).await.is_err(), "{foreign}");
    }
}

#[tokio::test]
async fn my_coupons_are_mine_and_read_as_expired_once_their_campaign_ends() {
    let h = Harness::start().await;
    let drop = create(&h.service, 10, 2).await.campaign;
    let (ann, bob) = (UserId::new(), UserId::new());
    let first = h.service.issue(ann, drop.id, None).await.expect("issued");
    let second = h.service.issue(ann, drop.id, None).await.expect("issued");
    h.service.issue(bob, drop.id, None).await.expect("issued");
    let page = PageRequest {
        limit: 1,
        after: None,
    };

    let mine = h.service.mine(ann, page).await.expect("a page");
    assert_eq!(mine.items, std::slice::from_ref(&first));
    assert!(mine.next_cursor.is_some());
    let all = h
        .service
        .mine(ann, PageRequest { limit: 10, ..page })
        .await
        .expect("a page");
    assert_eq!(all.items, [first.clone(), second]);
    assert_eq!(first.expires_at, drop.schedule.valid_until());

    h.clock.set(drop.schedule.valid_until());
    let later = h.service.mine(ann, page).await.expect("a page");
    assert_eq!(later.items[0].status, CouponStatus::Expired);
}

/// A store whose issue writes fail while `failing` is set, whose writes
/// commit but lose their answer (as when the connection breaks during the
/// commit) while `losing_answers` is set, and which fails every batch of
/// more than one coupon while `refusing_batches` is set (writing single
/// coupons slowly then, so that batches form behind them).
struct FlakyStore {
    inner: Arc<dyn CouponStore>,
    failing: AtomicBool,
    losing_answers: AtomicBool,
    refusing_batches: AtomicBool,
    refused_batches: AtomicU32,
}

impl FlakyStore {
    fn new(inner: &Arc<dyn CouponStore>) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::clone(inner),
            failing: AtomicBool::new(false),
            losing_answers: AtomicBool::new(false),
            refusing_batches: AtomicBool::new(false),
            refused_batches: AtomicU32::new(0),
        })
    }
}

impl Harness {
    /// On PostgreSQL: a [`LostCommitProxy`] in front of the harness's
    /// database, and a store connected through it. A gate built over
    /// `self.db` keeps its own connection, so the commit that loses its
    /// answer is a coupon write's, not a take's on the PostgreSQL gate.
    async fn through_a_proxy(&self) -> Option<(LostCommitProxy, Db, Arc<dyn CouponStore>)> {
        if self.db.backend() != Backend::Postgres {
            println!("skipped: the lost-commit proxy speaks PostgreSQL (this run is on SQLite)");
            return None;
        }
        let proxy = LostCommitProxy::start(self._test.url()).await;
        let through = Db::connect(proxy.url(), &DbOptions::default())
            .await
            .expect("connect through the proxy");
        let store: Arc<dyn CouponStore> = Arc::new(SqlCouponStore::new(through.clone()));
        Some((proxy, through, store))
    }

    /// A [`FlakyStore`] over the harness's store, a gate of `kind` loading
    /// through it, and a service over both.
    async fn over_flaky_store(
        &self,
        kind: &GateKind,
    ) -> (Arc<FlakyStore>, Arc<dyn StockGate>, Arc<CouponService>) {
        let flaky = FlakyStore::new(&self.store);
        let store: Arc<dyn CouponStore> = flaky.clone();
        let gate = gate_of(kind, &self.db, &store).await;
        let service = service(&store, &Handle::current(), &self.clock, Arc::clone(&gate));
        (flaky, gate, service)
    }
}

#[async_trait]
impl CampaignStore for FlakyStore {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), sqlx::Error> {
        self.inner.create_campaign(campaign).await
    }
    async fn campaign(&self, id: CouponCampaignId) -> Result<Option<Campaign>, sqlx::Error> {
        self.inner.campaign(id).await
    }
    async fn list_campaigns(&self, page: PageRequest) -> Result<Vec<Campaign>, sqlx::Error> {
        self.inner.list_campaigns(page).await
    }
    async fn campaign_ids(&self) -> Result<Vec<CouponCampaignId>, sqlx::Error> {
        self.inner.campaign_ids().await
    }
}

#[async_trait]
impl ClaimStore for FlakyStore {
    async fn issue(&self, claims: Vec<CouponClaim>) -> Result<Vec<IssueOutcome>, sqlx::Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(sqlx::Error::PoolTimedOut);
        }
        if self.losing_answers.load(Ordering::SeqCst) {
            self.inner.issue(claims).await?;
            return Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the connection broke before the commit's answer",
            )));
        }
        if self.refusing_batches.load(Ordering::SeqCst) {
            if claims.len() > 1 {
                self.refused_batches.fetch_add(1, Ordering::SeqCst);
                return Err(sqlx::Error::PoolTimedOut);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.inner.issue(claims).await
    }
    async fn stock(&self, id: CouponCampaignId) -> Result<Option<CampaignStock>, sqlx::Error> {
        self.inner.stock(id).await
    }
}

#[async_trait]
impl UserCouponStore for FlakyStore {
    async fn grant(&self, grant: GrantId, coupon: Coupon) -> Result<Option<Coupon>, sqlx::Error> {
        self.inner.grant(grant, coupon).await
    }
    async fn coupons_of(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<Coupon>, sqlx::Error> {
        self.inner.coupons_of(user, page).await
    }
    async fn coupon(&self, id: CouponId) -> Result<Option<Coupon>, sqlx::Error> {
        self.inner.coupon(id).await
    }
}

#[async_trait]
impl CampaignAnalyticsStore for FlakyStore {
    async fn issues_per_campaign(&self, limit: i64) -> Result<Vec<CampaignIssues>, sqlx::Error> {
        self.inner.issues_per_campaign(limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_durable_write_gives_the_unit_back() {
    let h = Harness::start().await;
    for kind in gate_kinds() {
        let (flaky, gate, service) = h.over_flaky_store(&kind).await;
        flaky.failing.store(true, Ordering::SeqCst);
        let drop = create(&service, 1, 1).await.campaign;
        let ann = UserId::new();

        let failed = service.issue(ann, drop.id, None).await;

        assert!(
            matches!(failed, Err(CommerceError::Database(_))),
            "{kind:?}: {failed:?}"
        );
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, 1, "{kind:?}");
        flaky.failing.store(false, Ordering::SeqCst);
        service
            .issue(ann, drop.id, None)
            .await
            .expect("ann's unit and her limit came back");
        assert_eq!(h.rows(drop.id).await, HashMap::from([(ann, 1)]), "{kind:?}");
        forget(&gate, drop.id).await;
    }
}

/// A write whose answer was lost may have committed, and here it did: its
/// unit stays taken rather than go back to be sold a second time, and the
/// sweep, asking the database, settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_whose_answer_was_lost_keeps_its_unit_until_the_database_is_asked() {
    let h = Harness::start().await;
    let older_than = std::time::Duration::from_millis(50);
    for kind in gate_kinds() {
        let (flaky, gate, service) = h.over_flaky_store(&kind).await;
        flaky.losing_answers.store(true, Ordering::SeqCst);
        let drop = create(&service, 2, 1).await.campaign;
        let ann = UserId::new();

        let lost = service.issue(ann, drop.id, None).await;

        assert!(
            matches!(lost, Err(CommerceError::Database(_))),
            "{kind:?}: {lost:?}"
        );
        assert_eq!(h.rows(drop.id).await, HashMap::from([(ann, 1)]), "{kind:?}");
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, 1, "{kind:?}: the written unit stays taken");

        flaky.losing_answers.store(false, Ordering::SeqCst);
        tokio::time::sleep(older_than * 2).await;
        let loader = CampaignStockLoader::new(flaky);
        let report = gate::sweep(gate.as_ref(), &loader, older_than).await;
        let settled = match kind {
            // No leases: the in-memory gate keeps the unit taken until its
            // counters are next read from the database.
            GateKind::Memory => 0,
            GateKind::Redis(_) | GateKind::Postgres => 1,
        };
        assert_eq!(
            (report.settled, report.returned, report.failed),
            (settled, 0, 0),
            "{kind:?}: {report:?}"
        );
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, 1, "{kind:?}");
        let again = service.issue(ann, drop.id, None).await;
        assert!(
            matches!(again, Err(CommerceError::LimitReached)),
            "{kind:?}: ann holds her one coupon: {again:?}"
        );
        forget(&gate, drop.id).await;
    }
}

/// The same with a real PostgreSQL behind a proxy that loses the answer to
/// the first commit after it is armed: the rush's first claim batch is
/// written, and its answer never arrives. (That batch is the first claim
/// alone, since a lone claim never waits for company: its caller hears the
/// error and its lease is left to the sweep, which settles it. A batch of
/// several would be written again claim by claim, each found already
/// written.) Every claim is written once, every unit stays taken, and
/// nothing goes back. PostgreSQL only: SQLite has no connection to lose.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_batch_whose_commit_answer_is_lost_keeps_every_unit_and_writes_each_claim_once() {
    let h = Harness::start().await;
    let Some((proxy, through, store)) = h.through_a_proxy().await else {
        return;
    };
    let older_than = std::time::Duration::from_millis(50);
    for kind in gate_kinds() {
        let gate = gate_of(&kind, &h.db, &store).await;
        let service = service(
            &store,
            &through.writer_runtime(),
            &h.clock,
            Arc::clone(&gate),
        );
        let drop = create(&service, 100, 1).await.campaign;
        let users: Vec<UserId> = (0..40).map(|_| UserId::new()).collect();
        let start = Arc::new(Barrier::new(users.len()));
        let answers_lost = proxy.answers_lost();
        proxy.arm();

        let claims: Vec<_> = users
            .iter()
            .map(|&user| {
                let (service, start) = (Arc::clone(&service), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    service.issue(user, drop.id, None).await
                })
            })
            .collect();
        let mut lost = 0;
        for claim in claims {
            match claim.await.expect("a claim ran to the end") {
                Ok(_) => {}
                Err(CommerceError::Database(_)) => lost += 1,
                Err(other) => panic!("{kind:?}: {other}"),
            }
        }

        assert_eq!(proxy.answers_lost(), answers_lost + 1, "{kind:?}");
        assert_eq!(
            h.rows(drop.id).await,
            users.iter().map(|&user| (user, 1)).collect(),
            "{kind:?}: every claim written once, {lost} of them unanswered"
        );
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, 100 - 40, "{kind:?}: no unit went back");
        tokio::time::sleep(older_than * 2).await;
        let loader = CampaignStockLoader::new(Arc::clone(&store));
        let report = gate::sweep(gate.as_ref(), &loader, older_than).await;
        let settled = match kind {
            GateKind::Memory => 0,
            GateKind::Redis(_) | GateKind::Postgres => lost,
        };
        assert_eq!(
            (report.settled, report.returned, report.failed),
            (settled, 0, 0),
            "{kind:?}: {report:?}"
        );
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, 100 - 40, "{kind:?}: no unit went back");
        forget(&gate, drop.id).await;
    }
    through.close().await;
}

/// A batch of several claims whose commit's answer is lost is written again
/// claim by claim, and each claim, found already written, is answered 201:
/// nobody hears an error for a coupon they hold. The batch is made by
/// holding the coupons table while two claims take the writer's two slots,
/// so the other 38 queue behind them; the proxy loses the commit of the
/// transaction that carried the last one's user id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_several_whose_commit_answer_is_lost_answers_every_claim_as_written() {
    let h = Harness::start().await;
    let Some((proxy, through, store)) = h.through_a_proxy().await else {
        return;
    };
    let Db::Postgres(pool) = &h.db else {
        unreachable!("a proxy is only started on PostgreSQL");
    };
    for kind in gate_kinds() {
        let gate = gate_of(&kind, &h.db, &store).await;
        let service = service(
            &store,
            &through.writer_runtime(),
            &h.clock,
            Arc::clone(&gate),
        );
        let drop = create(&service, 100, 1).await.campaign;
        let users: Vec<UserId> = (0..40).map(|_| UserId::new()).collect();
        let issue = |user: UserId| {
            let service = Arc::clone(&service);
            tokio::spawn(async move { service.issue(user, drop.id, None).await })
        };
        let answers_lost = proxy.answers_lost();
        let mut hold = pool.begin().await.expect("a transaction");
        sqlx::query("lock table coupons in share row exclusive mode")
            .execute(&mut *hold)
            .await
            .expect("the coupons table held");
        let mut claims = Vec::new();
        for &user in &users[..2] {
            claims.push(issue(user));
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        claims.extend(users[2..].iter().map(|&user| issue(user)));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let last = users.last().expect("40 users");
        proxy.arm_for(last.0.as_bytes());
        hold.commit().await.expect("the table let go");

        for claim in claims {
            claim
                .await
                .expect("a claim ran to the end")
                .unwrap_or_else(|e| panic!("{kind:?}: every claim was written: {e}"));
        }

        assert_eq!(proxy.answers_lost(), answers_lost + 1, "{kind:?}");
        assert_eq!(
            h.rows(drop.id).await,
            users.iter().map(|&user| (user, 1)).collect(),
            "{kind:?}"
        );
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, 100 - 40, "{kind:?}");
        assert_eq!(
            gate.stale_claims(std::time::Duration::ZERO)
                .await
                .expect("the gate answers"),
            Vec::new(),
            "{kind:?}: every lease settled"
        );
        forget(&gate, drop.id).await;
    }
    through.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_fails_as_a_whole_is_written_claim_by_claim() {
    let h = Harness::start().await;
    let flaky = FlakyStore::new(&h.store);
    flaky.refusing_batches.store(true, Ordering::SeqCst);
    let store: Arc<dyn CouponStore> = flaky.clone();
    let service = service(&store, &Handle::current(), &h.clock, memory_gate(&store));
    let drop = create(&service, 100, 1).await.campaign;

    let outcome = rush(&service, drop.id, 60, 1).await;

    assert!(
        flaky.refused_batches.load(Ordering::SeqCst) >= 1,
        "claims queued behind slow writes form batches"
    );
    assert_eq!(outcome.successes(), 60);
    assert_eq!(h.rows(drop.id).await.values().sum::<i64>(), 60);
    assert_eq!(h.remaining(drop.id).await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweep_keeps_the_unit_of_an_issued_coupon_and_returns_one_whose_claim_died() {
    let h = Harness::start().await;
    let older_than = std::time::Duration::from_millis(50);
    for kind in gate_kinds() {
        let gate = gate_of(&kind, &h.db, &h.store).await;
        let service = service(
            &h.store,
            &h.db.writer_runtime(),
            &h.clock,
            Arc::clone(&gate),
        );
        let drop = create(&service, 5, 2).await.campaign;
        let (ann, bob) = (UserId::new(), UserId::new());
        let issued = service
            .issue(ann, drop.id, None)
            .await
            .expect("ann's coupon");
        // A claim whose process died between its take and its write.
        let (pool, dead) = (campaign_pool(drop.id), CouponId::new().to_string());
        gate.take_claim(&pool, &bob.to_string(), 1, &dead)
            .await
            .expect("bob's unit");
        let loader = CampaignStockLoader::new(Arc::clone(&h.store));
        assert_eq!(
            loader.claimed(&pool, &issued.id.to_string()).await,
            Ok(true)
        );
        assert_eq!(loader.claimed(&pool, &dead).await, Ok(false));
        assert!(loader.claimed(&pool, "not-a-coupon-id").await.is_err());
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, 5 - 2, "{kind:?}");

        tokio::time::sleep(older_than * 2).await;
        let report = gate::sweep(gate.as_ref(), &loader, older_than).await;

        let (returned, remaining) = match kind {
            // No leases: the in-memory gate dies with the claim's process.
            GateKind::Memory => (0, 5 - 2),
            GateKind::Redis(_) | GateKind::Postgres => (1, 5 - 1),
        };
        assert_eq!(
            (report.settled, report.returned, report.failed),
            (0, returned, 0),
            "{kind:?}: {report:?}"
        );
        let shown = service.campaign(drop.id).await.expect("shown");
        assert_eq!(shown.remaining, remaining, "{kind:?}");
        forget(&gate, drop.id).await;
    }
}

/// A gate that allows every take, as a drifted or misconfigured one might.
#[derive(Default)]
struct CarelessGate {
    given_back: AtomicU32,
}

#[async_trait]
impl StockGate for CarelessGate {
    async fn take(&self, _: &PoolId, _: &str, _: u32) -> Result<(), Refusal> {
        Ok(())
    }
    async fn give_back(&self, _: &PoolId, _: &str, quantity: u32) -> Result<(), GiveBackError> {
        self.given_back.fetch_add(quantity, Ordering::SeqCst);
        Ok(())
    }
    async fn remaining(&self, _: &PoolId) -> Result<Option<u64>, Unavailable> {
        Ok(None)
    }
    async fn reset(&self, _: &PoolId, _: Limits, _: Snapshot) -> Result<(), Unavailable> {
        Ok(())
    }
    async fn counters(&self, _: &PoolId) -> Result<Option<(Limits, Snapshot)>, Unavailable> {
        Ok(None)
    }
    async fn forget(&self, _: &PoolId) -> Result<(), Unavailable> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_holds_the_per_user_line_when_the_gate_is_wrong() {
    let h = Harness::start().await;
    let gate = Arc::new(CarelessGate::default());
    let service = service(&h.store, &h.db.writer_runtime(), &h.clock, gate.clone());
    let drop = create(&service, 100, 2).await.campaign;
    let ann = UserId::new();

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let service = Arc::clone(&service);
            tokio::spawn(async move { service.issue(ann, drop.id, None).await })
        })
        .collect();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("ran") {
            Ok(_) => {}
            Err(CommerceError::LimitReached) => refused += 1,
            Err(other) => panic!("{other}"),
        }
    }

    assert_eq!(refused, 8);
    assert_eq!(h.rows(drop.id).await, HashMap::from([(ann, 2)]));
    assert_eq!(
        gate.given_back.load(Ordering::SeqCst),
        8,
        "every refused unit went back"
    );
}
