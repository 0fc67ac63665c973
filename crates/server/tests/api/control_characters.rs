//! Control characters (a NUL above all) in any text a client sends: 422
//! `VALIDATION_FAILED` naming the field, nothing stored, on both backends.
//! PostgreSQL refuses U+0000 in `text` and once answered 500; SQLite kept it.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Session, TestApp, expect_problem, from_now, live_event, text};

/// Asserts a 422 whose errors name exactly `field`.
async fn refused(response: reqwest::Response, field: &str) {
    let problem = expect_problem(response, 422, "VALIDATION_FAILED").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, [field], "{problem}");
}

async fn items(app: &TestApp, path: &str, who: &Session) -> Vec<Value> {
    let response = app.get(path, Some(&who.access_token)).await;
    assert_eq!(response.status(), 200, "GET {path}");
    let page: Value = response.json().await.expect("a page");
    page["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn sign_up_refuses_a_nul_in_the_referral_code_or_the_email() {
    let app = TestApp::spawn().await;

    let code = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "nul@example.com", "password": PASSWORD, "referral_code": "AB\u{0}CD"}),
        )
        .await;
    refused(code, "referral_code").await;
    let email = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "nul\u{0}@example.com", "password": PASSWORD}),
        )
        .await;
    refused(email, "email").await;

    // Nobody was created: the address is still free.
    app.sign_up("nul@example.com").await;
}

#[tokio::test]
async fn the_user_list_refuses_a_nul_in_the_email_filter() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let response = app
        .get("/api/v1/users?email=a%00b", Some(&admin.access_token))
        .await;

    refused(response, "email").await;
    assert_eq!(
        items(&app, "/api/v1/users?email=admin", &admin).await.len(),
        1
    );
}

#[tokio::test]
async fn events_refuse_control_characters_in_names_and_descriptions() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());
    let with = |field: &str, value: &str| {
        let mut body = live_event();
        body[field] = json!(value);
        body
    };

    refused(
        app.post("/api/v1/events", token, with("name", "Winter\u{0}"))
            .await,
        "name",
    )
    .await;
    refused(
        app.post("/api/v1/events", token, with("name", "Two\nlines"))
            .await,
        "name",
    )
    .await;
    refused(
        app.post("/api/v1/events", token, with("description", "a\u{0}b"))
            .await,
        "description",
    )
    .await;
    assert!(items(&app, "/api/v1/events", &admin).await.is_empty());

    // A description may run over lines and hold tabs.
    let event = app
        .created(
            "/api/v1/events",
            &admin,
            with("description", "Line one\n\tLine two"),
        )
        .await;
    assert_eq!(event["description"], "Line one\n\tLine two");
    let path = format!("/api/v1/events/{}", text(&event["id"]));
    for (field, value) in [("name", "AB\u{0}CD"), ("description", "\u{0}")] {
        let patch = app
            .request(Method::PATCH, &path, token, Some(json!({ field: value })))
            .await;
        refused(patch, field).await;
    }
    let unchanged: Value = app.get(&path, token).await.json().await.expect("an event");
    assert_eq!(unchanged["name"], event["name"]);
    assert_eq!(unchanged["description"], event["description"]);
}

#[tokio::test]
async fn rewards_refuse_a_nul_in_the_name_or_the_badge_and_item_ids() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());

    for (body, field) in [
        (
            json!({"name": "a\u{0}b", "type": "POINT", "points": 1}),
            "name",
        ),
        (
            json!({"name": "Badge", "type": "BADGE", "badge_id": "early\u{0}"}),
            "badge_id",
        ),
        (
            json!({"name": "Hat", "type": "ITEM", "item_id": "hat\u{0}", "quantity": 1}),
            "item_id",
        ),
    ] {
        refused(app.post("/api/v1/rewards", token, body).await, field).await;
    }

    assert!(items(&app, "/api/v1/rewards", &admin).await.is_empty());
}

#[tokio::test]
async fn coupon_campaigns_refuse_a_nul_in_the_name() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = json!({
        "name": "Winter\u{0}drop",
        "discount": {"kind": "PERCENT", "value": 10},
        "total_quantity": 10,
        "issue_starts_at": from_now(-time::Duration::hours(1)),
        "issue_ends_at": from_now(time::Duration::hours(1)),
        "valid_until": from_now(time::Duration::days(30)),
    });

    let response = app
        .post("/api/v1/coupon-campaigns", Some(&admin.access_token), body)
        .await;

    refused(response, "name").await;
    assert!(
        items(&app, "/api/v1/coupon-campaigns", &admin)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn activity_refuses_a_nul_in_the_source_id() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let user = app.new_user().await;
    let body =
        |source: &str| json!({"user_id": user.user_id, "metric": "quests", "source_id": source});

    let response = app
        .post(
            "/api/v1/activity",
            Some(&staff.access_token),
            body("quest\u{0}1"),
        )
        .await;

    refused(response, "source_id").await;
    // Nothing was recorded under the id before its NUL either.
    let first = app
        .post("/api/v1/activity", Some(&staff.access_token), body("quest"))
        .await;
    assert_eq!(first.status(), 202);
    assert_eq!(
        first.json::<Value>().await.expect("a receipt")["duplicate"],
        false
    );
}

#[tokio::test]
async fn a_decision_refuses_a_nul_in_its_reason_and_stays_undecided() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let event = app.created("/api/v1/events", &staff, live_event()).await;
    let reward = app
        .created(
            "/api/v1/rewards",
            &staff,
            json!({"name": "10 points", "type": "POINT", "points": 10}),
        )
        .await;
    let event_id = text(&event["id"]);
    let event_reward = app
        .created(
            &format!("/api/v1/events/{event_id}/rewards"),
            &staff,
            json!({"reward_id": reward["id"], "auto_resolve": false}),
        )
        .await;
    let user = app.new_user().await;
    let pending = app
        .created(
            &format!(
                "/api/v1/events/{event_id}/rewards/{}/requests",
                text(&event_reward["id"])
            ),
            &user,
            json!({}),
        )
        .await;
    assert_eq!(pending["status"], "PENDING");
    let path = format!("/api/v1/requests/{}", text(&pending["id"]));

    let response = app
        .request(
            Method::PATCH,
            &path,
            Some(&staff.access_token),
            Some(json!({"status": "REJECTED", "reason": "no\u{0}pe"})),
        )
        .await;

    refused(response, "reason").await;
    let still: Value = app
        .get(&path, Some(&staff.access_token))
        .await
        .json()
        .await
        .expect("a request");
    assert_eq!(still["status"], "PENDING");
}
