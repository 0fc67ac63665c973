//! The ticket use cases: the caller's tickets, and check-in at the door.

use std::sync::Arc;

use kernel::auth::Staff;
use kernel::{Page, PageRequest, SharedClock, UserId};

use super::model::{CheckIn, NewCheckIn, Ticket};
use super::store::TicketStore;
use crate::error::CommerceError;

pub struct TicketService {
    store: Arc<dyn TicketStore>,
    clock: SharedClock,
}

impl std::fmt::Debug for TicketService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketService").finish_non_exhaustive()
    }
}

impl TicketService {
    #[must_use]
    pub fn new(store: Arc<dyn TicketStore>, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// The user's tickets in id order.
    pub async fn mine(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<Ticket>, CommerceError> {
        let rows = self.store.of_user(user, page).await?;
        Ok(Page::from_rows(rows, page, "tickets", |t| t.id.0))
    }

    /// Redeems a ticket once (staff); a repeated nonce replays its answer.
    pub async fn check_in(
        &self,
        _: &Staff,
        request: &NewCheckIn,
    ) -> Result<CheckIn, CommerceError> {
        let (code, nonce) = request.checked().map_err(CommerceError::Invalid)?;
        Ok(self.store.check_in(code, nonce, self.clock.now()).await?)
    }
}
