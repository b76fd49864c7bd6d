//! Outgoing e-mail, behind a trait so the service can use SMTP in production, the log in
//! development, and tests a real SMTP server.

use std::future::Future;
use std::pin::Pin;

use crate::error::Result;

/// One plain-text message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

pub type MailFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Sends mail. Implementations must not log message bodies in production (they hold tokens).
pub trait Mailer: Send + Sync {
    fn send(&self, mail: Mail) -> MailFuture<'_>;
}

/// Development: writes the message to the log instead of sending it.
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send(&self, mail: Mail) -> MailFuture<'_> {
        Box::pin(async move {
            tracing::info!(to = %mail.to, subject = %mail.subject, body = %mail.body, "mail (not sent: no SMTP configured)");
            Ok(())
        })
    }
}
