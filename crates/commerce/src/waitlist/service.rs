//! The waiting-list use cases: join while sold out, read your live rank,
//! leave, the readers' list, and the offer worker.
//!
//! Units that come back (release, expiry, a failed, expired or cancelled
//! order) go back to the product's pool as always, and a public hold will
//! not take them while anyone waits (its insert checks the list, ADR 0024).
//! The worker, woken by every give-back and running every second anyway,
//! finds the first `WAITING` entry whose quantity fits in what the gate has
//! left and claims the units for it through the gate's one protocol
//! ([`StockClaim::run`]), the offer's transaction (entry `OFFERED`, its
//! reservation, the bus message) being the claim's durable write. The gate
//! hands each unit out once and the entry's conditional update lets one
//! offer through, so a unit is never offered twice, however many workers
//! run; a crash anywhere leaves either no offer (the next round makes it)
//! or a whole one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bus::Envelope;
use contracts::commerce::WaitingListOffered;
use gate::{ClaimError, Holder, Refusal, StockClaim, Written};
use kernel::auth::Reader;
use kernel::{Page, PageRequest, SharedClock, Timestamp, UserId};

use super::model::{EntryStatus, NewEntry, WaitingListEntry, WaitingListEntryId, first_fitting};
use super::store::WaitlistStore;
use crate::error::CommerceError;
use crate::products::{Product, ProductId, ProductStore};
use crate::reservations::{
    Reservation, ReservationId, ReservationService, ReservationStatus, product_pool,
};

/// How many waiting entries, from the front, an offer looks through for
/// one that fits; an entry further back waits until those ahead move.
const LOOKAHEAD: i64 = 1000;
/// Offers one product gets in one round at most, so a long list cannot
/// hold the worker on one product.
const OFFERS_PER_ROUND: usize = 500;

pub struct WaitlistService {
    store: Arc<dyn WaitlistStore>,
    products: Arc<dyn ProductStore>,
    reservations: Arc<ReservationService>,
    clock: SharedClock,
    /// How long an offer's hold lasts (`waiting_list_offer_seconds`).
    offer_lasts: Duration,
}

impl std::fmt::Debug for WaitlistService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitlistService").finish_non_exhaustive()
    }
}

/// What one attempt to offer units to an entry did.
enum Attempt {
    Offered,
    /// The entry moved meanwhile (another worker, or the user left).
    EntryMoved,
    /// The gate had fewer units than the entry asks for after all.
    SoldOut,
    /// The user holds as many units as one user may.
    OverLimit,
}

impl WaitlistService {
    /// Offers last `offer_lasts`; `reservations` gives the products' gate
    /// and is what wakes the worker when units come back.
    #[must_use]
    pub fn new(
        store: Arc<dyn WaitlistStore>,
        products: Arc<dyn ProductStore>,
        reservations: Arc<ReservationService>,
        clock: SharedClock,
        offer_lasts: Duration,
    ) -> Self {
        Self {
            store,
            products,
            reservations,
            clock,
            offer_lasts,
        }
    }

    async fn product(&self, id: ProductId) -> Result<Product, CommerceError> {
        let product = self
            .products
            .product(id)
            .await?
            .ok_or(CommerceError::ProductNotFound)?;
        Ok(product)
    }

    /// Puts `user` on the product's waiting list for `quantity` units: only
    /// during the sale, only while a hold of that many would be refused as
    /// sold out, within the per-user limit, once per user at a time.
    pub async fn join(
        &self,
        user: UserId,
        product_id: ProductId,
        request: &NewEntry,
    ) -> Result<WaitingListEntry, CommerceError> {
        let quantity = request.quantity().map_err(CommerceError::Invalid)?;
        let product = self.product(product_id).await?;
        let now = self.clock.now();
        if !product.is_on_sale(now) {
            return Err(CommerceError::SaleNotOpen {
                starts_at: product.sale_starts_at,
                ends_at: product.sale_ends_at,
            });
        }
        if let Some(limit) = product.per_user_limit {
            let taken = self.store.units_taken(product_id, user).await?;
            if taken + u64::from(quantity) > u64::from(limit) {
                return Err(CommerceError::ProductLimitReached);
            }
        }
        let left = self
            .reservations
            .gate()
            .remaining(&product_pool(product_id))
            .await?;
        // Units left over that fit nobody ahead are the list's too.
        let sold_out = left.is_some_and(|left| left < u64::from(quantity))
            || self.store.has_waiting(product_id).await?;
        if !sold_out {
            return Err(CommerceError::NotSoldOut);
        }
        let mut entry = WaitingListEntry::join(product_id, user, quantity, now);
        if !self.store.insert(&entry).await? {
            return Err(CommerceError::AlreadyWaiting);
        }
        // Units already back that fit nobody ahead may fit this entry.
        self.reservations.returned().notify_one();
        entry.rank = Some(self.store.waiting_before(product_id, entry.id).await? + 1);
        Ok(entry)
    }

    /// The user's latest entry for the product, with its live rank.
    pub async fn mine(
        &self,
        user: UserId,
        product_id: ProductId,
    ) -> Result<WaitingListEntry, CommerceError> {
        let mut entry = self
            .store
            .latest_of(product_id, user)
            .await?
            .ok_or(CommerceError::NotWaiting)?;
        if entry.status == EntryStatus::Waiting {
            entry.rank = Some(self.store.waiting_before(product_id, entry.id).await? + 1);
        }
        Ok(entry)
    }

    /// Takes the user off the product's list (`LEFT`); an offer not yet
    /// ordered is given up, its units going to the next entry.
    pub async fn leave(&self, user: UserId, product_id: ProductId) -> Result<(), CommerceError> {
        let left = self
            .store
            .leave(product_id, user, self.clock.now())
            .await?
            .ok_or(CommerceError::NotWaiting)?;
        if let Some(reservation) = left.reservation_id {
            self.reservations
                .give_back(
                    reservation,
                    &[ReservationStatus::Held],
                    ReservationStatus::Released,
                    None,
                )
                .await?;
        }
        Ok(())
    }

    /// The product's entries in join order, each `WAITING` one with its rank.
    pub async fn list(
        &self,
        _: &Reader,
        product_id: ProductId,
        page: PageRequest,
    ) -> Result<Page<WaitingListEntry>, CommerceError> {
        self.product(product_id).await?;
        let rows = self.store.of_product(product_id, page).await?;
        let mut page = Page::from_rows(rows, page, "waiting-list", |e| e.id.0);
        let first_waiting = page
            .items
            .iter()
            .find(|e| e.status == EntryStatus::Waiting)
            .map(|e| e.id);
        if let Some(first) = first_waiting {
            let mut rank = self.store.waiting_before(product_id, first).await?;
            for entry in &mut page.items {
                if entry.status == EntryStatus::Waiting {
                    rank += 1;
                    entry.rank = Some(rank);
                }
            }
        }
        Ok(page)
    }

    /// One round of the worker: writes down what the offers became, then
    /// offers every product's free units to its waiting list; the offers
    /// made. A product whose round fails is logged and left to the next.
    pub async fn offer_round(&self) -> Result<usize, CommerceError> {
        self.store.settle_offers(self.clock.now()).await?;
        let mut offered = 0;
        for product in self.store.waiting_products().await? {
            match self.offer_units(product).await {
                Ok(n) => offered += n,
                Err(error) => {
                    tracing::warn!(%product, %error, "waiting-list offers failed; retried next round");
                }
            }
        }
        Ok(offered)
    }

    /// Runs [`Self::offer_round`] at once whenever units come back, and
    /// every `period` anyway (a give-back on another instance, a lease the
    /// sweep gave back, a round that failed), until `stop` resolves.
    pub async fn run(&self, period: Duration, stop: impl Future<Output = ()>) {
        let returned = Arc::clone(self.reservations.returned());
        tokio::pin!(stop);
        loop {
            match self.offer_round().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(offered = n, "waiting-list offers made"),
                Err(error) => tracing::warn!(%error, "the waiting-list round failed"),
            }
            tokio::select! {
                () = &mut stop => return,
                () = returned.notified() => {}
                () = tokio::time::sleep(period) => {}
            }
        }
    }

    /// Offers the product's free units to the first entries they fit, while
    /// the sale is open; how many offers it made.
    async fn offer_units(&self, product_id: ProductId) -> Result<usize, CommerceError> {
        let product = self.product(product_id).await?;
        let pool = product_pool(product_id);
        let mut offered = 0;
        while offered < OFFERS_PER_ROUND {
            let now = self.clock.now();
            if !product.is_on_sale(now) {
                break;
            }
            let left = self.reservations.gate().remaining(&pool).await?;
            if left == Some(0) {
                break;
            }
            let waiting = self.store.waiting(product_id, LOOKAHEAD).await?;
            let Some(&(entry, user, quantity)) = first_fitting(&waiting, left) else {
                break;
            };
            match self.offer(&product, entry, user, quantity, now).await? {
                Attempt::Offered => offered += 1,
                Attempt::EntryMoved => {}
                // A hold in flight has them; its refusal wakes us again.
                Attempt::SoldOut => break,
                Attempt::OverLimit => {
                    // The user took units since joining: they no longer
                    // fit, and the entry would block the list for ever.
                    self.store.expire_waiting(entry, now).await?;
                }
            }
        }
        Ok(offered)
    }

    /// Claims `quantity` units for the entry through the gate, its durable
    /// write being the offer's transaction.
    async fn offer(
        &self,
        product: &Product,
        entry: WaitingListEntryId,
        user: UserId,
        quantity: u32,
        now: Timestamp,
    ) -> Result<Attempt, CommerceError> {
        let reservation = Reservation::held_for(
            ReservationId::new(),
            product.id,
            user,
            quantity,
            now,
            self.offer_lasts,
        );
        let announce = Envelope::new(
            &WaitingListOffered {
                entry_id: entry,
                product_id: product.id,
                product_name: product.name.to_string(),
                user_id: user,
                quantity,
                reservation_id: reservation.id,
                offered_at: now,
                offer_expires_at: reservation.expires_at,
            },
            now,
        )
        .map_err(|e| CommerceError::Internal(format!("cannot encode an offer: {e}")))?;
        let claim = StockClaim {
            pool: product_pool(product.id),
            holder: Holder::from(user),
            lease: reservation.id.to_string(),
            quantity,
        };
        let store = Arc::clone(&self.store);
        let attempt = claim
            .run(Arc::clone(self.reservations.gate()), move |_| async move {
                match store.offer(entry, &reservation, &announce).await {
                    Ok(true) => Written::Durable(Ok(Attempt::Offered)),
                    Ok(false) => Written::NotWritten(Ok(Attempt::EntryMoved)),
                    Err(e) if kernel::db::may_have_committed(&e) => {
                        Written::Unknown(Err(CommerceError::Database(e)))
                    }
                    Err(e) => Written::NotWritten(Err(CommerceError::Database(e))),
                }
            })
            .await;
        match attempt {
            Ok(answer) => answer,
            Err(ClaimError::Refused(Refusal::SoldOut)) => Ok(Attempt::SoldOut),
            Err(ClaimError::Refused(Refusal::LimitReached)) => Ok(Attempt::OverLimit),
            Err(other) => Err(other.into()),
        }
    }
}
