//! Staff decisions on family links: link a parent account to a pupil (e.g. a guardian missing
//! from the school record) or remove a link (e.g. a court decision), always with a reason.
//!
//! The caller has checked the staff role on the pupil's funder ([`pupil_funder`] tells which);
//! the functions here re-check that the pupil belongs to that funder inside the transaction, so
//! a wrong pairing cannot slip through. The link change and its audit row are one transaction.
//! Parents re-read their links on every request: an unlink applies to their next request.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use uuid::Uuid;

use super::AccountKind;
use super::accounts::account_kind;
use super::audit::{Actor, AuditEvent, check_reason, record};
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};

/// What a staff link or unlink did (from its audit row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkChange {
    pub account_id: Uuid,
    pub pupil_id: Uuid,
    /// True after a link, false after an unlink.
    pub linked: bool,
    pub reason: String,
    pub author: String,
    pub at_us: i64,
}

/// The funder a pupil belongs to: the scope of the staff who may change its links.
pub async fn pupil_funder<C: ConnectionTrait>(db: &C, pupil: Uuid) -> Result<Uuid> {
    let sql = "SELECT funder_id FROM pupil WHERE id = $1";
    let row = PupilFunder::find_by_statement(stmt(db.get_database_backend(), sql, [pupil.into()])).one(db).await?;
    Ok(row.ok_or(Error::NotFound("pupil"))?.funder_id)
}

#[derive(FromQueryResult)]
struct PupilFunder {
    funder_id: Uuid,
}

/// Link or unlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkAction {
    /// Links a parent account to the pupil. `CONFLICT` if a live link exists already.
    Link,
    /// Removes the live link. `NOT_FOUND` when there is none.
    Unlink,
}

/// A staff decision on the link between a parent account and a pupil of `funder`.
#[derive(Clone, Copy, Debug)]
pub struct LinkDecision<'a> {
    pub action: LinkAction,
    /// The funder the caller holds a role for; the pupil must be one of its pupils.
    pub funder: Uuid,
    pub account: Uuid,
    pub pupil: Uuid,
    pub reason: &'a str,
}

/// Applies a staff decision and records it, in one transaction.
pub async fn decide_family_link(db: &DatabaseConnection, actor: &Actor, d: &LinkDecision<'_>) -> Result<LinkChange> {
    let reason = check_reason(d.reason)?;
    let txn = begin_write(db).await?;
    check_pupil_of(&txn, d.funder, d.pupil).await?;
    let action = match d.action {
        LinkAction::Link => {
            link(&txn, actor, d).await?;
            // A staff link is the review a child past its link caps waited for.
            super::link_guard::clear_child_link_guard(&txn, d.pupil).await?;
            "link_child"
        }
        LinkAction::Unlink => {
            unlink(&txn, d, &reason).await?;
            "unlink_child"
        }
    };
    let event = AuditEvent {
        action,
        actor,
        funder_id: Some(d.funder),
        partner_id: None,
        subject_account_id: Some(d.account),
        object_id: Some(d.pupil),
        reason: Some(&reason),
    };
    let at_us = record(&txn, &event).await?;
    txn.commit().await?;
    Ok(LinkChange {
        account_id: d.account,
        pupil_id: d.pupil,
        linked: d.action == LinkAction::Link,
        reason,
        author: actor.label.clone(),
        at_us,
    })
}

async fn link<C: ConnectionTrait>(db: &C, actor: &Actor, d: &LinkDecision<'_>) -> Result<()> {
    let backend = db.get_database_backend();
    if account_kind(db, d.account).await?.ok_or(Error::NotFound("account"))? != AccountKind::Parent {
        return Err(Error::bad_input("accountId", "only parent accounts are linked to children"));
    }
    let live = "SELECT id FROM family_link WHERE account_id = $1 AND pupil_id = $2 AND revoked_at_us IS NULL";
    if db.query_one_raw(stmt(backend, live, [d.account.into(), d.pupil.into()])).await?.is_some() {
        return Err(Error::Conflict("this account is already linked to this pupil".into()));
    }
    let sql = format!(
        "INSERT INTO family_link (id, account_id, pupil_id, via, author, created_at_us) VALUES ($1, $2, $3, 'staff', $4, {})",
        now_us_sql(backend)
    );
    let values: [Value; 4] = [Uuid::now_v7().into(), d.account.into(), d.pupil.into(), actor.label.clone().into()];
    db.execute_raw(stmt(backend, &sql, values)).await?;
    Ok(())
}

async fn unlink<C: ConnectionTrait>(db: &C, d: &LinkDecision<'_>, reason: &str) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = format!(
        "UPDATE family_link SET revoked_at_us = {}, revoked_reason = $3 \
         WHERE account_id = $1 AND pupil_id = $2 AND revoked_at_us IS NULL",
        now_us_sql(backend)
    );
    let values: [Value; 3] = [d.account.into(), d.pupil.into(), reason.into()];
    if db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected() == 0 {
        return Err(Error::NotFound("family link"));
    }
    Ok(())
}

async fn check_pupil_of<C: ConnectionTrait>(db: &C, funder: Uuid, pupil: Uuid) -> Result<()> {
    let sql = "SELECT id FROM pupil WHERE id = $1 AND funder_id = $2";
    match db.query_one_raw(stmt(db.get_database_backend(), sql, [pupil.into(), funder.into()])).await? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound("pupil")),
    }
}
