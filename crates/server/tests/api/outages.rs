//! A dependency taken away mid-run, through a proxy in front of the real
//! service: clients get 503 `UNAVAILABLE` with `Retry-After` (never a 500),
//! `/readyz` names what is down, and the server recovers by itself once the
//! service is back. PostgreSQL and Redis only: an embedded SQLite file
//! cannot go away, so on the default run these print that they skipped.

use std::time::Duration;

use kernel::testing::{DATABASE_URL_VAR, OutageProxy};
use serde_json::{Value, json};
use server::config::{RateLimiterKind, StockGateKind};

use crate::helpers::{Session, TestApp, expect_problem, from_now};

/// How long recovery may take: the pool's and the client's reconnects.
const RECOVERY: Duration = Duration::from_secs(20);

async fn expect_unavailable(response: reqwest::Response, what: &str) {
    assert!(
        response.headers().contains_key("retry-after"),
        "{what}: 503 carries Retry-After"
    );
    expect_problem(response, 503, "UNAVAILABLE").await;
}

/// Retries `attempt` until it gives `status`, for at most [`RECOVERY`].
async fn eventually(what: &str, status: u16, mut attempt: impl AsyncFnMut() -> reqwest::Response) {
    let deadline = tokio::time::Instant::now() + RECOVERY;
    loop {
        let got = attempt().await.status().as_u16();
        if got == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {got} {RECOVERY:?} after the dependency came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_and_the_server_recovers() {
    let Ok(pg_url) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("skipped: a database outage needs PostgreSQL ({DATABASE_URL_VAR})");
        return;
    };
    let proxy = OutageProxy::start(&OutageProxy::upstream_of(&pg_url)).await;
    let app = TestApp::spawn_with(|s| s.database_url = proxy.route(&s.database_url)).await;
    let admin = app.admin().await;
    assert_eq!(app.get("/api/v1/events", None).await.status(), 200);

    proxy.cut();
    expect_unavailable(app.get("/api/v1/events", None).await, "GET /events").await;
    expect_unavailable(
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": admin.email, "password": crate::helpers::ADMIN_PASSWORD}),
        )
        .await,
        "POST /auth/login",
    )
    .await;
    expect_unavailable(
        app.get("/api/v1/coupon-campaigns", Some(&admin.access_token))
            .await,
        "GET /coupon-campaigns",
    )
    .await;
    let ready = app.get("/readyz", None).await;
    let problem = expect_problem(ready, 503, "UNAVAILABLE").await;
    assert_eq!(problem["checks"]["database"], "down", "{problem}");

    proxy.restore();
    eventually("GET /events", 200, async || {
        app.get("/api/v1/events", None).await
    })
    .await;
    eventually("GET /readyz", 200, async || app.get("/readyz", None).await).await;
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": admin.email, "password": crate::helpers::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), 200, "logins work again");
    app.stop().await;
}

async fn open_campaign(app: &TestApp, admin: &Session) -> String {
    let campaign: Value = app
        .created(
            "/api/v1/coupon-campaigns",
            admin,
            json!({
                "name": "outage drop",
                "discount": {"kind": "PERCENT", "value": 10},
                "total_quantity": 100,
                "per_user_limit": 100,
                "issue_starts_at": from_now(time::Duration::hours(-1)),
                "issue_ends_at": from_now(time::Duration::hours(1)),
                "valid_until": from_now(time::Duration::days(7)),
            }),
        )
        .await;
    campaign["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn a_redis_outage_answers_503_to_claims_and_the_server_recovers() {
    let Ok(redis_url) = std::env::var("STAMPEDE_TEST_REDIS_URL") else {
        eprintln!("skipped: a Redis outage needs Redis (STAMPEDE_TEST_REDIS_URL)");
        return;
    };
    let proxy = OutageProxy::start(&OutageProxy::upstream_of(&redis_url)).await;
    let app = TestApp::spawn_with(|s| {
        s.stock_gate = StockGateKind::Redis;
        s.rate_limiter = RateLimiterKind::Memory;
        s.redis_url = Some(proxy.route(&redis_url));
    })
    .await;
    let admin = app.admin().await;
    let user = app.new_user().await;
    let campaign = open_campaign(&app, &admin).await;
    let issue = format!("/api/v1/coupon-campaigns/{campaign}/issue");
    assert_eq!(
        app.post(&issue, Some(&user.access_token), json!({}))
            .await
            .status(),
        201
    );

    proxy.cut();
    expect_unavailable(
        app.post(&issue, Some(&user.access_token), json!({})).await,
        "POST …/issue",
    )
    .await;
    let ready = app.get("/readyz", None).await;
    let problem = expect_problem(ready, 503, "UNAVAILABLE").await;
    assert_eq!(problem["checks"]["redis"], "down", "{problem}");
    assert_eq!(problem["checks"]["database"], "up", "{problem}");

    proxy.restore();
    eventually("POST …/issue", 201, async || {
        app.post(&issue, Some(&user.access_token), json!({})).await
    })
    .await;
    let mine: Value = app
        .get("/api/v1/coupons/mine", Some(&user.access_token))
        .await
        .json()
        .await
        .expect("json");
    let held = mine["items"].as_array().expect("items").len();
    let remaining: Value = app
        .get(&format!("/api/v1/coupon-campaigns/{campaign}"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        remaining["remaining"].as_u64(),
        Some(100 - held as u64),
        "the outage lost or doubled no unit: {remaining}"
    );
    app.stop().await;
}
