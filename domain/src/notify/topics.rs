//! The outbox topics the dispatcher knows, their payloads, and the helpers that write them.
//!
//! - `pass_updated` (`{"reason", "pass_id"}`): written by the ledger's use cases; the family
//!   linked to the pass is told.
//! - `request_updated` (`{"reason", "request_id", "account_id", "status"}`): written by the
//!   request workflow through [`request_event`]; the requester's account is told.
//! - `mail` (a [`crate::mail::Message`]): an account mail, sent to its address only.

use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::NotificationKind;
use crate::db::{now_us_sql, stmt};
use crate::error::{Error, Result};

/// The topic of [`request_event`] rows.
pub const REQUEST_TOPIC: &str = "request_updated";
pub(super) const PASS_TOPIC: &str = "pass_updated";

/// Where a request stands, as its e-mail names it (the request workflow's statuses, by their
/// stored snake_case names).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RequestStatus {
    Submitted,
    InReview,
    NeedsInfo,
    Approved,
    Rejected,
    Cancelled,
}

impl RequestStatus {
    /// "Votre demande est maintenant …".
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
/// caller's transaction** (call it in the transaction that files or changes the request, so the
/// family hears of exactly what committed). Returns the event id.
///
/// - `kind`: [`NotificationKind::RequestReceived`] when the request is filed,
///   [`NotificationKind::RequestStatusChanged`] when its status changes; any other kind is
///   `BAD_USER_INPUT` (field `reason`).
/// - `request_id`: the request; the push and the inbox entry carry it (`requestId`).
/// - `account_id`: the account that filed it, the one recipient (inbox, a push per device,
///   e-mail per its preferences).
/// - `status`: the request's status after the change, by its stored name (`submitted`,
///   `in_review`, `needs_info`, `approved`, `rejected`, `cancelled`); anything else is
///   `BAD_USER_INPUT` (field `status`).
pub async fn request_event<C: ConnectionTrait>(
    txn: &C,
    kind: NotificationKind,
    request_id: Uuid,
    account_id: Uuid,
    status: &str,
) -> Result<Uuid> {
    if !matches!(kind, NotificationKind::RequestReceived | NotificationKind::RequestStatusChanged) {
        return Err(Error::bad_input("reason", format!("{kind} is not a request event")));
    }
    let status: RequestStatus =
        status.parse().map_err(|_| Error::bad_input("status", format!("unknown request status {status:?}")))?;
    let payload = RequestPayload { reason: kind, request_id, account_id, status };
    let payload = serde_json::to_string(&payload).map_err(Error::internal)?;
    insert_outbox(txn, REQUEST_TOPIC, Some(account_id), &payload).await
}

/// The payload of a `request_updated` row, exactly as the request workflow writes it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RequestPayload {
    pub reason: NotificationKind,
    pub request_id: Uuid,
    pub account_id: Uuid,
    pub status: RequestStatus,
}

/// The `pass_updated` event of a change to `pass` (`reason` = `kind`), for an operation's
/// `with_events`: subscriptions (`passUpdated`) and the family's notifications read it.
pub fn pass_event(pass: Uuid, kind: NotificationKind) -> crate::ledger::OutboxEvent {
    let payload = serde_json::json!({ "pass_id": pass, "reason": kind });
    crate::ledger::OutboxEvent { topic: PASS_TOPIC.into(), account_id: None, payload }
}

/// The payload of a `pass_updated` row (other fields, such as the live feed's, are ignored).
#[derive(Debug, Deserialize)]
pub(super) struct PassPayload {
    pub reason: NotificationKind,
    pub pass_id: Uuid,
}

/// A payload read as `T`; anything unreadable is a permanent failure of the row, never retried.
pub(super) fn parse<T: serde::de::DeserializeOwned>(topic: &str, payload: &str) -> std::result::Result<T, String> {
    serde_json::from_str(payload).map_err(|e| format!("{topic} payload {payload}: {e}"))
}
