//! What orders announce on the bus, built from an order before the
//! transaction that commits them (`contracts::commerce`): `order_paid`
//! with the tickets, `order_cancelled` with the refund's state, the
//! `refund_order` command and `order_refunded`.

use std::collections::HashMap;

use bus::Envelope;
use contracts::commerce::{
    IssuedTicket, OrderCancelled, OrderLine, OrderPaid, OrderRefunded, RefundOrder, RefundState,
};
use kernel::Timestamp;

use super::model::{Order, RefundStatus};
use crate::error::CommerceError;
use crate::products::ProductId;
use crate::tickets::Ticket;

/// Product names by id, for the lines a person reads.
pub type ProductNames = HashMap<ProductId, String>;

fn encode<M: bus::Message>(message: &M, at: Timestamp) -> Result<Envelope, CommerceError> {
    Envelope::new(message, at).map_err(|e| CommerceError::Internal(format!("a message: {e}")))
}

fn lines(order: &Order, names: &ProductNames) -> Vec<OrderLine> {
    order
        .items
        .iter()
        .map(|item| OrderLine {
            product_id: item.product_id,
            product_name: names.get(&item.product_id).cloned().unwrap_or_default(),
            quantity: item.quantity,
            unit_price: item.unit_price,
            amount: item.amount,
        })
        .collect()
}

/// `commerce.order_paid`: `order` paid at `at` with `tickets`.
pub fn paid(
    order: &Order,
    names: &ProductNames,
    tickets: &[Ticket],
    at: Timestamp,
) -> Result<Envelope, CommerceError> {
    let message = OrderPaid {
        order_id: order.id,
        user_id: order.user_id,
        items: lines(order, names),
        total: order.total,
        currency: order.currency.clone(),
        tickets: tickets
            .iter()
            .map(|t| IssuedTicket {
                product_id: t.product_id,
                code: t.code.as_str().to_owned(),
            })
            .collect(),
        paid_at: at,
    };
    encode(&message, at)
}

/// `commerce.order_cancelled`, with the whole total's refund `PENDING` if
/// `refunding`.
pub fn cancelled(
    order: &Order,
    names: &ProductNames,
    refunding: bool,
    at: Timestamp,
) -> Result<Envelope, CommerceError> {
    let message = OrderCancelled {
        order_id: order.id,
        user_id: order.user_id,
        items: lines(order, names),
        total: order.total,
        currency: order.currency.clone(),
        refund: refunding.then(|| RefundState {
            amount: order.total,
            status: RefundStatus::Pending.as_str().to_owned(),
        }),
        cancelled_at: at,
    };
    encode(&message, at)
}

/// The `commerce.refund_order` command for `order`.
pub fn refund_command(order: &Order, at: Timestamp) -> Result<Envelope, CommerceError> {
    encode(
        &RefundOrder {
            order_id: order.id,
            requested_at: at,
        },
        at,
    )
}

/// `commerce.order_refunded`: `amount` of `order` back with its buyer.
pub fn refunded(
    order: &Order,
    amount: i64,
    refunded_at: Timestamp,
) -> Result<Envelope, CommerceError> {
    let message = OrderRefunded {
        order_id: order.id,
        user_id: order.user_id,
        amount,
        currency: order.currency.clone(),
        refunded_at,
    };
    encode(&message, refunded_at)
}
