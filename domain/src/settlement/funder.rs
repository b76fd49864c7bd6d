//! A funder's settlement settings: its schedule and the treasury account that pays.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde::Serialize;
use uuid::Uuid;

use super::model::Schedule;
use super::sepa::Debtor;
use crate::db::stmt;
use crate::error::{Error, Result};
use crate::ids::{Bic, Iban};

/// What a funder's settlement runs with.
#[derive(Clone, Debug)]
pub struct FunderSettlement {
    pub funder_id: Uuid,
    pub funder_name: String,
    pub schedule: Schedule,
    /// `None` until staff give the treasury account: no batch can be made before.
    pub treasury: Option<Debtor>,
}

/// What staff send to set the treasury account.
#[derive(Clone, Debug, Serialize)]
pub struct TreasuryInput {
    pub name: String,
    pub iban: String,
    pub bic: String,
    pub schedule: Option<Schedule>,
}

#[derive(FromQueryResult)]
struct Row {
    id: Uuid,
    name: String,
    settlement_schedule: Schedule,
    treasury_name: Option<String>,
    treasury_iban: Option<String>,
    treasury_bic: Option<String>,
}

pub async fn funder_settlement<C: ConnectionTrait>(db: &C, funder: Uuid) -> Result<FunderSettlement> {
    let sql = "SELECT id, name, settlement_schedule, treasury_name, treasury_iban, treasury_bic FROM funder \
               WHERE id = $1";
    let row = Row::find_by_statement(stmt(db.get_database_backend(), sql, [funder.into()])).one(db).await?;
    let row = row.ok_or(Error::NotFound("funder"))?;
    let corrupt = || Error::internal(sea_orm::DbErr::Type("funder treasury account".into()));
    let treasury = match (row.treasury_name, row.treasury_iban, row.treasury_bic) {
        (Some(name), Some(iban), Some(bic)) => Some(Debtor {
            name,
            iban: Iban::parse(&iban).map_err(|_| corrupt())?,
            bic: Bic::parse(&bic).map_err(|_| corrupt())?,
        }),
        _ => None,
    };
    Ok(FunderSettlement { funder_id: row.id, funder_name: row.name, schedule: row.settlement_schedule, treasury })
}

/// Sets the treasury account (and the schedule, when given) of `funder`.
pub async fn set_funder_settlement(
    db: &DatabaseConnection,
    funder: Uuid,
    input: &TreasuryInput,
) -> Result<FunderSettlement> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 70 {
        return Err(Error::bad_input("name", "1 to 70 characters"));
    }
    let iban = Iban::parse(&input.iban).map_err(|e| Error::bad_input("iban", e.to_string()))?;
    let bic = Bic::parse(&input.bic).map_err(|e| Error::bad_input("bic", e.to_string()))?;
    let sql = "UPDATE funder SET treasury_name = $2, treasury_iban = $3, treasury_bic = $4, \
               settlement_schedule = COALESCE($5, settlement_schedule) WHERE id = $1";
    let values = [
        funder.into(),
        name.into(),
        iban.as_str().into(),
        bic.as_str().into(),
        input.schedule.map(<&'static str>::from).map(str::to_owned).into(),
    ];
    if db.execute_raw(stmt(db.get_database_backend(), sql, values)).await?.rows_affected() == 0 {
        return Err(Error::NotFound("funder"));
    }
    funder_settlement(db, funder).await
}
