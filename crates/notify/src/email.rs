//! The email subscribers: one per email, each with its own name (so its
//! own retries and dead letters). A handler decodes its message, asks
//! identity for the recipient's address, renders its template and sends.
//!
//! Email is at least once: a crash after the SMTP server took a mail but
//! before the delivery was marked done sends it again, with the same
//! `Message-ID`.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError, Message};
use contracts::commerce::WaitingListOffered;
use contracts::identity::UserDirectory;
use contracts::rewards::RewardGranted;
use kernel::UserId;

use crate::mail::{Mailer, Outgoing};
use crate::templates::{Email, RewardGrantedMail, WaitingListOfferedMail};

/// "You were granted a reward", on `rewards.reward_granted`.
pub struct RewardGrantedEmail {
    directory: Arc<dyn UserDirectory>,
    mailer: Arc<Mailer>,
}

impl RewardGrantedEmail {
    /// The subscriber's name: part of the inbox key, never rename it.
    pub const NAME: &'static str = "notify.reward_granted_email";

    #[must_use]
    pub fn new(directory: Arc<dyn UserDirectory>, mailer: Arc<Mailer>) -> Self {
        Self { directory, mailer }
    }
}

#[async_trait]
impl Handler for RewardGrantedEmail {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &'static [&'static str] {
        &[RewardGranted::TOPIC]
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let granted: RewardGranted = message
            .decode()
            .map_err(|e| HandlerError(format!("not a reward grant: {e}")))?;
        let mail = RewardGrantedMail::new(
            &granted.reward,
            granted.request_id.to_string(),
            granted.granted_at.to_string(),
        );
        send_to(
            self.directory.as_ref(),
            &self.mailer,
            granted.user_id,
            &mail,
            message,
        )
        .await
    }
}

/// "Units came back for you", on `commerce.waiting_list_offered`.
pub struct WaitingListOfferedEmail {
    directory: Arc<dyn UserDirectory>,
    mailer: Arc<Mailer>,
}

impl WaitingListOfferedEmail {
    /// The subscriber's name: part of the inbox key, never rename it.
    pub const NAME: &'static str = "notify.waiting_list_offered_email";

    #[must_use]
    pub fn new(directory: Arc<dyn UserDirectory>, mailer: Arc<Mailer>) -> Self {
        Self { directory, mailer }
    }
}

#[async_trait]
impl Handler for WaitingListOfferedEmail {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &'static [&'static str] {
        &[WaitingListOffered::TOPIC]
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let offered: WaitingListOffered = message
            .decode()
            .map_err(|e| HandlerError(format!("not a waiting-list offer: {e}")))?;
        let mail = WaitingListOfferedMail {
            product: offered.product_name,
            quantity: offered.quantity,
            reservation_id: offered.reservation_id.to_string(),
            offer_expires_at: offered.offer_expires_at.to_string(),
        };
        send_to(
            self.directory.as_ref(),
            &self.mailer,
            offered.user_id,
            &mail,
            message,
        )
        .await
    }
}

/// Sends `email` to `user`'s address. An unknown user is nobody to write
/// to: logged, and the delivery is done. Every other failure is retried.
async fn send_to(
    directory: &dyn UserDirectory,
    mailer: &Mailer,
    user: UserId,
    email: &impl Email,
    message: &Envelope,
) -> Result<(), HandlerError> {
    let Some(address) = directory
        .email_of(user)
        .await
        .map_err(|e| HandlerError(format!("cannot look up the recipient: {e}")))?
    else {
        tracing::warn!(template = email.name(), user_id = %user, message_id = %message.id,
            "email not sent: no such user");
        return Ok(());
    };
    let outgoing =
        Outgoing::compose(email, address, message.id).map_err(|e| HandlerError(e.to_string()))?;
    mailer
        .send(&outgoing)
        .await
        .map(drop)
        .map_err(|e| HandlerError(e.to_string()))
}
