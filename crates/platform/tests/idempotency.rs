//! The `Idempotency-Key` middleware over real sockets and a real database
//! (SQLite, or PostgreSQL when `STAMPEDE_TEST_DATABASE_URL` is set): a repeat
//! replays the first answer, the key on a different request or while the
//! first still runs is refused, 429 and 5xx answers are not kept, keys are
//! validated, records expire and are purged, abandoned claims are taken over
//! continuing their effect id, and a burst of retries does the work once.
//!
//! The app under test is built here: a few POST routes whose handlers count
//! their invocations, behind `platform::idempotency::layer`, behind
//! `platform::authn::authenticate` with a stand-in verifier that reads the
//! bearer token `user-<uuid>` as that user.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use axum::{Json, Router};
use http::StatusCode;
use kernel::auth::{AuthError, TokenVerifier};
use kernel::clock::ManualClock;
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{IdempotentEffect, Principal, Role, Roles, SharedClock, UserId};
use platform::Idempotency;
use platform::authn::SharedVerifier;
use platform::idempotency::{HEADER, REPLAYED_HEADER};
use serde_json::{Value, json};
use time::macros::datetime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The app under test
// ---------------------------------------------------------------------------

/// Reads `user-<uuid>` as that user; stands in for the identity module.
struct UserTokens;

#[async_trait]
impl TokenVerifier for UserTokens {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let id = token
            .strip_prefix("user-")
            .and_then(|id| id.parse::<Uuid>().ok())
            .ok_or(AuthError::Invalid)?;
        Ok(Principal {
            user_id: UserId(id),
            session_id: Uuid::nil(),
            roles: Roles::of(&[Role::User]),
        })
    }
}

/// What the handlers share: how often each ran, and the gates the slow ones
/// wait at.
#[derive(Default)]
struct Calls {
    create: AtomicUsize,
    slow: AtomicUsize,
    stall: AtomicUsize,
    fail: AtomicUsize,
    limited: AtomicUsize,
    /// The effect each `/effect` and `/flaky` invocation was handed.
    effects: std::sync::Mutex<Vec<Option<IdempotentEffect>>>,
    /// How many `/slow` and `/stall` invocations have started.
    entered: watch::Sender<usize>,
    /// `/slow` invocations numbered up to this may finish.
    released: watch::Sender<usize>,
}

type Shared = Arc<Calls>;

fn next(counter: &AtomicUsize) -> usize {
    counter.fetch_add(1, Ordering::SeqCst) + 1
}

/// Creates something: 201 with the invocation number and the caller.
async fn create(
    State(calls): State<Shared>,
    principal: Option<Principal>,
) -> (StatusCode, Json<Value>) {
    let count = next(&calls.create);
    let user = principal.map(|p| p.user_id);
    (
        StatusCode::CREATED,
        Json(json!({ "count": count, "user": user })),
    )
}

/// Like `create`, but finishes only when the test releases its number.
async fn slow(State(calls): State<Shared>) -> (StatusCode, Json<Value>) {
    let count = next(&calls.slow);
    calls.entered.send_modify(|n| *n += 1);
    let mut released = calls.released.subscribe();
    // The sender lives as long as the app; an error cannot happen here.
    let _ = released.wait_for(|&r| r >= count).await;
    (StatusCode::CREATED, Json(json!({ "count": count })))
}

/// The first invocation never finishes (a process that died mid-request);
/// later ones answer at once.
async fn stall(State(calls): State<Shared>) -> (StatusCode, Json<Value>) {
    let count = next(&calls.stall);
    calls.entered.send_modify(|n| *n += 1);
    if count == 1 {
        std::future::pending::<()>().await;
    }
    (StatusCode::CREATED, Json(json!({ "count": count })))
}

/// Records the effect it was handed and returns its id; the first
/// invocation never finishes (a process that died after making it).
async fn effect(
    State(calls): State<Shared>,
    effect: Option<IdempotentEffect>,
) -> (StatusCode, Json<Value>) {
    let count = calls.record(effect);
    calls.entered.send_modify(|n| *n += 1);
    if count == 1 {
        std::future::pending::<()>().await;
    }
    (StatusCode::CREATED, Json(effect_json(effect)))
}

/// Records its effect; the first invocation answers 503 (a write whose
/// answer was lost, so it may have made its effect), later ones 201.
async fn flaky(
    State(calls): State<Shared>,
    effect: Option<IdempotentEffect>,
) -> (StatusCode, Json<Value>) {
    let count = calls.record(effect);
    let status = if count == 1 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::CREATED
    };
    (status, Json(effect_json(effect)))
}

fn effect_json(effect: Option<IdempotentEffect>) -> Value {
    json!({ "effect": effect.map(|e| e.id), "retry": effect.map(|e| e.retry) })
}

impl Calls {
    /// Records an invocation's effect; returns its number.
    fn record(&self, effect: Option<IdempotentEffect>) -> usize {
        let mut effects = self.effects.lock().expect("effects lock");
        effects.push(effect);
        effects.len()
    }

    fn effects(&self) -> Vec<Option<IdempotentEffect>> {
        self.effects.lock().expect("effects lock").clone()
    }
}

async fn fail(State(calls): State<Shared>) -> (StatusCode, Json<Value>) {
    let count = next(&calls.fail);
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "count": count })),
    )
}

async fn limited(State(calls): State<Shared>) -> (StatusCode, Json<Value>) {
    let count = next(&calls.limited);
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({ "count": count })),
    )
}

// ---------------------------------------------------------------------------
// The harness: database, clock, server and client
// ---------------------------------------------------------------------------

struct Harness {
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    idem: Idempotency,
    db: Db,
    calls: Shared,
    server: JoinHandle<()>,
    // Last: the database outlives every handle above.
    _database: TestDatabase,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Harness {
    async fn start() -> Self {
        let database = TestDatabase::create().await;
        let db = Db::connect(database.url(), &DbOptions::default())
            .await
            .expect("the test database opens");
        db.migrate(platform::idempotency::migrations())
            .await
            .expect("the idempotency migrations apply");
        let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 12:00:00 UTC)));
        let shared_clock: SharedClock = clock.clone();
        let idem = Idempotency::new(db.clone(), shared_clock, 64 * 1024);
        let calls = Shared::default();
        let verifier: SharedVerifier = Arc::new(UserTokens);
        let app = Router::new()
            .route("/things", post(create))
            .route("/widgets", post(create))
            .route("/slow", post(slow))
            .route("/stall", post(stall))
            .route("/fail", post(fail))
            .route("/limited", post(limited))
            .route("/effect", post(effect))
            .route("/flaky", post(flaky))
            .route_layer(from_fn_with_state(
                idem.clone(),
                platform::idempotency::layer,
            ))
            .with_state(calls.clone())
            .layer(from_fn_with_state(verifier, platform::authn::authenticate));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let address = listener.local_addr().expect("the bound address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the test server runs until aborted");
        });
        Self {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
            clock,
            idem,
            db,
            calls,
            server,
            _database: database,
        }
    }

    /// A POST as `user` (anonymous when `None`) with `key` (no header when `None`).
    fn request(
        &self,
        path: &str,
        user: Option<UserId>,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .timeout(PATIENCE);
        if let Some(user) = user {
            request = request.bearer_auth(format!("user-{user}"));
        }
        if let Some(key) = key {
            request = request.header(HEADER, key);
        }
        request
    }

    async fn post(
        &self,
        path: &str,
        user: Option<UserId>,
        key: Option<&str>,
        body: &Value,
    ) -> Answer {
        Answer::read(self.request(path, user, key, body).send().await).await
    }

    /// Waits until `n` invocations of `/slow` and `/stall` have started.
    async fn entered(&self, n: usize) {
        let mut entered = self.calls.entered.subscribe();
        tokio::time::timeout(PATIENCE, entered.wait_for(|&e| e >= n))
            .await
            .expect("the handler is reached in time")
            .expect("the app keeps its gates");
    }

    /// Lets `/slow` invocations numbered up to `n` finish.
    fn release(&self, n: usize) {
        self.calls.released.send_replace(n);
    }

    fn advance(&self, by: Duration) {
        self.clock
            .advance(time::Duration::try_from(by).expect("a duration time can hold"));
    }

    async fn stored_keys(&self) -> i64 {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar::<_, i64>("select count(*) from idempotency_keys")
                .fetch_one(pool)
                .await
        })
        .expect("count the idempotency records")
    }
}

/// The parts of an answer the tests look at.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    replayed: bool,
    content_type: String,
    body: Value,
}

impl Answer {
    async fn read(sent: Result<reqwest::Response, reqwest::Error>) -> Self {
        let response = sent.expect("the server answers");
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let replayed = match header(REPLAYED_HEADER).as_deref() {
            None => false,
            Some("true") => true,
            Some(other) => panic!("unexpected {REPLAYED_HEADER}: {other:?}"),
        };
        let content_type = header("content-type").unwrap_or_default();
        let bytes = response.bytes().await.expect("the body arrives");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("the body is JSON")
        };
        Self {
            status,
            replayed,
            content_type,
            body,
        }
    }

    /// Asserts a problem+json answer with `status` and `code`.
    fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        assert!(!self.replayed, "a refusal is not a replay: {self:?}");
    }
}

fn count(calls: &AtomicUsize) -> usize {
    calls.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_key_replays_the_first_status_and_body_without_running_the_handler_again() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "first" });

    let first = h.post("/things", Some(user), Some("key-1"), &body).await;
    let second = h.post("/things", Some(user), Some("key-1"), &body).await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed, "the first answer is not a replay");
    assert_eq!(first.body, json!({ "count": 1, "user": user }));
    assert_eq!(second.status, StatusCode::CREATED);
    assert!(
        second.replayed,
        "the repeat carries {REPLAYED_HEADER}: true"
    );
    assert_eq!(second.body, first.body);
    assert_eq!(second.content_type, first.content_type);
    assert_eq!(count(&h.calls.create), 1, "the handler ran once");
}

#[tokio::test]
async fn the_same_key_on_a_different_body_or_path_is_refused_as_reused() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "first" });
    let original = h.post("/things", Some(user), Some("key-1"), &body).await;

    let other_body = h
        .post(
            "/things",
            Some(user),
            Some("key-1"),
            &json!({ "name": "second" }),
        )
        .await;
    let other_path = h.post("/widgets", Some(user), Some("key-1"), &body).await;
    let repeat = h.post("/things", Some(user), Some("key-1"), &body).await;

    assert_eq!(original.status, StatusCode::CREATED);
    other_body.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
    other_path.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(count(&h.calls.create), 1, "no refused request ran");
    assert!(repeat.replayed, "the original request still replays");
    assert_eq!(repeat.body, original.body);
}

#[tokio::test]
async fn the_same_key_from_another_user_is_independent() {
    let h = Harness::start().await;
    let (alice, bob) = (UserId::new(), UserId::new());
    let body = json!({ "name": "same" });
    let for_alice = h.post("/things", Some(alice), Some("shared"), &body).await;

    let for_bob = h.post("/things", Some(bob), Some("shared"), &body).await;
    let alice_again = h.post("/things", Some(alice), Some("shared"), &body).await;
    let bob_again = h.post("/things", Some(bob), Some("shared"), &body).await;

    assert_eq!(for_bob.status, StatusCode::CREATED);
    assert!(!for_bob.replayed, "bob's request is not alice's replay");
    assert_eq!(for_bob.body, json!({ "count": 2, "user": bob }));
    assert!(alice_again.replayed);
    assert_eq!(alice_again.body, for_alice.body);
    assert!(bob_again.replayed);
    assert_eq!(bob_again.body, for_bob.body, "each user replays their own");
    assert_eq!(count(&h.calls.create), 2);
}

#[tokio::test]
async fn while_the_first_request_is_still_running_a_second_gets_request_in_progress() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "slow" });
    let first = tokio::spawn(h.request("/slow", Some(user), Some("key-1"), &body).send());
    h.entered(1).await;

    let second = h.post("/slow", Some(user), Some("key-1"), &body).await;
    h.release(1);
    let first = Answer::read(first.await.expect("the first request's task")).await;
    let third = h.post("/slow", Some(user), Some("key-1"), &body).await;

    second.assert_problem(StatusCode::CONFLICT, "REQUEST_IN_PROGRESS");
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body, json!({ "count": 1 }));
    assert!(third.replayed, "once finished, the first answer replays");
    assert_eq!(third.body, first.body);
    assert_eq!(count(&h.calls.slow), 1);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_not_kept_so_a_retry_runs_the_handler_again() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "retry me" });

    let failed = h.post("/fail", Some(user), Some("key-1"), &body).await;
    let failed_again = h.post("/fail", Some(user), Some("key-1"), &body).await;
    let limited = h.post("/limited", Some(user), Some("key-2"), &body).await;
    let limited_again = h.post("/limited", Some(user), Some("key-2"), &body).await;

    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed_again.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!failed_again.replayed);
    assert_eq!(failed_again.body, json!({ "count": 2 }));
    assert_eq!(count(&h.calls.fail), 2);
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited_again.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!limited_again.replayed);
    assert_eq!(limited_again.body, json!({ "count": 2 }));
    assert_eq!(count(&h.calls.limited), 2);
    assert_eq!(
        h.stored_keys().await,
        1,
        "the 5xx claim stays, released, for its effect id; the 429 one goes"
    );
}

#[tokio::test]
async fn an_empty_or_256_character_key_is_a_validation_failure_and_255_characters_work() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "keyed" });
    let longest = "k".repeat(255);

    let empty = h.post("/things", Some(user), Some(""), &body).await;
    let too_long = h
        .post("/things", Some(user), Some(&"k".repeat(256)), &body)
        .await;
    let refused_runs = count(&h.calls.create);
    let fits = h.post("/things", Some(user), Some(&longest), &body).await;
    let fits_again = h.post("/things", Some(user), Some(&longest), &body).await;

    empty.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    too_long.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(refused_runs, 0, "an invalid key never reaches the handler");
    assert_eq!(fits.status, StatusCode::CREATED);
    assert!(fits_again.replayed, "a 255-character key is remembered");
    assert_eq!(fits_again.body, fits.body);
    assert_eq!(count(&h.calls.create), 1);
}

#[tokio::test]
async fn without_the_header_every_request_runs_and_without_a_caller_the_request_passes_through() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "plain" });

    let unkeyed = h.post("/things", Some(user), None, &body).await;
    let unkeyed_again = h.post("/things", Some(user), None, &body).await;
    let anonymous = h.post("/things", None, Some("key-1"), &body).await;
    let anonymous_again = h.post("/things", None, Some("key-1"), &body).await;

    assert_eq!(unkeyed.body, json!({ "count": 1, "user": user }));
    assert_eq!(unkeyed_again.body, json!({ "count": 2, "user": user }));
    assert!(!unkeyed_again.replayed);
    assert_eq!(anonymous.body, json!({ "count": 3, "user": null }));
    assert_eq!(anonymous_again.status, StatusCode::CREATED);
    assert_eq!(anonymous_again.body, json!({ "count": 4, "user": null }));
    assert!(!anonymous_again.replayed);
    assert_eq!(h.stored_keys().await, 0, "nothing was recorded");
}

#[tokio::test]
async fn after_24_hours_the_key_runs_the_work_again_and_purge_removes_old_records() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "old" });
    let day = Duration::from_secs(24 * 3600);
    let first = h.post("/things", Some(user), Some("reused"), &body).await;
    h.post("/things", Some(user), Some("forgotten"), &body)
        .await;
    let purged_while_fresh = h.idem.purge_expired().await.expect("purge");

    h.advance(day - Duration::from_secs(1));
    let within = h.post("/things", Some(user), Some("reused"), &body).await;
    h.advance(Duration::from_secs(2));
    let after = h.post("/things", Some(user), Some("reused"), &body).await;
    let purged = h.idem.purge_expired().await.expect("purge");
    let purged_again = h.idem.purge_expired().await.expect("purge");

    assert_eq!(purged_while_fresh, 0, "fresh records are kept");
    assert!(within.replayed, "just inside 24 hours the answer replays");
    assert_eq!(within.body, first.body);
    assert_eq!(after.status, StatusCode::CREATED);
    assert!(!after.replayed, "past 24 hours the key is free again");
    assert_eq!(after.body, json!({ "count": 3, "user": user }));
    assert_eq!(purged, 1, "the expired record goes; the renewed one stays");
    assert_eq!(purged_again, 0);
    assert_eq!(h.stored_keys().await, 1);
}

#[tokio::test]
async fn an_abandoned_in_progress_claim_is_taken_over_by_a_retry() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "crash" });
    let lost = tokio::spawn(h.request("/stall", Some(user), Some("key-1"), &body).send());
    h.entered(1).await;
    lost.abort();
    let too_soon = h.post("/stall", Some(user), Some("key-1"), &body).await;

    h.advance(h.idem.abandon_after + Duration::from_secs(1));
    let retry = h.post("/stall", Some(user), Some("key-1"), &body).await;
    let repeat = h.post("/stall", Some(user), Some("key-1"), &body).await;

    too_soon.assert_problem(StatusCode::CONFLICT, "REQUEST_IN_PROGRESS");
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(!retry.replayed);
    assert_eq!(retry.body, json!({ "count": 2 }));
    assert!(repeat.replayed, "the retry's answer is the one kept");
    assert_eq!(repeat.body, retry.body);
    assert_eq!(count(&h.calls.stall), 2);
}

#[tokio::test]
async fn a_request_that_outlives_its_abandoned_claim_does_not_overwrite_the_retry_that_took_it_over()
 {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "late" });
    let late = tokio::spawn(h.request("/slow", Some(user), Some("key-1"), &body).send());
    h.entered(1).await;
    h.advance(h.idem.abandon_after + Duration::from_secs(1));
    let retry = tokio::spawn(h.request("/slow", Some(user), Some("key-1"), &body).send());
    h.entered(2).await;

    h.release(1);
    let late = Answer::read(late.await.expect("the late request's task")).await;
    let during_retry = h.post("/slow", Some(user), Some("key-1"), &body).await;
    h.release(2);
    let retry = Answer::read(retry.await.expect("the retry's task")).await;
    let after_retry = h.post("/slow", Some(user), Some("key-1"), &body).await;

    assert_eq!(late.body, json!({ "count": 1 }));
    during_retry.assert_problem(StatusCode::CONFLICT, "REQUEST_IN_PROGRESS");
    assert_eq!(retry.body, json!({ "count": 2 }));
    assert!(after_retry.replayed);
    assert_eq!(after_retry.body, retry.body, "the owner's answer is kept");
    assert_eq!(count(&h.calls.slow), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_with_one_key_run_the_handler_exactly_once() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "burst" });

    let sent: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(
                h.request("/things", Some(user), Some("burst"), &body)
                    .send(),
            )
        })
        .collect();
    let mut answers = Vec::with_capacity(sent.len());
    for task in sent {
        answers.push(Answer::read(task.await.expect("a request's task")).await);
    }

    assert_eq!(count(&h.calls.create), 1, "the work was done once");
    let expected = json!({ "count": 1, "user": user });
    let (original, others): (Vec<_>, Vec<_>) = answers
        .iter()
        .partition(|a| a.status == StatusCode::CREATED && !a.replayed);
    assert_eq!(original.len(), 1, "one answer is the original: {answers:?}");
    assert_eq!(original[0].body, expected);
    for answer in others {
        if answer.status == StatusCode::CONFLICT {
            answer.assert_problem(StatusCode::CONFLICT, "REQUEST_IN_PROGRESS");
        } else {
            assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
            assert!(answer.replayed, "{answer:?}");
            assert_eq!(answer.body, expected);
        }
    }
}

// ---------------------------------------------------------------------------
// The effect id: what makes a retry after a crash find the first effect
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_keyed_request_is_handed_a_fresh_effect_id_and_an_unkeyed_one_none() {
    let h = Harness::start().await;
    let user = UserId::new();

    let keyed = h
        .post("/flaky", Some(user), Some("key-1"), &json!({}))
        .await;
    let unkeyed = h.post("/flaky", Some(user), None, &json!({})).await;
    let other = h
        .post("/flaky", Some(user), Some("key-2"), &json!({}))
        .await;

    let effects = h.calls.effects();
    let (first, third) = (effects[0].expect("keyed"), effects[2].expect("keyed"));
    assert!(!first.retry && !third.retry, "{effects:?}");
    assert_ne!(first.id, third.id, "each key its own effect");
    assert_eq!(effects[1], None);
    assert_eq!(keyed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unkeyed.body["effect"], Value::Null);
    assert_eq!(other.body["effect"], json!(third.id));
}

#[tokio::test]
async fn a_takeover_of_a_claim_that_never_answered_continues_its_effect() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "crash" });
    let lost = tokio::spawn(
        h.request("/effect", Some(user), Some("key-1"), &body)
            .send(),
    );
    h.entered(1).await;
    lost.abort();

    h.advance(h.idem.abandon_after + Duration::from_secs(1));
    let retry = h.post("/effect", Some(user), Some("key-1"), &body).await;
    let repeat = h.post("/effect", Some(user), Some("key-1"), &body).await;

    let effects = h.calls.effects();
    let (first, second) = (effects[0].expect("keyed"), effects[1].expect("keyed"));
    assert_eq!(second.id, first.id, "the retry makes the same effect");
    assert!(!first.retry);
    assert!(second.retry, "the retry is told to look for it first");
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(repeat.replayed);
    assert_eq!(effects.len(), 2, "the replay ran nothing");
}

#[tokio::test]
async fn after_a_server_error_a_retry_takes_over_at_once_with_the_same_effect() {
    let h = Harness::start().await;
    let user = UserId::new();
    let body = json!({ "name": "lost answer" });

    let failed = h.post("/flaky", Some(user), Some("key-1"), &body).await;
    let retry = h.post("/flaky", Some(user), Some("key-1"), &body).await;
    let repeat = h.post("/flaky", Some(user), Some("key-1"), &body).await;

    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        retry.status,
        StatusCode::CREATED,
        "no wait for the abandon age"
    );
    assert_eq!(retry.body["effect"], failed.body["effect"]);
    assert_eq!(retry.body["retry"], json!(true));
    assert!(repeat.replayed);
    assert_eq!(h.calls.effects().len(), 2);
}

#[tokio::test]
async fn a_different_request_cannot_take_over_an_unanswered_key() {
    let h = Harness::start().await;
    let user = UserId::new();
    let lost = tokio::spawn(
        h.request("/effect", Some(user), Some("key-1"), &json!({ "n": 1 }))
            .send(),
    );
    h.entered(1).await;
    lost.abort();
    h.advance(h.idem.abandon_after + Duration::from_secs(1));

    let other = h
        .post("/effect", Some(user), Some("key-1"), &json!({ "n": 2 }))
        .await;

    other.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(h.calls.effects().len(), 1, "its effect is not continued");
}
