//! The payment saga step by step, through a scripted provider: a decline,
//! a timeout that charged nothing (settled `EXPIRED` past the window, no
//! second charge inside it), a charge whose answer was lost — as after a
//! provider 5xx or a process killed between the charge and the tickets —
//! settled `PAID` by reconciliation, and an approval that arrives after the
//! order expired, refunded and recorded as `PAID_AFTER_EXPIRY`. Each ends
//! either paid with tickets or failed with stock and money back. A paid
//! order's cancel commits its refund as pending with a command on the
//! outbox; the command refunds it once however often it is retried, and
//! ends as a dead letter when the provider keeps failing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use commerce::CommerceError;
use commerce::orders::payment::{NewPayment, Paid};
use commerce::orders::refunds::RefundProgress;
use commerce::orders::{
    NewOrder, Order, OrderService, OrderStatus, PaymentStatus, RefundOrders, RefundStatus,
    SqlOrderStore,
};
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
    /// Refunds still to answer "unknown" before one goes through.
    refund_failures: AtomicU32,
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
            refund_failures: AtomicU32::new(0),
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
        let failing = self
            .refund_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return RefundOutcome::Unknown {
                reason: "503 from the provider".into(),
            };
        }
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
    db: Db,
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
        db.migrate(bus::migrations())
            .await
            .expect("migrate the bus");
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
            db,
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

    /// The topics on the outbox, oldest first.
    async fn outbox(&self) -> Vec<String> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select topic from outbox_messages order by id")
                .fetch_all(pool)
                .await
        })
        .expect("the outbox")
    }

    /// A paid order, cancelled by its owner: refund pending.
    async fn cancelled(&self) -> (ProductId, Order) {
        let (product, order) = self.order().await;
        assert!(matches!(self.pay(&order).await, Ok(Paid::Paid(_))));
        let cancelled = self
            .orders
            .cancel(&self.owner(), order.id)
            .await
            .expect("cancelled");
        (product, cancelled)
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

#[tokio::test]
async fn a_paid_order_is_cancelled_at_once_with_its_refund_pending_on_the_outbox() {
    let h = Harness::start(Script::Approve).await;
    let (product, cancelled) = h.cancelled().await;

    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    let refund = cancelled.refund.clone().expect("a refund");
    assert_eq!(refund.status, RefundStatus::Pending);
    assert_eq!(refund.amount, cancelled.total);
    assert!(refund.refunded_at.is_none());
    assert_eq!(
        cancelled.payment.status,
        PaymentStatus::Done,
        "the money is not back yet"
    );
    assert!(
        cancelled
            .tickets
            .iter()
            .all(|t| t.status == commerce::tickets::TicketStatus::Void)
    );
    assert_eq!(h.remaining(product).await, Some(5), "stock back at once");
    assert_eq!(
        h.provider.refunds.load(Ordering::SeqCst),
        0,
        "not asked yet"
    );
    assert_eq!(
        h.outbox().await,
        [
            "commerce.order_paid",
            "commerce.order_cancelled",
            "commerce.refund_order"
        ]
    );
}

#[tokio::test]
async fn the_refund_command_retries_until_refunded_and_refunds_once() {
    let h = Harness::start(Script::Approve).await;
    let (_, cancelled) = h.cancelled().await;
    h.provider.refund_failures.store(2, Ordering::SeqCst);

    for _ in 0..2 {
        let failed = h.orders.refund(cancelled.id).await;
        assert!(
            matches!(failed, Err(CommerceError::RefundFailed(_))),
            "{failed:?}"
        );
        let now = h.now(&cancelled).await;
        assert_eq!(
            now.refund.map(|r| r.status),
            Some(RefundStatus::Pending),
            "still pending after a failure"
        );
    }
    assert_eq!(
        h.orders.refund(cancelled.id).await.expect("refunded"),
        RefundProgress::Refunded
    );
    assert_eq!(
        h.orders.refund(cancelled.id).await.expect("nothing to do"),
        RefundProgress::NothingPending,
        "a redelivered command refunds nothing more"
    );

    assert_eq!(h.provider.refunds.load(Ordering::SeqCst), 3);
    let now = h.now(&cancelled).await;
    assert_eq!(now.payment.status, PaymentStatus::Refunded);
    let refund = now.refund.expect("a refund");
    assert_eq!(refund.status, RefundStatus::Refunded);
    assert!(refund.refunded_at.is_some());
    assert!(
        h.events(&cancelled)
            .await
            .ends_with(&["CANCELLED".to_owned(), "REFUNDED".to_owned()])
    );
    let refunded = h
        .outbox()
        .await
        .into_iter()
        .filter(|t| t == "commerce.order_refunded")
        .count();
    assert_eq!(refunded, 1, "one refund announced");
}

#[tokio::test]
async fn a_refund_the_provider_keeps_failing_becomes_a_dead_letter_and_a_replay_finishes_it() {
    let h = Harness::start(Script::Approve).await;
    h.provider.refund_failures.store(u32::MAX, Ordering::SeqCst);
    let (_, cancelled) = h.cancelled().await;
    // The bus as the server runs it, with a short retry policy.
    let clock: SharedClock = Arc::new(kernel::SystemClock);
    let handlers: Vec<Arc<dyn bus::Handler>> =
        vec![Arc::new(RefundOrders::new(Arc::clone(&h.orders)))];
    let dispatcher = bus::Dispatcher::new(
        h.db.clone(),
        clock.clone(),
        handlers,
        bus::RetryPolicy {
            max_attempts: 3,
            base: std::time::Duration::from_millis(10),
            cap: std::time::Duration::from_millis(10),
            lease: std::time::Duration::from_secs(10),
        },
    );
    let transport = Arc::new(bus::InProcessTransport::new(
        h.db.clone(),
        clock.clone(),
        &dispatcher.subscriptions(),
        dispatcher.wake.clone(),
    ));
    let relay = bus::Relay::new(h.db.clone(), transport, clock);
    relay.run_once().await.expect("relayed");
    let page = kernel::PageRequest {
        limit: 10,
        after: None,
    };
    let mut dead = Vec::new();
    for _ in 0..100 {
        dispatcher.run_once().await.expect("dispatched");
        dead = dispatcher.dead_letters(page).await.expect("dead letters");
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(dead.len(), 1, "given up after its attempts");
    assert_eq!(dead[0].subscriber, "commerce.refunds");
    assert_eq!(dead[0].attempts, 3);
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("503 from the provider"), "{error}");
    assert_eq!(
        h.now(&cancelled).await.refund.map(|r| r.status),
        Some(RefundStatus::Pending),
        "the order still says the refund is pending"
    );

    // The provider is back; an operator replays the dead letter.
    h.provider.refund_failures.store(0, Ordering::SeqCst);
    assert!(dispatcher.replay(dead[0].id).await.expect("replayed"));
    dispatcher.run_once().await.expect("dispatched");
    let now = h.now(&cancelled).await;
    assert_eq!(now.refund.map(|r| r.status), Some(RefundStatus::Refunded));
    assert_eq!(now.payment.status, PaymentStatus::Refunded);
}

#[tokio::test]
async fn a_paid_order_announces_its_tickets_in_the_transaction_that_pays_it() {
    let h = Harness::start(Script::Approve).await;
    let (_, order) = h.order().await;
    let Ok(Paid::Paid(paid)) = h.pay(&order).await else {
        panic!("paid");
    };
    let payload: String = kernel::read!(&h.db, |pool| {
        sqlx::query_scalar(
            "select payload from outbox_messages where topic = 'commerce.order_paid'",
        )
        .fetch_one(pool)
        .await
    })
    .expect("one message");
    let message: contracts::commerce::OrderPaid =
        serde_json::from_str(&payload).expect("an order_paid payload");
    assert_eq!(message.order_id, paid.id);
    assert_eq!(message.user_id, h.user);
    assert_eq!(message.total, paid.total);
    assert_eq!(message.items.len(), 1);
    assert_eq!(message.items[0].product_name, "Winter gala");
    assert_eq!(message.items[0].quantity, 2);
    let mut announced: Vec<&str> = message.tickets.iter().map(|t| t.code.as_str()).collect();
    let mut issued: Vec<&str> = paid.tickets.iter().map(|t| t.code.as_str()).collect();
    announced.sort_unstable();
    issued.sort_unstable();
    assert_eq!(announced, issued);
}
