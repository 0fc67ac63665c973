//! A dependency taken away mid-run, through a proxy in front of the real
//! service: clients get 503 `UNAVAILABLE` with `Retry-After` (never a 500),
//! `/readyz` names what is down, and the server recovers by itself once the
//! service is back. PostgreSQL and Redis only: an embedded SQLite file
//! cannot go away, so on the default run these print that they skipped.
//! Two of them do it in the middle of a rush: Redis restarted empty, and
//! PostgreSQL connections terminated.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

async fn open_campaign(app: &TestApp, admin: &Session, stock: u64, per_user: u64) -> String {
    let campaign: Value = app
        .created(
            "/api/v1/coupon-campaigns",
            admin,
            json!({
                "name": "outage drop",
                "discount": {"kind": "PERCENT", "value": 10},
                "total_quantity": stock,
                "per_user_limit": per_user,
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
    let campaign = open_campaign(&app, &admin, 100, 100).await;
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
    let held = held_by(&app, &user).await;
    assert_eq!(
        remaining(&app, &campaign).await,
        Some(100 - held),
        "the outage lost or doubled no unit"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------
// A rush that a dependency's trouble interrupts
// ---------------------------------------------------------------------------

const RUSH_USERS: usize = 16;
/// Coupons issued before the trouble starts.
const ISSUED_BEFORE_OUTAGE: u64 = 15;

/// What one rushing user saw: coupons acknowledged, and whether the rush
/// ended for them with a refusal (sold out or their limit).
struct Rushed {
    acknowledged: u64,
    refused: bool,
}

/// [`RUSH_USERS`] users issuing from one campaign until each is refused,
/// retrying every 503, for at most a minute. Any other answer fails the
/// test: an outage is a 503, never a 500.
struct Rush {
    users: Vec<Session>,
    tasks: Vec<tokio::task::JoinHandle<Rushed>>,
}

impl Rush {
    /// Starts the rush and returns once [`ISSUED_BEFORE_OUTAGE`] coupons
    /// were issued.
    async fn start(app: &TestApp, campaign: &str) -> Self {
        let mut users = Vec::with_capacity(RUSH_USERS);
        for _ in 0..RUSH_USERS {
            users.push(app.new_user().await);
        }
        let issued = Arc::new(AtomicU64::new(0));
        let tasks = users
            .iter()
            .map(|user| {
                let http = app.http.clone();
                let url = app.url(&format!("/api/v1/coupon-campaigns/{campaign}/issue"));
                let token = user.access_token.clone();
                let issued = Arc::clone(&issued);
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    let mut seen = Rushed {
                        acknowledged: 0,
                        refused: false,
                    };
                    while tokio::time::Instant::now() < deadline {
                        let Ok(answer) = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({}))
                            .send()
                            .await
                        else {
                            continue;
                        };
                        match answer.status().as_u16() {
                            201 => {
                                seen.acknowledged += 1;
                                issued.fetch_add(1, Ordering::Relaxed);
                            }
                            409 => {
                                seen.refused = true;
                                return seen;
                            }
                            503 => tokio::time::sleep(Duration::from_millis(50)).await,
                            other => {
                                panic!("a rushing issue got {other}: {:?}", answer.text().await)
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        while issued.load(Ordering::Relaxed) < ISSUED_BEFORE_OUTAGE {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Self { users, tasks }
    }

    /// Waits for every user's end; each must hold at least the coupons it
    /// was acknowledged and at most `per_user`. The coupons held in all.
    async fn finish(self, app: &TestApp, per_user: u64) -> u64 {
        let mut held_in_all = 0;
        for (user, task) in self.users.iter().zip(self.tasks) {
            let seen = task.await.expect("a rushing user");
            assert!(seen.refused, "every user's rush ended with a refusal");
            let held = held_by(app, user).await;
            assert!(
                held >= seen.acknowledged && held <= per_user,
                "a user acknowledged {} coupons and holds {held} (limit {per_user})",
                seen.acknowledged
            );
            held_in_all += held;
        }
        held_in_all
    }
}

/// How many coupons `user` holds.
/// A pool may still hand out a connection the trouble broke: its 503 is
/// retried, for at most [`RECOVERY`].
async fn held_by(app: &TestApp, user: &Session) -> u64 {
    let deadline = tokio::time::Instant::now() + RECOVERY;
    loop {
        let answer = app
            .get("/api/v1/coupons/mine", Some(&user.access_token))
            .await;
        if answer.status() == 503 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(answer.status(), 200, "the user's coupons read");
        let mine: Value = answer.json().await.expect("json");
        return mine["items"].as_array().expect("items").len() as u64;
    }
}

/// The campaign's `remaining` as the API shows it.
async fn remaining(app: &TestApp, campaign: &str) -> Option<u64> {
    let shown: Value = app
        .get(&format!("/api/v1/coupon-campaigns/{campaign}"), None)
        .await
        .json()
        .await
        .expect("json");
    shown["remaining"].as_u64()
}

#[tokio::test]
async fn redis_restarted_empty_mid_rush_loses_and_doubles_nothing_and_reconciles() {
    const STOCK: u64 = 60;
    const PER_USER: u64 = 5;
    let Ok(redis_url) = std::env::var("STAMPEDE_TEST_REDIS_URL") else {
        eprintln!("skipped: a Redis restart needs Redis (STAMPEDE_TEST_REDIS_URL)");
        return;
    };
    let proxy = OutageProxy::start(&OutageProxy::upstream_of(&redis_url)).await;
    let prefix = format!("outage-{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_with(|s| {
        s.stock_gate = StockGateKind::Redis;
        s.rate_limiter = RateLimiterKind::Memory;
        s.redis_url = Some(proxy.route(&redis_url));
        s.redis_prefix.clone_from(&prefix);
    })
    .await;
    let admin = app.admin().await;
    let campaign = open_campaign(&app, &admin, STOCK, PER_USER).await;
    let rush = Rush::start(&app, &campaign).await;

    // The restart: unreachable for a while, then back with nothing in it.
    proxy.cut();
    let ready = app.get("/readyz", None).await;
    let problem = expect_problem(ready, 503, "UNAVAILABLE").await;
    assert_eq!(problem["checks"]["redis"], "down", "{problem}");
    let mut redis = redis::Client::open(redis_url.as_str())
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis itself is up");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .expect("list the deployment's keys");
    assert!(!keys.is_empty(), "the gate had counters in Redis");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .expect("empty the deployment's keys");
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();

    let held = rush.finish(&app, PER_USER).await;
    assert_eq!(
        held, STOCK,
        "the rush sold the whole stock, once: no unit lost or doubled by the restart"
    );
    assert_eq!(remaining(&app, &campaign).await, Some(0));
    let report: Value = app
        .post(
            "/admin-api/stock/reconcile?dry_run=true",
            Some(&admin.access_token),
            json!({}),
        )
        .await
        .json()
        .await
        .expect("a report");
    assert_eq!(
        report["differing"], 0,
        "the gate agrees with the database: {report}"
    );
    assert_eq!(report["errors"], json!([]), "{report}");
    app.stop().await;
}

#[tokio::test]
async fn database_connections_terminated_mid_rush_lose_no_acknowledged_coupon() {
    const STOCK: u64 = 100;
    let pg_url = std::env::var(DATABASE_URL_VAR).unwrap_or_default();
    if !pg_url.starts_with("postgres") {
        eprintln!("skipped: terminating connections needs PostgreSQL ({DATABASE_URL_VAR})");
        return;
    }
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let campaign = open_campaign(&app, &admin, STOCK, STOCK).await;
    let rush = Rush::start(&app, &campaign).await;

    let killer = sqlx::PgPool::connect(app.database_url())
        .await
        .expect("connect to the test database");
    let mut terminated = 0;
    for _ in 0..3 {
        let ended: Vec<bool> = sqlx::query_scalar(
            // Only this test's server: each test's schema names its
            // connections (`application_name`), and other tests run beside.
            "select pg_terminate_backend(pid) from pg_stat_activity \
             where application_name = current_setting('application_name') \
             and pid <> pg_backend_pid()",
        )
        .fetch_all(&killer)
        .await
        .expect("terminate the server's connections");
        terminated += ended.into_iter().filter(|ended| *ended).count();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(terminated > 0, "the server's connections were terminated");

    let held = rush.finish(&app, STOCK).await;
    assert!(held <= STOCK, "{held} coupons of a stock of {STOCK}");
    // A write cut with its connection may have committed: its unit stays
    // taken until the lease sweep or a reconcile asks the database.
    let repaired = app
        .post(
            "/admin-api/stock/reconcile",
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(repaired.status(), 200);
    assert_eq!(
        remaining(&app, &campaign).await,
        Some(STOCK - held),
        "after reconciling, remaining is the stock less the coupons held"
    );
    app.stop().await;
}
