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

/// Sends `mail` after the request has answered: whether a message goes out (the account or
/// the pupil exists) and how long the SMTP server takes must not show in the answer's time or
/// content (security.md A4). Failures are logged. Until the outbox's dispatcher exists this is
/// the one way request handlers send mail.
pub fn send_detached(mailer: std::sync::Arc<dyn Mailer>, mail: Mail) {
    tokio::spawn(async move {
        let subject = mail.subject.clone();
        if let Err(e) = mailer.send(mail).await {
            match e {
                crate::Error::Internal(source) => tracing::error!(error = %source, %subject, "mail not sent"),
                other => tracing::warn!(error = %other, %subject, "mail not sent"),
            }
        }
    });
}
