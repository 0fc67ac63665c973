//! The lost-commit proxy of `kernel::testing` against a real PostgreSQL:
//! unarmed it passes everything; armed, the next commit happens and only
//! its answer is lost, once. PostgreSQL only: SQLite has no connection to
//! lose, and on SQLite these tests end at once.
#![allow(clippy::unwrap_used)]

use kernel::db::{Db, DbOptions, may_have_committed};
use kernel::testing::{LostCommitProxy, TestDatabase};

async fn insert_and_commit(pool: &sqlx::PgPool, n: i32) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("insert into kept values ($1)")
        .bind(n)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[tokio::test]
async fn an_armed_proxy_lets_one_commit_happen_and_loses_only_its_answer() {
    let test = TestDatabase::create().await;
    let direct = Db::connect(test.url(), &DbOptions::default())
        .await
        .unwrap();
    let Db::Postgres(direct_pool) = &direct else {
        direct.close().await;
        return;
    };
    let proxy = LostCommitProxy::start(test.url()).await;
    let through = Db::connect(proxy.url(), &DbOptions::default())
        .await
        .unwrap();
    let Db::Postgres(pool) = &through else {
        unreachable!("the proxy's URL is a PostgreSQL URL");
    };
    sqlx::query("create table kept (n int)")
        .execute(direct_pool)
        .await
        .unwrap();
    insert_and_commit(pool, 1).await.expect("unarmed: answered");
    proxy.arm();

    let lost = insert_and_commit(pool, 2).await;

    let error = lost.expect_err("armed: the commit's answer is lost");
    assert!(may_have_committed(&error), "{error:?}");
    assert_eq!(proxy.answers_lost(), 1);
    insert_and_commit(pool, 3)
        .await
        .expect("the proxy disarms itself after one");
    let kept: Vec<i32> = sqlx::query_scalar("select n from kept order by n")
        .fetch_all(direct_pool)
        .await
        .unwrap();
    assert_eq!(
        kept,
        vec![1, 2, 3],
        "the commit whose answer was lost happened"
    );
    through.close().await;
    direct.close().await;
}

#[tokio::test]
async fn armed_for_some_bytes_the_proxy_loses_only_the_commit_of_the_transaction_that_sent_them() {
    let test = TestDatabase::create().await;
    let direct = Db::connect(test.url(), &DbOptions::default())
        .await
        .unwrap();
    let Db::Postgres(direct_pool) = &direct else {
        direct.close().await;
        return;
    };
    let proxy = LostCommitProxy::start(test.url()).await;
    let through = Db::connect(proxy.url(), &DbOptions::default())
        .await
        .unwrap();
    let Db::Postgres(pool) = &through else {
        unreachable!("the proxy's URL is a PostgreSQL URL");
    };
    sqlx::query("create table kept (n int)")
        .execute(direct_pool)
        .await
        .unwrap();
    // sqlx binds an int4 as its four bytes, high first.
    let marked = 0x5EED_0001;
    proxy.arm_for(&i32::to_be_bytes(marked));

    insert_and_commit(pool, 1)
        .await
        .expect("unmarked: answered");
    let lost = insert_and_commit(pool, marked).await;
    insert_and_commit(pool, 2)
        .await
        .expect("the proxy disarms itself after one");

    assert!(may_have_committed(&lost.expect_err("marked: lost")));
    assert_eq!(proxy.answers_lost(), 1);
    let kept: Vec<i32> = sqlx::query_scalar("select n from kept order by n")
        .fetch_all(direct_pool)
        .await
        .unwrap();
    assert_eq!(kept, vec![1, 2, marked]);
    through.close().await;
    direct.close().await;
}
