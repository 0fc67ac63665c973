//! Reward requests, decisions, eligibility, activity, the wallet and
//! analytics over HTTP: each endpoint's success and documented errors, its
//! role rule allowed and refused, Idempotency-Key, and facts that travel
//! from identity over the bus within a second.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Session, TestApp, expect_problem, live_event, text};

/// An ACTIVE event running now, with one auto-approved 10-point reward.
pub(crate) struct Offer {
    event: String,
    reward: String,
}

impl Offer {
    fn requests(&self) -> String {
        format!(
            "/api/v1/events/{}/rewards/{}/requests",
            self.event, self.reward
        )
    }

    fn eligibility(&self) -> String {
        format!(
            "/api/v1/events/{}/rewards/{}/eligibility",
            self.event, self.reward
        )
    }
}

pub(crate) async fn offer(
    app: &TestApp,
    staff: &Session,
    condition: Value,
    auto_resolve: bool,
) -> Offer {
    let event = app.created("/api/v1/events", staff, live_event()).await;
    let reward = app
        .created(
            "/api/v1/rewards",
            staff,
            json!({"name": "10 points", "type": "POINT", "points": 10}),
        )
        .await;
    let event_id = text(&event["id"]);
    let event_reward = app
        .created(
            &format!("/api/v1/events/{event_id}/rewards"),
            staff,
            json!({"reward_id": reward["id"], "condition": condition, "auto_resolve": auto_resolve}),
        )
        .await;
    Offer {
        event: event_id,
        reward: text(&event_reward["id"]),
    }
}

pub(crate) async fn request(app: &TestApp, who: &Session, offer: &Offer) -> reqwest::Response {
    app.post(&offer.requests(), Some(&who.access_token), json!({}))
        .await
}

async fn created(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 201);
    response.json().await.expect("a request")
}

async fn items(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("a page");
    page["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn a_signed_in_user_requests_a_reward_and_it_lands_in_the_wallet() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(&app, &staff, Value::Null, true).await;
    let user = app.new_user().await;

    let granted = created(request(&app, &user, &offer).await).await;

    assert_eq!(granted["status"], "APPROVED");
    assert_eq!(granted["user_id"], user.user_id.as_str());
    assert_eq!(granted["event_id"], offer.event.as_str());
    assert_eq!(granted["event_reward_id"], offer.reward.as_str());
    assert!(granted["reason_code"].is_null() && granted["created_at"].is_string());
    let wallet: Value = app
        .get("/api/v1/me/wallet", Some(&user.access_token))
        .await
        .json()
        .await
        .expect("a wallet");
    assert_eq!(wallet, json!({"points": 10, "items": [], "badges": []}));
    expect_problem(
        app.get("/api/v1/me/wallet", None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn a_second_request_is_already_requested_and_names_the_first() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(&app, &staff, Value::Null, true).await;
    let user = app.new_user().await;
    let first = created(request(&app, &user, &offer).await).await;

    let problem =
        expect_problem(request(&app, &user, &offer).await, 409, "ALREADY_REQUESTED").await;

    assert_eq!(problem["request_id"], first["id"]);
    let mine = items(
        app.get("/api/v1/requests/mine", Some(&user.access_token))
            .await,
    )
    .await;
    assert_eq!(mine.len(), 1, "the refusal is not recorded");
}

#[tokio::test]
async fn requesting_needs_a_login_and_a_visible_event_reward() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(&app, &staff, Value::Null, true).await;
    let user = app.new_user().await;

    expect_problem(
        app.post(&offer.requests(), None, json!({})).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let unknown = Offer {
        event: offer.event.clone(),
        reward: uuid::Uuid::now_v7().to_string(),
    };
    expect_problem(request(&app, &user, &unknown).await, 404, "NOT_FOUND").await;
    let malformed = Offer {
        event: offer.event.clone(),
        reward: "nope".into(),
    };
    assert_eq!(request(&app, &user, &malformed).await.status(), 400);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_without_a_second_attempt() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(
        &app,
        &staff,
        json!({"type": "CONTINUOUS_LOGIN", "days": 30}),
        true,
    )
    .await;
    let user = app.new_user().await;
    let send = || {
        app.http
            .post(app.url(&offer.requests()))
            .bearer_auth(&user.access_token)
            .header("Idempotency-Key", "try-1")
            .json(&json!({}))
            .send()
    };

    let first = created(send().await.expect("answers")).await;
    let replay = created(send().await.expect("answers")).await;

    assert_eq!(first["status"], "REJECTED");
    assert_eq!(first["reason_code"], "CONDITION_NOT_MET");
    assert_eq!(replay, first);
    let mine = items(
        app.get("/api/v1/requests/mine", Some(&user.access_token))
            .await,
    )
    .await;
    assert_eq!(mine.len(), 1, "one attempt recorded");
}

#[tokio::test]
async fn eligibility_explains_without_recording() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(
        &app,
        &staff,
        json!({"type": "FRIEND_INVITE", "count": 1}),
        true,
    )
    .await;
    let user = app.new_user().await;

    let response = app
        .get(&offer.eligibility(), Some(&user.access_token))
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("an explanation");

    assert_eq!(answer["eligible"], false);
    assert_eq!(
        answer["clauses"],
        json!([{"type": "FRIEND_INVITE", "required": 1, "actual": 0, "met": false}])
    );
    assert_eq!(answer["reason_code"], "CONDITION_NOT_MET");
    expect_problem(
        app.get(&offer.eligibility(), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(
        items(
            app.get("/api/v1/requests/mine", Some(&user.access_token))
                .await
        )
        .await
        .is_empty()
    );
}

/// Polls the eligibility until it is met, for at most a second.
async fn eligible_within_a_second(app: &TestApp, who: &Session, offer: &Offer) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let answer: Value = app
            .get(&offer.eligibility(), Some(&who.access_token))
            .await
            .json()
            .await
            .expect("an explanation");
        if answer["eligible"] == true {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_login_reaches_the_streak_condition_over_the_bus_within_a_second() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(
        &app,
        &staff,
        json!({"type": "CONTINUOUS_LOGIN", "days": 1}),
        true,
    )
    .await;
    let email = format!("streak-{}@stampede.test", uuid::Uuid::new_v4().simple());
    app.sign_up(&email).await;

    let user = app.log_in(&email, PASSWORD).await;

    assert!(eligible_within_a_second(&app, &user, &offer).await);
    assert_eq!(
        created(request(&app, &user, &offer).await).await["status"],
        "APPROVED"
    );
}

#[tokio::test]
async fn a_referral_sign_up_reaches_the_invite_condition_over_the_bus_within_a_second() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(
        &app,
        &staff,
        json!({"type": "FRIEND_INVITE", "count": 1}),
        true,
    )
    .await;
    let inviter = app.new_user().await;
    let me: Value = app
        .get("/api/v1/auth/me", Some(&inviter.access_token))
        .await
        .json()
        .await
        .expect("me");

    let friend = format!("friend-{}@stampede.test", uuid::Uuid::new_v4().simple());
    let response = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": friend, "password": PASSWORD, "referral_code": me["referral_code"]}),
        )
        .await;
    assert_eq!(response.status(), 201);

    assert!(eligible_within_a_second(&app, &inviter, &offer).await);
}

#[tokio::test]
async fn readers_list_and_filter_requests_and_users_see_only_their_own() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let offer = offer(&app, &staff, Value::Null, false).await;
    let (ann, bob) = (app.new_user().await, app.new_user().await);
    let ann_request = created(request(&app, &ann, &offer).await).await;
    created(request(&app, &bob, &offer).await).await;

    let all = items(
        app.get("/api/v1/requests", Some(&auditor.access_token))
            .await,
    )
    .await;
    let path = format!(
        "/api/v1/requests?user_id={}&status=PENDING&event_id={}",
        ann.user_id, offer.event
    );
    let anns = items(app.get(&path, Some(&auditor.access_token)).await).await;
    let mine = items(
        app.get(
            "/api/v1/requests/mine?status=PENDING",
            Some(&ann.access_token),
        )
        .await,
    )
    .await;

    assert_eq!(all.len(), 2);
    assert_eq!(anns, vec![ann_request.clone()]);
    assert_eq!(mine, vec![ann_request.clone()]);
    expect_problem(
        app.get("/api/v1/requests", Some(&ann.access_token)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_problem(app.get("/api/v1/requests", None).await, 401, "UNAUTHORIZED").await;
    expect_problem(
        app.get("/api/v1/requests?user_id=x", Some(&auditor.access_token))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        app.get("/api/v1/requests/mine?status=DONE", Some(&ann.access_token))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;

    let one = format!("/api/v1/requests/{}", text(&ann_request["id"]));
    assert_eq!(app.get(&one, Some(&ann.access_token)).await.status(), 200);
    assert_eq!(
        app.get(&one, Some(&auditor.access_token)).await.status(),
        200
    );
    expect_problem(
        app.get(&one, Some(&bob.access_token)).await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn staff_decide_a_pending_request_once() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let offer = offer(&app, &staff, Value::Null, false).await;
    let user = app.new_user().await;
    let pending = created(request(&app, &user, &offer).await).await;
    assert_eq!(pending["status"], "PENDING");
    let path = format!("/api/v1/requests/{}", text(&pending["id"]));
    let decide = |who: &Session, body: Value| {
        let token = who.access_token.clone();
        let (app, path) = (&app, &path);
        async move {
            app.request(Method::PATCH, path, Some(&token), Some(body))
                .await
        }
    };

    expect_problem(
        decide(&user, json!({"status": "APPROVED"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_problem(
        decide(&auditor, json!({"status": "APPROVED"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_problem(
        decide(&staff, json!({"status": "PENDING"})).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    let response = decide(
        &staff,
        json!({"status": "APPROVED", "reason": "looks fine"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let approved: Value = response.json().await.expect("a request");
    let again = decide(&staff, json!({"status": "REJECTED"})).await;

    assert_eq!(approved["status"], "APPROVED");
    assert_eq!(approved["reason"], "looks fine");
    assert_eq!(approved["decided_by"], staff.user_id.as_str());
    expect_problem(again, 409, "INVALID_TRANSITION").await;
    let wallet: Value = app
        .get("/api/v1/me/wallet", Some(&user.access_token))
        .await
        .json()
        .await
        .expect("a wallet");
    assert_eq!(wallet["points"], 10);
    let unknown = format!("/api/v1/requests/{}", uuid::Uuid::now_v7());
    let missing = app
        .request(
            Method::PATCH,
            &unknown,
            Some(&staff.access_token),
            Some(json!({"status": "APPROVED"})),
        )
        .await;
    expect_problem(missing, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn staff_record_activity_and_a_repeated_source_id_counts_once() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(
        &app,
        &staff,
        json!({"type": "CUSTOM", "metric": "quests", "op": ">=", "value": 2}),
        true,
    )
    .await;
    let user = app.new_user().await;
    let body = json!({"user_id": user.user_id, "metric": "quests", "source_id": "quest-1"});

    let first = app
        .post("/api/v1/activity", Some(&staff.access_token), body.clone())
        .await;
    let resent = app
        .post("/api/v1/activity", Some(&staff.access_token), body.clone())
        .await;

    assert_eq!(first.status(), 202);
    assert_eq!(
        first.json::<Value>().await.expect("a receipt")["duplicate"],
        false
    );
    assert_eq!(resent.status(), 202);
    assert_eq!(
        resent.json::<Value>().await.expect("a receipt")["duplicate"],
        true
    );
    let refused = created(request(&app, &user, &offer).await).await;
    assert_eq!(refused["reason"], "quests is 1, needs >= 2");

    expect_problem(
        app.post("/api/v1/activity", Some(&user.access_token), body.clone())
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_problem(
        app.post("/api/v1/activity", None, body).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let bad = json!({"user_id": "nobody", "metric": "Quests!", "value": 1});
    let problem = expect_problem(
        app.post("/api/v1/activity", Some(&staff.access_token), bad)
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn analytics_are_for_readers() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let offer = offer(&app, &staff, Value::Null, true).await;
    let user = app.new_user().await;
    created(request(&app, &user, &offer).await).await;
    let token = Some(auditor.access_token.as_str());

    let events: Value = app
        .get("/api/v1/analytics/events", token)
        .await
        .json()
        .await
        .expect("json");
    let rewards: Value = app
        .get("/api/v1/analytics/rewards?days=7", token)
        .await
        .json()
        .await
        .expect("json");

    assert_eq!(
        events["by_status"],
        json!([{"status": "ACTIVE", "count": 1}])
    );
    assert_eq!(events["events"][0]["rewards"], 1);
    assert_eq!(events["events"][0]["approved"], 1);
    assert_eq!(
        rewards["requests_by_status"],
        json!([{"status": "APPROVED", "count": 1}])
    );
    assert_eq!(rewards["requests_per_day"][0]["count"], 1);
    let deadline = Instant::now() + Duration::from_secs(1);
    let users = loop {
        let users: Value = app
            .get("/api/v1/analytics/users", token)
            .await
            .json()
            .await
            .expect("json");
        // Sign-ups arrive over the bus: the admin, staff, auditor and user.
        if users["users"] == 4 || Instant::now() > deadline {
            break users;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(users["users"], 4, "{users}");
    assert_eq!(users["participants"], 1);
    assert_eq!(users["participation_rate"], 0.25);
    assert!(users["active_users_per_day"][0]["count"].as_i64() >= Some(3));

    // A chosen period limits the distributions too: last year saw nothing,
    // the last hour everything.
    let year_ago = time::OffsetDateTime::now_utc() - time::Duration::days(365);
    let past = format!(
        "from={}&to={}",
        kernel::Timestamp::from(year_ago),
        kernel::Timestamp::from(year_ago + time::Duration::days(1))
    )
    .replace('+', "%2B");
    let hour = format!(
        "from={}",
        kernel::Timestamp::from(time::OffsetDateTime::now_utc() - time::Duration::hours(1))
    );
    let read = |path: String| {
        let app = &app;
        async move {
            let response = app.get(&path, token).await;
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.expect("json")
        }
    };
    let then = read(format!("/api/v1/analytics/rewards?{past}")).await;
    assert_eq!(then["requests_by_status"], json!([]));
    assert_eq!(then["requests_per_day"], json!([]));
    let then = read(format!("/api/v1/analytics/events?{past}")).await;
    assert_eq!(then["by_status"], json!([]));
    assert_eq!(then["events"], json!([]));
    let then = read(format!("/api/v1/analytics/users?{past}")).await;
    assert_eq!(
        (then["users"].as_i64(), then["participants"].as_i64()),
        (Some(0), Some(0))
    );
    let now = read(format!("/api/v1/analytics/rewards?{hour}")).await;
    assert_eq!(now["requests_by_status"], rewards["requests_by_status"]);
    let now = read(format!("/api/v1/analytics/events?{hour}")).await;
    assert_eq!(now["by_status"], events["by_status"]);
    assert_eq!(now["events"][0]["approved"], 1);
    let now = read(format!("/api/v1/analytics/users?{hour}")).await;
    assert_eq!(now["participants"], 1);
    for bad in [
        "from=yesterday",
        "to=2026-01-01T00:00:00Z",
        "from=2020-01-01T00:00:00Z",
    ] {
        expect_problem(
            app.get(&format!("/api/v1/analytics/rewards?{bad}"), token)
                .await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
    }

    for path in [
        "/api/v1/analytics/events",
        "/api/v1/analytics/rewards",
        "/api/v1/analytics/users",
    ] {
        expect_problem(
            app.get(path, Some(&user.access_token)).await,
            403,
            "FORBIDDEN",
        )
        .await;
        expect_problem(app.get(path, None).await, 401, "UNAUTHORIZED").await;
    }
    expect_problem(
        app.get("/api/v1/analytics/users?days=0", token).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
}

#[tokio::test]
async fn every_signed_in_endpoint_refuses_the_anonymous_and_staff_may_read_requests() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(&app, &staff, Value::Null, false).await;
    let user = app.new_user().await;
    let held = created(request(&app, &user, &offer).await).await;
    let one = format!("/api/v1/requests/{}", text(&held["id"]));

    for path in [
        "/api/v1/requests/mine",
        "/api/v1/me/wallet",
        one.as_str(),
        offer.eligibility().as_str(),
    ] {
        expect_problem(app.get(path, None).await, 401, "UNAUTHORIZED").await;
    }
    let patch = app
        .request(
            Method::PATCH,
            &one,
            None,
            Some(json!({"status": "APPROVED"})),
        )
        .await;
    expect_problem(patch, 401, "UNAUTHORIZED").await;
    assert_eq!(
        items(app.get("/api/v1/requests", Some(&staff.access_token)).await)
            .await
            .len(),
        1
    );
    assert_eq!(app.get(&one, Some(&staff.access_token)).await.status(), 200);
}
