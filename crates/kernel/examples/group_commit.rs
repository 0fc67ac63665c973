//! Measures durable SQLite writes per second through the group-commit writer
//! against the baseline of one transaction (one fsync) per write, in one run
//! on the same disk. Both use WAL with `synchronous=FULL`.
//!
//! `cargo run --release -p kernel --example group_commit -- [WRITES] [CONCURRENCY]`

use std::str::FromStr;
use std::time::{Duration, Instant};

use kernel::db::{Db, DbOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const SCHEMA: &str =
    "create table if not exists claim (id integer primary key, body text not null)";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let writes: usize = args.next().map_or(Ok(5_000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(256), |a| a.parse())?;
    let dir = tempfile::tempdir()?;

    let grouped = group_commit(&dir.path().join("grouped.db"), writes, concurrency).await?;
    let single = one_fsync_per_write(&dir.path().join("single.db"), writes, concurrency).await?;

    let rate = |d: Duration| writes as f64 / d.as_secs_f64();
    println!("durable writes: {writes}, concurrent writers: {concurrency}");
    println!("one transaction per write : {:>9.0} writes/s", rate(single));
    println!(
        "group-commit writer       : {:>9.0} writes/s",
        rate(grouped)
    );
    println!(
        "ratio                     : {:>9.1}x",
        single.as_secs_f64() / grouped.as_secs_f64()
    );
    Ok(())
}

async fn group_commit(
    path: &std::path::Path,
    writes: usize,
    concurrency: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let db = Db::connect(
        &format!("sqlite://{}", path.display()),
        &DbOptions::default(),
    )
    .await?;
    let Db::Sqlite(sqlite) = &db else {
        return Err("expected SQLite".into());
    };
    sqlx::query(SCHEMA).execute(&sqlite.read).await?;
    let start = Instant::now();
    run(writes, concurrency, move |i| {
        let db = db.clone();
        async move {
            kernel::write_tx!(&db, |conn| {
                sqlx::query("insert into claim (body) values ($1)")
                    .bind(format!("claim {i}"))
                    .execute(&mut *conn)
                    .await
                    .map(drop)
            })
        }
    })
    .await?;
    Ok(start.elapsed())
}

async fn one_fsync_per_write(
    path: &std::path::Path,
    writes: usize,
    concurrency: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await?;
    sqlx::query(SCHEMA).execute(&pool).await?;
    let start = Instant::now();
    run(writes, concurrency, move |i| {
        let pool = pool.clone();
        async move {
            sqlx::query("insert into claim (body) values ($1)")
                .bind(format!("claim {i}"))
                .execute(&pool)
                .await
                .map(drop)
        }
    })
    .await?;
    Ok(start.elapsed())
}

/// Runs `writes` calls of `job`, `concurrency` at a time.
async fn run<F, Fut>(writes: usize, concurrency: usize, job: F) -> Result<(), sqlx::Error>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>> + Send,
{
    let per_task = writes.div_ceil(concurrency);
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let job = job.clone();
            tokio::spawn(async move {
                for i in (t * per_task)..((t + 1) * per_task).min(writes) {
                    job(i).await?;
                }
                Ok::<(), sqlx::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))??;
    }
    Ok(())
}
