//! Every endpoint's role rule: a caller with the role is let in, callers
//! without it get 403, and the anonymous get 401.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp, expect_problem};

struct Endpoint {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// The ADMIN-only endpoints, aimed at `target`.
fn admin_endpoints(target: &str) -> Vec<Endpoint> {
    vec![
        Endpoint {
            method: Method::GET,
            path: "/api/v1/users".into(),
            body: None,
        },
        Endpoint {
            method: Method::GET,
            path: format!("/api/v1/users/{target}"),
            body: None,
        },
        Endpoint {
            method: Method::PUT,
            path: format!("/api/v1/users/{target}/roles"),
            body: Some(json!({"roles": ["USER"]})),
        },
    ]
}

async fn call(app: &TestApp, e: &Endpoint, who: Option<&Session>) -> reqwest::Response {
    app.request(
        e.method.clone(),
        &e.path,
        who.map(|s| s.access_token.as_str()),
        e.body.clone(),
    )
    .await
}

#[tokio::test]
async fn admin_endpoints_let_in_admins_only() {
    let app = TestApp::spawn().await;
    let target = app.new_user().await;
    let admin = app.admin().await;
    let refused = [
        app.user_with_roles(&["USER"]).await,
        app.user_with_roles(&["USER", "OPERATOR"]).await,
        app.user_with_roles(&["USER", "AUDITOR"]).await,
    ];

    for endpoint in admin_endpoints(&target.user_id) {
        let allowed = call(&app, &endpoint, Some(&admin)).await;
        assert_eq!(
            allowed.status(),
            200,
            "ADMIN on {} {}",
            endpoint.method,
            endpoint.path
        );
        for who in &refused {
            let response = call(&app, &endpoint, Some(who)).await;
            expect_problem(response, 403, "FORBIDDEN").await;
        }
        expect_problem(call(&app, &endpoint, None).await, 401, "UNAUTHORIZED").await;
    }
}

#[tokio::test]
async fn dead_letters_are_listed_for_readers_and_replayed_by_staff() {
    let app = TestApp::spawn().await;
    let unknown = uuid::Uuid::now_v7();
    let list = Endpoint {
        method: Method::GET,
        path: "/admin-api/dead-letters".into(),
        body: None,
    };
    let replay = Endpoint {
        method: Method::POST,
        path: format!("/admin-api/dead-letters/{unknown}/replay"),
        body: None,
    };
    let admin = app.admin().await;
    let operator = app.user_with_roles(&["OPERATOR"]).await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let user = app.user_with_roles(&["USER"]).await;

    for reader in [&admin, &operator, &auditor] {
        let page: Value = call(&app, &list, Some(reader))
            .await
            .json()
            .await
            .expect("a page");
        assert_eq!(page["items"], json!([]));
    }
    expect_problem(call(&app, &list, Some(&user)).await, 403, "FORBIDDEN").await;
    expect_problem(call(&app, &list, None).await, 401, "UNAUTHORIZED").await;

    // Staff get past the guard to the lookup: no such dead letter.
    for staff in [&admin, &operator] {
        expect_problem(call(&app, &replay, Some(staff)).await, 404, "NOT_FOUND").await;
    }
    for refused in [&auditor, &user] {
        expect_problem(call(&app, &replay, Some(refused)).await, 403, "FORBIDDEN").await;
    }
    expect_problem(call(&app, &replay, None).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn staff_discard_a_dead_letter_and_its_count_leaves_metrics() {
    let app = TestApp::spawn().await;
    // A subscriber this server does not run, unique to this test: its
    // series is set by this server alone.
    let subscriber = format!("test.gone_{}", uuid::Uuid::new_v4().simple());
    let dead = insert_dead_letter(&app, &subscriber).await;
    let series = format!("bus_dead_letters{{subscriber=\"{subscriber}\"}} ");
    let gauge = |text: String| {
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()).map(str::to_owned))
    };
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert_eq!(gauge(metrics.clone()).as_deref(), Some("1"), "{metrics}");
    assert!(
        metrics.contains("bus_dead_letters{subscriber=\"notify.reward_granted_email\"}"),
        "every subscriber of the process has a series: {metrics}"
    );
    let discard = Endpoint {
        method: Method::DELETE,
        path: format!("/admin-api/dead-letters/{dead}"),
        body: None,
    };
    let (admin, operator) = (app.admin().await, app.user_with_roles(&["OPERATOR"]).await);
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let user = app.user_with_roles(&["USER"]).await;
    for refused in [&auditor, &user] {
        expect_problem(call(&app, &discard, Some(refused)).await, 403, "FORBIDDEN").await;
    }
    expect_problem(call(&app, &discard, None).await, 401, "UNAUTHORIZED").await;

    let response = call(&app, &discard, Some(&operator)).await;

    assert_eq!(response.status(), 204);
    assert_eq!(response.bytes().await.expect("a body").len(), 0);
    let page: Value = app
        .get("/admin-api/dead-letters", Some(&admin.access_token))
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(page["items"], json!([]), "discarded: no longer listed");
    expect_problem(call(&app, &discard, Some(&admin)).await, 404, "NOT_FOUND").await;
    let replay = Endpoint {
        method: Method::POST,
        path: format!("/admin-api/dead-letters/{dead}/replay"),
        body: None,
    };
    expect_problem(call(&app, &replay, Some(&admin)).await, 404, "NOT_FOUND").await;
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert_eq!(gauge(metrics.clone()).as_deref(), Some("0"), "{metrics}");
}

/// Writes a dead letter for `subscriber` straight into the server's inbox
/// (no endpoint makes one quickly); returns its id.
pub(crate) async fn insert_dead_letter(app: &TestApp, subscriber: &str) -> uuid::Uuid {
    let db = kernel::db::Db::connect(app.database_url(), &kernel::db::DbOptions::default())
        .await
        .expect("the server's database");
    let id = uuid::Uuid::now_v7();
    let now = kernel::Timestamp::from(time::OffsetDateTime::now_utc());
    let subscriber = subscriber.to_owned();
    let written: Result<(), sqlx::Error> = kernel::write_tx!(&db, |conn| {
        sqlx::query(
            "insert into inbox_deliveries (id, message_id, subscriber, topic, version, payload, \
             occurred_at, state, attempts, next_attempt_at, last_error, updated_at) \
             values ($1, $2, $3, 'test.gone', 1, '{}', $4, 'DEAD', 8, $4, 'failure 8', $4)",
        )
        .bind(id)
        .bind(uuid::Uuid::now_v7())
        .bind(&subscriber)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(drop)
    });
    written.expect("a dead letter");
    db.close().await;
    id
}

#[tokio::test]
async fn an_admin_without_the_user_role_is_still_an_admin() {
    let app = TestApp::spawn().await;
    let only_admin = app.user_with_roles(&["ADMIN"]).await;
    let response = app
        .get("/api/v1/users", Some(&only_admin.access_token))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn signed_in_endpoints_let_in_every_role_and_refuse_the_anonymous() {
    let app = TestApp::spawn().await;
    for roles in [&["USER"][..], &["OPERATOR"], &["AUDITOR"], &["ADMIN"]] {
        let who = app.user_with_roles(roles).await;
        let me = app.get("/api/v1/auth/me", Some(&who.access_token)).await;
        assert_eq!(me.status(), 200, "{roles:?}");
        let logout = app
            .request(
                Method::POST,
                "/api/v1/auth/logout",
                Some(&who.access_token),
                None,
            )
            .await;
        assert_eq!(logout.status(), 204, "{roles:?}");
    }
    expect_problem(app.get("/api/v1/auth/me", None).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn public_endpoints_need_no_token() {
    let app = TestApp::spawn().await;
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/.well-known/jwks.json",
        "/metrics",
    ] {
        assert_eq!(app.get(path, None).await.status(), 200, "{path}");
    }
    let signup = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "pub@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!(signup.status(), 201);
}

#[tokio::test]
async fn a_bad_token_on_a_public_endpoint_is_still_refused() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/auth/me", Some("garbage")).await;
    expect_problem(response, 401, "UNAUTHORIZED").await;
    let logout = app
        .request(Method::POST, "/api/v1/auth/logout", Some("garbage"), None)
        .await;
    expect_problem(logout, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn the_sale_endpoints_keep_their_role_rules() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.user_with_roles(&["USER", "OPERATOR"]).await;
    let auditor = app.user_with_roles(&["USER", "AUDITOR"]).await;
    let user = app.user_with_roles(&["USER"]).await;
    let unknown = uuid::Uuid::now_v7();
    let signed_in = [
        Endpoint {
            method: Method::GET,
            path: "/api/v1/reservations/mine".into(),
            body: None,
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/orders/mine".into(),
            body: None,
        },
        Endpoint {
            method: Method::GET,
            path: "/api/v1/tickets/mine".into(),
            body: None,
        },
    ];
    for endpoint in &signed_in {
        for who in [&admin, &operator, &auditor, &user] {
            assert_eq!(
                call(&app, endpoint, Some(who)).await.status(),
                200,
                "{}",
                endpoint.path
            );
        }
        expect_problem(call(&app, endpoint, None).await, 401, "UNAUTHORIZED").await;
    }
    // Readers only: every order.
    let orders = Endpoint {
        method: Method::GET,
        path: "/api/v1/orders".into(),
        body: None,
    };
    for reader in [&admin, &operator, &auditor] {
        assert_eq!(call(&app, &orders, Some(reader)).await.status(), 200);
    }
    expect_problem(call(&app, &orders, Some(&user)).await, 403, "FORBIDDEN").await;
    expect_problem(call(&app, &orders, None).await, 401, "UNAUTHORIZED").await;
    // Staff only: check-in (an unknown code is still an answer).
    let check_in = Endpoint {
        method: Method::POST,
        path: "/api/v1/check-ins".into(),
        body: Some(json!({"code": "nope", "nonce": unknown.to_string()})),
    };
    for staff in [&admin, &operator] {
        assert_eq!(call(&app, &check_in, Some(staff)).await.status(), 200);
    }
    for refused in [&auditor, &user] {
        expect_problem(call(&app, &check_in, Some(refused)).await, 403, "FORBIDDEN").await;
    }
    expect_problem(call(&app, &check_in, None).await, 401, "UNAUTHORIZED").await;
    // Signed in: holds, orders, payments and cancels reach their lookups.
    for (path, body) in [
        (
            format!("/api/v1/products/{unknown}/reservations"),
            json!({"quantity": 1}),
        ),
        (
            "/api/v1/orders".to_owned(),
            json!({"reservation_ids": [unknown]}),
        ),
        (format!("/api/v1/orders/{unknown}/cancel"), json!({})),
    ] {
        let endpoint = Endpoint {
            method: Method::POST,
            path,
            body: Some(body),
        };
        expect_problem(call(&app, &endpoint, Some(&user)).await, 404, "NOT_FOUND").await;
        expect_problem(call(&app, &endpoint, None).await, 401, "UNAUTHORIZED").await;
    }
}
