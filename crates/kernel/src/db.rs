//! The database handle: SQLite (embedded default) or PostgreSQL, picked from
//! the URL at runtime.
//!
//! Writes go through [`write_tx!`], reads through [`read!`]; each expands the
//! same query code once per backend, so a store is written once and runs on
//! both. On SQLite every write runs on a single group-commit writer, on a
//! thread of its own: writes that arrive together share one transaction and
//! one fsync (each in its own savepoint, so one failing write does not undo
//! its neighbours; a write alone needs none), and no caller hears "done"
//! before the fsync; a checkpointer beside it copies the WAL back into the
//! database. PostgreSQL does the same batching itself when concurrent
//! transactions commit. See `docs/adr/0002-durable-writes-and-group-commit.md`
//! and `docs/adr/0012-batched-claim-writes.md`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Executor};

mod writer;

use writer::GroupCommitWriter;

pub use rusqlite;

/// How long a SQLite connection waits for another's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled PostgreSQL connection idle for longer than this is pinged before
/// it is handed out, and replaced if the ping fails. sqlx's own check pings
/// every connection it hands out: a round trip before every transaction,
/// which on the claim path is one in four of a batch's (ping, `begin`,
/// insert, `commit`): the scaled firehose sold ~5 % less with it (0–13 %
/// over six pairs, docs/BENCHMARKS.md, session 9). A connection busy within
/// the last second was pinged on its release and is very likely alive; one
/// that sat idle through a restart of PostgreSQL is found here, before use.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Most writes the SQLite writer puts into one transaction.
    pub max_batch: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            max_batch: 512,
        }
    }
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL must start with sqlite:// or postgres:// (got {0:?})")]
    UnknownScheme(String),
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error(
        "an in-memory SQLite database cannot be shared by the writer and the readers; \
         give a file path (sqlite://PATH)"
    )]
    InMemory,
    #[error("cannot open the database's direct writer connection: {0}")]
    ConnectDirect(#[source] rusqlite::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The database: a cheap, cloneable handle.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// SQLite: a pool of connections for reads, one group-commit writer for writes.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    pub read: SqlitePool,
    writer: GroupCommitWriter,
}

/// Both migration sets of one module; each module owns its tables.
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

impl Db {
    /// Opens the database named by `url` (`sqlite://PATH` or `postgres://…`).
    /// A SQLite file and its folder are created when missing.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, options).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Durable before acknowledged: never let a server default turn
            // synchronous commit off for our sessions.
            let connect = PgConnectOptions::from_str(url)
                .map_err(DbError::Connect)?
                .options([("synchronous_commit", "on")]);
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PING_IF_IDLE_FOR {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(connect)
                .await
                .map_err(DbError::Connect)?;
            Ok(Self::Postgres(pool))
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(DbError::UnknownScheme(scheme.to_owned()))
        }
    }

    async fn connect_sqlite(url: &str, options: &DbOptions) -> Result<Self, DbError> {
        // Every connection to an in-memory database is a database of its own.
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(DbError::InMemory);
        }
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(DbError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced on every commit, so a commit survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        if let Some(dir) = Path::new(connect.get_filename()).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let read = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(DbError::Connect)?;
        let checkpointer = SqliteConnection::connect_with(&connect)
            .await
            .map_err(DbError::Connect)?;
        let path = connect.get_filename().to_owned();
        let conn = SqliteConnection::connect_with(&writer::writer_options(connect))
            .await
            .map_err(DbError::Connect)?;
        let direct = tokio::task::spawn_blocking(move || writer::open_direct(&path))
            .await
            .map_err(|e| DbError::Connect(sqlx::Error::Io(std::io::Error::other(e))))?
            .map_err(DbError::ConnectDirect)?;
        let writer = GroupCommitWriter::start(conn, direct, checkpointer, options.max_batch);
        Ok(Self::Sqlite(SqliteDb { read, writer }))
    }

    /// Which backend this is, for the rare statement that differs.
    #[must_use]
    pub const fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies a module's migrations. Several modules share one database, so
    /// each migrator ignores the versions the others applied.
    pub async fn migrate(&self, migrations: Migrations) -> Result<(), DbError> {
        match self {
            Self::Sqlite(db) => {
                let mut m = migrations.sqlite;
                m.set_ignore_missing(true);
                // Migrations run at start-up, before any write is queued; the
                // busy timeout covers the writer's idle connection.
                m.run(&db.read).await?;
            }
            Self::Postgres(pool) => {
                let mut m = migrations.postgres;
                m.set_ignore_missing(true);
                m.run(pool).await?;
            }
        }
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(db) => db.read.execute("select 1").await.map(drop),
            Self::Postgres(pool) => pool.execute("select 1").await.map(drop),
        }
    }

    /// Where to run work that feeds this database's writes, such as a
    /// [`Batcher`](crate::batch::Batcher) of hot writes: on SQLite the
    /// writer's own thread, so that between one batch's commit and the next
    /// batch's start nothing waits for a turn behind request tasks on a busy
    /// runtime; on PostgreSQL the current runtime. Call it within a Tokio
    /// runtime.
    #[must_use]
    pub fn writer_runtime(&self) -> tokio::runtime::Handle {
        match self {
            Self::Sqlite(db) => db
                .writer
                .runtime
                .clone()
                .unwrap_or_else(tokio::runtime::Handle::current),
            Self::Postgres(_) => tokio::runtime::Handle::current(),
        }
    }

    /// Connections open and idle, for the pool gauges.
    #[must_use]
    pub fn pool_stats(&self) -> (u32, usize) {
        match self {
            Self::Sqlite(db) => (db.read.size(), db.read.num_idle()),
            Self::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }

    /// Waits for queued writes, then closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(db) => {
                db.writer.close().await;
                db.read.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Runs a write transaction on either backend: on SQLite inside the
/// group-commit writer, on PostgreSQL in a transaction of its own. The body
/// sees `$conn` as `&mut SqliteConnection` or `&mut PgConnection` and must
/// evaluate to a `Result` whose error type is `From<sqlx::Error>`; an `Err`
/// rolls the write back. Captured values are moved in.
///
/// `write_tx!(db, |conn, backend| body)` also binds the [`Backend`], for the
/// rare statement that differs between the two.
#[macro_export]
macro_rules! write_tx {
    ($db:expr, |$conn:ident| $body:expr) => {
        $crate::write_tx!($db, |$conn, _backend| $body)
    };
    ($db:expr, |$conn:ident, $backend:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(sqlite) => {
                sqlite
                    .write(move |$conn| {
                        ::std::boxed::Box::pin(async move {
                            let $backend = $crate::db::Backend::Sqlite;
                            $body
                        })
                    })
                    .await
            }
            $crate::db::Db::Postgres(pool) => match pool.begin().await {
                Err(e) => Err(e.into()),
                Ok(mut tx) => {
                    let result = {
                        let $conn: &mut ::sqlx::PgConnection = &mut *tx;
                        let $backend = $crate::db::Backend::Postgres;
                        async move { $body }.await
                    };
                    match result {
                        Ok(value) => tx.commit().await.map(|()| value).map_err(Into::into),
                        Err(e) => Err(e),
                    }
                }
            },
        }
    };
}

/// Runs read-only query code against either backend's pool; `$pool` is a
/// `&SqlitePool` or a `&PgPool`.
#[macro_export]
macro_rules! read {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(sqlite) => {
                let $pool = &sqlite.read;
                $body
            }
            $crate::db::Db::Postgres(pool) => {
                let $pool = pool;
                $body
            }
        }
    };
}

/// A stored value the model refuses.
#[derive(Debug, thiserror::Error)]
#[error("stored {what} is not valid: {reason}")]
pub struct BadRow {
    what: &'static str,
    reason: String,
}

/// The decode error a store returns for a stored value its model refuses
/// (never a panic).
pub fn bad_row(what: &'static str, reason: impl ToString) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(BadRow {
        what,
        reason: reason.to_string(),
    }))
}

/// A `like … escape '\'` pattern matching text that contains `fragment`:
/// `%`, `_` and `\` in it match only themselves.
#[must_use]
pub fn contains_pattern(fragment: &str) -> String {
    let mut out = String::with_capacity(fragment.len() + 2);
    out.push('%');
    for c in fragment.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A stored count as a `u32`, or the decode error naming it.
pub fn stored_count(what: &'static str, n: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(n).map_err(|e| bad_row(what, e))
}

/// An error of the SQLite writer's direct connection
/// ([`SqliteDb::write_direct`]) as sqlx's database error, so callers tell a
/// unique violation (or any kind) the same way whichever connection wrote.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DirectSqliteError {
    message: String,
    /// SQLite's extended result code, when SQLite refused.
    code: Option<std::ffi::c_int>,
    #[source]
    source: rusqlite::Error,
}

impl sqlx::error::DatabaseError for DirectSqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.map(|code| code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    /// As sqlx's own SQLite driver reads the extended codes.
    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        use sqlx::error::ErrorKind;
        match self.code {
            Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                ErrorKind::UniqueViolation
            }
            Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => ErrorKind::ForeignKeyViolation,
            Some(ffi::SQLITE_CONSTRAINT_NOTNULL) => ErrorKind::NotNullViolation,
            Some(ffi::SQLITE_CONSTRAINT_CHECK) => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// A direct connection's error as an `sqlx::Error`: a database error, which
/// [`may_have_committed`] reads as "nothing written" (the direct connection
/// is in-process: no answer can be lost on the way).
#[must_use]
pub fn direct_error(e: rusqlite::Error) -> sqlx::Error {
    let (message, code) = match &e {
        rusqlite::Error::SqliteFailure(failure, message) => (
            message.clone().unwrap_or_else(|| failure.to_string()),
            Some(failure.extended_code),
        ),
        other => (other.to_string(), None),
    };
    sqlx::Error::Database(Box::new(DirectSqliteError {
        message,
        code,
        source: e,
    }))
}

/// True when `e` is a unique constraint's refusal, whichever constraint.
#[must_use]
pub fn is_any_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// True when `e` violates a unique constraint whose name (PostgreSQL) or
/// message (SQLite names `table.column`) contains `needle`.
#[must_use]
pub fn is_unique_violation(e: &sqlx::Error, needle: &str) -> bool {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint().is_some_and(|c| c.contains(needle)) || db.message().contains(needle)
        }
        _ => false,
    }
}

/// True when a write that failed with `e` may nevertheless have committed:
/// the connection broke while it ran (an I/O, TLS or protocol error, or a
/// crashed SQLite worker), so the database may have finished the commit
/// whose answer was lost. The SQLite writer's failed group commit is an I/O
/// error too, and rightly so: a commit whose WAL flush failed may have left
/// frames that recovery replays. Any other error (one the database
/// answered, a pool timeout before the write began) means nothing was
/// written.
#[must_use]
pub fn may_have_committed(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contains_pattern_escapes_the_like_wildcards() {
        assert_eq!(contains_pattern("week"), "%week%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn only_a_broken_connection_leaves_a_write_possibly_committed() {
        let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(may_have_committed(&sqlx::Error::Io(broken)));
        assert!(may_have_committed(&sqlx::Error::Protocol("cut".into())));
        assert!(may_have_committed(&sqlx::Error::WorkerCrashed));
        // Refused before the write began, or answered by the database.
        assert!(!may_have_committed(&sqlx::Error::PoolTimedOut));
        assert!(!may_have_committed(&sqlx::Error::PoolClosed));
        assert!(!may_have_committed(&sqlx::Error::RowNotFound));
        assert!(!may_have_committed(&bad_row("row", "bad")));
    }
}
