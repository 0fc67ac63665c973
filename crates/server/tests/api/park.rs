//! The park over HTTP: attractions and hashtag search, the line from join
//! to admission, expiry, the wait board, the Slack notice of a call, every
//! role rule allowed and refused, and bad input that changes nothing.

use std::sync::{Arc, Mutex};

use http::Method;
use kernel::Secret;
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp, expect_problem, text};

pub(crate) fn ride(name: &str, tags: &[&str]) -> Value {
    json!({
        "name": name,
        "kind": "RIDE",
        "hashtags": tags,
        "capacity_per_cycle": 10,
        "cycle_seconds": 60,
    })
}

pub(crate) async fn attraction(app: &TestApp, staff: &Session, body: Value) -> Value {
    app.created("/api/v1/attractions", staff, body).await
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    response.json().await.expect("a JSON body")
}

fn line_path(a: &Value) -> String {
    format!("/api/v1/attractions/{}/line", text(&a["id"]))
}

async fn join(app: &TestApp, who: &Session, a: &Value, body: Value) -> reqwest::Response {
    app.post(&line_path(a), Some(&who.access_token), body).await
}

pub(crate) async fn patch(
    app: &TestApp,
    who: &Session,
    a: &Value,
    body: Value,
) -> reqwest::Response {
    app.request(
        Method::PATCH,
        &format!("/api/v1/attractions/{}", text(&a["id"])),
        Some(&who.access_token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn staff_create_attractions_and_anyone_finds_them_by_all_of_their_hashtags() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let dragon = attraction(
        &app,
        &staff,
        ride("Dragon", &["#Thrill", "롤러코스터", "family"]),
    )
    .await;
    assert_eq!(
        dragon["hashtags"],
        json!(["family", "thrill", "롤러코스터"])
    );
    assert_eq!(dragon["status"], "OPERATING");
    assert_eq!(dragon["description"], "");
    let teacups = attraction(&app, &staff, ride("Teacups", &["family", "THRILL"])).await;
    let garden = attraction(
        &app,
        &staff,
        json!({"name": "Garden", "kind": "SIGHT", "hashtags": ["family"]}),
    )
    .await;
    assert_eq!(garden["capacity_per_cycle"], 20);
    assert_eq!(garden["cycle_seconds"], 300);

    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| text(&a["id"]))
            .collect()
    };
    let both = json_of(
        app.get("/api/v1/attractions?hashtag=family&hashtag=%23thrill", None)
            .await,
        200,
    )
    .await;
    assert_eq!(ids(&both), [text(&dragon["id"]), text(&teacups["id"])]);
    let korean = json_of(
        app.get(
            "/api/v1/attractions?hashtag=%EB%A1%A4%EB%9F%AC%EC%BD%94%EC%8A%A4%ED%84%B0",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ids(&korean), [text(&dragon["id"])]);
    let sights = json_of(app.get("/api/v1/attractions?kind=SIGHT", None).await, 200).await;
    assert_eq!(ids(&sights), [text(&garden["id"])]);
    json_of(
        patch(&app, &staff, &garden, json!({"status": "CLOSED"})).await,
        200,
    )
    .await;
    let closed = json_of(
        app.get("/api/v1/attractions?status=CLOSED&hashtag=family", None)
            .await,
        200,
    )
    .await;
    assert_eq!(ids(&closed), [text(&garden["id"])]);
    let open_rides = json_of(
        app.get("/api/v1/attractions?status=OPERATING&kind=RIDE", None)
            .await,
        200,
    )
    .await;
    assert_eq!(ids(&open_rides).len(), 2);
    let none = json_of(
        app.get("/api/v1/attractions?hashtag=family&hashtag=nowhere", None)
            .await,
        200,
    )
    .await;
    assert_eq!(none["items"], json!([]));

    // Keyset pages.
    let first = json_of(app.get("/api/v1/attractions?limit=2", None).await, 200).await;
    assert_eq!(ids(&first).len(), 2);
    let cursor = text(&first["next_cursor"]);
    let second = json_of(
        app.get(
            &format!("/api/v1/attractions?limit=2&cursor={cursor}"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ids(&second), [text(&garden["id"])]);
    assert!(second["next_cursor"].is_null());

    // Most used first, with counts; a prefix narrows.
    let tags = json_of(app.get("/api/v1/hashtags", None).await, 200).await;
    assert_eq!(tags[0], json!({"tag": "family", "count": 3}));
    assert_eq!(tags[1], json!({"tag": "thrill", "count": 2}));
    let korean = json_of(
        app.get("/api/v1/hashtags?prefix=%EB%A1%A4", None).await,
        200,
    )
    .await;
    assert_eq!(korean, json!([{"tag": "롤러코스터", "count": 1}]));

    // Retagging moves the counts.
    let changed = json_of(
        patch(&app, &staff, &teacups, json!({"hashtags": ["spin"]})).await,
        200,
    )
    .await;
    assert_eq!(changed["hashtags"], json!(["spin"]));
    let thrill = json_of(app.get("/api/v1/hashtags?prefix=thr", None).await, 200).await;
    assert_eq!(thrill, json!([{"tag": "thrill", "count": 1}]));
    let read = json_of(
        app.get(
            &format!("/api/v1/attractions/{}", text(&teacups["id"])),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(read["hashtags"], json!(["spin"]));
    app.stop().await;
}

#[tokio::test]
async fn bad_attractions_and_searches_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let long = "x".repeat(41);
    for body in [
        ride("", &[]),
        ride(&"n".repeat(201), &[]),
        ride("Ok", &[long.as_str()]),
        ride("Ok", &["two words"]),
        ride("Ok", &["#"]),
        json!({"name": "Ok", "kind": "RIDE", "capacity_per_cycle": 0}),
        json!({"name": "Ok", "kind": "RIDE", "cycle_seconds": 100000}),
        json!({"name": "Bad\u{0}", "kind": "RIDE"}),
    ] {
        let response = app
            .post("/api/v1/attractions", Some(&staff.access_token), body)
            .await;
        expect_problem(response, 422, "VALIDATION_FAILED").await;
    }
    let kind = app
        .post(
            "/api/v1/attractions",
            Some(&staff.access_token),
            json!({"name": "Ok", "kind": "BOAT"}),
        )
        .await;
    assert_eq!(kind.status(), 400);
    let listed = json_of(app.get("/api/v1/attractions", None).await, 200).await;
    assert_eq!(listed["items"], json!([]), "nothing was created");
    let tags = json_of(app.get("/api/v1/hashtags", None).await, 200).await;
    assert_eq!(tags, json!([]));

    expect_problem(
        app.get("/api/v1/attractions?kind=BOAT", None).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_problem(
        app.get("/api/v1/attractions?hashtag=two+words", None).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        app.get("/api/v1/hashtags?limit=0", None).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    let unknown = format!("/api/v1/attractions/{}", uuid::Uuid::now_v7());
    expect_problem(app.get(&unknown, None).await, 404, "NOT_FOUND").await;
    expect_problem(
        app.get(&format!("{unknown}/wait"), None).await,
        404,
        "NOT_FOUND",
    )
    .await;

    let a = attraction(&app, &staff, ride("Dragon", &["thrill"])).await;
    let bad = patch(&app, &staff, &a, json!({"name": " ", "status": "OPEN"})).await;
    assert_eq!(bad.status(), 400, "an unknown status is a bad body");
    let bad = patch(&app, &staff, &a, json!({"name": " ", "cycle_seconds": 0})).await;
    expect_problem(bad, 422, "VALIDATION_FAILED").await;
    let read = json_of(
        app.get(&format!("/api/v1/attractions/{}", text(&a["id"])), None)
            .await,
        200,
    )
    .await;
    assert_eq!(
        (read["name"].clone(), read["cycle_seconds"].clone()),
        (json!("Dragon"), json!(60))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_party_joins_is_called_and_admitted_and_the_board_follows() {
    let app = TestApp::spawn_with(|s| s.max_lines_per_user = 2).await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let a = attraction(&app, &staff, ride("Dragon", &["thrill"])).await;
    let b = attraction(&app, &staff, ride("Teacups", &[])).await;
    let c = attraction(&app, &staff, ride("Wheel", &[])).await;
    let guests = [
        app.new_user().await,
        app.new_user().await,
        app.new_user().await,
    ];

    let first = json_of(
        join(&app, &guests[0], &a, json!({"party_size": 2})).await,
        201,
    )
    .await;
    assert_eq!(first["status"], "WAITING");
    assert_eq!(first["position"], 1);
    // 2 guests at 10 per 60 s.
    assert_eq!(first["estimated_wait_seconds"], 12);
    let second = json_of(
        app.request(
            Method::POST,
            &line_path(&a),
            Some(&guests[1].access_token),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        (second["position"].clone(), second["party_size"].clone()),
        (json!(2), json!(1))
    );
    json_of(join(&app, &guests[2], &a, json!({})).await, 201).await;

    expect_problem(
        join(&app, &guests[0], &a, json!({})).await,
        409,
        "ALREADY_IN_LINE",
    )
    .await;
    // A retried join with the same key replays the first answer.
    let keyed = || {
        app.http
            .post(app.url(&line_path(&b)))
            .bearer_auth(&guests[1].access_token)
            .header("Idempotency-Key", "join-teacups-1")
            .json(&json!({"party_size": 3}))
            .send()
    };
    let once = json_of(keyed().await.expect("an answer"), 201).await;
    let twice = json_of(keyed().await.expect("an answer"), 201).await;
    assert_eq!(once["id"], twice["id"]);
    json_of(join(&app, &guests[0], &b, json!({})).await, 201).await;
    expect_problem(
        join(&app, &guests[0], &c, json!({})).await,
        409,
        "LINE_LIMIT_REACHED",
    )
    .await;

    let board = json_of(
        app.get(
            &format!("/api/v1/attractions/{}/wait", text(&a["id"])),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(board["status"], "OPERATING");
    assert_eq!(board["line_length"], 3);
    assert_eq!(board["admitted_last_hour"], 0);
    assert!(board["estimated_wait_seconds"].as_u64().is_some());

    let called = json_of(
        app.post(
            &format!("{}/call", line_path(&a)),
            Some(&staff.access_token),
            json!({"count": 2}),
        )
        .await,
        200,
    )
    .await;
    let called = called.as_array().expect("entries").clone();
    assert_eq!(called.len(), 2);
    assert_eq!(called[0]["id"], first["id"]);
    assert_eq!(called[0]["status"], "CALLED");
    assert!(called[0]["return_by"].is_string());
    let me = json_of(
        app.get(
            &format!("{}/me", line_path(&a)),
            Some(&guests[2].access_token),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(me["position"], 1, "the third moved up");
    let mine = json_of(
        app.get(
            &format!("{}/me", line_path(&a)),
            Some(&guests[0].access_token),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(mine["status"], "CALLED");
    assert!(mine["position"].is_null() && mine["called_at"].is_string());

    let admit = |id: &Value| format!("/api/v1/line-entries/{}/admit", text(id));
    // The gate of another attraction refuses it.
    expect_problem(
        app.post(
            &admit(&first["id"]),
            Some(&staff.access_token),
            json!({"attraction_id": b["id"]}),
        )
        .await,
        409,
        "WRONG_ATTRACTION",
    )
    .await;
    let admitted = json_of(
        app.request(
            Method::POST,
            &admit(&first["id"]),
            Some(&staff.access_token),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(admitted["status"], "ADMITTED");
    expect_problem(
        app.request(
            Method::POST,
            &admit(&first["id"]),
            Some(&staff.access_token),
            None,
        )
        .await,
        409,
        "NOT_CALLED",
    )
    .await;
    // Still waiting: not called.
    expect_problem(
        app.request(
            Method::POST,
            &admit(&me["id"]),
            Some(&staff.access_token),
            None,
        )
        .await,
        409,
        "NOT_CALLED",
    )
    .await;
    // A called guest who left is not admitted.
    let left = app
        .request(
            Method::DELETE,
            &format!("{}/me", line_path(&a)),
            Some(&guests[1].access_token),
            None,
        )
        .await;
    assert_eq!(left.status(), 204);
    expect_problem(
        app.request(
            Method::POST,
            &admit(&called[1]["id"]),
            Some(&staff.access_token),
            None,
        )
        .await,
        409,
        "NOT_CALLED",
    )
    .await;
    let again = app
        .request(
            Method::DELETE,
            &format!("{}/me", line_path(&a)),
            Some(&guests[1].access_token),
            None,
        )
        .await;
    expect_problem(again, 404, "NOT_FOUND").await;

    let board = json_of(
        app.get(
            &format!("/api/v1/attractions/{}/wait", text(&a["id"])),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (
            board["line_length"].clone(),
            board["admitted_last_hour"].clone()
        ),
        (json!(1), json!(2))
    );

    // Readers see the line in order.
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let line = json_of(
        app.get(&line_path(&a), Some(&auditor.access_token)).await,
        200,
    )
    .await;
    assert_eq!(line["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(line["items"][0]["id"], me["id"]);

    // DOWN pauses: no calls, no joins, estimates null, position kept.
    json_of(
        patch(&app, &staff, &a, json!({"status": "DOWN"})).await,
        200,
    )
    .await;
    expect_problem(
        app.post(
            &format!("{}/call", line_path(&a)),
            Some(&staff.access_token),
            json!({"count": 1}),
        )
        .await,
        409,
        "ATTRACTION_NOT_OPERATING",
    )
    .await;
    expect_problem(
        join(&app, &app.new_user().await, &a, json!({})).await,
        409,
        "ATTRACTION_NOT_OPERATING",
    )
    .await;
    let paused = json_of(
        app.get(
            &format!("{}/me", line_path(&a)),
            Some(&guests[2].access_token),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(paused["position"], 1);
    assert!(paused["estimated_wait_seconds"].is_null());
    let board = json_of(
        app.get(
            &format!("/api/v1/attractions/{}/wait", text(&a["id"])),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(board["status"], "DOWN");
    assert!(board["estimated_wait_seconds"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn bad_line_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let guest = app.new_user().await;
    let a = attraction(&app, &staff, ride("Dragon", &[])).await;
    for party in [json!(0), json!(-1), json!(13)] {
        expect_problem(
            join(&app, &guest, &a, json!({"party_size": party})).await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
    }
    let unknown = json!({"id": uuid::Uuid::now_v7().to_string()});
    expect_problem(
        join(&app, &guest, &unknown, json!({})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        app.get(&format!("{}/me", line_path(&a)), Some(&guest.access_token))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    for count in [json!(0), json!(-3), json!(1_000_000)] {
        expect_problem(
            app.post(
                &format!("{}/call", line_path(&a)),
                Some(&staff.access_token),
                json!({"count": count}),
            )
            .await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
    }
    expect_problem(
        app.post(
            &format!("{}/call", line_path(&unknown)),
            Some(&staff.access_token),
            json!({"count": 1}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        app.request(
            Method::POST,
            &format!("/api/v1/line-entries/{}/admit", uuid::Uuid::now_v7()),
            Some(&staff.access_token),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let board = json_of(
        app.get(
            &format!("/api/v1/attractions/{}/wait", text(&a["id"])),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(board["line_length"], 0, "nothing joined");
    app.stop().await;
}

#[tokio::test]
async fn a_call_not_answered_in_time_expires() {
    let app = TestApp::spawn_with(|s| s.call_grace_seconds = 1).await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let guest = app.new_user().await;
    let a = attraction(&app, &staff, ride("Dragon", &[])).await;
    let entry = json_of(join(&app, &guest, &a, json!({})).await, 201).await;
    json_of(
        app.post(
            &format!("{}/call", line_path(&a)),
            Some(&staff.access_token),
            json!({"count": 5}),
        )
        .await,
        200,
    )
    .await;
    let mut status = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let me = json_of(
            app.get(&format!("{}/me", line_path(&a)), Some(&guest.access_token))
                .await,
            200,
        )
        .await;
        status = me["status"].clone();
        if status == "EXPIRED" {
            break;
        }
    }
    assert_eq!(status, "EXPIRED", "the sweeper expired the call");
    expect_problem(
        app.request(
            Method::POST,
            &format!("/api/v1/line-entries/{}/admit", text(&entry["id"])),
            Some(&staff.access_token),
            None,
        )
        .await,
        409,
        "EXPIRED",
    )
    .await;
    // Free to join again.
    json_of(join(&app, &guest, &a, json!({})).await, 201).await;
    app.stop().await;
}

#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Value>>>);

async fn receive(
    axum::extract::State(inbox): axum::extract::State<Inbox>,
    axum::Json(body): axum::Json<Value>,
) -> &'static str {
    inbox.0.lock().expect("lock").push(body);
    "ok"
}

#[tokio::test]
async fn a_call_reaches_the_slack_webhook_naming_the_attraction_and_positions() {
    let inbox = Inbox::default();
    let receiver = axum::Router::new()
        .route("/slack", axum::routing::post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, receiver).await;
    });
    let app = TestApp::spawn_with(|s| {
        s.slack_webhook_url = Some(Secret::new(format!("http://{addr}/slack")));
    })
    .await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let a = attraction(&app, &staff, ride("Dragon Coaster", &[])).await;
    for _ in 0..3 {
        json_of(join(&app, &app.new_user().await, &a, json!({})).await, 201).await;
    }
    json_of(
        app.post(
            &format!("{}/call", line_path(&a)),
            Some(&staff.access_token),
            json!({"count": 2}),
        )
        .await,
        200,
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = inbox.0.lock().expect("lock").clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(got.len(), 1, "one message per call: {got:?}");
    let text = got[0]["text"].as_str().expect("a text");
    assert!(text.contains("Dragon Coaster"), "{text}");
    assert!(text.contains("positions 1, 2"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn every_park_route_lets_in_its_role_and_refuses_the_others() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.user_with_roles(&["OPERATOR"]).await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let user = app.new_user().await;
    let a = attraction(&app, &admin, ride("Dragon", &[])).await;
    let id = text(&a["id"]);

    // Staff only: create, patch, call, admit.
    for staff in [&admin, &operator] {
        attraction(&app, staff, ride("More", &[])).await;
        json_of(
            patch(&app, staff, &a, json!({"description": "Fast"})).await,
            200,
        )
        .await;
        json_of(
            app.post(
                &format!("{}/call", line_path(&a)),
                Some(&staff.access_token),
                json!({"count": 1}),
            )
            .await,
            200,
        )
        .await;
    }
    for who in [&auditor, &user] {
        let token = Some(who.access_token.as_str());
        expect_problem(
            app.post("/api/v1/attractions", token, ride("No", &[]))
                .await,
            403,
            "FORBIDDEN",
        )
        .await;
        expect_problem(
            patch(&app, who, &a, json!({"name": "No"})).await,
            403,
            "FORBIDDEN",
        )
        .await;
        expect_problem(
            app.post(
                &format!("{}/call", line_path(&a)),
                token,
                json!({"count": 1}),
            )
            .await,
            403,
            "FORBIDDEN",
        )
        .await;
        expect_problem(
            app.request(
                Method::POST,
                &format!("/api/v1/line-entries/{}/admit", uuid::Uuid::now_v7()),
                token,
                None,
            )
            .await,
            403,
            "FORBIDDEN",
        )
        .await;
    }
    // Readers: the whole line.
    for reader in [&admin, &operator, &auditor] {
        json_of(
            app.get(&line_path(&a), Some(&reader.access_token)).await,
            200,
        )
        .await;
    }
    expect_problem(
        app.get(&line_path(&a), Some(&user.access_token)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    // Signed in: join, me, leave.
    json_of(join(&app, &user, &a, json!({})).await, 201).await;
    json_of(
        app.get(&format!("{}/me", line_path(&a)), Some(&user.access_token))
            .await,
        200,
    )
    .await;
    // Anonymous: 401 everywhere but the public reads.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/attractions".to_owned(),
            Some(ride("No", &[])),
        ),
        (
            Method::PATCH,
            format!("/api/v1/attractions/{id}"),
            Some(json!({})),
        ),
        (Method::POST, line_path(&a), Some(json!({}))),
        (Method::GET, format!("{}/me", line_path(&a)), None),
        (Method::DELETE, format!("{}/me", line_path(&a)), None),
        (Method::GET, line_path(&a), None),
        (
            Method::POST,
            format!("{}/call", line_path(&a)),
            Some(json!({"count": 1})),
        ),
        (
            Method::POST,
            format!("/api/v1/line-entries/{}/admit", uuid::Uuid::now_v7()),
            None,
        ),
    ] {
        let response = app.request(method.clone(), &path, None, body).await;
        expect_problem(response, 401, "UNAUTHORIZED").await;
    }
    for path in [
        "/api/v1/attractions".to_owned(),
        format!("/api/v1/attractions/{id}"),
        format!("/api/v1/attractions/{id}/wait"),
        "/api/v1/hashtags?prefix=d".to_owned(),
    ] {
        assert_eq!(app.get(&path, None).await.status(), 200, "{path}");
    }
    let left = app
        .request(
            Method::DELETE,
            &format!("{}/me", line_path(&a)),
            Some(&user.access_token),
            None,
        )
        .await;
    assert_eq!(left.status(), 204);
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_covers_every_park_route() {
    let app = TestApp::spawn().await;
    let doc = app.openapi().await;
    for (path, methods) in [
        ("/api/v1/attractions", &["get", "post"][..]),
        ("/api/v1/attractions/{id}", &["get", "patch"]),
        ("/api/v1/attractions/{id}/wait", &["get"]),
        ("/api/v1/hashtags", &["get"]),
        ("/api/v1/attractions/{id}/line", &["get", "post"]),
        ("/api/v1/attractions/{id}/line/me", &["get", "delete"]),
        ("/api/v1/attractions/{id}/line/call", &["post"]),
        ("/api/v1/line-entries/{id}/admit", &["post"]),
    ] {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is documented"
            );
        }
    }
    app.stop().await;
}
