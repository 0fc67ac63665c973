//! Paying an order: a saga of steps, each with its compensation.
//!
//! | step | done by | compensation when a later step fails |
//! | --- | --- | --- |
//! | 1. holds | the reservations (`ORDERED`) | stock back: order `FAILED` / `EXPIRED` |
//! | 2. attempt | `payment_status NONE → UNKNOWN` | none: an unknown charge is settled by [`OrderService::reconcile`] |
//! | 3. charge | the provider | declined: close the order, stock and coupon back; unknown: leave it to reconciliation |
//! | 4. paid | `PAID`, tickets, reservations `SOLD`, coupon `USED`, one transaction | the order no longer waits (expired, failed): refund, `PAID_AFTER_EXPIRY`; a database error: the order stays `UNKNOWN` and reconciliation settles it |
//!
//! Nothing here keeps state in memory between steps: a process killed
//! between the charge and the tickets leaves an order `UNKNOWN`, and the
//! reconciliation sweep asks the provider and finishes step 4.

use std::sync::Arc;

use kernel::{FieldError, Money, Principal, Timestamp};
use serde::Deserialize;
use utoipa::ToSchema;

use super::messages::{self, ProductNames};
use super::model::{Order, OrderStatus, PaymentStatus};
use super::service::OrderService;
use super::store::{CancelPaid, Close};
use crate::error::CommerceError;
use crate::model::OrderId;
use crate::payments::{
    Charge, ChargeOutcome, FakeOutcome, PaymentProvider, ProviderName, ProviderPaymentStatus,
    Refund, RefundOutcome,
};
use crate::tickets::{Ticket, TicketCode, TicketId, TicketStatus};

/// Unknown payments looked up by one round of reconciliation.
const RECONCILE_BATCH: i64 = 100;

/// The body of `POST /orders/{id}/payments`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewPayment {
    /// `toss` or `fake` (the latter only with `--fake-payments`).
    pub provider: String,
    /// The provider's payment key (`toss`).
    pub payment_key: Option<String>,
    /// The amount the buyer authorised, in minor units (`toss`): must be
    /// the order's total.
    pub amount: Option<i64>,
    /// `APPROVE` (default), `DECLINE` or `UNKNOWN` (`fake`).
    pub outcome: Option<String>,
}

/// What a payment request ended in.
#[derive(Debug)]
pub enum Paid {
    /// `PAID`, with its tickets.
    Paid(Order),
    /// The provider's answer was lost: still `PENDING_PAYMENT`, payment
    /// `UNKNOWN`, settled later by reconciliation.
    Pending(Order),
}

fn invalid(field: &str, message: &str) -> CommerceError {
    CommerceError::Invalid(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

impl OrderService {
    fn provider(&self, name: ProviderName) -> Option<Arc<dyn PaymentProvider>> {
        self.providers.get(&name).cloned()
    }

    /// Pays the caller's order: see the module's saga.
    pub async fn pay(
        &self,
        principal: &Principal,
        id: OrderId,
        request: &NewPayment,
    ) -> Result<Paid, CommerceError> {
        let name: ProviderName = request
            .provider
            .parse()
            .map_err(|_| invalid("provider", "must be toss or fake"))?;
        let provider = self
            .provider(name)
            .ok_or_else(|| invalid("provider", "is not enabled on this server"))?;
        let order = self
            .store
            .order(id)
            .await?
            .ok_or(CommerceError::OrderNotFound)?;
        if order.user_id != principal.user_id {
            return Err(CommerceError::Forbidden);
        }
        let payment_key = match name {
            ProviderName::Fake => {
                let outcome: FakeOutcome = request
                    .outcome
                    .as_deref()
                    .map_or(Ok(FakeOutcome::Approve), str::parse)
                    .map_err(|_| invalid("outcome", "must be APPROVE, DECLINE or UNKNOWN"))?;
                outcome.payment_key(&id.to_string())
            }
            ProviderName::Toss => {
                let key = request
                    .payment_key
                    .as_deref()
                    .filter(|k| (1..=200).contains(&k.len()) && !k.chars().any(char::is_control))
                    .ok_or_else(|| invalid("payment_key", "must be 1 to 200 characters"))?;
                let amount = request
                    .amount
                    .ok_or_else(|| invalid("amount", "is required"))?;
                if amount != order.total {
                    return Err(CommerceError::AmountMismatch { total: order.total });
                }
                key.to_owned()
            }
        };
        let now = self.clock.now();
        if order.status != OrderStatus::PendingPayment
            || order.payment.status != PaymentStatus::None
            || order.expires_at <= now
        {
            return Err(CommerceError::OrderNotPayable {
                status: order.status.as_str(),
            });
        }
        // Step 2: the attempt is durable before any money moves.
        let attempt = self
            .store
            .begin_attempt(id, name.as_str(), &payment_key, now)
            .await?
            .ok_or(CommerceError::OrderNotPayable {
                status: order.status.as_str(),
            })?;
        let currency = kernel::Currency::parse(&order.currency)
            .map_err(|e| CommerceError::Internal(format!("stored currency: {e}")))?;
        let charge = Charge {
            order_ref: id.to_string(),
            payment_key,
            amount: Money::new(order.total, currency),
            attempt,
        };
        // Step 3.
        match provider.charge(&charge).await {
            ChargeOutcome::Approved {
                payment_key,
                approved_at,
            } => {
                self.settle_approved(&order, provider.as_ref(), &payment_key, approved_at.into())
                    .await?;
                let order = self.reload(id).await?;
                if order.status == OrderStatus::Paid {
                    Ok(Paid::Paid(order))
                } else {
                    Err(CommerceError::OrderNotPayable {
                        status: order.status.as_str(),
                    })
                }
            }
            ChargeOutcome::Declined { code, message } => {
                self.fail_declined(id, &code).await?;
                Err(CommerceError::PaymentDeclined { code, message })
            }
            ChargeOutcome::Unknown { reason } => {
                tracing::warn!(order = %id, %reason, "a charge's answer is unknown: \
                    reconciliation will ask the provider");
                Ok(Paid::Pending(self.reload(id).await?))
            }
        }
    }

    async fn reload(&self, id: OrderId) -> Result<Order, CommerceError> {
        self.store
            .order(id)
            .await?
            .ok_or(CommerceError::OrderNotFound)
    }

    /// Compensates steps 1–2 after a decline: `FAILED`, stock and coupon back.
    async fn fail_declined(&self, id: OrderId, code: &str) -> Result<bool, CommerceError> {
        let now = self.clock.now();
        let Some(returned) = self
            .store
            .close_unpaid(
                id,
                Close {
                    payment: PaymentStatus::Unknown,
                    to: OrderStatus::Failed,
                    to_payment: Some((PaymentStatus::Declined, Some(code.to_owned()))),
                    event: "FAILED",
                    due: None,
                    announce: Vec::new(),
                },
                now,
            )
            .await?
        else {
            return Ok(false);
        };
        for reservation in &returned {
            self.reservations.return_units(reservation).await;
        }
        Ok(true)
    }

    /// Step 4: the money is taken. Marks the order paid with its tickets;
    /// if it no longer waits for this charge, gives the money back and
    /// records `PAID_AFTER_EXPIRY`.
    pub async fn settle_approved(
        &self,
        order: &Order,
        provider: &dyn PaymentProvider,
        payment_key: &str,
        approved_at: Timestamp,
    ) -> Result<(), CommerceError> {
        let mut tickets = Vec::new();
        let mut names = ProductNames::new();
        for item in &order.items {
            let product = self
                .products
                .product(item.product_id)
                .await?
                .ok_or(CommerceError::ProductNotFound)?;
            names.insert(product.id, product.name.as_str().to_owned());
            for _ in 0..item.quantity {
                tickets.push(Ticket {
                    id: TicketId::new(),
                    order_id: order.id,
                    product_id: item.product_id,
                    user_id: order.user_id,
                    code: TicketCode::generate(),
                    status: TicketStatus::Valid,
                    valid_from: product.valid_from,
                    valid_until: product.valid_until,
                    checked_in_at: None,
                });
            }
        }
        let now = self.clock.now();
        let announce = [messages::paid(order, &names, &tickets, now)?];
        if self
            .store
            .settle_paid(order.id, payment_key, approved_at, &tickets, &announce, now)
            .await?
        {
            return Ok(());
        }
        // Settled already by a racing reconciliation (the same charge)?
        if self
            .store
            .order(order.id)
            .await?
            .is_some_and(|now| now.status == OrderStatus::Paid)
        {
            return Ok(());
        }
        // The order stopped waiting (expired or failed meanwhile): its units
        // may be someone else's by now. Give the money back.
        let currency = kernel::Currency::parse(&order.currency)
            .map_err(|e| CommerceError::Internal(format!("stored currency: {e}")))?;
        let refund = Refund {
            order_ref: order.id.to_string(),
            payment_key: payment_key.to_owned(),
            amount: Money::new(order.total, currency),
            reason: "paid after the order expired".to_owned(),
        };
        let outcome = provider.refund(&refund).await;
        let refunded = matches!(outcome, RefundOutcome::Refunded { .. });
        let now = self.clock.now();
        // Not refunded now: the refund command retries it through the bus.
        let announce = if refunded {
            Vec::new()
        } else {
            tracing::warn!(order = %order.id, ?outcome, "a payment after expiry could not be \
                refunded yet: the refund is retried through the outbox");
            vec![messages::refund_command(order, now)?]
        };
        let detail = format!(
            "{payment_key}: {}",
            if refunded {
                "refunded"
            } else {
                "refund pending"
            }
        );
        self.store
            .record_late_refund(order.id, payment_key, &detail, refunded, &announce, now)
            .await?;
        Ok(())
    }

    /// Settles unpaid orders whose charge answer was lost, by asking their
    /// provider: charged → paid with tickets; not charged → left to wait
    /// inside the window (no second charge), `EXPIRED` past it. How many
    /// were settled.
    pub async fn reconcile(&self) -> Result<usize, CommerceError> {
        let mut settled = 0;
        for id in self.store.unknown_payments(RECONCILE_BATCH).await? {
            if self.settle_by_lookup(id).await? {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// The provider says an order's payment changed (Toss's
    /// `PAYMENT_STATUS_CHANGED`): the notice is not trusted, the order is
    /// settled by asking the provider, as reconciliation does, at once
    /// instead of at the next sweep. An unknown order or one not waiting on
    /// an unknown answer is left alone.
    pub async fn on_payment_notice(&self, order_ref: &str) -> Result<bool, CommerceError> {
        let Ok(id) = order_ref.parse::<uuid::Uuid>().map(OrderId) else {
            return Ok(false);
        };
        match self.store.order(id).await? {
            Some(order) if order.payment.status == PaymentStatus::Unknown => {
                self.settle_by_lookup(id).await
            }
            _ => Ok(false),
        }
    }

    /// Asks the order's provider what happened to its charge and settles
    /// it: charged → paid with tickets; not charged → left to wait inside
    /// the window, `EXPIRED` past it. Whether it settled.
    async fn settle_by_lookup(&self, id: OrderId) -> Result<bool, CommerceError> {
        let Some(order) = self.store.order(id).await? else {
            return Ok(false);
        };
        let Some(provider) = self.order_provider(&order) else {
            return Ok(false);
        };
        match provider.lookup(&id.to_string()).await {
            Ok(Some(found)) if found.status == ProviderPaymentStatus::Done => {
                let approved_at = found
                    .approved_at
                    .map_or_else(|| self.clock.now(), Timestamp::from);
                self.settle_approved(&order, provider.as_ref(), &found.payment_key, approved_at)
                    .await?;
                Ok(true)
            }
            Ok(Some(_) | None) if order.expires_at <= self.clock.now() => {
                let closed = self
                    .store
                    .close_unpaid(
                        id,
                        Close {
                            payment: PaymentStatus::Unknown,
                            to: OrderStatus::Expired,
                            to_payment: Some((PaymentStatus::None, None)),
                            event: "EXPIRED",
                            due: None,
                            announce: Vec::new(),
                        },
                        self.clock.now(),
                    )
                    .await?;
                let Some(returned) = closed else {
                    return Ok(false);
                };
                for reservation in &returned {
                    self.reservations.return_units(reservation).await;
                }
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) => {
                tracing::warn!(order = %id, error = %e, "could not ask the provider about a \
                    payment; reconciliation tries again");
                Ok(false)
            }
        }
    }
}

impl OrderService {
    /// Cancels an order (its owner or staff). Unpaid: `CANCELLED`, stock
    /// and coupon back. Paid: in one transaction `CANCELLED` with its
    /// tickets voided (refused with `TICKET_USED` after a check-in), stock
    /// and coupon back, the refund `PENDING` and a refund command on the
    /// outbox, which [`OrderService::refund`] carries out (ADR 0025).
    pub async fn cancel(&self, principal: &Principal, id: OrderId) -> Result<Order, CommerceError> {
        let order = self.reload(id).await?;
        if order.user_id != principal.user_id && !principal.roles.is_staff() {
            return Err(CommerceError::Forbidden);
        }
        let not_now = || CommerceError::OrderNotCancellable {
            status: order.status.as_str(),
        };
        let now = self.clock.now();
        match (order.status, order.payment.status) {
            (OrderStatus::PendingPayment, PaymentStatus::None) => {
                let names = self.product_names(&order).await?;
                let close = Close {
                    payment: PaymentStatus::None,
                    to: OrderStatus::Cancelled,
                    to_payment: None,
                    event: "CANCELLED",
                    due: None,
                    announce: vec![messages::cancelled(&order, &names, false, now)?],
                };
                let Some(returned) = self.store.close_unpaid(id, close, now).await? else {
                    return Err(not_now());
                };
                for reservation in &returned {
                    self.reservations.return_units(reservation).await;
                }
            }
            (OrderStatus::Paid, _) => {
                // A refund no provider here can make would only dead-letter:
                // refuse before anything changes.
                if self.order_provider(&order).is_none() {
                    return Err(CommerceError::RefundFailed(
                        "the order's payment provider is not enabled".into(),
                    ));
                }
                let names = self.product_names(&order).await?;
                let announce = [
                    messages::cancelled(&order, &names, true, now)?,
                    messages::refund_command(&order, now)?,
                ];
                match self.store.cancel_paid(id, &announce, now).await? {
                    CancelPaid::Cancelled(returned) => {
                        for reservation in &returned {
                            self.reservations.return_units(reservation).await;
                        }
                    }
                    CancelPaid::TicketUsed => return Err(CommerceError::TicketUsed),
                    CancelPaid::NotPaid => return Err(not_now()),
                }
            }
            _ => return Err(not_now()),
        }
        self.reload(id).await
    }

    /// The provider an order was paid through, if it is enabled here.
    pub(super) fn order_provider(&self, order: &Order) -> Option<Arc<dyn PaymentProvider>> {
        order
            .payment
            .provider
            .as_deref()
            .and_then(|p| p.parse::<ProviderName>().ok())
            .and_then(|p| self.provider(p))
    }

    /// The names of the order's products (a product gone is nameless).
    async fn product_names(&self, order: &Order) -> Result<ProductNames, CommerceError> {
        let mut names = ProductNames::new();
        for item in &order.items {
            if let Some(product) = self.products.product(item.product_id).await? {
                names.insert(product.id, product.name.as_str().to_owned());
            }
        }
        Ok(names)
    }
}
