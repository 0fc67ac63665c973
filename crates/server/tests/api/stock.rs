//! Stock reconciliation over HTTP: only an admin may run it, and after a run
//! of reward requests the gate agrees with the database.

use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_problem, text};

#[tokio::test]
async fn an_admin_reconciles_the_gates_with_the_database() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.user_with_roles(&["OPERATOR"]).await;
    let token = Some(admin.access_token.as_str());
    let now = time::OffsetDateTime::now_utc();
    let format = time::format_description::well_known::Rfc3339;
    let event: Value = app
        .post(
            "/api/v1/events",
            token,
            json!({"name": "Now", "status": "ACTIVE",
                "starts_at": (now - time::Duration::days(1)).format(&format).expect("formats"),
                "ends_at": (now + time::Duration::days(1)).format(&format).expect("formats")}),
        )
        .await
        .json()
        .await
        .expect("an event");
    let reward: Value = app
        .post(
            "/api/v1/rewards",
            token,
            json!({"name": "p", "type": "POINT", "points": 1}),
        )
        .await
        .json()
        .await
        .expect("a reward");
    let event_id = text(&event["id"]);
    let offered: Value = app
        .post(
            &format!("/api/v1/events/{event_id}/rewards"),
            token,
            json!({"reward_id": reward["id"], "auto_resolve": true, "quantity": 3}),
        )
        .await
        .json()
        .await
        .expect("an event reward");
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
