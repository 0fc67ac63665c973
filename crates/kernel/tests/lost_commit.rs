//! The lost-commit proxy of `kernel::testing` against a real PostgreSQL:
//! unarmed it passes everything; armed, the next commit (or the next of a
//! transaction that sent given bytes) happens and only its answer is lost,
//! once. PostgreSQL only: SQLite has no connection to lose, and on SQLite
//! these tests end at once.
#![allow(clippy::unwrap_used)]

use kernel::db::{Db, DbOptions, may_have_committed};
use kernel::testing::{LostCommitProxy, TestDatabase};
use sqlx::PgPool;

/// A table `kept (n int)`, a pool straight to the database and one through
/// a proxy; `None` on SQLite.
struct Setup {
    _test: TestDatabase,
    direct: PgPool,
    through: PgPool,
    proxy: LostCommitProxy,
}

impl Setup {
    async fn start() -> Option<Self> {
        let test = TestDatabase::create().await;
        let Db::Postgres(direct) = Db::connect(test.url(), &DbOptions::default())
            .await
            .unwrap()
        else {
            println!("skipped: the lost-commit proxy speaks PostgreSQL (this run is on SQLite)");
            return None;
        };
        let proxy = LostCommitProxy::start(test.url()).await;
        let Db::Postgres(through) = Db::connect(proxy.url(), &DbOptions::default())
            .await
            .unwrap()
        else {
            unreachable!("the proxy's URL is a PostgreSQL URL");
        };
        sqlx::query("create table kept (n int)")
            .execute(&direct)
            .await
            .unwrap();
        Some(Self {
            _test: test,
            direct,
            through,
            proxy,
        })
    }

    async fn insert_and_commit(&self, n: i32) -> Result<(), sqlx::Error> {
        let mut tx = self.through.begin().await?;
        sqlx::query("insert into kept values ($1)")
            .bind(n)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// What the table holds, read straight from the database.
    async fn kept(&self) -> Vec<i32> {
        sqlx::query_scalar("select n from kept order by n")
            .fetch_all(&self.direct)
            .await
            .unwrap()
    }

    async fn close(self) {
        self.through.close().await;
        self.direct.close().await;
    }
}

#[tokio::test]
async fn an_armed_proxy_lets_one_commit_happen_and_loses_only_its_answer() {
    let Some(s) = Setup::start().await else {
        return;
    };
    s.insert_and_commit(1).await.expect("unarmed: answered");
    s.proxy.arm();

    let lost = s.insert_and_commit(2).await;

    let error = lost.expect_err("armed: the commit's answer is lost");
    assert!(may_have_committed(&error), "{error:?}");
    assert_eq!(s.proxy.answers_lost(), 1);
    s.insert_and_commit(3)
        .await
        .expect("the proxy disarms itself after one");
    assert_eq!(
        s.kept().await,
        vec![1, 2, 3],
        "the commit whose answer was lost happened"
    );
    s.close().await;
}

#[tokio::test]
async fn armed_for_some_bytes_the_proxy_loses_only_the_commit_of_the_transaction_that_sent_them() {
    let Some(s) = Setup::start().await else {
        return;
    };
    // sqlx binds an int4 as its four bytes, high first.
    let marked = 0x5EED_0001;
    s.proxy.arm_for(&i32::to_be_bytes(marked));

    s.insert_and_commit(1).await.expect("unmarked: answered");
    let lost = s.insert_and_commit(marked).await;
    s.insert_and_commit(2)
        .await
        .expect("the proxy disarms itself after one");

    assert!(may_have_committed(&lost.expect_err("marked: lost")));
    assert_eq!(s.proxy.answers_lost(), 1);
    assert_eq!(s.kept().await, vec![1, 2, marked]);
    s.close().await;
}
