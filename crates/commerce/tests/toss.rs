//! The Toss Payments adapter against the fake Toss server (a real HTTP
//! server on 127.0.0.1:0, no mocked functions): every outcome class, the
//! faults that make an answer unknown, and idempotent retries that never
//! charge or refund twice.

use std::time::Duration;

use commerce::payments::toss::fake_server::{FakeToss, Fault, Route};
use commerce::payments::toss::{TossConfigError, TossProvider, TossSettings, webhook};
use commerce::payments::{
    Charge, ChargeOutcome, PaymentProvider, ProviderPaymentStatus, Refund, RefundOutcome,
};
use kernel::Secret;
use kernel::money::{Currency, Money};

const KEY: &str = "test_sk_fake_hunter2";

fn won(amount: i64) -> Money {
    Money::new(amount, Currency::KRW)
}

fn provider_for(toss: &FakeToss, key: &str, timeout: Duration) -> TossProvider {
    TossProvider::new(TossSettings {
        secret_key: Secret::new(key.to_owned()),
        api_base: toss.base_url(),
        timeout,
    })
    .expect("a provider")
}

async fn setup(timeout: Duration) -> (FakeToss, TossProvider) {
    let toss = FakeToss::start(KEY).await.expect("the fake server starts");
    let provider = TossProvider::new(toss.provider_settings(timeout)).expect("a provider");
    (toss, provider)
}

fn charge(order: &str, attempt: u32) -> Charge {
    Charge {
        order_ref: order.to_owned(),
        payment_key: format!("tgen_{order}"),
        amount: won(15_000),
        attempt,
    }
}

fn refund_of(charge: &Charge) -> Refund {
    Refund {
        order_ref: charge.order_ref.clone(),
        payment_key: charge.payment_key.clone(),
        amount: charge.amount,
        reason: "the buyer cancelled".to_owned(),
    }
}

fn assert_unknown(outcome: &ChargeOutcome) {
    assert!(
        matches!(outcome, ChargeOutcome::Unknown { .. }),
        "expected unknown, got {outcome:?}"
    );
}

const QUICK: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_approved_charge_is_taken_once_with_the_attempts_key() {
    let (toss, provider) = setup(QUICK).await;
    let charge = charge("order-approve", 1);
    toss.open_session(&charge.payment_key, &charge.order_ref, 15_000);
    let outcome = provider.charge(&charge).await;
    let ChargeOutcome::Approved { payment_key, .. } = outcome else {
        panic!("expected approved, got {outcome:?}");
    };
    assert_eq!(payment_key, charge.payment_key);
    let charges = toss.charges();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].amount, 15_000);
    assert_eq!(
        charges[0].idempotency_key.as_deref(),
        Some(charge.idempotency_key().as_str())
    );
    let found = provider
        .lookup("order-approve")
        .await
        .expect("lookup")
        .expect("a payment");
    assert_eq!(found.status, ProviderPaymentStatus::Done);
    assert_eq!(found.amount, won(15_000));
    assert_eq!(found.payment_key, charge.payment_key);
}

#[tokio::test]
async fn each_decline_code_is_declined_with_the_code_and_charges_nothing() {
    let (toss, provider) = setup(QUICK).await;
    for (i, code) in [
        "REJECT_CARD_COMPANY",
        "INVALID_STOPPED_CARD",
        "EXCEED_MAX_DAILY_PAYMENT_COUNT",
        "INVALID_CARD_EXPIRATION",
        "NOT_FOUND_PAYMENT_SESSION",
    ]
    .into_iter()
    .enumerate()
    {
        let charge = charge(&format!("order-decline-{i}"), 1);
        toss.decline(&charge.payment_key, code);
        match provider.charge(&charge).await {
            ChargeOutcome::Declined { code: got, message } => {
                assert_eq!(got, code);
                assert!(!message.is_empty());
            }
            other => panic!("{code}: expected declined, got {other:?}"),
        }
        assert_eq!(
            provider.lookup(&charge.order_ref).await.expect("lookup"),
            None
        );
    }
    assert!(toss.charges().is_empty());
}

#[tokio::test]
async fn an_amount_other_than_the_authenticated_one_is_refused() {
    let (toss, provider) = setup(QUICK).await;
    let charge = charge("order-amount", 1);
    toss.open_session(&charge.payment_key, &charge.order_ref, 9_000);
    let outcome = provider.charge(&charge).await;
    assert!(
        matches!(&outcome, ChargeOutcome::Declined { code, .. } if code == "INVALID_REQUEST"),
        "{outcome:?}"
    );
    assert!(toss.charges().is_empty());
    let dollars = Charge {
        amount: Money::new(100, Currency::parse("USD").expect("USD")),
        ..charge
    };
    let outcome = provider.charge(&dollars).await;
    assert!(
        matches!(&outcome, ChargeOutcome::Declined { code, .. } if code == "UNSUPPORTED_CURRENCY"),
        "{outcome:?}"
    );
    assert_eq!(toss.requests(Route::Confirm), 1, "no request for dollars");
}

#[tokio::test]
async fn a_timeout_is_unknown_and_the_lookup_finds_the_charge() {
    let (toss, provider) = setup(Duration::from_millis(300)).await;
    toss.inject(Route::Confirm, Fault::Delay(Duration::from_millis(1_500)));
    let charge = charge("order-timeout", 1);
    let started = std::time::Instant::now();
    assert_unknown(&provider.charge(&charge).await);
    assert!(
        started.elapsed() < Duration::from_millis(1_200),
        "the timeout bounds the call: {:?}",
        started.elapsed()
    );
    let found = provider
        .lookup("order-timeout")
        .await
        .expect("lookup")
        .expect("the charge happened");
    assert_eq!(found.status, ProviderPaymentStatus::Done);
    assert_eq!(toss.charge_count("order-timeout"), 1);
}

#[tokio::test]
async fn a_retry_of_the_same_attempt_charges_once() {
    let (toss, provider) = setup(Duration::from_millis(300)).await;
    toss.inject(Route::Confirm, Fault::Delay(Duration::from_millis(1_000)));
    let charge = charge("order-retry", 1);
    assert_unknown(&provider.charge(&charge).await);
    // The first request is still running: 409 IDEMPOTENT_REQUEST_PROCESSING.
    assert_unknown(&provider.charge(&charge).await);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // Done now: the same key replays the first answer.
    let outcome = provider.charge(&charge).await;
    assert!(
        matches!(outcome, ChargeOutcome::Approved { .. }),
        "{outcome:?}"
    );
    // A new attempt for a confirmed key is ALREADY_PROCESSED_PAYMENT: unknown.
    assert_unknown(
        &provider
            .charge(&Charge {
                attempt: 2,
                ..charge
            })
            .await,
    );
    assert_eq!(toss.requests(Route::Confirm), 4);
    assert_eq!(toss.charge_count("order-retry"), 1);
}

#[tokio::test]
async fn a_dropped_answer_is_unknown_and_its_retry_replays_the_charge() {
    let (toss, provider) = setup(QUICK).await;
    toss.inject(Route::Confirm, Fault::DropAnswer);
    let charge = charge("order-dropped", 1);
    assert_unknown(&provider.charge(&charge).await);
    assert_eq!(
        toss.charge_count("order-dropped"),
        1,
        "charged before the drop"
    );
    let outcome = provider.charge(&charge).await;
    assert!(
        matches!(&outcome, ChargeOutcome::Approved { payment_key, .. } if *payment_key == charge.payment_key),
        "{outcome:?}"
    );
    assert_eq!(toss.charge_count("order-dropped"), 1);
}

#[tokio::test]
async fn a_garbage_body_is_unknown_not_a_crash() {
    let (toss, provider) = setup(QUICK).await;
    toss.inject(Route::Confirm, Fault::GarbageBody);
    let charge = charge("order-garbage", 1);
    assert_unknown(&provider.charge(&charge).await);
    let found = provider.lookup("order-garbage").await.expect("lookup");
    assert_eq!(found.map(|p| p.status), Some(ProviderPaymentStatus::Done));
    toss.inject(Route::Lookup, Fault::GarbageBody);
    let err = provider
        .lookup("order-garbage")
        .await
        .expect_err("a garbled look-up says nothing");
    assert!(err.to_string().contains("unreadable"), "{err}");
}

#[tokio::test]
async fn server_errors_and_provider_errors_are_unknown() {
    let (toss, provider) = setup(QUICK).await;
    // A 500 before anything happened: unknown, and the look-up finds nothing.
    toss.inject(
        Route::Confirm,
        Fault::Status {
            status: 500,
            code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
            processed: false,
        },
    );
    assert_unknown(&provider.charge(&charge("order-500", 1)).await);
    assert_eq!(provider.lookup("order-500").await.expect("lookup"), None);
    // A 502 after the charge: unknown, and the look-up finds it.
    toss.inject(
        Route::Confirm,
        Fault::Status {
            status: 502,
            code: "BAD_GATEWAY".into(),
            processed: true,
        },
    );
    assert_unknown(&provider.charge(&charge("order-502", 1)).await);
    let found = provider.lookup("order-502").await.expect("lookup");
    assert_eq!(found.map(|p| p.status), Some(ProviderPaymentStatus::Done));
    // A 5xx is not replayed: the retry meets ALREADY_PROCESSED_PAYMENT.
    assert_unknown(&provider.charge(&charge("order-502", 1)).await);
    assert_eq!(toss.charge_count("order-502"), 1);
    // PROVIDER_ERROR is a 400 that may hide a charge.
    toss.inject(
        Route::Confirm,
        Fault::Status {
            status: 400,
            code: "PROVIDER_ERROR".into(),
            processed: false,
        },
    );
    assert_unknown(&provider.charge(&charge("order-provider", 1)).await);
    // A look-up answered with a 503 cannot say.
    toss.inject(
        Route::Lookup,
        Fault::Status {
            status: 503,
            code: "UNAVAILABLE".into(),
            processed: false,
        },
    );
    assert!(provider.lookup("order-502").await.is_err());
    assert_eq!(toss.charges().len(), 1);
}

#[tokio::test]
async fn a_connection_that_fails_is_unknown() {
    let toss = FakeToss::start(KEY).await.expect("start");
    let base = toss.base_url();
    drop(toss);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let provider = TossProvider::new(TossSettings {
        secret_key: Secret::new(KEY.to_owned()),
        api_base: base,
        timeout: QUICK,
    })
    .expect("provider");
    assert_unknown(&provider.charge(&charge("order-refused", 1)).await);
    assert!(provider.lookup("order-refused").await.is_err());
}

#[tokio::test]
async fn a_refund_and_its_retries_refund_once() {
    let (toss, provider) = setup(QUICK).await;
    let charge = charge("order-refund", 1);
    assert!(matches!(
        provider.charge(&charge).await,
        ChargeOutcome::Approved { .. }
    ));
    let refund = refund_of(&charge);
    toss.inject(Route::Cancel, Fault::DropAnswer);
    let first = provider.refund(&refund).await;
    assert!(matches!(first, RefundOutcome::Unknown { .. }), "{first:?}");
    for _ in 0..2 {
        let again = provider.refund(&refund).await;
        assert!(matches!(again, RefundOutcome::Refunded { .. }), "{again:?}");
    }
    let refunds = toss.refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].amount, 15_000);
    assert_eq!(
        refunds[0].idempotency_key.as_deref(),
        Some(refund.idempotency_key().as_str())
    );
    let found = provider.lookup("order-refund").await.expect("lookup");
    assert_eq!(
        found.map(|p| p.status),
        Some(ProviderPaymentStatus::Cancelled)
    );
}

#[tokio::test]
async fn a_refund_of_a_payment_cancelled_elsewhere_is_refunded() {
    let (toss, provider) = setup(QUICK).await;
    let charge = charge("order-recancel", 1);
    assert!(matches!(
        provider.charge(&charge).await,
        ChargeOutcome::Approved { .. }
    ));
    // Cancelled by hand (Toss's dashboard, no idempotency key).
    let by_hand = reqwest::Client::new()
        .post(format!(
            "{}/v1/payments/{}/cancel",
            toss.base_url(),
            charge.payment_key
        ))
        .basic_auth(KEY, Some(""))
        .json(&serde_json::json!({"cancelReason": "by hand"}))
        .send()
        .await
        .expect("send");
    assert_eq!(by_hand.status().as_u16(), 200);
    // Our refund meets ALREADY_CANCELED_PAYMENT: the money is back already.
    let outcome = provider.refund(&refund_of(&charge)).await;
    assert!(
        matches!(outcome, RefundOutcome::Refunded { .. }),
        "{outcome:?}"
    );
    assert_eq!(toss.refunds().len(), 1);
}

#[tokio::test]
async fn a_refund_answered_with_a_5xx_is_unknown_and_its_retry_succeeds() {
    let (toss, provider) = setup(QUICK).await;
    let charge = charge("order-refund-500", 1);
    assert!(matches!(
        provider.charge(&charge).await,
        ChargeOutcome::Approved { .. }
    ));
    toss.inject(
        Route::Cancel,
        Fault::Status {
            status: 500,
            code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
            processed: false,
        },
    );
    let refund = refund_of(&charge);
    let failed = provider.refund(&refund).await;
    assert!(
        matches!(failed, RefundOutcome::Unknown { .. }),
        "{failed:?}"
    );
    assert!(toss.refunds().is_empty());
    // The same key again (the outbox's retry) refunds, once.
    let retried = provider.refund(&refund).await;
    assert!(
        matches!(retried, RefundOutcome::Refunded { .. }),
        "{retried:?}"
    );
    // A 5xx after the refund was made: the retry meets ALREADY_CANCELED_PAYMENT.
    let second = charge_and_approve(&provider, "order-refund-502").await;
    toss.inject(
        Route::Cancel,
        Fault::Status {
            status: 502,
            code: "BAD_GATEWAY".into(),
            processed: true,
        },
    );
    let refund = refund_of(&second);
    assert!(matches!(
        provider.refund(&refund).await,
        RefundOutcome::Unknown { .. }
    ));
    assert!(matches!(
        provider.refund(&refund).await,
        RefundOutcome::Refunded { .. }
    ));
    assert_eq!(toss.refunds().len(), 2, "{:?}", toss.refunds());
}

async fn charge_and_approve(provider: &TossProvider, order: &str) -> Charge {
    let charge = charge(order, 1);
    let outcome = provider.charge(&charge).await;
    assert!(
        matches!(outcome, ChargeOutcome::Approved { .. }),
        "{outcome:?}"
    );
    charge
}

#[tokio::test]
async fn refunds_the_provider_cannot_make_are_refused() {
    let (toss, provider) = setup(QUICK).await;
    let nothing = provider
        .refund(&refund_of(&charge("order-never-paid", 1)))
        .await;
    assert!(
        matches!(&nothing, RefundOutcome::Refused { code, .. } if code == "NOT_FOUND_PAYMENT"),
        "{nothing:?}"
    );
    let charge = charge("order-wrong-refund", 1);
    assert!(matches!(
        provider.charge(&charge).await,
        ChargeOutcome::Approved { .. }
    ));
    let wrong = provider
        .refund(&Refund {
            amount: won(1),
            ..refund_of(&charge)
        })
        .await;
    assert!(
        matches!(&wrong, RefundOutcome::Refused { code, .. } if code == "NOT_MATCHES_REFUNDABLE_AMOUNT"),
        "{wrong:?}"
    );
    assert!(toss.refunds().is_empty());
}

#[tokio::test]
async fn a_wrong_key_charges_nothing_and_never_shows() {
    let toss = FakeToss::start(KEY).await.expect("start");
    let provider = provider_for(&toss, "test_sk_wrong_hunter3", QUICK);
    assert!(!format!("{provider:?}").contains("hunter3"));
    let charge = charge("order-auth", 1);
    let outcome = provider.charge(&charge).await;
    assert!(
        matches!(&outcome, ChargeOutcome::Declined { code, .. } if code == "UNAUTHORIZED_KEY"),
        "{outcome:?}"
    );
    let refund = provider.refund(&refund_of(&charge)).await;
    assert!(
        matches!(refund, RefundOutcome::Unknown { .. }),
        "a refund is retried until the key is fixed: {refund:?}"
    );
    let err = provider.lookup("order-auth").await.expect_err("refused");
    assert!(err.to_string().contains("UNAUTHORIZED_KEY"), "{err}");
    assert!(toss.charges().is_empty());
    assert_eq!(toss.requests(Route::Confirm), 1);
}

#[tokio::test]
async fn bad_settings_are_refused_without_the_key() {
    let settings = |key: &str, base: &str, timeout: Duration| TossSettings {
        secret_key: Secret::new(key.to_owned()),
        api_base: base.to_owned(),
        timeout,
    };
    for (bad, want) in [
        (
            settings("", "https://api.tosspayments.com", QUICK),
            TossConfigError::BadKey,
        ),
        (
            settings("sk hunter2\n", "https://api.tosspayments.com", QUICK),
            TossConfigError::BadKey,
        ),
        (
            settings(KEY, "ftp://api.tosspayments.com", QUICK),
            TossConfigError::BadBase("ftp://api.tosspayments.com".into()),
        ),
        (
            settings(KEY, "https://api.tosspayments.com", Duration::ZERO),
            TossConfigError::BadTimeout,
        ),
    ] {
        let err = TossProvider::new(bad).expect_err("refused");
        assert_eq!(err, want);
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[tokio::test]
async fn the_fake_server_checks_auth_and_honours_the_test_code_header() {
    let toss = FakeToss::start(KEY).await.expect("start");
    let client = reqwest::Client::new();
    let confirm = format!("{}/v1/payments/confirm", toss.base_url());
    let body = serde_json::json!({"paymentKey": "k1", "orderId": "o-1", "amount": 1000});
    let anonymous = client
        .post(&confirm)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status().as_u16(), 401);
    let error: serde_json::Value = anonymous.json().await.expect("json");
    assert_eq!(error["code"], "UNAUTHORIZED_KEY");
    let forced = client
        .post(&confirm)
        .basic_auth(KEY, Some(""))
        .header("TossPayments-Test-Code", "REJECT_CARD_COMPANY")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(forced.status().as_u16(), 403);
    let error: serde_json::Value = forced.json().await.expect("json");
    assert_eq!(error["code"], "REJECT_CARD_COMPANY");
    assert!(toss.charges().is_empty());
    let paid = client
        .post(&confirm)
        .basic_auth(KEY, Some(""))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(paid.status().as_u16(), 200);
    let payment: serde_json::Value = paid.json().await.expect("json");
    assert_eq!(payment["status"], "DONE");
    assert_eq!(payment["totalAmount"], 1000);
    assert_eq!(toss.charge_count("o-1"), 1);
    // Another payment key for a confirmed order id is refused.
    let duplicate = client
        .post(&confirm)
        .basic_auth(KEY, Some(""))
        .json(&serde_json::json!({"paymentKey": "k2", "orderId": "o-1", "amount": 1000}))
        .send()
        .await
        .expect("send");
    let error: serde_json::Value = duplicate.json().await.expect("json");
    assert_eq!(error["code"], "DUPLICATED_ORDER_ID");
    assert_eq!(toss.charge_count("o-1"), 1);
}

#[tokio::test]
async fn a_webhook_from_the_fake_server_is_read_and_verified_by_lookup() {
    use axum::routing::post;
    let (toss, provider) = setup(QUICK).await;
    let charge = charge("order-webhook", 1);
    assert!(matches!(
        provider.charge(&charge).await,
        ChargeOutcome::Approved { .. }
    ));
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let app = axum::Router::new().route(
        "/payments/toss/webhook",
        post(move |body: axum::body::Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(body.to_vec());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/payments/toss/webhook",
        listener.local_addr().expect("addr")
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let status = toss
        .send_webhook(&url, "order-webhook")
        .await
        .expect("posted");
    assert_eq!(status, 200);
    let body = received.recv().await.expect("a body");
    let notice = webhook::parse(&body).expect("well-formed");
    assert_eq!(notice.order_id, "order-webhook");
    assert_eq!(notice.payment_key, charge.payment_key);
    assert_eq!(
        notice.status,
        commerce::payments::toss::wire::TossStatus::Done
    );
    // The notice is not trusted: the provider is asked.
    let found = provider.lookup(&notice.order_id).await.expect("lookup");
    assert_eq!(found.map(|p| p.status), Some(ProviderPaymentStatus::Done));
    assert!(toss.send_webhook(&url, "order-none").await.is_err());
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_charges_of_one_order_take_the_money_once() {
    let (toss, provider) = setup(QUICK).await;
    let provider = std::sync::Arc::new(provider);
    // The same attempt ten times at once, while the first is in flight.
    toss.inject(Route::Confirm, Fault::Delay(Duration::from_millis(300)));
    let mut same = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let provider = provider.clone();
        same.spawn(async move { provider.charge(&charge("order-rush", 1)).await });
    }
    let outcomes = same.join_all().await;
    let approved = outcomes
        .iter()
        .filter(|o| matches!(o, ChargeOutcome::Approved { .. }))
        .count();
    assert!(approved >= 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| !matches!(o, ChargeOutcome::Declined { .. })),
        "{outcomes:?}"
    );
    assert_eq!(toss.charge_count("order-rush"), 1);
    // Ten different attempts at once: one charge, the rest unknown.
    let mut attempts = tokio::task::JoinSet::new();
    for attempt in 1..=10 {
        let provider = provider.clone();
        attempts.spawn(async move { provider.charge(&charge("order-rush-2", attempt)).await });
    }
    let outcomes = attempts.join_all().await;
    let approved = outcomes
        .iter()
        .filter(|o| matches!(o, ChargeOutcome::Approved { .. }))
        .count();
    assert_eq!(approved, 1, "{outcomes:?}");
    assert_eq!(toss.charge_count("order-rush-2"), 1);
}
