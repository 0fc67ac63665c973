//! Identity endpoints: each success and each documented error.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, expect_problem, text};

#[tokio::test]
async fn sign_up_returns_the_user_with_a_normalised_email_and_a_referral_code() {
    let app = TestApp::spawn().await;

    let response = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "  Alice@Example.COM ", "password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.expect("a user");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["roles"], json!(["USER"]));
    assert_eq!(text(&user["referral_code"]).len(), 8);
    assert!(user["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
}

#[tokio::test]
async fn sign_up_refuses_a_taken_email_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.sign_up("bob@example.com").await;

    let again = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "BOB@example.com", "password": PASSWORD}),
        )
        .await;

    expect_problem(again, 409, "EMAIL_TAKEN").await;
}

#[tokio::test]
async fn sign_up_reports_every_invalid_field_at_once() {
    let app = TestApp::spawn().await;

    let response = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "not-an-email", "password": "short"}),
        )
        .await;

    let problem = expect_problem(response, 422, "VALIDATION_FAILED").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn a_password_of_exactly_eight_characters_is_enough() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "eight@example.com", "password": "12345678"}),
        )
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn sign_up_with_an_unknown_referral_code_is_refused_and_a_known_one_accepted() {
    let app = TestApp::spawn().await;
    let inviter = app.sign_up("inviter@example.com").await;
    let code = text(&inviter["referral_code"]);

    let unknown = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "x@example.com", "password": PASSWORD, "referral_code": "ZZZZZZZZ"}),
        )
        .await;
    let known = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "y@example.com", "password": PASSWORD, "referral_code": code.to_lowercase()}),
        )
        .await;

    let problem = expect_problem(unknown, 422, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"][0]["field"], "referral_code");
    assert_eq!(known.status(), 201);
}

#[tokio::test]
async fn fifty_concurrent_sign_ups_with_one_email_make_exactly_one_user() {
    let app = TestApp::spawn().await;

    let attempts = (0..50).map(|_| {
        app.post(
            "/api/v1/auth/signup",
            None,
            json!({"email": "race@example.com", "password": PASSWORD}),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();

    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 49);
    let admin = app.admin().await;
    let listed: Value = app
        .get("/api/v1/users?email=race@", Some(&admin.access_token))
        .await
        .json()
        .await
        .expect("a page");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn log_in_returns_tokens_and_sets_an_http_only_strict_cookie() {
    let app = TestApp::spawn().await;
    app.sign_up("carol@example.com").await;

    let response = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "Carol@example.com", "password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    let tokens: Value = response.json().await.expect("tokens");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    assert_eq!(tokens["user"]["email"], "carol@example.com");
    let refresh = text(&tokens["refresh_token"]);
    assert!(refresh.len() >= 43, "at least 256 bits");
    assert!(cookie.starts_with(&format!("stampede_refresh={refresh};")));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains("Secure"));
    assert_eq!(text(&tokens["access_token"]).split('.').count(), 3);
}

#[tokio::test]
async fn the_refresh_cookie_is_secure_when_configured() {
    let app = TestApp::spawn_with(|s| s.secure_cookie = true).await;
    app.sign_up("sec@example.com").await;
    let response = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "sec@example.com", "password": PASSWORD}),
        )
        .await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok());
    assert!(cookie.is_some_and(|c| c.contains("; Secure")));
}

#[tokio::test]
async fn log_in_answers_the_same_for_an_unknown_email_and_a_wrong_password() {
    let app = TestApp::spawn().await;
    app.sign_up("dave@example.com").await;

    let wrong_password = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "dave@example.com", "password": "wrong password"}),
        )
        .await;
    let unknown_email = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;

    let a = expect_problem(wrong_password, 401, "INVALID_CREDENTIALS").await;
    let b = expect_problem(unknown_email, 401, "INVALID_CREDENTIALS").await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn repeated_failed_logins_for_one_email_are_throttled_with_retry_after() {
    let app = TestApp::spawn().await;
    app.sign_up("erin@example.com").await;
    let attempt = |password: &'static str| {
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": "erin@example.com", "password": password}),
        )
    };

    for _ in 0..5 {
        expect_problem(attempt("wrong password").await, 401, "INVALID_CREDENTIALS").await;
    }
    let throttled = attempt(PASSWORD).await;

    let retry_after: u64 = throttled
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry_after >= 1);
    expect_problem(throttled, 429, "RATE_LIMITED").await;
    // Another email from the same address is not affected.
    app.sign_up("frank@example.com").await;
    app.log_in("frank@example.com", PASSWORD).await;
}

/// A login attempt from `address`, as a trusted proxy would forward it.
async fn log_in_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("the server answers")
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_owner_out_from_another() {
    let app = TestApp::spawn_with(|s| s.trust_forwarded_for = true).await;
    app.sign_up("victim@example.com").await;
    let (attacker, owner) = ("203.0.113.7", "198.51.100.2");

    for _ in 0..6 {
        let guess = log_in_from(&app, attacker, "victim@example.com", "wrong password").await;
        assert_ne!(guess.status(), 200);
    }
    // The attacker stays throttled for that email, even with the right password.
    let throttled = log_in_from(&app, attacker, "victim@example.com", PASSWORD).await;
    assert!(throttled.headers().contains_key("retry-after"));
    expect_problem(throttled, 429, "RATE_LIMITED").await;

    // The owner, from an address that has not failed, gets in.
    let response = log_in_from(&app, owner, "victim@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("tokens");
    assert_eq!(tokens["user"]["email"], "victim@example.com");
    // And a typo from that address is an ordinary 401, not a lock.
    let typo = log_in_from(&app, owner, "victim@example.com", "wrong password").await;
    expect_problem(typo, 401, "INVALID_CREDENTIALS").await;
}

#[tokio::test]
async fn an_address_failing_on_many_accounts_stays_throttled_but_others_do_not() {
    let app = TestApp::spawn_with(|s| s.trust_forwarded_for = true).await;
    app.sign_up("heidi@example.com").await;
    let (sprayer, owner) = ("203.0.113.9", "198.51.100.3");

    // 50 failures per address per 15 minutes, each for a different email.
    for i in 0..50 {
        let guess = log_in_from(
            &app,
            sprayer,
            &format!("spray{i}@example.com"),
            "wrong password",
        )
        .await;
        assert_eq!(guess.status(), 401, "guess {i}");
    }

    let throttled = log_in_from(&app, sprayer, "heidi@example.com", PASSWORD).await;
    expect_problem(throttled, 429, "RATE_LIMITED").await;
    let response = log_in_from(&app, owner, "heidi@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn many_failed_logins_from_one_address_are_throttled_across_emails() {
    let app = TestApp::spawn().await;
    app.sign_up("grace@example.com").await;

    // 50 failures per address per 15 minutes, each for a different email.
    let failures = (0..50).map(|i| {
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": format!("guess{i}@example.com"), "password": "wrong password"}),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(failures)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");

    let throttled = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "grace@example.com", "password": PASSWORD}),
        )
        .await;
    expect_problem(throttled, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn me_returns_the_caller_and_refuses_the_anonymous() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;

    let me: Value = app
        .get("/api/v1/auth/me", Some(&user.access_token))
        .await
        .json()
        .await
        .expect("a user");
    let anonymous = app.get("/api/v1/auth/me", None).await;

    assert_eq!(me["id"], user.user_id.as_str());
    assert_eq!(me["email"], user.email.as_str());
    expect_problem(anonymous, 401, "UNAUTHORIZED").await;
}

async fn refresh_with_body(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": token }),
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_the_token_and_reuse_revokes_the_whole_login() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;

    let first = refresh_with_body(&app, &user.refresh_token).await;
    assert_eq!(first.status(), 200);
    let rotated: Value = first.json().await.expect("tokens");
    let new_refresh = text(&rotated["refresh_token"]);
    let new_access = text(&rotated["access_token"]);
    assert_ne!(new_refresh, user.refresh_token);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&new_access)).await.status(),
        200
    );

    let reused = refresh_with_body(&app, &user.refresh_token).await;
    expect_problem(reused, 401, "REFRESH_TOKEN_REUSED").await;

    let after_reuse = refresh_with_body(&app, &new_refresh).await;
    expect_problem(after_reuse, 401, "INVALID_REFRESH_TOKEN").await;
    let access_after_reuse = app.get("/api/v1/auth/me", Some(&new_access)).await;
    expect_problem(access_after_reuse, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn refresh_accepts_the_cookie() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;

    let response = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("stampede_refresh={}", user.refresh_token))
        .send()
        .await
        .expect("an answer");

    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_some());
}

#[tokio::test]
async fn refresh_without_a_known_token_is_refused() {
    let app = TestApp::spawn().await;
    let unknown = refresh_with_body(&app, "not-a-token").await;
    let missing = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .expect("an answer");
    expect_problem(unknown, 401, "INVALID_REFRESH_TOKEN").await;
    expect_problem(missing, 401, "INVALID_REFRESH_TOKEN").await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = TestApp::spawn_with(|s| s.refresh_token_ttl_seconds = 1).await;
    let user = app.new_user().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = refresh_with_body(&app, &user.refresh_token).await;
    expect_problem(response, 401, "INVALID_REFRESH_TOKEN").await;
}

#[tokio::test]
async fn logout_with_a_bearer_token_revokes_that_login_at_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;

    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&user.access_token),
            None,
        )
        .await;

    assert_eq!(response.status(), 204);
    let cleared = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok());
    assert!(cleared.is_some_and(|c| c.contains("Max-Age=0")));
    expect_problem(
        refresh_with_body(&app, &user.refresh_token).await,
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    expect_problem(
        app.get("/api/v1/auth/me", Some(&user.access_token)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn logout_with_the_refresh_token_in_the_body_or_the_cookie_revokes_it() {
    let app = TestApp::spawn().await;
    let by_body = app.new_user().await;
    let by_cookie = app.new_user().await;

    let body = app
        .post(
            "/api/v1/auth/logout",
            None,
            json!({"refresh_token": by_body.refresh_token}),
        )
        .await;
    let cookie = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .header(
            "cookie",
            format!("stampede_refresh={}", by_cookie.refresh_token),
        )
        .send()
        .await
        .expect("an answer");

    assert_eq!(body.status(), 204);
    assert_eq!(cookie.status(), 204);
    for token in [&by_body.refresh_token, &by_cookie.refresh_token] {
        expect_problem(
            refresh_with_body(&app, token).await,
            401,
            "INVALID_REFRESH_TOKEN",
        )
        .await;
    }
}

#[tokio::test]
async fn logout_with_nothing_to_revoke_is_401() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .expect("an answer");
    expect_problem(response, 401, "INVALID_REFRESH_TOKEN").await;
}

#[tokio::test]
async fn the_admin_pages_through_users_and_filters_by_email() {
    let app = TestApp::spawn().await;
    for name in ["ann", "ben", "cat"] {
        app.sign_up(&format!("{name}@paging.test")).await;
    }
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());

    let first: Value = app
        .get("/api/v1/users?limit=2", token)
        .await
        .json()
        .await
        .expect("page");
    let cursor = text(&first["next_cursor"]);
    let second: Value = app
        .get(&format!("/api/v1/users?limit=2&cursor={cursor}"), token)
        .await
        .json()
        .await
        .expect("page");
    let filtered: Value = app
        .get("/api/v1/users?email=PAGING.test", token)
        .await
        .json()
        .await
        .expect("page");

    let emails = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|u| text(&u["email"]))
            .collect()
    };
    // The admin signed up first, then ann, ben, cat — ids are time-ordered.
    assert_eq!(emails(&first), [ADMIN_EMAIL, "ann@paging.test"]);
    assert_eq!(emails(&second), ["ben@paging.test", "cat@paging.test"]);
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        emails(&filtered),
        ["ann@paging.test", "ben@paging.test", "cat@paging.test"]
    );
}

#[tokio::test]
async fn list_parameters_out_of_range_or_forged_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());

    expect_problem(
        app.get("/api/v1/users?limit=0", token).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        app.get("/api/v1/users?limit=101", token).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        app.get("/api/v1/users?limit=ten", token).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_problem(
        app.get("/api/v1/users?cursor=forged", token).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/users?limit=100", token).await.status(),
        200
    );
}

#[tokio::test]
async fn the_admin_reads_one_user_and_unknown_or_malformed_ids_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());

    let found: Value = app
        .get(&format!("/api/v1/users/{}", user.user_id), token)
        .await
        .json()
        .await
        .expect("a user");
    let unknown = app
        .get(&format!("/api/v1/users/{}", uuid::Uuid::now_v7()), token)
        .await;
    let malformed = app.get("/api/v1/users/not-a-uuid", token).await;

    assert_eq!(found["email"], user.email.as_str());
    expect_problem(unknown, 404, "NOT_FOUND").await;
    expect_problem(malformed, 400, "BAD_REQUEST").await;
}

async fn set_roles(app: &TestApp, token: &str, user_id: &str, roles: Value) -> reqwest::Response {
    app.request(
        Method::PUT,
        &format!("/api/v1/users/{user_id}/roles"),
        Some(token),
        Some(json!({ "roles": roles })),
    )
    .await
}

#[tokio::test]
async fn a_role_change_applies_and_older_access_tokens_stop_working_at_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let admin = app.admin().await;

    let response = set_roles(
        &app,
        &admin.access_token,
        &user.user_id,
        json!(["USER", "OPERATOR"]),
    )
    .await;

    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.expect("a user");
    assert_eq!(changed["roles"], json!(["USER", "OPERATOR"]));
    expect_problem(
        app.get("/api/v1/auth/me", Some(&user.access_token)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let again = app.log_in(&user.email, PASSWORD).await;
    let me: Value = app
        .get("/api/v1/auth/me", Some(&again.access_token))
        .await
        .json()
        .await
        .expect("a user");
    assert_eq!(me["roles"], json!(["USER", "OPERATOR"]));
    // Refreshing the old login gives a token with the new roles.
    let refreshed = refresh_roles(&app, &user.refresh_token).await;
    assert_eq!(refreshed, json!(["USER", "OPERATOR"]));
}

async fn refresh_roles(app: &TestApp, refresh_token: &str) -> Value {
    let tokens: Value = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": refresh_token }),
        )
        .await
        .json()
        .await
        .expect("tokens");
    tokens["user"]["roles"].clone()
}

#[tokio::test]
async fn bad_role_lists_are_refused_and_the_last_admin_is_kept() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();

    expect_problem(
        set_roles(&app, token, &user.user_id, json!(["ROOT"])).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        set_roles(&app, token, &user.user_id, json!([])).await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        set_roles(&app, token, &user.user_id, json!("ADMIN")).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    expect_problem(
        set_roles(&app, token, &unknown, json!(["USER"])).await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        set_roles(&app, token, &admin.user_id, json!(["USER"])).await,
        409,
        "LAST_ADMIN",
    )
    .await;

    // With a second admin, the first may step down.
    assert_eq!(
        set_roles(&app, token, &user.user_id, json!(["ADMIN"]))
            .await
            .status(),
        200
    );
    assert_eq!(
        set_roles(&app, token, &admin.user_id, json!(["USER"]))
            .await
            .status(),
        200
    );
}
