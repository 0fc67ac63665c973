//! Orders over HTTP: placed from the caller's holds with an optional coupon
//! (PERCENT rounds down, FIXED never below 0), holds extended to the payment
//! window, reads by the owner or readers, filters, refusals that change
//! nothing, and an unpaid order that expires with its stock and coupon back.

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Session, TestApp, expect_problem, from_now, text};
use crate::reservations::{held, product, product_body, remaining};

/// A coupon of a campaign with `discount`, issued to `who`; its code.
async fn coupon(app: &TestApp, who: &Session, discount: Value) -> String {
    let admin = app.admin().await;
    let campaign = app
        .created(
            "/api/v1/coupon-campaigns",
            &admin,
            json!({
                "name": "Winter drop",
                "discount": discount,
                "total_quantity": 10,
                "per_user_limit": 1,
                "issue_starts_at": from_now(-Duration::hours(1)),
                "issue_ends_at": from_now(Duration::hours(1)),
                "valid_until": from_now(Duration::days(30)),
            }),
        )
        .await;
    let coupon = app
        .created(
            &format!("/api/v1/coupon-campaigns/{}/issue", text(&campaign["id"])),
            who,
            json!({}),
        )
        .await;
    text(&coupon["code"])
}

async fn place(app: &TestApp, who: &Session, body: Value) -> reqwest::Response {
    app.post("/api/v1/orders", Some(&who.access_token), body)
        .await
}

pub(crate) async fn read(app: &TestApp, who: &Session, path: &str) -> Value {
    let response = app.get(path, Some(&who.access_token)).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("a body")
}

#[tokio::test]
async fn an_order_gathers_holds_with_a_percent_coupon_rounded_down() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut body = product_body(json!(10), Value::Null, 600);
    body["price"] = json!(333);
    let cheap = app.created("/api/v1/products", &admin, body).await;
    let gala = product(&app, json!(10), Value::Null).await;
    let ann = app.new_user().await;
    let first = held(&app, &ann, &text(&cheap["id"]), 3).await;
    let second = held(&app, &ann, &gala, 1).await;
    let code = coupon(&app, &ann, json!({"kind": "PERCENT", "value": 15})).await;

    let response = place(
        &app,
        &ann,
        json!({"reservation_ids": [first["id"], second["id"]], "coupon_code": code}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("an order");
    assert_eq!(order["status"], "PENDING_PAYMENT");
    // 3 × 333 + 15000 = 15999; 15 % is 2399.85 → 2399.
    assert_eq!(order["subtotal"], 15_999);
    assert_eq!(order["discount"], 2_399);
    assert_eq!(order["total"], 13_600);
    assert_eq!(order["currency"], "KRW");
    assert_eq!(order["coupon_code"], code.as_str());
    assert_eq!(order["payment"]["status"], "NONE");
    assert_eq!(order["items"].as_array().map(Vec::len), Some(2));

    // The holds now last until the payment window ends, and no longer.
    let path = format!("/api/v1/reservations/{}", text(&first["id"]));
    let reservation = read(&app, &ann, &path).await;
    assert_eq!(reservation["status"], "ORDERED");
    assert_eq!(reservation["order_id"], order["id"]);
    assert_eq!(reservation["expires_at"], order["expires_at"]);
    let window = kernel::Timestamp::parse(order["expires_at"].as_str().expect("a time"))
        .expect("a timestamp")
        - kernel::Timestamp::parse(order["created_at"].as_str().expect("a time"))
            .expect("a timestamp");
    assert_eq!(window, Duration::seconds(2400));

    // Ordered holds cannot be ordered again, nor released.
    let again = place(&app, &ann, json!({"reservation_ids": [first["id"]]})).await;
    expect_problem(again, 409, "RESERVATION_NOT_HELD").await;
    let release = app
        .request(Method::DELETE, &path, Some(&ann.access_token), None)
        .await;
    expect_problem(release, 409, "RESERVATION_NOT_HELD").await;
    // The coupon is set aside for this order.
    let third = held(&app, &ann, &gala, 1).await;
    let reuse = place(
        &app,
        &ann,
        json!({"reservation_ids": [third["id"]], "coupon_code": code}),
    )
    .await;
    expect_problem(reuse, 409, "COUPON_INVALID").await;

    let path = format!("/api/v1/orders/{}", text(&order["id"]));
    assert_eq!(read(&app, &ann, &path).await["total"], 13_600);
    let mine = read(&app, &ann, "/api/v1/orders/mine").await;
    assert_eq!(mine["items"][0]["id"], order["id"]);
    app.stop().await;
}

#[tokio::test]
async fn a_fixed_coupon_never_takes_the_total_below_zero() {
    let app = TestApp::spawn().await;
    let gala = product(&app, json!(10), Value::Null).await;
    let ann = app.new_user().await;
    let hold = held(&app, &ann, &gala, 1).await;
    let code = coupon(&app, &ann, json!({"kind": "FIXED", "value": 50_000})).await;
    // Typed as a person may: lower case, without the hyphens.
    let typed = code.replace('-', "").to_lowercase();
    let response = place(
        &app,
        &ann,
        json!({"reservation_ids": [hold["id"]], "coupon_code": typed}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("an order");
    assert_eq!(order["coupon_code"], code.as_str());
    assert_eq!(
        (&order["subtotal"], &order["discount"], &order["total"]),
        (&json!(15_000), &json!(15_000), &json!(0))
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_orders_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let gala = product(&app, json!(10), Value::Null).await;
    let ann = app.new_user().await;
    let bob = app.new_user().await;
    let anns = held(&app, &ann, &gala, 2).await;
    let bobs = held(&app, &bob, &gala, 1).await;
    let bobs_code = coupon(&app, &bob, json!({"kind": "PERCENT", "value": 10})).await;

    let foreign = place(&app, &ann, json!({"reservation_ids": [bobs["id"]]})).await;
    expect_problem(foreign, 403, "FORBIDDEN").await;
    let someone_elses_coupon = place(
        &app,
        &ann,
        json!({"reservation_ids": [anns["id"]], "coupon_code": bobs_code}),
    )
    .await;
    expect_problem(someone_elses_coupon, 409, "COUPON_INVALID").await;
    let unknown_coupon = place(
        &app,
        &ann,
        json!({"reservation_ids": [anns["id"]], "coupon_code": "NOPE-NOPE"}),
    )
    .await;
    expect_problem(unknown_coupon, 409, "COUPON_INVALID").await;
    let none = place(&app, &ann, json!({"reservation_ids": []})).await;
    expect_problem(none, 422, "VALIDATION_FAILED").await;
    let twice = place(
        &app,
        &ann,
        json!({"reservation_ids": [anns["id"], anns["id"]]}),
    )
    .await;
    expect_problem(twice, 422, "VALIDATION_FAILED").await;
    let unknown = uuid::Uuid::now_v7();
    let missing = place(&app, &ann, json!({"reservation_ids": [unknown]})).await;
    expect_problem(missing, 404, "NOT_FOUND").await;
    let malformed = place(&app, &ann, json!({"reservation_ids": ["nope"]})).await;
    assert_eq!(malformed.status().as_u16() / 100, 4);
    let anonymous = app
        .post(
            "/api/v1/orders",
            None,
            json!({"reservation_ids": [anns["id"]]}),
        )
        .await;
    expect_problem(anonymous, 401, "UNAUTHORIZED").await;

    let path = format!("/api/v1/reservations/{}", text(&anns["id"]));
    assert_eq!(read(&app, &ann, &path).await["status"], "HELD");
    assert_eq!(
        read(&app, &ann, "/api/v1/orders/mine").await["items"],
        json!([])
    );
    assert_eq!(remaining(&app, &gala).await, 7);
    app.stop().await;
}

#[tokio::test]
async fn orders_are_read_by_their_owner_and_listed_for_readers_only() {
    let app = TestApp::spawn().await;
    let gala = product(&app, json!(10), Value::Null).await;
    let ann = app.new_user().await;
    let hold = held(&app, &ann, &gala, 1).await;
    let response = place(&app, &ann, json!({"reservation_ids": [hold["id"]]})).await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("an order");
    let path = format!("/api/v1/orders/{}", text(&order["id"]));

    let bob = app.new_user().await;
    expect_problem(
        app.get(&path, Some(&bob.access_token)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let listing = app.get("/api/v1/orders", Some(&bob.access_token)).await;
    expect_problem(listing, 403, "FORBIDDEN").await;
    for roles in [&["USER", "AUDITOR"][..], &["USER", "OPERATOR"][..]] {
        let reader = app.user_with_roles(roles).await;
        assert_eq!(read(&app, &reader, &path).await["id"], order["id"]);
        let filtered = read(
            &app,
            &reader,
            &format!(
                "/api/v1/orders?status=PENDING_PAYMENT&user_id={}",
                ann.user_id
            ),
        )
        .await;
        assert_eq!(filtered["items"][0]["id"], order["id"]);
        let others = read(&app, &reader, "/api/v1/orders?status=PAID").await;
        assert_eq!(others["items"], json!([]));
        let bad = app
            .get("/api/v1/orders?status=SHIPPED", Some(&reader.access_token))
            .await;
        assert_eq!(bad.status(), 400);
    }
    for path in [path.as_str(), "/api/v1/orders", "/api/v1/orders/mine"] {
        expect_problem(app.get(path, None).await, 401, "UNAUTHORIZED").await;
    }
    let unknown = format!("/api/v1/orders/{}", uuid::Uuid::now_v7());
    expect_problem(
        app.get(&unknown, Some(&ann.access_token)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_unpaid_order_expires_with_its_stock_and_coupon_back() {
    let app = TestApp::spawn_with(|s| s.payment_window_seconds = 1).await;
    let gala = product(&app, json!(4), Value::Null).await;
    let ann = app.new_user().await;
    let hold = held(&app, &ann, &gala, 3).await;
    let code = coupon(&app, &ann, json!({"kind": "PERCENT", "value": 10})).await;
    let response = place(
        &app,
        &ann,
        json!({"reservation_ids": [hold["id"]], "coupon_code": code}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("an order");
    assert_eq!(remaining(&app, &gala).await, 1);
    let path = format!("/api/v1/orders/{}", text(&order["id"]));
    let mut status = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        status = read(&app, &ann, &path).await["status"].clone();
        if status == "EXPIRED" {
            break;
        }
    }
    assert_eq!(status, "EXPIRED");
    let reservation = read(
        &app,
        &ann,
        &format!("/api/v1/reservations/{}", text(&hold["id"])),
    )
    .await;
    assert_eq!(reservation["status"], "EXPIRED");
    assert_eq!(remaining(&app, &gala).await, 4);
    // The coupon is the owner's to use again, and the units on sale again.
    let again = held(&app, &ann, &gala, 4).await;
    let response = place(
        &app,
        &ann,
        json!({"reservation_ids": [again["id"]], "coupon_code": code}),
    )
    .await;
    assert_eq!(response.status(), 201, "the coupon came back");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_hold_cannot_be_ordered() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let gala = app
        .created(
            "/api/v1/products",
            &admin,
            product_body(json!(3), Value::Null, 1),
        )
        .await;
    let ann = app.new_user().await;
    let hold = held(&app, &ann, &text(&gala["id"]), 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let late = place(&app, &ann, json!({"reservation_ids": [hold["id"]]})).await;
    expect_problem(late, 409, "RESERVATION_EXPIRED").await;
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_key_replays_the_first_order() {
    let app = TestApp::spawn().await;
    let gala = product(&app, json!(10), Value::Null).await;
    let ann = app.new_user().await;
    let hold = held(&app, &ann, &gala, 2).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = app
            .http
            .post(app.url("/api/v1/orders"))
            .bearer_auth(&ann.access_token)
            .header("Idempotency-Key", "order-once")
            .json(&json!({"reservation_ids": [hold["id"]]}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 201);
        let order: Value = response.json().await.expect("an order");
        ids.push(order["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let mine = read(&app, &ann, "/api/v1/orders/mine").await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}
