//! Orders: the list filtered by status (or the ones needing an operator:
//! a payment whose answer is unknown, a refund not given back yet) and by
//! user, paged; each order with its lines, payment, refund, tickets and
//! history. Staff cancel an order (a paid one is refunded through its
//! provider) and ask for a pending refund again without waiting for the
//! bus's next retry. Auditors read without a button.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use commerce::model::OrderId;
use commerce::orders::model::{HistoryEntry, OrderItem};
use commerce::orders::{Order, OrderStatus, PaymentStatus, RefundStatus};
use kernel::{PageQuery, Problem, UserId};

use super::products::{changing, href};
use crate::Admin;
use crate::page::{self, Chrome, FormError, Refusal};
use crate::session::Signed;

const LIST_LENGTH: i64 = 50;
/// Orders needing an operator shown at once, longest waiting first.
const OPEN_SHOWN: u32 = 100;
/// The status filter's choice for the orders needing an operator.
const ATTENTION: &str = "ATTENTION";
const REFUSED: &str = "Auditors read the orders; only staff cancel them or refund them.";

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    user_id: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    chrome: Chrome,
    status: String,
    user_id: String,
    statuses: [&'static str; 5],
    attention: &'static str,
    rows: Vec<Order>,
    next: Option<String>,
    first: Option<String>,
    error: Option<FormError>,
}

/// The orders of the filters, and the next page's address.
async fn listed(
    admin: &Admin,
    signed: &Signed,
    status: &str,
    user_id: &str,
    cursor: Option<String>,
) -> Result<(Vec<Order>, Option<String>), Problem> {
    let user = Some(user_id.trim())
        .filter(|u| !u.is_empty())
        .map(str::parse::<UserId>)
        .transpose()
        .map_err(|_| Problem::invalid_field("user_id", "is not an id"))?;
    if status == ATTENTION {
        let open = admin
            .commerce_analytics
            .open_orders(&signed.reader, OPEN_SHOWN)
            .await?;
        let mut orders = Vec::with_capacity(open.len());
        for found in open.iter().filter(|o| user.is_none_or(|u| o.user_id == u)) {
            orders.push(
                admin
                    .orders
                    .order(&signed.principal, found.order_id)
                    .await?,
            );
        }
        return Ok((orders, None));
    }
    let of_status = Some(status)
        .filter(|s| !s.is_empty())
        .map(str::parse::<OrderStatus>)
        .transpose()
        .map_err(|e| Problem::invalid_field("status", e.to_string()))?;
    let page = PageQuery {
        limit: Some(LIST_LENGTH),
        cursor,
    }
    .parse("orders")?;
    let found = admin
        .orders
        .list(&signed.reader, user, of_status, page)
        .await?;
    let next = found.next_cursor.map(|c| {
        href(
            "/admin/orders",
            &[("status", status), ("user_id", user_id), ("cursor", &c)],
        )
    });
    Ok((found.items, next))
}

async fn list(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<ListQuery>,
) -> Response {
    let status = query.status.unwrap_or_default();
    let user_id = query.user_id.unwrap_or_default();
    let cursor = query.cursor.filter(|c| !c.is_empty());
    let first = cursor.is_some().then(|| {
        href(
            "/admin/orders",
            &[("status", &status), ("user_id", &user_id)],
        )
    });
    let (rows, next, error) = match listed(&admin, &signed, &status, &user_id, cursor).await {
        Ok((rows, next)) => (rows, next, None),
        Err(problem) => (Vec::new(), None, Some(FormError::new("filter", problem))),
    };
    page::render(
        error.status(),
        &OrdersPage {
            chrome: Chrome::of(&signed, "/admin/orders"),
            status,
            user_id,
            statuses: OrderStatus::ALL.map(OrderStatus::as_str),
            attention: ATTENTION,
            rows,
            next,
            first,
            error,
        },
    )
}

struct Line {
    item: OrderItem,
    /// The product's name, when it can still be read.
    name: Option<String>,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    order: Order,
    lines: Vec<Line>,
    history: Vec<HistoryEntry>,
    /// Whether the order can be cancelled now (unpaid with no charge in
    /// flight, or paid).
    cancellable: bool,
    refund_pending: bool,
    error: Option<FormError>,
}

async fn order_page(
    admin: &Admin,
    signed: &Signed,
    id: OrderId,
    error: Option<FormError>,
) -> Response {
    let found = async {
        let order = admin.orders.order(&signed.principal, id).await?;
        let history = admin.orders.history_for(&signed.principal, id).await?;
        Ok::<_, Problem>((order, history.entries))
    }
    .await;
    let (order, history) = match found {
        Ok(found) => found,
        Err(problem) => return page::problem(problem),
    };
    let mut lines = Vec::with_capacity(order.items.len());
    for item in &order.items {
        let name = admin
            .products
            .product(item.product_id)
            .await
            .ok()
            .map(|p| p.name.to_string());
        lines.push(Line {
            item: item.clone(),
            name,
        });
    }
    page::render(
        error.status(),
        &OrderPage {
            chrome: Chrome::of(signed, "/admin/orders"),
            cancellable: matches!(
                (order.status, order.payment.status),
                (OrderStatus::PendingPayment, PaymentStatus::None) | (OrderStatus::Paid, _)
            ),
            refund_pending: order
                .refund
                .as_ref()
                .is_some_and(|r| r.status == RefundStatus::Pending),
            order,
            lines,
            history,
            error,
        },
    )
}

async fn show(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse() else {
        return page::not_found();
    };
    order_page(&admin, &signed, id, None).await
}

/// What a staff action on one order does.
#[derive(Clone, Copy)]
enum Action {
    /// Through the same rule as the API (the owner or staff); a paid
    /// order's refund starts with it.
    Cancel,
    /// Asks the provider for a pending refund now.
    Refund,
}

/// Does `action` on the order; on to its page, with the refusal shown on
/// the action's form.
async fn act(admin: &Admin, signed: &Signed, raw_id: &str, action: Action) -> Response {
    let (staff, id) = match changing::<OrderId>(signed, raw_id, REFUSED) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let (done, form) = match action {
        Action::Cancel => (
            admin.orders.cancel(&signed.principal, id).await.map(drop),
            "cancel",
        ),
        Action::Refund => (
            admin.orders.retry_refund(&staff, id).await.map(drop),
            "refund",
        ),
    };
    match done {
        Ok(()) => page::see_other(&format!("/admin/orders/{id}")),
        Err(e) => order_page(admin, signed, id, Some(FormError::new(form, e.into()))).await,
    }
}

async fn cancel(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    act(&admin, &signed, &id, Action::Cancel).await
}

async fn refund(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    act(&admin, &signed, &id, Action::Refund).await
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/orders", get(list))
        .route("/admin/orders/{id}", get(show))
        .route("/admin/orders/{id}/cancel", post(cancel))
        .route("/admin/orders/{id}/refund", post(refund))
}
