//! Outgoing e-mail, behind a trait so the service can use SMTP in production, the log in
//! development, and tests a real SMTP server.
//!
//! Every message is rendered from the French templates of `domain/templates/` (askama:
//! compiled into the binary and checked against the values at build time, so a template
//! naming a missing value does not build; `.html` templates escape every value, `.txt` ones
//! do not). A message has a text part and an HTML part, sent as multipart/alternative.
//!
//! The account mails (verification, password reset, family-link code) are [`Message`]s: the
//! use case that creates the token writes the message to the outbox in the same transaction
//! ([`queue`]) and the dispatcher sends it, so a request never waits for, nor shows, an SMTP
//! exchange (security.md A4).

use std::future::Future;
use std::pin::Pin;

use askama::Template;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// One message: the same content as plain text and as HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The outbox topic of queued [`Message`]s.
pub const MAIL_TOPIC: &str = "mail";

/// The account mails, typed: the outbox carries these values, not rendered text. The single-use
/// secret inside (`token`, `code`) is erased from the outbox row once the mail went out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum Message {
    /// The code confirming a new account's address (valid 48 hours).
    VerifyEmail { to: String, name: String, token: String },
    /// The code choosing a new password (valid one hour; every session is then closed).
    PasswordReset { to: String, name: String, token: String },
    /// The family-link code sent to a guardian on the school record (valid 10 minutes). The
    /// child's given name only: the guardian knows the child, the mail says no more.
    LinkCode { to: String, child_given_name: String, code: String },
}

#[derive(Template)]
#[template(path = "verify_email.txt")]
struct VerifyText<'a> {
    name: &'a str,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyHtml<'a> {
    name: &'a str,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "password_reset.txt")]
struct ResetText<'a> {
    name: &'a str,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetHtml<'a> {
    name: &'a str,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "link_code.txt")]
struct LinkText<'a> {
    child_given_name: &'a str,
    code: &'a str,
}

#[derive(Template)]
#[template(path = "link_code.html")]
struct LinkHtml<'a> {
    child_given_name: &'a str,
    code: &'a str,
}

/// Both parts of a message from its two templates.
pub(crate) fn render(to: &str, subject: &str, text: &impl Template, html: &impl Template) -> Result<Mail> {
    Ok(Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: text.render().map_err(Error::internal)?,
        html: html.render().map_err(Error::internal)?,
    })
}

impl Message {
    pub fn to(&self) -> &str {
        match self {
            Message::VerifyEmail { to, .. } | Message::PasswordReset { to, .. } | Message::LinkCode { to, .. } => to,
        }
    }

    /// The message as sent.
    pub fn render(&self) -> Result<Mail> {
        match self {
            Message::VerifyEmail { to, name, token } => {
                render(to, "Confirmez votre adresse e-mail", &VerifyText { name, token }, &VerifyHtml { name, token })
            }
            Message::PasswordReset { to, name, token } => render(
                to,
                "Réinitialisation de votre mot de passe",
                &ResetText { name, token },
                &ResetHtml { name, token },
            ),
            Message::LinkCode { to, child_given_name, code } => render(
                to,
                "Code de rattachement Passerelle",
                &LinkText { child_given_name, code },
                &LinkHtml { child_given_name, code },
            ),
        }
    }

    /// The same message without its secret: what the outbox keeps once it was sent.
    pub fn without_secret(&self) -> Message {
        let mut m = self.clone();
        match &mut m {
            Message::VerifyEmail { token, .. } | Message::PasswordReset { token, .. } => token.clear(),
            Message::LinkCode { code, .. } => code.clear(),
        }
        m
    }

    /// Whether the secret is still there (false once sent).
    pub fn has_secret(&self) -> bool {
        match self {
            Message::VerifyEmail { token, .. } | Message::PasswordReset { token, .. } => !token.is_empty(),
            Message::LinkCode { code, .. } => !code.is_empty(),
        }
    }
}

/// Writes `message` to the outbox in the caller's transaction (the one creating its token or
/// code): it goes out once that commits, never otherwise. `account` is the account it concerns,
/// if any (staff see it beside a failed row). Returns the outbox row's id.
pub async fn queue<C: ConnectionTrait>(txn: &C, account: Option<Uuid>, message: &Message) -> Result<Uuid> {
    let payload = serde_json::to_string(message).map_err(Error::internal)?;
    crate::notify::insert_outbox(txn, MAIL_TOPIC, account, &payload).await
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
            tracing::info!(to = %mail.to, subject = %mail.subject, body = %mail.text, "mail (not sent: no SMTP configured)");
            Ok(())
        })
    }
}

/// Lines of at most 72 bytes in both parts: the message then travels as 8-bit text that reads
/// as written (lettre falls back to quoted-printable from 76 bytes with the line end).
#[cfg(test)]
pub(crate) fn assert_short_lines(mail: &Mail) {
    for part in [&mail.text, &mail.html] {
        assert!(part.lines().all(|l| l.len() <= 72), "a line over 72 bytes in {part}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(m: Message, subject: &str, text_has: &[&str]) -> Mail {
        let mail = m.render().unwrap();
        assert_eq!(mail.subject, subject);
        for part in [&mail.text, &mail.html] {
            for t in text_has {
                assert!(part.contains(t), "{t:?} missing in {part}");
            }
        }
        assert!(mail.html.starts_with("<!DOCTYPE html>") && mail.html.contains("lang=\"fr\""), "{}", mail.html);
        assert_short_lines(&mail);
        mail
    }

    #[test]
    fn a_verification_mail_gives_the_token_on_its_own_line_and_escapes_the_name_in_html() {
        let token = "a".repeat(43);
        let m = Message::VerifyEmail { to: "p@example.org".into(), name: "Nina <b>&".into(), token: token.clone() };
        let mail = check(m, "Confirmez votre adresse e-mail", &[&token, "48"]);
        assert!(mail.text.lines().any(|l| l == token), "{}", mail.text);
        assert!(mail.text.contains("Bonjour Nina <b>&,"), "text is not escaped: {}", mail.text);
        assert!(mail.html.contains("Nina &#60;b&#62;&#38;") && !mail.html.contains("<b>&"), "{}", mail.html);
    }

    #[test]
    fn a_reset_mail_says_sessions_close() {
        let m = Message::PasswordReset { to: "p@example.org".into(), name: "<x>".into(), token: "t0k3n".into() };
        let mail = check(m, "Réinitialisation de votre mot de passe", &["t0k3n", "sessions seront fermées"]);
        assert!(!mail.html.contains("<x>") && mail.html.contains("&#60;x&#62;"));
    }

    #[test]
    fn a_link_code_mail_names_the_child_by_given_name_only() {
        let m =
            Message::LinkCode { to: "g@example.org".into(), child_given_name: "Léa<".into(), code: "123456".into() };
        let mail = check(m, "Code de rattachement Passerelle", &["123456", "valable 10"]);
        assert!(mail.text.contains("Pass de Léa<"));
        assert!(mail.html.contains("Pass de Léa&#60;") && !mail.html.contains("Léa<"));
    }

    #[test]
    fn a_sent_message_keeps_no_secret_and_round_trips_through_json() {
        let m =
            Message::LinkCode { to: "g@example.org".into(), child_given_name: "Léa".into(), code: "123456".into() };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"message\":\"link_code\""), "{json}");
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
        let erased = m.without_secret();
        assert!(m.has_secret() && !erased.has_secret());
        assert!(!serde_json::to_string(&erased).unwrap().contains("123456"));
    }
}
