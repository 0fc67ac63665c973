//! Events, the reward catalogue and event rewards over HTTP: every endpoint's
//! success and documented errors, its role rule, draft visibility and the
//! event lifecycle.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp, expect_problem, from_now, text};

const STARTS: &str = "2026-12-01T00:00:00Z";
const ENDS: &str = "2026-12-31T00:00:00Z";

fn event_body(name: &str) -> Value {
    json!({"name": name, "description": "Snow and rewards", "starts_at": STARTS, "ends_at": ENDS})
}

async fn create_event(app: &TestApp, staff: &Session, body: Value) -> Value {
    let response = app
        .post("/api/v1/events", Some(&staff.access_token), body)
        .await;
    assert_eq!(response.status(), 201, "an event is created");
    response.json().await.expect("an event")
}

async fn create_reward(app: &TestApp, staff: &Session) -> Value {
    let response = app
        .post(
            "/api/v1/rewards",
            Some(&staff.access_token),
            json!({"name": "100 points", "type": "POINT", "points": 100}),
        )
        .await;
    assert_eq!(response.status(), 201, "a reward is created");
    response.json().await.expect("a reward")
}

async fn add_event_reward(app: &TestApp, staff: &Session, event_id: &str, body: Value) -> Value {
    let response = app
        .post(
            &format!("/api/v1/events/{event_id}/rewards"),
            Some(&staff.access_token),
            body,
        )
        .await;
    assert_eq!(response.status(), 201, "an event reward is created");
    response.json().await.expect("an event reward")
}

async fn patch(app: &TestApp, path: &str, who: &Session, body: Value) -> reqwest::Response {
    app.request(Method::PATCH, path, Some(&who.access_token), Some(body))
        .await
}

async fn delete(app: &TestApp, path: &str, who: Option<&Session>) -> reqwest::Response {
    app.request(
        Method::DELETE,
        path,
        who.map(|s| s.access_token.as_str()),
        None,
    )
    .await
}

async fn ids(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), 200, "a page");
    let page: Value = response.json().await.expect("a page");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| text(&item["id"]))
        .collect()
}

#[tokio::test]
async fn staff_create_events_as_drafts_unless_active_is_asked_for() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;

    let draft = create_event(&app, &operator, event_body("Winter festival")).await;
    let mut active_body = event_body("Spring festival");
    active_body["status"] = json!("ACTIVE");
    let active = create_event(&app, &operator, active_body).await;

    assert_eq!(draft["status"], "DRAFT");
    assert_eq!(draft["name"], "Winter festival");
    assert_eq!(draft["description"], "Snow and rewards");
    assert_eq!(draft["starts_at"], STARTS);
    assert_eq!(draft["ends_at"], ENDS);
    assert!(draft["id"].is_string() && draft["created_at"].is_string());
    assert_eq!(draft["created_at"], draft["updated_at"]);
    assert_eq!(active["status"], "ACTIVE");
}

#[tokio::test]
async fn a_new_event_may_start_only_as_draft_or_active() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    for status in ["INACTIVE", "COMPLETED", "active", "NOPE"] {
        let mut body = event_body("Festival");
        body["status"] = json!(status);
        let response = app
            .post("/api/v1/events", Some(&admin.access_token), body)
            .await;
        let problem = expect_problem(response, 422, "VALIDATION_FAILED").await;
        assert_eq!(problem["errors"][0]["field"], "status", "{status}");
    }
}

#[tokio::test]
async fn an_event_must_end_after_it_starts_and_have_a_name() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());

    let same_instant = json!({"name": "Festival", "starts_at": STARTS, "ends_at": STARTS});
    let problem = expect_problem(
        app.post("/api/v1/events", token, same_instant).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "ends_at");

    let blank = json!({"name": "  ", "starts_at": ENDS, "ends_at": STARTS});
    let problem = expect_problem(
        app.post("/api/v1/events", token, blank).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["name", "ends_at"]);

    let wrong_type = json!({"name": "Festival", "starts_at": 5, "ends_at": ENDS});
    expect_problem(
        app.post("/api/v1/events", token, wrong_type).await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn staff_endpoints_refuse_users_auditors_and_the_anonymous() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let event = create_event(&app, &admin, event_body("Festival")).await;
    let event_id = text(&event["id"]);
    let reward = create_reward(&app, &admin).await;
    let er = add_event_reward(&app, &admin, &event_id, json!({"reward_id": reward["id"]})).await;
    let er_path = format!("/api/v1/events/{event_id}/rewards/{}", text(&er["id"]));
    let staff_only = [
        (
            Method::POST,
            "/api/v1/events".to_owned(),
            Some(event_body("X")),
        ),
        (
            Method::PATCH,
            format!("/api/v1/events/{event_id}"),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::POST,
            "/api/v1/rewards".to_owned(),
            Some(json!({"name": "Badge", "type": "BADGE", "badge_id": "b"})),
        ),
        (
            Method::POST,
            format!("/api/v1/events/{event_id}/rewards"),
            Some(json!({"reward_id": reward["id"]})),
        ),
        (
            Method::PATCH,
            er_path.clone(),
            Some(json!({"auto_resolve": true})),
        ),
        (Method::DELETE, er_path.clone(), None),
        (Method::DELETE, format!("/api/v1/events/{event_id}"), None),
    ];
    let refused = [
        app.user_with_roles(&["USER"]).await,
        app.user_with_roles(&["USER", "AUDITOR"]).await,
    ];

    for (method, path, body) in &staff_only {
        for who in &refused {
            let response = app
                .request(method.clone(), path, Some(&who.access_token), body.clone())
                .await;
            expect_problem(response, 403, "FORBIDDEN").await;
        }
        let anonymous = app.request(method.clone(), path, None, body.clone()).await;
        expect_problem(anonymous, 401, "UNAUTHORIZED").await;
    }
}

#[tokio::test]
async fn only_an_admin_may_delete_an_event() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let event = create_event(&app, &operator, event_body("Festival")).await;
    let path = format!("/api/v1/events/{}", text(&event["id"]));

    expect_problem(delete(&app, &path, Some(&operator)).await, 403, "FORBIDDEN").await;
    expect_problem(delete(&app, &path, None).await, 401, "UNAUTHORIZED").await;
    assert_eq!(delete(&app, &path, Some(&admin)).await.status(), 204);
}

#[tokio::test]
async fn the_catalogue_is_read_by_readers_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let reward = create_reward(&app, &admin).await;
    let one = format!("/api/v1/rewards/{}", text(&reward["id"]));
    let auditor = app.user_with_roles(&["USER", "AUDITOR"]).await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let user = app.new_user().await;

    for reader in [&auditor, &operator, &admin] {
        let list = app.get("/api/v1/rewards", Some(&reader.access_token)).await;
        assert_eq!(ids(list).await, [text(&reward["id"])]);
        let got = app.get(&one, Some(&reader.access_token)).await;
        assert_eq!(got.status(), 200);
        assert_eq!(got.json::<Value>().await.expect("a reward"), reward);
    }
    for path in ["/api/v1/rewards", one.as_str()] {
        expect_problem(
            app.get(path, Some(&user.access_token)).await,
            403,
            "FORBIDDEN",
        )
        .await;
        expect_problem(app.get(path, None).await, 401, "UNAUTHORIZED").await;
    }
}

#[tokio::test]
async fn each_reward_type_is_created_with_its_own_fields() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let token = Some(operator.access_token.as_str());
    let campaign = app
        .created("/api/v1/coupon-campaigns", &operator, a_campaign())
        .await;
    let bodies = [
        json!({"name": "Points", "type": "POINT", "points": 100}),
        json!({"name": "Hats", "type": "ITEM", "item_id": "hat", "quantity": 2}),
        json!({"name": "10% off", "type": "COUPON", "coupon_campaign_id": campaign["id"]}),
        json!({"name": "Early bird", "type": "BADGE", "badge_id": "early"}),
    ];

    for body in bodies {
        let response = app.post("/api/v1/rewards", token, body.clone()).await;
        assert_eq!(response.status(), 201, "{body}");
        let mut created: Value = response.json().await.expect("a reward");
        assert!(created["id"].is_string());
        created.as_object_mut().expect("an object").remove("id");
        assert_eq!(created, body);
    }
}

fn a_campaign() -> Value {
    let at = |hours: i64| from_now(time::Duration::hours(hours));
    json!({
        "name": "Winter drop",
        "discount": {"kind": "PERCENT", "value": 10},
        "total_quantity": 10,
        "per_user_limit": 1,
        "issue_starts_at": at(-1),
        "issue_ends_at": at(1),
        "valid_until": at(720),
    })
}

#[tokio::test]
async fn a_coupon_reward_naming_no_campaign_is_refused_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());

    let problem = expect_problem(
        app.post(
            "/api/v1/rewards",
            token,
            json!({"name": "Ghost", "type": "COUPON", "coupon_campaign_id": "0192f0a4-7c3e-7a55-9b1e-3f2d6c8e9a10"}),
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;

    assert_eq!(problem["errors"][0]["field"], "coupon_campaign_id");
    let listed: Value = app
        .get("/api/v1/rewards", token)
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn an_invalid_reward_is_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());

    let problem = expect_problem(
        app.post(
            "/api/v1/rewards",
            token,
            json!({"name": "", "type": "POINT", "points": 0, "badge_id": "x"}),
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["badge_id", "name", "points"]);

    expect_problem(
        app.post("/api/v1/rewards", token, json!(["not", "an", "object"]))
            .await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn rewards_are_listed_in_keyset_pages() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());
    let first = create_reward(&app, &admin).await;
    let second = create_reward(&app, &admin).await;

    let page: Value = app
        .get("/api/v1/rewards?limit=1", token)
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(page["items"][0]["id"], first["id"]);
    let cursor = text(&page["next_cursor"]);
    let next: Value = app
        .get(&format!("/api/v1/rewards?limit=1&cursor={cursor}"), token)
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(next["items"][0]["id"], second["id"]);
    assert!(next["next_cursor"].is_null());

    expect_problem(
        app.get("/api/v1/rewards?limit=0", token).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        app.get("/api/v1/rewards?cursor=forged", token).await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_malformed_ids_are_bad_requests() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());
    let unknown = "0192f0a4-7c3e-7a55-9b1e-3f2d6c8e9a10";

    for path in [
        format!("/api/v1/events/{unknown}"),
        format!("/api/v1/rewards/{unknown}"),
        format!("/api/v1/events/{unknown}/rewards"),
    ] {
        expect_problem(app.get(&path, token).await, 404, "NOT_FOUND").await;
    }
    expect_problem(
        patch(
            &app,
            &format!("/api/v1/events/{unknown}"),
            &admin,
            json!({}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        delete(&app, &format!("/api/v1/events/{unknown}"), Some(&admin)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        app.post(
            &format!("/api/v1/events/{unknown}/rewards"),
            token,
            json!({"reward_id": unknown}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    for path in [
        "/api/v1/events/not-a-uuid",
        "/api/v1/rewards/not-a-uuid",
        "/api/v1/events/not-a-uuid/rewards",
    ] {
        expect_problem(app.get(path, token).await, 400, "BAD_REQUEST").await;
    }
}

#[tokio::test]
async fn drafts_are_hidden_from_everyone_but_readers() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let auditor = app.user_with_roles(&["USER", "AUDITOR"]).await;
    let user = app.new_user().await;
    let draft = create_event(&app, &admin, event_body("Draft")).await;
    let mut body = event_body("Live");
    body["status"] = json!("ACTIVE");
    let active = create_event(&app, &admin, body).await;
    let (draft_id, active_id) = (text(&draft["id"]), text(&active["id"]));

    for who in [None, Some(user.access_token.as_str())] {
        assert_eq!(
            ids(app.get("/api/v1/events", who).await).await,
            std::slice::from_ref(&active_id)
        );
        assert!(
            ids(app.get("/api/v1/events?status=DRAFT", who).await)
                .await
                .is_empty()
        );
        for path in [
            format!("/api/v1/events/{draft_id}"),
            format!("/api/v1/events/{draft_id}/rewards"),
        ] {
            expect_problem(app.get(&path, who).await, 404, "NOT_FOUND").await;
        }
        assert_eq!(
            app.get(&format!("/api/v1/events/{active_id}"), who)
                .await
                .status(),
            200
        );
        assert_eq!(
            app.get(&format!("/api/v1/events/{active_id}/rewards"), who)
                .await
                .status(),
            200
        );
    }

    let reader = Some(auditor.access_token.as_str());
    assert_eq!(
        ids(app.get("/api/v1/events", reader).await).await,
        [draft_id.clone(), active_id.clone()]
    );
    assert_eq!(
        ids(app.get("/api/v1/events?status=DRAFT", reader).await).await,
        std::slice::from_ref(&draft_id)
    );
    assert_eq!(
        ids(app.get("/api/v1/events?status=ACTIVE", reader).await).await,
        [active_id]
    );
    let got = app.get(&format!("/api/v1/events/{draft_id}"), reader).await;
    assert_eq!(got.json::<Value>().await.expect("an event"), draft);
    assert_eq!(
        app.get(&format!("/api/v1/events/{draft_id}/rewards"), reader)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn listing_events_refuses_an_unknown_status_and_a_bad_token() {
    let app = TestApp::spawn().await;

    let problem = expect_problem(
        app.get("/api/v1/events?status=OPEN", None).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "status");
    expect_problem(
        app.get("/api/v1/events", Some("not-a-token")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn event_status_moves_follow_the_lifecycle() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let event = create_event(&app, &operator, event_body("Festival")).await;
    let path = format!("/api/v1/events/{}", text(&event["id"]));
    // From each status: the moves refused there, then the legal move taken.
    let steps = [
        (&["INACTIVE", "COMPLETED", "DRAFT"][..], "ACTIVE"),
        (&["DRAFT", "ACTIVE"][..], "INACTIVE"),
        (&["DRAFT", "INACTIVE"][..], "ACTIVE"),
        (&[][..], "COMPLETED"),
    ];

    for (refused, next) in steps {
        for status in refused {
            let response = patch(&app, &path, &operator, json!({"status": status})).await;
            expect_problem(response, 409, "INVALID_TRANSITION").await;
        }
        let moved = patch(&app, &path, &operator, json!({"status": next})).await;
        assert_eq!(moved.status(), 200, "to {next}");
        let moved: Value = moved.json().await.expect("an event");
        assert_eq!(moved["status"], next);
    }
    for status in ["ACTIVE", "INACTIVE", "DRAFT", "COMPLETED"] {
        let response = patch(&app, &path, &operator, json!({"status": status})).await;
        expect_problem(response, 409, "INVALID_TRANSITION").await;
    }
    let unknown = patch(&app, &path, &operator, json!({"status": "OPEN"})).await;
    expect_problem(unknown, 422, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn patching_an_event_changes_only_what_is_sent_and_keeps_the_period_valid() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let event = create_event(&app, &admin, event_body("Festival")).await;
    let path = format!("/api/v1/events/{}", text(&event["id"]));

    let renamed = patch(
        &app,
        &path,
        &admin,
        json!({"name": " Winter ", "starts_at": "2026-12-02T00:00:00Z"}),
    )
    .await;
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.expect("an event");
    assert_eq!(renamed["name"], "Winter");
    assert_eq!(renamed["starts_at"], "2026-12-02T00:00:00Z");
    assert_eq!(renamed["ends_at"], ENDS);
    assert_eq!(renamed["description"], event["description"]);
    assert_eq!(renamed["status"], "DRAFT");

    let backwards = patch(
        &app,
        &path,
        &admin,
        json!({"ends_at": "2026-12-01T00:00:00Z"}),
    )
    .await;
    let problem = expect_problem(backwards, 422, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"][0]["field"], "ends_at");
    let blank = patch(&app, &path, &admin, json!({"name": ""})).await;
    expect_problem(blank, 422, "VALIDATION_FAILED").await;
    let wrong_type = patch(&app, &path, &admin, json!({"name": 7})).await;
    expect_problem(wrong_type, 400, "BAD_REQUEST").await;

    let unchanged: Value = app
        .get(&path, Some(&admin.access_token))
        .await
        .json()
        .await
        .expect("an event");
    assert_eq!(unchanged, renamed);
}

#[tokio::test]
async fn deleting_a_draft_removes_it_with_its_rewards_and_other_events_are_kept() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let draft = create_event(&app, &admin, event_body("Draft")).await;
    let draft_id = text(&draft["id"]);
    let reward = create_reward(&app, &admin).await;
    add_event_reward(&app, &admin, &draft_id, json!({"reward_id": reward["id"]})).await;
    let mut body = event_body("Live");
    body["status"] = json!("ACTIVE");
    let active = create_event(&app, &admin, body).await;

    let deleted = delete(&app, &format!("/api/v1/events/{draft_id}"), Some(&admin)).await;
    assert_eq!(deleted.status(), 204);
    expect_problem(
        app.get(
            &format!("/api/v1/events/{draft_id}"),
            Some(&admin.access_token),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;

    let refused = delete(
        &app,
        &format!("/api/v1/events/{}", text(&active["id"])),
        Some(&admin),
    )
    .await;
    expect_problem(refused, 409, "EVENT_NOT_DRAFT").await;
}

#[tokio::test]
async fn a_reward_attached_to_an_event_takes_the_contracts_defaults() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let event = create_event(&app, &operator, event_body("Festival")).await;
    let event_id = text(&event["id"]);
    let reward = create_reward(&app, &operator).await;

    let plain = add_event_reward(
        &app,
        &operator,
        &event_id,
        json!({"reward_id": reward["id"]}),
    )
    .await;
    let condition = json!({"type": "ALL", "of": [
        {"type": "CONTINUOUS_LOGIN", "days": 3},
        {"type": "CUSTOM", "metric": "spent", "op": ">=", "value": 50}
    ]});
    let limited = add_event_reward(
        &app,
        &operator,
        &event_id,
        json!({"reward_id": reward["id"], "condition": condition, "auto_resolve": true,
               "quantity": 10, "per_user_limit": 2}),
    )
    .await;

    let mut keys: Vec<&str> = plain
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "auto_resolve",
            "condition",
            "event_id",
            "id",
            "per_user_limit",
            "quantity",
            "remaining",
            "reward"
        ]
    );
    assert_eq!(plain["event_id"], event["id"]);
    assert_eq!(plain["reward"], reward);
    assert!(
        plain["condition"].is_null() && plain["quantity"].is_null() && plain["remaining"].is_null()
    );
    assert_eq!(plain["auto_resolve"], false);
    assert_eq!(plain["per_user_limit"], 1);
    assert_eq!(limited["condition"], condition);
    assert_eq!(limited["auto_resolve"], true);
    assert_eq!(limited["quantity"], 10);
    assert_eq!(limited["remaining"], 10);
    assert_eq!(limited["per_user_limit"], 2);

    let listed = app
        .get(&format!("/api/v1/events/{event_id}/rewards"), None)
        .await;
    assert_eq!(listed.status(), 404, "the event is still a draft");
    let listed = app
        .get(
            &format!("/api/v1/events/{event_id}/rewards"),
            Some(&operator.access_token),
        )
        .await;
    let page: Value = listed.json().await.expect("a page");
    assert_eq!(page["items"], json!([plain, limited]));
}

#[tokio::test]
async fn attaching_a_reward_refuses_unknown_rewards_and_bad_values() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let event = create_event(&app, &admin, event_body("Festival")).await;
    let path = format!("/api/v1/events/{}/rewards", text(&event["id"]));
    let reward = create_reward(&app, &admin).await;
    let token = Some(admin.access_token.as_str());
    let cases = [
        (
            json!({"reward_id": "0192f0a4-7c3e-7a55-9b1e-3f2d6c8e9a10"}),
            "reward_id",
        ),
        (json!({"reward_id": "nope"}), "reward_id"),
        (
            json!({"reward_id": reward["id"], "quantity": 0}),
            "quantity",
        ),
        (
            json!({"reward_id": reward["id"], "per_user_limit": 0}),
            "per_user_limit",
        ),
        (
            json!({"reward_id": reward["id"], "condition": {"type": "CONTINUOUS_LOGIN", "days": 0}}),
            "condition.days",
        ),
        (
            json!({"reward_id": reward["id"], "condition": {"type": "ANY",
                "of": vec![json!({"type": "FRIEND_INVITE", "count": 1}); 5_000]}}),
            "condition.of[64]",
        ),
    ];

    for (body, field) in cases {
        let problem = expect_problem(
            app.post(&path, token, body.clone()).await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    expect_problem(
        app.post(
            &path,
            token,
            json!({"reward_id": reward["id"], "quantity": "ten"}),
        )
        .await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn patching_an_event_reward_moves_remaining_with_quantity() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let event = create_event(&app, &admin, event_body("Festival")).await;
    let event_id = text(&event["id"]);
    let reward = create_reward(&app, &admin).await;
    let er = add_event_reward(
        &app,
        &admin,
        &event_id,
        json!({"reward_id": reward["id"], "quantity": 5,
               "condition": {"type": "FRIEND_INVITE", "count": 2}}),
    )
    .await;
    let path = format!("/api/v1/events/{event_id}/rewards/{}", text(&er["id"]));

    let grown = patch(
        &app,
        &path,
        &admin,
        json!({"quantity": 8, "per_user_limit": 3}),
    )
    .await;
    assert_eq!(grown.status(), 200);
    let grown: Value = grown.json().await.expect("an event reward");
    assert_eq!(
        (grown["quantity"].clone(), grown["remaining"].clone()),
        (json!(8), json!(8))
    );
    assert_eq!(grown["per_user_limit"], 3);
    assert_eq!(grown["condition"], er["condition"], "absent fields stay");

    let cleared = patch(
        &app,
        &path,
        &admin,
        json!({"quantity": null, "condition": null, "auto_resolve": true}),
    )
    .await;
    let cleared: Value = cleared.json().await.expect("an event reward");
    assert!(cleared["quantity"].is_null() && cleared["remaining"].is_null());
    assert!(cleared["condition"].is_null());
    assert_eq!(cleared["auto_resolve"], true);

    for (body, field) in [
        (json!({"quantity": 0}), "quantity"),
        (json!({"per_user_limit": 0}), "per_user_limit"),
        (json!({"condition": {"type": "NOPE"}}), "condition.type"),
    ] {
        let problem = expect_problem(
            patch(&app, &path, &admin, body).await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
}

#[tokio::test]
async fn an_event_reward_is_reached_only_through_its_own_event() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let event = create_event(&app, &admin, event_body("One")).await;
    let other = create_event(&app, &admin, event_body("Other")).await;
    let reward = create_reward(&app, &admin).await;
    let er = add_event_reward(
        &app,
        &admin,
        &text(&event["id"]),
        json!({"reward_id": reward["id"]}),
    )
    .await;
    let er_id = text(&er["id"]);
    let foreign = format!("/api/v1/events/{}/rewards/{er_id}", text(&other["id"]));
    let own = format!("/api/v1/events/{}/rewards/{er_id}", text(&event["id"]));

    expect_problem(
        patch(&app, &foreign, &admin, json!({"auto_resolve": true})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(delete(&app, &foreign, Some(&admin)).await, 404, "NOT_FOUND").await;
    expect_problem(
        delete(
            &app,
            &format!("/api/v1/events/{}/rewards/nope", text(&event["id"])),
            Some(&admin),
        )
        .await,
        400,
        "BAD_REQUEST",
    )
    .await;

    assert_eq!(delete(&app, &own, Some(&admin)).await.status(), 204);
    expect_problem(delete(&app, &own, Some(&admin)).await, 404, "NOT_FOUND").await;
}
