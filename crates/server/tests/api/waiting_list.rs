//! Waiting lists over HTTP: joining only while sold out, once per user,
//! within the limit and the sale window; the live rank; leaving; the
//! readers' list; units that come back (release, expiry, a declined or
//! cancelled order) offered to the first entry they fit before the public,
//! as a `HELD` reservation that is `ACCEPTED` when ordered and `EXPIRED`
//! (passing on) when not; no offer after the sale; the offer's email and
//! webhook; and concurrency: two returns at once never offer a unit twice,
//! many joins and leaves keep ranks dense and in order.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use kernel::Secret;
use kernel::testing::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Session, TestApp, expect_problem, from_now, text};
use crate::reservations::{
    bad_quantities_are_refused, held, hold, product, product_body, remaining,
};

fn list_path(product: &str) -> String {
    format!("/api/v1/products/{product}/waiting-list")
}

fn me_path(product: &str) -> String {
    format!("/api/v1/products/{product}/waiting-list/me")
}

async fn join(app: &TestApp, who: &Session, product: &str, quantity: i64) -> reqwest::Response {
    app.post(
        &list_path(product),
        Some(&who.access_token),
        json!({ "quantity": quantity }),
    )
    .await
}

async fn joined(app: &TestApp, who: &Session, product: &str, quantity: i64) -> Value {
    let response = join(app, who, product, quantity).await;
    assert_eq!(response.status(), 201, "a join of {quantity}");
    response.json().await.expect("an entry")
}

async fn mine(app: &TestApp, who: &Session, product: &str) -> Value {
    let response = app.get(&me_path(product), Some(&who.access_token)).await;
    assert_eq!(response.status(), 200, "GET me");
    response.json().await.expect("an entry")
}

async fn leave(app: &TestApp, who: &Session, product: &str) -> reqwest::Response {
    app.request(
        Method::DELETE,
        &me_path(product),
        Some(&who.access_token),
        None,
    )
    .await
}

async fn release(app: &TestApp, who: &Session, reservation: &Value) -> reqwest::Response {
    app.request(
        Method::DELETE,
        &format!("/api/v1/reservations/{}", text(&reservation["id"])),
        Some(&who.access_token),
        None,
    )
    .await
}

/// Polls the user's entry until its status is `status` (at most 10 s).
async fn wait_for_status(app: &TestApp, who: &Session, product: &str, status: &str) -> Value {
    let mut entry = Value::Null;
    for _ in 0..100 {
        entry = mine(app, who, product).await;
        if entry["status"] == status {
            return entry;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("expected {status}, the entry is {entry}");
}

/// Every entry of the product, through the readers' list.
async fn all_entries(app: &TestApp, reader: &Session, product: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("{}?limit=100", list_path(product)),
            Some(&reader.access_token),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("a page");
    page["items"].as_array().expect("items").clone()
}

/// A product of `stock` units, all held by a new user; the product and
/// the holder's reservations (one unit each).
async fn sold_out(app: &TestApp, stock: i64) -> (String, Session, Vec<Value>) {
    let product = product(app, json!(stock), json!(stock)).await;
    let holder = app.new_user().await;
    let mut holds = Vec::new();
    for _ in 0..stock {
        holds.push(held(app, &holder, &product, 1).await);
    }
    assert_eq!(remaining(app, &product).await, 0);
    (product, holder, holds)
}

#[tokio::test]
async fn joining_a_sold_out_product_gives_a_live_rank_once_per_user() {
    let app = TestApp::spawn().await;
    let open = product(&app, json!(5), Value::Null).await;
    let (product, _, _) = sold_out(&app, 1).await;
    let (ann, bob, cy) = (
        app.new_user().await,
        app.new_user().await,
        app.new_user().await,
    );

    expect_problem(join(&app, &ann, &open, 1).await, 409, "NOT_SOLD_OUT").await;
    let first = joined(&app, &ann, &product, 1).await;
    assert_eq!(first["status"], "WAITING");
    assert_eq!(first["rank"], 1);
    assert_eq!(first["quantity"], 1);
    assert_eq!(first["user_id"], ann.user_id.as_str());
    assert!(first["joined_at"].is_string());
    assert!(first.get("reservation_id").is_none());
    expect_problem(join(&app, &ann, &product, 1).await, 409, "ALREADY_WAITING").await;
    assert_eq!(joined(&app, &bob, &product, 1).await["rank"], 2);
    assert_eq!(joined(&app, &cy, &product, 1).await["rank"], 3);
    assert_eq!(mine(&app, &cy, &product).await["rank"], 3);

    assert_eq!(leave(&app, &ann, &product).await.status(), 204);
    let left = mine(&app, &ann, &product).await;
    assert_eq!(left["status"], "LEFT");
    assert!(left["rank"].is_null());
    assert_eq!(mine(&app, &bob, &product).await["rank"], 1);
    assert_eq!(mine(&app, &cy, &product).await["rank"], 2);
    expect_problem(leave(&app, &ann, &product).await, 404, "NOT_FOUND").await;
    // Back at the end of the line.
    assert_eq!(joined(&app, &ann, &product, 1).await["rank"], 3);
    let dan = app.new_user().await;
    let never = app.get(&me_path(&product), Some(&dan.access_token)).await;
    expect_problem(never, 404, "NOT_FOUND").await;
    app.stop().await;
}

#[tokio::test]
async fn bad_joins_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let product = product(&app, json!(1), json!(2)).await;
    let holder = app.new_user().await;
    held(&app, &holder, &product, 1).await;
    let ann = app.new_user().await;
    bad_quantities_are_refused(&app, &ann, &list_path(&product)).await;
    // Over the per-user limit, counting what the user holds already.
    expect_problem(join(&app, &ann, &product, 3).await, 409, "LIMIT_REACHED").await;
    expect_problem(join(&app, &holder, &product, 2).await, 409, "LIMIT_REACHED").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    expect_problem(join(&app, &ann, &unknown, 1).await, 404, "NOT_FOUND").await;
    assert_eq!(join(&app, &ann, "not-a-uuid", 1).await.status(), 400);
    // Outside the sale window.
    let admin = app.admin().await;
    let mut body = product_body(json!(0), Value::Null, 600);
    body["sale_starts_at"] = json!(from_now(Duration::hours(1)));
    body["sale_ends_at"] = json!(from_now(Duration::hours(2)));
    let later = app.created("/api/v1/products", &admin, body).await;
    expect_problem(
        join(&app, &ann, &text(&later["id"]), 1).await,
        409,
        "SALE_NOT_OPEN",
    )
    .await;
    assert!(all_entries(&app, &admin, &product).await.is_empty());
    let nobody = app.get(&me_path(&product), Some(&ann.access_token)).await;
    expect_problem(nobody, 404, "NOT_FOUND").await;
    app.stop().await;
}

#[tokio::test]
async fn the_list_is_for_readers_in_join_order_and_the_rest_for_the_signed_in() {
    let app = TestApp::spawn().await;
    let (product, _, _) = sold_out(&app, 1).await;
    let mut users = Vec::new();
    for _ in 0..3 {
        let user = app.new_user().await;
        joined(&app, &user, &product, 1).await;
        users.push(user);
    }
    assert_eq!(leave(&app, &users[1], &product).await.status(), 204);
    for roles in [
        &["USER", "AUDITOR"][..],
        &["USER", "OPERATOR"][..],
        &["ADMIN"][..],
    ] {
        let reader = app.user_with_roles(roles).await;
        let entries = all_entries(&app, &reader, &product).await;
        let summary: Vec<_> = entries
            .iter()
            .map(|e| (text(&e["user_id"]), e["status"].clone(), e["rank"].clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (users[0].user_id.clone(), json!("WAITING"), json!(1)),
                (users[1].user_id.clone(), json!("LEFT"), Value::Null),
                (users[2].user_id.clone(), json!("WAITING"), json!(2)),
            ],
            "{roles:?}"
        );
        // Paged like every list, ranks carried across pages.
        let first: Value = app
            .get(
                &format!("{}?limit=2", list_path(&product)),
                Some(&reader.access_token),
            )
            .await
            .json()
            .await
            .expect("a page");
        let cursor = text(&first["next_cursor"]);
        let second: Value = app
            .get(
                &format!("{}?limit=2&cursor={cursor}", list_path(&product)),
                Some(&reader.access_token),
            )
            .await
            .json()
            .await
            .expect("a page");
        assert_eq!(second["items"][0]["rank"], 2);
        assert!(second["next_cursor"].is_null());
    }
    let user = &users[0];
    expect_problem(
        app.get(&list_path(&product), Some(&user.access_token))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let admin = app.admin().await;
    expect_problem(
        app.get(&list_path(&unknown), Some(&admin.access_token))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    for (method, path, body) in [
        (
            Method::POST,
            list_path(&product),
            Some(json!({"quantity": 1})),
        ),
        (Method::GET, list_path(&product), None),
        (Method::GET, me_path(&product), None),
        (Method::DELETE, me_path(&product), None),
    ] {
        let anonymous = app.request(method, &path, None, body).await;
        expect_problem(anonymous, 401, "UNAUTHORIZED").await;
    }
    let doc = app.openapi().await;
    for (path, method) in [
        ("/api/v1/products/{id}/waiting-list", "post"),
        ("/api/v1/products/{id}/waiting-list", "get"),
        ("/api/v1/products/{id}/waiting-list/me", "get"),
        ("/api/v1/products/{id}/waiting-list/me", "delete"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn released_units_go_to_the_first_entry_they_fit_before_the_public() {
    let app = TestApp::spawn().await;
    let (product, holder, holds) = sold_out(&app, 2).await;
    let (big, small, public) = (
        app.new_user().await,
        app.new_user().await,
        app.new_user().await,
    );
    joined(&app, &big, &product, 2).await;

    // One unit back fits nobody waiting: it stays the list's.
    assert_eq!(release(&app, &holder, &holds[0]).await.status(), 204);
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert_eq!(mine(&app, &big, &product).await["status"], "WAITING");
    expect_problem(hold(&app, &public, &product, 1).await, 409, "SOLD_OUT").await;
    // A smaller entry behind it fits, and gets it.
    let entry = joined(&app, &small, &product, 1).await;
    assert_eq!(entry["rank"], 2);
    let offered = wait_for_status(&app, &small, &product, "OFFERED").await;
    assert!(offered["rank"].is_null());
    assert!(offered["offered_at"].is_string());
    assert!(offered["offer_expires_at"].is_string());
    let reservation: Value = app
        .get(
            &format!("/api/v1/reservations/{}", text(&offered["reservation_id"])),
            Some(&small.access_token),
        )
        .await
        .json()
        .await
        .expect("the offer's reservation");
    assert_eq!(reservation["status"], "HELD");
    assert_eq!(reservation["quantity"], 1);
    assert_eq!(reservation["user_id"], small.user_id.as_str());
    assert_eq!(reservation["expires_at"], offered["offer_expires_at"]);
    assert_eq!(mine(&app, &big, &product).await["rank"], 1);

    // The small entry leaves: its offer goes back, and with the last hold
    // released the big one fits.
    assert_eq!(leave(&app, &small, &product).await.status(), 204);
    assert_eq!(release(&app, &holder, &holds[1]).await.status(), 204);
    let offered = wait_for_status(&app, &big, &product, "OFFERED").await;
    let reservation: Value = app
        .get(
            &format!("/api/v1/reservations/{}", text(&offered["reservation_id"])),
            Some(&big.access_token),
        )
        .await
        .json()
        .await
        .expect("the offer's reservation");
    assert_eq!(reservation["quantity"], 2);
    assert_eq!(remaining(&app, &product).await, 0);
    // Nobody waits now: what comes back is the public's again.
    assert_eq!(release(&app, &big, &reservation).await.status(), 204);
    wait_for_status(&app, &big, &product, "EXPIRED").await;
    held(&app, &public, &product, 2).await;
    app.stop().await;
}

#[tokio::test]
async fn an_offer_not_ordered_in_time_expires_and_passes_to_the_next() {
    let app = TestApp::spawn_with(|s| s.waiting_list_offer_seconds = 2).await;
    let (product, holder, holds) = sold_out(&app, 1).await;
    let (ann, bob) = (app.new_user().await, app.new_user().await);
    joined(&app, &ann, &product, 1).await;
    joined(&app, &bob, &product, 1).await;

    assert_eq!(release(&app, &holder, &holds[0]).await.status(), 204);
    let first = wait_for_status(&app, &ann, &product, "OFFERED").await;
    assert_eq!(mine(&app, &bob, &product).await["rank"], 1);
    let expired = wait_for_status(&app, &ann, &product, "EXPIRED").await;
    assert_eq!(expired["reservation_id"], first["reservation_id"]);
    let reservation: Value = app
        .get(
            &format!("/api/v1/reservations/{}", text(&first["reservation_id"])),
            Some(&ann.access_token),
        )
        .await
        .json()
        .await
        .expect("a reservation");
    assert_eq!(reservation["status"], "EXPIRED");
    let second = wait_for_status(&app, &bob, &product, "OFFERED").await;
    assert_ne!(second["reservation_id"], first["reservation_id"]);
    // Too late to order the expired offer.
    let late = app
        .post(
            "/api/v1/orders",
            Some(&ann.access_token),
            json!({"reservation_ids": [first["reservation_id"]]}),
        )
        .await;
    expect_problem(late, 409, "RESERVATION_EXPIRED").await;
    wait_for_status(&app, &bob, &product, "EXPIRED").await;
    // The list is empty: the unit is on sale again.
    let mut back = Value::Null;
    for _ in 0..30 {
        back = remaining(&app, &product).await;
        if back == 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(back, 1);
    app.stop().await;
}

#[tokio::test]
async fn ordering_an_offer_accepts_it_and_failed_or_cancelled_orders_feed_the_list() {
    let app = TestApp::spawn_with(|s| s.fake_payments = server::config::Switch::On).await;
    let (product, holder, holds) = sold_out(&app, 2).await;
    let (ann, bob) = (app.new_user().await, app.new_user().await);
    joined(&app, &ann, &product, 1).await;
    joined(&app, &bob, &product, 1).await;
    let order_of = |reservation: &Value| json!({"reservation_ids": [reservation["id"]]});

    // A declined payment gives its unit back: to ann.
    let declined = app
        .created("/api/v1/orders", &holder, order_of(&holds[0]))
        .await;
    let pay = app
        .post(
            &format!("/api/v1/orders/{}/payments", text(&declined["id"])),
            Some(&holder.access_token),
            json!({"provider": "fake", "outcome": "DECLINE"}),
        )
        .await;
    expect_problem(pay, 402, "PAYMENT_DECLINED").await;
    let offer = wait_for_status(&app, &ann, &product, "OFFERED").await;
    let order = app
        .created(
            "/api/v1/orders",
            &ann,
            json!({"reservation_ids": [offer["reservation_id"]]}),
        )
        .await;
    let accepted = wait_for_status(&app, &ann, &product, "ACCEPTED").await;
    assert_eq!(accepted["reservation_id"], offer["reservation_id"]);
    let paid = app
        .post(
            &format!("/api/v1/orders/{}/payments", text(&order["id"])),
            Some(&ann.access_token),
            json!({"provider": "fake"}),
        )
        .await;
    assert_eq!(paid.status(), 200);
    assert_eq!(mine(&app, &ann, &product).await["status"], "ACCEPTED");

    // A cancelled order gives its unit back: to bob.
    let cancelled = app
        .created("/api/v1/orders", &holder, order_of(&holds[1]))
        .await;
    let cancel = app
        .post(
            &format!("/api/v1/orders/{}/cancel", text(&cancelled["id"])),
            Some(&holder.access_token),
            json!({}),
        )
        .await;
    assert_eq!(cancel.status(), 200);
    wait_for_status(&app, &bob, &product, "OFFERED").await;
    assert_eq!(remaining(&app, &product).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn no_offer_is_made_once_the_sale_has_closed() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut body = product_body(json!(1), Value::Null, 600);
    body["sale_ends_at"] = json!(from_now(Duration::seconds(3)));
    let product = text(&app.created("/api/v1/products", &admin, body).await["id"]);
    let (holder, ann) = (app.new_user().await, app.new_user().await);
    let reservation = held(&app, &holder, &product, 1).await;
    joined(&app, &ann, &product, 1).await;

    tokio::time::sleep(StdDuration::from_millis(3200)).await;
    assert_eq!(release(&app, &holder, &reservation).await.status(), 204);
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    let entry = mine(&app, &ann, &product).await;
    assert_eq!(entry["status"], "WAITING");
    assert!(entry.get("reservation_id").is_none());
    expect_problem(join(&app, &holder, &product, 1).await, 409, "SALE_NOT_OPEN").await;
    app.stop().await;
}

#[tokio::test]
async fn two_returns_at_once_never_offer_one_unit_twice() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (product, holder, holds) = sold_out(&app, 4).await;
    let mut waiting = Vec::new();
    for _ in 0..6 {
        let user = app.new_user().await;
        joined(&app, &user, &product, 1).await;
        waiting.push(user);
    }
    // Every hold released twice over, all at once.
    let mut releases = Vec::new();
    for reservation in holds.iter().chain(holds.iter()) {
        let (http, url, token) = (
            app.http.clone(),
            app.url(&format!(
                "/api/v1/reservations/{}",
                text(&reservation["id"])
            )),
            holder.access_token.clone(),
        );
        releases.push(tokio::spawn(async move {
            http.delete(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("an answer")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for release in releases {
        statuses.push(release.await.expect("the task ends"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        4,
        "{statuses:?}"
    );

    for _ in 0..50 {
        let entries = all_entries(&app, &admin, &product).await;
        if entries.iter().filter(|e| e["status"] == "OFFERED").count() >= 4 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // Give a second offer of the same unit the time to show up.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    let entries = all_entries(&app, &admin, &product).await;
    let offered: Vec<_> = entries
        .iter()
        .filter(|e| e["status"] == "OFFERED")
        .collect();
    assert_eq!(offered.len(), 4, "{entries:#?}");
    // The first four in line, each with a reservation of its own.
    for (entry, user) in offered.iter().zip(&waiting) {
        assert_eq!(entry["user_id"], user.user_id.as_str());
    }
    let reservations: HashSet<_> = offered.iter().map(|e| text(&e["reservation_id"])).collect();
    assert_eq!(reservations.len(), 4);
    for entry in &offered {
        let reservation: Value = app
            .get(
                &format!("/api/v1/reservations/{}", text(&entry["reservation_id"])),
                Some(&admin.access_token),
            )
            .await
            .json()
            .await
            .expect("a reservation");
        assert_eq!(reservation["status"], "HELD");
        assert_eq!(reservation["user_id"], entry["user_id"]);
    }
    let still: Vec<_> = entries
        .iter()
        .filter(|e| e["status"] == "WAITING")
        .map(|e| e["rank"].clone())
        .collect();
    assert_eq!(still, vec![json!(1), json!(2)]);
    assert_eq!(remaining(&app, &product).await, 0);
    let public = app.new_user().await;
    expect_problem(hold(&app, &public, &product, 1).await, 409, "SOLD_OUT").await;
    app.stop().await;
}

#[tokio::test]
async fn many_joins_and_leaves_at_once_keep_ranks_dense_and_in_join_order() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (product, _, _) = sold_out(&app, 1).await;
    let mut users = Vec::new();
    for _ in 0..24 {
        users.push(app.new_user().await);
    }
    // Everyone joins at once, twice: one 201 and one ALREADY_WAITING each.
    let mut joins = Vec::new();
    for user in users.iter().chain(users.iter()) {
        let (http, url, token) = (
            app.http.clone(),
            app.url(&list_path(&product)),
            user.access_token.clone(),
        );
        joins.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"quantity": 1}))
                .send()
                .await
                .expect("an answer");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("a body");
            (status, body)
        }));
    }
    let mut created = 0;
    for join in joins {
        let (status, body) = join.await.expect("the task ends");
        match status {
            201 => created += 1,
            409 => assert_eq!(body["code"], "ALREADY_WAITING", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, users.len());
    // Every third user leaves while the others read their rank.
    let mut tasks = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let (http, token) = (app.http.clone(), user.access_token.clone());
        let url = app.url(&me_path(&product));
        tasks.push(tokio::spawn(async move {
            let request = if i % 3 == 0 {
                http.delete(url)
            } else {
                http.get(url)
            };
            request
                .bearer_auth(token)
                .send()
                .await
                .expect("an answer")
                .status()
                .as_u16()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let expected = if i % 3 == 0 { 204 } else { 200 };
        assert_eq!(task.await.expect("the task ends"), expected);
    }
    let entries = all_entries(&app, &admin, &product).await;
    assert_eq!(entries.len(), users.len());
    let waiting: Vec<_> = entries
        .iter()
        .filter(|e| e["status"] == "WAITING")
        .collect();
    assert_eq!(waiting.len(), users.len() - users.len().div_ceil(3));
    for (i, entry) in waiting.iter().enumerate() {
        assert_eq!(entry["rank"], i + 1, "dense ranks in join order");
        let user = users
            .iter()
            .find(|u| entry["user_id"] == u.user_id.as_str())
            .expect("a user");
        assert_eq!(mine(&app, user, &product).await["rank"], i + 1);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_offer_reaches_the_user_by_email_and_integrators_by_webhook() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let port = sink.port();
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}")));
        s.mail_from = "Stampede <no-reply@stampede.test>".into();
        s.webhook_allow_private = true;
    })
    .await;
    let admin = app.admin().await;
    let receiver = crate::webhooks::Receiver::start(&[]).await;
    let endpoint = app
        .created(
            "/api/v1/webhook-endpoints",
            &admin,
            json!({"url": receiver.url, "event_types": ["waiting_list.offered"]}),
        )
        .await;
    let (product, holder, holds) = sold_out(&app, 1).await;
    let ann = app.new_user().await;
    joined(&app, &ann, &product, 1).await;

    assert_eq!(release(&app, &holder, &holds[0]).await.status(), 204);
    let offer = wait_for_status(&app, &ann, &product, "OFFERED").await;

    let message = sink.next_message().await.join("\n");
    assert!(message.contains(&format!("To: {}", ann.email)), "{message}");
    assert!(
        message.contains("Subject: Your turn: 1 x Winter gala held for you"),
        "{message}"
    );
    assert!(
        message.contains(&text(&offer["reservation_id"])),
        "{message}"
    );
    let got = receiver.wait_for(1).await;
    crate::webhooks::assert_signed_by(&text(&endpoint["secret"]), &got[0]);
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(body["type"], "waiting_list.offered");
    assert_eq!(body["data"]["entry_id"], offer["id"]);
    assert_eq!(body["data"]["reservation_id"], offer["reservation_id"]);
    assert_eq!(body["data"]["user_id"], ann.user_id.as_str());
    assert_eq!(body["data"]["quantity"], 1);
    app.stop().await;
}
