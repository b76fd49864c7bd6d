//! Storing campaigns and their policy versions.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};
use serde::Serialize;
use uuid::Uuid;

use super::policy::Policy;
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};

/// A campaign with its current policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Campaign {
    pub id: Uuid,
    pub funder_id: Uuid,
    pub school_year: i32,
    pub name: String,
    pub policy_version: i32,
    pub policy: Policy,
}

const COLUMNS: &str = "id, funder_id, school_year, name, policy_version, policy";

/// `campaign` as [`COLUMNS`] select it; `policy` is the policy's JSON.
#[derive(FromQueryResult)]
struct CampaignRow {
    id: Uuid,
    funder_id: Uuid,
    school_year: i32,
    name: String,
    policy_version: i32,
    policy: String,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = DbErr;

    fn try_from(r: CampaignRow) -> Result<Campaign, DbErr> {
        let policy =
            serde_json::from_str(&r.policy).map_err(|e| DbErr::Type(format!("campaign {} policy: {e}", r.id)))?;
        Ok(Campaign {
            id: r.id,
            funder_id: r.funder_id,
            school_year: r.school_year,
            name: r.name,
            policy_version: r.policy_version,
            policy,
        })
    }
}

pub async fn get_campaign<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Campaign> {
    let sql = format!("SELECT {COLUMNS} FROM campaign WHERE id = $1");
    let row = CampaignRow::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).one(db).await?;
    row.map(Campaign::try_from).transpose()?.ok_or(Error::NotFound("campaign"))
}

pub async fn find_campaign<C: ConnectionTrait>(db: &C, funder_id: Uuid, school_year: i32) -> Result<Option<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaign WHERE funder_id = $1 AND school_year = $2");
    let row =
        CampaignRow::find_by_statement(stmt(db.get_database_backend(), &sql, [funder_id.into(), school_year.into()]))
            .one(db)
            .await?;
    Ok(row.map(Campaign::try_from).transpose()?)
}

pub async fn list_campaigns<C: ConnectionTrait>(db: &C, funder_id: Uuid) -> Result<Vec<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaign WHERE funder_id = $1 ORDER BY school_year DESC");
    let rows =
        CampaignRow::find_by_statement(stmt(db.get_database_backend(), &sql, [funder_id.into()])).all(db).await?;
    Ok(rows.into_iter().map(Campaign::try_from).collect::<Result<_, _>>()?)
}

/// Creates the campaign of `(funder, school_year)` or changes it. A changed policy becomes a
/// new version (the old ones stay, with their author); an identical one changes nothing.
pub async fn upsert_campaign(
    db: &DatabaseConnection,
    funder_id: Uuid,
    school_year: i32,
    name: &str,
    policy: &Policy,
    author: &str,
) -> Result<Campaign> {
    policy.validate().map_err(|e| Error::bad_input(e.field, e.message))?;
    if !(2000..=2100).contains(&school_year) {
        return Err(Error::bad_input("schoolYear", "a starting year such as 2026"));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::bad_input("name", "1 to 200 characters"));
    }
    let policy_json = serde_json::to_string(policy).map_err(Error::internal)?;
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let funder = txn.query_one_raw(stmt(backend, "SELECT id FROM funder WHERE id = $1", [funder_id.into()])).await?;
    if funder.is_none() {
        return Err(Error::NotFound("funder"));
    }
    let existing = find_campaign(&txn, funder_id, school_year).await?;
    let now = now_us_sql(backend);
    let (id, version) = match existing {
        None => {
            let id = Uuid::now_v7();
            let sql = format!(
                "INSERT INTO campaign (id, funder_id, school_year, name, policy_version, policy, created_at_us, updated_at_us) \
                 VALUES ($1, $2, $3, $4, 1, $5, {now}, {now})"
            );
            let values = [id.into(), funder_id.into(), school_year.into(), name.into(), policy_json.clone().into()];
            txn.execute_raw(stmt(backend, &sql, values)).await?;
            (id, Some(1))
        }
        Some(c) if &c.policy == policy && c.name == name => (c.id, None),
        Some(c) => {
            let version = if &c.policy == policy { c.policy_version } else { c.policy_version + 1 };
            let sql = format!(
                "UPDATE campaign SET name = $2, policy = $3, policy_version = $4, updated_at_us = {now} WHERE id = $1"
            );
            let values = [c.id.into(), name.into(), policy_json.clone().into(), version.into()];
            txn.execute_raw(stmt(backend, &sql, values)).await?;
            (c.id, (version != c.policy_version).then_some(version))
        }
    };
    if let Some(version) = version {
        let sql = format!(
            "INSERT INTO campaign_policy_version (id, campaign_id, version, policy, author, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, {now})"
        );
        let values = [Uuid::now_v7().into(), id.into(), version.into(), policy_json.into(), author.into()];
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    // The deadlines as instants, where the ledger's conditional updates can compare them.
    let sql = "UPDATE campaign SET generation_deadline_us = $2, validation_deadline_us = $3 WHERE id = $1";
    let values = [id.into(), policy.generation_deadline_us().into(), policy.validation_deadline_us().into()];
    txn.execute_raw(stmt(backend, sql, values)).await?;
    let campaign = get_campaign(&txn, id).await?;
    txn.commit().await?;
    Ok(campaign)
}
