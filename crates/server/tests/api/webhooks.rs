//! Outbound webhooks over real sockets: a receiver on 127.0.0.1 that checks
//! every signature with its own HMAC (the `hmac` crate directly, not the
//! server's signer), the ADMIN API and its role rules.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Session, TestApp, expect_problem, text};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
}

#[derive(Clone, Default)]
struct Script {
    received: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer with, in turn; 200 once they run out.
    answers: Arc<Mutex<VecDeque<u16>>>,
}

pub(crate) struct Receiver {
    pub(crate) url: String,
    script: Script,
}

impl Receiver {
    pub(crate) async fn start(answers: &[u16]) -> Self {
        let script = Script::default();
        script
            .answers
            .lock()
            .expect("lock")
            .extend(answers.iter().copied());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            script,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.script.received.lock().expect("lock").clone()
    }

    /// Waits until `n` requests have arrived (at most 15 s).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..150 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.received());
    }
}

async fn receive(
    State(script): State<Script>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    script.received.lock().expect("lock").push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    let status = script
        .answers
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(200);
    (
        StatusCode::from_u16(status).expect("a status"),
        format!("answered {status}"),
    )
}

/// The Standard Webhooks check, written here from the spec: the key is the
/// base64 after `whsec_`; the signed content `{id}.{timestamp}.{body}`.
fn expected_signature(secret: &str, r: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

pub(crate) fn assert_signed_by(secret: &str, r: &Received) {
    let expected = expected_signature(secret, r);
    assert!(
        r.signature.split(' ').any(|s| s == expected),
        "{:?} should carry {expected}",
        r.signature
    );
}

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.webhook_allow_private = true;
        s.webhook_retry_base_seconds = 1;
    })
    .await
}

async fn register(app: &TestApp, admin: &Session, url: &str) -> Value {
    app.created(
        "/api/v1/webhook-endpoints",
        admin,
        json!({"url": url, "event_types": ["reward_request.approved"], "description": "tests"}),
    )
    .await
}

async fn deliveries(app: &TestApp, admin: &Session, id: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/v1/webhook-endpoints/{id}/deliveries"),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("a page");
    page["items"].as_array().expect("items").clone()
}

/// Waits until the endpoint's log holds `n` attempts.
async fn wait_for_log(app: &TestApp, admin: &Session, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..150 {
        let log = deliveries(app, admin, id).await;
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {n} attempts in the log");
}

#[tokio::test]
async fn webhook_endpoints_are_admin_only() {
    let app = app().await;
    let admin = app.admin().await;
    let operator = app.user_with_roles(&["OPERATOR"]).await;
    let user = app.new_user().await;
    let receiver = Receiver::start(&[]).await;
    let endpoint = register(&app, &admin, &receiver.url).await;
    let id = text(&endpoint["id"]);
    app.post(
        &format!("/api/v1/webhook-endpoints/{id}/test"),
        Some(&admin.access_token),
        json!({}),
    )
    .await;
    let log = wait_for_log(&app, &admin, &id, 1).await;
    let attempt = text(&log[0]["id"]);

    let body = json!({"url": receiver.url, "event_types": ["order.paid"]});
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/webhook-endpoints".into(),
            Some(body.clone()),
        ),
        (Method::GET, "/api/v1/webhook-endpoints".into(), None),
        (Method::GET, format!("/api/v1/webhook-endpoints/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/webhook-endpoints/{id}"),
            Some(json!({"description": "changed"})),
        ),
        (
            Method::POST,
            format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhook-endpoints/{id}/test"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/webhook-endpoints/{id}/deliveries"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhook-deliveries/{attempt}/replay"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/webhook-endpoints/{id}"),
            None,
        ),
    ];
    for (method, path, body) in &routes {
        let anonymous = app.request(method.clone(), path, None, body.clone()).await;
        expect_problem(anonymous, 401, "UNAUTHORIZED").await;
        for who in [&operator, &user] {
            let refused = app
                .request(method.clone(), path, Some(&who.access_token), body.clone())
                .await;
            expect_problem(refused, 403, "FORBIDDEN").await;
        }
    }
    // The admin, in order (delete last).
    let expected = [201, 200, 200, 200, 200, 202, 200, 202, 204];
    for ((method, path, body), status) in routes.iter().zip(expected) {
        let answer = app
            .request(
                method.clone(),
                path,
                Some(&admin.access_token),
                body.clone(),
            )
            .await;
        assert_eq!(answer.status(), status, "{method} {path}");
    }
    let gone = app
        .get(
            &format!("/api/v1/webhook-endpoints/{id}"),
            Some(&admin.access_token),
        )
        .await;
    expect_problem(gone, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn webhook_registration_is_validated_and_the_secret_shown_once() {
    let app = app().await;
    let admin = app.admin().await;
    let token = Some(admin.access_token.as_str());
    let bad = app
        .post(
            "/api/v1/webhook-endpoints",
            token,
            json!({"url": "ftp://example.com/x", "event_types": []}),
        )
        .await;
    let problem = expect_problem(bad, 422, "VALIDATION_FAILED").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["url", "event_types"]);
    let unknown = app
        .post(
            "/api/v1/webhook-endpoints",
            token,
            json!({"url": "https://example.com/x", "event_types": ["order.shipped"]}),
        )
        .await;
    expect_problem(unknown, 422, "VALIDATION_FAILED").await;
    let malformed = app
        .post("/api/v1/webhook-endpoints", token, json!({"url": 5}))
        .await;
    expect_problem(malformed, 400, "BAD_REQUEST").await;

    let created = register(&app, &admin, "http://127.0.0.1:9/hook").await;
    let secret = text(&created["secret"]);
    assert!(secret.starts_with("whsec_"));
    assert!(STANDARD.decode(&secret[6..]).expect("base64").len() >= 24);
    assert_eq!(created["disabled"], false);
    assert_eq!(created["event_types"], json!(["reward_request.approved"]));
    let id = text(&created["id"]);
    let one: Value = app
        .get(&format!("/api/v1/webhook-endpoints/{id}"), token)
        .await
        .json()
        .await
        .expect("json");
    assert!(one.get("secret").is_none(), "{one}");
    let list: Value = app
        .get("/api/v1/webhook-endpoints?limit=1", token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"][0]["id"], created["id"]);
    assert!(list["items"][0].get("secret").is_none());
    assert!(list["next_cursor"].is_null());
    let changed = app
        .request(
            Method::PATCH,
            &format!("/api/v1/webhook-endpoints/{id}"),
            token,
            Some(json!({"event_types": ["order.paid", "order.cancelled"], "url": "gopher://x"})),
        )
        .await;
    let problem = expect_problem(changed, 422, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"][0]["field"], "url");
}

#[tokio::test]
async fn private_addresses_are_refused_without_the_setting() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
    ] {
        let refused = app
            .post(
                "/api/v1/webhook-endpoints",
                Some(&admin.access_token),
                json!({"url": url, "event_types": ["order.paid"]}),
            )
            .await;
        let problem = expect_problem(refused, 422, "VALIDATION_FAILED").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
}

#[tokio::test]
async fn webhook_delivery_is_signed_and_retried_under_the_same_id() {
    let app = app().await;
    let admin = app.admin().await;
    let receiver = Receiver::start(&[500]).await;
    let endpoint = register(&app, &admin, &receiver.url).await;
    let (id, secret) = (text(&endpoint["id"]), text(&endpoint["secret"]));
    let queued = app
        .post(
            &format!("/api/v1/webhook-endpoints/{id}/test"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(queued.status(), 202);
    let queued: Value = queued.json().await.expect("json");

    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].id, got[1].id, "one webhook-id on every retry");
    assert_eq!(got[0].id, text(&queued["webhook_id"]));
    for r in &got {
        assert_signed_by(&secret, r);
        assert_eq!(r.signature.split(' ').count(), 1);
        let body: Value = serde_json::from_str(&r.body).expect("JSON body");
        assert_eq!(body["type"], "webhook.test");
        assert!(body["timestamp"].is_string() && body["data"].is_object());
        let sent: i64 = r.timestamp.parse().expect("unix seconds");
        assert!((time::OffsetDateTime::now_utc().unix_timestamp() - sent).abs() < 60);
    }

    let log = wait_for_log(&app, &admin, &id, 2).await;
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["attempt"], 1);
    assert!(log[0]["next_retry_at"].is_string(), "{}", log[0]);
    assert_eq!(log[0]["error"], "HTTP 500");
    assert_eq!(log[1]["status_code"], 200);
    assert_eq!(log[1]["attempt"], 2);
    assert!(log[1]["next_retry_at"].is_null());
    assert!(log[1]["error"].is_null());
    assert_eq!(log[1]["response_excerpt"], "answered 200");
    assert_eq!(log[1]["webhook_id"], log[0]["webhook_id"]);
    assert_eq!(log[1]["event_type"], "webhook.test");
    for key in ["id", "duration_ms", "attempted_at"] {
        assert!(!log[1][key].is_null(), "{key}");
    }

    // A replay sends the same message again, under the same id.
    let replay = app
        .post(
            &format!("/api/v1/webhook-deliveries/{}/replay", text(&log[1]["id"])),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(replay.status(), 202);
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].id, got[0].id);
    assert_signed_by(&secret, &got[2]);
    let log = wait_for_log(&app, &admin, &id, 3).await;
    assert_eq!(log[2]["attempt"], 3);
    let unknown = app
        .post(
            &format!("/api/v1/webhook-deliveries/{}/replay", uuid::Uuid::now_v7()),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    expect_problem(unknown, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let app = app().await;
    let admin = app.admin().await;
    let receiver = Receiver::start(&[410]).await;
    let endpoint = register(&app, &admin, &receiver.url).await;
    let id = text(&endpoint["id"]);
    app.post(
        &format!("/api/v1/webhook-endpoints/{id}/test"),
        Some(&admin.access_token),
        json!({}),
    )
    .await;
    let log = wait_for_log(&app, &admin, &id, 1).await;
    assert_eq!(log[0]["status_code"], 410);
    assert_eq!(log[0]["gave_up"], true);
    assert!(log[0]["next_retry_at"].is_null());
    let now: Value = app
        .get(
            &format!("/api/v1/webhook-endpoints/{id}"),
            Some(&admin.access_token),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(now["disabled"], true);
    // Nothing more goes to a disabled endpoint.
    app.post(
        &format!("/api/v1/webhook-endpoints/{id}/test"),
        Some(&admin.access_token),
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1);
    // Enabled again, the waiting test event goes out.
    let enabled = app
        .request(
            Method::PATCH,
            &format!("/api/v1/webhook-endpoints/{id}"),
            Some(&admin.access_token),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(enabled.status(), 200);
    receiver.wait_for(2).await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let app = app().await;
    let admin = app.admin().await;
    let receiver = Receiver::start(&[]).await;
    let endpoint = register(&app, &admin, &receiver.url).await;
    let (id, old) = (text(&endpoint["id"]), text(&endpoint["secret"]));
    let rotated = app
        .post(
            &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.expect("json");
    let new = text(&rotated["secret"]);
    assert_ne!(new, old);
    app.post(
        &format!("/api/v1/webhook-endpoints/{id}/test"),
        Some(&admin.access_token),
        json!({}),
    )
    .await;
    let got = receiver.wait_for(1).await;
    let signatures: Vec<&str> = got[0].signature.split(' ').collect();
    assert_eq!(signatures.len(), 2, "{:?}", got[0].signature);
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    assert_eq!(signatures[0], expected_signature(&new, &got[0]));
    assert_eq!(signatures[1], expected_signature(&old, &got[0]));
}

#[tokio::test]
async fn an_approved_reward_request_reaches_the_subscribed_endpoint_over_the_bus() {
    let app = app().await;
    let admin = app.admin().await;
    let receiver = Receiver::start(&[]).await;
    let endpoint = register(&app, &admin, &receiver.url).await;
    let secret = text(&endpoint["secret"]);
    // Another endpoint that does not subscribe hears nothing.
    let other = Receiver::start(&[]).await;
    app.created(
        "/api/v1/webhook-endpoints",
        &admin,
        json!({"url": other.url, "event_types": ["order.paid"]}),
    )
    .await;

    let event = app
        .created("/api/v1/events", &admin, crate::helpers::live_event())
        .await;
    let reward = app
        .created(
            "/api/v1/rewards",
            &admin,
            json!({"name": "10 points", "type": "POINT", "points": 10}),
        )
        .await;
    let event_id = text(&event["id"]);
    let event_reward = app
        .created(
            &format!("/api/v1/events/{event_id}/rewards"),
            &admin,
            json!({"reward_id": reward["id"], "condition": null, "auto_resolve": true}),
        )
        .await;
    let user = app.new_user().await;
    let request = app
        .created(
            &format!(
                "/api/v1/events/{event_id}/rewards/{}/requests",
                text(&event_reward["id"])
            ),
            &user,
            json!({}),
        )
        .await;
    assert_eq!(request["status"], "APPROVED");

    let got = receiver.wait_for(1).await;
    assert_signed_by(&secret, &got[0]);
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(body["type"], "reward_request.approved");
    assert_eq!(body["data"]["request_id"], request["id"]);
    assert_eq!(body["data"]["user_id"], user.user_id.as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "once");
    assert!(other.received().is_empty());
}

#[tokio::test]
async fn every_webhook_route_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.openapi().await;
    for (path, method) in [
        ("/api/v1/webhook-endpoints", "post"),
        ("/api/v1/webhook-endpoints", "get"),
        ("/api/v1/webhook-endpoints/{id}", "get"),
        ("/api/v1/webhook-endpoints/{id}", "patch"),
        ("/api/v1/webhook-endpoints/{id}", "delete"),
        ("/api/v1/webhook-endpoints/{id}/rotate-secret", "post"),
        ("/api/v1/webhook-endpoints/{id}/test", "post"),
        ("/api/v1/webhook-endpoints/{id}/deliveries", "get"),
        ("/api/v1/webhook-deliveries/{id}/replay", "post"),
    ] {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["tags"], json!(["webhooks"]), "{method} {path}");
    }
    for schema in [
        "EndpointView",
        "EndpointWithSecret",
        "Attempt",
        "NewEndpoint",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert!(
        doc["components"]["schemas"]["EndpointView"]["properties"]
            .get("secret")
            .is_none()
    );
}
