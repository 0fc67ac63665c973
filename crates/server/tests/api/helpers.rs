//! A running server per test and a small typed client for it.

use http::Method;
use kernel::Secret;
use kernel::testing::TestDatabase;
use serde_json::{Value, json};
use server::config::{LineStoreKind, RateLimiterKind, StockGateKind, Switch};
use server::{Application, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@stampede.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "correct horse battery";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A signed-in user as a test sees them.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub struct TestApp {
    pub base: String,
    /// The metrics listener's base URL, when `metrics_listen` is set.
    pub metrics_base: Option<String>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _db: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server on a free port with a fresh database; `configure`
    /// adjusts the settings (request limits are off unless turned on).
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDatabase::create().await;
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            database_url: db.url().to_owned(),
            rate_limit: Switch::Off,
            admin_email: Some(ADMIN_EMAIL.into()),
            admin_password: Some(Secret::new(ADMIN_PASSWORD.into())),
            ..Settings::default()
        };
        shared_state_from_env(&mut settings);
        configure(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the server builds");
        let addr = app.local_addr().expect("a bound address");
        let metrics_base = app
            .metrics_addr()
            .map(|a| format!("http://{}", a.expect("a bound metrics address")));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            metrics_base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
            _db: db,
        }
    }

    /// The server's database, for a test that sets up what a crash leaves.
    pub async fn database(&self) -> kernel::Db {
        kernel::Db::connect(self.database_url(), &kernel::db::DbOptions::default())
            .await
            .expect("the test database opens")
    }

    /// The server's database, for a test that must set up what no
    /// endpoint makes (a dead letter).
    pub fn database_url(&self) -> &str {
        self._db.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the server answers")
    }

    /// The served OpenAPI document.
    pub async fn openapi(&self) -> Value {
        self.get("/openapi.json", None)
            .await
            .json()
            .await
            .expect("the OpenAPI document is JSON")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// POSTs `body` as `who`, asserts 201 and returns what was created.
    pub async fn created(&self, path: &str, who: &Session, body: Value) -> Value {
        let response = self.post(path, Some(&who.access_token), body).await;
        assert_eq!(response.status(), 201, "POST {path} creates");
        response.json().await.expect("a created resource")
    }

    pub async fn sign_up(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/signup",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 201, "sign-up of {email}");
        response.json().await.expect("a user")
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Session {
        let response = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        let tokens: Value = response.json().await.expect("tokens");
        Session {
            user_id: text(&tokens["user"]["id"]),
            email: email.to_owned(),
            access_token: text(&tokens["access_token"]),
            refresh_token: text(&tokens["refresh_token"]),
        }
    }

    /// A new USER, signed in.
    pub async fn new_user(&self) -> Session {
        let email = format!("user-{}@stampede.test", uuid::Uuid::new_v4().simple());
        self.sign_up(&email).await;
        self.log_in(&email, PASSWORD).await
    }

    pub async fn admin(&self) -> Session {
        self.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// A new user given exactly `roles` by the admin, then signed in.
    pub async fn user_with_roles(&self, roles: &[&str]) -> Session {
        let user = self.new_user().await;
        if roles != ["USER"] {
            let admin = self.admin().await;
            let response = self
                .request(
                    Method::PUT,
                    &format!("/api/v1/users/{}/roles", user.user_id),
                    Some(&admin.access_token),
                    Some(json!({ "roles": roles })),
                )
                .await;
            assert_eq!(response.status(), 200, "roles {roles:?}");
        }
        self.log_in(&user.email, PASSWORD).await
    }

    /// Stops the server the way a signal would, and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
    }
}

/// With `STAMPEDE_TEST_STOCK_GATE=redis|postgres` (and `STAMPEDE_TEST_REDIS_URL`)
/// the server runs the scaled-out way: stock counters and request limits in
/// Redis (under a prefix of its own) or the PostgreSQL gate. CI runs the suite
/// so on PostgreSQL + Redis.
fn shared_state_from_env(settings: &mut Settings) {
    let redis_url = std::env::var("STAMPEDE_TEST_REDIS_URL").ok();
    match std::env::var("STAMPEDE_TEST_STOCK_GATE").as_deref() {
        Ok("redis") => {
            settings.stock_gate = StockGateKind::Redis;
            settings.rate_limiter = RateLimiterKind::Redis;
            settings.line_store = LineStoreKind::Redis;
            settings.redis_url =
                Some(redis_url.expect("STAMPEDE_TEST_REDIS_URL for the Redis gate"));
        }
        Ok("postgres") => settings.stock_gate = StockGateKind::Postgres,
        _ => {}
    }
    settings.redis_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `now + offset` in RFC 3339: periods and windows around the present.
pub fn from_now(offset: time::Duration) -> String {
    kernel::Timestamp::from(time::OffsetDateTime::now_utc() + offset).to_string()
}

/// An ACTIVE event that started a day ago and ends in a day.
pub fn live_event() -> Value {
    json!({
        "name": "Now", "status": "ACTIVE",
        "starts_at": from_now(-time::Duration::days(1)),
        "ends_at": from_now(time::Duration::days(1)),
    })
}

pub fn text(v: &Value) -> String {
    v.as_str().expect("a string").to_owned()
}

/// Asserts a problem+json answer with this status and code; returns the body.
pub async fn expect_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, PROBLEM_JSON);
    let body: Value = response.json().await.expect("a problem body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
    body
}
