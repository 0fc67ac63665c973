//! Products over HTTP: staff create and edit, anyone reads; bad input is a
//! 422 that changes nothing.

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{TestApp, expect_problem, from_now, text};

fn on_sale(stock: Value) -> Value {
    json!({
        "name": "Winter gala",
        "kind": "EVENT_TICKET",
        "price": 15000,
        "stock": stock,
        "per_user_limit": 4,
        "sale_starts_at": from_now(-Duration::hours(1)),
        "sale_ends_at": from_now(Duration::hours(1)),
    })
}

#[tokio::test]
async fn staff_create_a_product_and_anyone_reads_it_with_its_remaining_stock() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles(&["OPERATOR"]).await;

    let product = app
        .created("/api/v1/products", &operator, on_sale(json!(20)))
        .await;

    assert_eq!(product["currency"], "KRW");
    assert_eq!(product["hold_seconds"], 600);
    assert_eq!(product["remaining"], 20);
    assert!(product["remaining_as_of"].is_string());
    let path = format!("/api/v1/products/{}", text(&product["id"]));
    let read: Value = app.get(&path, None).await.json().await.expect("a product");
    assert_eq!(read["remaining"], 20);
    let listed: Value = app
        .get("/api/v1/products?kind=EVENT_TICKET", None)
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(listed["items"][0]["id"], product["id"]);
    let other: Value = app
        .get("/api/v1/products?kind=ANNUAL_PASS", None)
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(other["items"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn only_staff_create_or_edit_products() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let product = app
        .created("/api/v1/products", &admin, on_sale(json!(5)))
        .await;
    let path = format!("/api/v1/products/{}", text(&product["id"]));
    for roles in [&["USER"][..], &["AUDITOR"][..]] {
        let who = app.user_with_roles(roles).await;
        let create = app
            .post(
                "/api/v1/products",
                Some(&who.access_token),
                on_sale(json!(5)),
            )
            .await;
        expect_problem(create, 403, "FORBIDDEN").await;
        let patch = app
            .request(
                Method::PATCH,
                &path,
                Some(&who.access_token),
                Some(json!({"stock": 1})),
            )
            .await;
        expect_problem(patch, 403, "FORBIDDEN").await;
    }
    let anonymous = app.post("/api/v1/products", None, on_sale(json!(5))).await;
    assert_eq!(anonymous.status(), 401);
    let operator = app.user_with_roles(&["OPERATOR"]).await;
    let patch = app
        .request(
            Method::PATCH,
            &path,
            Some(&operator.access_token),
            Some(json!({"stock": null, "price": 9000})),
        )
        .await;
    assert_eq!(patch.status(), 200);
    let patched: Value = patch.json().await.expect("a product");
    assert_eq!(
        (patched["stock"].clone(), patched["price"].clone()),
        (json!(null), json!(9000))
    );
    assert_eq!(patched["remaining"], json!(null));
    app.stop().await;
}

#[tokio::test]
async fn bad_products_and_patches_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut bad = on_sale(json!(-1));
    bad["price"] = json!(-5);
    bad["currency"] = json!("won");
    let refused = app
        .post("/api/v1/products", Some(&admin.access_token), bad)
        .await;
    let problem = expect_problem(refused, 422, "VALIDATION_FAILED").await;
    assert_eq!(
        problem["errors"].as_array().map(Vec::len),
        Some(3),
        "{problem}"
    );

    let product = app
        .created("/api/v1/products", &admin, on_sale(json!(5)))
        .await;
    let path = format!("/api/v1/products/{}", text(&product["id"]));
    let patch = app
        .request(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(json!({"hold_seconds": 0})),
        )
        .await;
    expect_problem(patch, 422, "VALIDATION_FAILED").await;
    let read: Value = app.get(&path, None).await.json().await.expect("a product");
    assert_eq!(read["hold_seconds"], 600);

    let unknown = app
        .get(&format!("/api/v1/products/{}", uuid::Uuid::now_v7()), None)
        .await;
    expect_problem(unknown, 404, "NOT_FOUND").await;
    app.stop().await;
}
