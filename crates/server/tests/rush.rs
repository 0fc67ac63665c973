//! Coupon issuance invariants, checked on real `stampede` processes: a rush
//! interrupted by `kill -9` loses no acknowledged coupon and leaves counters
//! that agree with the database once the server is back; two servers sharing
//! PostgreSQL and Redis never oversell one campaign.
//!
//! Embedded by default (an SQLite file, the in-memory stock gate). With a
//! PostgreSQL `STAMPEDE_TEST_DATABASE_URL` and `STAMPEDE_TEST_REDIS_URL` the
//! servers run scaled out: PostgreSQL, and the Redis gate under a key prefix
//! of the test's own (`STAMPEDE_TEST_STOCK_GATE=postgres` picks the
//! PostgreSQL gate instead).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kernel::Timestamp;
use kernel::crash::CrashPoint;
use kernel::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_stampede");

const ADMIN_EMAIL: &str = "rush-admin@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// How long a server may take to answer `GET /readyz` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(45);
const READY_INTERVAL: Duration = Duration::from_millis(50);
/// Attempts at starting a server, in case another process took its port
/// between our probe and its bind.
const START_ATTEMPTS: u32 = 3;
/// How long a killed server may take to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// One HTTP request, and one whole rush.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const RUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines of each server shown when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// Client tasks sending issue requests at once.
const CONCURRENCY: usize = 64;

// ---------------------------------------------------------------------------
// kill -9 in the middle of a rush
// ---------------------------------------------------------------------------

// The two tests check separate promises, so a failure names the one broken:
// durability (nothing acknowledged is lost, nothing oversold) and the
// counters (rebuilt to agree with the rows).

const CRASH_STOCK: usize = 300;
const CRASH_PER_USER: usize = 2;
const CRASH_USERS: usize = 200;
/// Coupons the client must have seen issued before the server is killed.
const KILL_AFTER_ISSUED: usize = 60;
/// The servers' stock lease age: the shortest accepted, so that the sweep
/// after a restart comes soon.
const LEASE_AGE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_rush_keeps_every_acknowledged_coupon_and_never_oversells() {
    let deployment = Deployment::from_env().await;

    let crash = Crash::run(&deployment).await;

    let held = holdings(&crash.server, &crash.campaign, &crash.users).await;
    assert_acknowledged_are_held(&crash.before, &held);
    assert_nobody_over(&held, CRASH_PER_USER);
    let kept = total(&held);
    assert!(
        kept >= crash.before.issued.len() && kept <= CRASH_STOCK,
        "{kept} coupons in the database after {} acknowledged, stock {CRASH_STOCK}",
        crash.before.issued.len()
    );

    let after = crash.rush_again(&deployment).await;

    let held = holdings(&crash.server, &crash.campaign, &crash.users).await;
    assert_acknowledged_are_held(&crash.before, &held);
    assert_acknowledged_are_held(&after, &held);
    assert_nobody_over(&held, CRASH_PER_USER);
    assert!(
        total(&held) <= CRASH_STOCK,
        "{} coupons of a stock of {CRASH_STOCK}",
        total(&held)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_kill_mid_rush_the_restarted_server_counts_exactly_the_coupons_in_the_database() {
    let deployment = Deployment::from_env().await;

    let crash = Crash::run(&deployment).await;

    let kept = total(&holdings(&crash.server, &crash.campaign, &crash.users).await);
    // A shared gate still counts the units of claims that died with the
    // killed server until the restarted one sweeps their leases.
    let shown = remaining_once_swept(&crash.server, &crash.campaign, CRASH_STOCK - kept).await;
    let report = reconcile_dry_run(&crash.server, &crash.admin).await;
    assert_eq!(
        shown,
        CRASH_STOCK - kept,
        "remaining after the restart is the stock less the {kept} coupons in the database; \
         reconciliation (dry run) reports {report}"
    );
    assert_counters_agree(&report);

    let after = crash.rush_again(&deployment).await;

    assert_eq!(
        kept + after.issued.len(),
        CRASH_STOCK,
        "the {kept} coupons kept through the crash and the {} issued after it are the whole stock",
        after.issued.len()
    );
    let held = holdings(&crash.server, &crash.campaign, &crash.users).await;
    assert_eq!(total(&held), CRASH_STOCK);
    assert_eq!(remaining(&crash.server, &crash.campaign).await, 0);
    assert_counters_agree(&reconcile_dry_run(&crash.server, &crash.admin).await);
}

/// A campaign whose rush was cut short by `kill -9`, and the server
/// restarted on the same database and gate.
struct Crash {
    server: Server,
    admin: String,
    campaign: String,
    users: Arc<Vec<TestUser>>,
    /// What the client saw before the kill.
    before: Tally,
}

impl Crash {
    /// Every user tries once more than the limit; the server dies once the
    /// client has seen [`KILL_AFTER_ISSUED`] coupons, with requests in flight.
    async fn run(deployment: &Deployment) -> Self {
        let server = deployment.start().await;
        let admin = log_in_admin(&server).await;
        let campaign = create_campaign(&server, &admin, CRASH_STOCK, CRASH_PER_USER).await;
        let users = Arc::new(create_users(&server, &admin, CRASH_USERS).await);
        let running = rush(
            vec![server.issue_url(&campaign)],
            Arc::clone(&users),
            attempts(CRASH_USERS, CRASH_PER_USER + 1, 1),
        );
        wait_until_issued(&running, KILL_AFTER_ISSUED).await;
        server.kill().await;
        let before = finished(running).await;
        eprintln!(
            "[{}] before the kill: {}",
            deployment.name(),
            before.summary()
        );
        assert!(
            before.issued.len() < CRASH_STOCK && before.cut_off > 0,
            "the kill interrupted the rush: {}",
            before.summary()
        );
        let server = deployment.start().await;
        let admin = log_in_admin(&server).await;
        Self {
            server,
            admin,
            campaign,
            users,
            before,
        }
    }

    /// The same rush again, on the restarted server, to the end.
    async fn rush_again(&self, deployment: &Deployment) -> Tally {
        let after = finished(rush(
            vec![self.server.issue_url(&self.campaign)],
            Arc::clone(&self.users),
            attempts(CRASH_USERS, CRASH_PER_USER + 1, 1),
        ))
        .await;
        eprintln!(
            "[{}] after the restart: {}",
            deployment.name(),
            after.summary()
        );
        assert_eq!(after.cut_off, 0, "{}", after.summary());
        after
    }
}

// ---------------------------------------------------------------------------
// A crash at each step of a keyed claim, then the client's retry
// ---------------------------------------------------------------------------

// ADR 0019: a retry with the same `Idempotency-Key` after a crash at any
// step ends with exactly one coupon, the first request's when it was made,
// in a firehose (several per user) and in a drop (one per user), where the
// retry must not be refused `LIMIT_REACHED` for the coupon it already has.

/// The shortest abandon age the server accepts with [`LEASE_AGE`]: the
/// lease age and one lease sweep (10 s).
const ABANDON_AFTER: Duration = Duration::from_secs(LEASE_AGE.as_secs() + 10);
/// How long a retry keeps getting 409 `REQUEST_IN_PROGRESS`, at most.
const RETRY_WINDOW: Duration = Duration::from_secs(ABANDON_AFTER.as_secs() + 20);

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_issue_retried_after_a_crash_at_any_step_gives_one_coupon_in_a_firehose() {
    crash_at_every_point_then_retry(3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_issue_retried_after_a_crash_at_any_step_gives_one_coupon_in_a_drop() {
    crash_at_every_point_then_retry(1).await;
}

async fn crash_at_every_point_then_retry(per_user: usize) {
    let runs = CrashPoint::ALL.map(|point| async move {
        let deployment = Deployment::from_env().await;
        crash_then_retry(&deployment, point, per_user).await;
    });
    futures::future::join_all(runs).await;
}

/// One keyed issue request crashes the server at `point`; on a restarted
/// server its retry answers 201 with the user's one coupon.
async fn crash_then_retry(deployment: &Deployment, point: CrashPoint, per_user: usize) {
    let armed = deployment
        .start_with(&[("STAMPEDE_CRASH_AT", point.as_str())])
        .await;
    let admin = log_in_admin(&armed).await;
    let campaign = create_campaign(&armed, &admin, 10, per_user).await;
    let user = create_users(&armed, &admin, 1).await.remove(0);
    let key = format!("crash-{}", point.as_str());

    let lost = keyed_issue(&armed, &campaign, &user, &key).await;
    assert!(
        lost.is_err(),
        "[{}, {}] the server crashed before answering, yet answered {lost:?}",
        deployment.name(),
        point.as_str()
    );
    armed.exited().await;

    let server = deployment.start().await;
    let deadline = tokio::time::Instant::now() + RETRY_WINDOW;
    let retried = loop {
        let answer = keyed_issue(&server, &campaign, &user, &key)
            .await
            .expect("the restarted server answers");
        let status = answer.status();
        let body: Value = answer.json().await.expect("a JSON body");
        let in_progress = status == StatusCode::CONFLICT && body["code"] == "REQUEST_IN_PROGRESS";
        if !in_progress || tokio::time::Instant::now() > deadline {
            assert_eq!(
                status,
                StatusCode::CREATED,
                "[{}, {}] the retry is the first request's answer: {body}",
                deployment.name(),
                point.as_str()
            );
            break body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let held = mine(&server, &user).await;
    assert_eq!(
        held.len(),
        1,
        "[{}, {}] the user holds exactly one coupon after the retry: {held:?}",
        deployment.name(),
        point.as_str()
    );
    assert_eq!(
        held[0]["id"],
        retried["id"],
        "[{}, {}] the retry answered with the coupon the user holds",
        deployment.name(),
        point.as_str()
    );
    let again = keyed_issue(&server, &campaign, &user, &key)
        .await
        .expect("the server answers");
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "a replay is the same 201"
    );
    let replayed: Value = again.json().await.expect("a JSON body");
    assert_eq!(
        replayed["id"], retried["id"],
        "a replay names the same coupon"
    );
}

async fn keyed_issue(
    server: &Server,
    campaign: &str,
    user: &TestUser,
    key: &str,
) -> reqwest::Result<reqwest::Response> {
    http_client()
        .post(server.issue_url(campaign))
        .bearer_auth(&user.access_token)
        .header("Idempotency-Key", key)
        .send()
        .await
}

/// The user's coupons, as `GET /coupons/mine` lists them.
async fn mine(server: &Server, user: &TestUser) -> Vec<Value> {
    let listed = expect_json(
        http_client()
            .get(server.url("/api/v1/coupons/mine"))
            .bearer_auth(&user.access_token)
            .send()
            .await,
        StatusCode::OK,
    )
    .await;
    listed["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("a page of coupons: {listed}"))
}

// ---------------------------------------------------------------------------
// Two servers, one campaign
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_sharing_postgresql_and_redis_never_oversell_one_campaign() {
    const STOCK: usize = 50;
    const PER_USER: usize = 2;
    const USERS: usize = 120;

    let deployment = Deployment::from_env().await;
    if !deployment.shares_stock() {
        eprintln!(
            "SKIPPED two_servers_sharing_postgresql_and_redis_never_oversell_one_campaign: \
             [{}] keeps stock counters in each process; two processes cannot share them \
             (set a PostgreSQL STAMPEDE_TEST_DATABASE_URL and STAMPEDE_TEST_REDIS_URL)",
            deployment.name()
        );
        return;
    }
    // One after the other: the first runs the migrations and creates the admin.
    let first = deployment.start().await;
    let second = deployment.start().await;
    let admin = log_in_admin(&first).await;
    let campaign = create_campaign(&first, &admin, STOCK, PER_USER).await;
    let users = Arc::new(create_users(&second, &admin, USERS).await);
    // Both servers read the campaign (and reach the database and the gate)
    // before the rush: a cold one could lose every race to its warm twin.
    for server in [&first, &second] {
        assert_eq!(remaining(server, &campaign).await, STOCK);
    }

    // Act: every user tries once more than the limit, alternating servers.
    let tally = finished(rush(
        vec![first.issue_url(&campaign), second.issue_url(&campaign)],
        Arc::clone(&users),
        attempts(USERS, PER_USER + 1, 2),
    ))
    .await;
    eprintln!("[{}] two servers: {}", deployment.name(), tally.summary());

    // Assert
    assert_eq!(tally.cut_off, 0, "{}", tally.summary());
    assert_eq!(tally.issued.len(), STOCK, "{}", tally.summary());
    for server in 0..2 {
        assert!(
            tally.issued.iter().any(|a| a.server == server),
            "server {server} issued some of the stock: {}",
            tally.summary()
        );
    }
    let held = holdings(&first, &campaign, &users).await;
    assert_acknowledged_are_held(&tally, &held);
    assert_nobody_over(&held, PER_USER);
    assert_eq!(total(&held), STOCK);
    for server in [&first, &second] {
        assert_eq!(
            remaining(server, &campaign).await,
            0,
            "server {} shows the campaign sold out",
            server.addr
        );
        assert_counters_agree(&reconcile_dry_run(server, &admin).await);
    }
}

// ---------------------------------------------------------------------------
// The rush
// ---------------------------------------------------------------------------

/// A signed-in user made by `POST /admin-api/test-users`.
#[derive(Debug)]
struct TestUser {
    id: String,
    access_token: String,
}

/// One issue request: which user, through which server.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    user: usize,
    server: usize,
}

/// `tries` attempts per user, a user's attempts next to each other so that
/// they race, spread over `servers` in turn.
fn attempts(users: usize, tries: usize, servers: usize) -> Vec<Attempt> {
    (0..users * tries)
        .map(|n| Attempt {
            user: n / tries,
            server: n % servers,
        })
        .collect()
}

/// A coupon the client saw answered with 201.
#[derive(Debug)]
struct Acknowledged {
    user: usize,
    server: usize,
    coupon: Value,
}

/// What the client saw of a rush.
#[derive(Debug, Default)]
struct Tally {
    issued: Vec<Acknowledged>,
    sold_out: usize,
    limit_reached: usize,
    /// Requests that got no answer: the server died under them.
    cut_off: usize,
}

impl Tally {
    fn summary(&self) -> String {
        format!(
            "{} issued ({} by server 0), {} sold out, {} limit reached, {} cut off",
            self.issued.len(),
            self.issued.iter().filter(|a| a.server == 0).count(),
            self.sold_out,
            self.limit_reached,
            self.cut_off
        )
    }
}

/// A rush in progress: the count of coupons issued so far, and its end.
struct Running {
    issued: Arc<AtomicUsize>,
    tally: tokio::task::JoinHandle<Tally>,
}

/// Sends every attempt from [`CONCURRENCY`] tasks. A task stops at its
/// first request that gets no answer, as the server is gone; any answer
/// other than 201, `SOLD_OUT` or `LIMIT_REACHED` fails the test.
fn rush(issue_urls: Vec<String>, users: Arc<Vec<TestUser>>, attempts: Vec<Attempt>) -> Running {
    let issued = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let (http, issue_urls, attempts) = (http_client(), Arc::new(issue_urls), Arc::new(attempts));
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, issue_urls, users, attempts) = (
                http.clone(),
                Arc::clone(&issue_urls),
                Arc::clone(&users),
                Arc::clone(&attempts),
            );
            let (issued, next) = (Arc::clone(&issued), Arc::clone(&next));
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while let Some(attempt) = attempts.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let url = &issue_urls[attempt.server];
                    match issue(&http, url, &users[attempt.user]).await {
                        Some(Answer::Issued(coupon)) => {
                            tally.issued.push(Acknowledged {
                                user: attempt.user,
                                server: attempt.server,
                                coupon,
                            });
                            issued.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Answer::SoldOut) => tally.sold_out += 1,
                        Some(Answer::LimitReached) => tally.limit_reached += 1,
                        None => {
                            tally.cut_off += 1;
                            break;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let tally = tokio::spawn(async move {
        let mut total = Tally::default();
        for task in futures::future::join_all(tasks).await {
            let tally = task.expect("a rush task ends without a panic");
            total.issued.extend(tally.issued);
            total.sold_out += tally.sold_out;
            total.limit_reached += tally.limit_reached;
            total.cut_off += tally.cut_off;
        }
        total
    });
    Running { issued, tally }
}

/// Waits until the rush has seen `count` coupons issued.
async fn wait_until_issued(running: &Running, count: usize) {
    let reached = tokio::time::timeout(RUSH_TIMEOUT, async {
        while running.issued.load(Ordering::Relaxed) < count && !running.tally.is_finished() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    let seen = running.issued.load(Ordering::Relaxed);
    assert!(
        reached.is_ok() && seen >= count,
        "the rush saw {seen} coupons issued, waiting for {count}"
    );
}

/// The rush's tally once every request has been answered or cut off.
async fn finished(running: Running) -> Tally {
    tokio::time::timeout(RUSH_TIMEOUT, running.tally)
        .await
        .expect("the rush ends in time")
        .expect("the rush ends without a panic")
}

/// How the server answered one issue request.
enum Answer {
    Issued(Value),
    SoldOut,
    LimitReached,
}

/// `POST …/issue` as `user`; `None` when no whole answer arrived.
async fn issue(http: &reqwest::Client, url: &str, user: &TestUser) -> Option<Answer> {
    let response = http
        .post(url)
        .bearer_auth(&user.access_token)
        .send()
        .await
        .ok()?;
    let status = response.status();
    let body: Value = response.json().await.ok()?;
    match (status, body["code"].as_str()) {
        (StatusCode::CREATED, _) => Some(Answer::Issued(body)),
        (StatusCode::CONFLICT, Some("SOLD_OUT")) => Some(Answer::SoldOut),
        (StatusCode::CONFLICT, Some("LIMIT_REACHED")) => Some(Answer::LimitReached),
        _ => panic!("an issue answered {status}: {body}"),
    }
}

// ---------------------------------------------------------------------------
// The invariants
// ---------------------------------------------------------------------------

/// Each user's coupons of `campaign` (by index in `users`), from `GET /coupons/mine`.
async fn holdings(server: &Server, campaign: &str, users: &[TestUser]) -> Vec<Vec<Value>> {
    let http = http_client();
    let mut held = Vec::with_capacity(users.len());
    for user in users {
        let page = expect_json(
            http.get(server.url("/api/v1/coupons/mine?limit=100"))
                .bearer_auth(&user.access_token)
                .send()
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(page["next_cursor"], Value::Null, "one page holds them all");
        let coupons = page["items"].as_array().expect("items");
        held.push(
            coupons
                .iter()
                .filter(|c| c["campaign_id"] == campaign && c["user_id"] == user.id.as_str())
                .cloned()
                .collect(),
        );
    }
    held
}

/// Coupons held by all users together.
fn total(held: &[Vec<Value>]) -> usize {
    held.iter().map(Vec::len).sum()
}

/// Every coupon acknowledged with 201 is held, with the same id and code,
/// by the user it was issued to.
fn assert_acknowledged_are_held(tally: &Tally, held: &[Vec<Value>]) {
    let key = |user: usize, coupon: &Value| (user, text(&coupon["id"]), text(&coupon["code"]));
    let stored: HashSet<(usize, String, String)> = held
        .iter()
        .enumerate()
        .flat_map(|(user, coupons)| coupons.iter().map(move |c| key(user, c)))
        .collect();
    let lost: Vec<&Value> = tally
        .issued
        .iter()
        .filter(|a| !stored.contains(&key(a.user, &a.coupon)))
        .map(|a| &a.coupon)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged coupons are missing from the database: {lost:?}",
        lost.len(),
        tally.issued.len()
    );
}

fn assert_nobody_over(held: &[Vec<Value>], per_user: usize) {
    let over: BTreeMap<usize, usize> = held
        .iter()
        .enumerate()
        .filter(|(_, coupons)| coupons.len() > per_user)
        .map(|(user, coupons)| (user, coupons.len()))
        .collect();
    assert!(
        over.is_empty(),
        "users over the limit of {per_user} (user index: coupons): {over:?}"
    );
}

/// Reconciliation found every pool it checked in agreement with the database.
fn assert_counters_agree(report: &Value) {
    assert!(
        report["checked"].as_u64() >= Some(1),
        "the campaign's pool is checked: {report}"
    );
    assert_eq!(report["differing"], 0, "counters differ: {report}");
    assert_eq!(report["errors"], json!([]), "pools not checked: {report}");
}

// ---------------------------------------------------------------------------
// The API, as an admin and as users
// ---------------------------------------------------------------------------

/// The admin's access token.
async fn log_in_admin(server: &Server) -> String {
    let tokens = expect_json(
        http_client()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await,
        StatusCode::OK,
    )
    .await;
    text(&tokens["access_token"])
}

/// A campaign issuing from an hour ago to an hour from now; its id.
async fn create_campaign(server: &Server, admin: &str, stock: usize, per_user: usize) -> String {
    let now = OffsetDateTime::now_utc();
    let at = |offset: time::Duration| Timestamp::from(now + offset).to_string();
    let campaign = expect_json(
        http_client()
            .post(server.url("/api/v1/coupon-campaigns"))
            .bearer_auth(admin)
            .json(&json!({
                "name": "Rush drop",
                "discount": {"kind": "PERCENT", "value": 10},
                "total_quantity": stock,
                "per_user_limit": per_user,
                "issue_starts_at": at(-time::Duration::hours(1)),
                "issue_ends_at": at(time::Duration::hours(1)),
                "valid_until": at(time::Duration::days(30)),
            }))
            .send()
            .await,
        StatusCode::CREATED,
    )
    .await;
    text(&campaign["id"])
}

async fn create_users(server: &Server, admin: &str, count: usize) -> Vec<TestUser> {
    let created = expect_json(
        http_client()
            .post(server.url("/admin-api/test-users"))
            .bearer_auth(admin)
            .json(&json!({ "count": count, "prefix": "rush" }))
            .send()
            .await,
        StatusCode::CREATED,
    )
    .await;
    let users: Vec<TestUser> = created["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| TestUser {
            id: text(&u["user_id"]),
            access_token: text(&u["access_token"]),
        })
        .collect();
    assert_eq!(users.len(), count, "every test user is created");
    users
}

/// `POST /admin-api/stock/reconcile?dry_run=true`: the report, nothing repaired.
async fn reconcile_dry_run(server: &Server, admin: &str) -> Value {
    expect_json(
        http_client()
            .post(server.url("/admin-api/stock/reconcile?dry_run=true"))
            .bearer_auth(admin)
            .send()
            .await,
        StatusCode::OK,
    )
    .await
}

/// The campaign's `remaining` as `server` shows it.
async fn remaining(server: &Server, campaign: &str) -> usize {
    let shown = expect_json(
        http_client()
            .get(server.url(&format!("/api/v1/coupon-campaigns/{campaign}")))
            .send()
            .await,
        StatusCode::OK,
    )
    .await;
    let remaining = shown["remaining"].as_u64().expect("remaining is a count");
    usize::try_from(remaining).expect("remaining fits")
}

/// The campaign's `remaining` once it shows `expected`, or as it shows it
/// when the lease sweep had its time (lease age, one sweep period, margin).
async fn remaining_once_swept(server: &Server, campaign: &str, expected: usize) -> usize {
    let deadline = tokio::time::Instant::now() + LEASE_AGE + Duration::from_secs(25);
    loop {
        let shown = remaining(server, campaign).await;
        if shown == expected || tokio::time::Instant::now() > deadline {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The JSON body of an answer that must have `status`.
async fn expect_json(sent: reqwest::Result<reqwest::Response>, status: StatusCode) -> Value {
    let response = sent.expect("the server answers");
    let actual = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(actual, status, "{body}");
    body
}

fn text(v: &Value) -> String {
    v.as_str().expect("a string").to_owned()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build an HTTP client")
}

// ---------------------------------------------------------------------------
// The deployment: a database, a gate, and server processes over them
// ---------------------------------------------------------------------------

/// Where the stock counters live, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gate {
    /// In each server process.
    Memory,
    /// In Redis, under a key prefix of this deployment's own.
    Redis { url: String, prefix: String },
    /// In the PostgreSQL database.
    Postgres,
}

/// One database and stock gate, shared by every server this test starts.
/// When the test fails, it prints the tail of every server's log.
struct Deployment {
    db: TestDatabase,
    gate: Gate,
    logs: TempDir,
    started: AtomicUsize,
}

impl Deployment {
    async fn from_env() -> Self {
        let db = TestDatabase::create().await;
        let on_postgres = db.url().starts_with("postgres");
        let redis_url = std::env::var("STAMPEDE_TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty());
        let gate = match (
            on_postgres,
            std::env::var("STAMPEDE_TEST_STOCK_GATE").as_deref(),
            redis_url,
        ) {
            (true, Ok("postgres"), _) => Gate::Postgres,
            (true, _, Some(url)) => Gate::Redis {
                url,
                prefix: format!("rush-{}", uuid::Uuid::new_v4().simple()),
            },
            _ => Gate::Memory,
        };
        Self {
            db,
            gate,
            logs: tempfile::tempdir().expect("a folder for the server logs"),
            started: AtomicUsize::new(0),
        }
    }

    /// Names the configuration in the test output.
    fn name(&self) -> &'static str {
        match (self.db.url().starts_with("postgres"), &self.gate) {
            (false, _) => "SQLite, memory gate",
            (true, Gate::Memory) => "PostgreSQL, memory gate",
            (true, Gate::Redis { .. }) => "PostgreSQL, Redis gate",
            (true, Gate::Postgres) => "PostgreSQL, PostgreSQL gate",
        }
    }

    /// Whether several processes share one campaign's counters.
    fn shares_stock(&self) -> bool {
        self.gate != Gate::Memory
    }

    /// Starts `stampede serve` on a free port and waits until it is ready.
    async fn start(&self) -> Server {
        self.start_with(&[]).await
    }

    /// [`start`](Self::start), with more environment for this one server.
    async fn start_with(&self, env: &[(&str, &str)]) -> Server {
        for _ in 0..START_ATTEMPTS {
            let n = self.started.fetch_add(1, Ordering::Relaxed);
            let log = self.logs.path().join(format!("server-{n}.log"));
            let addr = free_address();
            let mut server = Server {
                child: self
                    .command(addr, &log)
                    .envs(env.iter().copied())
                    .spawn()
                    .expect("spawn stampede serve"),
                addr,
            };
            if server.wait_until_ready(&log).await {
                return server;
            }
        }
        panic!("stampede did not start in {START_ATTEMPTS} attempts; see the logs below");
    }

    /// `stampede serve` with nothing inherited but what this deployment sets.
    fn command(&self, addr: SocketAddr, log: &Path) -> Command {
        let mut cmd = Command::new(BINARY);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STAMPEDE_") {
                cmd.env_remove(name);
            }
        }
        cmd.arg("serve")
            .env_remove("RUST_LOG")
            .env("STAMPEDE_DATABASE_URL", self.db.url())
            .env("STAMPEDE_LISTEN", addr.to_string())
            .env("STAMPEDE_RATE_LIMIT", "off")
            .env("STAMPEDE_TEST_USERS", "on")
            .env("STAMPEDE_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("STAMPEDE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("STAMPEDE_LOG_FORMAT", "json")
            // Start-up and trouble, not one line per request.
            .env("STAMPEDE_LOG_LEVEL", "info,sqlx=warn,tower_http=warn")
            .env("RUST_BACKTRACE", "1")
            .env(
                "STAMPEDE_STOCK_LEASE_SECONDS",
                LEASE_AGE.as_secs().to_string(),
            )
            .env(
                "STAMPEDE_IDEMPOTENCY_ABANDON_SECONDS",
                ABANDON_AFTER.as_secs().to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log).expect("create a server log"))
            .kill_on_drop(true);
        match &self.gate {
            Gate::Memory => cmd.env("STAMPEDE_STOCK_GATE", "memory"),
            Gate::Redis { url, prefix } => cmd
                .env("STAMPEDE_STOCK_GATE", "redis")
                .env("STAMPEDE_REDIS_URL", url)
                .env("STAMPEDE_REDIS_PREFIX", prefix),
            Gate::Postgres => cmd.env("STAMPEDE_STOCK_GATE", "postgres"),
        };
        cmd
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for n in 0..self.started.load(Ordering::Relaxed) {
            let log = self.logs.path().join(format!("server-{n}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- server {n} ({}), last {LOG_TAIL_LINES} of {} log lines:\n{}",
                self.name(),
                lines.len(),
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            );
        }
    }
}

/// A running `stampede serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn issue_url(&self, campaign: &str) -> String {
        self.url(&format!("/api/v1/coupon-campaigns/{campaign}/issue"))
    }

    /// Whether `GET /readyz` answered 200 in time; false if the process
    /// exited first (its port may have been taken).
    async fn wait_until_ready(&mut self, log: &Path) -> bool {
        let http = http_client();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    eprintln!(
                        "stampede on {} exited with {status} before it was ready: {}",
                        self.addr,
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                    return false;
                }
                let answer = http
                    .get(self.url("/readyz"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                    return true;
                }
                tokio::time::sleep(READY_INTERVAL).await;
            }
        })
        .await;
        assert!(
            ready.is_ok(),
            "stampede on {} did not answer GET /readyz within {READY_TIMEOUT:?}",
            self.addr
        );
        ready.is_ok_and(|ready| ready)
    }

    /// Waits until the process ended by itself, by a signal (a crash).
    async fn exited(mut self) {
        let status = tokio::time::timeout(KILL_TIMEOUT, self.child.wait())
            .await
            .expect("the crashed server exits in time")
            .expect("reap the server");
        assert!(
            !status.success() && status.code().is_none(),
            "the server ended by a signal, not with {status}"
        );
    }

    /// `kill -9`, and waits until the process is gone.
    async fn kill(mut self) {
        tokio::time::timeout(KILL_TIMEOUT, self.child.kill())
            .await
            .expect("the killed server is reaped in time")
            .expect("SIGKILL the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Nothing to do when it already exited; errors are moot at teardown.
        let _ = self.child.start_kill();
    }
}

/// A port nobody listens on right now.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
}
