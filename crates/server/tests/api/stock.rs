//! Stock reconciliation over HTTP: only an admin may run it, and after a run
//! of reward requests the gate agrees with the database.

use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_problem, live_event, text};

#[tokio::test]
async fn an_admin_reconciles_the_gates_with_the_database() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.user_with_roles(&["OPERATOR"]).await;
    let token = Some(admin.access_token.as_str());
    let event = app.created("/api/v1/events", &admin, live_event()).await;
    let reward = app
        .created(
            "/api/v1/rewards",
            &admin,
            json!({"name": "p", "type": "POINT", "points": 1}),
        )
        .await;
    let event_id = text(&event["id"]);
    let offered = app
        .created(
            &format!("/api/v1/events/{event_id}/rewards"),
            &admin,
            json!({"reward_id": reward["id"], "auto_resolve": true, "quantity": 3}),
        )
        .await;
    let requests = format!(
        "/api/v1/events/{event_id}/rewards/{}/requests",
        text(&offered["id"])
    );
    for _ in 0..2 {
        let user = app.new_user().await;
        let response = app
            .post(&requests, Some(&user.access_token), json!({}))
            .await;
        assert_eq!(response.status(), 201);
    }

    let response = app
        .post("/admin-api/stock/reconcile?dry_run=true", token, json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.expect("a report");

    assert_eq!(report["checked"], 1, "{report}");
    assert_eq!(report["differing"], 0, "{report}");
    assert_eq!(report["errors"], json!([]));
    let refused = app
        .post(
            "/admin-api/stock/reconcile",
            Some(&operator.access_token),
            json!({}),
        )
        .await;
    expect_problem(refused, 403, "FORBIDDEN").await;
    let anonymous = app
        .post("/admin-api/stock/reconcile", None, json!({}))
        .await;
    expect_problem(anonymous, 401, "UNAUTHORIZED").await;
}
