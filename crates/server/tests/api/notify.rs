//! The notifiers wired into the server: an approved reward request reaches
//! the user as an email through a real SMTP server (aiosmtpd). With
//! `STAMPEDE_TEST_SMTP=aiosmtpd` (set by `.ci/run`) a missing sink fails the
//! test; without it, the test says so and skips.

use std::process::Stdio;
use std::time::{Duration, Instant};

use kernel::Secret;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::TestApp;
use crate::reward_requests::{offer, request};

/// aiosmtpd on a free port; `None` (after saying so) unless the run asks for it.
async fn smtp_sink() -> Option<(
    tokio::process::Child,
    u16,
    tokio::sync::mpsc::UnboundedReceiver<String>,
)> {
    if std::env::var("STAMPEDE_TEST_SMTP").ok().as_deref() != Some("aiosmtpd") {
        eprintln!("skipped: set STAMPEDE_TEST_SMTP=aiosmtpd to send through a real SMTP sink");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut child = tokio::process::Command::new(python)
        .args(["-u", "-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("STAMPEDE_TEST_SMTP=aiosmtpd but python3 -m aiosmtpd cannot start");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("aiosmtpd exited at start ({status}): is python3-aiosmtpd installed?");
        }
        assert!(Instant::now() < deadline, "aiosmtpd does not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some((child, port, lines))
}

#[tokio::test]
async fn an_approved_reward_reaches_the_user_by_email() {
    let Some((_sink, port, mut lines)) = smtp_sink().await else {
        return;
    };
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}")));
        s.mail_from = "Stampede <no-reply@stampede.test>".into();
    })
    .await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let offer = offer(&app, &staff, Value::Null, true).await;
    let user = app.new_user().await;

    assert_eq!(request(&app, &user, &offer).await.status(), 201);

    let message = tokio::time::timeout(Duration::from_secs(10), async {
        let mut message = Vec::new();
        while let Some(line) = lines.recv().await {
            if line.contains("END MESSAGE") {
                return message;
            }
            message.push(line);
        }
        panic!("the sink's output ended: {message:?}");
    })
    .await
    .expect("an email within 10 s");
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
