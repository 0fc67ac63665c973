//! Coupon campaigns and issuance over HTTP: every endpoint's success and
//! documented errors, the role rules, the issue window, sold-out and
//! per-user refusals, and `Idempotency-Key` on issue.

use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Session, TestApp, expect_problem, from_now, live_event, text};

/// A campaign whose issue window is open for the next hour.
fn open_campaign(total_quantity: u32, per_user_limit: u32) -> Value {
    json!({
        "name": "Winter drop",
        "discount": {"kind": "PERCENT", "value": 10},
        "total_quantity": total_quantity,
        "per_user_limit": per_user_limit,
        "issue_starts_at": from_now(-Duration::hours(1)),
        "issue_ends_at": from_now(Duration::hours(1)),
        "valid_until": from_now(Duration::days(30)),
    })
}

async fn create(app: &TestApp, staff: &Session, body: Value) -> Value {
    app.created("/api/v1/coupon-campaigns", staff, body).await
}

fn issue_path(campaign: &Value) -> String {
    format!("/api/v1/coupon-campaigns/{}/issue", text(&campaign["id"]))
}

async fn issue(app: &TestApp, campaign: &Value, who: &Session) -> reqwest::Response {
    app.post(&issue_path(campaign), Some(&who.access_token), json!({}))
        .await
}

async fn issue_with_key(
    app: &TestApp,
    campaign: &Value,
    who: &Session,
    key: &str,
) -> reqwest::Response {
    app.http
        .post(app.url(&issue_path(campaign)))
        .bearer_auth(&who.access_token)
        .header("Idempotency-Key", key)
        .send()
        .await
        .expect("the server answers")
}

async fn remaining(app: &TestApp, campaign: &Value) -> Value {
    let path = format!("/api/v1/coupon-campaigns/{}", text(&campaign["id"]));
    let response = app.get(&path, None).await;
    assert_eq!(response.status(), 200);
    let shown: Value = response.json().await.expect("a campaign");
    shown["remaining"].clone()
}

async fn my_coupons(app: &TestApp, who: &Session) -> Vec<Value> {
    let response = app
        .get("/api/v1/coupons/mine", Some(&who.access_token))
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("a page");
    page["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn staff_create_campaigns_that_anyone_can_read_with_their_remaining() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let body = json!({
        "name": "  Spring sale ",
        "discount": {"kind": "FIXED", "value": 5000},
        "total_quantity": 100,
        "issue_starts_at": "2026-12-01T00:00:00Z",
        "issue_ends_at": "2026-12-02T00:00:00Z",
        "valid_until": "2026-12-31T00:00:00Z",
    });

    let created = create(&app, &operator, body).await;

    assert_eq!(created["name"], "Spring sale");
    assert_eq!(
        created["discount"],
        json!({"kind": "FIXED", "value": 5000, "currency": "KRW"})
    );
    assert_eq!(created["total_quantity"], 100);
    assert_eq!(created["remaining"], 100);
    assert_eq!(created["per_user_limit"], 1, "the default");
    assert_eq!(created["issue_starts_at"], "2026-12-01T00:00:00Z");
    assert_eq!(created["issue_ends_at"], "2026-12-02T00:00:00Z");
    assert_eq!(created["valid_until"], "2026-12-31T00:00:00Z");
    let path = format!("/api/v1/coupon-campaigns/{}", text(&created["id"]));
    let read: Value = app.get(&path, None).await.json().await.expect("json");
    assert_eq!(read, created);
    let listed: Value = app
        .get("/api/v1/coupon-campaigns", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"], json!([created]));
    assert_eq!(listed["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_campaign_with_invalid_fields_is_refused_naming_each() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());
    let mut body = open_campaign(0, 1);
    body["name"] = json!(" ");
    body["discount"] = json!({"kind": "PERCENT", "value": 120});
    body["per_user_limit"] = json!(0);
    body["valid_until"] = body["issue_starts_at"].clone();

    let problem = expect_problem(
        app.post("/api/v1/coupon-campaigns", token, body).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;

    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "discount.value",
            "total_quantity",
            "per_user_limit",
            "valid_until"
        ]
    );
    let mut backwards = open_campaign(10, 1);
    backwards["issue_ends_at"] = backwards["issue_starts_at"].clone();
    let problem = expect_problem(
        app.post("/api/v1/coupon-campaigns", token, backwards).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "issue_ends_at");
    let mut wrong_type = open_campaign(10, 1);
    wrong_type["total_quantity"] = json!("ten");
    expect_problem(
        app.post("/api/v1/coupon-campaigns", token, wrong_type)
            .await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn only_staff_create_campaigns_and_only_the_signed_in_get_coupons() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let campaign = create(&app, &admin, open_campaign(10, 1)).await;

    for roles in [&["USER"][..], &["USER", "AUDITOR"][..]] {
        let who = app.user_with_roles(roles).await;
        let response = app
            .post(
                "/api/v1/coupon-campaigns",
                Some(&who.access_token),
                open_campaign(10, 1),
            )
            .await;
        expect_problem(response, 403, "FORBIDDEN").await;
    }
    let anonymous = [
        app.post("/api/v1/coupon-campaigns", None, open_campaign(10, 1))
            .await,
        app.post(&issue_path(&campaign), None, json!({})).await,
        app.get("/api/v1/coupons/mine", None).await,
        app.post(&issue_path(&campaign), Some("forged"), json!({}))
            .await,
    ];
    for response in anonymous {
        expect_problem(response, 401, "UNAUTHORIZED").await;
    }
    assert_eq!(
        app.get("/api/v1/coupon-campaigns", None).await.status(),
        200
    );
    assert_eq!(remaining(&app, &campaign).await, 10, "nothing was issued");
}

#[tokio::test]
async fn a_signed_in_user_gets_a_coupon_until_the_limit_then_the_stock_runs_out() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let campaign = create(&app, &admin, open_campaign(2, 1)).await;
    let (ann, bob, cat) = (
        app.new_user().await,
        app.new_user().await,
        app.new_user().await,
    );

    let response = issue(&app, &campaign, &ann).await;
    assert_eq!(response.status(), 201);
    let coupon: Value = response.json().await.expect("a coupon");
    expect_problem(issue(&app, &campaign, &ann).await, 409, "LIMIT_REACHED").await;
    assert_eq!(issue(&app, &campaign, &bob).await.status(), 201);
    expect_problem(issue(&app, &campaign, &cat).await, 409, "SOLD_OUT").await;

    assert_eq!(coupon["campaign_id"], campaign["id"]);
    assert_eq!(coupon["user_id"], ann.user_id.as_str());
    assert_eq!(coupon["status"], "ISSUED");
    assert_eq!(coupon["expires_at"], campaign["valid_until"]);
    let code = text(&coupon["code"]);
    assert_eq!(code.len(), 23, "{code}");
    assert!(
        code.split('-').all(|g| g.len() == 5
            && g.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())),
        "{code}"
    );
    assert_eq!(remaining(&app, &campaign).await, 0);
    assert_eq!(my_coupons(&app, &ann).await, [coupon]);
    assert!(my_coupons(&app, &cat).await.is_empty());
}

#[tokio::test]
async fn readers_see_the_coupons_handed_out_per_campaign_and_no_one_else_does() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let campaign = create(&app, &admin, open_campaign(5, 1)).await;
    let (ann, bob) = (app.new_user().await, app.new_user().await);
    assert_eq!(issue(&app, &campaign, &ann).await.status(), 201);
    assert_eq!(issue(&app, &campaign, &bob).await.status(), 201);
    let path = "/api/v1/analytics/commerce";

    for reader in [app.user_with_roles(&["AUDITOR"]).await, admin] {
        let response = app.get(path, Some(&reader.access_token)).await;
        assert_eq!(response.status(), 200);
        let analytics: Value = response.json().await.expect("json");
        assert_eq!(
            analytics["coupons_per_campaign"],
            json!([{
                "campaign_id": campaign["id"],
                "name": "Winter drop",
                "total_quantity": 5,
                "issued": 2,
                "granted": 0,
                "remaining": 3,
            }])
        );
    }
    expect_problem(
        app.get(path, Some(&ann.access_token)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_problem(app.get(path, None).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn coupons_are_not_issued_before_or_after_the_window() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.new_user().await;
    let mut upcoming = open_campaign(10, 1);
    upcoming["issue_starts_at"] = json!(from_now(Duration::hours(1)));
    upcoming["issue_ends_at"] = json!(from_now(Duration::hours(2)));
    let mut over = open_campaign(10, 1);
    over["issue_starts_at"] = json!(from_now(-Duration::hours(2)));
    over["issue_ends_at"] = json!(from_now(-Duration::hours(1)));

    for body in [upcoming, over] {
        let campaign = create(&app, &admin, body).await;
        let problem = expect_problem(issue(&app, &campaign, &user).await, 409, "NOT_OPEN").await;
        assert_eq!(problem["issue_starts_at"], campaign["issue_starts_at"]);
        assert_eq!(remaining(&app, &campaign).await, 10);
    }
    assert!(my_coupons(&app, &user).await.is_empty());
}

#[tokio::test]
async fn an_unknown_or_malformed_campaign_id_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let unknown = uuid::Uuid::now_v7();

    expect_problem(
        app.get(&format!("/api/v1/coupon-campaigns/{unknown}"), None)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        app.post(
            &format!("/api/v1/coupon-campaigns/{unknown}/issue"),
            Some(&user.access_token),
            json!({}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        app.get("/api/v1/coupon-campaigns/not-a-uuid", None).await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn an_anonymous_caller_with_a_malformed_idempotency_key_is_refused_as_anonymous() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let campaign = create(&app, &admin, open_campaign(10, 3)).await;
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let response = app
            .http
            .post(app.url(&issue_path(&campaign)))
            .header("Idempotency-Key", key)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 401, "key of {} characters", key.len());
    }
    // Signed in, the same key is the caller's mistake to hear about.
    let user = app.new_user().await;
    expect_problem(
        issue_with_key(&app, &campaign, &user, "").await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
}

/// What `kill -9` after a keyed issue's commit leaves on disk: the coupon
/// written, its key claimed long ago with no answer saved (the same as when
/// saving the answer failed).
async fn forget_the_answer(app: &TestApp, key: &str) {
    let db = app.database().await;
    let long_ago = kernel::Timestamp::from(time::OffsetDateTime::now_utc() - Duration::hours(1));
    let key = key.to_owned();
    let forgotten: Result<u64, sqlx::Error> = kernel::write_tx!(&db, |conn| {
        sqlx::query(
            "update idempotency_keys set state = 'IN_PROGRESS', response_status = null, \
             content_type = null, location = null, body = null, created_at = $1 \
             where idem_key = $2",
        )
        .bind(long_ago)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
    });
    assert_eq!(forgotten.expect("the key's record is rewound"), 1);
}

#[tokio::test]
async fn a_retry_after_a_crash_between_the_coupon_and_its_saved_answer_gets_that_coupon() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // A firehose (a second coupon would be issued) and a drop (the retry
    // would be refused as over the limit).
    for (per_user, key) in [(10, "firehose-1"), (1, "drop-1")] {
        let campaign = create(&app, &admin, open_campaign(10, per_user)).await;
        let user = app.new_user().await;
        let first = issue_with_key(&app, &campaign, &user, key).await;
        assert_eq!(first.status(), 201);
        let first: Value = first.json().await.expect("a coupon");
        forget_the_answer(&app, key).await;

        let retry = issue_with_key(&app, &campaign, &user, key).await;

        assert_eq!(retry.status(), 201, "per-user limit {per_user}");
        let retried: Value = retry.json().await.expect("a coupon");
        assert_eq!(retried["id"], first["id"], "the first request's coupon");
        assert_eq!(my_coupons(&app, &user).await.len(), 1, "never a second one");
        assert_eq!(remaining(&app, &campaign).await, 9);
        let replay = issue_with_key(&app, &campaign, &user, key).await;
        assert_eq!(replay.status(), 201);
        let replayed: Value = replay.json().await.expect("a coupon");
        assert_eq!(replayed["id"], first["id"], "and its answer is kept now");
    }
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_same_coupon() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let campaign = create(&app, &admin, open_campaign(10, 3)).await;
    let user = app.new_user().await;

    let first = issue_with_key(&app, &campaign, &user, "tap-1").await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("a coupon");
    let replay = issue_with_key(&app, &campaign, &user, "tap-1").await;
    assert_eq!(replay.status(), 201);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replayed: Value = replay.json().await.expect("a coupon");
    assert_eq!(replayed, first);
    assert_eq!(my_coupons(&app, &user).await, std::slice::from_ref(&first));
    assert_eq!(remaining(&app, &campaign).await, 9);

    let other = issue_with_key(&app, &campaign, &user, "tap-2").await;
    assert_eq!(other.status(), 201);
    let other: Value = other.json().await.expect("a coupon");
    assert_ne!(other["id"], first["id"]);
    assert_eq!(remaining(&app, &campaign).await, 8);
}

#[tokio::test]
async fn campaigns_and_coupons_are_listed_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.new_user().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let campaign = create(&app, &admin, open_campaign(5, 1)).await;
        assert_eq!(issue(&app, &campaign, &user).await.status(), 201);
        ids.push(campaign["id"].clone());
    }

    let first: Value = app
        .get("/api/v1/coupon-campaigns?limit=2", None)
        .await
        .json()
        .await
        .expect("json");
    let cursor = text(&first["next_cursor"]);
    let second: Value = app
        .get(
            &format!("/api/v1/coupon-campaigns?limit=2&cursor={cursor}"),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let seen: Vec<Value> = first["items"]
        .as_array()
        .into_iter()
        .chain(second["items"].as_array())
        .flatten()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(seen, ids);
    assert!(
        first["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|c| c["remaining"] == 4)
    );

    let mine: Value = app
        .get("/api/v1/coupons/mine?limit=2", Some(&user.access_token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(2));
    let foreign = format!(
        "/api/v1/coupons/mine?cursor={}",
        text(&first["next_cursor"])
    );
    expect_problem(
        app.get(&foreign, Some(&user.access_token)).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_problem(
        app.get("/api/v1/coupon-campaigns?limit=0", None).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
}

#[tokio::test]
async fn every_coupon_route_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.openapi().await;

    for (path, method) in [
        ("/api/v1/coupon-campaigns", "post"),
        ("/api/v1/coupon-campaigns", "get"),
        ("/api/v1/coupon-campaigns/{id}", "get"),
        ("/api/v1/coupon-campaigns/{id}/issue", "post"),
        ("/api/v1/coupons/mine", "get"),
    ] {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["tags"], json!(["coupons"]), "{method} {path}");
    }
    assert_eq!(
        doc["paths"]["/api/v1/analytics/commerce"]["get"]["tags"],
        json!(["analytics"])
    );
    for schema in [
        "CouponCampaign",
        "Coupon",
        "Discount",
        "NewCampaign",
        "CommerceAnalytics",
        "CampaignIssues",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn an_approved_coupon_reward_brings_its_coupon_over_the_bus_even_when_sold_out() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let campaign = create(&app, &admin, open_campaign(1, 1)).await;
    assert_eq!(
        issue(&app, &campaign, &app.new_user().await).await.status(),
        201
    );
    let event = app.created("/api/v1/events", &admin, live_event()).await;
    let reward = app
        .created(
            "/api/v1/rewards",
            &admin,
            json!({"name": "A coupon", "type": "COUPON", "coupon_campaign_id": campaign["id"]}),
        )
        .await;
    let rewards_path = format!("/api/v1/events/{}/rewards", text(&event["id"]));
    let offered = app
        .created(
            &rewards_path,
            &admin,
            json!({"reward_id": reward["id"], "auto_resolve": true}),
        )
        .await;
    let winner = app.new_user().await;

    let requested: Value = app
        .post(
            &format!("{rewards_path}/{}/requests", text(&offered["id"])),
            Some(&winner.access_token),
            json!({}),
        )
        .await
        .json()
        .await
        .expect("a request");
    assert_eq!(requested["status"], "APPROVED");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let coupons = loop {
        let coupons = my_coupons(&app, &winner).await;
        if !coupons.is_empty() || std::time::Instant::now() > deadline {
            break coupons;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        coupons.len(),
        1,
        "the granted coupon arrived within a second"
    );
    assert_eq!(coupons[0]["campaign_id"], campaign["id"]);
    assert_eq!(
        remaining(&app, &campaign).await,
        0,
        "grants leave the public stock alone"
    );
}
