//! The order use cases: place an order from the caller's holds, read
//! orders, and expire the unpaid ones past their payment window.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kernel::auth::Reader;
use kernel::{
    FieldError, IdempotentEffect, Page, PageRequest, Principal, SharedClock, Timestamp, UserId,
};

use super::model::{
    self, HistoryEntry, NewOrder, Order, OrderHistory, OrderStatus, Payment, PaymentStatus,
    PricingError,
};
use super::store::{Close, OrderStore, PlaceError};
use crate::error::CommerceError;
use crate::model::{CouponCode, OrderId};
use crate::payments::{PaymentProvider, ProviderName};
use crate::products::ProductStore;
use crate::reservations::{ReservationService, ReservationStatus};

/// Orders expired by one round of the sweep.
const SWEEP_BATCH: i64 = 200;

pub struct OrderService {
    pub(super) store: Arc<dyn OrderStore>,
    pub(super) products: Arc<dyn ProductStore>,
    pub(super) reservations: Arc<ReservationService>,
    pub(super) clock: SharedClock,
    payment_window: Duration,
    /// The payment providers wired in, by name.
    pub(super) providers: HashMap<ProviderName, Arc<dyn PaymentProvider>>,
}

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService").finish_non_exhaustive()
    }
}

fn invalid(field: &str, message: impl Into<String>) -> CommerceError {
    CommerceError::Invalid(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

impl OrderService {
    /// `payment_window` is how long a placed order waits for its payment.
    #[must_use]
    pub fn new(
        store: Arc<dyn OrderStore>,
        products: Arc<dyn ProductStore>,
        reservations: Arc<ReservationService>,
        clock: SharedClock,
        payment_window: Duration,
    ) -> Self {
        Self {
            store,
            products,
            reservations,
            clock,
            payment_window,
            providers: HashMap::new(),
        }
    }

    /// Takes payments through `provider` too (under its name).
    #[must_use]
    pub fn with_provider(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.providers.insert(provider.name(), provider);
        self
    }

    /// Places an order from the caller's `HELD` reservations, with the
    /// discount of one of the caller's `ISSUED` coupons if named. Its holds
    /// are extended to the payment window from now, never further.
    /// A keyed request's order takes the key's effect id; a retry of one
    /// that may have placed it answers with that order.
    pub async fn place(
        &self,
        user: UserId,
        request: &NewOrder,
        effect: Option<IdempotentEffect>,
    ) -> Result<Order, CommerceError> {
        let order_id = effect.map_or_else(OrderId::new, |e| OrderId(e.id));
        if effect.is_some_and(|e| e.retry)
            && let Some(first) = self.store.order(order_id).await?
        {
            if first.user_id != user {
                return Err(CommerceError::Internal(format!(
                    "the effect {order_id} of a retried key is another user's order"
                )));
            }
            return Ok(first);
        }
        let ids = &request.reservation_ids;
        if ids.is_empty() || ids.len() > model::MAX_ITEMS {
            return Err(invalid(
                "reservation_ids",
                format!("must name 1 to {} reservations", model::MAX_ITEMS),
            ));
        }
        if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
            return Err(invalid("reservation_ids", "must not repeat a reservation"));
        }
        let now = self.clock.now();
        let mut items = Vec::with_capacity(ids.len());
        let mut currency = None;
        for id in ids {
            let reservation = self
                .reservations
                .store()
                .reservation(*id)
                .await?
                .ok_or(CommerceError::ReservationNotFound)?;
            if reservation.user_id != user {
                return Err(CommerceError::Forbidden);
            }
            if reservation.status == ReservationStatus::Expired
                || (reservation.status == ReservationStatus::Held && reservation.expires_at <= now)
            {
                return Err(CommerceError::ReservationExpired(*id));
            }
            if reservation.status != ReservationStatus::Held {
                return Err(CommerceError::ReservationNotHeld {
                    status: reservation.status.as_str(),
                });
            }
            let product = self
                .products
                .product(reservation.product_id)
                .await?
                .ok_or(CommerceError::ProductNotFound)?;
            if *currency.get_or_insert(product.price.currency) != product.price.currency {
                return Err(invalid("reservation_ids", "must all be in one currency"));
            }
            items.push(
                model::item(product.id, *id, reservation.quantity, product.price.amount)
                    .map_err(|_| invalid("reservation_ids", "the total is too large"))?,
            );
        }
        let currency = currency.unwrap_or(kernel::Currency::KRW);
        // A code as a person may type it: any case, hyphens or not.
        let code = request
            .coupon_code
            .as_deref()
            .map(|raw| CouponCode::parse(raw).map_err(|_| CommerceError::CouponInvalid))
            .transpose()?;
        let coupon = match &code {
            None => None,
            Some(code) => {
                let coupon = self
                    .store
                    .coupon(code.as_str(), now)
                    .await?
                    .filter(|c| c.user_id == user && c.usable)
                    .ok_or(CommerceError::CouponInvalid)?;
                Some(coupon)
            }
        };
        let (subtotal, discount, total) =
            model::totals(&items, currency, coupon.as_ref().map(|c| c.discount)).map_err(|e| {
                match e {
                    PricingError::CouponCurrency => CommerceError::CouponInvalid,
                    PricingError::MixedCurrencies | PricingError::Overflow => {
                        invalid("reservation_ids", "the total is too large")
                    }
                }
            })?;
        let order = Order {
            id: order_id,
            user_id: user,
            status: OrderStatus::PendingPayment,
            items,
            subtotal,
            discount,
            total,
            currency: currency.to_string(),
            coupon_code: code.map(|c| c.as_str().to_owned()),
            payment: Payment {
                provider: None,
                status: PaymentStatus::None,
                payment_key: None,
                approved_at: None,
                code: None,
            },
            refund: None,
            tickets: Vec::new(),
            expires_at: now + self.payment_window,
            created_at: now,
            updated_at: now,
            coupon_id: coupon.map(|c| c.id),
            attempts: 0,
        };
        match self.store.place(&order, now).await {
            Ok(()) => Ok(order),
            Err(PlaceError::NotHeld(id)) => {
                // Lost a race with the expiry sweep or a release.
                let status = self
                    .reservations
                    .store()
                    .reservation(id)
                    .await?
                    .map(|r| r.status);
                Err(match status {
                    Some(ReservationStatus::Expired | ReservationStatus::Held) => {
                        CommerceError::ReservationExpired(id)
                    }
                    Some(other) => CommerceError::ReservationNotHeld {
                        status: other.as_str(),
                    },
                    None => CommerceError::ReservationNotFound,
                })
            }
            Err(PlaceError::CouponTaken) => Err(CommerceError::CouponInvalid),
            Err(PlaceError::Database(e)) => Err(e.into()),
        }
    }

    /// One order: its owner's, or anyone's for readers.
    pub async fn order(&self, principal: &Principal, id: OrderId) -> Result<Order, CommerceError> {
        let order = self
            .store
            .order(id)
            .await?
            .ok_or(CommerceError::OrderNotFound)?;
        if order.user_id != principal.user_id && !principal.roles.is_reader() {
            return Err(CommerceError::Forbidden);
        }
        Ok(order)
    }

    /// The user's orders in id order.
    pub async fn mine(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, CommerceError> {
        let rows = self.store.list(Some(user), None, page).await?;
        Ok(Page::from_rows(rows, page, "orders", |o| o.id.0))
    }

    /// Every order, of `user` and in `status` if given (readers).
    pub async fn list(
        &self,
        _: &Reader,
        user: Option<UserId>,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>, CommerceError> {
        let rows = self.store.list(user, status, page).await?;
        Ok(Page::from_rows(rows, page, "orders", |o| o.id.0))
    }

    /// The order's history as the API shows it: its owner's, or anyone's
    /// for readers.
    pub async fn history_for(
        &self,
        principal: &Principal,
        id: OrderId,
    ) -> Result<OrderHistory, CommerceError> {
        let order = self.order(principal, id).await?;
        let entries = self
            .history(order.id)
            .await?
            .into_iter()
            .map(|(event, detail, at)| HistoryEntry { event, detail, at })
            .collect();
        Ok(OrderHistory {
            order_id: order.id,
            entries,
        })
    }

    /// The order's history, `(event, detail, at)` in order.
    pub async fn history(
        &self,
        id: OrderId,
    ) -> Result<Vec<(String, Option<String>, Timestamp)>, CommerceError> {
        Ok(self.store.history(id).await?)
    }

    /// Closes the unpaid order (no charge in flight) into `to`; if this call
    /// closed it, gives its units back. Whether it did.
    pub async fn close_unpaid(
        &self,
        id: OrderId,
        payment: PaymentStatus,
        to: OrderStatus,
        event: &'static str,
        due: Option<Timestamp>,
    ) -> Result<bool, CommerceError> {
        let now = self.clock.now();
        let Some(returned) = self
            .store
            .close_unpaid(
                id,
                Close {
                    payment,
                    to,
                    to_payment: None,
                    event,
                    due,
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

    /// Expires every unpaid order past its window, its units and coupon
    /// back; how many this call expired.
    pub async fn expire_due(&self) -> Result<usize, CommerceError> {
        let mut expired = 0;
        loop {
            let now = self.clock.now();
            let due = self.store.due(now, SWEEP_BATCH).await?;
            let round = due.len();
            for id in due {
                if self
                    .close_unpaid(
                        id,
                        PaymentStatus::None,
                        OrderStatus::Expired,
                        "EXPIRED",
                        Some(now),
                    )
                    .await?
                {
                    expired += 1;
                }
            }
            if round < usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX) {
                return Ok(expired);
            }
        }
    }
}
