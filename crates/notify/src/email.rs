//! The email subscribers: one per email, each with its own name (so its
//! own retries and dead letters). An [`EmailSubscriber`] decodes its
//! message, asks identity for the recipient's address, renders its
//! template and sends; what differs between emails is a [`Mailable`]
//! message: its subscriber name, its recipient and its mail.
//!
//! Email is at least once: a crash after the SMTP server took a mail but
//! before the delivery was marked done sends it again, with the same
//! `Message-ID`.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError, Message};
use contracts::commerce::{OrderPaid, OrderRefunded, WaitingListOffered};
use contracts::identity::UserDirectory;
use contracts::rewards::RewardGranted;
use kernel::UserId;

use crate::mail::{Mailer, Outgoing};
use crate::templates::{
    Email, OrderPaidMail, OrderRefundedMail, RewardGrantedMail, WaitingListOfferedMail,
};

/// A bus message that becomes one email to one user.
pub trait Mailable: Message + Send + Sync + 'static {
    /// The subscriber's name: part of the inbox key, never rename it.
    const SUBSCRIBER: &'static str;
    /// `[Self::TOPIC]`, as the bus wants its topics.
    const TOPICS: &'static [&'static str];
    type Mail: Email + Send + Sync;
    fn recipient(&self) -> UserId;
    fn mail(&self) -> Self::Mail;
}

impl Mailable for RewardGranted {
    const SUBSCRIBER: &'static str = "notify.reward_granted_email";
    const TOPICS: &'static [&'static str] = &[Self::TOPIC];
    type Mail = RewardGrantedMail;
    fn recipient(&self) -> UserId {
        self.user_id
    }
    fn mail(&self) -> RewardGrantedMail {
        RewardGrantedMail::new(
            &self.reward,
            self.request_id.to_string(),
            self.granted_at.to_string(),
        )
    }
}

impl Mailable for OrderPaid {
    const SUBSCRIBER: &'static str = "notify.order_paid_email";
    const TOPICS: &'static [&'static str] = &[Self::TOPIC];
    type Mail = OrderPaidMail;
    fn recipient(&self) -> UserId {
        self.user_id
    }
    fn mail(&self) -> OrderPaidMail {
        OrderPaidMail::new(self)
    }
}

impl Mailable for OrderRefunded {
    const SUBSCRIBER: &'static str = "notify.order_refunded_email";
    const TOPICS: &'static [&'static str] = &[Self::TOPIC];
    type Mail = OrderRefundedMail;
    fn recipient(&self) -> UserId {
        self.user_id
    }
    fn mail(&self) -> OrderRefundedMail {
        OrderRefundedMail::new(self)
    }
}

impl Mailable for WaitingListOffered {
    const SUBSCRIBER: &'static str = "notify.waiting_list_offered_email";
    const TOPICS: &'static [&'static str] = &[Self::TOPIC];
    type Mail = WaitingListOfferedMail;
    fn recipient(&self) -> UserId {
        self.user_id
    }
    fn mail(&self) -> WaitingListOfferedMail {
        WaitingListOfferedMail {
            product: self.product_name.clone(),
            quantity: self.quantity,
            reservation_id: self.reservation_id.to_string(),
            offer_expires_at: self.offer_expires_at.to_string(),
        }
    }
}

/// Mails each message of type `M` to its recipient.
pub struct EmailSubscriber<M> {
    directory: Arc<dyn UserDirectory>,
    mailer: Arc<Mailer>,
    message: PhantomData<fn() -> M>,
}

impl<M: Mailable> EmailSubscriber<M> {
    /// The subscriber's name: part of the inbox key, never rename it.
    pub const NAME: &'static str = M::SUBSCRIBER;

    #[must_use]
    pub fn new(directory: Arc<dyn UserDirectory>, mailer: Arc<Mailer>) -> Self {
        Self {
            directory,
            mailer,
            message: PhantomData,
        }
    }
}

/// "You were granted a reward", on `rewards.reward_granted`.
pub type RewardGrantedEmail = EmailSubscriber<RewardGranted>;
/// "Your order is paid" with its ticket codes, on `commerce.order_paid`.
pub type OrderPaidEmail = EmailSubscriber<OrderPaid>;
/// "Your refund", on `commerce.order_refunded`.
pub type OrderRefundedEmail = EmailSubscriber<OrderRefunded>;
/// "Units came back for you", on `commerce.waiting_list_offered`.
pub type WaitingListOfferedEmail = EmailSubscriber<WaitingListOffered>;

#[async_trait]
impl<M: Mailable> Handler for EmailSubscriber<M> {
    fn name(&self) -> &'static str {
        M::SUBSCRIBER
    }

    fn topics(&self) -> &'static [&'static str] {
        M::TOPICS
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let decoded: M = message
            .decode()
            .map_err(|e| HandlerError(format!("not a {}: {e}", M::TOPIC)))?;
        send_to(
            self.directory.as_ref(),
            &self.mailer,
            decoded.recipient(),
            &decoded.mail(),
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
