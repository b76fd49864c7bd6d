//! The e-mails of notifications, rendered from `domain/templates/` (`pass_event.*`,
//! `request.*`, `settlement_paid.*`). Account mails (topic `mail`) render themselves
//! ([`crate::mail::Message`]).
//!
//! A pass event's mail names the child by given name at most (the parent knows which child;
//! nothing more of a minor's data leaves the service), and no amount: the app shows those
//! after sign-in.

use askama::Template;
use uuid::Uuid;

use super::NotificationKind;
use crate::error::Result;
use crate::mail::{Mail, render};
use crate::request::RequestStatus;

/// What a notification's e-mail tells of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventMail {
    /// A change to a child's pass; `child` is the given name when known.
    Pass { kind: NotificationKind, event_id: Uuid, child: Option<String> },
    /// A change to the family's request.
    Request { kind: NotificationKind, request_id: Uuid, status: RequestStatus },
    /// The funder ordered the transfer of a settlement batch's line to the partner.
    Settlement { batch_id: Uuid },
}

impl RequestStatus {
    /// "Votre demande est maintenant …" (the request e-mail's words for each status).
    pub fn label(self) -> &'static str {
        match self {
            RequestStatus::Submitted => "envoyée",
            RequestStatus::InReview => "en cours d'examen",
            RequestStatus::NeedsInfo => "en attente d'informations de votre part",
            RequestStatus::Approved => "acceptée",
            RequestStatus::Rejected => "refusée",
            RequestStatus::Cancelled => "annulée",
        }
    }
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
#[template(path = "settlement_paid.txt")]
struct SettlementText {
    batch_id: Uuid,
}

#[derive(Template)]
#[template(path = "settlement_paid.html")]
struct SettlementHtml<'a> {
    title: &'a str,
    batch_id: Uuid,
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
            EventMail::Settlement { .. } => NotificationKind::SettlementPaid,
        }
    }

    /// A pass event's mail naming the recipient's child (`child`, when known); others as they are.
    pub(super) fn for_child(&self, child: Option<&str>) -> EventMail {
        match self {
            EventMail::Pass { kind, event_id, .. } => {
                EventMail::Pass { kind: *kind, event_id: *event_id, child: child.map(str::to_owned) }
            }
            other => other.clone(),
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
            EventMail::Settlement { batch_id } => {
                let batch_id = *batch_id;
                render(to, &subject, &SettlementText { batch_id }, &SettlementHtml { title, batch_id })
            }
        }
    }
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
            if kind.about() != "pass_id" {
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

    #[test]
    fn a_settlement_mail_says_the_transfer_is_ordered_with_the_batch_as_reference() {
        let batch_id = Uuid::now_v7();
        let mail = EventMail::Settlement { batch_id }.render("club@example.org").unwrap();
        assert_eq!(mail.subject, "Pass+ : Remboursement en route");
        assert!(both(&mail, "ordonné le virement") && both(&mail, &batch_id.to_string()));
        assert!(!mail.text.contains('€') && !mail.html.contains('€'), "no amount");
        crate::mail::assert_short_lines(&mail);
    }
}
