//! The single SQLite writer. Writes queue on a channel; the writer drains
//! what is queued into one transaction, commits once (one fsync), then
//! answers every caller. It runs on a thread of its own with two
//! connections to the same file, used one after the other, never at once:
//!
//! - an sqlx connection for [`SqliteDb::write`], the path of every store:
//!   each statement is a hand-off to sqlx's thread for that connection and
//!   back;
//! - a direct (rusqlite) connection for [`SqliteDb::write_direct`], the
//!   path of the hottest write (a rush's claim batch): its statements run
//!   on the writer's own thread, so a batch costs no hand-off at all. On a
//!   busy two-core machine each hand-off waits for a core (see
//!   `docs/adr/0015-direct-sqlite-writer.md`).
//!
//! A checkpointer beside them copies the WAL back into the database.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::{BUSY_TIMEOUT, SqliteDb, direct_error};

/// Pragmas of both writer connections. They do every write, so they keep
/// the hot pages of every table and index in memory (64 MiB of page cache
/// rather than 2), keep statement journals in memory, and never copy the
/// WAL back into the database themselves: under a rush each commit dirties
/// pages all over the random-keyed indexes, and a checkpoint inside a
/// commit stalled every write behind it. A checkpointer beside them does
/// that ([`CHECKPOINT_EVERY`]).
const WRITER_PRAGMAS: [(&str, &str); 3] = [
    ("cache_size", "-65536"),
    ("wal_autocheckpoint", "0"),
    ("temp_store", "memory"),
];

/// The sqlx writer connection's options: the pool's, plus [`WRITER_PRAGMAS`].
pub(super) fn writer_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    WRITER_PRAGMAS
        .iter()
        .fold(options, |options, &(name, value)| {
            options.pragma(name, value)
        })
}

/// Opens the direct writer connection to the database at `path`, set up
/// as every sqlx connection is (WAL, `synchronous=FULL`, foreign keys,
/// [`BUSY_TIMEOUT`]), plus [`WRITER_PRAGMAS`]. The file exists: the
/// sqlx connections created it.
pub(super) fn open_direct(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: the WAL is fsynced on every commit, so a commit survives power loss.
    conn.execute_batch(
        "pragma journal_mode = wal; pragma synchronous = full; pragma foreign_keys = on;",
    )?;
    for (name, value) in WRITER_PRAGMAS {
        conn.execute_batch(&format!("pragma {name} = {value}"))?;
    }
    Ok(conn)
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

/// Starts the WAL over, on a writer connection between two transactions:
/// it copies what the last passive checkpoint left (little) and holds the
/// next commit back meanwhile. From the checkpointer's own connection a
/// restart waited for the writer's lock, which the writer took again at
/// once after every commit, and seldom got it.
fn restart_wal(conn: &rusqlite::Connection) {
    let restart = conn.query_row("pragma wal_checkpoint(RESTART)", [], |_| Ok(()));
    if let Err(e) = restart {
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
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn, alone| {
            Box::pin(async move {
                let outcome = if alone {
                    caught(conn, f).await
                } else {
                    in_savepoint(conn, f).await
                };
                answer_after_commit(outcome, reply)
            })
        });
        self.writer.submit(Command::Write(job), answer).await
    }

    /// [`SqliteDb::write`] for the hottest writes: `f` runs synchronously on
    /// the writer's direct connection, on the writer's own thread, with no
    /// hand-off per statement. It must be short and must not block on
    /// anything but SQLite: every write waits for it. A rusqlite error
    /// becomes an `sqlx::Error` through [`direct_error`].
    pub async fn write_direct<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: DirectJob = Box::new(move |conn, alone| {
            let outcome = if alone {
                caught_direct(conn, f)
            } else {
                in_direct_savepoint(conn, f)
            };
            answer_after_commit(outcome, reply)
        });
        self.writer.submit(Command::WriteDirect(job), answer).await
    }
}

/// Tells a write's caller how it went, once its batch's commit is known.
type Completion = Box<dyn FnOnce(Result<(), Arc<sqlx::Error>>) + Send>;
/// A queued write on the sqlx connection: runs (`alone` when it is the
/// transaction's only write, so it needs no savepoint of its own) and
/// answers whether it succeeded, and how to tell its caller once the batch
/// committed.
type Job = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection, bool) -> BoxFuture<'c, (bool, Completion)> + Send,
>;
/// A queued write on the direct connection, as [`Job`].
type DirectJob = Box<dyn FnOnce(&rusqlite::Connection, bool) -> (bool, Completion) + Send>;

/// Whether a write succeeded, and its caller's answer once the commit is
/// known: the write's own error, or the commit's, or its value.
fn answer_after_commit<T, E>(
    outcome: Result<T, E>,
    reply: oneshot::Sender<Result<T, E>>,
) -> (bool, Completion)
where
    T: Send + 'static,
    E: From<sqlx::Error> + Send + 'static,
{
    let succeeded = outcome.is_ok();
    let complete = Box::new(move |commit: Result<(), Arc<sqlx::Error>>| {
        let result = match (outcome, commit) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) => Err(E::from(sqlx::Error::Io(std::io::Error::other(format!(
                "group commit failed: {e}"
            ))))),
            (Err(e), _) => Err(e),
        };
        let _ = reply.send(result);
    }) as Completion;
    (succeeded, complete)
}

enum Command {
    Write(Job),
    WriteDirect(DirectJob),
    Close(oneshot::Sender<()>),
}

/// A handle on the writer's queue.
#[derive(Debug, Clone)]
pub(super) struct GroupCommitWriter {
    queue: mpsc::Sender<Command>,
    /// The runtime on the writer's thread.
    pub(super) runtime: Option<tokio::runtime::Handle>,
}

fn writer_gone() -> sqlx::Error {
    sqlx::Error::PoolClosed
}

impl GroupCommitWriter {
    /// Starts the writer on a thread of its own. Every write waits on it, so
    /// it must not queue for a turn behind the request tasks on a busy
    /// runtime: on the shared runtime, each of its many wake-ups per commit
    /// (every sqlx statement is a hand-off to sqlx's SQLite thread) waited
    /// behind hundreds of connections' tasks.
    pub(super) fn start(
        conn: SqliteConnection,
        direct: rusqlite::Connection,
        checkpointer: SqliteConnection,
        max_batch: usize,
    ) -> Self {
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
                let connections = Connections { sqlx: conn, direct };
                run_writer(connections, rx, max_batch.max(1), &restart_wanted).await;
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

    async fn submit<T, E: From<sqlx::Error>>(
        &self,
        command: Command,
        answer: oneshot::Receiver<Result<T, E>>,
    ) -> Result<T, E> {
        self.queue
            .send(command)
            .await
            .map_err(|_| E::from(writer_gone()))?;
        answer.await.map_err(|_| E::from(writer_gone()))?
    }

    pub(super) async fn close(&self) {
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
        .unwrap_or_else(|_| Err(E::from(write_panicked())))
}

fn write_panicked() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other("a write panicked"))
}

async fn in_savepoint<T, E, F>(conn: &mut SqliteConnection, f: F) -> Result<T, E>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>>,
    E: From<sqlx::Error>,
{
    conn.execute(SAVEPOINT).await?;
    let outcome = caught(&mut *conn, f).await;
    conn.execute(end_savepoint(outcome.is_ok())).await?;
    outcome
}

/// [`caught`] on the direct connection.
fn caught_direct<T, E, F>(conn: &rusqlite::Connection, f: F) -> Result<T, E>
where
    F: FnOnce(&rusqlite::Connection) -> Result<T, E>,
    E: From<sqlx::Error>,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(E::from(write_panicked())))
}

/// [`in_savepoint`] on the direct connection.
fn in_direct_savepoint<T, E, F>(conn: &rusqlite::Connection, f: F) -> Result<T, E>
where
    F: FnOnce(&rusqlite::Connection) -> Result<T, E>,
    E: From<sqlx::Error>,
{
    conn.execute_batch(SAVEPOINT)
        .map_err(|e| E::from(direct_error(e)))?;
    let outcome = caught_direct(conn, f);
    conn.execute_batch(end_savepoint(outcome.is_ok()))
        .map_err(|e| E::from(direct_error(e)))?;
    outcome
}

const SAVEPOINT: &str = "savepoint job";

/// Keeps a write's savepoint if it succeeded, or undoes it.
const fn end_savepoint(succeeded: bool) -> &'static str {
    if succeeded {
        "release job"
    } else {
        "rollback to job; release job"
    }
}

/// The writer's two connections.
struct Connections {
    sqlx: SqliteConnection,
    direct: rusqlite::Connection,
}

/// A connection the writer commits a batch of its jobs on.
trait BatchConnection {
    type Job;
    /// Runs a statement of the writer's own (`begin`, `commit`, `rollback`).
    async fn command(&mut self, sql: &'static str) -> Result<(), sqlx::Error>;
    /// Runs a job; `alone` when it is the transaction's only one.
    async fn run(&mut self, job: Self::Job, alone: bool) -> (bool, Completion);
}

impl BatchConnection for SqliteConnection {
    type Job = Job;

    async fn command(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        Executor::execute(&mut *self, sql).await.map(drop)
    }

    async fn run(&mut self, job: Job, alone: bool) -> (bool, Completion) {
        job(self, alone).await
    }
}

/// Nothing here awaits: a batch on the direct connection runs from `begin`
/// to `commit` without leaving the writer's thread.
impl BatchConnection for rusqlite::Connection {
    type Job = DirectJob;

    async fn command(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        self.execute_batch(sql).map_err(direct_error)
    }

    async fn run(&mut self, job: DirectJob, alone: bool) -> (bool, Completion) {
        job(self, alone)
    }
}

async fn run_writer(
    mut conns: Connections,
    mut rx: mpsc::Receiver<Command>,
    max_batch: usize,
    restart_wanted: &AtomicBool,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let mut direct: Vec<DirectJob> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut closing = None;
        // Everything queued goes into this round, up to `max_batch`; a close
        // ends the round, and the writer once the round is committed.
        while let Some(command) = next.take() {
            match command {
                Command::Write(job) => batch.push(job),
                Command::WriteDirect(job) => direct.push(job),
                Command::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() + direct.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        // The direct jobs and the sqlx jobs of a round are two transactions:
        // their callers waited at the same time, so neither order is owed.
        if !direct.is_empty() {
            commit_batch(&mut conns.direct, &mut direct).await;
        }
        if !batch.is_empty() {
            commit_batch(&mut conns.sqlx, &mut batch).await;
        }
        if restart_wanted.swap(false, Ordering::Relaxed) {
            restart_wal(&conns.direct);
        }
        if let Some(done) = closing {
            let _ = conns.sqlx.close().await;
            drop(conns.direct);
            let _ = done.send(());
            return;
        }
    }
    let _ = conns.sqlx.close().await;
}

async fn commit_batch<C: BatchConnection>(conn: &mut C, batch: &mut Vec<C::Job>) {
    tracing::trace!(writes = batch.len(), "group commit");
    if let Err(e) = conn.command("begin immediate").await {
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
        let (succeeded, complete) = conn.run(job, alone).await;
        failed |= !succeeded;
        completions.push(complete);
    }
    if alone && failed {
        if let Err(e) = conn.command("rollback").await {
            tracing::error!(error = %e, "rolling back a failed write failed");
        }
        for complete in completions {
            complete(Ok(()));
        }
        return;
    }
    let commit = match conn.command("commit").await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            let _ = conn.command("rollback").await;
            Err(Arc::new(e))
        }
    };
    for complete in completions {
        complete(commit.clone());
    }
}
