//! A grant committed just before the process dies (before the relay handed
//! its command on) is still delivered once the server is back.

use std::time::Instant;

use kernel::auth::{Principal, Role, Roles};
use kernel::testing::TestDatabase;
use rewards::model::{EventId, EventRewardId, RequestStatus};
use serde_json::{Value, json};
use server::{Modules, Settings};
use time::Duration;

use crate::helpers::{TestApp, from_now, live_event, text};

#[tokio::test]
async fn a_coupon_grant_committed_before_a_crash_is_delivered_after_the_restart() {
    let db = TestDatabase::create().await;
    let url = db.url().to_owned();
    let on_this_db = |s: &mut Settings| s.database_url.clone_from(&url);

    // The offer, set up over HTTP on a first run of the server.
    let app = TestApp::spawn_with(on_this_db).await;
    let admin = app.admin().await;
    let user = app.new_user().await;
    let campaign = app
        .created(
            "/api/v1/coupon-campaigns",
            &admin,
            json!({"name": "Thanks", "discount": {"kind": "PERCENT", "value": 10},
                "total_quantity": 1, "issue_starts_at": from_now(-Duration::days(1)),
                "issue_ends_at": from_now(Duration::days(1)),
                "valid_until": from_now(Duration::days(30))}),
        )
        .await;
    let event = app.created("/api/v1/events", &admin, live_event()).await;
    let reward = app
        .created(
            "/api/v1/rewards",
            &admin,
            json!({"name": "Coupon", "type": "COUPON", "coupon_campaign_id": campaign["id"]}),
        )
        .await;
    let offered = app
        .created(
            &format!("/api/v1/events/{}/rewards", text(&event["id"])),
            &admin,
            json!({"reward_id": reward["id"], "auto_resolve": true}),
        )
        .await;
    app.stop().await;

    // The approval commits, then the process "dies": no relay ever ran.
    let settings = Settings {
        database_url: url.clone(),
        ..Settings::default()
    };
    let modules = Modules::start(&settings).await.expect("modules start");
    let caller = Principal {
        user_id: kernel::UserId(uuid::Uuid::parse_str(&user.user_id).expect("a uuid")),
        session_id: uuid::Uuid::now_v7(),
        roles: Roles::of(&[Role::User]),
    };
    let id = |v: &Value| uuid::Uuid::parse_str(&text(v)).expect("a uuid");
    let granted = modules
        .rewards
        .request_reward(
            &caller,
            EventId(id(&event["id"])),
            EventRewardId(id(&offered["id"])),
            None,
        )
        .await
        .expect("a request");
    assert_eq!(granted.status, RequestStatus::Approved);
    modules.db.close().await;
    drop(modules);

    // Back up: the relay finds the command and commerce issues the coupon.
    let app = TestApp::spawn_with(on_this_db).await;
    let user = app.log_in(&user.email, crate::helpers::PASSWORD).await;
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    let coupons = loop {
        let page: Value = app
            .get("/api/v1/coupons/mine", Some(&user.access_token))
            .await
            .json()
            .await
            .expect("a page");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() || Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(coupons.len(), 1, "one coupon, delivered after the restart");
    assert_eq!(coupons[0]["campaign_id"], campaign["id"]);
}
