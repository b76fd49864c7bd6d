//! Sign-in vouched for by another identity provider: the ENT's CAS, or an OIDC provider
//! (EduConnect, FranceConnect, the ENT). Both end here, so identities are handled one way.
//!
//! * An identity is the pair (issuer, subject) in `account_identity`. It is never joined by
//!   e-mail: two providers (or two people) may share an address, and an address is not proof
//!   of who signs in (security.md A7).
//! * A new identity gets a new parent account. Its e-mail is the provider's address when the
//!   provider vouches for it and nobody here uses it, else an `.invalid` placeholder.
//! * Children the provider lists by AAF jointure id are linked at once: the roster carries the
//!   same ids (DESIGN.md "Identity"). Only providers configured for a funder's roster do this.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::accounts::{self, Account, AccountKind, AccountRow};
use super::sessions::{AuthConfig, Device, Tokens, check_device, open_session};
use crate::db::{begin_write, is_unique_violation, now_us_sql, stmt};
use crate::error::{Error, Result};

/// Who the provider says signed in.
pub(super) struct Identity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub display_name: &'a str,
    /// Only an address the provider vouches for (verified); used for the account's e-mail, never
    /// to find an account.
    pub email: Option<&'a str>,
    /// AAF jointure ids of the children, to link when `funder_code` is set.
    pub children: &'a [String],
    /// The funder whose roster `children` refer to.
    pub funder_code: Option<&'a str>,
    /// `family_link.via` and `.author` of the links made (`ent`, `oidc`).
    pub via: &'static str,
}

/// Finds the account of `identity` (or creates it), links the children it lists, and opens a
/// session on `device`. Only active parent accounts sign in this way.
pub(super) async fn federated_sign_in(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    identity: &Identity<'_>,
    device: &Device,
) -> Result<Tokens> {
    check_device(device)?;
    if identity.issuer.is_empty() || identity.subject.is_empty() {
        return Err(Error::Unauthenticated);
    }
    let funder = match identity.funder_code {
        Some(code) => Some(crate::funder::find_funder_by_code(db, code).await?.ok_or(Error::NotFound("funder"))?.id),
        None => None,
    };
    // Two first sign-ins of one person can race (two taps): the loser of the unique index on
    // (issuer, subject) starts again and finds the winner's account.
    let mut attempt = 0;
    let account = loop {
        attempt += 1;
        match find_or_create(db, identity, funder).await? {
            Some(account) => break account,
            None if attempt < 2 => continue,
            None => return Err(Error::Conflict("sign-in raced with another one, retry".into())),
        }
    };
    if !account.active || account.kind != AccountKind::Parent {
        return Err(Error::Unauthenticated);
    }
    open_session(db, auth, account, device).await
}

/// One transaction: the identity's account (created if new) with the listed children linked.
/// `None` when a concurrent sign-in created the same identity first.
async fn find_or_create(
    db: &DatabaseConnection,
    identity: &Identity<'_>,
    funder: Option<Uuid>,
) -> Result<Option<Account>> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let now = now_us_sql(backend);
    let sql = "SELECT account_id FROM account_identity WHERE issuer = $1 AND subject = $2";
    let values = [identity.issuer.into(), identity.subject.into()];
    let found = IdentityAccount::find_by_statement(stmt(backend, sql, values)).one(&txn).await?;
    let account_id: Uuid = match found {
        Some(r) => r.account_id,
        None => match create_parent(&txn, identity).await {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(funder) = funder {
        for jointure in identity.children {
            let sql = format!(
                "INSERT INTO family_link (id, account_id, pupil_id, via, author, created_at_us) \
                 SELECT $1, $2, p.id, $5, $5, {now} FROM pupil p WHERE p.funder_id = $3 AND p.source_key = $4 \
                 AND NOT EXISTS (SELECT 1 FROM family_link l WHERE l.account_id = $2 AND l.pupil_id = p.id AND l.revoked_at_us IS NULL)"
            );
            let v: [Value; 5] = [
                Uuid::now_v7().into(),
                account_id.into(),
                funder.into(),
                format!("aaf:{jointure}").into(),
                identity.via.into(),
            ];
            txn.execute_raw(stmt(backend, &sql, v)).await?;
        }
    }
    let sql = format!("SELECT {} FROM account WHERE id = $1", accounts::COLUMNS);
    let row = AccountRow::find_by_statement(stmt(backend, &sql, [account_id.into()])).one(&txn).await?;
    let account = Account::from(row.ok_or(Error::Unauthenticated)?);
    txn.commit().await?;
    Ok(Some(account))
}

#[derive(FromQueryResult)]
struct IdentityAccount {
    account_id: Uuid,
}

/// A new parent account for a first sign-in, with its identity row.
async fn create_parent<C: ConnectionTrait>(txn: &C, identity: &Identity<'_>) -> Result<Uuid, DbErr> {
    let backend = txn.get_database_backend();
    let now = now_us_sql(backend);
    let id = Uuid::now_v7();
    let email = match identity.email.map(str::to_lowercase) {
        Some(e) if !email_taken(txn, &e).await? => e,
        _ => format!("{}-{id}@accounts.invalid", identity.via),
    };
    let sql = format!(
        "INSERT INTO account (id, kind, email, email_verified_at_us, password_hash, display_name, status, created_at_us) \
         VALUES ($1, 'parent', $2, {now}, NULL, $3, 'active', {now})"
    );
    txn.execute_raw(stmt(backend, &sql, [id.into(), email.into(), identity.display_name.trim().into()])).await?;
    let sql = format!(
        "INSERT INTO account_identity (id, account_id, issuer, subject, created_at_us) VALUES ($1, $2, $3, $4, {now})"
    );
    let v: [Value; 4] = [Uuid::now_v7().into(), id.into(), identity.issuer.into(), identity.subject.into()];
    txn.execute_raw(stmt(backend, &sql, v)).await?;
    Ok(id)
}

async fn email_taken<C: ConnectionTrait>(txn: &C, email: &str) -> Result<bool, DbErr> {
    let row = txn
        .query_one_raw(stmt(
            txn.get_database_backend(),
            "SELECT 1 AS one FROM account WHERE email = $1",
            [email.into()],
        ))
        .await?;
    Ok(row.is_some())
}
