//! The e-mails of notifications, rendered from `domain/templates/` (`pass_event.*`,
//! `request.*`), and the sending of queued account mails (topic `mail`).
//!
//! A pass event's mail names the child by given name at most (the parent knows which child;
//! nothing more of a minor's data leaves the service), and no amount: the app shows those
//! after sign-in.

use std::sync::Arc;

use askama::Template;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::NotificationKind;
use super::dispatch::{DispatchReport, Undelivered, delivered, record, retry};
use super::topics::{RequestPayload, RequestStatus, parse};
use crate::db::stmt;
use crate::error::Result;
use crate::mail::{MAIL_TOPIC, Mail, Mailer, Message, render};

/// What a notification's e-mail tells of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventMail {
    /// A change to a child's pass; `child` is the given name when known.
    Pass { kind: NotificationKind, event_id: Uuid, child: Option<String> },
    /// A change to the family's request.
    Request { kind: NotificationKind, request_id: Uuid, status: RequestStatus },
}

#[derive(Template)]
#[template(path = "pass_event.txt")]
struct PassText<'a> {
    kind: NotificationKind,
    child: &'a str,
    event_id: Uuid,
}

#[derive(Template)]
#[template(path = "pass_event.html")]
struct PassHtml<'a> {
    title: &'a str,
    kind: NotificationKind,
    child: &'a str,
    event_id: Uuid,
}

#[derive(Template)]
#[template(path = "request.txt")]
struct RequestText {
    kind: NotificationKind,
    status: RequestStatus,
    request_id: Uuid,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestHtml<'a> {
    title: &'a str,
    kind: NotificationKind,
    status: RequestStatus,
    request_id: Uuid,
}

impl EventMail {
    pub fn kind(&self) -> NotificationKind {
        match self {
            EventMail::Pass { kind, .. } | EventMail::Request { kind, .. } => *kind,
        }
    }

    /// The mail to `to`.
    pub fn render(&self, to: &str) -> Result<Mail> {
        let title = self.kind().title();
        let subject = format!("Pass+ : {title}");
        match self {
            EventMail::Pass { kind, event_id, child } => {
                let child = child.as_deref().unwrap_or("votre enfant");
                let (kind, event_id) = (*kind, *event_id);
                render(to, &subject, &PassText { kind, child, event_id }, &PassHtml { title, kind, child, event_id })
            }
            EventMail::Request { kind, request_id, status } => {
                let (kind, status, request_id) = (*kind, *status, *request_id);
                render(
                    to,
                    &subject,
                    &RequestText { kind, status, request_id },
                    &RequestHtml { title, kind, status, request_id },
                )
            }
        }
    }
}

/// Sends one queued account mail (a `mail` row) once, then erases its token or code from the
/// row: the secret lives in the outbox only until it is sent. Without a mailer the row waits.
pub(super) async fn send_queued(
    db: &DatabaseConnection,
    mail: Option<&Arc<dyn Mailer>>,
    event: Uuid,
    payload: &str,
    report: &mut DispatchReport,
) -> std::result::Result<(), Undelivered> {
    let message: Message = parse(MAIL_TOPIC, payload).map_err(Undelivered::Fail)?;
    let channel = "email";
    if delivered(db, event, channel).await.map_err(retry)? {
        return erase_secret(db, event, &message).await.map_err(retry);
    }
    if !message.has_secret() {
        return Err(Undelivered::Fail("the message's secret was erased before it was sent".into()));
    }
    let Some(mailer) = mail else {
        return Err(Undelivered::Retry { after_secs: None, reason: "no mailer to send account mail".into() });
    };
    let rendered = message.render().map_err(|e| Undelivered::Fail(format!("render: {e}")))?;
    mailer.send(rendered).await.map_err(|e| Undelivered::Retry { after_secs: None, reason: format!("mail: {e}") })?;
    record(db, event, channel).await.map_err(retry)?;
    report.emails += 1;
    erase_secret(db, event, &message).await.map_err(retry)
}

async fn erase_secret<C: ConnectionTrait>(db: &C, event: Uuid, message: &Message) -> Result<()> {
    if !message.has_secret() {
        return Ok(());
    }
    let erased = serde_json::to_string(&message.without_secret()).map_err(crate::Error::internal)?;
    let sql = "UPDATE outbox SET payload = $2 WHERE id = $1";
    db.execute_raw(stmt(db.get_database_backend(), sql, [event.into(), erased.into()])).await?;
    Ok(())
}

/// The mail of a `request_updated` row.
pub(super) fn request_mail(p: &RequestPayload) -> EventMail {
    EventMail::Request { kind: p.reason, request_id: p.request_id, status: p.status }
}

#[cfg(test)]
mod tests {
    use strum::VariantArray as _;

    use super::*;

    fn both(mail: &Mail, needle: &str) -> bool {
        mail.text.contains(needle) && mail.html.contains(needle)
    }

    #[test]
    fn every_pass_event_renders_its_own_sentence_with_the_childs_given_name_escaped_in_html() {
        let event_id = Uuid::now_v7();
        let mut sentences = std::collections::BTreeSet::new();
        for kind in NotificationKind::VARIANTS.iter().copied() {
            if matches!(kind, NotificationKind::RequestReceived | NotificationKind::RequestStatusChanged) {
                continue;
            }
            let m = EventMail::Pass { kind, event_id, child: Some("Léa <3".into()) };
            let mail = m.render("p@example.org").unwrap();
            assert_eq!(mail.subject, format!("Pass+ : {}", kind.title()));
            assert!(both(&mail, &event_id.to_string()), "{kind}: the reference");
            assert!(mail.text.contains("Pass de Léa <3"), "{kind}: {}", mail.text);
            assert!(mail.html.contains("Pass de Léa &#60;3") && !mail.html.contains("Léa <"), "{kind}: {}", mail.html);
            assert!(!mail.text.contains('€') && !mail.html.contains('€'), "no amount");
            crate::mail::assert_short_lines(&mail);
            let line = mail.text.split("\n\n").nth(1).unwrap_or_default().to_owned();
            assert!(sentences.insert(line.clone()), "{kind} has a sentence of its own: {line}");
        }
        let redeemed = EventMail::Pass { kind: NotificationKind::TicketRedeemed, event_id, child: None };
        let mail = redeemed.render("p@example.org").unwrap();
        assert!(both(&mail, "utilisé chez un partenaire") && both(&mail, "Pass de votre enfant"));
        let blocked = EventMail::Pass { kind: NotificationKind::CardBlocked, event_id, child: None };
        assert!(both(&blocked.render("p@example.org").unwrap(), "est bloquée"));
    }

    #[test]
    fn request_mails_say_received_or_the_new_status() {
        let request_id = Uuid::now_v7();
        let received = EventMail::Request {
            kind: NotificationKind::RequestReceived,
            request_id,
            status: RequestStatus::Submitted,
        };
        let mail = received.render("p@example.org").unwrap();
        assert_eq!(mail.subject, "Pass+ : Demande reçue");
        assert!(both(&mail, "bien reçu votre demande") && both(&mail, &request_id.to_string()));
        crate::mail::assert_short_lines(&mail);
        for status in RequestStatus::VARIANTS.iter().copied() {
            let kind = NotificationKind::RequestStatusChanged;
            let mail = EventMail::Request { kind, request_id, status }.render("p@example.org").unwrap();
            assert!(mail.text.contains(&format!("maintenant\n{}.", status.label())), "{status}: {}", mail.text);
            crate::mail::assert_short_lines(&mail);
            // The apostrophe of "d'examen" / "d'informations" is escaped in HTML.
            let html_label = status.label().replace('\'', "&#39;");
            assert!(mail.html.contains(&html_label), "{status}: {}", mail.html);
        }
        let needs = EventMail::Request {
            kind: NotificationKind::RequestStatusChanged,
            request_id,
            status: RequestStatus::NeedsInfo,
        };
        assert!(both(&needs.render("p@example.org").unwrap(), "Complétez-la dans l'application"));
    }
}
