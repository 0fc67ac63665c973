//! The `stampede` binary, driven as a process: start-up errors end with one
//! clear line and a non-zero exit, `migrate` and `admin create` work, settings
//! layer as documented (flags > environment > file), a configured key file is
//! published, and SIGTERM or SIGINT stop the server gracefully with status 0.
//!
//! Every test gets its own database from [`TestDatabase`]: SQLite by default,
//! PostgreSQL when `STAMPEDE_TEST_DATABASE_URL` is set.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use kernel::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_stampede");

/// How long a one-shot command (or a server that should not have started) may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Readiness polling: attempts × interval.
const READY_ATTEMPTS: u32 = 150;
const READY_INTERVAL: Duration = Duration::from_millis(100);
/// How long a signalled server may take to exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

const ADMIN_PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------
// Bad configuration: one clear line on stderr, non-zero exit, no panic.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_database_url_with_an_unknown_scheme_is_refused_in_one_line() {
    let mut cmd = stampede();
    cmd.args(["--database-url", "mysql://x", "serve", "--listen"])
        .arg(free_address().to_string());
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, "mysql");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unparseable_postgres_url_is_refused_in_one_line() {
    let mut cmd = stampede();
    cmd.args([
        "--database-url",
        "postgres://user@localhost:notaport/db",
        "serve",
        "--listen",
    ])
    .arg(free_address().to_string());
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, "database");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_already_in_use_is_refused_in_one_line() {
    let db = TestDatabase::create().await;
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port to hold");
    let addr = taken.local_addr().expect("address of the held port");
    let mut cmd = stampede();
    cmd.args(["--database-url", db.url(), "serve", "--listen"])
        .arg(addr.to_string());
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, &addr.to_string());
    drop(taken);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listen_address_that_is_not_host_and_port_is_refused_in_one_line() {
    let db = TestDatabase::create().await;
    let mut cmd = stampede();
    cmd.args(["--database-url", db.url(), "serve", "--listen", "nonsense"]);
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, "nonsense");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_file_is_refused_in_one_line() {
    let db = TestDatabase::create().await;
    let mut cmd = stampede();
    cmd.env("STAMPEDE_JWT_PRIVATE_KEY_FILE", "/nonexistent.pem")
        .args(["--database-url", db.url(), "serve", "--listen"])
        .arg(free_address().to_string());
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, "/nonexistent.pem");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_that_is_not_a_key_is_refused_in_one_line() {
    let db = TestDatabase::create().await;
    let dir = temp_dir();
    let path = dir.path().join("not-a-key.pem");
    std::fs::write(&path, "this is not a PEM private key\n").expect("write the bogus key file");
    let mut cmd = stampede();
    cmd.env("STAMPEDE_JWT_PRIVATE_KEY_FILE", &path)
        .args(["--database-url", db.url(), "serve", "--listen"])
        .arg(free_address().to_string());
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, &path.display().to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_config_file_is_refused_in_one_line() {
    let db = TestDatabase::create().await;
    let dir = temp_dir();
    let path = dir.path().join("absent.toml");
    let mut cmd = stampede();
    cmd.arg("--config")
        .arg(&path)
        .args(["--database-url", db.url(), "serve", "--listen"])
        .arg(free_address().to_string());
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, &path.display().to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_with_an_unknown_key_is_refused_in_one_line() {
    let db = TestDatabase::create().await;
    let dir = temp_dir();
    let path = write_file(&dir, "typo.toml", "lisen = \"127.0.0.1:9000\"\n");
    let mut cmd = stampede();
    cmd.arg("--config")
        .arg(&path)
        .args(["--database-url", db.url(), "serve", "--listen"])
        .arg(free_address().to_string());
    let finished = finish(cmd).await;
    assert_one_clear_line(&finished, "lisen");
}

// ---------------------------------------------------------------------------
// migrate and admin create.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn migrate_creates_a_sqlite_database_inside_a_folder_that_does_not_exist_yet() {
    let dir = temp_dir();
    let folder = dir.path().join("not").join("there").join("yet");
    let file = folder.join("stampede.db");
    assert!(!folder.exists(), "the folder must not exist before");
    let mut cmd = stampede();
    cmd.arg("--database-url")
        .arg(format!("sqlite://{}", file.display()))
        .arg("migrate");
    let finished = finish(cmd).await;
    assert!(
        finished.status.success(),
        "migrate failed: {}\n{}",
        finished.status,
        finished.stderr
    );
    assert!(folder.is_dir(), "the folder was created");
    assert!(file.is_file(), "the database file was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_points_the_memory_gate_to_the_running_server() {
    let db = TestDatabase::create().await;
    let mut cmd = stampede();
    cmd.args(["--database-url", db.url(), "reconcile"]);
    let finished = finish(cmd).await;
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished.stdout.contains("POST /admin-api/stock/reconcile"),
        "{}",
        finished.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_checks_a_shared_gate_or_refuses_a_gate_it_cannot_have() {
    let db = TestDatabase::create().await;
    let mut cmd = stampede();
    cmd.args([
        "--database-url",
        db.url(),
        "--stock-gate",
        "postgres",
        "reconcile",
    ]);
    let finished = finish(cmd).await;
    if db.url().starts_with("postgres") {
        assert!(finished.status.success(), "{}", finished.stderr);
        assert!(
            finished
                .stdout
                .contains("0 pools checked, 0 differed, 0 repaired"),
            "{}",
            finished.stdout
        );
    } else {
        assert_one_clear_line(&finished, "stock_gate = postgres");
    }
    let mut redis_without_url = stampede();
    redis_without_url.args([
        "--database-url",
        db.url(),
        "--stock-gate",
        "redis",
        "reconcile",
    ]);
    assert_one_clear_line(&finish(redis_without_url).await, "redis_url");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_create_makes_an_admin_once_who_can_then_log_in() {
    let db = TestDatabase::create().await;
    let email = "boss@example.com";

    let created = finish(admin_create(&db, email)).await;
    assert!(
        created.status.success(),
        "admin create failed: {}\n{}",
        created.status,
        created.stderr
    );
    assert!(
        created.stdout.contains(email),
        "the admin is printed: {:?}",
        created.stdout
    );

    let again = finish(admin_create(&db, email)).await;
    assert_one_clear_line(&again, "already");

    let server = Server::start(&db, |_| {}).await;
    let tokens = log_in(&server, email, ADMIN_PASSWORD).await;
    assert_is_admin(&tokens);
    assert!(server.stop("TERM").await.success(), "serve exits 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_settings_create_the_admin_at_start_up_and_a_restart_does_not_fail() {
    let db = TestDatabase::create().await;
    let email = "first@example.com";
    let with_admin = |cmd: &mut Command| {
        cmd.env("STAMPEDE_ADMIN_EMAIL", email)
            .env("STAMPEDE_ADMIN_PASSWORD", ADMIN_PASSWORD);
    };

    let first = Server::start(&db, with_admin).await;
    assert_is_admin(&log_in(&first, email, ADMIN_PASSWORD).await);
    assert!(first.stop("TERM").await.success(), "first run exits 0");

    let second = Server::start(&db, with_admin).await;
    assert_is_admin(&log_in(&second, email, ADMIN_PASSWORD).await);
    assert!(second.stop("TERM").await.success(), "second run exits 0");
}

// ---------------------------------------------------------------------------
// Settings.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn listen_comes_from_the_flag_over_the_environment_over_the_file() {
    let db = TestDatabase::create().await;
    let dir = temp_dir();
    let (from_file, from_env, from_flag) = (free_address(), free_address(), free_address());
    let config = write_file(
        &dir,
        "stampede.toml",
        &format!(
            "listen = \"{from_file}\"\ndatabase_url = \"{}\"\n",
            db.url().replace('\\', "\\\\").replace('"', "\\\"")
        ),
    );
    let client = http_client();

    // The file alone.
    let server = Server::spawn(config_only(&config), from_file);
    server.wait_until_ready().await;
    assert!(server.stop("TERM").await.success());

    // The environment over the file.
    let mut cmd = config_only(&config);
    cmd.env("STAMPEDE_LISTEN", from_env.to_string());
    let server = Server::spawn(cmd, from_env);
    server.wait_until_ready().await;
    assert!(
        !answers(&client, from_file).await,
        "the file's port is unused"
    );
    assert!(server.stop("TERM").await.success());

    // The flag over both.
    let mut cmd = config_only(&config);
    cmd.env("STAMPEDE_LISTEN", from_env.to_string())
        .args(["--listen", &from_flag.to_string()]);
    let server = Server::spawn(cmd, from_flag);
    server.wait_until_ready().await;
    assert!(
        !answers(&client, from_file).await,
        "the file's port is unused"
    );
    assert!(
        !answers(&client, from_env).await,
        "the environment's port is unused"
    );
    assert!(server.stop("TERM").await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_key_file_is_published_in_the_jwks() {
    let db = TestDatabase::create().await;
    let dir = temp_dir();
    let key = SigningKey::from_bytes(&seed());
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encode the key as PKCS#8 PEM");
    let path = write_file(&dir, "jwt.pem", &pem);
    let expected_x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());

    let server = Server::start(&db, |cmd| {
        cmd.env("STAMPEDE_JWT_PRIVATE_KEY_FILE", &path);
    })
    .await;
    let jwks: Value = http_client()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("GET /.well-known/jwks.json")
        .error_for_status()
        .expect("the JWKS answers 200")
        .json()
        .await
        .expect("the JWKS is JSON");
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys is an array")
        .iter()
        .filter_map(|k| k["x"].as_str())
        .collect();
    assert!(
        published.contains(&expected_x.as_str()),
        "the file's public key {expected_x} is published, got {jwks}"
    );
    assert!(server.stop("TERM").await.success());
}

// ---------------------------------------------------------------------------
// Graceful shutdown.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_rush_of_signups_answers_every_accepted_request_and_exits_0() {
    let db = TestDatabase::create().await;
    let server = Server::start(&db, |cmd| {
        cmd.env("STAMPEDE_RATE_LIMIT", "off");
    })
    .await;
    let client = http_client();
    let url = server.url("/api/v1/auth/signup");
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({
                        "email": format!("rush{i}@example.com"),
                        "password": "a long enough password",
                    }))
                    .send()
                    .await
                    .map(|response| (response.status(), Instant::now()))
            })
        })
        .collect();
    // Let the requests reach the server; hashing 20 passwords takes far longer.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let signalled_at = Instant::now();
    let status = server.stop("TERM").await;
    assert!(status.success(), "SIGTERM ends with status 0, got {status}");

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let (mut refused, mut after_signal) = (0, 0);
    let mut lost = Vec::new();
    for request in futures::future::join_all(requests).await {
        match request.expect("the request task finished") {
            Ok((status, at)) => {
                *statuses.entry(status.as_u16()).or_default() += 1;
                if at > signalled_at {
                    after_signal += 1;
                }
            }
            // Never accepted: the listener was already closed.
            Err(e) if e.is_connect() => refused += 1,
            Err(e) => lost.push(e.to_string()),
        }
    }
    assert!(
        lost.is_empty(),
        "accepted requests got no response: {lost:?}"
    );
    assert!(
        statuses.keys().all(|s| *s < 500),
        "no 5xx at shutdown: {statuses:?}"
    );
    let answered: usize = statuses.values().sum();
    assert!(
        answered > 0,
        "some requests were answered (refused: {refused})"
    );
    assert_eq!(
        statuses.get(&201).copied().unwrap_or_default(),
        answered,
        "every answered sign-up succeeded: {statuses:?}"
    );
    // Informative: how many were still in flight when the signal came.
    eprintln!(
        "graceful shutdown: {answered} answered ({after_signal} after SIGTERM), {refused} refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_the_server_with_status_0() {
    let db = TestDatabase::create().await;
    let server = Server::start(&db, |_| {}).await;
    let status = server.stop("INT").await;
    assert!(status.success(), "SIGINT ends with status 0, got {status}");
}

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

/// The binary with a clean environment: no inherited `STAMPEDE_…` settings or
/// `RUST_LOG`, JSON logs, backtraces on (so a panic would show), killed if dropped.
fn stampede() -> Command {
    let mut cmd = Command::new(BINARY);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STAMPEDE_") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .env("STAMPEDE_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// `stampede --database-url … admin create --email … --password …`.
fn admin_create(db: &TestDatabase, email: &str) -> Command {
    let mut cmd = stampede();
    cmd.args([
        "--database-url",
        db.url(),
        "admin",
        "create",
        "--email",
        email,
        "--password",
        ADMIN_PASSWORD,
    ]);
    cmd
}

/// `stampede --config FILE serve`, everything else from the file.
fn config_only(config: &Path) -> Command {
    let mut cmd = stampede();
    cmd.arg("--config").arg(config).arg("serve");
    cmd
}

/// What a command that ran to its end left behind.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

async fn finish(mut cmd: Command) -> Finished {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn stampede");
    // On timeout the child is dropped, and `kill_on_drop` ends it.
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .expect("stampede exits in time")
        .expect("collect stampede's output");
    Finished {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Non-zero exit; stderr is exactly one `stampede: …` line naming `mentions`;
/// no panic and no backtrace.
fn assert_one_clear_line(finished: &Finished, mentions: &str) {
    let stderr = &finished.stderr;
    assert!(
        !finished.status.success(),
        "expected a failure, got {}; stderr: {stderr}",
        finished.status
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr:?}");
    let line = lines[0];
    assert!(line.starts_with("stampede: "), "prefixed line: {line:?}");
    assert!(
        line.len() > "stampede: ".len(),
        "a non-empty message: {line:?}"
    );
    let lower = stderr.to_lowercase();
    assert!(!lower.contains("panicked"), "no panic: {stderr:?}");
    assert!(!lower.contains("backtrace"), "no backtrace: {stderr:?}");
    assert!(
        line.contains(mentions),
        "the line names {mentions:?}: {line:?}"
    );
}

/// A running `stampede serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// The child's stderr (JSON logs), shown when it does not become ready.
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    /// `serve` on a free port with `db`, after `configure` adds to the command.
    async fn start(db: &TestDatabase, configure: impl FnOnce(&mut Command)) -> Self {
        let addr = free_address();
        let mut cmd = stampede();
        cmd.args(["--database-url", db.url(), "serve", "--listen"])
            .arg(addr.to_string());
        configure(&mut cmd);
        let server = Self::spawn(cmd, addr);
        server.wait_until_ready().await;
        server
    }

    /// Spawns `cmd`, which is expected to listen on `addr`; not yet ready.
    fn spawn(mut cmd: Command, addr: SocketAddr) -> Self {
        let dir = temp_dir();
        let log = dir.path().join("stderr.log");
        let stderr = File::create(&log).expect("create the log file");
        cmd.stdout(Stdio::null()).stderr(stderr);
        let child = cmd.spawn().expect("spawn stampede serve");
        Self {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn wait_until_ready(&self) {
        let client = http_client();
        for _ in 0..READY_ATTEMPTS {
            if answers(&client, self.addr).await {
                return;
            }
            tokio::time::sleep(READY_INTERVAL).await;
        }
        panic!(
            "stampede did not answer GET /healthz on {}; its stderr:\n{}",
            self.addr,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Sends `SIG<signal>` and waits for the exit.
    async fn stop(mut self, signal: &str) -> ExitStatus {
        let pid = self.child.id().expect("the server is still running");
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} worked");
        let status = tokio::time::timeout(SHUTDOWN_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "stampede did not exit within {SHUTDOWN_TIMEOUT:?} of SIG{signal}; its stderr:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            })
            .expect("wait for stampede");
        if !status.success() {
            eprintln!(
                "stampede exited with {status}; its stderr:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Nothing to do when it already exited; errors are moot at teardown.
        let _ = self.child.start_kill();
    }
}

/// Logs in and returns the token response.
async fn log_in(server: &Server, email: &str, password: &str) -> Value {
    let response = http_client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("POST /api/v1/auth/login");
    let status = response.status();
    let body: Value = response.json().await.expect("the login answer is JSON");
    assert_eq!(status, StatusCode::OK, "login succeeds: {body}");
    body
}

fn assert_is_admin(tokens: &Value) {
    let roles = tokens["user"]["roles"]
        .as_array()
        .expect("the user has roles");
    assert!(
        roles.iter().any(|r| r == "ADMIN"),
        "the user is an ADMIN: {tokens}"
    );
}

/// Whether `GET /healthz` on `addr` answers 200.
async fn answers(client: &reqwest::Client, addr: SocketAddr) -> bool {
    client
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build an HTTP client")
}

/// A port nobody listens on right now.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
}

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

fn write_file(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write a test file");
    path
}

/// 32 bytes for a signing key, different on every run.
fn seed() -> [u8; 32] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    let half = nanos.to_le_bytes();
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&half);
    seed[16..].copy_from_slice(&half);
    seed[31] ^= 0x5a;
    seed
}
