//! Paying orders through the fake provider over HTTP, and the tickets it
//! issues: approved → `PAID` with one ticket per unit, the coupon `USED`;
//! declined → 402, `FAILED`, stock and coupon back; unknown → 202 and
//! settled by reconciliation; refusals that change nothing.

use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Session, TestApp, expect_problem, from_now, text};
use crate::reservations::{held, product, remaining};

async fn fake_app() -> TestApp {
    TestApp::spawn_with(|s| s.fake_payments = server::config::Switch::On).await
}

async fn coupon(app: &TestApp, who: &Session) -> String {
    let admin = app.admin().await;
    let campaign = app
        .created(
            "/api/v1/coupon-campaigns",
            &admin,
            json!({
                "name": "Winter drop",
                "discount": {"kind": "FIXED", "value": 1000},
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

/// An order of `quantity` units of `product` for `who`, with `code`.
async fn order(
    app: &TestApp,
    who: &Session,
    product: &str,
    quantity: i64,
    code: Option<&str>,
) -> Value {
    let hold = held(app, who, product, quantity).await;
    app.created(
        "/api/v1/orders",
        who,
        json!({"reservation_ids": [hold["id"]], "coupon_code": code}),
    )
    .await
}

async fn pay(app: &TestApp, who: &Session, order: &Value, body: Value) -> reqwest::Response {
    app.post(
        &format!("/api/v1/orders/{}/payments", text(&order["id"])),
        Some(&who.access_token),
        body,
    )
    .await
}

async fn coupon_status(app: &TestApp, who: &Session, code: &str) -> Value {
    let mine: Value = app
        .get("/api/v1/coupons/mine", Some(&who.access_token))
        .await
        .json()
        .await
        .expect("coupons");
    mine["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["code"] == code))
        .map(|c| c["status"].clone())
        .expect("the coupon")
}

#[tokio::test]
async fn an_approved_payment_pays_with_one_ticket_per_unit_and_uses_the_coupon() {
    let app = fake_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let code = coupon(&app, &ann).await;
    let placed = order(&app, &ann, &gala, 3, Some(&code)).await;
    assert_eq!(placed["total"], 44_000);

    let response = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    assert_eq!(response.status(), 200);
    let paid: Value = response.json().await.expect("an order");
    assert_eq!(paid["status"], "PAID");
    assert_eq!(paid["payment"]["status"], "DONE");
    assert_eq!(paid["payment"]["provider"], "fake");
    assert!(paid["payment"]["approved_at"].is_string());
    let tickets = paid["tickets"].as_array().expect("tickets").clone();
    assert_eq!(tickets.len(), 3);
    let mut codes: Vec<String> = tickets.iter().map(|t| text(&t["code"])).collect();
    for c in &codes {
        assert_eq!(c.len(), 32, "128 random bits in hex");
    }
    codes.dedup();
    assert_eq!(codes.len(), 3);
    assert!(tickets.iter().all(|t| t["status"] == "VALID"));
    assert_eq!(coupon_status(&app, &ann, &code).await, "USED");
    // Sold units stay taken.
    assert_eq!(remaining(&app, &gala).await, 2);
    let reservation_id = text(&paid["items"][0]["reservation_id"]);
    let reservation: Value = app
        .get(
            &format!("/api/v1/reservations/{reservation_id}"),
            Some(&ann.access_token),
        )
        .await
        .json()
        .await
        .expect("a reservation");
    assert_eq!(reservation["status"], "SOLD");
    let mine: Value = app
        .get("/api/v1/tickets/mine", Some(&ann.access_token))
        .await
        .json()
        .await
        .expect("tickets");
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(3));
    let bob = app.new_user().await;
    let bobs: Value = app
        .get("/api/v1/tickets/mine", Some(&bob.access_token))
        .await
        .json()
        .await
        .expect("tickets");
    assert_eq!(bobs["items"], json!([]));
    expect_problem(
        app.get("/api/v1/tickets/mine", None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    // Paid once; a second payment is refused.
    let again = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    expect_problem(again, 409, "ORDER_NOT_PAYABLE").await;
    app.stop().await;
}

#[tokio::test]
async fn a_declined_payment_fails_the_order_and_gives_stock_and_coupon_back() {
    let app = fake_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let code = coupon(&app, &ann).await;
    let placed = order(&app, &ann, &gala, 2, Some(&code)).await;
    assert_eq!(remaining(&app, &gala).await, 3);

    let response = pay(
        &app,
        &ann,
        &placed,
        json!({"provider": "fake", "outcome": "DECLINE"}),
    )
    .await;
    let problem = expect_problem(response, 402, "PAYMENT_DECLINED").await;
    assert_eq!(problem["provider_code"], "FAKE_DECLINED");
    let failed: Value = app
        .get(
            &format!("/api/v1/orders/{}", text(&placed["id"])),
            Some(&ann.access_token),
        )
        .await
        .json()
        .await
        .expect("an order");
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["payment"]["status"], "DECLINED");
    assert_eq!(failed["payment"]["code"], "FAKE_DECLINED");
    assert_eq!(failed["tickets"], json!([]));
    assert_eq!(remaining(&app, &gala).await, 5);
    assert_eq!(coupon_status(&app, &ann, &code).await, "ISSUED");
    // The coupon works on a new order.
    let next = order(&app, &ann, &gala, 1, Some(&code)).await;
    assert_eq!(next["discount"], 1000);
    let again = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    expect_problem(again, 409, "ORDER_NOT_PAYABLE").await;
    app.stop().await;
}

#[tokio::test]
async fn a_lost_answer_is_202_and_reconciliation_settles_it_paid() {
    let app = fake_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 2, None).await;
    let response = pay(
        &app,
        &ann,
        &placed,
        json!({"provider": "fake", "outcome": "UNKNOWN"}),
    )
    .await;
    assert_eq!(response.status(), 202);
    let pending: Value = response.json().await.expect("an order");
    assert_eq!(pending["status"], "PENDING_PAYMENT");
    assert_eq!(pending["payment"]["status"], "UNKNOWN");
    // No second charge while the first is unknown.
    let again = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    expect_problem(again, 409, "ORDER_NOT_PAYABLE").await;
    let path = format!("/api/v1/orders/{}", text(&placed["id"]));
    let mut settled = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        settled = app
            .get(&path, Some(&ann.access_token))
            .await
            .json()
            .await
            .expect("an order");
        if settled["status"] == "PAID" {
            break;
        }
    }
    assert_eq!(settled["status"], "PAID");
    assert_eq!(settled["tickets"].as_array().map(Vec::len), Some(2));
    assert_eq!(remaining(&app, &gala).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn payments_refused_change_nothing() {
    let app = fake_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 1, None).await;
    let bob = app.new_user().await;
    expect_problem(
        pay(&app, &bob, &placed, json!({"provider": "fake"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    for body in [
        json!({"provider": "fake", "outcome": "MAYBE"}),
        json!({"provider": "paypal"}),
        json!({"provider": "toss", "payment_key": "k", "amount": 15000}),
    ] {
        expect_problem(
            pay(&app, &ann, &placed, body).await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
    }
    let unknown = json!({"id": uuid::Uuid::now_v7()});
    expect_problem(
        pay(&app, &ann, &unknown, json!({"provider": "fake"})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let anonymous = app
        .post(
            &format!("/api/v1/orders/{}/payments", text(&placed["id"])),
            None,
            json!({"provider": "fake"}),
        )
        .await;
    expect_problem(anonymous, 401, "UNAUTHORIZED").await;
    let read: Value = app
        .get(
            &format!("/api/v1/orders/{}", text(&placed["id"])),
            Some(&ann.access_token),
        )
        .await
        .json()
        .await
        .expect("an order");
    assert_eq!(read["status"], "PENDING_PAYMENT");
    assert_eq!(read["payment"]["status"], "NONE");
    app.stop().await;
}

#[tokio::test]
async fn without_fake_payments_a_fake_payment_is_refused() {
    let app = TestApp::spawn().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 1, None).await;
    let refused = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    let problem = expect_problem(refused, 422, "VALIDATION_FAILED").await;
    assert!(problem.to_string().contains("provider"), "{problem}");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_order_is_not_payable() {
    let app = TestApp::spawn_with(|s| {
        s.fake_payments = server::config::Switch::On;
        s.payment_window_seconds = 1;
    })
    .await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 1, None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let late = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    expect_problem(late, 409, "ORDER_NOT_PAYABLE").await;
    app.stop().await;
}
