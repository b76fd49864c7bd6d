//! Partners (clubs, conservatoires, theatres), reduced for now to what access control needs: a
//! name, the accounts that act for it and their role. Affiliation (SIRET, IBAN, categories,
//! status) comes with its own feature and extends the same `partner` row.
//!
//! A partner member account belongs to exactly one partner, so "the caller's partner" is never
//! ambiguous; owners also manage the partner's API clients.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde::Serialize;
use uuid::Uuid;

pub use crate::auth::PartnerRole;
use crate::auth::{AccountKind, account_kind};
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct Partner {
    pub id: Uuid,
    pub name: String,
}

/// Creates a partner (demo seed, tests; staff approval of applications later).
pub async fn create_partner(db: &DatabaseConnection, name: &str) -> Result<Partner> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::bad_input("name", "1 to 200 characters"));
    }
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO partner (id, name, created_at_us) VALUES ($1, $2, {})",
        now_us_sql(db.get_database_backend())
    );
    db.execute_raw(stmt(db.get_database_backend(), &sql, [id.into(), name.into()])).await?;
    Ok(Partner { id, name: name.to_owned() })
}

pub async fn get_partner<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Partner> {
    let sql = "SELECT id, name FROM partner WHERE id = $1";
    let row = Partner::find_by_statement(stmt(db.get_database_backend(), sql, [id.into()])).one(db).await?;
    row.ok_or(Error::NotFound("partner"))
}

/// Makes a partner member account act for `partner`. An account joins one partner only
/// (`CONFLICT` otherwise); parents and staff cannot join.
pub async fn add_partner_member(
    db: &DatabaseConnection,
    partner: Uuid,
    account: Uuid,
    role: PartnerRole,
) -> Result<()> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    get_partner(&txn, partner).await?;
    if account_kind(&txn, account).await?.ok_or(Error::NotFound("account"))? != AccountKind::PartnerMember {
        return Err(Error::bad_input("accountId", "only partner member accounts act for a partner"));
    }
    let sql = format!(
        "INSERT INTO partner_member (id, account_id, partner_id, role, created_at_us) VALUES ($1, $2, $3, $4, {}) \
         ON CONFLICT (account_id) DO NOTHING",
        now_us_sql(backend)
    );
    let values = [Uuid::now_v7().into(), account.into(), partner.into(), role.into()];
    if txn.execute_raw(stmt(backend, &sql, values)).await?.rows_affected() == 0 {
        return Err(Error::Conflict("this account already acts for a partner".into()));
    }
    txn.commit().await?;
    Ok(())
}
