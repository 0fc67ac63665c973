//! The queue, the store and the deliverer together, on SQLite by default
//! and on PostgreSQL when `STAMPEDE_TEST_DATABASE_URL` is set, against a
//! receiver on a real socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{PageRequest, SharedClock, SystemClock};
use webhooks::model::{EndpointChange, NewEndpoint};
use webhooks::store::{SqlWebhookStore, WebhookStore};
use webhooks::{Deliverer, WebhookService, WebhookSettings};

type Log = Arc<Mutex<Vec<(String, String)>>>;

async fn receiver(status: u16) -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |State(log): State<Log>, headers: HeaderMap, body: String| async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    log.lock().expect("lock").push((id, body));
                    StatusCode::from_u16(status).expect("status")
                },
            ),
        )
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), log)
}

async fn open(allow_private: bool) -> (TestDatabase, Arc<WebhookService>, Arc<dyn WebhookStore>) {
    let test = TestDatabase::create().await;
    let db = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("connect");
    db.migrate(webhooks::migrations()).await.expect("migrate");
    let store: Arc<dyn WebhookStore> = Arc::new(SqlWebhookStore::new(db));
    let clock: SharedClock = Arc::new(SystemClock);
    let service = Arc::new(WebhookService::new(
        store.clone(),
        clock,
        WebhookSettings {
            allow_private,
            retry_base: Duration::from_secs(1),
        },
    ));
    (test, service, store)
}

/// An admin proof, as the HTTP layer would hand it over.
fn admin() -> kernel::auth::Admin {
    kernel::auth::Admin::check(kernel::Principal {
        user_id: kernel::UserId::new(),
        session_id: uuid::Uuid::now_v7(),
        roles: kernel::Roles::of(&[kernel::Role::Admin]),
    })
    .expect("an admin")
}

fn page() -> PageRequest {
    PageRequest {
        limit: 100,
        after: None,
    }
}

#[tokio::test]
async fn an_event_is_queued_once_per_endpoint_and_delivered() {
    let (_db, service, store) = open(true).await;
    let (url, log) = receiver(200).await;
    let admin = admin();
    let endpoint = service
        .create(
            &admin,
            &NewEndpoint {
                url,
                event_types: vec!["reward_request.approved".into()],
                description: None,
            },
        )
        .await
        .expect("created");
    let source = uuid::Uuid::now_v7();
    let now = SystemClock.now_ts();
    let data = serde_json::json!({"request_id": "r1"});
    assert_eq!(
        service
            .publish(source, "reward_request.approved", now, &data)
            .await
            .expect("queued"),
        1
    );
    assert_eq!(
        service
            .publish(source, "reward_request.approved", now, &data)
            .await
            .expect("queued"),
        0,
        "the same source is one message"
    );
    assert_eq!(
        service
            .publish(uuid::Uuid::now_v7(), "order.paid", now, &data)
            .await
            .expect("nothing"),
        0,
        "not subscribed"
    );
    let deliverer = Deliverer::new(&service).expect("a client");
    assert_eq!(deliverer.run_once().await.expect("a round"), 1);
    assert_eq!(deliverer.run_once().await.expect("a round"), 0, "done");
    let got = log.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].0.starts_with("msg_"));
    let body: serde_json::Value = serde_json::from_str(&got[0].1).expect("json");
    assert_eq!(body["type"], "reward_request.approved");
    assert_eq!(body["data"], data);
    let attempts = store
        .attempts(endpoint.endpoint.id, page())
        .await
        .expect("log");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(200));
    assert!(!attempts[0].gave_up);
}

#[tokio::test]
async fn failures_are_retried_later_and_gone_disables() {
    let (_db, service, store) = open(true).await;
    let (url, log) = receiver(503).await;
    let admin = admin();
    let endpoint = service
        .create(
            &admin,
            &NewEndpoint {
                url,
                event_types: vec!["order.paid".into()],
                description: Some("flaky".into()),
            },
        )
        .await
        .expect("created");
    let id = endpoint.endpoint.id;
    service.send_test(&admin, id).await.expect("queued");
    let deliverer = Deliverer::new(&service).expect("a client");
    assert_eq!(deliverer.run_once().await.expect("a round"), 1);
    assert_eq!(
        deliverer.run_once().await.expect("a round"),
        0,
        "not due yet"
    );
    let attempts = store.attempts(id, page()).await.expect("log");
    assert_eq!(attempts[0].status_code, Some(503));
    let next = attempts[0].next_retry_at.expect("a retry");
    assert!(next > attempts[0].attempted_at);
    assert_eq!(log.lock().expect("lock").len(), 1);

    // The endpoint is gone now: the retry disables it.
    let (gone_url, _) = receiver(410).await;
    service
        .update(
            &admin,
            id,
            &EndpointChange {
                url: Some(gone_url),
                ..EndpointChange::default()
            },
        )
        .await
        .expect("changed");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(deliverer.run_once().await.expect("a round"), 1);
    let attempts = store.attempts(id, page()).await.expect("log");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].status_code, Some(410));
    assert!(attempts[1].gave_up && attempts[1].next_retry_at.is_none());
    assert!(service.get(&admin, id).await.expect("found").disabled);
}

#[tokio::test]
async fn a_private_address_is_refused_at_delivery_time_too() {
    // Registered while private addresses were allowed (or a name that
    // resolved elsewhere then): the deliverer checks again when it sends.
    let (_db, open_service, store) = open(true).await;
    let (url, log) = receiver(200).await;
    let admin = admin();
    let endpoint = open_service
        .create(
            &admin,
            &NewEndpoint {
                url: url.replace("127.0.0.1", "localhost"),
                event_types: vec!["order.paid".into()],
                description: None,
            },
        )
        .await
        .expect("created");
    let id = endpoint.endpoint.id;
    let strict = WebhookService::new(
        store.clone(),
        Arc::new(SystemClock),
        WebhookSettings {
            allow_private: false,
            retry_base: Duration::from_secs(1),
        },
    );
    strict.send_test(&admin, id).await.expect("queued");
    let deliverer = Deliverer::new(&strict).expect("a client");
    assert_eq!(deliverer.run_once().await.expect("a round"), 1);
    assert!(log.lock().expect("lock").is_empty(), "nothing was sent");
    let attempts = store.attempts(id, page()).await.expect("log");
    assert_eq!(attempts[0].status_code, None);
    let error = attempts[0].error.clone().unwrap_or_default();
    assert!(error.contains("private"), "{error}");

    // An address in the URL itself is checked as well.
    open_service
        .update(
            &admin,
            id,
            &EndpointChange {
                url: Some(url),
                ..EndpointChange::default()
            },
        )
        .await
        .expect("changed");
    strict.send_test(&admin, id).await.expect("queued");
    assert!(deliverer.run_once().await.expect("a round") >= 1);
    assert!(log.lock().expect("lock").is_empty(), "nothing was sent");
    let attempts = store.attempts(id, page()).await.expect("log");
    let error = attempts[1].error.clone().unwrap_or_default();
    assert!(error.contains("private"), "{error}");
}

trait NowTs {
    fn now_ts(&self) -> kernel::Timestamp;
}

impl NowTs for SystemClock {
    fn now_ts(&self) -> kernel::Timestamp {
        kernel::Clock::now(self)
    }
}
