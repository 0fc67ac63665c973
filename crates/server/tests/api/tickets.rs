//! Paying orders through the fake provider over HTTP, and the tickets it
//! issues: approved → `PAID` with one ticket per unit, the coupon `USED`;
//! declined → 402, `FAILED`, stock and coupon back; unknown → 202 and
//! settled by reconciliation; refusals that change nothing.

use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Session, TestApp, expect_problem, from_now, text};
use crate::reservations::{held, product, remaining};

pub(crate) async fn fake_app() -> TestApp {
    TestApp::spawn_with(|s| s.fake_payments = server::config::Switch::On).await
}

pub(crate) async fn coupon(app: &TestApp, who: &Session) -> String {
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
pub(crate) async fn order(
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

pub(crate) async fn pay(
    app: &TestApp,
    who: &Session,
    order: &Value,
    body: Value,
) -> reqwest::Response {
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

/// A paid order of `quantity` units for a new user; its tickets' codes.
async fn paid_codes(app: &TestApp, quantity: i64) -> Vec<String> {
    let gala = product(app, json!(100), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(app, &ann, &gala, quantity, None).await;
    let response = pay(app, &ann, &placed, json!({"provider": "fake"})).await;
    assert_eq!(response.status(), 200);
    let paid: Value = response.json().await.expect("an order");
    paid["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| text(&t["code"]))
        .collect()
}

async fn scan(app: &TestApp, who: &Session, code: &str, nonce: &str) -> reqwest::Response {
    app.post(
        "/api/v1/check-ins",
        Some(&who.access_token),
        json!({"code": code, "nonce": nonce}),
    )
    .await
}

async fn scanned(app: &TestApp, who: &Session, code: &str, nonce: &str) -> Value {
    let response = scan(app, who, code, nonce).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("a check-in")
}

#[tokio::test]
async fn a_ticket_checks_in_once_and_a_repeated_nonce_replays_the_first_answer() {
    let app = fake_app().await;
    let codes = paid_codes(&app, 1).await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;

    let first = scanned(&app, &operator, &codes[0], "scan-1").await;
    assert_eq!(first["result"], "OK");
    assert_eq!(first["ticket"]["status"], "USED");
    let at = first["checked_in_at"].clone();
    assert!(at.is_string());

    let second = scanned(&app, &operator, &codes[0], "scan-2").await;
    assert_eq!(second["result"], "ALREADY_USED");
    assert_eq!(second["checked_in_at"], at, "the first time");
    // The scanner retries its first scan: the first answer again.
    let replay = scanned(&app, &operator, &codes[0], "scan-1").await;
    assert_eq!(replay, first);

    let unknown = scanned(
        &app,
        &operator,
        "0123456789abcdef0123456789abcdef",
        "scan-3",
    )
    .await;
    assert_eq!(unknown["result"], "UNKNOWN");
    assert!(unknown.get("ticket").is_none());

    for body in [
        json!({"code": "", "nonce": "n"}),
        json!({"code": "c", "nonce": ""}),
        json!({"code": "c", "nonce": "x".repeat(129)}),
        json!({"code": "c\u{7}", "nonce": "n"}),
    ] {
        let response = app
            .post("/api/v1/check-ins", Some(&operator.access_token), body)
            .await;
        expect_problem(response, 422, "VALIDATION_FAILED").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn only_staff_check_tickets_in() {
    let app = fake_app().await;
    let codes = paid_codes(&app, 1).await;
    for roles in [&["USER"][..], &["USER", "AUDITOR"][..]] {
        let who = app.user_with_roles(roles).await;
        expect_problem(scan(&app, &who, &codes[0], "n-1").await, 403, "FORBIDDEN").await;
    }
    let anonymous = app
        .post(
            "/api/v1/check-ins",
            None,
            json!({"code": codes[0], "nonce": "n-2"}),
        )
        .await;
    expect_problem(anonymous, 401, "UNAUTHORIZED").await;
    let admin = app.admin().await;
    assert_eq!(
        scanned(&app, &admin, &codes[0], "n-3").await["result"],
        "OK"
    );
    app.stop().await;
}

#[tokio::test]
async fn fifty_simultaneous_scans_of_one_code_let_in_exactly_one() {
    let app = fake_app().await;
    let codes = paid_codes(&app, 1).await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let mut scans = Vec::new();
    for i in 0..50 {
        let (http, url, token, code) = (
            app.http.clone(),
            app.url("/api/v1/check-ins"),
            operator.access_token.clone(),
            codes[0].clone(),
        );
        scans.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"code": code, "nonce": format!("door-{i}")}))
                .send()
                .await
                .expect("an answer");
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.expect("a check-in");
            body
        }));
    }
    let mut results = Vec::new();
    for scan in scans {
        results.push(scan.await.expect("the task ends"));
    }
    let ok = results.iter().filter(|r| r["result"] == "OK").count();
    let used = results
        .iter()
        .filter(|r| r["result"] == "ALREADY_USED")
        .count();
    assert_eq!((ok, used), (1, 49));
    let first = results
        .iter()
        .find(|r| r["result"] == "OK")
        .map(|r| r["checked_in_at"].clone());
    assert!(
        results
            .iter()
            .all(|r| Some(r["checked_in_at"].clone()) == first),
        "every scan names the first time"
    );
    app.stop().await;
}

pub(crate) async fn cancel(app: &TestApp, who: &Session, order: &Value) -> reqwest::Response {
    app.post(
        &format!("/api/v1/orders/{}/cancel", text(&order["id"])),
        Some(&who.access_token),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn cancelling_an_unpaid_order_gives_stock_and_coupon_back() {
    let app = fake_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let code = coupon(&app, &ann).await;
    let placed = order(&app, &ann, &gala, 2, Some(&code)).await;
    assert_eq!(remaining(&app, &gala).await, 3);
    let response = cancel(&app, &ann, &placed).await;
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.expect("an order");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert!(cancelled.get("refund").is_none());
    assert_eq!(remaining(&app, &gala).await, 5);
    assert_eq!(coupon_status(&app, &ann, &code).await, "ISSUED");
    let twice = cancel(&app, &ann, &placed).await;
    expect_problem(twice, 409, "ORDER_NOT_CANCELLABLE").await;
    assert_eq!(remaining(&app, &gala).await, 5, "given back once");
    let late = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    expect_problem(late, 409, "ORDER_NOT_PAYABLE").await;
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it_and_voids_its_tickets() {
    let app = fake_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let code = coupon(&app, &ann).await;
    let placed = order(&app, &ann, &gala, 2, Some(&code)).await;
    let paid: Value = pay(&app, &ann, &placed, json!({"provider": "fake"}))
        .await
        .json()
        .await
        .expect("an order");
    assert_eq!(coupon_status(&app, &ann, &code).await, "USED");
    // Neither another user nor an auditor may cancel it; staff may.
    let bob = app.new_user().await;
    expect_problem(cancel(&app, &bob, &placed).await, 403, "FORBIDDEN").await;
    let auditor = app.user_with_roles(&["USER", "AUDITOR"]).await;
    expect_problem(cancel(&app, &auditor, &placed).await, 403, "FORBIDDEN").await;
    let anonymous = app
        .post(
            &format!("/api/v1/orders/{}/cancel", text(&placed["id"])),
            None,
            json!({}),
        )
        .await;
    expect_problem(anonymous, 401, "UNAUTHORIZED").await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let response = cancel(&app, &operator, &placed).await;
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.expect("an order");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["payment"]["status"], "REFUNDED");
    assert_eq!(cancelled["refund"]["amount"], paid["total"]);
    assert_eq!(cancelled["refund"]["status"], "REFUNDED");
    assert!(
        cancelled["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .all(|t| t["status"] == "VOID")
    );
    assert_eq!(remaining(&app, &gala).await, 5);
    assert_eq!(coupon_status(&app, &ann, &code).await, "ISSUED");
    let at_the_door = scanned(
        &app,
        &operator,
        &text(&paid["tickets"][0]["code"]),
        "after-cancel",
    )
    .await;
    assert_eq!(at_the_door["result"], "VOID");
    app.stop().await;
}

#[tokio::test]
async fn a_checked_in_order_cannot_be_cancelled() {
    let app = fake_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 2, None).await;
    let paid: Value = pay(&app, &ann, &placed, json!({"provider": "fake"}))
        .await
        .json()
        .await
        .expect("an order");
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let code = text(&paid["tickets"][1]["code"]);
    assert_eq!(scanned(&app, &operator, &code, "in").await["result"], "OK");
    expect_problem(cancel(&app, &ann, &placed).await, 409, "TICKET_USED").await;
    let read: Value = app
        .get(
            &format!("/api/v1/orders/{}", text(&placed["id"])),
            Some(&ann.access_token),
        )
        .await
        .json()
        .await
        .expect("an order");
    assert_eq!(read["status"], "PAID");
    assert!(
        read["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .all(|t| t["status"] != "VOID"),
        "nothing voided"
    );
    assert_eq!(remaining(&app, &gala).await, 3);
    app.stop().await;
}

/// An app whose `toss` provider is the fake Toss server.
async fn toss_app() -> (TestApp, commerce::payments::toss::fake_server::FakeToss) {
    let toss = commerce::payments::toss::fake_server::FakeToss::start("test_sk_stampede")
        .await
        .expect("a fake Toss server");
    let base = toss.base_url();
    let app = TestApp::spawn_with(move |s| {
        s.toss_secret_key = Some(kernel::Secret::new("test_sk_stampede".to_owned()));
        s.toss_api_base = base;
    })
    .await;
    (app, toss)
}

#[tokio::test]
async fn an_order_is_paid_through_toss_once_and_a_decline_keeps_its_code() {
    let (app, toss) = toss_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 2, None).await;
    let (id, total) = (
        text(&placed["id"]),
        placed["total"].as_i64().expect("a total"),
    );
    toss.open_session("pay_ann", &id, total);

    let short = pay(
        &app,
        &ann,
        &placed,
        json!({"provider": "toss", "payment_key": "pay_ann", "amount": total - 1}),
    )
    .await;
    expect_problem(short, 409, "AMOUNT_MISMATCH").await;
    assert_eq!(toss.charge_count(&id), 0, "nothing was sent to Toss");

    let body = json!({"provider": "toss", "payment_key": "pay_ann", "amount": total});
    let response = pay(&app, &ann, &placed, body.clone()).await;
    assert_eq!(response.status(), 200);
    let paid: Value = response.json().await.expect("an order");
    assert_eq!(paid["status"], "PAID");
    assert_eq!(paid["payment"]["provider"], "toss");
    assert_eq!(paid["tickets"].as_array().map(Vec::len), Some(2));
    let again = pay(&app, &ann, &placed, body).await;
    expect_problem(again, 409, "ORDER_NOT_PAYABLE").await;
    assert_eq!(toss.charge_count(&id), 1, "charged exactly once");

    let bob = app.new_user().await;
    let declined_order = order(&app, &bob, &gala, 1, None).await;
    let declined_total = declined_order["total"].as_i64().expect("a total");
    toss.decline("pay_bob", "REJECT_CARD_COMPANY");
    let declined = pay(
        &app,
        &bob,
        &declined_order,
        json!({"provider": "toss", "payment_key": "pay_bob", "amount": declined_total}),
    )
    .await;
    expect_problem(declined, 402, "PAYMENT_DECLINED").await;
    assert_eq!(remaining(&app, &gala).await, 3, "the declined unit is back");
}

#[tokio::test]
async fn a_toss_notice_settles_a_lost_answer_by_asking_toss() {
    use commerce::payments::toss::fake_server::{Fault, Route};
    let (app, toss) = toss_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 1, None).await;
    let (id, total) = (
        text(&placed["id"]),
        placed["total"].as_i64().expect("a total"),
    );
    toss.inject(Route::Confirm, Fault::DropAnswer);
    let lost = pay(
        &app,
        &ann,
        &placed,
        json!({"provider": "toss", "payment_key": "pay_lost", "amount": total}),
    )
    .await;
    assert_eq!(lost.status(), 202, "the answer was lost: unknown");

    let webhook = app.url("/api/v1/payments/toss/webhook");
    assert_eq!(toss.send_webhook(&webhook, &id).await, Ok(200));
    let settled = crate::orders::read(&app, &ann, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(
        settled["status"], "PAID",
        "settled by asking Toss: {settled}"
    );
    assert_eq!(settled["tickets"].as_array().map(Vec::len), Some(1));
    assert_eq!(toss.charge_count(&id), 1, "never charged twice");

    let garbage = app
        .http
        .post(&webhook)
        .header("content-type", "application/json")
        .body("{\"eventType\": 42}")
        .send()
        .await
        .expect("answers");
    expect_problem(garbage, 400, "MALFORMED_WEBHOOK").await;
    let other = app
        .http
        .post(&webhook)
        .header("content-type", "application/json")
        .body(r#"{"eventType": "DEPOSIT_CALLBACK", "createdAt": "2026-12-03T10:00:00.000000", "data": {}}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        other.status(),
        200,
        "another event type is received, not retried"
    );
}
