//! The outbox topics the dispatcher knows, their payloads, and the helpers that write them.
//!
//! - `pass_updated` (`{"reason", "pass_id"}`): written by the ledger's use cases; the family
//!   linked to the pass is told.
//! - `request_updated` (`{"reason", "request_id", "account_id", "status"}`): written by the
//!   request workflow through [`request_event`]; the requester's account is told.
//! - `partner_settled` (`{"reason": "settlement_paid", "batch_id", "partner_id"}`): written by
//!   the approval of a settlement batch; the partner's members are told.
//! - `mail` (a [`crate::mail::Message`]): an account mail, sent to its address only.
//!
//! [`read`] turns a claimed row into an [`Event`] once per pass: the dispatcher reads the
//! recipients of every event of the claim together, then plans each one.

use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use serde::Deserialize;
use uuid::Uuid;

use super::NotificationKind;
use super::email::EventMail;
use crate::db::{now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::mail::{MAIL_TOPIC, Message};
use crate::request::RequestStatus;
use crate::settlement::PARTNER_SETTLED;

/// The topic of [`request_event`] rows.
pub const REQUEST_TOPIC: &str = "request_updated";
pub(super) const PASS_TOPIC: &str = "pass_updated";

#[derive(FromQueryResult)]
struct Inserted {
    id: Uuid,
}

/// Inserts one due outbox row in the caller's transaction; returns its id (the event id the
/// inbox, pushes and `delivery` rows refer to).
pub(crate) async fn insert_outbox<C: ConnectionTrait>(
    txn: &C,
    topic: &str,
    account: Option<Uuid>,
    payload: &str,
) -> Result<Uuid> {
    let backend = txn.get_database_backend();
    let now = now_us_sql(backend);
    let sql = format!(
        "INSERT INTO outbox (id, topic, account_id, payload, created_at_us, attempts, next_attempt_at_us) \
         VALUES ($1, $2, $3, $4, {now}, 0, {now}) RETURNING id"
    );
    let values: [Value; 4] = [Uuid::now_v7().into(), topic.into(), account.into(), payload.into()];
    let row = Inserted::find_by_statement(stmt(backend, &sql, values)).one(txn).await?;
    Ok(row.ok_or(Error::NotFound("outbox row"))?.id)
}

/// Tells the requester about their request: writes one `request_updated` outbox row **in the
/// caller's transaction** (the one that files or changes the request, so the family hears of
/// exactly what committed). Returns the event id. The one builder of these rows.
///
/// - `kind`: [`NotificationKind::RequestReceived`] when the request is filed,
///   [`NotificationKind::RequestStatusChanged`] when its status changes; any other kind is
///   `BAD_USER_INPUT` (field `reason`).
/// - `request_id`: the request; the push and the inbox entry carry it (`requestId`).
/// - `account_id`: the account that filed it, the one recipient (inbox, a push per device,
///   e-mail per its preferences); also the row's `account_id`.
/// - `status`: the request's status after the change.
pub async fn request_event<C: ConnectionTrait>(
    txn: &C,
    kind: NotificationKind,
    request_id: Uuid,
    account_id: Uuid,
    status: RequestStatus,
) -> Result<Uuid> {
    if !matches!(kind, NotificationKind::RequestReceived | NotificationKind::RequestStatusChanged) {
        return Err(Error::bad_input("reason", format!("{kind} is not a request event")));
    }
    let payload = serde_json::json!({
        "reason": kind, "request_id": request_id, "account_id": account_id, "status": status,
    });
    insert_outbox(txn, REQUEST_TOPIC, Some(account_id), &payload.to_string()).await
}

/// The `pass_updated` event of a change to `pass` (`reason` = `kind`), for an operation's
/// `with_events`: subscriptions (`passUpdated`) and the family's notifications read it.
pub fn pass_event(pass: Uuid, kind: NotificationKind) -> crate::ledger::OutboxEvent {
    let payload = serde_json::json!({ "pass_id": pass, "reason": kind });
    crate::ledger::OutboxEvent { topic: PASS_TOPIC.into(), account_id: None, payload }
}

/// Who hears of an event: the family of a pass, one account, or a partner's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Audience {
    Pass(Uuid),
    Account(Uuid),
    Partner(Uuid),
}

impl Audience {
    pub(super) fn id(self) -> Uuid {
        match self {
            Audience::Pass(id) | Audience::Account(id) | Audience::Partner(id) => id,
        }
    }
}

/// A notice to people: an inbox entry each, pushes and e-mails per their preferences.
pub(super) struct Notice {
    pub kind: NotificationKind,
    pub audience: Audience,
    /// The one id the inbox entry and the push carry beside the kind (`kind.about()`).
    pub about: Uuid,
    /// The e-mail (a pass event's is completed with the child's given name).
    pub mail: EventMail,
}

/// A claimed row, read.
pub(super) enum Event {
    Notice(Notice),
    /// An account mail (topic `mail`), to its own address.
    Mail(Message),
}

#[derive(Deserialize)]
struct PassPayload {
    reason: NotificationKind,
    pass_id: Uuid,
}

#[derive(Deserialize)]
struct RequestPayload {
    reason: NotificationKind,
    request_id: Uuid,
    account_id: Uuid,
    status: String,
}

#[derive(Deserialize)]
struct SettledPayload {
    reason: NotificationKind,
    batch_id: Uuid,
    partner_id: Uuid,
}

/// A payload read as `T`; anything unreadable is a permanent failure of the row, never retried.
fn parse<T: serde::de::DeserializeOwned>(topic: &str, payload: &str) -> std::result::Result<T, String> {
    serde_json::from_str(payload).map_err(|e| format!("{topic} payload {payload}: {e}"))
}

/// A kind written under the wrong topic (a request kind on a pass) is given up: its push would
/// carry the wrong id.
fn about_matches(kind: NotificationKind, about: &str) -> std::result::Result<(), String> {
    if kind.about() == about { Ok(()) } else { Err(format!("{kind} is not about a {about}")) }
}

/// The event of a claimed row, or why it can never be delivered (the row is marked failed).
pub(super) fn read(event_id: Uuid, topic: &str, payload: &str) -> std::result::Result<Event, String> {
    let notice = match topic {
        PASS_TOPIC => {
            let p: PassPayload = parse(topic, payload)?;
            about_matches(p.reason, "pass_id")?;
            let mail = EventMail::Pass { kind: p.reason, event_id, child: None };
            Notice { kind: p.reason, audience: Audience::Pass(p.pass_id), about: p.pass_id, mail }
        }
        REQUEST_TOPIC => {
            let p: RequestPayload = parse(topic, payload)?;
            about_matches(p.reason, "request_id")?;
            let status: RequestStatus =
                p.status.parse().map_err(|_| format!("unknown request status {:?}", p.status))?;
            let mail = EventMail::Request { kind: p.reason, request_id: p.request_id, status };
            Notice { kind: p.reason, audience: Audience::Account(p.account_id), about: p.request_id, mail }
        }
        PARTNER_SETTLED => {
            let p: SettledPayload = parse(topic, payload)?;
            about_matches(p.reason, "batch_id")?;
            let mail = EventMail::Settlement { batch_id: p.batch_id };
            Notice { kind: p.reason, audience: Audience::Partner(p.partner_id), about: p.batch_id, mail }
        }
        MAIL_TOPIC => return parse(topic, payload).map(Event::Mail),
        other => return Err(format!("unknown topic {other:?}")),
    };
    Ok(Event::Notice(notice))
}

/// A `mail` row's payload once its message went out: the same message without its secret.
pub(super) fn erased(message: &Message) -> Result<String> {
    serde_json::to_string(&message.without_secret()).map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_topic_reads_its_kind_and_audience_and_a_mismatch_is_given_up() {
        let (e, b, p) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let settled = format!(r#"{{"reason":"settlement_paid","batch_id":"{b}","partner_id":"{p}"}}"#);
        let Ok(Event::Notice(n)) = read(e, PARTNER_SETTLED, &settled) else { panic!("partner_settled") };
        assert_eq!((n.kind, n.audience, n.about), (NotificationKind::SettlementPaid, Audience::Partner(p), b));
        let wrong = format!(r#"{{"reason":"settlement_paid","pass_id":"{p}"}}"#);
        assert!(read(e, PASS_TOPIC, &wrong).is_err());
        let lost =
            format!(r#"{{"reason":"request_status_changed","request_id":"{b}","account_id":"{p}","status":"lost"}}"#);
        assert_eq!(read(e, REQUEST_TOPIC, &lost).err(), Some(r#"unknown request status "lost""#.to_owned()));
        assert!(read(e, "elsewhere", "{}").is_err());
    }
}
