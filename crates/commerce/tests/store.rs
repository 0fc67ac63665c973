//! The coupon store's conformance suite: every `CouponStore` method, run
//! against SQLite by default and against PostgreSQL when
//! `STAMPEDE_TEST_DATABASE_URL` is set.

use std::collections::HashMap;
use std::sync::Arc;

use commerce::model::{
    Campaign, CampaignIssues, Coupon, CouponCampaignId, CouponCode, CouponId, DiscountSpec,
    GrantId, NewCampaign,
};
use commerce::stock::CampaignStock;
use commerce::store::{
    CampaignAnalyticsStore, CampaignStore, ClaimStore, CouponClaim, IssueOutcome, SqlCouponStore,
    UserCouponStore,
};
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{PageRequest, Timestamp, UserId};
use time::Duration;
use time::macros::datetime;

/// The instant every story starts at.
fn t0() -> Timestamp {
    datetime!(2026-11-22 10:00:00.123456 UTC).into()
}

async fn open() -> (TestDatabase, Db, SqlCouponStore) {
    let test = TestDatabase::create().await;
    let db = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("connect");
    db.migrate(commerce::migrations()).await.expect("migrate");
    let store = SqlCouponStore::new(db.clone());
    (test, db, store)
}

fn discount(kind: &str, value: i64, currency: Option<&str>) -> DiscountSpec {
    DiscountSpec {
        kind: kind.into(),
        value,
        currency: currency.map(str::to_owned),
    }
}

fn campaign_with(total_quantity: i64, per_user_limit: i64, discount: DiscountSpec) -> Campaign {
    let request = NewCampaign {
        name: "Winter drop".into(),
        discount,
        total_quantity,
        per_user_limit: Some(per_user_limit),
        issue_starts_at: t0(),
        issue_ends_at: t0() + Duration::hours(1),
        valid_until: t0() + Duration::days(30),
    };
    Campaign::new(CouponCampaignId::new(), &request, t0()).expect("a valid campaign")
}

fn campaign(total_quantity: i64, per_user_limit: i64) -> Campaign {
    campaign_with(
        total_quantity,
        per_user_limit,
        discount("PERCENT", 10, None),
    )
}

async fn created(store: &SqlCouponStore, campaign: Campaign) -> Campaign {
    store
        .create_campaign(campaign.clone())
        .await
        .expect("create");
    campaign
}

fn coupon(campaign: &Campaign, user: UserId) -> Coupon {
    let issued_at = t0() + Duration::minutes(1);
    Coupon::new(
        CouponId::new(),
        campaign,
        user,
        CouponCode::generate(issued_at),
        issued_at,
    )
}

fn page(limit: u32) -> PageRequest {
    PageRequest { limit, after: None }
}

/// Claims the database numbers, as the PostgreSQL stock gate sends them.
fn unnumbered(coupons: Vec<Coupon>) -> Vec<CouponClaim> {
    coupons
        .into_iter()
        .map(|coupon| CouponClaim {
            coupon,
            ordinal: None,
        })
        .collect()
}

/// A claim the stock gate numbered `ordinal`.
fn numbered(coupon: Coupon, ordinal: u32) -> CouponClaim {
    CouponClaim {
        coupon,
        ordinal: Some(ordinal),
    }
}

async fn issue(store: &SqlCouponStore, coupon: Coupon) -> IssueOutcome {
    let outcomes = store.issue(unnumbered(vec![coupon])).await.expect("issue");
    assert_eq!(outcomes.len(), 1, "one outcome per coupon");
    outcomes[0]
}

async fn ordinals(db: &Db, campaign: CouponCampaignId, user: UserId) -> Vec<i64> {
    kernel::read!(db, |pool| {
        sqlx::query_scalar(
            "select cast(ordinal as bigint) from coupons \
             where campaign_id = $1 and user_id = $2 order by ordinal",
        )
        .bind(campaign)
        .bind(user)
        .fetch_all(pool)
        .await
    })
    .expect("read ordinals")
}

#[tokio::test]
async fn a_campaign_reads_back_exactly_as_it_was_created() {
    let (_test, _db, store) = open().await;
    let percent = created(&store, campaign(100, 2)).await;
    let fixed = created(
        &store,
        campaign_with(5, 1, discount("FIXED", 3_000, Some("USD"))),
    )
    .await;

    assert_eq!(
        store.campaign(percent.id).await.expect("read"),
        Some(percent)
    );
    assert_eq!(store.campaign(fixed.id).await.expect("read"), Some(fixed));
    assert_eq!(
        store.campaign(CouponCampaignId::new()).await.expect("read"),
        None
    );
}

#[tokio::test]
async fn campaigns_are_listed_in_id_order_a_page_at_a_time() {
    let (_test, _db, store) = open().await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(created(&store, campaign(10, 1)).await.id);
    }
    let ids = |campaigns: Vec<Campaign>| campaigns.into_iter().map(|c| c.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store.list_campaigns(page(10)).await.expect("list")),
        made
    );
    let after_first = PageRequest {
        limit: 1,
        after: Some(made[0].0),
    };
    assert_eq!(
        ids(store.list_campaigns(after_first).await.expect("list")),
        made[1..],
        "fetches one more than the page to tell whether another follows"
    );
    assert_eq!(store.campaign_ids().await.expect("ids"), made);
}

#[tokio::test]
async fn a_public_issue_takes_the_users_next_ordinal_up_to_the_limit() {
    let (_test, db, store) = open().await;
    let drop = created(&store, campaign(100, 2)).await;
    let (ann, bob) = (UserId::new(), UserId::new());

    assert_eq!(
        issue(&store, coupon(&drop, ann)).await,
        IssueOutcome::Issued
    );
    assert_eq!(
        issue(&store, coupon(&drop, ann)).await,
        IssueOutcome::Issued
    );
    assert_eq!(
        issue(&store, coupon(&drop, ann)).await,
        IssueOutcome::LimitReached
    );
    assert_eq!(
        issue(&store, coupon(&drop, bob)).await,
        IssueOutcome::Issued
    );

    assert_eq!(ordinals(&db, drop.id, ann).await, [1, 2]);
    assert_eq!(ordinals(&db, drop.id, bob).await, [1]);
    assert_eq!(
        store.coupons_of(ann, page(10)).await.expect("list").len(),
        2
    );
}

#[tokio::test]
async fn an_issued_coupon_reads_back_as_written() {
    let (_test, _db, store) = open().await;
    let drop = created(&store, campaign(10, 1)).await;
    let written = coupon(&drop, UserId::new());

    assert_eq!(issue(&store, written.clone()).await, IssueOutcome::Issued);

    assert_eq!(
        store
            .coupons_of(written.user_id, page(10))
            .await
            .expect("list"),
        std::slice::from_ref(&written)
    );
    assert_eq!(written.expires_at, drop.schedule.valid_until());
}

#[tokio::test]
async fn an_issue_for_an_unknown_campaign_writes_nothing() {
    let (_test, _db, store) = open().await;
    let unknown = campaign(10, 1);
    let user = UserId::new();

    assert_eq!(
        issue(&store, coupon(&unknown, user)).await,
        IssueOutcome::CampaignNotFound
    );
    assert!(
        store
            .coupons_of(user, page(10))
            .await
            .expect("list")
            .is_empty()
    );
}

/// A batch whose commit's answer was lost is written again claim by claim;
/// a coupon it did write must then read as issued, once, and not fail (its
/// unit would go back and be sold twice) nor take a second ordinal.
#[tokio::test]
async fn writing_an_already_written_coupon_again_answers_issued_and_writes_nothing() {
    let (_test, db, store) = open().await;
    let drop = created(&store, campaign(10, 3)).await;
    let ann = UserId::new();
    let written = coupon(&drop, ann);
    assert_eq!(issue(&store, written.clone()).await, IssueOutcome::Issued);

    let again = store.issue(unnumbered(vec![written.clone()])).await;
    let in_a_batch = store
        .issue(unnumbered(vec![written, coupon(&drop, UserId::new())]))
        .await;

    assert_eq!(again.ok(), Some(vec![IssueOutcome::Issued]));
    assert_eq!(
        in_a_batch.ok(),
        Some(vec![IssueOutcome::Issued, IssueOutcome::Issued])
    );
    assert_eq!(ordinals(&db, drop.id, ann).await, [1]);
}

#[tokio::test]
async fn a_code_is_never_written_twice() {
    let (_test, _db, store) = open().await;
    let drop = created(&store, campaign(10, 1)).await;
    let first = coupon(&drop, UserId::new());
    let mut copy = coupon(&drop, UserId::new());
    copy.code = first.code.clone();

    assert_eq!(issue(&store, first).await, IssueOutcome::Issued);
    let refused = store.issue(unnumbered(vec![copy.clone()])).await;

    assert!(
        matches!(&refused, Err(e) if kernel::db::is_unique_violation(e, "code")),
        "{refused:?}"
    );
    assert!(
        store
            .coupons_of(copy.user_id, page(10))
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn a_batch_answers_each_coupon_in_order_as_if_written_one_by_one() {
    let (_test, db, store) = open().await;
    let (pairs, single) = (
        created(&store, campaign(100, 2)).await,
        created(&store, campaign(100, 1)).await,
    );
    let (ann, bob, cid) = (UserId::new(), UserId::new(), UserId::new());
    assert_eq!(
        issue(&store, coupon(&single, cid)).await,
        IssueOutcome::Issued
    );
    let batch = vec![
        coupon(&pairs, ann),
        coupon(&single, cid),
        coupon(&pairs, ann),
        coupon(&single, bob),
        coupon(&pairs, ann),
        coupon(&campaign(10, 1), bob),
        coupon(&pairs, bob),
    ];
    let ids: Vec<CouponId> = batch.iter().map(|c| c.id).collect();

    let outcomes = store.issue(unnumbered(batch)).await.expect("the batch");

    assert_eq!(
        outcomes,
        [
            IssueOutcome::Issued,
            IssueOutcome::LimitReached,
            IssueOutcome::Issued,
            IssueOutcome::Issued,
            IssueOutcome::LimitReached,
            IssueOutcome::CampaignNotFound,
            IssueOutcome::Issued,
        ]
    );
    assert_eq!(ordinals(&db, pairs.id, ann).await, [1, 2]);
    assert_eq!(ordinals(&db, pairs.id, bob).await, [1]);
    assert_eq!(ordinals(&db, single.id, bob).await, [1]);
    assert_eq!(ordinals(&db, single.id, cid).await, [1]);
    let anns: Vec<CouponId> = store
        .coupons_of(ann, page(10))
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(anns, [ids[0], ids[2]]);
}

#[tokio::test]
async fn a_batch_larger_than_any_one_statement_is_written_whole() {
    let (_test, db, store) = open().await;
    let drop = created(&store, campaign(1_000, 1)).await;
    let users: Vec<UserId> = (0..600).map(|_| UserId::new()).collect();
    let batch: Vec<Coupon> = users.iter().map(|u| coupon(&drop, *u)).collect();

    let outcomes = store.issue(unnumbered(batch)).await.expect("the batch");

    assert_eq!(outcomes, vec![IssueOutcome::Issued; 600]);
    let stock = store.stock(drop.id).await.expect("read").expect("exists");
    assert_eq!(stock.issued(), 600);
    for user in &users[..3] {
        assert_eq!(ordinals(&db, drop.id, *user).await, [1]);
    }
}

/// The Redis and in-memory gates number each claim by the user's count, so
/// a user's claims in one batch go into one statement with their numbers.
#[tokio::test]
async fn claims_the_gate_numbered_are_written_with_their_numbers_up_to_the_limit() {
    let (_test, db, store) = open().await;
    let drop = created(&store, campaign(100, 3)).await;
    let (ann, bob) = (UserId::new(), UserId::new());
    let batch = vec![
        numbered(coupon(&drop, ann), 2),
        numbered(coupon(&drop, bob), 1),
        numbered(coupon(&drop, ann), 1),
        numbered(coupon(&drop, ann), 3),
        numbered(coupon(&drop, ann), 4),
    ];

    let outcomes = store.issue(batch).await.expect("the batch");

    assert_eq!(
        outcomes,
        [
            IssueOutcome::Issued,
            IssueOutcome::Issued,
            IssueOutcome::Issued,
            IssueOutcome::Issued,
            IssueOutcome::LimitReached,
        ]
    );
    assert_eq!(ordinals(&db, drop.id, ann).await, [1, 2, 3]);
    assert_eq!(ordinals(&db, drop.id, bob).await, [1]);
}

/// A unit given back while the user's later take was in flight makes the
/// gate hand out a number the user already holds, and leaves a lower one
/// unused: the claim takes the lowest free number instead, and the user
/// still gets exactly the limit.
#[tokio::test]
async fn a_claim_numbered_like_a_written_coupon_takes_the_lowest_free_number() {
    let (_test, db, store) = open().await;
    let drop = created(&store, campaign(100, 3)).await;
    let ann = UserId::new();
    let gap = store
        .issue(vec![
            numbered(coupon(&drop, ann), 1),
            numbered(coupon(&drop, ann), 3),
        ])
        .await
        .expect("a gap at 2");
    assert_eq!(gap, [IssueOutcome::Issued, IssueOutcome::Issued]);

    let reused = store
        .issue(vec![numbered(coupon(&drop, ann), 3)])
        .await
        .expect("issue");
    let over = store
        .issue(vec![numbered(coupon(&drop, ann), 3)])
        .await
        .expect("issue");

    assert_eq!(reused, [IssueOutcome::Issued]);
    assert_eq!(over, [IssueOutcome::LimitReached]);
    assert_eq!(ordinals(&db, drop.id, ann).await, [1, 2, 3]);
}

/// Numbered and unnumbered claims of one user in one batch (two instances
/// on different gates, say) never share an ordinal.
#[tokio::test]
async fn numbered_and_unnumbered_claims_of_one_user_get_ordinals_of_their_own() {
    let (_test, db, store) = open().await;
    let drop = created(&store, campaign(100, 3)).await;
    let ann = UserId::new();
    let mut batch = unnumbered(vec![coupon(&drop, ann), coupon(&drop, ann)]);
    batch.insert(1, numbered(coupon(&drop, ann), 1));

    let outcomes = store.issue(batch).await.expect("the batch");

    assert_eq!(outcomes, vec![IssueOutcome::Issued; 3]);
    assert_eq!(ordinals(&db, drop.id, ann).await, [1, 2, 3]);
}

#[tokio::test]
async fn a_batch_with_a_duplicate_code_writes_nothing() {
    let (_test, _db, store) = open().await;
    let drop = created(&store, campaign(10, 1)).await;
    let (ann, bob) = (UserId::new(), UserId::new());
    let first = coupon(&drop, ann);
    let mut copy = coupon(&drop, bob);
    copy.code = first.code.clone();

    let refused = store.issue(unnumbered(vec![first, copy])).await;

    assert!(
        matches!(&refused, Err(e) if kernel::db::is_unique_violation(e, "code")),
        "{refused:?}"
    );
    let stock = store.stock(drop.id).await.expect("read").expect("exists");
    assert_eq!(stock.issued(), 0);
}

#[tokio::test]
async fn issues_per_campaign_count_public_and_granted_coupons_newest_campaign_first() {
    let (_test, _db, store) = open().await;
    let older = created(&store, campaign(10, 2)).await;
    let newer = created(&store, campaign(5, 1)).await;
    let untouched = created(&store, campaign(3, 1)).await;
    let ann = UserId::new();
    for coupon in [
        coupon(&older, ann),
        coupon(&older, ann),
        coupon(&newer, ann),
    ] {
        assert_eq!(issue(&store, coupon).await, IssueOutcome::Issued);
    }
    store
        .grant(GrantId::new(), coupon(&newer, UserId::new()))
        .await
        .expect("grant")
        .expect("the campaign exists");

    let all = store.issues_per_campaign(10).await.expect("read");
    let first_two = store.issues_per_campaign(2).await.expect("read");

    let row = |c: &Campaign, issued, granted, remaining| CampaignIssues {
        campaign_id: c.id,
        name: c.name.as_str().to_owned(),
        total_quantity: c.total_quantity,
        issued,
        granted,
        remaining,
    };
    assert_eq!(
        all,
        [
            row(&untouched, 0, 0, 3),
            row(&newer, 1, 1, 4),
            row(&older, 2, 0, 8)
        ]
    );
    assert_eq!(first_two, all[..2]);
}

#[tokio::test]
async fn a_grant_is_one_coupon_however_often_it_is_written() {
    let (_test, _db, store) = open().await;
    let drop = created(&store, campaign(10, 1)).await;
    let (user, grant) = (UserId::new(), GrantId::new());
    let first = coupon(&drop, user);

    let granted = store
        .grant(grant, first.clone())
        .await
        .expect("grant")
        .expect("the campaign exists");
    let again = store
        .grant(grant, coupon(&drop, user))
        .await
        .expect("grant again")
        .expect("the campaign exists");

    assert_eq!(granted, first);
    assert_eq!(again, first, "the second write returns the first coupon");
    assert_eq!(
        store.coupons_of(user, page(10)).await.expect("list"),
        [first]
    );
    assert_eq!(
        store
            .grant(GrantId::new(), coupon(&campaign(10, 1), user))
            .await
            .expect("grant"),
        None,
        "no coupon for an unknown campaign"
    );
}

#[tokio::test]
async fn grants_use_neither_the_public_stock_nor_the_per_user_limit() {
    let (_test, _db, store) = open().await;
    let drop = created(&store, campaign(1, 1)).await;
    let (ann, bob) = (UserId::new(), UserId::new());

    store
        .grant(GrantId::new(), coupon(&drop, ann))
        .await
        .expect("grant")
        .expect("granted");
    assert_eq!(
        issue(&store, coupon(&drop, ann)).await,
        IssueOutcome::Issued,
        "the grant did not use up ann's one public coupon"
    );
    store
        .grant(GrantId::new(), coupon(&drop, bob))
        .await
        .expect("grant")
        .expect("granted on a sold-out drop");

    let stock = store.stock(drop.id).await.expect("stock").expect("exists");
    assert_eq!(stock.issued(), 1);
    assert_eq!(stock.by_user, HashMap::from([(ann, 1)]));
}

#[tokio::test]
async fn the_stock_counts_each_users_public_coupons() {
    let (_test, _db, store) = open().await;
    let drop = created(&store, campaign(50, 3)).await;
    let other = created(&store, campaign(50, 3)).await;
    let (ann, bob) = (UserId::new(), UserId::new());
    for (campaign, user) in [(&drop, ann), (&drop, ann), (&drop, bob), (&other, bob)] {
        assert_eq!(
            issue(&store, coupon(campaign, user)).await,
            IssueOutcome::Issued
        );
    }

    assert_eq!(
        store.stock(drop.id).await.expect("stock"),
        Some(CampaignStock {
            total_quantity: 50,
            per_user_limit: 3,
            by_user: HashMap::from([(ann, 2), (bob, 1)]),
        })
    );
    assert_eq!(
        store.stock(CouponCampaignId::new()).await.expect("stock"),
        None
    );
}

#[tokio::test]
async fn a_users_coupons_are_their_own_in_id_order_a_page_at_a_time() {
    let (_test, _db, store) = open().await;
    let campaigns = [
        created(&store, campaign(10, 1)).await,
        created(&store, campaign(10, 1)).await,
        created(&store, campaign(10, 1)).await,
    ];
    let (ann, bob) = (UserId::new(), UserId::new());
    let mut anns = Vec::new();
    for c in &campaigns {
        let mine = coupon(c, ann);
        anns.push(mine.id);
        assert_eq!(issue(&store, mine).await, IssueOutcome::Issued);
        assert_eq!(issue(&store, coupon(c, bob)).await, IssueOutcome::Issued);
    }
    let ids = |coupons: Vec<Coupon>| coupons.into_iter().map(|c| c.id).collect::<Vec<CouponId>>();

    assert_eq!(
        ids(store.coupons_of(ann, page(10)).await.expect("list")),
        anns
    );
    let after_first = PageRequest {
        limit: 1,
        after: Some(anns[0].0),
    };
    assert_eq!(
        ids(store.coupons_of(ann, after_first).await.expect("list")),
        anns[1..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_racing_for_ordinals_gets_exactly_the_limit() {
    let (_test, db, store) = open().await;
    let store = Arc::new(store);
    let drop = created(&store, campaign(1_000, 5)).await;
    let user = UserId::new();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, coupon) = (Arc::clone(&store), coupon(&drop, user));
            tokio::spawn(async move { issue(&store, coupon).await })
        })
        .collect();
    let mut outcomes = HashMap::new();
    for task in tasks {
        let outcome = task.await.expect("ran");
        *outcomes.entry(outcome).or_insert(0) += 1;
    }

    assert_eq!(
        outcomes,
        HashMap::from([(IssueOutcome::Issued, 5), (IssueOutcome::LimitReached, 15)])
    );
    assert_eq!(ordinals(&db, drop.id, user).await, [1, 2, 3, 4, 5]);
}
