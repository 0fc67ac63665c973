//! The reservation use cases. A hold claims its units through the gate's
//! one protocol ([`StockClaim::run`]), its reservation's insert being the
//! durable write. Units go back only after a conditional status update
//! changed the row ([`ReservationStore::move_status`]): the database decides
//! which of release, expiry, order failure or cancel gives them back.

use std::sync::Arc;

use gate::{Holder, PoolId, StockClaim, StockGate, Written};
use kernel::{IdempotentEffect, Page, PageRequest, Principal, SharedClock, Timestamp, UserId};
use tokio::sync::Notify;

use super::model::{NewReservation, Reservation, ReservationId, ReservationStatus};
use super::stock::product_pool;
use super::store::ReservationStore;
use crate::error::CommerceError;
use crate::products::{ProductId, ProductStore};

/// Expired holds handled by one round of the sweep.
const SWEEP_BATCH: i64 = 500;

pub struct ReservationService {
    store: Arc<dyn ReservationStore>,
    products: Arc<dyn ProductStore>,
    clock: SharedClock,
    gate: Arc<dyn StockGate>,
    /// Woken whenever units come back to a product's pool (and when a hold
    /// is refused for the waiting list's sake), so the waiting list's
    /// worker offers them at once instead of at its next round.
    returned: Arc<Notify>,
}

impl std::fmt::Debug for ReservationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReservationService").finish_non_exhaustive()
    }
}

impl ReservationService {
    /// `gate` holds each product's units as the pool [`product_pool`]; build
    /// it with a [`ProductStockLoader`](super::ProductStockLoader) over `store`.
    #[must_use]
    pub fn new(
        store: Arc<dyn ReservationStore>,
        products: Arc<dyn ProductStore>,
        clock: SharedClock,
        gate: Arc<dyn StockGate>,
    ) -> Self {
        Self {
            store,
            products,
            clock,
            gate,
            returned: Arc::new(Notify::new()),
        }
    }

    /// The products' gate, for the waiting list's offers.
    #[must_use]
    pub fn gate(&self) -> &Arc<dyn StockGate> {
        &self.gate
    }

    /// Notified each time units come back to a product's pool.
    #[must_use]
    pub fn returned(&self) -> &Arc<Notify> {
        &self.returned
    }

    /// The store, for the modules that move reservations with orders.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ReservationStore> {
        &self.store
    }

    /// Holds `quantity` units of the product for `user`, all or none:
    /// refused outside the sale window, when fewer are left (units that
    /// came back while someone waits are the waiting list's), or when the
    /// user would then hold, order or own more than the per-user limit. A
    /// keyed request's reservation takes the key's effect id; a retry of one
    /// that may have held answers with that reservation.
    pub async fn hold(
        &self,
        user: UserId,
        product_id: ProductId,
        request: &NewReservation,
        effect: Option<IdempotentEffect>,
    ) -> Result<Reservation, CommerceError> {
        let quantity = request.quantity().map_err(CommerceError::Invalid)?;
        let id = effect.map_or_else(ReservationId::new, |e| ReservationId(e.id));
        if effect.is_some_and(|e| e.retry)
            && let Some(first) = self.store.reservation(id).await?
        {
            if first.user_id != user || first.product_id != product_id {
                return Err(CommerceError::Internal(format!(
                    "the effect {id} of a retried key is another request's reservation"
                )));
            }
            return Ok(first);
        }
        let product = self
            .products
            .product(product_id)
            .await?
            .ok_or(CommerceError::ProductNotFound)?;
        let now = self.clock.now();
        if !product.is_on_sale(now) {
            return Err(CommerceError::SaleNotOpen {
                starts_at: product.sale_starts_at,
                ends_at: product.sale_ends_at,
            });
        }
        let reservation = Reservation::hold(id, &product, user, quantity, now);
        let claim = StockClaim {
            pool: product_pool(product_id),
            holder: Holder::from(user),
            lease: id.to_string(),
            quantity,
        };
        let (store, returned) = (Arc::clone(&self.store), Arc::clone(&self.returned));
        claim
            .run(Arc::clone(&self.gate), move |_| async move {
                match store.insert(&reservation).await {
                    Ok(true) => Written::Durable(Ok(reservation)),
                    Ok(false) => {
                        // Free units, but someone waits for them: theirs.
                        returned.notify_one();
                        Written::NotWritten(Err(CommerceError::ProductSoldOut))
                    }
                    Err(e) if kernel::db::may_have_committed(&e) => {
                        Written::Unknown(Err(CommerceError::Database(e)))
                    }
                    Err(e) => Written::NotWritten(Err(CommerceError::Database(e))),
                }
            })
            .await
            .map_err(|e| match e {
                gate::ClaimError::Refused(gate::Refusal::SoldOut) => CommerceError::ProductSoldOut,
                gate::ClaimError::Refused(gate::Refusal::LimitReached) => {
                    CommerceError::ProductLimitReached
                }
                other => other.into(),
            })?
    }

    /// The owner lets a `HELD` reservation go: `RELEASED`, its units back.
    pub async fn release(
        &self,
        principal: &Principal,
        id: ReservationId,
    ) -> Result<(), CommerceError> {
        let reservation = self
            .store
            .reservation(id)
            .await?
            .ok_or(CommerceError::ReservationNotFound)?;
        if reservation.user_id != principal.user_id {
            return Err(CommerceError::Forbidden);
        }
        let moved = self
            .give_back(
                id,
                &[ReservationStatus::Held],
                ReservationStatus::Released,
                None,
            )
            .await?;
        if moved.is_none() {
            let status = self
                .store
                .reservation(id)
                .await?
                .map_or(reservation.status, |r| r.status);
            return Err(CommerceError::ReservationNotHeld {
                status: status.as_str(),
            });
        }
        Ok(())
    }

    /// Moves the reservation from one of `from` to `to` (with `due`, only if
    /// it expired by then) and, if this call moved it, gives its units back
    /// to the gate: exactly once, whoever else tries. `None` if another
    /// caller moved it first.
    pub async fn give_back(
        &self,
        id: ReservationId,
        from: &[ReservationStatus],
        to: ReservationStatus,
        due: Option<Timestamp>,
    ) -> Result<Option<Reservation>, CommerceError> {
        let now = self.clock.now();
        let Some(moved) = self.store.move_status(id, from, to, due, now).await? else {
            return Ok(None);
        };
        self.return_units(&moved).await;
        Ok(Some(moved))
    }

    /// Gives a reservation's units back to its pool and wakes the waiting
    /// list's worker. The database already says they are back; a gate that
    /// cannot hear it now is repaired by reconciliation (and the in-memory
    /// gate by a restart).
    pub async fn return_units(&self, reservation: &Reservation) {
        let pool: PoolId = product_pool(reservation.product_id);
        let holder = Holder::from(reservation.user_id);
        if let Err(error) = self
            .gate
            .give_back(&pool, holder.as_str(), reservation.quantity)
            .await
        {
            tracing::error!(%pool, reservation = %reservation.id, %error,
                "could not give back the units of a reservation; reconcile the stock gate");
        }
        self.returned.notify_one();
    }

    /// One reservation: its owner's, or anyone's for readers.
    pub async fn reservation(
        &self,
        principal: &Principal,
        id: ReservationId,
    ) -> Result<Reservation, CommerceError> {
        let reservation = self
            .store
            .reservation(id)
            .await?
            .ok_or(CommerceError::ReservationNotFound)?;
        if reservation.user_id != principal.user_id && !principal.roles.is_reader() {
            return Err(CommerceError::Forbidden);
        }
        Ok(reservation)
    }

    /// The user's reservations in id order.
    pub async fn mine(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<Reservation>, CommerceError> {
        let rows = self.store.of_user(user, page).await?;
        Ok(Page::from_rows(rows, page, "reservations", |r| r.id.0))
    }

    /// Expires every `HELD` reservation past its `expires_at`, its units
    /// back, in rounds of a bounded batch; how many this call expired.
    pub async fn expire_due(&self) -> Result<usize, CommerceError> {
        let mut expired = 0;
        loop {
            let now = self.clock.now();
            let due = self.store.due(now, SWEEP_BATCH).await?;
            let round = due.len();
            for id in due {
                if self
                    .give_back(
                        id,
                        &[ReservationStatus::Held],
                        ReservationStatus::Expired,
                        Some(now),
                    )
                    .await?
                    .is_some()
                {
                    expired += 1;
                }
            }
            if round < usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX) {
                return Ok(expired);
            }
        }
    }

    /// Every product pool, for the server's reconciliation (no caller).
    pub async fn pools(&self) -> Result<Vec<PoolId>, CommerceError> {
        Ok(self
            .store
            .limited_products()
            .await?
            .into_iter()
            .map(product_pool)
            .collect())
    }
}
