//! Notifications: every committed balance change reaches the family — an inbox entry, a push
//! on each of their phones, an e-mail if they want — at least once, from the outbox rows the
//! ledger writes in the same transaction as the money.
//!
//! Four outbox topics (`topics`): `pass_updated` (the family of a pass), `request_updated`
//! (the account that filed a request; written through [`request_event`]), `partner_settled`
//! (the members of a partner whose reimbursements were approved) and `mail` (an account mail
//! queued by the use case creating its token, [`crate::mail::queue`]). E-mails are
//! rendered from the templates of `domain/templates/` (`email`, [`crate::mail`]).
//!
//! The dispatcher ([`dispatch`]) claims due outbox rows with a lease, delivers each channel
//! once (the `delivery` table remembers what went out, so a retry after a partial failure
//! sends only the rest), then marks the row dispatched, or schedules a retry with exponential
//! backoff and jitter (honouring `Retry-After`), or after [`MAX_ATTEMPTS`] marks it failed for
//! staff. Push goes through a [`PushSender`] (FCM HTTP v1 in the api crate); its payload is the
//! kind and ids only — no names, no amounts (`mobile-contract/push-payloads.md`).

mod dispatch;
mod email;
mod inbox;
mod topics;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

pub use dispatch::{DispatchOptions, DispatchReport, MAX_ATTEMPTS, dispatch, prune_push_tokens};
pub use inbox::{
    Notification, Preference, get_notification, list_notifications, mark_read, notifications_after, preferences,
    register_push_token, set_preference, unread_count,
};
pub(crate) use topics::insert_outbox;
pub use topics::{REQUEST_TOPIC, pass_event, request_event};

crate::stored_enum! {
    /// What happened, as the family is told (`notification.kind`, push `data.kind`).
    pub enum NotificationKind {
        TicketIssued,
        TicketRedeemed,
        TicketCancelled,
        Payment,
        CardCharge,
        Refund,
        CardBlocked,
        CreditExpiring,
        CreditExpired,
        /// The yearly grant credited the pass (`pass_updated`, reason `credit_granted`).
        CreditGranted,
        /// The family's request was filed (`request_updated`).
        RequestReceived,
        /// The family's request changed status (`request_updated`).
        RequestStatusChanged,
        /// The funder ordered the transfer of a partner's reimbursements (`partner_settled`): told
        /// to the partner's members.
        SettlementPaid,
    }
}

impl NotificationKind {
    /// The push's and the e-mail's title (French; no name, no amount).
    pub fn title(self) -> &'static str {
        match self {
            NotificationKind::TicketIssued => "Ticket créé",
            NotificationKind::TicketRedeemed => "Ticket utilisé",
            NotificationKind::TicketCancelled => "Ticket annulé",
            NotificationKind::Payment => "Paiement effectué",
            NotificationKind::CardCharge => "Paiement par carte",
            NotificationKind::Refund => "Remboursement",
            NotificationKind::CardBlocked => "Carte bloquée",
            NotificationKind::CreditExpiring => "Crédit bientôt perdu",
            NotificationKind::CreditExpired => "Crédit expiré",
            NotificationKind::CreditGranted => "Pass crédité",
            NotificationKind::RequestReceived => "Demande reçue",
            NotificationKind::RequestStatusChanged => "Demande mise à jour",
            NotificationKind::SettlementPaid => "Remboursement en route",
        }
    }

    /// E-mail unless the account says otherwise: yes for what others did to the pass (a club
    /// redeemed, charged or refunded; the card blocked; credit about to expire or expired), no
    /// for what the parent just did in the app (they saw it happen) — except the receipt of a
    /// request, which an administration acknowledges in writing (an *accusé de réception*,
    /// Code des relations entre le public et l'administration, L112-3). Push and inbox: always.
    pub fn email_by_default(self) -> bool {
        !matches!(self, NotificationKind::TicketIssued | NotificationKind::TicketCancelled | NotificationKind::Payment)
    }

    /// The id a push's `data` and the inbox entry carry beside the kind: what the event is
    /// about (`push-payloads.md`).
    pub fn about(self) -> &'static str {
        match self {
            NotificationKind::RequestReceived | NotificationKind::RequestStatusChanged => "request_id",
            NotificationKind::SettlementPaid => "batch_id",
            _ => "pass_id",
        }
    }

    /// One line of text under the title.
    pub fn body(self) -> &'static str {
        match self {
            NotificationKind::CardBlocked => {
                "La carte Pass de votre enfant est bloquée. Ouvrez l'application pour le détail."
            }
            NotificationKind::CreditExpiring => {
                "Le Pass de votre enfant a encore du crédit : il sera perdu à la date limite. Pensez à l'utiliser."
            }
            NotificationKind::CreditExpired => {
                "La date limite est passée : le crédit restant du Pass de votre enfant a expiré."
            }
            NotificationKind::CreditGranted => "Le Pass de votre enfant a été crédité pour l'année scolaire.",
            NotificationKind::RequestReceived => "Votre demande a bien été reçue. Vous serez informé de la suite.",
            NotificationKind::RequestStatusChanged => {
                "Votre demande a changé de statut. Ouvrez l'application pour le détail."
            }
            NotificationKind::SettlementPaid => {
                "Le département a ordonné le virement de vos remboursements Pass+. Il arrive sous quelques jours."
            }
            _ => "Le solde du Pass de votre enfant a changé. Ouvrez l'application pour le détail.",
        }
    }
}

/// One push to one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Push {
    pub token: String,
    pub platform: String,
    pub title: String,
    pub body: String,
    /// String values only (FCM refuses anything else).
    pub data: BTreeMap<String, String>,
}

/// Why a push did not go out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The token is gone (app uninstalled, expired) or malformed: delete it, never retry.
    #[error("the device token is no longer valid")]
    InvalidToken,
    /// Try again later (quota, unavailable, internal), after `retry_after_secs` if given.
    #[error("push service unavailable: {reason}")]
    Retry { retry_after_secs: Option<u64>, reason: String },
    /// Our configuration is wrong (credentials, APNs key): logged and counted, not retried.
    #[error("push configuration error: {0}")]
    Config(String),
}

pub type PushFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PushError>> + Send + 'a>>;

/// Sends one push (FCM HTTP v1 in production, a local fake in tests).
pub trait PushSender: Send + Sync {
    fn send(&self, push: Push) -> PushFuture<'_>;
}
