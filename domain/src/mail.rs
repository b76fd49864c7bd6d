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

/// The messages the service sends, typed: what a message says is written once, here, and the
/// outbox of the notification feature will carry these values rather than rendered text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The code confirming a new account's address (valid 48 hours).
    VerifyEmail { to: String, name: String, token: String },
    /// The code choosing a new password (valid one hour; every session is then closed).
    PasswordReset { to: String, name: String, token: String },
    /// The family-link code sent to a guardian on the school record (valid 10 minutes).
    LinkCode { to: String, child_given_name: String, code: String },
}

impl From<Message> for Mail {
    /// Lines under 76 characters: the message then travels as readable 8-bit text.
    fn from(m: Message) -> Mail {
        match m {
            Message::VerifyEmail { to, name, token } => Mail {
                to,
                subject: "Confirmez votre adresse e-mail".into(),
                body: format!(
                    "Bonjour {name},\n\nPour confirmer votre adresse, saisissez ce code\ndans l'application Passerelle :\n\n{token}\n\nIl est valable 48 heures.\n"
                ),
            },
            Message::PasswordReset { to, name, token } => Mail {
                to,
                subject: "Réinitialisation de votre mot de passe".into(),
                body: format!(
                    "Bonjour {name},\n\nPour choisir un nouveau mot de passe, saisissez ce code\ndans l'application Passerelle :\n\n{token}\n\n\
                     Il est valable une heure. Toutes vos sessions seront fermées.\n"
                ),
            },
            Message::LinkCode { to, child_given_name, code } => Mail {
                to,
                subject: "Code de rattachement Passerelle".into(),
                body: format!(
                    "Bonjour,\n\nUne demande de rattachement au Pass de {child_given_name}\na été faite depuis l'application Passerelle.\n\n\
                     Code de confirmation : {code}\n\nCe code est valable 10 minutes. Si vous n'êtes pas\n\
                     à l'origine de cette demande, ignorez ce message.\n"
                ),
            },
        }
    }
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
pub fn send_detached(mailer: std::sync::Arc<dyn Mailer>, message: Message) {
    let mail = Mail::from(message);
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
