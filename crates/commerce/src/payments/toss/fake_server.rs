//! A local Toss Payments server for tests (feature `testing`): the same
//! paths, the Basic-auth check, idempotency keys, decline codes, the
//! `TossPayments-Test-Code` header, and faults to inject — a late answer, a
//! dropped one (the charge is made, then the connection closes without an
//! answer), a garbled one, an error status. It records every charge, so a
//! test can assert that an order was charged exactly once, and it can post
//! `PAYMENT_STATUS_CHANGED` webhooks to a URL.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use commerce::payments::toss::fake_server::{FakeToss, Fault, Route};
//! let toss = FakeToss::start("test_sk_fake").await?;
//! toss.decline("key-of-a-stolen-card", "INVALID_STOPPED_CARD");
//! toss.inject(Route::Confirm, Fault::DropAnswer);
//! // point a TossProvider at toss.base_url() with toss.secret_key() …
//! # Ok(()) }
//! ```
//!
//! Idempotency follows Toss: a key is matched on key, method and path (the
//! body is ignored); a second request while the first is running gets 409
//! `IDEMPOTENT_REQUEST_PROCESSING`; after it, the first answer is replayed.
//! What is replayed is the answer the server produced: `DropAnswer`,
//! `Delay` and `GarbageBody` spoil only its delivery, so a retry gets the
//! real answer; a `Status` fault's 4xx is replayed as sent; a 5xx is not
//! kept at all (the key is freed and a retry runs again, meeting
//! `ALREADY_PROCESSED_PAYMENT` or `ALREADY_CANCELED_PAYMENT` if the first
//! request took effect).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use time::{OffsetDateTime, UtcOffset};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt as _;

use super::codes;
use super::wire::{CancelRequest, ConfirmRequest, TossCancel, TossError, TossPayment, TossStatus};

/// Which endpoint a fault is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /v1/payments/confirm`
    Confirm,
    /// `POST /v1/payments/{paymentKey}/cancel`
    Cancel,
    /// `GET /v1/payments/orders/{orderId}`
    Lookup,
}

/// A fault for the next request on a route (each is used once, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The request is processed at once (the charge is made), the answer
    /// sent after this long — past the client's timeout, if it is longer.
    Delay(Duration),
    /// The request is processed, then the connection closes without an answer.
    DropAnswer,
    /// The request is processed, then answered 200 with a body that is not JSON.
    GarbageBody,
    /// Answered with `status` and Toss's error body carrying `code`;
    /// `processed` says whether the request took effect first (a 5xx after
    /// the charge) or not at all.
    Status {
        status: u16,
        code: String,
        processed: bool,
    },
}

/// A charge the server made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCharge {
    pub payment_key: String,
    pub order_id: String,
    pub amount: i64,
    pub idempotency_key: Option<String>,
}

/// A refund (cancel) the server made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRefund {
    pub payment_key: String,
    pub amount: i64,
    pub reason: String,
    pub idempotency_key: Option<String>,
}

/// One answer, as stored for idempotent replay.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json<T: serde::Serialize>(status: u16, value: &T) -> Self {
        Self {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    fn error(code: &str, message: &str) -> Self {
        Self::json(
            codes::status_of(code),
            &TossError {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        )
    }

    fn with_status(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            ..Self::error(code, message)
        }
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response()
    }
}

#[derive(Debug, Clone)]
enum Slot {
    InFlight,
    Done(Answer),
}

#[derive(Debug, Default)]
struct Books {
    /// By payment key.
    payments: HashMap<String, TossPayment>,
    /// Payment key by order id.
    orders: HashMap<String, String>,
    /// Payment key → the order id and amount the buyer authenticated.
    sessions: HashMap<String, (String, i64)>,
    declines: HashMap<String, String>,
    faults: HashMap<Route, VecDeque<Fault>>,
    idempotency: HashMap<(String, Method, String), Slot>,
    charges: Vec<RecordedCharge>,
    refunds: Vec<RecordedRefund>,
    requests: HashMap<Route, usize>,
}

#[derive(Debug)]
struct Shared {
    authorization: String,
    books: Mutex<Books>,
}

impl Shared {
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks a response the connection must not carry: it is closed instead.
#[derive(Debug, Clone, Copy)]
struct Dropped;

#[derive(Debug)]
struct AnswerDropped;

impl std::fmt::Display for AnswerDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the fake Toss server dropped the answer, as asked")
    }
}

impl std::error::Error for AnswerDropped {}

/// A running fake Toss server on `127.0.0.1`, stopped when dropped.
#[derive(Debug)]
pub struct FakeToss {
    addr: SocketAddr,
    secret_key: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeToss {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeToss {
    /// Starts a server on a free port that accepts `secret_key`.
    pub async fn start(secret_key: &str) -> std::io::Result<Self> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:"));
        let shared = Arc::new(Shared {
            authorization: format!("Basic {encoded}"),
            books: Mutex::new(Books::default()),
        });
        let router = Router::new()
            .route("/v1/payments/confirm", post(confirm))
            .route("/v1/payments/{payment_key}/cancel", post(cancel))
            .route("/v1/payments/orders/{order_id}", get(lookup))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, router));
        Ok(Self {
            addr,
            secret_key: secret_key.to_owned(),
            shared,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, the adapter's `api_base`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The key the server accepts.
    #[must_use]
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Settings for a [`TossProvider`](super::TossProvider) that talks to
    /// this server with its key, bounded by `timeout`.
    #[must_use]
    pub fn provider_settings(&self, timeout: Duration) -> super::TossSettings {
        super::TossSettings {
            secret_key: kernel::Secret::new(self.secret_key.clone()),
            api_base: self.base_url(),
            timeout,
        }
    }

    /// Confirming `payment_key` is declined with `code` (a 4xx, nothing charged).
    pub fn decline(&self, payment_key: &str, code: &str) {
        self.shared
            .books()
            .declines
            .insert(payment_key.to_owned(), code.to_owned());
    }

    /// The buyer authenticated `payment_key` for `order_id` and `amount`:
    /// a confirm with another order id or amount is refused. Without a
    /// session any order id and amount are accepted.
    pub fn open_session(&self, payment_key: &str, order_id: &str, amount: i64) {
        self.shared
            .books()
            .sessions
            .insert(payment_key.to_owned(), (order_id.to_owned(), amount));
    }

    /// `fault` applies to the next request on `route` (after the auth check).
    pub fn inject(&self, route: Route, fault: Fault) {
        self.shared
            .books()
            .faults
            .entry(route)
            .or_default()
            .push_back(fault);
    }

    /// Every charge made, in order.
    #[must_use]
    pub fn charges(&self) -> Vec<RecordedCharge> {
        self.shared.books().charges.clone()
    }

    /// How many charges were made for `order_id`.
    #[must_use]
    pub fn charge_count(&self, order_id: &str) -> usize {
        self.shared
            .books()
            .charges
            .iter()
            .filter(|charge| charge.order_id == order_id)
            .count()
    }

    /// Every refund made, in order.
    #[must_use]
    pub fn refunds(&self) -> Vec<RecordedRefund> {
        self.shared.books().refunds.clone()
    }

    /// How many requests reached `route` (refused ones included).
    #[must_use]
    pub fn requests(&self, route: Route) -> usize {
        self.shared
            .books()
            .requests
            .get(&route)
            .copied()
            .unwrap_or(0)
    }

    /// The payment held for `order_id`, as a look-up would answer it.
    #[must_use]
    pub fn payment(&self, order_id: &str) -> Option<TossPayment> {
        let books = self.shared.books();
        books
            .orders
            .get(order_id)
            .and_then(|key| books.payments.get(key))
            .cloned()
    }

    /// The `PAYMENT_STATUS_CHANGED` body for `order_id`'s payment.
    #[must_use]
    pub fn webhook_body(&self, order_id: &str) -> Option<String> {
        let payment = self.payment(order_id)?;
        let created_at = OffsetDateTime::now_utc()
            .to_offset(seoul())
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
            ))
            .ok()?;
        serde_json::to_string(&serde_json::json!({
            "eventType": "PAYMENT_STATUS_CHANGED",
            "createdAt": created_at,
            "data": payment,
        }))
        .ok()
    }

    /// Posts `order_id`'s `PAYMENT_STATUS_CHANGED` webhook to `url`; the
    /// status the receiver answered.
    pub async fn send_webhook(&self, url: &str, order_id: &str) -> Result<u16, String> {
        let body = self
            .webhook_body(order_id)
            .ok_or_else(|| format!("no payment for order {order_id}"))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|e| e.to_string())
    }
}

/// Toss reports times in Korea Standard Time.
fn seoul() -> UtcOffset {
    UtcOffset::from_hms(9, 0, 0).unwrap_or(UtcOffset::UTC)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .to_offset(seoul())
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}

/// The accept loop: hyper directly, so that a handler can close the
/// connection instead of answering.
async fn serve(listener: TcpListener, router: Router) {
    // Dropped with this task, which aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let router = router.clone();
                async move {
                    let response = match router.oneshot(request.map(Body::new)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    if response.extensions().get::<Dropped>().is_some() {
                        Err(AnswerDropped)
                    } else {
                        Ok::<_, AnswerDropped>(response)
                    }
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What a route does once auth and idempotency are settled.
type Work = Box<dyn FnOnce(&mut Books) -> Answer + Send>;

/// The common path of every request: count it, check the key, honour the
/// test-code header and idempotency, apply the next fault, then `work` — in
/// a task of its own, so that a client giving up never stops a charge
/// half-way (as at a real provider).
async fn handle(
    shared: Arc<Shared>,
    route: Route,
    method: Method,
    path: String,
    headers: &HeaderMap,
    work: Work,
) -> Response {
    let idempotency_key = {
        let mut books = shared.books();
        *books.requests.entry(route).or_default() += 1;
        let authorized = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value == shared.authorization);
        if !authorized {
            return Answer::error(
                codes::UNAUTHORIZED_KEY,
                "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
            )
            .into_response();
        }
        if let Some(code) = headers
            .get("TossPayments-Test-Code")
            .and_then(|value| value.to_str().ok())
        {
            return Answer::error(
                code,
                "the TossPayments-Test-Code header asked for this error",
            )
            .into_response();
        }
        let idempotency_key = headers
            .get("Idempotency-Key")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        if let Some(key) = &idempotency_key {
            let slot = (key.clone(), method, path);
            match books.idempotency.get(&slot) {
                Some(Slot::InFlight) => {
                    return Answer::error(
                        codes::IDEMPOTENT_REQUEST_PROCESSING,
                        "이전 멱등 요청이 아직 처리 중입니다.",
                    )
                    .into_response();
                }
                Some(Slot::Done(answer)) => return answer.clone().into_response(),
                None => {
                    books.idempotency.insert(slot.clone(), Slot::InFlight);
                }
            }
            Some(slot)
        } else {
            None
        }
    };
    let fault = shared
        .books()
        .faults
        .get_mut(&route)
        .and_then(VecDeque::pop_front);
    let task_shared = shared.clone();
    let outcome = tokio::spawn(async move {
        // `sent` is what goes on the wire; `kept` what a retry with the
        // same key gets (None: the key is freed, a retry runs again).
        let (sent, kept) = match &fault {
            Some(Fault::Status {
                status,
                code,
                processed,
            }) => {
                if *processed {
                    let _ = work(&mut task_shared.books());
                }
                let sent = Answer::with_status(*status, code, "injected fault");
                let kept = (*status < 500).then(|| sent.clone());
                (sent, kept)
            }
            Some(Fault::GarbageBody) => {
                let real = work(&mut task_shared.books());
                let garbage = Answer {
                    status: 200,
                    body: b"<html>502 Bad Gateway".to_vec(),
                };
                (garbage, Some(real))
            }
            _ => {
                let real = work(&mut task_shared.books());
                (real.clone(), Some(real))
            }
        };
        if let Some(Fault::Delay(delay)) = &fault {
            tokio::time::sleep(*delay).await;
        }
        if let Some(slot) = idempotency_key {
            let mut books = task_shared.books();
            match kept {
                Some(answer) => books.idempotency.insert(slot, Slot::Done(answer)),
                None => books.idempotency.remove(&slot),
            };
        }
        (sent, fault == Some(Fault::DropAnswer))
    })
    .await;
    match outcome {
        Ok((_, true)) => {
            let mut response = StatusCode::OK.into_response();
            response.extensions_mut().insert(Dropped);
            response
        }
        Ok((answer, false)) => answer.into_response(),
        Err(_) => Answer::error(
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "the fake server failed",
        )
        .into_response(),
    }
}

async fn confirm(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let idempotency_key = headers
        .get("Idempotency-Key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let work: Work = Box::new(move |books: &mut Books| {
        let Ok(request) = serde_json::from_slice::<ConfirmRequest>(&body) else {
            return Answer::error(codes::INVALID_REQUEST, "잘못된 요청입니다.");
        };
        if request.amount <= 0 || request.payment_key.is_empty() || request.order_id.is_empty() {
            return Answer::error(codes::INVALID_REQUEST, "잘못된 요청입니다.");
        }
        if let Some((order_id, amount)) = books.sessions.get(&request.payment_key)
            && (*order_id != request.order_id || *amount != request.amount)
        {
            return Answer::error(
                codes::INVALID_REQUEST,
                "the order id or amount is not the one the buyer authenticated",
            );
        }
        if books.payments.contains_key(&request.payment_key) {
            return Answer::error("ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다.");
        }
        if books.orders.contains_key(&request.order_id) {
            return Answer::error(
                codes::DUPLICATED_ORDER_ID,
                "이미 승인 및 취소가 진행된 중복된 주문번호 입니다.",
            );
        }
        if let Some(code) = books.declines.get(&request.payment_key) {
            return Answer::error(code, "the card was declined, as the test asked");
        }
        let payment = TossPayment {
            payment_key: request.payment_key.clone(),
            order_id: request.order_id.clone(),
            status: TossStatus::Done,
            total_amount: request.amount,
            balance_amount: Some(request.amount),
            currency: Some("KRW".to_owned()),
            approved_at: Some(now()),
            cancels: None,
        };
        books
            .orders
            .insert(request.order_id.clone(), request.payment_key.clone());
        books
            .payments
            .insert(request.payment_key.clone(), payment.clone());
        books.charges.push(RecordedCharge {
            payment_key: request.payment_key,
            order_id: request.order_id,
            amount: request.amount,
            idempotency_key,
        });
        Answer::json(200, &payment)
    });
    handle(
        shared,
        Route::Confirm,
        Method::POST,
        "/v1/payments/confirm".to_owned(),
        &headers,
        work,
    )
    .await
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(payment_key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let idempotency_key = headers
        .get("Idempotency-Key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let path = format!("/v1/payments/{payment_key}/cancel");
    let work: Work = Box::new(move |books: &mut Books| {
        let Ok(request) = serde_json::from_slice::<CancelRequest>(&body) else {
            return Answer::error(codes::INVALID_REQUEST, "잘못된 요청입니다.");
        };
        if request.cancel_reason.is_empty() {
            return Answer::error(codes::INVALID_REQUEST, "cancelReason is required");
        }
        let Some(payment) = books.payments.get_mut(&payment_key) else {
            return Answer::error(codes::NOT_FOUND_PAYMENT, "존재하지 않는 결제 정보 입니다.");
        };
        if payment.status == TossStatus::Canceled {
            return Answer::error(codes::ALREADY_CANCELED_PAYMENT, "이미 취소된 결제 입니다.");
        }
        let balance = payment.balance_amount.unwrap_or(payment.total_amount);
        if request
            .refundable_amount
            .is_some_and(|amount| amount != balance)
        {
            return Answer::error(
                codes::NOT_MATCHES_REFUNDABLE_AMOUNT,
                "잔액 결과가 일치하지 않습니다.",
            );
        }
        payment.status = TossStatus::Canceled;
        payment.balance_amount = Some(0);
        payment
            .cancels
            .get_or_insert_with(Vec::new)
            .push(TossCancel {
                cancel_amount: balance,
                cancel_reason: request.cancel_reason.clone(),
                canceled_at: now(),
            });
        let answer = Answer::json(200, &*payment);
        books.refunds.push(RecordedRefund {
            payment_key: payment_key.clone(),
            amount: balance,
            reason: request.cancel_reason,
            idempotency_key,
        });
        answer
    });
    handle(shared, Route::Cancel, Method::POST, path, &headers, work).await
}

async fn lookup(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/payments/orders/{order_id}");
    // A GET is never idempotency-keyed: drop a key a client sent anyway.
    let mut headers = headers;
    headers.remove("Idempotency-Key");
    let work: Work = Box::new(move |books: &mut Books| {
        match books
            .orders
            .get(&order_id)
            .and_then(|key| books.payments.get(key))
        {
            Some(payment) => Answer::json(200, payment),
            None => Answer::error(codes::NOT_FOUND_PAYMENT, "존재하지 않는 결제 정보 입니다."),
        }
    });
    handle(shared, Route::Lookup, Method::GET, path, &headers, work).await
}
