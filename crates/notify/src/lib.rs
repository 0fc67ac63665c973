//! Notifiers: bus subscribers that reach people, and the operator alert.
//!
//! - [`email`]: templated plain-text + HTML email over SMTP ([`Mailer`]);
//!   without `smtp_url` a mail is logged (recipient's domain only) and
//!   counted, not sent. One subscriber per email, so each has its own
//!   retries and dead letters: [`RewardGrantedEmail`], [`OrderPaidEmail`]
//!   (with the ticket codes), [`OrderRefundedEmail`],
//!   [`WaitingListOfferedEmail`].
//! - [`slack`]: Slack-compatible incoming webhooks ([`SlackWebhook`]),
//!   `{"text": ...}` POSTs honouring `429 Retry-After`, and
//!   [`SlackSubscriber`] for a topic that should become a Slack message.
//! - [`alerts`]: [`DeadLetterAlarm`], one Slack message each time the dead
//!   letters grow by a threshold.
//!
//! Not a module: no tables. It learns a user's address through
//! [`contracts::identity::UserDirectory`], never from identity's crate.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod email;
pub mod mail;
pub mod slack;
pub mod templates;

pub use alerts::DeadLetterAlarm;
pub use email::{
    EmailSubscriber, Mailable, OrderPaidEmail, OrderRefundedEmail, RewardGrantedEmail,
    WaitingListOfferedEmail,
};
pub use mail::{Delivered, MailError, Mailer, Outgoing};
pub use slack::{SlackError, SlackSubscriber, SlackWebhook};

/// The part of an address after the last `@`, the only part that is ever
/// logged; `"?"` when there is none.
#[must_use]
pub fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("?", |(_, domain)| domain.trim_end_matches('>'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_domain_of_an_address_is_shown() {
        assert_eq!(super::domain_of("alice@example.com"), "example.com");
        assert_eq!(super::domain_of("Alice <alice@example.com>"), "example.com");
        assert_eq!(super::domain_of("nobody"), "?");
    }
}
