//! The notifiers wired into the server: an approved reward request reaches
//! the user as an email through a real SMTP server (aiosmtpd). With
//! `STAMPEDE_TEST_SMTP=aiosmtpd` (set by `.ci/run`) a missing sink fails the
//! test; without it, the test says so and skips.

use kernel::Secret;
use kernel::testing::SmtpSink;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::reward_requests::{offer, request};

#[tokio::test]
async fn an_approved_reward_reaches_the_user_by_email() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let port = sink.port();
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}")));
        s.mail_from = "Stampede <no-reply@stampede.test>".into();
    })
    .await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(&app, &staff, Value::Null, true).await;
    let user = app.new_user().await;

    assert_eq!(request(&app, &user, &offer).await.status(), 201);

    let message = sink.next_message().await;
    let text = message.join("\n");
    assert!(text.contains(&format!("To: {}", user.email)), "{text}");
    assert!(
        text.contains("Subject: You were granted 10 points"),
        "{text}"
    );
    assert!(
        text.contains("Content-Type: multipart/alternative"),
        "{text}"
    );
    assert!(text.contains("Your reward: 10 points."), "{text}");
    assert!(text.contains("<strong>10 points</strong>"), "{text}");
}
