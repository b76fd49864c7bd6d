//! Funders: the collectivités that own campaigns, budgets and eligibility. The platform is
//! mutualised: several funders, each with its own policy, on one deployment.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct Funder {
    pub id: Uuid,
    /// "92": also what staff type on the command line.
    pub code: String,
    pub name: String,
    pub departement: String,
}

pub async fn find_funder_by_code<C: ConnectionTrait>(db: &C, code: &str) -> Result<Option<Funder>> {
    let sql = "SELECT id, code, name, departement FROM funder WHERE code = $1";
    Ok(Funder::find_by_statement(stmt(db.get_database_backend(), sql, [code.trim().into()])).one(db).await?)
}

pub async fn get_funder<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Funder> {
    let sql = "SELECT id, code, name, departement FROM funder WHERE id = $1";
    let row = Funder::find_by_statement(stmt(db.get_database_backend(), sql, [id.into()])).one(db).await?;
    row.ok_or(Error::NotFound("funder"))
}

/// The funder with `code`, created if missing (idempotent; the name of an existing one is kept).
pub async fn ensure_funder_by_code(
    db: &DatabaseConnection,
    code: &str,
    name: &str,
    departement: &str,
) -> Result<Funder> {
    let code = code.trim();
    if code.is_empty() || code.len() > 16 || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::bad_input("code", "1 to 16 letters, digits or dashes"));
    }
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let sql = format!(
        "INSERT INTO funder (id, code, name, departement, created_at_us) VALUES ($1, $2, $3, $4, {}) \
         ON CONFLICT (code) DO NOTHING",
        now_us_sql(backend)
    );
    let values = [Uuid::now_v7().into(), code.into(), name.into(), departement.into()];
    txn.execute_raw(stmt(backend, &sql, values)).await?;
    let funder = find_funder_by_code(&txn, code).await?.ok_or(Error::NotFound("funder"))?;
    txn.commit().await?;
    Ok(funder)
}
