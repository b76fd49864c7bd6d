//! Reading requests: one for its family or its funder's staff, a family's list, the staff queue.

use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use uuid::Uuid;

use super::access::{READERS, RequestCaller};
use super::attachments::{ATTACHMENT_COLUMNS, Attachment};
use super::model::{REQUEST_COLUMNS, Request, RequestEvent};
use super::rules::{RequestKind, RequestStatus};
use crate::auth::Principal;
use crate::db::stmt;
use crate::error::{Error, Result};
use crate::spending::Page;

pub(super) async fn load<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Request> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM request WHERE id = $1");
    let row = Request::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).one(db).await?;
    row.ok_or(Error::NotFound("request"))
}

/// A request its family, or its funder's staff (auditors included), may read; `NOT_FOUND` otherwise.
pub async fn get_request<C: ConnectionTrait>(db: &C, caller: &RequestCaller<'_>, id: Uuid) -> Result<Request> {
    let request = load(db, id).await?;
    if caller.reaches(&request, READERS) { Ok(request) } else { Err(Error::NotFound("request")) }
}

/// A family's requests, newest first (keyset on creation time).
pub async fn list_for_requester<C: ConnectionTrait>(db: &C, account: Uuid, page: &Page) -> Result<Vec<Request>> {
    let (at, id) = crate::spending::before(page);
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM request WHERE requester_account_id = $1 \
         AND (created_at_us < $2 OR (created_at_us = $2 AND id < $3)) ORDER BY created_at_us DESC, id DESC LIMIT $4"
    );
    let values: [Value; 4] = [account.into(), at.into(), id.into(), (page.first as i64).into()];
    Ok(Request::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?)
}

/// What the staff queue shows.
#[derive(Clone, Debug, Default)]
pub struct QueueFilter {
    pub funder_id: Uuid,
    pub status: Option<RequestStatus>,
    pub kind: Option<RequestKind>,
    /// Only the requests assigned to the caller.
    pub assigned_to_me: bool,
    /// Only the requests nobody took yet.
    pub unassigned: bool,
}

/// The funder's requests, oldest first — first come, first served — for its staff.
pub async fn queue<C: ConnectionTrait>(
    db: &C,
    staff: &Principal,
    filter: &QueueFilter,
    page: &Page,
) -> Result<Vec<Request>> {
    if !staff.has_role(filter.funder_id, READERS) {
        return Err(Error::Forbidden);
    }
    let (at, id) = page.after.unwrap_or((i64::MIN, Uuid::nil()));
    let mut sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM request WHERE funder_id = $1 \
         AND (created_at_us > $2 OR (created_at_us = $2 AND id > $3))"
    );
    let mut values: Vec<Value> = vec![filter.funder_id.into(), at.into(), id.into()];
    let mut and = |clause: &str, v: Value| {
        values.push(v);
        sql.push_str(&format!(" AND {clause} ${}", values.len()));
    };
    if let Some(status) = filter.status {
        and("status =", status.into());
    }
    if let Some(kind) = filter.kind {
        and("kind =", kind.into());
    }
    if filter.assigned_to_me {
        and("assignee_account_id =", staff.account.id.into());
    }
    if filter.unassigned {
        sql.push_str(" AND assignee_account_id IS NULL");
    }
    values.push((page.first as i64).into());
    sql.push_str(&format!(" ORDER BY created_at_us, id LIMIT ${}", values.len()));
    Ok(Request::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?)
}

/// The request's history, oldest first; the family's view has no internal notes.
pub async fn request_events<C: ConnectionTrait>(
    db: &C,
    caller: &RequestCaller<'_>,
    id: Uuid,
) -> Result<Vec<RequestEvent>> {
    get_request(db, caller, id).await?;
    let sql = "SELECT id, request_id, action, party, actor_account_id, at_counter, from_status, to_status, \
               public_message, internal_note, created_at_us FROM request_event WHERE request_id = $1 \
               ORDER BY created_at_us, id";
    let mut events = RequestEvent::find_by_statement(stmt(db.get_database_backend(), sql, [id.into()])).all(db).await?;
    if matches!(caller, RequestCaller::Family { .. }) {
        events.retain(|e| e.public_message.is_some() || e.from_status.as_ref() != Some(&e.to_status));
        for e in &mut events {
            e.internal_note = None;
        }
    }
    Ok(events)
}

/// The documents bound to a request.
pub async fn request_attachments<C: ConnectionTrait>(
    db: &C,
    caller: &RequestCaller<'_>,
    id: Uuid,
) -> Result<Vec<Attachment>> {
    get_request(db, caller, id).await?;
    let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachment WHERE request_id = $1 ORDER BY created_at_us, id");
    Ok(Attachment::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).all(db).await?)
}
