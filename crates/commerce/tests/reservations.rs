//! Holding product units through the service, with a real database and a
//! stock gate loaded from it, on every gate this run can reach (memory
//! always; Redis with `STAMPEDE_TEST_REDIS_URL`; the PostgreSQL gate when the
//! test database is PostgreSQL): a rush never oversells nor passes the
//! per-user limit, and each unit comes back exactly once when release and
//! several expiry sweeps race for the same holds.

use std::sync::Arc;

use commerce::CommerceError;
use commerce::orders::{NewOrder, OrderService, OrderStatus, PaymentStatus, SqlOrderStore};
use commerce::products::{NewProduct, ProductId, ProductKind, ProductService, SqlProductStore};
use commerce::reservations::{
    NewReservation, ProductStockLoader, ReservationService, ReservationStatus, ReservationStore,
    SqlReservationStore, product_pool,
};
use gate::{MemoryStockGate, PgStockGate, RedisStockGate, StockGate};
use kernel::auth::Staff;
use kernel::clock::ManualClock;
use kernel::db::{Db, DbOptions};
use kernel::testing::{DATABASE_URL_VAR, TestDatabase};
use kernel::{IdempotentEffect, Principal, Role, Roles, SharedClock, Timestamp, UserId};
use time::Duration;
use time::macros::datetime;
use tokio::sync::Barrier;

const REDIS_URL_VAR: &str = "STAMPEDE_TEST_REDIS_URL";

fn opens() -> Timestamp {
    datetime!(2026-12-01 10:00 UTC).into()
}

#[derive(Debug, Clone)]
enum GateKind {
    Memory,
    Redis(String),
    Postgres,
}

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

struct Harness {
    _test: TestDatabase,
    store: Arc<dyn ReservationStore>,
    clock: Arc<ManualClock>,
    gate: Arc<dyn StockGate>,
    products: ProductService,
    service: Arc<ReservationService>,
    orders: Arc<OrderService>,
}

impl Harness {
    async fn start(kind: &GateKind) -> Self {
        let test = TestDatabase::create().await;
        let db = Db::connect(test.url(), &DbOptions::default())
            .await
            .expect("connect");
        db.migrate(bus::migrations())
            .await
            .expect("migrate the bus");
        db.migrate(commerce::migrations()).await.expect("migrate");
        let store: Arc<dyn ReservationStore> = Arc::new(SqlReservationStore::new(db.clone()));
        let product_store = Arc::new(SqlProductStore::new(db.clone()));
        let clock = Arc::new(ManualClock::new(opens() + Duration::minutes(1)));
        let shared: SharedClock = Arc::clone(&clock) as SharedClock;
        let loader = Arc::new(ProductStockLoader::new(Arc::clone(&store)));
        let gate: Arc<dyn StockGate> = match kind {
            GateKind::Memory => Arc::new(MemoryStockGate::new(loader)),
            GateKind::Redis(url) => {
                let prefix = format!("test-holds-{}", uuid::Uuid::new_v4().simple());
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
        };
        let products =
            ProductService::new(product_store.clone(), shared.clone()).with_gate(Arc::clone(&gate));
        let service = Arc::new(ReservationService::new(
            Arc::clone(&store),
            product_store.clone(),
            shared.clone(),
            Arc::clone(&gate),
        ));
        let orders = Arc::new(OrderService::new(
            Arc::new(SqlOrderStore::new(db.clone())),
            product_store,
            Arc::clone(&service),
            shared,
            std::time::Duration::from_secs(300),
        ));
        Self {
            _test: test,
            store,
            clock,
            gate,
            products,
            service,
            orders,
        }
    }

    async fn product(&self, stock: Option<i64>, per_user_limit: Option<i64>) -> ProductId {
        let staff = Staff::check(Principal {
            user_id: UserId::new(),
            session_id: uuid::Uuid::nil(),
            roles: Roles::of(&[Role::Operator]),
        })
        .expect("an operator is staff");
        let request = NewProduct {
            name: "Winter gala".into(),
            kind: ProductKind::EventTicket,
            price: 15_000,
            currency: None,
            stock,
            per_user_limit,
            hold_seconds: Some(60),
            sale_starts_at: opens(),
            sale_ends_at: opens() + Duration::days(1),
            valid_from: None,
            valid_until: None,
        };
        self.products
            .create(&staff, &request)
            .await
            .expect("a product")
            .id
    }

    async fn remaining(&self, product: ProductId) -> Option<u64> {
        self.gate
            .remaining(&product_pool(product))
            .await
            .expect("the gate answers")
    }

    async fn db_remaining(&self, product: ProductId) -> Option<u64> {
        self.products
            .product(product)
            .await
            .expect("the product")
            .remaining
    }
}

fn owner(user: UserId) -> Principal {
    Principal {
        user_id: user,
        session_id: uuid::Uuid::nil(),
        roles: Roles::of(&[Role::User]),
    }
}

fn units(quantity: i64) -> NewReservation {
    NewReservation { quantity }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rush_of_holds_never_oversells_nor_passes_the_per_user_limit() {
    for kind in gate_kinds() {
        let h = Harness::start(&kind).await;
        let product = h.product(Some(10), Some(3)).await;
        let users: Vec<UserId> = (0..8).map(|_| UserId::new()).collect();
        let barrier = Arc::new(Barrier::new(users.len() * 3));
        let mut tasks = Vec::new();
        for user in &users {
            for quantity in [1, 2, 2] {
                let (service, barrier, user) = (h.service.clone(), barrier.clone(), *user);
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    service.hold(user, product, &units(quantity), None).await
                }));
            }
        }
        let mut held = 0;
        for task in tasks {
            match task.await.expect("the task ends") {
                Ok(r) => held += u64::from(r.quantity),
                Err(CommerceError::ProductSoldOut | CommerceError::ProductLimitReached) => {}
                Err(e) => panic!("{kind:?}: unexpected {e}"),
            }
        }
        assert!(held <= 10, "{kind:?}: {held} units held of 10");
        assert!(
            held >= 8,
            "{kind:?}: only {held} units held of 10 by 8 users"
        );
        for user in &users {
            let mine = h
                .service
                .mine(
                    *user,
                    kernel::PageRequest {
                        limit: 100,
                        after: None,
                    },
                )
                .await
                .expect("the user's holds");
            let theirs: u32 = mine.items.iter().map(|r| r.quantity).sum();
            assert!(
                theirs <= 3,
                "{kind:?}: a user holds {theirs} of a limit of 3"
            );
        }
        assert_eq!(
            h.remaining(product).await,
            Some(10 - held),
            "{kind:?}: gate"
        );
        assert_eq!(
            h.db_remaining(product).await,
            Some(10 - held),
            "{kind:?}: rows"
        );
        h.gate.forget(&product_pool(product)).await.expect("forget");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn release_and_expiry_racing_give_each_unit_back_exactly_once() {
    for kind in gate_kinds() {
        let h = Harness::start(&kind).await;
        let product = h.product(Some(40), None).await;
        let mut holds = Vec::new();
        for _ in 0..12 {
            let user = UserId::new();
            let r = h
                .service
                .hold(user, product, &units(3), None)
                .await
                .expect("a hold");
            holds.push(r);
        }
        // Every hold is due; a later hold is not, and must stay taken: a
        // unit given back twice would show as more than 40 − 2 remaining.
        h.clock.advance(Duration::minutes(2));
        let keeper = h
            .service
            .hold(UserId::new(), product, &units(2), None)
            .await
            .expect("a hold that is not due");
        let barrier = Arc::new(Barrier::new(holds.len() + 3));
        let mut tasks = Vec::new();
        for r in &holds {
            let (service, barrier, id, user) =
                (h.service.clone(), barrier.clone(), r.id, r.user_id);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let _ = service.release(&owner(user), id).await;
            }));
        }
        for _ in 0..3 {
            let (service, barrier) = (h.service.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                service.expire_due().await.expect("the sweep runs");
            }));
        }
        for task in tasks {
            task.await.expect("the task ends");
        }
        for r in &holds {
            let status = h
                .store
                .reservation(r.id)
                .await
                .expect("read")
                .expect("the row")
                .status;
            assert!(
                matches!(
                    status,
                    ReservationStatus::Released | ReservationStatus::Expired
                ),
                "{kind:?}: {status}"
            );
        }
        assert_eq!(h.remaining(product).await, Some(38), "{kind:?}: gate");
        assert_eq!(h.db_remaining(product).await, Some(38), "{kind:?}: rows");
        let again = h.service.release(&owner(keeper.user_id), holds[0].id).await;
        assert!(matches!(again, Err(CommerceError::Forbidden)), "{kind:?}");
        let again = h
            .service
            .release(&owner(holds[0].user_id), holds[0].id)
            .await;
        assert!(
            matches!(again, Err(CommerceError::ReservationNotHeld { .. })),
            "{kind:?}: {again:?}"
        );
        assert_eq!(h.service.expire_due().await.expect("sweep"), 0);
        assert_eq!(
            h.remaining(product).await,
            Some(38),
            "{kind:?}: nothing twice"
        );
        h.gate.forget(&product_pool(product)).await.expect("forget");
    }
}

#[tokio::test]
async fn holds_outside_the_sale_window_or_of_no_product_are_refused() {
    let h = Harness::start(&GateKind::Memory).await;
    let product = h.product(Some(5), None).await;
    let user = UserId::new();
    h.clock.set(opens() - Duration::minutes(1));
    let early = h.service.hold(user, product, &units(1), None).await;
    assert!(
        matches!(early, Err(CommerceError::SaleNotOpen { .. })),
        "{early:?}"
    );
    h.clock.set(opens() + Duration::days(2));
    let late = h.service.hold(user, product, &units(1), None).await;
    assert!(
        matches!(late, Err(CommerceError::SaleNotOpen { .. })),
        "{late:?}"
    );
    h.clock.set(opens() + Duration::minutes(1));
    let none = h
        .service
        .hold(user, ProductId::new(), &units(1), None)
        .await;
    assert!(
        matches!(none, Err(CommerceError::ProductNotFound)),
        "{none:?}"
    );
    let zero = h.service.hold(user, product, &units(0), None).await;
    assert!(matches!(zero, Err(CommerceError::Invalid(_))), "{zero:?}");
    let many = h.service.hold(user, product, &units(6), None).await;
    assert!(
        matches!(many, Err(CommerceError::ProductSoldOut)),
        "{many:?}"
    );
    assert_eq!(h.remaining(product).await, Some(5));
}

#[tokio::test]
async fn a_retried_key_answers_with_the_hold_it_made_and_takes_nothing_more() {
    let h = Harness::start(&GateKind::Memory).await;
    let product = h.product(Some(5), None).await;
    let user = UserId::new();
    let effect = IdempotentEffect {
        id: uuid::Uuid::now_v7(),
        retry: false,
    };
    let first = h
        .service
        .hold(user, product, &units(2), Some(effect))
        .await
        .expect("a hold");
    let retry = IdempotentEffect {
        retry: true,
        ..effect
    };
    let again = h
        .service
        .hold(user, product, &units(2), Some(retry))
        .await
        .expect("the same hold");
    assert_eq!(again.id, first.id);
    assert_eq!(h.remaining(product).await, Some(3));
}

#[tokio::test]
async fn a_new_stock_reaches_the_gate_and_cannot_go_below_the_holds() {
    let h = Harness::start(&GateKind::Memory).await;
    let product = h.product(Some(5), None).await;
    let user = UserId::new();
    h.service
        .hold(user, product, &units(4), None)
        .await
        .expect("a hold");
    let staff = Staff::check(Principal {
        roles: Roles::of(&[Role::Admin]),
        ..owner(user)
    })
    .expect("staff");
    let below = serde_json::from_str(r#"{"stock": 3}"#).expect("a patch");
    let refused = h.products.update(&staff, product, &below).await;
    assert!(
        matches!(refused, Err(CommerceError::StockBelowTaken { taken: 4 })),
        "{refused:?}"
    );
    let more = serde_json::from_str(r#"{"stock": 8}"#).expect("a patch");
    let view = h
        .products
        .update(&staff, product, &more)
        .await
        .expect("patched");
    assert_eq!(view.remaining, Some(4));
    assert_eq!(h.remaining(product).await, Some(4));
    h.service
        .hold(UserId::new(), product, &units(4), None)
        .await
        .expect("the new units are on sale");
    assert_eq!(h.remaining(product).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpaid_orders_expiring_under_racing_sweeps_give_each_unit_back_once() {
    for kind in gate_kinds() {
        let h = Harness::start(&kind).await;
        let product = h.product(Some(30), None).await;
        let mut orders = Vec::new();
        for _ in 0..8 {
            let user = UserId::new();
            let hold = h
                .service
                .hold(user, product, &units(3), None)
                .await
                .expect("a hold");
            let request = NewOrder {
                reservation_ids: vec![hold.id],
                coupon_code: None,
            };
            orders.push(
                h.orders
                    .place(user, &request, None)
                    .await
                    .expect("an order"),
            );
        }
        // Past the holds' own 60 s but inside the payment window: the hold
        // sweep must leave ordered holds alone.
        h.clock.advance(Duration::minutes(2));
        assert_eq!(h.service.expire_due().await.expect("sweep"), 0, "{kind:?}");
        assert_eq!(h.remaining(product).await, Some(6), "{kind:?}");
        h.clock.advance(Duration::minutes(5));
        let keeper = h
            .service
            .hold(UserId::new(), product, &units(1), None)
            .await
            .expect("a live hold");
        let barrier = Arc::new(Barrier::new(4 + orders.len()));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (o, barrier) = (h.orders.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                o.expire_due().await.expect("the sweep runs");
            }));
        }
        for order in &orders {
            let (o, barrier, id) = (h.orders.clone(), barrier.clone(), order.id);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                o.close_unpaid(
                    id,
                    PaymentStatus::None,
                    OrderStatus::Expired,
                    "EXPIRED",
                    None,
                )
                .await
                .expect("a close");
            }));
        }
        for task in tasks {
            task.await.expect("the task ends");
        }
        let owner = Principal {
            roles: Roles::of(&[Role::Auditor]),
            ..owner(keeper.user_id)
        };
        for order in &orders {
            let now = h.orders.order(&owner, order.id).await.expect("the order");
            assert_eq!(now.status, OrderStatus::Expired, "{kind:?}");
            let events = h.orders.history(order.id).await.expect("history");
            let expired = events.iter().filter(|(e, _, _)| e == "EXPIRED").count();
            assert_eq!(expired, 1, "{kind:?}: one close per order");
        }
        assert_eq!(h.remaining(product).await, Some(29), "{kind:?}: gate");
        assert_eq!(h.db_remaining(product).await, Some(29), "{kind:?}: rows");
        h.gate.forget(&product_pool(product)).await.expect("forget");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_racing_the_expiry_of_their_holds_take_each_unit_once() {
    for kind in gate_kinds() {
        let h = Harness::start(&kind).await;
        let product = h.product(Some(40), None).await;
        let mut holds = Vec::new();
        for _ in 0..12 {
            let user = UserId::new();
            holds.push(
                h.service
                    .hold(user, product, &units(2), None)
                    .await
                    .expect("a hold"),
            );
        }
        // A second before the holds' end: orders start, and the clock
        // passes the end while the sweeps run.
        h.clock.advance(Duration::seconds(59));
        let barrier = Arc::new(Barrier::new(holds.len() + 3));
        let mut orders = Vec::new();
        for r in &holds {
            let (o, barrier, id, user) = (h.orders.clone(), barrier.clone(), r.id, r.user_id);
            orders.push(tokio::spawn(async move {
                barrier.wait().await;
                let request = NewOrder {
                    reservation_ids: vec![id],
                    coupon_code: None,
                };
                o.place(user, &request, None).await
            }));
        }
        let mut sweeps = Vec::new();
        for i in 0..3 {
            let (service, barrier, clock) = (h.service.clone(), barrier.clone(), h.clock.clone());
            sweeps.push(tokio::spawn(async move {
                barrier.wait().await;
                if i == 0 {
                    clock.advance(Duration::seconds(2));
                }
                service.expire_due().await.expect("the sweep runs")
            }));
        }
        let mut ordered = 0;
        for order in orders {
            match order.await.expect("the task ends") {
                Ok(_) => ordered += 2,
                Err(CommerceError::ReservationExpired(_)) => {}
                Err(e) => panic!("{kind:?}: unexpected {e}"),
            }
        }
        for sweep in sweeps {
            sweep.await.expect("the task ends");
        }
        h.service.expire_due().await.expect("a last sweep");
        for r in &holds {
            let status = h
                .store
                .reservation(r.id)
                .await
                .expect("read")
                .expect("the row")
                .status;
            assert!(
                matches!(
                    status,
                    ReservationStatus::Ordered | ReservationStatus::Expired
                ),
                "{kind:?}: {status}"
            );
        }
        assert_eq!(
            h.remaining(product).await,
            Some(40 - ordered),
            "{kind:?}: gate"
        );
        assert_eq!(
            h.db_remaining(product).await,
            Some(40 - ordered),
            "{kind:?}: rows"
        );
        h.gate.forget(&product_pool(product)).await.expect("forget");
    }
}
