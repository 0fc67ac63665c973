//! Orders on the bus, over real sockets: `order.paid` and `order.cancelled`
//! (and `line_entry.called`, `reward_request.rejected`) reach subscribed
//! webhook endpoints, signed; a refund that Toss keeps failing is retried
//! through the outbox until it goes through, once; the order confirmation
//! and refund emails reach a real SMTP server; and an order's history,
//! `PAID_AFTER_EXPIRY` included, is for its owner and readers.

use std::time::Duration;

use commerce::payments::toss::fake_server::{FakeToss, Fault, Route};
use http::Method;
use kernel::Secret;
use kernel::testing::SmtpSink;
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp, expect_problem, text};
use crate::reservations::{product, remaining};
use crate::tickets::{cancel, order, pay, refunded};
use crate::webhooks::{Receiver, assert_signed_by};

/// Fake payments on, webhooks allowed to reach 127.0.0.1.
async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.fake_payments = server::config::Switch::On;
        s.webhook_allow_private = true;
        s.webhook_retry_base_seconds = 1;
    })
    .await
}

/// An endpoint of `receiver` for `event_types`; its secret.
async fn subscribe(app: &TestApp, receiver: &Receiver, event_types: &[&str]) -> String {
    let admin = app.admin().await;
    let endpoint = app
        .created(
            "/api/v1/webhook-endpoints",
            &admin,
            json!({"url": receiver.url, "event_types": event_types}),
        )
        .await;
    text(&endpoint["secret"])
}

fn body_of(received: &crate::webhooks::Received) -> Value {
    serde_json::from_str(&received.body).expect("a JSON body")
}

#[tokio::test]
async fn a_paid_and_a_cancelled_order_reach_their_webhook_endpoints() {
    let app = app().await;
    let receiver = Receiver::start(&[]).await;
    let secret = subscribe(&app, &receiver, &["order.paid", "order.cancelled"]).await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 2, None).await;

    let response = pay(&app, &ann, &placed, json!({"provider": "fake"})).await;
    assert_eq!(response.status(), 200);
    let paid: Value = response.json().await.expect("an order");
    let got = receiver.wait_for(1).await;
    assert_signed_by(&secret, &got[0]);
    let body = body_of(&got[0]);
    assert_eq!(body["type"], "order.paid");
    let data = &body["data"];
    assert_eq!(data["order_id"], placed["id"]);
    assert_eq!(data["user_id"], ann.user_id.as_str());
    assert_eq!(data["total"], paid["total"]);
    assert_eq!(data["items"][0]["quantity"], 2);
    assert_eq!(data["items"][0]["product_id"], gala.as_str());
    let mut announced: Vec<String> = data["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| text(&t["code"]))
        .collect();
    let mut issued: Vec<String> = paid["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| text(&t["code"]))
        .collect();
    announced.sort();
    issued.sort();
    assert_eq!(announced, issued, "the codes of the tickets issued");

    assert_eq!(cancel(&app, &ann, &placed).await.status(), 200);
    let got = receiver.wait_for(2).await;
    assert_signed_by(&secret, &got[1]);
    let body = body_of(&got[1]);
    assert_eq!(body["type"], "order.cancelled");
    assert_eq!(body["data"]["order_id"], placed["id"]);
    assert_eq!(
        body["data"]["refund"],
        json!({"amount": paid["total"], "status": "PENDING"})
    );
    // An unpaid order's cancel is announced too, without a refund.
    let unpaid = order(&app, &ann, &gala, 1, None).await;
    assert_eq!(cancel(&app, &ann, &unpaid).await.status(), 200);
    let got = receiver.wait_for(3).await;
    let body = body_of(&got[2]);
    assert_eq!(body["type"], "order.cancelled");
    assert_eq!(body["data"]["order_id"], unpaid["id"]);
    assert!(body["data"]["refund"].is_null(), "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 3, "each event once");
}

#[tokio::test]
async fn a_called_line_and_a_rejected_request_reach_their_webhook_endpoints() {
    let app = app().await;
    let receiver = Receiver::start(&[]).await;
    let secret = subscribe(
        &app,
        &receiver,
        &["line_entry.called", "reward_request.rejected"],
    )
    .await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let ann = app.new_user().await;

    let ride = app
        .created(
            "/api/v1/attractions",
            &staff,
            json!({"name": "Loop", "kind": "RIDE", "hashtags": ["fast"]}),
        )
        .await;
    let line = format!("/api/v1/attractions/{}/line", text(&ride["id"]));
    app.created(&line, &ann, json!({})).await;
    let called = app
        .post(
            &format!("{line}/call"),
            Some(&staff.access_token),
            json!({"count": 1}),
        )
        .await;
    assert_eq!(called.status(), 200);
    let got = receiver.wait_for(1).await;
    assert_signed_by(&secret, &got[0]);
    let body = body_of(&got[0]);
    assert_eq!(body["type"], "line_entry.called");
    assert_eq!(body["data"]["attraction_id"], ride["id"]);
    assert_eq!(body["data"]["entries"][0]["user_id"], ann.user_id.as_str());

    let offer = crate::reward_requests::offer(&app, &staff, Value::Null, false).await;
    let pending = crate::reward_requests::request(&app, &ann, &offer).await;
    assert_eq!(pending.status(), 201);
    let pending: Value = pending.json().await.expect("a request");
    assert_eq!(pending["status"], "PENDING");
    let rejected = app
        .request(
            Method::PATCH,
            &format!("/api/v1/requests/{}", text(&pending["id"])),
            Some(&staff.access_token),
            Some(json!({"status": "REJECTED", "reason": "not this time"})),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let got = receiver.wait_for(2).await;
    assert_signed_by(&secret, &got[1]);
    let body = body_of(&got[1]);
    assert_eq!(body["type"], "reward_request.rejected");
    assert_eq!(body["data"]["request_id"], pending["id"]);
    assert_eq!(body["data"]["user_id"], ann.user_id.as_str());
    assert_eq!(body["data"]["reason"], "not this time");
    assert_eq!(body["data"]["rejected_by"], staff.user_id.as_str());
}

/// An app whose `toss` provider is the fake Toss server, with `window`
/// seconds to pay.
async fn toss_app(window: u64) -> (TestApp, FakeToss) {
    let toss = FakeToss::start("test_sk_stampede")
        .await
        .expect("a fake Toss server");
    let base = toss.base_url();
    let app = TestApp::spawn_with(move |s| {
        s.toss_secret_key = Some(Secret::new("test_sk_stampede".to_owned()));
        s.toss_api_base = base;
        s.payment_window_seconds = window;
    })
    .await;
    (app, toss)
}

/// Pays `placed` through the fake Toss server under `key`.
async fn pay_by_toss(
    app: &TestApp,
    toss: &FakeToss,
    who: &Session,
    placed: &Value,
    key: &str,
) -> reqwest::Response {
    let (id, total) = (
        text(&placed["id"]),
        placed["total"].as_i64().expect("a total"),
    );
    toss.open_session(key, &id, total);
    pay(
        app,
        who,
        placed,
        json!({"provider": "toss", "payment_key": key, "amount": total}),
    )
    .await
}

async fn history(app: &TestApp, who: Option<&Session>, order: &Value) -> reqwest::Response {
    app.get(
        &format!("/api/v1/orders/{}/history", text(&order["id"])),
        who.map(|w| w.access_token.as_str()),
    )
    .await
}

async fn events(app: &TestApp, who: &Session, order: &Value) -> Vec<String> {
    let response = history(app, Some(who), order).await;
    assert_eq!(response.status(), 200);
    let history: Value = response.json().await.expect("a history");
    assert_eq!(history["order_id"], order["id"]);
    history["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            assert!(e["at"].is_string(), "{e}");
            text(&e["event"])
        })
        .collect()
}

#[tokio::test]
async fn a_refund_toss_keeps_failing_is_retried_through_the_outbox_and_made_once() {
    let (app, toss) = toss_app(2400).await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 2, None).await;
    assert_eq!(
        pay_by_toss(&app, &toss, &ann, &placed, "pay_refund")
            .await
            .status(),
        200
    );
    // Two 5xx that did nothing, then one after the cancel took effect
    // (its answer lost): the next try finds it cancelled already.
    for processed in [false, false, true] {
        toss.inject(
            Route::Cancel,
            Fault::Status {
                status: 500,
                code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
                processed,
            },
        );
    }

    let response = cancel(&app, &ann, &placed).await;
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.expect("an order");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["refund"]["status"], "PENDING");
    assert_eq!(cancelled["refund"]["amount"], placed["total"]);
    assert_eq!(cancelled["payment"]["status"], "DONE");
    assert!(
        cancelled["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .all(|t| t["status"] == "VOID")
    );
    assert_eq!(remaining(&app, &gala).await, 5, "stock back at once");

    let done = refunded(&app, &ann, &placed).await;
    assert_eq!(done["payment"]["status"], "REFUNDED");
    assert_eq!(toss.requests(Route::Cancel), 4, "three failures, then done");
    let refunds = toss.refunds();
    assert_eq!(refunds.len(), 1, "refunded once: {refunds:?}");
    assert_eq!(
        refunds[0].amount,
        placed["total"].as_i64().expect("a total")
    );
    assert_eq!(
        refunds[0].idempotency_key.as_deref(),
        Some(format!("stampede-refund-{}", text(&placed["id"])).as_str())
    );
    let events = events(&app, &ann, &placed).await;
    assert!(
        events.ends_with(&["CANCELLED".to_owned(), "REFUNDED".to_owned()]),
        "{events:?}"
    );
    // Cancelling again changes nothing.
    expect_problem(
        cancel(&app, &ann, &placed).await,
        409,
        "ORDER_NOT_CANCELLABLE",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(toss.refunds().len(), 1);
}

#[tokio::test]
async fn an_orders_history_is_for_its_owner_and_readers() {
    let app = app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 1, None).await;
    assert_eq!(
        pay(&app, &ann, &placed, json!({"provider": "fake"}))
            .await
            .status(),
        200
    );

    assert_eq!(
        events(&app, &ann, &placed).await,
        ["PLACED", "CHARGE_STARTED", "PAID"]
    );
    for reader in [
        app.user_with_roles(&["AUDITOR"]).await,
        app.user_with_roles(&["OPERATOR"]).await,
        app.admin().await,
    ] {
        assert_eq!(events(&app, &reader, &placed).await.len(), 3);
    }
    let bob = app.new_user().await;
    expect_problem(history(&app, Some(&bob), &placed).await, 403, "FORBIDDEN").await;
    expect_problem(history(&app, None, &placed).await, 401, "UNAUTHORIZED").await;
    let unknown = json!({"id": uuid::Uuid::now_v7()});
    expect_problem(history(&app, Some(&ann), &unknown).await, 404, "NOT_FOUND").await;
    let malformed = app
        .get("/api/v1/orders/not-a-uuid/history", Some(&ann.access_token))
        .await;
    assert_eq!(malformed.status(), 400);

    let doc = app.openapi().await;
    let operation = &doc["paths"]["/api/v1/orders/{id}/history"]["get"];
    assert_eq!(operation["tags"], json!(["orders"]), "{operation}");
    assert!(doc["components"]["schemas"]["OrderHistory"].is_object());
}

#[tokio::test]
async fn a_payment_after_the_order_expired_is_refunded_and_in_its_history() {
    let (app, toss) = toss_app(1).await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 1, None).await;
    // Toss takes the money at once but answers late; meanwhile every
    // look-up says it knows no such payment, so the order expires.
    toss.inject(Route::Confirm, Fault::Delay(Duration::from_millis(3_500)));
    for _ in 0..10 {
        toss.inject(
            Route::Lookup,
            Fault::Status {
                status: 404,
                code: "NOT_FOUND_PAYMENT".into(),
                processed: false,
            },
        );
    }

    let late = pay_by_toss(&app, &toss, &ann, &placed, "pay_late").await;
    expect_problem(late, 409, "ORDER_NOT_PAYABLE").await;

    let now = crate::orders::read(
        &app,
        &ann,
        &format!("/api/v1/orders/{}", text(&placed["id"])),
    )
    .await;
    assert_eq!(now["status"], "EXPIRED");
    assert_eq!(now["payment"]["status"], "REFUNDED");
    assert_eq!(toss.refunds().len(), 1, "the late payment was given back");
    let events = events(&app, &ann, &placed).await;
    assert!(
        events.contains(&"PAID_AFTER_EXPIRY".to_owned()),
        "{events:?}"
    );
    assert!(events.contains(&"EXPIRED".to_owned()), "{events:?}");
    assert_eq!(remaining(&app, &gala).await, 5);
}

#[tokio::test]
async fn a_paid_order_and_its_refund_reach_the_buyer_by_email() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let port = sink.port();
    let app = TestApp::spawn_with(|s| {
        s.fake_payments = server::config::Switch::On;
        s.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}")));
        s.mail_from = "Stampede <no-reply@stampede.test>".into();
    })
    .await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 2, None).await;
    let paid: Value = pay(&app, &ann, &placed, json!({"provider": "fake"}))
        .await
        .json()
        .await
        .expect("an order");

    let confirmation = sink.next_message().await.join("\n");
    assert!(
        confirmation.contains(&format!("To: {}", ann.email)),
        "{confirmation}"
    );
    assert!(
        confirmation.contains("Subject: Your order is paid: 2 tickets for 30,000 KRW"),
        "{confirmation}"
    );
    assert!(
        confirmation.contains("2 x Winter gala: 30,000 KRW"),
        "{confirmation}"
    );
    for ticket in paid["tickets"].as_array().expect("tickets") {
        assert!(
            confirmation.contains(&text(&ticket["code"])),
            "{ticket} in {confirmation}"
        );
    }

    assert_eq!(cancel(&app, &ann, &placed).await.status(), 200);
    let refund = sink.next_message().await.join("\n");
    assert!(refund.contains(&format!("To: {}", ann.email)), "{refund}");
    assert!(
        refund.contains("Subject: Your refund of 30,000 KRW"),
        "{refund}"
    );
    assert!(refund.contains(&text(&placed["id"])), "{refund}");
}
