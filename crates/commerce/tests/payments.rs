//! The payment saga step by step, through a scripted provider: a decline,
//! a timeout that charged nothing (settled `EXPIRED` past the window, no
//! second charge inside it), a charge whose answer was lost — as after a
//! provider 5xx or a process killed between the charge and the tickets —
//! settled `PAID` by reconciliation, and an approval that arrives after the
//! order expired, refunded and recorded as `PAID_AFTER_EXPIRY`. Each ends
//! either paid with tickets or failed with stock and money back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use commerce::CommerceError;
use commerce::orders::payment::{NewPayment, Paid};
use commerce::orders::{NewOrder, Order, OrderService, OrderStatus, PaymentStatus, SqlOrderStore};
use commerce::payments::{
    Charge, ChargeOutcome, LookupFailed, PaymentProvider, ProviderName, ProviderPayment,
    ProviderPaymentStatus, Refund, RefundOutcome,
};
use commerce::products::{NewProduct, ProductId, ProductKind, ProductService, SqlProductStore};
use commerce::reservations::{
    NewReservation, ProductStockLoader, ReservationService, ReservationStore, SqlReservationStore,
    product_pool,
};
use gate::{MemoryStockGate, StockGate};
use kernel::auth::Staff;
use kernel::clock::ManualClock;
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{Principal, Role, Roles, SharedClock, Timestamp, UserId};
use time::Duration;
use time::macros::datetime;
use tokio::sync::Notify;

fn opens() -> Timestamp {
    datetime!(2026-12-01 10:00 UTC).into()
}

/// What the scripted provider answers a charge with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Approve,
    Decline,
    /// Times out having charged nothing.
    TimeOut,
    /// Charges, then loses the answer (a 5xx after the charge, a process
    /// killed before the tickets).
    ChargeAndLose,
    /// Waits for `release`, then approves.
    ApproveLate,
}

struct Scripted {
    script: Script,
    charges: AtomicU32,
    refunds: AtomicU32,
    charged: Mutex<Option<ProviderPayment>>,
    started: Notify,
    release: Notify,
}

impl Scripted {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script,
            charges: AtomicU32::new(0),
            refunds: AtomicU32::new(0),
            charged: Mutex::new(None),
            started: Notify::new(),
            release: Notify::new(),
        })
    }

    fn take(&self, charge: &Charge) {
        *self.charged.lock().expect("lock") = Some(ProviderPayment {
            payment_key: charge.payment_key.clone(),
            status: ProviderPaymentStatus::Done,
            amount: charge.amount,
            approved_at: Some(time::OffsetDateTime::now_utc()),
        });
    }
}

#[async_trait]
impl PaymentProvider for Scripted {
    fn name(&self) -> ProviderName {
        ProviderName::Fake
    }

    async fn charge(&self, charge: &Charge) -> ChargeOutcome {
        self.charges.fetch_add(1, Ordering::SeqCst);
        let approved = ChargeOutcome::Approved {
            payment_key: charge.payment_key.clone(),
            approved_at: time::OffsetDateTime::now_utc(),
        };
        match self.script {
            Script::Approve => {
                self.take(charge);
                approved
            }
            Script::Decline => ChargeOutcome::Declined {
                code: "REJECT_CARD_COMPANY".into(),
                message: "declined".into(),
            },
            Script::TimeOut => ChargeOutcome::Unknown {
                reason: "timed out".into(),
            },
            Script::ChargeAndLose => {
                self.take(charge);
                ChargeOutcome::Unknown {
                    reason: "502 after the charge".into(),
                }
            }
            Script::ApproveLate => {
                self.started.notify_one();
                self.release.notified().await;
                self.take(charge);
                approved
            }
        }
    }

    async fn refund(&self, _: &Refund) -> RefundOutcome {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        if let Some(p) = self.charged.lock().expect("lock").as_mut() {
            p.status = ProviderPaymentStatus::Cancelled;
        }
        RefundOutcome::Refunded {
            refunded_at: time::OffsetDateTime::now_utc(),
        }
    }

    async fn lookup(&self, _: &str) -> Result<Option<ProviderPayment>, LookupFailed> {
        Ok(self.charged.lock().expect("lock").clone())
    }
}

struct Harness {
    _test: TestDatabase,
    clock: Arc<ManualClock>,
    gate: Arc<dyn StockGate>,
    products: ProductService,
    reservations: Arc<ReservationService>,
    orders: Arc<OrderService>,
    provider: Arc<Scripted>,
    user: UserId,
}

impl Harness {
    async fn start(script: Script) -> Self {
        let test = TestDatabase::create().await;
        let db = Db::connect(test.url(), &DbOptions::default())
            .await
            .expect("connect");
        db.migrate(commerce::migrations()).await.expect("migrate");
        let store: Arc<dyn ReservationStore> = Arc::new(SqlReservationStore::new(db.clone()));
        let product_store = Arc::new(SqlProductStore::new(db.clone()));
        let clock = Arc::new(ManualClock::new(opens() + Duration::minutes(1)));
        let shared: SharedClock = Arc::clone(&clock) as SharedClock;
        let gate: Arc<dyn StockGate> = Arc::new(MemoryStockGate::new(Arc::new(
            ProductStockLoader::new(Arc::clone(&store)),
        )));
        let products = ProductService::new(product_store.clone(), shared.clone());
        let reservations = Arc::new(ReservationService::new(
            store,
            product_store.clone(),
            shared.clone(),
            Arc::clone(&gate),
        ));
        let provider = Scripted::new(script);
        let orders = Arc::new(
            OrderService::new(
                Arc::new(SqlOrderStore::new(db.clone())),
                product_store,
                Arc::clone(&reservations),
                shared,
                std::time::Duration::from_secs(300),
            )
            .with_provider(provider.clone()),
        );
        Self {
            _test: test,
            clock,
            gate,
            products,
            reservations,
            orders,
            provider,
            user: UserId::new(),
        }
    }

    /// A product of 5 units and an order of 2 of them; both ids.
    async fn order(&self) -> (ProductId, Order) {
        let staff = Staff::check(Principal {
            user_id: UserId::new(),
            session_id: uuid::Uuid::nil(),
            roles: Roles::of(&[Role::Operator]),
        })
        .expect("staff");
        let product = self
            .products
            .create(
                &staff,
                &NewProduct {
                    name: "Winter gala".into(),
                    kind: ProductKind::EventTicket,
                    price: 10_000,
                    currency: None,
                    stock: Some(5),
                    per_user_limit: None,
                    hold_seconds: Some(60),
                    sale_starts_at: opens(),
                    sale_ends_at: opens() + Duration::days(1),
                    valid_from: None,
                    valid_until: None,
                },
            )
            .await
            .expect("a product")
            .id;
        let hold = self
            .reservations
            .hold(self.user, product, &NewReservation { quantity: 2 }, None)
            .await
            .expect("a hold");
        let order = self
            .orders
            .place(
                self.user,
                &NewOrder {
                    reservation_ids: vec![hold.id],
                    coupon_code: None,
                },
                None,
            )
            .await
            .expect("an order");
        (product, order)
    }

    fn owner(&self) -> Principal {
        Principal {
            user_id: self.user,
            session_id: uuid::Uuid::nil(),
            roles: Roles::of(&[Role::User]),
        }
    }

    async fn pay(&self, order: &Order) -> Result<Paid, CommerceError> {
        let request = NewPayment {
            provider: "fake".into(),
            payment_key: None,
            amount: None,
            outcome: None,
        };
        self.orders.pay(&self.owner(), order.id, &request).await
    }

    async fn now(&self, order: &Order) -> Order {
        self.orders
            .order(&self.owner(), order.id)
            .await
            .expect("the order")
    }

    async fn remaining(&self, product: ProductId) -> Option<u64> {
        self.gate
            .remaining(&product_pool(product))
            .await
            .expect("the gate")
    }

    async fn events(&self, order: &Order) -> Vec<String> {
        self.orders
            .history(order.id)
            .await
            .expect("history")
            .into_iter()
            .map(|(event, _, _)| event)
            .collect()
    }
}

#[tokio::test]
async fn approved_is_paid_with_a_ticket_per_unit() {
    let h = Harness::start(Script::Approve).await;
    let (product, order) = h.order().await;
    let paid = h.pay(&order).await.expect("paid");
    let Paid::Paid(paid) = paid else {
        panic!("not paid: {paid:?}")
    };
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.tickets.len(), 2);
    assert_eq!(h.remaining(product).await, Some(3));
    assert_eq!(h.events(&order).await, ["PLACED", "CHARGE_STARTED", "PAID"]);
}

#[tokio::test]
async fn a_decline_fails_the_order_with_its_stock_back_and_no_money_taken() {
    let h = Harness::start(Script::Decline).await;
    let (product, order) = h.order().await;
    let declined = h.pay(&order).await;
    assert!(
        matches!(&declined, Err(CommerceError::PaymentDeclined { code, .. }) if code == "REJECT_CARD_COMPANY"),
        "{declined:?}"
    );
    let now = h.now(&order).await;
    assert_eq!(
        (now.status, now.payment.status),
        (OrderStatus::Failed, PaymentStatus::Declined)
    );
    assert!(now.tickets.is_empty());
    assert_eq!(h.remaining(product).await, Some(5));
    assert_eq!(h.provider.refunds.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_timeout_keeps_the_holds_never_charges_twice_and_expires_past_the_window() {
    let h = Harness::start(Script::TimeOut).await;
    let (product, order) = h.order().await;
    let pending = h.pay(&order).await.expect("an answer");
    assert!(matches!(pending, Paid::Pending(_)), "{pending:?}");
    assert_eq!(h.remaining(product).await, Some(3), "holds kept");
    let again = h.pay(&order).await;
    assert!(
        matches!(again, Err(CommerceError::OrderNotPayable { .. })),
        "{again:?}"
    );
    // Inside the window, nothing charged: reconciliation waits.
    assert_eq!(h.orders.reconcile().await.expect("reconcile"), 0);
    // The plain expiry sweep leaves an unknown charge to reconciliation.
    h.clock.advance(Duration::minutes(10));
    assert_eq!(h.orders.expire_due().await.expect("sweep"), 0);
    assert_eq!(h.now(&order).await.status, OrderStatus::PendingPayment);
    assert_eq!(h.orders.reconcile().await.expect("reconcile"), 1);
    let now = h.now(&order).await;
    assert_eq!(now.status, OrderStatus::Expired);
    assert_eq!(h.remaining(product).await, Some(5));
    assert_eq!(h.provider.charges.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.provider.refunds.load(Ordering::SeqCst),
        0,
        "nothing to refund"
    );
}

#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_settled_paid_by_reconciliation() {
    let h = Harness::start(Script::ChargeAndLose).await;
    let (product, order) = h.order().await;
    let pending = h.pay(&order).await.expect("an answer");
    assert!(matches!(pending, Paid::Pending(_)), "{pending:?}");
    assert_eq!(h.now(&order).await.payment.status, PaymentStatus::Unknown);
    // Even past the window: the holds were kept for it.
    h.clock.advance(Duration::minutes(10));
    assert_eq!(h.orders.reconcile().await.expect("reconcile"), 1);
    let now = h.now(&order).await;
    assert_eq!(now.status, OrderStatus::Paid);
    assert_eq!(now.tickets.len(), 2);
    assert_eq!(h.remaining(product).await, Some(3));
    assert_eq!(h.provider.charges.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.orders.reconcile().await.expect("reconcile"),
        0,
        "settled once"
    );
}

#[tokio::test]
async fn an_approval_after_the_order_expired_is_refunded_and_recorded() {
    let h = Harness::start(Script::ApproveLate).await;
    let (product, order) = h.order().await;
    let orders = Arc::clone(&h.orders);
    let owner = h.owner();
    let id = order.id;
    let paying = tokio::spawn(async move {
        let request = NewPayment {
            provider: "fake".into(),
            payment_key: None,
            amount: None,
            outcome: None,
        };
        orders.pay(&owner, id, &request).await
    });
    h.provider.started.notified().await;
    // Meanwhile the order is given up (reconciliation found no charge
    // past the window): its stock goes back.
    let closed = h
        .orders
        .close_unpaid(
            order.id,
            PaymentStatus::Unknown,
            OrderStatus::Expired,
            "EXPIRED",
            None,
        )
        .await
        .expect("closed");
    assert!(closed);
    assert_eq!(h.remaining(product).await, Some(5));
    h.provider.release.notify_one();
    let answer = paying.await.expect("the task ends");
    assert!(
        matches!(answer, Err(CommerceError::OrderNotPayable { .. })),
        "{answer:?}"
    );
    let now = h.now(&order).await;
    assert_eq!(now.status, OrderStatus::Expired);
    assert_eq!(now.payment.status, PaymentStatus::Refunded);
    assert!(now.tickets.is_empty());
    assert_eq!(h.provider.refunds.load(Ordering::SeqCst), 1, "money back");
    assert!(
        h.events(&order)
            .await
            .contains(&"PAID_AFTER_EXPIRY".to_owned()),
        "{:?}",
        h.events(&order).await
    );
    assert_eq!(h.remaining(product).await, Some(5), "stock not taken twice");
}
