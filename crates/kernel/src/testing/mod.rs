//! Test databases: a fresh SQLite file by default, or a fresh PostgreSQL
//! schema when `STAMPEDE_TEST_DATABASE_URL` is set. Each test gets its own,
//! so tests run in parallel, and each is removed when the test ends. And
//! [`LostCommitProxy`], which loses the answer to a PostgreSQL commit,
//! [`OutageProxy`], which takes a dependency away and brings it back, and
//! [`SmtpSink`], a real SMTP server to send test mail to.

mod lost_commit;
mod outage;
mod smtp_sink;

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
// Schema names are generated here from a UUID, never from input.
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

pub use lost_commit::LostCommitProxy;
pub use outage::OutageProxy;
pub use smtp_sink::{SMTP_VAR, SmtpSink};

/// The environment variable that switches the suites to PostgreSQL.
pub const DATABASE_URL_VAR: &str = "STAMPEDE_TEST_DATABASE_URL";

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { admin_url: String, schema: String },
}

impl TestDatabase {
    /// Creates an empty database. Panics when PostgreSQL was asked for and
    /// cannot be reached: a suite must never quietly fall back.
    pub async fn create() -> Self {
        match std::env::var(DATABASE_URL_VAR) {
            Ok(admin_url) if !admin_url.is_empty() => Self::postgres(admin_url).await,
            _ => Self::sqlite(),
        }
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder for the test database");
        let url = format!("sqlite://{}", dir.path().join("stampede.db").display());
        Self {
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    async fn postgres(admin_url: String) -> Self {
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect(&admin_url).await;
        conn.execute(AssertSqlSafe(format!("create schema {schema}")))
            .await
            .expect("create a test schema");
        let _ = conn.close().await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        // The application name lets the cleanup find this test's connections.
        let url = format!(
            "{admin_url}{separator}options=-c%20search_path%3D{schema}&application_name={schema}"
        );
        Self {
            url,
            cleanup: Cleanup::Schema { admin_url, schema },
        }
    }

    /// The URL to hand to [`crate::Db::connect`] or to a server's settings.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    let options = PgConnectOptions::from_str(url)
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is not a PostgreSQL URL: {e}"));
    options
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is set but PostgreSQL is unreachable: {e}"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Schema { admin_url, schema } = &self.cleanup {
            let (admin_url, schema) = (admin_url.clone(), schema.clone());
            // Drop runs outside async; a short-lived runtime on its own thread does the work.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let mut conn = connect(&admin_url).await;
                    // A server under test may be frozen mid-transaction (its
                    // runtime is the one being dropped); end its sessions so
                    // their locks cannot block the drop.
                    let _ = sqlx::query(
                        "select pg_terminate_backend(pid) from pg_stat_activity \
                         where application_name = $1 and pid <> pg_backend_pid()",
                    )
                    .bind(&schema)
                    .execute(&mut conn)
                    .await;
                    let _ = conn
                        .execute(AssertSqlSafe(format!(
                            "drop schema if exists {schema} cascade"
                        )))
                        .await;
                    let _ = conn.close().await;
                });
            })
            .join();
        }
    }
}
