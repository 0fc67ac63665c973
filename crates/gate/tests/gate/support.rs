//! What the suites run on: the backends available here, a store per test
//! (a fresh PostgreSQL schema, a unique Redis key prefix), and a proxy that
//! can make Redis go silent.
//!
//! Memory runs always; Redis when `STAMPEDE_TEST_REDIS_URL` is set; the
//! PostgreSQL gate when `STAMPEDE_TEST_DATABASE_URL` is a PostgreSQL URL.
//! A backend that is not configured skips its tests with a printed line.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gate::{
    GiveBackError, Limited, Limits, MemoryRateLimiter, MemoryStockGate, PgStockGate, PoolId, Quota,
    RateLimiter, RedisRateLimiter, RedisStockGate, Refusal, Snapshot, StaleClaim, StockGate,
    StockLoader, Taken, Unavailable,
};
use kernel::db::{Db, DbOptions};
use kernel::testing::{DATABASE_URL_VAR, TestDatabase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The environment variable that runs the suites on Redis too.
pub const REDIS_URL_VAR: &str = "STAMPEDE_TEST_REDIS_URL";
/// Shard rows per pool for the PostgreSQL gate under test: several, so that
/// takes of several units draw on several rows.
pub const PG_SHARDS: u16 = 4;

/// Generates one test per named backend (`memory`, `redis`, `postgres`),
/// each running the async fn of the same name with its [`Kind`], or
/// skipping when that backend is not configured.
macro_rules! on_backends {
    ($name:ident: $($backend:ident)+) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $backend() {
                    if let Some(kind) = crate::support::Kind::$backend() {
                        super::$name(kind).await;
                    }
                }
            )+
        }
    };
}

/// One test per stock gate implementation.
macro_rules! on_every_gate {
    ($name:ident) => {
        on_backends!($name: memory redis postgres);
    };
}

/// One test per gate that instances share.
macro_rules! on_shared_gates {
    ($name:ident) => {
        on_backends!($name: redis postgres);
    };
}

/// One test per rate limiter implementation.
macro_rules! on_every_limiter {
    ($name:ident) => {
        on_backends!($name: memory redis);
    };
}

/// A backend the suites can run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis(String),
    Postgres,
}

impl Kind {
    pub fn memory() -> Option<Self> {
        Some(Self::Memory)
    }

    pub fn redis() -> Option<Self> {
        match std::env::var(REDIS_URL_VAR) {
            Ok(url) if !url.is_empty() => Some(Self::Redis(url)),
            _ => skip(&format!("{REDIS_URL_VAR} is not set")),
        }
    }

    pub fn postgres() -> Option<Self> {
        match std::env::var(DATABASE_URL_VAR) {
            Ok(url) if url.starts_with("postgres") => Some(Self::Postgres),
            _ => skip(&format!("{DATABASE_URL_VAR} is not a PostgreSQL URL")),
        }
    }
}

fn skip(why: &str) -> Option<Kind> {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    println!("skipped {test}: {why}");
    None
}

/// Where one test's counters live; gates and limiters made from one store
/// share them, like instances sharing Redis or PostgreSQL.
pub struct Store {
    kind: Kind,
    /// Keys of this store in Redis.
    prefix: String,
    database: Option<TestDatabase>,
}

impl Store {
    pub async fn open(kind: Kind) -> Arc<Self> {
        let database = match kind {
            Kind::Postgres => {
                let database = TestDatabase::create().await;
                let db = connect(&database).await;
                db.migrate(gate::stock_migrations())
                    .await
                    .expect("the gate's migrations apply");
                db.close().await;
                Some(database)
            }
            Kind::Memory | Kind::Redis(_) => None,
        };
        Arc::new(Self {
            kind,
            prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
            database,
        })
    }

    /// A new gate instance over this store, with connections of its own.
    pub async fn gate(self: &Arc<Self>, loader: Arc<dyn StockLoader>) -> Arc<dyn StockGate> {
        let gate: Arc<dyn StockGate> = match &self.kind {
            Kind::Memory => Arc::new(MemoryStockGate::new(loader)),
            Kind::Redis(url) => Arc::new(
                RedisStockGate::connect(url, &self.prefix, loader)
                    .await
                    .expect("Redis is reachable"),
            ),
            Kind::Postgres => {
                let database = self.database.as_ref().expect("a PostgreSQL store");
                Arc::new(
                    PgStockGate::new(connect(database).await, PG_SHARDS, loader)
                        .expect("a PostgreSQL database"),
                )
            }
        };
        Arc::new(Kept {
            inner: gate,
            _store: Arc::clone(self),
        })
    }

    /// A new rate limiter instance over this store.
    pub async fn limiter(self: &Arc<Self>) -> Arc<dyn RateLimiter> {
        let limiter: Arc<dyn RateLimiter> = match &self.kind {
            Kind::Memory => Arc::new(MemoryRateLimiter::default()),
            Kind::Redis(url) => Arc::new(
                RedisRateLimiter::connect(url, &self.prefix)
                    .await
                    .expect("Redis is reachable"),
            ),
            Kind::Postgres => panic!("rate limits live in memory or Redis"),
        };
        Arc::new(Kept {
            inner: limiter,
            _store: Arc::clone(self),
        })
    }

    /// The Redis key prefix of this store.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

async fn connect(database: &TestDatabase) -> Db {
    Db::connect(database.url(), &DbOptions::default())
        .await
        .expect("the test database opens")
}

impl Drop for Store {
    fn drop(&mut self) {
        let Kind::Redis(url) = &self.kind else {
            return;
        };
        let Ok(mut redis) = redis::Client::open(url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut redis)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query(&mut redis);
        }
    }
}

/// A gate or limiter that keeps its store alive as long as it lives.
struct Kept<T: ?Sized> {
    inner: Arc<T>,
    _store: Arc<Store>,
}

#[async_trait]
impl StockGate for Kept<dyn StockGate> {
    async fn take(&self, pool: &PoolId, user: &str, quantity: u32) -> Result<(), Refusal> {
        self.inner.take(pool, user, quantity).await
    }

    async fn give_back(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
    ) -> Result<(), GiveBackError> {
        self.inner.give_back(pool, user, quantity).await
    }

    async fn take_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<Taken, Refusal> {
        self.inner.take_claim(pool, user, quantity, claim).await
    }

    async fn settle(&self, pool: &PoolId, claim: &str) -> Result<(), Unavailable> {
        self.inner.settle(pool, claim).await
    }

    async fn give_back_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<(), GiveBackError> {
        self.inner
            .give_back_claim(pool, user, quantity, claim)
            .await
    }

    async fn stale_claims(&self, older_than: Duration) -> Result<Vec<StaleClaim>, Unavailable> {
        self.inner.stale_claims(older_than).await
    }

    async fn remaining(&self, pool: &PoolId) -> Result<Option<u64>, Unavailable> {
        self.inner.remaining(pool).await
    }

    async fn reset(
        &self,
        pool: &PoolId,
        limits: Limits,
        snapshot: Snapshot,
    ) -> Result<(), Unavailable> {
        self.inner.reset(pool, limits, snapshot).await
    }

    async fn counters(&self, pool: &PoolId) -> Result<Option<(Limits, Snapshot)>, Unavailable> {
        self.inner.counters(pool).await
    }

    async fn forget(&self, pool: &PoolId) -> Result<(), Unavailable> {
        self.inner.forget(pool).await
    }
}

#[async_trait]
impl RateLimiter for Kept<dyn RateLimiter> {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), Limited> {
        self.inner.acquire(key, quota).await
    }

    async fn peek(&self, key: &str, quota: Quota) -> Result<(), Limited> {
        self.inner.peek(key, quota).await
    }
}

/// A TCP proxy in front of Redis that can go silent: while frozen it keeps
/// every connection open but passes nothing on, like a server that hangs.
pub struct Proxy {
    pub url: String,
    frozen: watch::Sender<bool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(redis_url: &str) -> Self {
        let target = redis_url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the proxy");
        let url = format!("redis://{}", listener.local_addr().expect("bound"));
        let (frozen, watching) = watch::channel(false);
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, watching.clone()));
                tokio::spawn(pump(server_read, client_write, watching.clone()));
            }
        });
        Self {
            url,
            frozen,
            accepting,
        }
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Copies bytes one way, holding them while the proxy is frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let Ok(n @ 1..) = from.read(&mut buf).await else {
            return;
        };
        if frozen.wait_for(|frozen| !*frozen).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
