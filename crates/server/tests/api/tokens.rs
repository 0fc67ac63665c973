//! Access tokens that must be refused: `alg: none`, a tampered payload, a
//! foreign key, an expired `exp`, and things that are not tokens at all.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_problem, text};

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/api/v1/auth/me", Some(token)).await
}

#[tokio::test]
async fn a_genuine_token_carries_the_documented_claims() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parts: Vec<&str> = user.access_token.split('.').collect();

    let header = decode(parts[0]);
    let claims = decode(parts[1]);

    assert_eq!(header["alg"], "EdDSA");
    let jwks: Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("jwks");
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    assert_eq!(claims["sub"], user.user_id.as_str());
    assert_eq!(claims["roles"], json!(["USER"]));
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(600));
    assert_eq!(me(&app, &user.access_token).await.status(), 200);
}

#[tokio::test]
async fn a_token_with_alg_none_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parts: Vec<&str> = user.access_token.split('.').collect();
    let mut header = decode(parts[0]);
    header["alg"] = json!("none");

    let unsigned = format!("{}.{}.", encode(&header), parts[1]);

    expect_problem(me(&app, &unsigned).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parts: Vec<&str> = user.access_token.split('.').collect();
    let mut claims = decode(parts[1]);
    claims["roles"] = json!(["USER", "ADMIN"]);

    let tampered = format!("{}.{}.{}", parts[0], encode(&claims), parts[2]);

    expect_problem(me(&app, &tampered).await, 401, "UNAUTHORIZED").await;
    expect_problem(
        app.get("/api/v1/users", Some(&tampered)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn a_token_signed_by_another_server_is_refused() {
    let ours = TestApp::spawn().await;
    let theirs = TestApp::spawn().await;
    let foreign = theirs.admin().await;

    expect_problem(me(&ours, &foreign.access_token).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn_with(|s| s.access_token_ttl_seconds = 1).await;
    let user = app.new_user().await;
    assert_eq!(me(&app, &user.access_token).await.status(), 200);

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let body = expect_problem(me(&app, &user.access_token).await, 401, "UNAUTHORIZED").await;
    assert!(text(&body["detail"]).contains("expired"));
}

#[tokio::test]
async fn things_that_are_not_tokens_are_refused() {
    let app = TestApp::spawn().await;
    for token in ["x", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", &"A".repeat(10_000)] {
        expect_problem(me(&app, token).await, 401, "UNAUTHORIZED").await;
    }
    let basic = app
        .http
        .get(app.url("/api/v1/auth/me"))
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .send()
        .await
        .expect("an answer");
    expect_problem(basic, 401, "UNAUTHORIZED").await;
}
