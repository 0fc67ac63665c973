//! Coupon grants from the rewards module: one coupon per grant however often
//! it arrives, outside the public stock (a sold-out drop still honours its
//! grants), a clear failure for an unknown campaign, and the whole way
//! through the bus.

use std::sync::Arc;

use bus::{Dispatcher, Envelope, Handler, InProcessTransport, Relay, RetryPolicy};
use commerce::model::{CouponCampaignId, DiscountSpec, GrantId, NewCampaign};
use commerce::store::{CouponStore, SqlCouponStore};
use commerce::{CampaignStockLoader, CommerceError, CouponGrantHandler, CouponService};
use contracts::commerce::IssueCouponGrant;
use gate::{MemoryStockGate, StockGate};
use kernel::auth::Staff;
use kernel::clock::ManualClock;
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{PageRequest, Principal, Role, Roles, SharedClock, Timestamp, UserId};
use time::Duration;
use time::macros::datetime;

fn now() -> Timestamp {
    datetime!(2026-12-01 10:30 UTC).into()
}

struct Harness {
    _test: TestDatabase,
    db: Db,
    clock: SharedClock,
    service: Arc<CouponService>,
    handler: Arc<CouponGrantHandler>,
}

impl Harness {
    async fn start() -> Self {
        let test = TestDatabase::create().await;
        let db = Db::connect(test.url(), &DbOptions::default())
            .await
            .expect("connect");
        db.migrate(bus::migrations())
            .await
            .expect("migrate the bus");
        db.migrate(commerce::migrations()).await.expect("migrate");
        let store: Arc<dyn CouponStore> = Arc::new(SqlCouponStore::new(db.clone()));
        let gate: Arc<dyn StockGate> = Arc::new(MemoryStockGate::new(Arc::new(
            CampaignStockLoader::new(Arc::clone(&store)),
        )));
        let clock: SharedClock = Arc::new(ManualClock::new(now()));
        let service = Arc::new(CouponService::new(
            store,
            Arc::clone(&clock),
            gate,
            &db.writer_runtime(),
        ));
        let handler = Arc::new(CouponGrantHandler::new(Arc::clone(&service)));
        Self {
            _test: test,
            db,
            clock,
            service,
            handler,
        }
    }

    /// A campaign whose issue window is open now.
    async fn campaign(&self, total_quantity: i64) -> CouponCampaignId {
        let staff = Staff::check(Principal {
            user_id: UserId::new(),
            session_id: uuid::Uuid::nil(),
            roles: Roles::of(&[Role::Admin]),
        })
        .expect("an admin is staff");
        let request = NewCampaign {
            name: "Reward coupons".into(),
            discount: DiscountSpec {
                kind: "FIXED".into(),
                value: 5_000,
                currency: None,
            },
            total_quantity,
            per_user_limit: None,
            issue_starts_at: now() - Duration::hours(1),
            issue_ends_at: now() + Duration::hours(1),
            valid_until: now() + Duration::days(30),
        };
        self.service
            .create_campaign(&staff, &request)
            .await
            .expect("a campaign")
            .campaign
            .id
    }

    async fn coupons_of(&self, user: UserId) -> Vec<commerce::model::Coupon> {
        self.service
            .mine(
                user,
                PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .await
            .expect("a page")
            .items
    }
}

fn grant(campaign_id: CouponCampaignId, user_id: UserId) -> IssueCouponGrant {
    IssueCouponGrant {
        grant_id: GrantId::new(),
        user_id,
        campaign_id,
        requested_at: now(),
    }
}

fn envelope(grant: &IssueCouponGrant) -> Envelope {
    Envelope::new(grant, now()).expect("encodes")
}

#[tokio::test]
async fn the_same_grant_handled_twice_is_one_coupon() {
    let h = Harness::start().await;
    let campaign = h.campaign(10).await;
    let user = UserId::new();
    let command = grant(campaign, user);

    h.handler
        .handle(&envelope(&command))
        .await
        .expect("handled");
    h.handler
        .handle(&envelope(&command))
        .await
        .expect("handled again, as after a crash or a second send");

    let coupons = h.coupons_of(user).await;
    assert_eq!(coupons.len(), 1);
    assert_eq!(coupons[0].campaign_id, campaign);
    assert_eq!(
        h.service.campaign(campaign).await.expect("shown").remaining,
        10,
        "grants do not use up the public stock"
    );
}

#[tokio::test]
async fn a_grant_is_honoured_when_the_public_stock_is_sold_out() {
    let h = Harness::start().await;
    let campaign = h.campaign(1).await;
    h.service
        .issue(UserId::new(), campaign, None)
        .await
        .expect("the only public coupon");
    let sold_out = h.service.issue(UserId::new(), campaign, None).await;
    assert!(
        matches!(sold_out, Err(CommerceError::SoldOut)),
        "{sold_out:?}"
    );
    let winner = UserId::new();

    h.handler
        .handle(&envelope(&grant(campaign, winner)))
        .await
        .expect("granted");

    assert_eq!(h.coupons_of(winner).await.len(), 1);
    assert_eq!(
        h.service.campaign(campaign).await.expect("shown").remaining,
        0
    );
}

#[tokio::test]
async fn a_grant_for_an_unknown_campaign_fails_and_says_why() {
    let h = Harness::start().await;
    let command = grant(CouponCampaignId::new(), UserId::new());

    let failed = h
        .handler
        .handle(&envelope(&command))
        .await
        .expect_err("no such campaign");

    assert!(failed.0.contains("does not exist"), "{failed}");
    assert!(
        failed.0.contains(&command.campaign_id.to_string()),
        "{failed}"
    );
}

#[tokio::test]
async fn the_command_is_the_documented_json() {
    let command = IssueCouponGrant {
        grant_id: GrantId::new(),
        user_id: UserId::new(),
        campaign_id: CouponCampaignId::new(),
        requested_at: now(),
    };

    let sent = envelope(&command);

    assert_eq!(
        (sent.topic.as_str(), sent.version),
        ("commerce.issue_coupon_grant", 1)
    );
    assert_eq!(
        sent.payload,
        serde_json::json!({
            "grant_id": command.grant_id.to_string(),
            "user_id": command.user_id.to_string(),
            "campaign_id": command.campaign_id.to_string(),
            "requested_at": "2026-12-01T10:30:00Z",
        })
    );
}

#[tokio::test]
async fn grants_sent_through_the_bus_reach_the_user_once_each() {
    let h = Harness::start().await;
    let campaign = h.campaign(10).await;
    let user = UserId::new();
    let handlers: Vec<Arc<dyn Handler>> = vec![h.handler.clone()];
    let policy = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let dispatcher = Dispatcher::new(h.db.clone(), Arc::clone(&h.clock), handlers, policy);
    let transport = Arc::new(InProcessTransport::new(
        h.db.clone(),
        Arc::clone(&h.clock),
        &dispatcher.subscriptions(),
        dispatcher.wake.clone(),
    ));
    let relay = Relay::new(h.db.clone(), transport, Arc::clone(&h.clock));
    let twice = grant(campaign, user);
    let unknown = grant(CouponCampaignId::new(), user);
    // Rewards sending one grant twice, as two messages, and a broken one.
    let sent = [envelope(&twice), envelope(&twice), envelope(&unknown)];
    kernel::write_tx!(&h.db, |conn| {
        for message in &sent {
            bus::enqueue!(conn, message)?;
        }
        Ok::<(), sqlx::Error>(())
    })
    .expect("enqueued");

    assert_eq!(relay.run_once().await.expect("relayed"), 3);
    assert_eq!(dispatcher.run_once().await.expect("dispatched"), 3);

    assert_eq!(h.coupons_of(user).await.len(), 1);
    let dead = dispatcher
        .dead_letters(PageRequest {
            limit: 10,
            after: None,
        })
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subscriber, "commerce.coupon_grants");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("does not exist")),
        "{:?}",
        dead[0].last_error
    );
}
