//! Refunds through the outbox (ADR 0025). A cancel commits the refund as
//! `PENDING` with a `commerce.refund_order` command; [`RefundOrders`], a
//! bus subscriber, asks the order's provider to refund it. Refunded → the
//! refund `REFUNDED` with `commerce.order_refunded`, in one transaction.
//! Anything else fails the delivery: the bus retries it with its backoff
//! and, when it gives up, keeps it as a dead letter (which the dead-letter
//! alert reports) for an operator to replay. The provider's idempotency
//! key names the order, so however often it is asked, it refunds once.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError, Message};
use contracts::commerce::RefundOrder;
use kernel::auth::Staff;
use kernel::{Money, Timestamp};

use super::messages;
use super::model::RefundStatus;
use super::service::OrderService;
use crate::error::CommerceError;
use crate::model::OrderId;
use crate::payments::{Refund, RefundOutcome};

/// Where a refund command left its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundProgress {
    /// This call had the provider refund it.
    Refunded,
    /// Nothing to do: no refund pending (done by an earlier delivery).
    NothingPending,
}

impl OrderService {
    /// Carries out an order's pending refund; an error when the provider
    /// did not refund it (yet), so that the caller retries.
    pub async fn refund(&self, id: OrderId) -> Result<RefundProgress, CommerceError> {
        let order = self
            .store
            .order(id)
            .await?
            .ok_or(CommerceError::OrderNotFound)?;
        let Some(pending) = order
            .refund
            .as_ref()
            .filter(|r| r.status == RefundStatus::Pending)
        else {
            return Ok(RefundProgress::NothingPending);
        };
        let provider = self.order_provider(&order).ok_or_else(|| {
            CommerceError::RefundFailed(format!(
                "the order's payment provider ({}) is not enabled",
                order.payment.provider.as_deref().unwrap_or("none")
            ))
        })?;
        let currency = kernel::Currency::parse(&order.currency)
            .map_err(|e| CommerceError::Internal(format!("stored currency: {e}")))?;
        let refund = Refund {
            order_ref: id.to_string(),
            payment_key: order.payment.payment_key.clone().unwrap_or_default(),
            amount: Money::new(pending.amount, currency),
            reason: "cancelled".to_owned(),
        };
        let refunded_at = match provider.refund(&refund).await {
            RefundOutcome::Refunded { refunded_at } => Timestamp::from(refunded_at),
            RefundOutcome::Refused { code, message } => {
                return Err(CommerceError::RefundFailed(format!(
                    "refused by the provider: {code}: {message}"
                )));
            }
            RefundOutcome::Unknown { reason } => {
                return Err(CommerceError::RefundFailed(format!(
                    "the provider's answer is unknown: {reason}"
                )));
            }
        };
        let announce = [messages::refunded(&order, pending.amount, refunded_at)?];
        let now = self.clock.now();
        Ok(
            if self
                .store
                .complete_refund(id, refunded_at, &announce, now)
                .await?
            {
                RefundProgress::Refunded
            } else {
                RefundProgress::NothingPending
            },
        )
    }

    /// Staff asking for a pending refund now instead of at the bus's next
    /// retry (or after it gave up): the same call as the subscriber's, so
    /// the provider still refunds once.
    pub async fn retry_refund(
        &self,
        _: &Staff,
        id: OrderId,
    ) -> Result<RefundProgress, CommerceError> {
        self.refund(id).await
    }
}

/// The subscriber that carries out `commerce.refund_order` commands.
pub struct RefundOrders {
    orders: Arc<OrderService>,
}

impl RefundOrders {
    /// The subscriber's name: part of the inbox key, never to be renamed.
    pub const NAME: &'static str = "commerce.refunds";

    #[must_use]
    pub fn new(orders: Arc<OrderService>) -> Self {
        Self { orders }
    }
}

#[async_trait]
impl Handler for RefundOrders {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &'static [&'static str] {
        &[RefundOrder::TOPIC]
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let command: RefundOrder = message
            .decode()
            .map_err(|e| HandlerError(format!("not a refund command: {e}")))?;
        match self.orders.refund(command.order_id).await {
            Ok(progress) => {
                if progress == RefundProgress::Refunded {
                    tracing::info!(order = %command.order_id, "refunded");
                }
                Ok(())
            }
            Err(e) => Err(HandlerError(format!(
                "refund of order {}: {e}",
                command.order_id
            ))),
        }
    }
}
