//! Settings, layered: built-in defaults, then an optional TOML file, then
//! `STAMPEDE_…` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use kernel::Secret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every setting of `stampede serve`. Each is also `STAMPEDE_<NAME>` in the
/// environment and `<name> = …` in the TOML file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub database_url: String,
    pub database_max_connections: u32,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds a client gets to send a request's headers, counted from the
    /// connection's start or the previous answer: also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout_seconds: u64,
    /// Seconds a client gets to send a request's body (408 after).
    pub body_read_timeout_seconds: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// `on` or `off`: the per-address and per-user request limits.
    /// Login-failure throttling stays on either way.
    pub rate_limit: Switch,
    /// Requests per second (and burst) per client address, for anonymous callers.
    pub rate_limit_per_address: u32,
    /// Requests per second (and burst) per signed-in user.
    pub rate_limit_per_user: u32,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Origins allowed by CORS; empty allows none, `["*"]` allows any.
    pub cors_allowed_origins: Vec<String>,
    pub access_token_ttl_seconds: i64,
    pub refresh_token_ttl_seconds: i64,
    /// Ed25519 private key (PKCS#8 PEM). Without it a key is generated on
    /// first start and kept in the database.
    pub jwt_private_key_file: Option<PathBuf>,
    /// Mark the refresh cookie `Secure` (when served over HTTPS).
    pub secure_cookie: bool,
    /// Creates this ADMIN at start-up if the email does not exist yet.
    pub admin_email: Option<String>,
    /// Never serialised: written out, settings carry no password.
    #[serde(serialize_with = "withheld")]
    pub admin_password: Option<Secret<String>>,
    /// `json` (default) or `pretty`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `debug`; `RUST_LOG` wins. The
    /// default keeps sqlx at `warn`: its PostgreSQL notices ("relation …
    /// already exists, skipping") are noise on every start.
    pub log_level: String,
    /// How long in-flight requests get to finish at shutdown.
    pub shutdown_grace_seconds: u64,
    /// `on` mounts `POST /admin-api/test-users` (bulk signed-in users for
    /// load tests); `off`, the default, leaves that path unknown.
    pub test_users: Switch,
    /// Where stock counters live: `memory` (this process; the default),
    /// `redis` (shared by every instance; needs `redis_url`) or `postgres`
    /// (counter rows in the PostgreSQL database, spread over
    /// `stock_gate_shards` rows; needs a PostgreSQL `database_url`).
    pub stock_gate: StockGateKind,
    /// Counter rows per pool for the PostgreSQL stock gate.
    pub stock_gate_shards: u16,
    /// Age after which a shared stock gate's lease (a unit taken by a claim
    /// not yet written) is checked against the database and settled or
    /// given back: a claim whose process died. At least
    /// [`MIN_STOCK_LEASE_SECONDS`], above the bound on a claim's write.
    pub stock_lease_seconds: u64,
    /// Age after which an `Idempotency-Key` whose request never answered (its
    /// process died) is taken over by a retry, which then looks for the
    /// first request's effect. Above `stock_lease_seconds` and one lease
    /// sweep, so the first request's stock is settled by then.
    pub idempotency_abandon_seconds: u64,
    /// How long an order may wait for its payment; placing it extends its
    /// holds to this, never further (default 2400: the provider allows 30
    /// minutes to authenticate and 10 to confirm).
    pub payment_window_seconds: u64,
    /// How long a waiting-list offer's hold lasts before its units go to
    /// the next entry (default 900).
    pub waiting_list_offer_seconds: u64,
    /// Wires the `fake` payment provider (demos, outside test suites); off,
    /// a `fake` payment is a 422.
    pub fake_payments: Switch,
    /// Where request limits are counted: `memory` (the default) or `redis`
    /// (shared by every instance; needs `redis_url`).
    pub rate_limiter: RateLimiterKind,
    /// `redis://HOST:PORT[/DB]`, for the Redis stock gate and rate limiter.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this deployment uses.
    pub redis_prefix: String,
    /// `HOST:PORT` of a listener that serves `/metrics` alone; when set,
    /// `/metrics` is not on the public listener.
    pub metrics_listen: Option<String>,
    /// How the bus carries messages: `in_process` (the default: outbox to
    /// inbox inside this database) or `rabbitmq` (between instances and
    /// services through the broker at `amqp_url`).
    pub bus: BusKind,
    /// `amqp://USER:PASSWORD@HOST:PORT/VHOST` for `bus = rabbitmq`. Never
    /// serialised or logged: it holds a password.
    #[serde(serialize_with = "withheld")]
    pub amqp_url: Option<Secret<String>>,
    /// Prefix of every exchange and queue this deployment declares
    /// (`docs/messages.md`, "Topology"); instances sharing one keep it equal.
    pub amqp_prefix: String,
    /// Lets outbound webhooks reach loopback, link-local and private
    /// addresses (refused by default: SSRF); test suites set it.
    pub webhook_allow_private: bool,
    /// The first retry delay of outbound webhooks, in seconds; later
    /// delays double from it (with jitter) for up to three days.
    pub webhook_retry_base_seconds: u64,
    /// `smtp://HOST:PORT` (plain), `smtps://USER:PASSWORD@HOST:465` (TLS) or
    /// `smtp://…?tls=required` (STARTTLS) for the emails; without it they
    /// are logged and counted, not sent. Never serialised or logged: it may
    /// hold a password.
    #[serde(serialize_with = "withheld")]
    pub smtp_url: Option<Secret<String>>,
    /// The emails' `From`, an address or `Name <address>`.
    pub mail_from: String,
    /// A Slack-compatible incoming webhook for line calls and operator
    /// alerts. Never serialised or logged: the URL is the credential.
    #[serde(serialize_with = "withheld")]
    pub slack_webhook_url: Option<Secret<String>>,
    /// The operator alert posts when the dead letters have grown by this
    /// many since its last alert (checked every minute).
    pub dead_letter_alert_threshold: u64,
    /// The Toss Payments secret key (`live_sk_…`, `test_sk_…`); without it
    /// the `toss` provider is off. Never serialised or logged.
    #[serde(serialize_with = "withheld")]
    pub toss_secret_key: Option<Secret<String>>,
    /// Where the Toss Payments API lives; tests point it at a local server
    /// speaking the same protocol.
    pub toss_api_base: String,
    /// The bound on each call to Toss Payments, in milliseconds (1 to
    /// 120000); a call past it is an *unknown* outcome.
    pub toss_timeout_ms: u64,
    /// Where the park's waiting lines answer positions: `memory` (this
    /// process, loaded from the database at start; the default) or `redis`
    /// (shared by every instance; needs `redis_url`).
    pub line_store: LineStoreKind,
    /// Active waiting lines one user may be in at once.
    pub max_lines_per_user: u32,
    /// How long a called party has to reach the gate before it expires.
    pub call_grace_seconds: u32,
    /// The largest party one line entry may hold.
    pub max_party_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://./data/stampede.db".into(),
            database_max_connections: 16,
            body_limit_bytes: 1024 * 1024,
            header_read_timeout_seconds: 15,
            body_read_timeout_seconds: 30,
            max_connections: 10_000,
            rate_limit: Switch::On,
            rate_limit_per_address: 100,
            rate_limit_per_user: 50,
            trust_forwarded_for: false,
            cors_allowed_origins: Vec::new(),
            access_token_ttl_seconds: 600,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            jwt_private_key_file: None,
            secure_cookie: false,
            admin_email: None,
            admin_password: None,
            log_format: LogFormat::Json,
            log_level: "info,sqlx=warn".into(),
            shutdown_grace_seconds: 30,
            test_users: Switch::Off,
            stock_gate: StockGateKind::Memory,
            stock_gate_shards: 16,
            stock_lease_seconds: 30,
            idempotency_abandon_seconds: 120,
            payment_window_seconds: 2400,
            waiting_list_offer_seconds: 900,
            fake_payments: Switch::Off,
            rate_limiter: RateLimiterKind::Memory,
            redis_url: None,
            redis_prefix: "stampede".into(),
            metrics_listen: None,
            bus: BusKind::InProcess,
            amqp_url: None,
            amqp_prefix: "stampede".into(),
            webhook_allow_private: false,
            webhook_retry_base_seconds: 5,
            smtp_url: None,
            mail_from: "Stampede <no-reply@stampede.invalid>".into(),
            slack_webhook_url: None,
            dead_letter_alert_threshold: 10,
            toss_secret_key: None,
            toss_api_base: commerce::payments::toss::DEFAULT_API_BASE.into(),
            toss_timeout_ms: 10_000,
            line_store: LineStoreKind::Memory,
            max_lines_per_user: 3,
            call_grace_seconds: 600,
            max_party_size: 12,
        }
    }
}

/// The shortest lease age accepted: the bound on a claim's durable write
/// ([`gate::CLAIM_WRITE_TIMEOUT`]) and a margin, so that a sweep never
/// judges a claim whose write may still be running.
pub const MIN_STOCK_LEASE_SECONDS: u64 = gate::CLAIM_WRITE_TIMEOUT.as_secs() + 5;

/// The settings' names, which are also the accepted environment variables
/// (upper-cased, with the `STAMPEDE_` prefix).
const KEYS: &[&str] = &[
    "listen",
    "database_url",
    "database_max_connections",
    "body_limit_bytes",
    "header_read_timeout_seconds",
    "body_read_timeout_seconds",
    "max_connections",
    "rate_limit",
    "rate_limit_per_address",
    "rate_limit_per_user",
    "trust_forwarded_for",
    "cors_allowed_origins",
    "access_token_ttl_seconds",
    "refresh_token_ttl_seconds",
    "jwt_private_key_file",
    "secure_cookie",
    "admin_email",
    "admin_password",
    "log_format",
    "log_level",
    "shutdown_grace_seconds",
    "test_users",
    "stock_gate",
    "stock_gate_shards",
    "stock_lease_seconds",
    "idempotency_abandon_seconds",
    "payment_window_seconds",
    "waiting_list_offer_seconds",
    "fake_payments",
    "rate_limiter",
    "redis_url",
    "redis_prefix",
    "metrics_listen",
    "bus",
    "amqp_url",
    "amqp_prefix",
    "webhook_allow_private",
    "webhook_retry_base_seconds",
    "smtp_url",
    "mail_from",
    "slack_webhook_url",
    "dead_letter_alert_threshold",
    "toss_secret_key",
    "toss_api_base",
    "toss_timeout_ms",
    "line_store",
    "max_lines_per_user",
    "call_grace_seconds",
    "max_party_size",
];

/// Serialises a secret setting as absent: a written-out configuration holds no secret.
fn withheld<S: Serializer>(_: &Option<Secret<String>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

/// Where the stock gate keeps its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StockGateKind {
    Memory,
    Redis,
    Postgres,
}

/// Where the park's lines answer positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineStoreKind {
    Memory,
    Redis,
}

/// How the bus carries messages between outboxes and inboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusKind {
    #[serde(rename = "in_process")]
    InProcess,
    #[serde(rename = "rabbitmq")]
    RabbitMq,
}

/// Where request limits are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimiterKind {
    Memory,
    Redis,
}

/// An on/off setting that also accepts `true`/`false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

impl<'de> Deserialize<'de> for Switch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Self::On),
            Raw::Bool(false) => Ok(Self::Off),
            Raw::Text(t) => match t.to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "yes" => Ok(Self::On),
                "off" | "false" | "0" | "no" => Ok(Self::Off),
                other => Err(serde::de::Error::custom(format!(
                    "expected on or off, got {other:?}"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        Self::Invalid(e.to_string().replace('\n', " "))
    }
}

impl Settings {
    /// Layers defaults, the TOML file, the environment and `overrides` (the
    /// flags that were given).
    pub fn load(file: Option<&PathBuf>, overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("STAMPEDE_").only(KEYS));
        for (key, value) in overrides {
            figment = figment.merge(Serialized::default(key, value));
        }
        let settings: Self = figment.extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Whether anything is configured to live in Redis.
    #[must_use]
    pub fn needs_redis(&self) -> bool {
        self.stock_gate == StockGateKind::Redis
            || self.rate_limiter == RateLimiterKind::Redis
            || self.line_store == LineStoreKind::Redis
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.metrics_addr()?;
        if self.body_limit_bytes == 0 || self.database_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "body_limit_bytes and database_max_connections must be positive".into(),
            ));
        }
        if self.header_read_timeout_seconds == 0
            || self.body_read_timeout_seconds == 0
            || self.max_connections == 0
        {
            return Err(ConfigError::Invalid(
                "header_read_timeout_seconds, body_read_timeout_seconds and max_connections \
                 must be positive"
                    .into(),
            ));
        }
        if let Some(bad) = self
            .cors_allowed_origins
            .iter()
            .find(|o| *o != "*" && !is_origin(o))
        {
            return Err(ConfigError::Invalid(format!(
                "cors_allowed_origins: {bad:?} is not an origin (scheme://host[:port], \
                 no path, or \"*\")"
            )));
        }
        if self.access_token_ttl_seconds <= 0 || self.refresh_token_ttl_seconds <= 0 {
            return Err(ConfigError::Invalid(
                "token lifetimes must be positive".into(),
            ));
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return Err(ConfigError::Invalid(
                "admin_email and admin_password go together".into(),
            ));
        }
        if self.needs_redis() && self.redis_url.is_none() {
            return Err(ConfigError::Invalid(
                "stock_gate = redis, rate_limiter = redis and line_store = redis need redis_url"
                    .into(),
            ));
        }
        if self.stock_gate == StockGateKind::Postgres && !self.database_url.starts_with("postgres")
        {
            return Err(ConfigError::Invalid(
                "stock_gate = postgres needs a postgres:// database_url".into(),
            ));
        }
        if self.stock_lease_seconds < MIN_STOCK_LEASE_SECONDS {
            return Err(ConfigError::Invalid(format!(
                "stock_lease_seconds must be at least {MIN_STOCK_LEASE_SECONDS}: claims may \
                 spend up to {:?} on their write",
                gate::CLAIM_WRITE_TIMEOUT
            )));
        }
        let settled_by = self.stock_lease_seconds + crate::workers::LEASE_SWEEP_PERIOD.as_secs();
        if !(1..=86_400).contains(&self.payment_window_seconds) {
            return Err(ConfigError::Invalid(
                "payment_window_seconds must be between 1 and 86400".into(),
            ));
        }
        if !(1..=86_400).contains(&self.waiting_list_offer_seconds) {
            return Err(ConfigError::Invalid(
                "waiting_list_offer_seconds must be between 1 and 86400".into(),
            ));
        }
        if self.idempotency_abandon_seconds < settled_by {
            return Err(ConfigError::Invalid(format!(
                "idempotency_abandon_seconds must be at least {settled_by} \
                 (stock_lease_seconds and one lease sweep): a retry must find the \
                 first request's stock settled"
            )));
        }
        if self.bus == BusKind::RabbitMq && self.amqp_url.is_none() {
            return Err(ConfigError::Invalid("bus = rabbitmq needs amqp_url".into()));
        }
        if self.amqp_prefix.is_empty() || self.amqp_prefix.len() > 100 {
            return Err(ConfigError::Invalid(
                "amqp_prefix must be 1 to 100 characters".into(),
            ));
        }
        if self.webhook_retry_base_seconds == 0 || self.webhook_retry_base_seconds > 3600 {
            return Err(ConfigError::Invalid(
                "webhook_retry_base_seconds must be 1 to 3600".into(),
            ));
        }
        if self.max_lines_per_user == 0
            || self.call_grace_seconds == 0
            || self.max_party_size == 0
            || self.call_grace_seconds > 86_400
        {
            return Err(ConfigError::Invalid(
                "max_lines_per_user and max_party_size must be at least 1, \
                 call_grace_seconds 1 to 86400"
                    .into(),
            ));
        }
        if self.dead_letter_alert_threshold == 0 {
            return Err(ConfigError::Invalid(
                "dead_letter_alert_threshold must be at least 1".into(),
            ));
        }
        notify::Mailer::check(self.smtp_url.as_ref(), &self.mail_from)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(url) = &self.slack_webhook_url {
            notify::SlackWebhook::check(url).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        self.toss_settings()
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(['{', '}']) {
            return Err(ConfigError::Invalid(
                "redis_prefix must be non-empty, without braces".into(),
            ));
        }
        Ok(())
    }

    /// The Toss Payments provider's settings, when a secret key is set.
    #[must_use]
    pub fn toss(&self) -> Option<commerce::payments::TossSettings> {
        self.toss_secret_key.as_ref().map(|_| self.toss_settings())
    }

    /// The Toss settings as given (an empty key when none is set, which
    /// `check` then refuses only if a key was set).
    fn toss_settings(&self) -> commerce::payments::TossSettings {
        commerce::payments::TossSettings {
            secret_key: self
                .toss_secret_key
                .clone()
                .unwrap_or_else(|| Secret::new("unset".to_owned())),
            api_base: self.toss_api_base.clone(),
            timeout: std::time::Duration::from_millis(self.toss_timeout_ms),
        }
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        socket_addr("listen", &self.listen)
    }

    /// Where `/metrics` is served on its own, if anywhere.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics_listen
            .as_deref()
            .map(|addr| socket_addr("metrics_listen", addr))
            .transpose()
    }
}

fn socket_addr(name: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "{name} must be HOST:PORT with an IP address, got {value:?}"
        ))
    })
}

/// `http(s)://host[:port]` exactly as a browser sends it in `Origin`.
fn is_origin(origin: &str) -> bool {
    origin.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri
                .authority()
                .is_some_and(|a| !a.as_str().contains('@') && !a.host().is_empty())
            // `Uri` reports "/" for an origin without a path; the text must have none.
            && uri.path_and_query().is_none_or(|p| p.as_str() == "/" && !origin.ends_with('/'))
    }) && http::HeaderValue::from_str(origin).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::default();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://./data/stampede.db");
        assert_eq!(s.body_limit_bytes, 1_048_576);
        assert_eq!(s.rate_limit, Switch::On);
        assert_eq!(s.test_users, Switch::Off);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile_dir();
        let path = dir.join("stampede.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nrate_limit = \"off\"\nlog_level = \"debug\"\ntest_users = true\n",
        )
        .expect("write");
        let s = Settings::load(Some(&path), &[("listen", "127.0.0.1:9100".into())]).expect("loads");
        assert_eq!(s.listen, "127.0.0.1:9100");
        assert_eq!(s.rate_limit, Switch::Off);
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.test_users, Switch::On);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile_dir();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "lisen = \"x\"\n").expect("write");
        assert!(Settings::load(Some(&path), &[]).is_err());
        std::fs::write(&path, "rate_limit = \"maybe\"\n").expect("write");
        assert!(Settings::load(Some(&path), &[]).is_err());
        let _ = std::fs::remove_dir_all(dir);
        let err = Settings::load(None, &[("listen", "nonsense".into())]).expect_err("bad listen");
        assert!(err.to_string().contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn shared_gates_need_their_backends() {
        let redis_without_url = Settings::load(None, &[("stock_gate", "redis".into())]);
        assert!(
            redis_without_url
                .expect_err("no url")
                .to_string()
                .contains("redis_url")
        );
        let limiter_without_url = Settings::load(None, &[("rate_limiter", "redis".into())]);
        assert!(limiter_without_url.is_err());
        let pg_gate_on_sqlite = Settings::load(None, &[("stock_gate", "postgres".into())]);
        assert!(
            pg_gate_on_sqlite
                .expect_err("sqlite")
                .to_string()
                .contains("postgres")
        );
        assert!(Settings::load(None, &[("stock_gate", "etcd".into())]).is_err());
        let shared = Settings::load(
            None,
            &[
                ("stock_gate", "redis".into()),
                ("rate_limiter", "redis".into()),
                ("redis_url", "redis://127.0.0.1:6379".into()),
            ],
        )
        .expect("loads");
        assert_eq!(shared.stock_gate, StockGateKind::Redis);
        assert_eq!(shared.rate_limiter, RateLimiterKind::Redis);
    }

    #[test]
    fn the_rabbitmq_bus_needs_its_url_and_never_shows_it() {
        assert_eq!(Settings::default().bus, BusKind::InProcess);
        let without_url = Settings::load(None, &[("bus", "rabbitmq".into())]);
        assert!(
            without_url
                .expect_err("no url")
                .to_string()
                .contains("amqp_url")
        );
        assert!(Settings::load(None, &[("bus", "kafka".into())]).is_err());
        let settings = Settings::load(
            None,
            &[
                ("bus", "rabbitmq".into()),
                ("amqp_url", "amqp://guest:hunter2@127.0.0.1:5672/%2f".into()),
            ],
        )
        .expect("loads");
        assert_eq!(settings.bus, BusKind::RabbitMq);
        let text = serde_json::to_string(&settings).expect("settings serialise");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn notifier_settings_are_checked_and_never_shown() {
        let settings = Settings::load(
            None,
            &[
                ("smtp_url", "smtp://mailer:hunter2@127.0.0.1:2525".into()),
                ("mail_from", "Shop <shop@example.com>".into()),
                (
                    "slack_webhook_url",
                    "https://hooks.example.com/services/T0/B0/hunter2".into(),
                ),
            ],
        )
        .expect("loads");
        let text = serde_json::to_string(&settings).expect("settings serialise");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{settings:?}").contains("hunter2"));
        for (key, value) in [
            ("smtp_url", "ftp://mailer:hunter2@127.0.0.1"),
            ("mail_from", "not an address"),
            ("slack_webhook_url", "hooks.example.com/hunter2"),
            ("dead_letter_alert_threshold", "0"),
        ] {
            let err = Settings::load(None, &[(key, value.into())]).expect_err(key);
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn toss_settings_are_checked_and_the_key_never_shown() {
        let defaults = Settings::default();
        assert_eq!(defaults.toss_api_base, "https://api.tosspayments.com");
        assert_eq!(defaults.toss_timeout_ms, 10_000);
        assert!(defaults.toss().is_none(), "off without a key");
        let with = |key: Option<&str>, base: &str, timeout_ms: u64| Settings {
            toss_secret_key: key.map(|k| Secret::new(k.to_owned())),
            toss_api_base: base.to_owned(),
            toss_timeout_ms: timeout_ms,
            ..Settings::default()
        };
        let settings = with(Some("test_sk_hunter2"), "http://127.0.0.1:9999", 2500);
        settings.validate().expect("valid");
        let toss = settings.toss().expect("on with a key");
        assert_eq!(toss.secret_key.expose(), "test_sk_hunter2");
        assert_eq!(toss.api_base, "http://127.0.0.1:9999");
        assert_eq!(toss.timeout, std::time::Duration::from_millis(2500));
        let text = serde_json::to_string(&settings).expect("settings serialise");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("\"toss_secret_key\":null"), "{text}");
        assert!(!format!("{settings:?}").contains("hunter2"));
        for (bad, names) in [
            (with(None, "api.tosspayments.com", 10), "toss_api_base"),
            (
                with(None, "ftp://api.tosspayments.com", 10),
                "toss_api_base",
            ),
            (
                with(None, "https://me:hunter2@api.tosspayments.com", 10),
                "toss_api_base",
            ),
            (
                with(None, "https://api.tosspayments.com", 0),
                "toss_timeout_ms",
            ),
            (
                with(None, "https://api.tosspayments.com", 120_001),
                "toss_timeout_ms",
            ),
            (
                with(Some(""), "https://api.tosspayments.com", 10),
                "toss_secret_key",
            ),
            (
                with(Some("test_sk hunter2"), "https://api.tosspayments.com", 10),
                "toss_secret_key",
            ),
        ] {
            let err = bad.validate().expect_err(names);
            assert!(err.to_string().contains(names), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        // The environment's spelling reaches the setting.
        let loaded =
            Settings::load(None, &[("toss_secret_key", "test_sk_x".into())]).expect("loads");
        assert!(loaded.toss().is_some());
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Settings::load(Some(&PathBuf::from("/nonexistent/stampede.toml")), &[])
            .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/stampede.toml"));
    }

    #[test]
    fn every_setting_is_read_from_the_environment() {
        let serialised = serde_json::to_value(Settings::default()).expect("settings serialise");
        let mut fields: Vec<&str> = serialised
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = KEYS.to_vec();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys, "KEYS lists exactly the fields of Settings");
    }

    #[test]
    fn written_out_settings_hold_no_password() {
        let settings = Settings {
            admin_email: Some("boss@example.com".into()),
            admin_password: Some(Secret::new("hunter2-hunter2".into())),
            ..Settings::default()
        };
        let text = serde_json::to_string(&settings).expect("settings serialise");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("\"admin_password\":null"), "{text}");
    }

    #[test]
    fn cors_origins_must_be_origins() {
        let load = |origin: &str| {
            Settings::load(None, &[]).and_then(|mut s| {
                s.cors_allowed_origins = vec![origin.to_owned()];
                s.validate().map(|()| s)
            })
        };
        for good in ["*", "https://ops.example.com", "http://127.0.0.1:3000"] {
            assert!(load(good).is_ok(), "{good} is an origin");
        }
        for bad in [
            "ops.example.com",
            "https://ops.example.com/",
            "https://ops.example.com/path",
            "ftp://ops.example.com",
            "https://user@ops.example.com",
            "https://bad\u{7f}host",
        ] {
            let err = load(bad).expect_err(bad);
            assert!(err.to_string().contains("cors_allowed_origins"), "{err}");
        }
    }

    #[test]
    fn a_bad_metrics_listen_is_refused() {
        let err = Settings::load(None, &[("metrics_listen", "nowhere".into())])
            .expect_err("bad metrics_listen");
        assert!(err.to_string().contains("metrics_listen"), "{err}");
    }

    #[test]
    fn the_payment_settings_load_and_a_zero_window_is_refused() {
        let s = Settings::load(None, &[("fake_payments", "on".into())]).expect("valid");
        assert_eq!(
            (s.payment_window_seconds, s.fake_payments),
            (2400, Switch::On)
        );
        let defaults = Settings::load(None, &[]).expect("defaults");
        assert_eq!(defaults.fake_payments, Switch::Off);
        let zero = Settings {
            payment_window_seconds: 0,
            ..defaults
        };
        let err = zero.validate().expect_err("a zero window");
        assert!(err.to_string().contains("payment_window_seconds"), "{err}");
    }

    #[test]
    fn the_waiting_list_offer_lasts_900_seconds_unless_set_and_never_zero() {
        let defaults = Settings::load(None, &[]).expect("defaults");
        assert_eq!(defaults.waiting_list_offer_seconds, 900);
        let dir = tempfile_dir();
        let path = dir.join("stampede.toml");
        std::fs::write(&path, "waiting_list_offer_seconds = 5\n").expect("write");
        let set = Settings::load(Some(&path), &[]).expect("valid");
        let _ = std::fs::remove_dir_all(dir);
        assert_eq!(set.waiting_list_offer_seconds, 5);
        let zero = Settings {
            waiting_list_offer_seconds: 0,
            ..defaults
        };
        let err = zero.validate().expect_err("a zero offer");
        assert!(
            err.to_string().contains("waiting_list_offer_seconds"),
            "{err}"
        );
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stampede-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
