//! The order routes. Placing honours `Idempotency-Key`.

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use kernel::auth::Reader;
use kernel::http::{Created, Json, Path, Query};
use kernel::{IdempotentEffect, Page, PageQuery, Principal, Problem, ProblemDetails, UserId};
use platform::Idempotency;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{NewOrder, Order, OrderHistory, OrderStatus};
use super::payment::{NewPayment, Paid};
use super::service::OrderService;
use crate::model::OrderId;

/// The `/api/v1` routes of orders.
pub fn router(service: Arc<OrderService>, idempotency: Idempotency) -> OpenApiRouter {
    let place = OpenApiRouter::new()
        .routes(routes!(place_order))
        .route_layer(from_fn_with_state(
            idempotency,
            platform::idempotency::layer,
        ));
    OpenApiRouter::new()
        .routes(routes!(list_orders))
        .routes(routes!(my_orders))
        .routes(routes!(get_order))
        .routes(routes!(order_history))
        .routes(routes!(pay_order))
        .routes(routes!(cancel_order))
        .routes(routes!(toss_webhook))
        .merge(place)
        .with_state(service)
}

type State = axum::extract::State<Arc<OrderService>>;

/// Place an order from your `HELD` reservations, with one of your coupons
/// if you like; its holds last until its payment window ends. Send an
/// `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/orders", tag = "orders", security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; the same key within 24 h replays the first answer"),
    ),
    request_body = NewOrder,
    responses(
        (status = 201, description = "Placed, `PENDING_PAYMENT`", body = Order),
        (status = 400, description = "Malformed JSON or ids", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`RESERVATION_EXPIRED`, `RESERVATION_NOT_HELD`, `COUPON_INVALID`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "No reservations, too many, repeated, or in several currencies", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
    ))]
async fn place_order(
    axum::extract::State(s): State,
    principal: Principal,
    effect: Option<IdempotentEffect>,
    Json(body): Json<NewOrder>,
) -> Result<Created<Order>, Problem> {
    Ok(Created(s.place(principal.user_id, &body, effect).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OrderFilter {
    /// Only orders in this status.
    status: Option<OrderStatus>,
    /// Only this user's orders.
    #[param(value_type = Option<String>, format = Uuid)]
    user_id: Option<UserId>,
}

/// Every order, filtered (readers).
#[utoipa::path(get, path = "/orders", tag = "orders", security(("bearer" = [])),
    params(PageQuery, OrderFilter),
    responses(
        (status = 200, description = "A page of orders", body = Page<Order>),
        (status = 400, description = "Bad cursor, status or user id", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
        kernel::openapi::Paged,
    ))]
async fn list_orders(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<PageQuery>,
    Query(filter): Query<OrderFilter>,
) -> Result<Json<Page<Order>>, Problem> {
    let page = q.parse("orders")?;
    Ok(Json(
        s.list(&reader, filter.user_id, filter.status, page).await?,
    ))
}

/// The caller's orders, oldest first.
#[utoipa::path(get, path = "/orders/mine", tag = "orders", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the caller's orders", body = Page<Order>),
        kernel::openapi::SignedIn,
        kernel::openapi::Paged,
    ))]
async fn my_orders(
    axum::extract::State(s): State,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Order>>, Problem> {
    let page = q.parse("orders")?;
    Ok(Json(s.mine(principal.user_id, page).await?))
}

/// One order: the owner's, or any for readers.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 403, description = "Another user's order", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn get_order(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<OrderId>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(s.order(&principal, id).await?))
}

/// What happened to one order, oldest first: placed, each charge started,
/// paid, failed, expired, cancelled, refunded, and a payment that arrived
/// after the order expired (`PAID_AFTER_EXPIRY`, refunded automatically).
/// The owner's, or any for readers.
#[utoipa::path(get, path = "/orders/{id}/history", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The order's history", body = OrderHistory),
        (status = 403, description = "Another user's order", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn order_history(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<OrderId>,
) -> Result<Json<OrderHistory>, Problem> {
    Ok(Json(s.history_for(&principal, id).await?))
}

/// Pay your order. `200` `PAID` with its tickets; `202` when the
/// provider's answer was lost (`payment.status` `UNKNOWN`): the order keeps
/// its holds and is settled by reconciliation, never charged twice.
#[utoipa::path(post, path = "/orders/{id}/payments", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = NewPayment,
    responses(
        (status = 200, description = "Paid, with tickets", body = Order),
        (status = 202, description = "Still `PENDING_PAYMENT`, payment `UNKNOWN`", body = Order),
        (status = 402, description = "`PAYMENT_DECLINED`: the order is `FAILED`, its stock and coupon back", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Another user's order", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`AMOUNT_MISMATCH`, `ORDER_NOT_PAYABLE`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "A provider not enabled, a bad outcome or key", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn pay_order(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<OrderId>,
    Json(body): Json<NewPayment>,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse;
    Ok(match s.pay(&principal, id, &body).await? {
        Paid::Paid(order) => Json(order).into_response(),
        Paid::Pending(order) => (axum::http::StatusCode::ACCEPTED, Json(order)).into_response(),
    })
}

/// Cancel an order (owner or staff): unpaid, its stock and coupon come
/// back; paid, its tickets are voided, its stock and coupon come back and
/// its refund is `PENDING` (`refund` in the body) until the provider has
/// given the money back, which happens in the background and is retried
/// until it does.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "`CANCELLED`", body = Order),
        (status = 403, description = "Another user's order, for a caller who is not staff", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`TICKET_USED`, `ORDER_NOT_CANCELLABLE`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The order's payment provider is not enabled on this server: nothing changed", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn cancel_order(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<OrderId>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(s.cancel(&principal, id).await?))
}

/// What the Toss webhook answers to a well-formed notice.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct NoticeReceived {
    /// Whether the notice settled an order waiting on an unknown answer.
    settled: bool,
}

/// Toss Payments' `PAYMENT_STATUS_CHANGED` notice. It is not trusted: the
/// order it names is settled by asking Toss for the payment, as the
/// reconciliation sweep does. Every well-formed body is answered 200 (Toss
/// retries anything else), other event types included.
#[utoipa::path(post, path = "/payments/toss/webhook", tag = "orders",
    request_body(content = String, description = "Toss's webhook body", content_type = "application/json"),
    responses(
        (status = 200, description = "Received", body = NoticeReceived),
        (status = 400, description = "`MALFORMED_WEBHOOK`: not a Toss webhook body", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn toss_webhook(
    axum::extract::State(s): State,
    body: axum::body::Bytes,
) -> Result<Json<NoticeReceived>, Problem> {
    use crate::payments::toss::webhook::{WebhookError, parse};
    let settled = match parse(&body) {
        Ok(notice) => s.on_payment_notice(&notice.order_id).await?,
        Err(WebhookError::OtherEvent(_)) => false,
        Err(e) => {
            return Err(Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                e.code(),
                e.to_string(),
            ));
        }
    };
    Ok(Json(NoticeReceived { settled }))
}
