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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, oneshot};

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
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(DbError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced on every commit, so a commit survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
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
        let conn = SqliteConnection::connect_with(&writer_options(connect))
            .await
            .map_err(DbError::Connect)?;
        let writer = GroupCommitWriter::start(conn, checkpointer, options.max_batch);
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

/// The writer's connection does every write, so it keeps the hot pages of
/// every table and index in memory (64 MiB of page cache rather than 2),
/// keeps statement journals in memory, and never copies the WAL back into
/// the database itself: under a rush each commit dirties pages all over the
/// random-keyed indexes, and a checkpoint inside a commit stalled every
/// write behind it. A checkpointer beside it does that ([`CHECKPOINT_EVERY`]).
fn writer_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .pragma("cache_size", "-65536")
        .pragma("wal_autocheckpoint", "0")
        .pragma("temp_store", "memory")
}

/// How often the checkpointer copies the WAL back into the database. A
/// passive checkpoint never blocks the writer; once it has copied every
/// frame, the writer's next transaction starts the WAL over. (Every 200 ms
/// rather than 500: each restart then has less to copy; 5 % more firehose.)
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// WAL frames (4 KiB pages) past which the WAL is made to start over.
/// Under a steady rush a passive checkpoint never catches up with the
/// writer, so the WAL never starts over by itself: it grew to a gigabyte in
/// a 20-second firehose, and every page the writer reads is looked up in an
/// index of the whole WAL.
const RESTART_WAL_AFTER_FRAMES: i64 = 8_192;

/// Copies the WAL back every [`CHECKPOINT_EVERY`] without blocking anyone,
/// and asks the writer to start the WAL over once it is long.
async fn run_checkpointer(mut conn: SqliteConnection, restart_wanted: Arc<AtomicBool>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let passive: Result<(i64, i64, i64), _> = sqlx::query_as("pragma wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await;
        match passive {
            Ok((_, frames, _)) if frames > RESTART_WAL_AFTER_FRAMES => {
                restart_wanted.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; trying again"),
        }
    }
}

/// Starts the WAL over, on the writer's connection between two
/// transactions: it copies what the last passive checkpoint left (little)
/// and holds the next commit back meanwhile. From the checkpointer's own
/// connection a restart waited for the writer's lock, which the writer took
/// again at once after every commit, and seldom got it.
async fn restart_wal(conn: &mut SqliteConnection) {
    if let Err(e) = conn.execute("pragma wal_checkpoint(RESTART)").await {
        tracing::warn!(error = %e, "WAL restart failed; trying again later");
    }
}

impl SqliteDb {
    /// Runs `f` inside the writer's current batch. The result is returned only
    /// after the batch's commit (and its fsync) succeeded; if `f` fails, only
    /// its own savepoint is rolled back.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        self.writer.write(f).await
    }
}

type Completion = Box<dyn FnOnce(Result<(), Arc<sqlx::Error>>) + Send>;
/// A queued write: runs on the writer's connection (`alone` when it is the
/// transaction's only write, so it needs no savepoint of its own) and
/// answers whether it succeeded, and how to tell its caller once the batch
/// committed.
type Job = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection, bool) -> BoxFuture<'c, (bool, Completion)> + Send,
>;

enum Command {
    Write(Job),
    Close(oneshot::Sender<()>),
}

/// The single SQLite writer. Jobs queue on a channel; the writer drains what
/// is queued into one transaction, commits once, then answers every caller.
#[derive(Debug, Clone)]
struct GroupCommitWriter {
    queue: mpsc::Sender<Command>,
    /// The runtime on the writer's thread.
    runtime: Option<tokio::runtime::Handle>,
}

fn writer_gone() -> sqlx::Error {
    sqlx::Error::PoolClosed
}

impl GroupCommitWriter {
    /// Starts the writer on a thread of its own. Every write waits on it, so
    /// it must not queue for a turn behind the request tasks on a busy
    /// runtime: on the shared runtime, each of its many wake-ups per commit
    /// (every statement is a hand-off to sqlx's SQLite thread) waited behind
    /// hundreds of connections' tasks.
    fn start(conn: SqliteConnection, checkpointer: SqliteConnection, max_batch: usize) -> Self {
        let (queue, rx) = mpsc::channel(max_batch.max(1) * 4);
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "the SQLite writer has no runtime; writes fail");
                return Self {
                    queue,
                    runtime: None,
                };
            }
        };
        let handle = runtime.handle().clone();
        // The checkpointer, and whatever else runs on this runtime, lives as
        // long as the writer: the runtime drops it when the writer's loop ends.
        let writer = move || {
            runtime.block_on(async move {
                let restart_wanted = Arc::new(AtomicBool::new(false));
                tokio::spawn(run_checkpointer(checkpointer, Arc::clone(&restart_wanted)));
                run_writer(conn, rx, max_batch.max(1), &restart_wanted).await;
            });
        };
        if let Err(e) = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(writer)
        {
            tracing::error!(error = %e, "the SQLite writer's thread did not start; writes fail");
        }
        Self {
            queue,
            runtime: Some(handle),
        }
    }

    async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn, alone| {
            Box::pin(async move {
                let outcome = if alone {
                    caught(conn, f).await
                } else {
                    in_savepoint(conn, f).await
                };
                let succeeded = outcome.is_ok();
                let complete = Box::new(move |commit: Result<(), Arc<sqlx::Error>>| {
                    let result = match (outcome, commit) {
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(e)) => Err(E::from(sqlx::Error::Io(std::io::Error::other(
                            format!("group commit failed: {e}"),
                        )))),
                        (Err(e), _) => Err(e),
                    };
                    let _ = reply.send(result);
                }) as Completion;
                (succeeded, complete)
            })
        });
        self.queue
            .send(Command::Write(job))
            .await
            .map_err(|_| E::from(writer_gone()))?;
        answer.await.map_err(|_| E::from(writer_gone()))?
    }

    async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Command::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Runs a write; a panicking one fails alone rather than taking the writer
/// (and every later write) down.
async fn caught<T, E, F>(conn: &mut SqliteConnection, f: F) -> Result<T, E>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>>,
    E: From<sqlx::Error>,
{
    std::panic::AssertUnwindSafe(f(conn))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(E::from(sqlx::Error::Io(std::io::Error::other(
                "a write panicked",
            ))))
        })
}

async fn in_savepoint<T, E, F>(conn: &mut SqliteConnection, f: F) -> Result<T, E>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>>,
    E: From<sqlx::Error>,
{
    conn.execute("savepoint job").await?;
    let outcome = caught(&mut *conn, f).await;
    if outcome.is_ok() {
        conn.execute("release job").await?;
    } else {
        conn.execute("rollback to job; release job").await?;
    }
    outcome
}

async fn run_writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Command>,
    max_batch: usize,
    restart_wanted: &AtomicBool,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let mut pending: Option<Command> = None;
    loop {
        let next = match pending.take() {
            Some(cmd) => cmd,
            None => match rx.recv().await {
                Some(cmd) => cmd,
                None => break,
            },
        };
        match next {
            Command::Close(done) => {
                let _ = conn.close().await;
                let _ = done.send(());
                return;
            }
            Command::Write(job) => {
                batch.push(job);
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(Command::Write(job)) => batch.push(job),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_batch(&mut conn, &mut batch).await;
                if restart_wanted.swap(false, Ordering::Relaxed) {
                    restart_wal(&mut conn).await;
                }
            }
        }
    }
    let _ = conn.close().await;
}

async fn commit_batch(conn: &mut SqliteConnection, batch: &mut Vec<Job>) {
    tracing::trace!(writes = batch.len(), "group commit");
    if let Err(e) = conn.execute("begin immediate").await {
        tracing::error!(error = %e, "group commit could not begin; failing its writes");
        // Dropping the jobs drops their reply channels: each caller gets an error.
        batch.clear();
        return;
    }
    // A write alone in its transaction skips the savepoint (a statement
    // journal of every page it touches): if it fails, the whole transaction
    // rolls back instead.
    let alone = batch.len() == 1;
    let mut completions = Vec::with_capacity(batch.len());
    let mut failed = false;
    for job in batch.drain(..) {
        let (succeeded, complete) = job(conn, alone).await;
        failed |= !succeeded;
        completions.push(complete);
    }
    if alone && failed {
        if let Err(e) = conn.execute("rollback").await {
            tracing::error!(error = %e, "rolling back a failed write failed");
        }
        for complete in completions {
            complete(Ok(()));
        }
        return;
    }
    let commit = match conn.execute("commit").await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            let _ = conn.execute("rollback").await;
            Err(Arc::new(e))
        }
    };
    for complete in completions {
        complete(commit.clone());
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

/// A stored count as a `u32`, or the decode error naming it.
pub fn stored_count(what: &'static str, n: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(n).map_err(|e| bad_row(what, e))
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
