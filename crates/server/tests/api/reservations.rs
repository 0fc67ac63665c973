//! Reservations over HTTP: hold all or none, the per-user limit over what
//! is held, the sale window, release by the owner only, reads by the owner
//! or readers, `Idempotency-Key`, bad input that changes nothing, expiry by
//! the server's sweeper, and a rush on one product that never oversells and
//! gives every released unit back.

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Session, TestApp, expect_problem, from_now, text};

pub fn product_body(stock: Value, per_user_limit: Value, hold_seconds: i64) -> Value {
    json!({
        "name": "Winter gala",
        "kind": "EVENT_TICKET",
        "price": 15000,
        "stock": stock,
        "per_user_limit": per_user_limit,
        "hold_seconds": hold_seconds,
        "sale_starts_at": from_now(-Duration::hours(1)),
        "sale_ends_at": from_now(Duration::hours(1)),
    })
}

/// A product on sale, created by the admin; its id.
pub async fn product(app: &TestApp, stock: Value, per_user_limit: Value) -> String {
    let admin = app.admin().await;
    let product = app
        .created(
            "/api/v1/products",
            &admin,
            product_body(stock, per_user_limit, 600),
        )
        .await;
    text(&product["id"])
}

pub async fn hold(app: &TestApp, who: &Session, product: &str, quantity: i64) -> reqwest::Response {
    app.post(
        &format!("/api/v1/products/{product}/reservations"),
        Some(&who.access_token),
        json!({ "quantity": quantity }),
    )
    .await
}

pub async fn held(app: &TestApp, who: &Session, product: &str, quantity: i64) -> Value {
    let response = hold(app, who, product, quantity).await;
    assert_eq!(response.status(), 201, "a hold of {quantity}");
    response.json().await.expect("a reservation")
}

pub async fn remaining(app: &TestApp, product: &str) -> Value {
    let product: Value = app
        .get(&format!("/api/v1/products/{product}"), None)
        .await
        .json()
        .await
        .expect("a product");
    product["remaining"].clone()
}

#[tokio::test]
async fn a_hold_takes_its_units_at_once_and_a_release_gives_them_back() {
    let app = TestApp::spawn().await;
    let product = product(&app, json!(5), json!(4)).await;
    let ann = app.new_user().await;

    let reservation = held(&app, &ann, &product, 3).await;
    assert_eq!(reservation["status"], "HELD");
    assert_eq!(reservation["quantity"], 3);
    assert_eq!(reservation["user_id"], ann.user_id.as_str());
    assert!(reservation["order_id"].is_null());
    assert!(reservation["expires_at"].is_string());
    assert_eq!(remaining(&app, &product).await, 2);

    // All or none: three more do not fit in the two left.
    let bob = app.new_user().await;
    expect_problem(hold(&app, &bob, &product, 3).await, 409, "SOLD_OUT").await;
    assert_eq!(remaining(&app, &product).await, 2);

    let path = format!("/api/v1/reservations/{}", text(&reservation["id"]));
    let mine: Value = app
        .get("/api/v1/reservations/mine", Some(&ann.access_token))
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(mine["items"][0]["id"], reservation["id"]);

    let gone = app
        .request(Method::DELETE, &path, Some(&ann.access_token), None)
        .await;
    assert_eq!(gone.status(), 204);
    assert_eq!(remaining(&app, &product).await, 5);
    let read: Value = app
        .get(&path, Some(&ann.access_token))
        .await
        .json()
        .await
        .expect("a reservation");
    assert_eq!(read["status"], "RELEASED");
    let twice = app
        .request(Method::DELETE, &path, Some(&ann.access_token), None)
        .await;
    let problem = expect_problem(twice, 409, "RESERVATION_NOT_HELD").await;
    assert_eq!(problem["reservation_status"], "RELEASED");
    assert_eq!(remaining(&app, &product).await, 5, "given back once");
    app.stop().await;
}

#[tokio::test]
async fn the_per_user_limit_counts_every_unit_held() {
    let app = TestApp::spawn().await;
    let product = product(&app, json!(50), json!(3)).await;
    let ann = app.new_user().await;
    held(&app, &ann, &product, 2).await;
    expect_problem(hold(&app, &ann, &product, 2).await, 409, "LIMIT_REACHED").await;
    held(&app, &ann, &product, 1).await;
    expect_problem(hold(&app, &ann, &product, 1).await, 409, "LIMIT_REACHED").await;
    // Another user has a limit of their own.
    let bob = app.new_user().await;
    held(&app, &bob, &product, 3).await;
    assert_eq!(remaining(&app, &product).await, 44);
    app.stop().await;
}

#[tokio::test]
async fn a_sale_not_open_refuses_holds() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut body = product_body(json!(5), Value::Null, 600);
    body["sale_starts_at"] = json!(from_now(Duration::hours(1)));
    body["sale_ends_at"] = json!(from_now(Duration::hours(2)));
    let later = app.created("/api/v1/products", &admin, body).await;
    let ann = app.new_user().await;
    let problem = expect_problem(
        hold(&app, &ann, &text(&later["id"]), 1).await,
        409,
        "SALE_NOT_OPEN",
    )
    .await;
    assert!(problem["sale_starts_at"].is_string());
    assert_eq!(remaining(&app, &text(&later["id"])).await, 5);
    app.stop().await;
}

/// `POST path` with a quantity no product could have, or no whole number
/// at all, is refused (what it changed is for the caller to check).
pub(crate) async fn bad_quantities_are_refused(app: &TestApp, who: &Session, path: &str) {
    for quantity in [
        json!(0),
        json!(-1),
        json!(6_000_000_000_i64),
        json!(100_000_001),
    ] {
        let response = app
            .post(
                path,
                Some(&who.access_token),
                json!({ "quantity": quantity }),
            )
            .await;
        expect_problem(response, 422, "VALIDATION_FAILED").await;
    }
    for body in [
        json!({"quantity": "2"}),
        json!({"quantity": 1.5}),
        json!({"quantity": 1e30}),
        json!({}),
    ] {
        let response = app.post(path, Some(&who.access_token), body).await;
        assert_eq!(response.status().as_u16() / 100, 4, "a 4xx for {path}");
    }
}

#[tokio::test]
async fn bad_quantities_and_foreign_ids_change_nothing() {
    let app = TestApp::spawn().await;
    let product = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let path = format!("/api/v1/products/{product}/reservations");
    bad_quantities_are_refused(&app, &ann, &path).await;
    expect_problem(hold(&app, &ann, &product, 6).await, 409, "SOLD_OUT").await;
    let unknown = uuid::Uuid::now_v7();
    expect_problem(
        hold(&app, &ann, &unknown.to_string(), 1).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let malformed = hold(&app, &ann, "not-a-uuid", 1).await;
    assert_eq!(malformed.status(), 400);
    let missing = app
        .get(
            &format!("/api/v1/reservations/{unknown}"),
            Some(&ann.access_token),
        )
        .await;
    expect_problem(missing, 404, "NOT_FOUND").await;
    let delete_missing = app
        .request(
            Method::DELETE,
            &format!("/api/v1/reservations/{unknown}"),
            Some(&ann.access_token),
            None,
        )
        .await;
    expect_problem(delete_missing, 404, "NOT_FOUND").await;
    assert_eq!(remaining(&app, &product).await, 5);
    app.stop().await;
}

#[tokio::test]
async fn someone_elses_reservation_is_read_by_readers_only_and_released_by_no_one_else() {
    let app = TestApp::spawn().await;
    let product = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let reservation = held(&app, &ann, &product, 2).await;
    let path = format!("/api/v1/reservations/{}", text(&reservation["id"]));
    for roles in [&["USER", "AUDITOR"][..], &["USER", "OPERATOR"][..]] {
        let reader = app.user_with_roles(roles).await;
        let read = app.get(&path, Some(&reader.access_token)).await;
        assert_eq!(read.status(), 200, "{roles:?} read any reservation");
        let release = app
            .request(Method::DELETE, &path, Some(&reader.access_token), None)
            .await;
        expect_problem(release, 403, "FORBIDDEN").await;
    }
    let bob = app.new_user().await;
    expect_problem(
        app.get(&path, Some(&bob.access_token)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let release = app
        .request(Method::DELETE, &path, Some(&bob.access_token), None)
        .await;
    expect_problem(release, 403, "FORBIDDEN").await;
    let bobs: Value = app
        .get("/api/v1/reservations/mine", Some(&bob.access_token))
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(bobs["items"], json!([]));
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, "/api/v1/reservations/mine".into()),
    ] {
        let anonymous = app.request(method, &path, None, None).await;
        expect_problem(anonymous, 401, "UNAUTHORIZED").await;
    }
    let anonymous = app
        .post(
            &format!("/api/v1/products/{product}/reservations"),
            None,
            json!({"quantity": 1}),
        )
        .await;
    expect_problem(anonymous, 401, "UNAUTHORIZED").await;
    assert_eq!(remaining(&app, &product).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_key_replays_the_first_hold() {
    let app = TestApp::spawn().await;
    let product = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = app
            .http
            .post(app.url(&format!("/api/v1/products/{product}/reservations")))
            .bearer_auth(&ann.access_token)
            .header("Idempotency-Key", "hold-once")
            .json(&json!({"quantity": 2}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("a reservation");
        answers.push(body["id"].clone());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(remaining(&app, &product).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn expired_holds_give_their_units_back_by_themselves() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let product = app
        .created(
            "/api/v1/products",
            &admin,
            product_body(json!(3), Value::Null, 1),
        )
        .await;
    let product = text(&product["id"]);
    let ann = app.new_user().await;
    let reservation = held(&app, &ann, &product, 3).await;
    assert_eq!(remaining(&app, &product).await, 0);
    // A patch below what is held is refused while the hold lives.
    let patch = app
        .request(
            Method::PATCH,
            &format!("/api/v1/products/{product}"),
            Some(&admin.access_token),
            Some(json!({"stock": 2})),
        )
        .await;
    expect_problem(patch, 409, "STOCK_BELOW_TAKEN").await;
    let path = format!("/api/v1/reservations/{}", text(&reservation["id"]));
    let mut status = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let read: Value = app
            .get(&path, Some(&ann.access_token))
            .await
            .json()
            .await
            .expect("a reservation");
        status = read["status"].clone();
        if status == "EXPIRED" {
            break;
        }
    }
    assert_eq!(status, "EXPIRED");
    assert_eq!(remaining(&app, &product).await, 3);
    // Its units are on sale again, through the gate too.
    let bob = app.new_user().await;
    held(&app, &bob, &product, 3).await;
    let release = app
        .request(Method::DELETE, &path, Some(&ann.access_token), None)
        .await;
    expect_problem(release, 409, "RESERVATION_NOT_HELD").await;
    app.stop().await;
}

#[tokio::test]
async fn a_rush_on_one_product_never_oversells_and_releases_all_come_back() {
    let app = TestApp::spawn().await;
    let product = product(&app, json!(12), json!(2)).await;
    let mut users = Vec::new();
    for _ in 0..10 {
        users.push(app.new_user().await);
    }
    let mut tasks = Vec::new();
    for user in &users {
        for quantity in [1, 2] {
            let (http, url, token) = (
                app.http.clone(),
                app.url(&format!("/api/v1/products/{product}/reservations")),
                user.access_token.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let response = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "quantity": quantity }))
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status().as_u16();
                let body: Value = response.json().await.expect("a body");
                (status, body)
            }));
        }
    }
    let mut held_units = 0;
    let mut ids = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("the task ends");
        match status {
            201 => {
                held_units += body["quantity"].as_i64().expect("a quantity");
                ids.push((text(&body["user_id"]), text(&body["id"])));
            }
            409 => assert!(
                body["code"] == "SOLD_OUT" || body["code"] == "LIMIT_REACHED",
                "{body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(held_units <= 12, "{held_units} units held of 12");
    assert!(held_units >= 10, "only {held_units} held by 10 users of 12");
    assert_eq!(remaining(&app, &product).await, 12 - held_units);
    // Release every hold twice over, at once: each unit comes back once.
    let mut releases = Vec::new();
    for (user_id, id) in &ids {
        let token = users
            .iter()
            .find(|u| &u.user_id == user_id)
            .expect("the holder")
            .access_token
            .clone();
        for _ in 0..2 {
            let (http, url, token) = (
                app.http.clone(),
                app.url(&format!("/api/v1/reservations/{id}")),
                token.clone(),
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
    }
    let mut statuses = Vec::new();
    for release in releases {
        statuses.push(release.await.expect("the task ends"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), ids.len());
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), ids.len());
    assert_eq!(remaining(&app, &product).await, 12);
    // And the gate agrees: the whole stock can be held again.
    for user in users.iter().take(6) {
        held(&app, user, &product, 2).await;
    }
    expect_problem(hold(&app, &users[6], &product, 1).await, 409, "SOLD_OUT").await;
    app.stop().await;
}
