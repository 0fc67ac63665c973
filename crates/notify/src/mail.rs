//! Sending one email: over SMTP when `smtp_url` is set, else logged and
//! counted. Every attempt counts in `notify_emails_total{outcome}` as
//! `sent`, `logged` or `failed`. Neither the SMTP URL (it may hold a
//! password) nor a recipient's full address is ever logged: a recipient
//! shows as its domain.

use std::time::Duration;

use kernel::Secret;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::domain_of;
use crate::templates::Email;

/// How long one SMTP exchange may take; well under the bus's 30 s lease.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An email ready to go.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: String,
    /// The template's name, for logs.
    pub template: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `Message-ID`: the same for every attempt of one delivery, so a mail
    /// sent twice (a crash after sending, before the delivery was marked
    /// done) is recognisably one.
    pub message_id: String,
}

impl Outgoing {
    /// Renders `email` for `to`; `key` (the bus message's id) makes the
    /// `Message-ID`.
    pub fn compose(email: &impl Email, to: String, key: uuid::Uuid) -> Result<Self, MailError> {
        let template = email.name();
        let failed = |e: askama::Error| MailError::Template(template, e.to_string());
        Ok(Self {
            to,
            template,
            subject: email.subject(),
            text: email.text().map_err(failed)?,
            html: email.html().map_err(failed)?,
            message_id: format!("<{key}@stampede.notify>"),
        })
    }
}

/// What became of a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Accepted by the SMTP server.
    Sent,
    /// No SMTP configured: logged, not sent.
    Logged,
}

/// Why a mail could not be sent (the delivery is retried).
#[derive(Debug, Clone, thiserror::Error)]
pub enum MailError {
    #[error("smtp_url is not an SMTP URL (smtp://HOST:PORT, smtps://…, ?tls=required)")]
    BadUrl,
    #[error("mail_from is not an address: {0}")]
    BadFrom(String),
    /// Names the recipient's domain only.
    #[error("the recipient (at {0}) is not an address")]
    BadRecipient(String),
    #[error("template {0}: {1}")]
    Template(&'static str, String),
    #[error("building the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

/// Sends mail from `mail_from`, over SMTP or into the log.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Log => "log",
        };
        f.debug_struct("Mailer")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// SMTP at `smtp_url` when given (`smtp://` plain, `smtps://` TLS,
    /// `?tls=required` STARTTLS, credentials in the URL), else the log.
    /// Connects lazily: a server that is down fails deliveries, not the
    /// start. Call it inside the Tokio runtime (the SMTP pool lives there).
    pub fn new(smtp_url: Option<&Secret<String>>, mail_from: &str) -> Result<Self, MailError> {
        let from = parse_from(mail_from)?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(smtp_builder(url)?.timeout(Some(SMTP_TIMEOUT)).build()),
            None => Transport::Log,
        };
        Ok(Self { transport, from })
    }

    /// Checks the settings [`Mailer::new`] takes, without building anything.
    pub fn check(smtp_url: Option<&Secret<String>>, mail_from: &str) -> Result<(), MailError> {
        parse_from(mail_from)?;
        smtp_url.map(smtp_builder).transpose()?;
        Ok(())
    }

    /// A mailer that only logs, from `mail_from`.
    pub fn log_only(mail_from: &str) -> Result<Self, MailError> {
        Self::new(None, mail_from)
    }

    /// Whether mail is really sent.
    #[must_use]
    pub fn sends(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// Sends (or logs) one mail and counts the outcome.
    pub async fn send(&self, mail: &Outgoing) -> Result<Delivered, MailError> {
        let outcome = self.deliver(mail).await;
        let label = match &outcome {
            Ok(Delivered::Sent) => "sent",
            Ok(Delivered::Logged) => "logged",
            Err(_) => "failed",
        };
        metrics::counter!("notify_emails_total", "outcome" => label).increment(1);
        let domain = domain_of(&mail.to);
        match &outcome {
            Ok(Delivered::Sent) => {
                tracing::info!(
                    template = mail.template,
                    recipient_domain = domain,
                    "email sent"
                );
            }
            Ok(Delivered::Logged) => tracing::info!(
                template = mail.template,
                recipient_domain = domain,
                subject = %mail.subject,
                "email not sent (no smtp_url): logged"
            ),
            Err(error) => tracing::warn!(
                template = mail.template,
                recipient_domain = domain,
                %error,
                "email failed"
            ),
        }
        outcome
    }

    async fn deliver(&self, mail: &Outgoing) -> Result<Delivered, MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::BadRecipient(domain_of(&mail.to).to_owned()))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(mail.message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Log => Ok(Delivered::Logged),
            Transport::Smtp(transport) => {
                transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Smtp(e.to_string()))?;
                Ok(Delivered::Sent)
            }
        }
    }
}

fn parse_from(mail_from: &str) -> Result<Mailbox, MailError> {
    mail_from
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::BadFrom(e.to_string()))
}

/// The parse error is not passed on: it could quote the URL.
fn smtp_builder(
    url: &Secret<String>,
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, MailError> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose()).map_err(|_| MailError::BadUrl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_settings_are_refused_without_quoting_the_url() {
        let url = Secret::new("ftp://user:hunter2@mail.example.com".to_owned());
        let err = Mailer::new(Some(&url), "no-reply@example.com").expect_err("not smtp");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(Mailer::log_only("not an address").is_err());
        assert!(Mailer::check(Some(&url), "no-reply@example.com").is_err());
        assert!(Mailer::check(None, "no-reply@example.com").is_ok());
        let ok = Mailer::new(
            Some(&Secret::new("smtp://127.0.0.1:2525".to_owned())),
            "Stampede <no-reply@example.com>",
        )
        .expect("an smtp url");
        assert!(ok.sends());
        assert!(!format!("{ok:?}").contains("2525"));
    }
}
