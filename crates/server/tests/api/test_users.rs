//! `POST /admin-api/test-users`: bulk signed-in users for load tests, ADMIN
//! only, and only on a server started with the `test_users` setting on.

use std::collections::HashSet;

use serde_json::{Value, json};
use server::config::Switch;

use crate::helpers::{TestApp, expect_problem, text};

const PATH: &str = "/admin-api/test-users";

async fn spawn_with_test_users() -> TestApp {
    TestApp::spawn_with(|s| s.test_users = Switch::On).await
}

#[tokio::test]
async fn an_admin_gets_signed_in_users_whose_tokens_work() {
    let app = spawn_with_test_users().await;
    let admin = app.admin().await;

    let response = app
        .post(
            PATH,
            Some(&admin.access_token),
            json!({"count": 25, "prefix": "lt"}),
        )
        .await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a JSON body");
    let users = body["users"].as_array().expect("a list of users");
    assert_eq!(users.len(), 25);
    let emails: HashSet<String> = users.iter().map(|u| text(&u["email"])).collect();
    assert_eq!(emails.len(), 25, "emails are distinct");
    assert!(emails.iter().all(|e| e.starts_with("lt-")), "{emails:?}");
    for user in users {
        let me = app
            .get("/api/v1/auth/me", Some(&text(&user["access_token"])))
            .await;
        assert_eq!(me.status(), 200);
        let me: Value = me.json().await.expect("a user");
        assert_eq!(me["id"], user["user_id"]);
        assert_eq!(me["email"], user["email"]);
        assert_eq!(me["roles"], json!(["USER"]));
    }
}

#[tokio::test]
async fn test_user_tokens_belong_to_real_logins_that_can_end() {
    let app = spawn_with_test_users().await;
    let admin = app.admin().await;
    let body: Value = app
        .post(PATH, Some(&admin.access_token), json!({"count": 1}))
        .await
        .json()
        .await
        .expect("a JSON body");
    let token = text(&body["users"][0]["access_token"]);
    assert!(text(&body["users"][0]["email"]).starts_with("test-"));

    let logout = app
        .post("/api/v1/auth/logout", Some(&token), json!({}))
        .await;
    assert_eq!(logout.status(), 204);

    expect_problem(
        app.get("/api/v1/auth/me", Some(&token)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn the_largest_batch_is_created_in_one_call() {
    let app = spawn_with_test_users().await;
    let admin = app.admin().await;

    let response = app
        .post(PATH, Some(&admin.access_token), json!({"count": 10_000}))
        .await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a JSON body");
    let users = body["users"].as_array().expect("a list of users");
    let ids: HashSet<&str> = users.iter().filter_map(|u| u["user_id"].as_str()).collect();
    assert_eq!(ids.len(), 10_000);
    let last = users.last().expect("a user");
    let me = app
        .get("/api/v1/auth/me", Some(&text(&last["access_token"])))
        .await;
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn a_user_is_refused_and_the_anonymous_must_sign_in() {
    let app = spawn_with_test_users().await;
    let user = app.new_user().await;

    expect_problem(
        app.post(PATH, Some(&user.access_token), json!({"count": 1}))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_problem(
        app.post(PATH, None, json!({"count": 1})).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn counts_outside_1_to_10000_and_bad_prefixes_are_invalid() {
    let app = spawn_with_test_users().await;
    let admin = app.admin().await;

    for body in [
        json!({"count": 0}),
        json!({"count": 10_001}),
        json!({"count": -3}),
        json!({"count": 5, "prefix": "Not Plain"}),
    ] {
        let problem = expect_problem(
            app.post(PATH, Some(&admin.access_token), body.clone())
                .await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(
            problem["errors"].as_array().map(Vec::len),
            Some(1),
            "{body}"
        );
    }
}

#[tokio::test]
async fn without_the_setting_the_path_does_not_exist() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    expect_problem(
        app.post(PATH, Some(&admin.access_token), json!({"count": 1}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let openapi: Value = app
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("the OpenAPI document");
    assert!(openapi["paths"].get(PATH).is_none());
}

#[tokio::test]
async fn with_the_setting_the_path_is_documented() {
    let app = spawn_with_test_users().await;
    let openapi: Value = app
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("the OpenAPI document");
    let operation = &openapi["paths"][PATH]["post"];
    assert!(operation["responses"]["201"].is_object(), "{operation}");
    assert!(operation["responses"]["422"].is_object(), "{operation}");
}
