//! The server with its bus over RabbitMQ, when `STAMPEDE_TEST_AMQP_URL` is
//! set (skipped with a printed line otherwise): `/readyz` reports the
//! broker, a sign-up and a login reach the rewards subscriber once each
//! through the broker, and `/metrics` shows the broker's latencies.

use std::time::{Duration, Instant};

use bus::rabbitmq::{RabbitMqOptions, Topology, connect};
use kernel::Secret;
use kernel::db::{Db, DbOptions};
use serde_json::Value;
use server::config::BusKind;

use crate::helpers::TestApp;

/// The subscribers the server declares queues for (`docs/messages.md`).
const SUBSCRIBERS: [&str; 2] = ["rewards.identity_facts", "commerce.coupon_grants"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_readiness_names_the_broker_and_a_login_reaches_rewards_once() {
    let Some(amqp_url) = std::env::var("STAMPEDE_TEST_AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped the server over RabbitMQ: STAMPEDE_TEST_AMQP_URL is not set");
        return;
    };
    let prefix = format!("stampede-test-{}", uuid::Uuid::now_v7());
    let mut database_url = String::new();
    let app = TestApp::spawn_with(|s| {
        s.bus = BusKind::RabbitMq;
        s.amqp_url = Some(Secret::new(amqp_url.clone()));
        s.amqp_prefix.clone_from(&prefix);
        database_url.clone_from(&s.database_url);
    })
    .await;

    let started = Instant::now();
    let ready = loop {
        let response = app.get("/readyz", None).await;
        if response.status() == 200 {
            break response.json::<Value>().await.expect("json");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "ready over RabbitMQ: {}",
            response.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready["checks"]["broker"], "up", "{ready}");

    let user = app.new_user().await;
    let db = Db::connect(&database_url, &DbOptions::default())
        .await
        .expect("the server's database");
    let pattern = format!("%{}%", user.user_id);
    let started = Instant::now();
    let done = loop {
        let rows: Vec<(String, String)> = kernel::read!(&db, |pool| {
            sqlx::query_as(
                "select topic, state from inbox_deliveries \
                 where subscriber = 'rewards.identity_facts' and payload like $1 order by topic",
            )
            .bind(&pattern)
            .fetch_all(pool)
            .await
        })
        .expect("inbox");
        if rows.iter().filter(|(_, state)| state == "DONE").count() >= 2
            || started.elapsed() > Duration::from_secs(5)
        {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        done,
        [
            ("identity.user_logged_in".to_owned(), "DONE".to_owned()),
            ("identity.user_signed_up".to_owned(), "DONE".to_owned()),
        ],
        "one delivery of each, handled"
    );
    db.close().await;
    let metrics = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    for name in [
        "bus_publish_confirm_seconds_bucket",
        "bus_consumer_lag_seconds_bucket{subscriber=\"rewards.identity_facts\"",
        "bus_relay_lag_seconds",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    app.stop().await;

    let options = RabbitMqOptions::new(Secret::new(amqp_url));
    let subscriptions: Vec<(String, String)> = SUBSCRIBERS
        .iter()
        .map(|s| ((*s).to_owned(), String::new()))
        .collect();
    let connection = connect(&options, "stampede test").await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    Topology::new(&prefix, &subscriptions)
        .delete(&channel)
        .await
        .expect("topology deleted");
    let _ = connection.close(200, "done".into()).await;
}
