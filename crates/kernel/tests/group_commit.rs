//! The database handle on the configured backend: concurrent writes all land,
//! a failing write rolls back alone, and reads see committed writes; on
//! SQLite, the same of the writer's direct connection.

use kernel::db::rusqlite::types::Value;
use kernel::db::{
    Db, DbOptions, Migrations, SqliteDb, direct_error, is_any_unique_violation, may_have_committed,
};
use kernel::testing::TestDatabase;
use kernel::{Clock, SystemClock, Timestamp, UserId};

fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./tests/migrations/sqlite"),
        postgres: sqlx::migrate!("./tests/migrations/postgres"),
    }
}

async fn open() -> (TestDatabase, Db) {
    let test = TestDatabase::create().await;
    let db = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("connect");
    db.migrate(migrations()).await.expect("migrate");
    (test, db)
}

async fn count(db: &Db) -> i64 {
    kernel::read!(db, |pool| sqlx::query_scalar::<_, i64>(
        "select count(*) from note"
    )
    .fetch_one(pool)
    .await)
    .expect("count")
}

async fn insert(db: &Db, body: String) -> Result<(), sqlx::Error> {
    kernel::write_tx!(db, |conn| {
        sqlx::query("insert into note (body) values ($1)")
            .bind(body)
            .execute(&mut *conn)
            .await
            .map(drop)
    })
}

#[tokio::test]
async fn concurrent_writes_all_commit() {
    let (_test, db) = open().await;
    all_at_once_all_commit(&db, |db, i| async move {
        insert(&db, format!("note {i}")).await
    })
    .await;
    db.close().await;
}

/// Runs 200 writes at once, the `i`th as `write(db, i)`, and checks that
/// every one is answered and committed.
async fn all_at_once_all_commit<W, F>(db: &Db, write: W)
where
    W: Fn(Db, usize) -> F,
    F: Future<Output = Result<(), sqlx::Error>> + Send + 'static,
{
    let tasks: Vec<_> = (0..200)
        .map(|i| tokio::spawn(write(db.clone(), i)))
        .collect();
    for t in tasks {
        t.await.expect("task").expect("insert");
    }
    assert_eq!(count(db).await, 200);
}

#[tokio::test]
async fn a_failing_write_rolls_back_alone() {
    let (_test, db) = open().await;
    let (first, second, other) = tokio::join!(
        insert(&db, "a".into()),
        insert(&db, "a".into()),
        insert(&db, "b".into())
    );
    // Either duplicate may win; exactly one fails, and it fails alone.
    assert!(other.is_ok());
    let errors: Vec<sqlx::Error> = [first, second]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(kernel::db::is_unique_violation(&errors[0], "body"));
    assert_eq!(count(&db).await, 2);
    db.close().await;
}

#[tokio::test]
async fn an_error_returned_by_the_body_undoes_its_statements() {
    let (_test, db) = open().await;
    let result: Result<(), sqlx::Error> = kernel::write_tx!(&db, |conn| {
        sqlx::query("insert into note (body) values ('kept?')")
            .execute(&mut *conn)
            .await?;
        Err(sqlx::Error::RowNotFound)
    });
    assert!(result.is_err());
    assert_eq!(count(&db).await, 0);
    insert(&db, "next".into())
        .await
        .expect("the writer goes on after a rollback");
    assert_eq!(count(&db).await, 1);
    db.close().await;
}

/// SQLite only: there a write runs on the shared writer, which must survive
/// it; on PostgreSQL a write runs in its caller's task.
#[tokio::test]
async fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
    let (_test, db) = open().await;
    if db.backend() != kernel::Backend::Sqlite {
        return;
    }
    let panicked: Result<(), sqlx::Error> = kernel::write_tx!(&db, |conn| {
        sqlx::query("insert into note (body) values ('half done')")
            .execute(&mut *conn)
            .await?;
        assert!(std::hint::black_box(false), "a bug in a write");
        Ok(())
    });
    assert!(panicked.is_err());
    insert(&db, "after".into())
        .await
        .expect("later writes land");
    assert_eq!(count(&db).await, 1);
    db.close().await;
}

#[tokio::test]
async fn sessions_are_configured_for_durability() {
    let (_test, db) = open().await;
    match &db {
        Db::Sqlite(sqlite) => {
            let pragma = |name: &'static str| {
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                    "select cast(({name}) as text)"
                )))
                .fetch_one(&sqlite.read)
            };
            assert_eq!(
                pragma("select journal_mode from pragma_journal_mode")
                    .await
                    .ok()
                    .as_deref(),
                Some("wal")
            );
            assert_eq!(
                pragma("select synchronous from pragma_synchronous")
                    .await
                    .ok()
                    .as_deref(),
                Some("2")
            );
            assert_eq!(
                pragma("select foreign_keys from pragma_foreign_keys")
                    .await
                    .ok()
                    .as_deref(),
                Some("1")
            );
            assert_eq!(
                pragma("select timeout from pragma_busy_timeout")
                    .await
                    .ok()
                    .as_deref(),
                Some("10000")
            );
        }
        Db::Postgres(pool) => {
            let setting: String = sqlx::query_scalar("show synchronous_commit")
                .fetch_one(pool)
                .await
                .expect("a setting");
            assert_eq!(setting, "on");
        }
    }
    db.close().await;
}

/// PostgreSQL only: its pool skips sqlx's ping before every use, and pings
/// only a connection idle past `PING_IF_IDLE_FOR`, so a connection that died
/// while idle (PostgreSQL restarted, an idle session killed) is replaced
/// before use rather than failing the next request. SQLite's connections are
/// in-process and cannot die this way.
#[tokio::test]
async fn a_connection_that_died_while_idle_is_replaced_before_use() {
    let test = TestDatabase::create().await;
    let options = DbOptions {
        max_connections: 1,
        ..DbOptions::default()
    };
    let db = Db::connect(test.url(), &options).await.expect("connect");
    let Db::Postgres(pool) = &db else {
        println!("skipped: a dead idle connection is PostgreSQL's only (this run is on SQLite)");
        db.close().await;
        return;
    };
    let backend = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i32>("select pg_backend_pid()")
                .fetch_one(&pool)
                .await
        }
    };
    let first = backend(pool).await.expect("the pool's one connection");
    let admin = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("a second pool");
    let Db::Postgres(admin_pool) = &admin else {
        unreachable!("the same URL opens the same backend");
    };
    let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(admin_pool)
        .await
        .expect("terminate");
    assert!(ended, "the idle connection's backend was ended");
    tokio::time::sleep(kernel::db::PING_IF_IDLE_FOR + std::time::Duration::from_millis(200)).await;

    let second = backend(pool).await;

    let second = second.expect("a live connection replaced the dead one");
    assert_ne!(second, first);
    admin.close().await;
    db.close().await;
}

#[tokio::test]
async fn an_unknown_scheme_is_refused_with_a_clear_error() {
    let err = Db::connect("mysql://localhost/x", &DbOptions::default())
        .await
        .expect_err("mysql is not supported");
    assert!(
        err.to_string().contains("sqlite:// or postgres://"),
        "{err}"
    );
}

#[tokio::test]
async fn an_in_memory_sqlite_database_is_refused_with_a_clear_error() {
    for url in ["sqlite::memory:", "sqlite://stampede.db?mode=memory"] {
        let err = Db::connect(url, &DbOptions::default())
            .await
            .expect_err("in memory, the writer and the readers would see different databases");
        assert!(err.to_string().contains("give a file path"), "{url}: {err}");
    }
}

/// SQLite only: the writer never checkpoints inside a commit; a checkpointer
/// beside it copies the WAL back into the database file.
#[tokio::test]
async fn the_wal_is_copied_into_the_database_file_in_the_background() {
    let (test, db) = open().await;
    if db.backend() != kernel::Backend::Sqlite {
        return;
    }
    let file = test.url().trim_start_matches("sqlite://").to_owned();
    let size = || {
        std::fs::metadata(&file)
            .map(|m| m.len())
            .expect("the database file")
    };
    let before = size();

    let long = "x".repeat(1000);
    for i in 0..500 {
        insert(&db, format!("{i} {long}")).await.expect("insert");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    assert!(
        size() > before + 400_000,
        "half a megabyte of notes reached the database file: {before} → {}",
        size()
    );
    db.close().await;
}

#[tokio::test]
async fn under_a_steady_stream_of_writes_the_sqlite_wal_starts_over() {
    let (test, db) = open().await;
    let Some(path) = test.url().strip_prefix("sqlite://") else {
        println!("skipped: PostgreSQL has no WAL file of ours to watch");
        return;
    };
    let wal = format!("{path}-wal");
    const MIB: u64 = 1024 * 1024;
    // About 160 MiB of WAL frames (each 8 KiB note is in the table and in
    // its unique index), written by 16 writers without pause for longer
    // than several checkpoint periods.
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..625 {
                    let body = format!("{w}-{i}-{}", "x".repeat(8 * 1024));
                    insert(&db, body).await.expect("insert");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }

    assert_eq!(count(&db).await, 10_000);
    let size = std::fs::metadata(&wal).expect("the WAL file").len();
    assert!(
        size < 96 * MIB,
        "the WAL grew to {} MiB: it never started over",
        size / MIB
    );
    db.close().await;
}

/// A write on the SQLite writer's direct connection, as [`insert`].
async fn insert_direct(db: &Db, body: String) -> Result<usize, sqlx::Error> {
    let Db::Sqlite(sqlite) = db else {
        panic!("the direct connection is SQLite's");
    };
    sqlite
        .write_direct(move |conn| {
            conn.execute("insert into note (body) values (?1)", [body])
                .map_err(direct_error)
        })
        .await
}

/// A SQLite database and its handle, or `None` on PostgreSQL, which has no
/// direct connection: every direct-connection test below is SQLite's only.
async fn open_sqlite() -> Option<(TestDatabase, Db, SqliteDb)> {
    let (test, db) = open().await;
    let Db::Sqlite(sqlite) = &db else {
        println!("skipped: the direct connection is SQLite's only (this run is on PostgreSQL)");
        return None;
    };
    let sqlite = sqlite.clone();
    Some((test, db, sqlite))
}

/// A direct write that inserts a note, then ends as `end` says.
async fn direct_insert_then(
    sqlite: &SqliteDb,
    end: fn() -> Result<(), sqlx::Error>,
) -> Result<(), sqlx::Error> {
    sqlite
        .write_direct(move |conn| {
            conn.execute("insert into note (body) values ('half done')", [])
                .map_err(direct_error)?;
            end()
        })
        .await
}

#[tokio::test]
async fn direct_and_sqlx_writes_interleave_and_all_commit() {
    let Some((_test, db, _)) = open_sqlite().await else {
        return;
    };
    all_at_once_all_commit(&db, |db, i| async move {
        if i % 2 == 0 {
            insert_direct(&db, format!("direct {i}")).await.map(drop)
        } else {
            insert(&db, format!("sqlx {i}")).await
        }
    })
    .await;
    db.close().await;
}

#[tokio::test]
async fn a_failing_direct_write_rolls_back_alone_and_reads_as_a_unique_violation() {
    let Some((_test, db, _)) = open_sqlite().await else {
        return;
    };
    let (first, second, other) = tokio::join!(
        insert_direct(&db, "a".into()),
        insert_direct(&db, "a".into()),
        insert_direct(&db, "b".into())
    );
    assert_eq!(other.ok(), Some(1));
    let errors: Vec<sqlx::Error> = [first, second]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(is_any_unique_violation(&errors[0]), "{:?}", errors[0]);
    assert!(kernel::db::is_unique_violation(&errors[0], "body"));
    // Refused by the database: nothing of it was written.
    assert!(!may_have_committed(&errors[0]));
    assert_eq!(count(&db).await, 2);
    db.close().await;
}

#[tokio::test]
async fn a_direct_write_that_returns_an_error_after_a_statement_undoes_it() {
    let Some((_test, db, sqlite)) = open_sqlite().await else {
        return;
    };
    let failed = direct_insert_then(&sqlite, || Err(sqlx::Error::RowNotFound)).await;
    assert!(matches!(failed, Err(sqlx::Error::RowNotFound)));
    assert_eq!(count(&db).await, 0);
    db.close().await;
}

#[tokio::test]
async fn a_panicking_direct_write_fails_alone_and_the_writer_goes_on() {
    let Some((_test, db, sqlite)) = open_sqlite().await else {
        return;
    };
    let panicked = direct_insert_then(&sqlite, || {
        assert!(std::hint::black_box(false), "a bug in a write");
        Ok(())
    })
    .await;
    assert!(panicked.is_err());
    insert_direct(&db, "after".into())
        .await
        .expect("later direct writes land");
    insert(&db, "and sqlx".into())
        .await
        .expect("later sqlx writes land");
    assert_eq!(count(&db).await, 2);
    db.close().await;
}

#[tokio::test]
async fn the_direct_connection_is_configured_as_the_others() {
    let Some((_test, db, sqlite)) = open_sqlite().await else {
        return;
    };
    let settings = sqlite
        .write_direct(|conn| {
            [
                "journal_mode",
                "synchronous",
                "foreign_keys",
                "busy_timeout",
                "wal_autocheckpoint",
            ]
            .map(|name| {
                conn.query_row(&format!("pragma {name}"), [], |row| row.get::<_, Value>(0))
                    .map_err(direct_error)
            })
            .into_iter()
            .collect::<Result<Vec<Value>, sqlx::Error>>()
        })
        .await
        .expect("pragmas");
    let expected = [
        Value::Text("wal".into()),
        Value::Integer(2),
        Value::Integer(1),
        Value::Integer(10_000),
        Value::Integer(0),
    ];
    assert_eq!(settings, expected);
    db.close().await;
}

/// Ids and instants written on the direct connection are stored exactly as
/// sqlx stores them, so a row reads back the same whichever path wrote it.
#[tokio::test]
async fn ids_and_instants_are_stored_alike_on_both_writer_connections() {
    let Some((_test, db, sqlite)) = open_sqlite().await else {
        return;
    };
    let (id, at) = (UserId::new(), SystemClock.now());
    kernel::write_tx!(&db, |conn| {
        sqlx::query("create table stamp (id blob not null, at text not null)")
            .execute(&mut *conn)
            .await?;
        sqlx::query("insert into stamp (id, at) values ($1, $2)")
            .bind(id)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map(drop)
    })
    .expect("written through sqlx");
    sqlite
        .write_direct(move |conn| {
            conn.execute("insert into stamp (id, at) values (?1, ?2)", (id, at))
                .map_err(direct_error)
        })
        .await
        .expect("written directly");
    let rows: Vec<(UserId, Timestamp, String, Vec<u8>)> =
        sqlx::query_as("select id, at, typeof(id) || typeof(at), cast(at as blob) from stamp")
            .fetch_all(&sqlite.read)
            .await
            .expect("read back");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], rows[1], "both connections store the same values");
    assert_eq!((rows[0].0, rows[0].1), (id, at));
    assert_eq!(rows[0].2, "blobtext");
    db.close().await;
}
