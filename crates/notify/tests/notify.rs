//! The notifiers over real protocols: email through a real SMTP server
//! (aiosmtpd, whose default handler prints every message it takes), and
//! Slack posts to a local HTTP receiver that rate-limits once.
//!
//! The SMTP test needs `python3 -m aiosmtpd` (Debian `python3-aiosmtpd`).
//! With `STAMPEDE_TEST_SMTP=aiosmtpd` (set by `.ci/run`) it fails when the
//! sink cannot be started; without it, it says so and skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bus::{Envelope, Handler};
use contracts::commerce::{ProductId, ReservationId, WaitingListEntryId, WaitingListOffered};
use contracts::identity::UserDirectory;
use contracts::rewards::{EventId, EventRewardId, RewardGranted, RewardId, RewardRequestId};
use kernel::testing::SmtpSink;
use kernel::{Secret, Timestamp, UserId};
use notify::{
    DeadLetterAlarm, Mailer, OrderPaidEmail, OrderRefundedEmail, RewardGrantedEmail,
    SlackSubscriber, SlackWebhook, WaitingListOfferedEmail,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Knows one user.
struct Directory {
    user: UserId,
    email: String,
}

#[async_trait]
impl UserDirectory for Directory {
    async fn email_of(&self, user: UserId) -> Result<Option<String>, String> {
        Ok((user == self.user).then(|| self.email.clone()))
    }
}

fn grant(user: UserId, reward: Value) -> Envelope {
    let granted = RewardGranted {
        request_id: RewardRequestId(Uuid::now_v7()),
        user_id: user,
        event_id: EventId(Uuid::now_v7()),
        event_reward_id: EventRewardId(Uuid::now_v7()),
        reward_id: RewardId(Uuid::now_v7()),
        reward,
        granted_at: Timestamp::from(time::OffsetDateTime::now_utc()),
    };
    Envelope::new(&granted, granted.granted_at).expect("encodes")
}

/// The value of one series in the process's Prometheus text, 0 if absent.
fn counter(series: &str) -> f64 {
    let text = platform::metrics::handle().render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_granted_reward_is_mailed_as_text_and_html_through_a_real_smtp_server() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let user = UserId(Uuid::now_v7());
    let directory = Arc::new(Directory {
        user,
        email: "winner@example.com".into(),
    });
    let url = Secret::new(format!("smtp://127.0.0.1:{}", sink.port()));
    let mailer =
        Arc::new(Mailer::new(Some(&url), "Stampede <no-reply@stampede.test>").expect("mailer"));
    let handler = RewardGrantedEmail::new(directory, mailer);
    let sent_before = counter(r#"notify_emails_total{outcome="sent"}"#);
    let message = grant(
        user,
        json!({"type": "ITEM", "item_id": "<mug> & co", "quantity": 2}),
    );

    handler.handle(&message).await.expect("sent");

    let mail = sink.next_message().await;
    let header = |name: &str| {
        mail.iter()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {mail:#?}"))
            .to_owned()
    };
    assert_eq!(header("Subject"), "You were granted 2 x <mug> & co");
    assert_eq!(header("To"), "winner@example.com");
    assert!(header("From").contains("no-reply@stampede.test"));
    assert_eq!(
        header("Message-ID"),
        format!("<{}@stampede.notify>", message.id)
    );
    assert!(header("Content-Type").starts_with("multipart/alternative"));
    let body = mail.join("\n");
    assert!(body.contains("Content-Type: text/plain"), "{body}");
    assert!(body.contains("Content-Type: text/html"), "{body}");
    assert!(
        body.contains("Your reward: 2 x <mug> & co."),
        "text part: {body}"
    );
    assert!(
        body.contains("Your reward: <strong>2 x &#60;mug&#62; &#38; co</strong>."),
        "escaped html part: {body}"
    );
    assert!(counter(r#"notify_emails_total{outcome="sent"}"#) >= sent_before + 1.0);

    // An unknown user is nobody to write to: done, nothing sent.
    let nobody = grant(
        UserId(Uuid::now_v7()),
        json!({"type": "POINT", "points": 5}),
    );
    handler.handle(&nobody).await.expect("nothing to do");
    // The sink going away fails the delivery (the bus retries it).
    sink.stop().await;
    let again = grant(user, json!({"type": "POINT", "points": 5}));
    let failed_before = counter(r#"notify_emails_total{outcome="failed"}"#);
    let err = handler.handle(&again).await.expect_err("no server");
    assert!(err.0.contains("SMTP"), "{err}");
    assert!(counter(r#"notify_emails_total{outcome="failed"}"#) >= failed_before + 1.0);
}

#[tokio::test]
async fn a_paid_order_and_its_refund_are_mailed_through_a_real_smtp_server() {
    use contracts::commerce::{
        IssuedTicket, OrderId, OrderLine, OrderPaid, OrderRefunded, ProductId,
    };
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let user = UserId(Uuid::now_v7());
    let directory = Arc::new(Directory {
        user,
        email: "buyer@example.com".into(),
    });
    let url = Secret::new(format!("smtp://127.0.0.1:{}", sink.port()));
    let mailer =
        Arc::new(Mailer::new(Some(&url), "Stampede <no-reply@stampede.test>").expect("mailer"));
    let (order_id, gala) = (OrderId::new(), ProductId::new());
    let now = Timestamp::from(time::OffsetDateTime::now_utc());
    let paid = OrderPaid {
        order_id,
        user_id: user,
        items: vec![OrderLine {
            product_id: gala,
            product_name: "Gala & <friends>".into(),
            quantity: 2,
            unit_price: 15_000,
            amount: 30_000,
        }],
        total: 29_000,
        currency: "KRW".into(),
        tickets: ["0f3a9c", "7d21be"]
            .map(|code| IssuedTicket {
                product_id: gala,
                code: code.into(),
            })
            .to_vec(),
        paid_at: now,
    };
    let message = Envelope::new(&paid, now).expect("encodes");

    OrderPaidEmail::new(directory.clone(), mailer.clone())
        .handle(&message)
        .await
        .expect("sent");

    let mail = sink.next_message().await.join("\n");
    assert!(mail.contains("To: buyer@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Your order is paid: 2 tickets for 29,000 KRW"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("Message-ID: <{}@stampede.notify>", message.id)),
        "{mail}"
    );
    assert!(mail.contains("2 x Gala & <friends>: 30,000 KRW"), "{mail}");
    assert!(mail.contains("Total: 29,000 KRW"), "{mail}");
    assert!(mail.contains("Gala & <friends>: 0f3a9c"), "{mail}");
    assert!(mail.contains("Gala & <friends>: 7d21be"), "{mail}");
    assert!(
        mail.contains("Gala &#38; &#60;friends&#62;: <code>7d21be</code>"),
        "escaped html part: {mail}"
    );

    let refunded = OrderRefunded {
        order_id,
        user_id: user,
        amount: 29_000,
        currency: "KRW".into(),
        refunded_at: now,
    };
    OrderRefundedEmail::new(directory, mailer)
        .handle(&Envelope::new(&refunded, now).expect("encodes"))
        .await
        .expect("sent");
    let mail = sink.next_message().await.join("\n");
    assert!(
        mail.contains("Subject: Your refund of 29,000 KRW"),
        "{mail}"
    );
    assert!(
        mail.contains("Your order was cancelled and 29,000 KRW refunded."),
        "{mail}"
    );
    assert!(mail.contains(&order_id.to_string()), "{mail}");
}

#[tokio::test]
async fn a_waiting_list_offer_is_mailed_with_what_is_held_and_until_when() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let user = UserId(Uuid::now_v7());
    let directory = Arc::new(Directory {
        user,
        email: "next-in-line@example.com".into(),
    });
    let url = Secret::new(format!("smtp://127.0.0.1:{}", sink.port()));
    let mailer =
        Arc::new(Mailer::new(Some(&url), "Stampede <no-reply@stampede.test>").expect("mailer"));
    let handler = WaitingListOfferedEmail::new(directory, mailer);
    let now = Timestamp::from(time::OffsetDateTime::now_utc());
    let reservation = ReservationId(Uuid::now_v7());
    let offered = WaitingListOffered {
        entry_id: WaitingListEntryId(Uuid::now_v7()),
        product_id: ProductId(Uuid::now_v7()),
        product_name: "Winter <gala>".into(),
        user_id: user,
        quantity: 2,
        reservation_id: reservation,
        offered_at: now,
        offer_expires_at: now + Duration::from_secs(900),
    };
    let message = Envelope::new(&offered, now).expect("encodes");

    handler.handle(&message).await.expect("sent");

    let mail = sink.next_message().await;
    let body = mail.join("\n");
    assert!(body.contains("To: next-in-line@example.com"), "{body}");
    assert!(
        body.contains("Subject: Your turn: 2 x Winter <gala> held for you"),
        "{body}"
    );
    assert!(
        body.contains(&format!("<{}@stampede.notify>", message.id)),
        "{body}"
    );
    assert!(body.contains("We hold 2 x Winter <gala> for you"), "{body}");
    assert!(
        body.contains(&format!("until {}", offered.offer_expires_at)),
        "{body}"
    );
    assert!(body.contains(&reservation.to_string()), "{body}");
    assert!(
        body.contains("<strong>2 x Winter &#60;gala&#62;</strong>"),
        "escaped html part: {body}"
    );
    // Another topic is not an offer: refused, so the bus keeps it.
    let wrong = grant(user, json!({"type": "POINT", "points": 1}));
    assert!(handler.handle(&wrong).await.is_err());
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[tokio::test]
async fn without_smtp_a_mail_is_logged_by_domain_and_counted_not_sent() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let user = UserId(Uuid::now_v7());
    let directory = Arc::new(Directory {
        user,
        email: "secret-local-part@example.org".into(),
    });
    let mailer = Arc::new(Mailer::log_only("no-reply@stampede.test").expect("mailer"));
    assert!(!mailer.sends());
    let handler = RewardGrantedEmail::new(directory, mailer);
    let logged_before = counter(r#"notify_emails_total{outcome="logged"}"#);

    handler
        .handle(&grant(user, json!({"type": "POINT", "points": 100})))
        .await
        .expect("logged");

    assert!(counter(r#"notify_emails_total{outcome="logged"}"#) >= logged_before + 1.0);
    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        log.contains("email not sent (no smtp_url): logged"),
        "{log}"
    );
    assert!(
        log.contains("recipient_domain=\"example.org\"")
            || log.contains("recipient_domain=example.org"),
        "{log}"
    );
    assert!(log.contains("You were granted 100 points"), "{log}");
    assert!(
        !log.contains("secret-local-part"),
        "the address is not logged: {log}"
    );
}

/// A Slack-compatible receiver: answers the first post 429 with
/// `Retry-After: 1`, then `status`; records each post's body and time.
#[derive(Clone)]
struct Receiver {
    posts: Arc<Mutex<Vec<(Instant, Value)>>>,
    status: StatusCode,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> Response {
    let mut posts = receiver.posts.lock().expect("lock");
    let json_body = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    assert!(json_body, "posted as JSON");
    posts.push((
        Instant::now(),
        serde_json::from_str(&body).expect("a JSON body"),
    ));
    if posts.len() == 1 {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "rate limited",
        )
            .into_response()
    } else {
        (receiver.status, "ok").into_response()
    }
}

async fn receiver(status: StatusCode) -> (Receiver, Secret<String>) {
    let receiver = Receiver {
        posts: Arc::default(),
        status,
    };
    let app = axum::Router::new()
        .route("/services/T0/B0/token", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        receiver,
        Secret::new(format!("http://{addr}/services/T0/B0/token")),
    )
}

#[tokio::test]
async fn a_slack_post_waits_out_a_429_retry_after_then_goes_through() {
    let (receiver, url) = receiver(StatusCode::OK).await;
    let webhook = SlackWebhook::new(url).expect("a webhook");

    webhook
        .post("Line 7: number 42, please come forward")
        .await
        .expect("posted");

    let posts = receiver.posts.lock().expect("lock").clone();
    assert_eq!(posts.len(), 2, "one 429, one retry");
    assert_eq!(
        posts[0].1,
        json!({"text": "Line 7: number 42, please come forward"})
    );
    assert_eq!(posts[1].1, posts[0].1);
    let waited = posts[1].0 - posts[0].0;
    assert!(
        waited >= Duration::from_millis(950),
        "waited {waited:?} of Retry-After: 1"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_and_a_non_2xx_fail_the_delivery() {
    let (receiver, url) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let webhook = Arc::new(
        SlackWebhook::new(url)
            .expect("a webhook")
            .max_wait(Duration::ZERO),
    );
    let subscriber = SlackSubscriber::new(
        "notify.test_calls",
        &["test.called"],
        |m| Ok(Some(format!("called {}", m.payload["n"]))),
        Some(webhook.clone()),
    );
    let message = Envelope {
        id: Uuid::now_v7(),
        topic: "test.called".into(),
        version: 1,
        payload: json!({"n": 42}),
        occurred_at: Timestamp::from(time::OffsetDateTime::now_utc()),
    };

    let limited = subscriber
        .handle(&message)
        .await
        .expect_err("429 beyond the bound");
    assert!(limited.0.contains("rate limiting"), "{limited}");
    let failed = subscriber.handle(&message).await.expect_err("500");
    assert!(failed.0.contains("500"), "{failed}");
    assert!(
        !failed.0.contains("token"),
        "the URL is not in the error: {failed}"
    );
    let posts = receiver.posts.lock().expect("lock").clone();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].1, json!({"text": "called 42"}));

    // Nobody listening: a transport error, still without the URL.
    let gone = SlackWebhook::new(Secret::new(
        "http://127.0.0.1:9/services/T0/B0/token".into(),
    ))
    .expect("a webhook");
    let err = gone.post("x").await.expect_err("refused");
    assert!(!err.to_string().contains("token"), "{err}");
}

#[tokio::test]
async fn the_dead_letter_alarm_posts_once_per_growth() {
    let (receiver, url) = receiver(StatusCode::OK).await;
    let webhook = SlackWebhook::new(url).expect("a webhook");
    let mut alarm = DeadLetterAlarm::new(2);
    let counts = |n: u64| vec![("commerce.coupon_grants".to_owned(), n)];

    alarm.check(&counts(1), Some(&webhook)).await;
    alarm.check(&counts(2), Some(&webhook)).await; // 429, waits, posts
    alarm.check(&counts(3), Some(&webhook)).await;
    alarm.check(&counts(3), Some(&webhook)).await;

    let posts = receiver.posts.lock().expect("lock").clone();
    assert_eq!(posts.len(), 2, "one alert (after one 429): {posts:?}");
    let text = posts[1].1["text"].as_str().expect("text");
    assert!(text.contains("2 dead letters"), "{text}");
    assert!(text.contains("commerce.coupon_grants: 2"), "{text}");
}
