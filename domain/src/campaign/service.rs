//! Storing campaigns and their policy versions.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult};
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

fn from_row(row: &QueryResult) -> Result<Campaign> {
    let policy: String = row.try_get("", "policy")?;
    Ok(Campaign {
        id: row.try_get("", "id")?,
        funder_id: row.try_get("", "funder_id")?,
        school_year: row.try_get("", "school_year")?,
        name: row.try_get("", "name")?,
        policy_version: row.try_get("", "policy_version")?,
        policy: serde_json::from_str(&policy).map_err(|e| Error::internal(DbErr::Custom(format!("policy: {e}"))))?,
    })
}

pub async fn get_campaign<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Campaign> {
    let sql = format!("SELECT {COLUMNS} FROM campaign WHERE id = $1");
    match db.query_one_raw(stmt(db.get_database_backend(), &sql, [id.into()])).await? {
        Some(row) => from_row(&row),
        None => Err(Error::NotFound("campaign")),
    }
}

pub async fn find_campaign<C: ConnectionTrait>(db: &C, funder_id: Uuid, school_year: i32) -> Result<Option<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaign WHERE funder_id = $1 AND school_year = $2");
    let row = db.query_one_raw(stmt(db.get_database_backend(), &sql, [funder_id.into(), school_year.into()])).await?;
    row.map(|r| from_row(&r)).transpose()
}

pub async fn list_campaigns<C: ConnectionTrait>(db: &C, funder_id: Uuid) -> Result<Vec<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaign WHERE funder_id = $1 ORDER BY school_year DESC");
    let rows = db.query_all_raw(stmt(db.get_database_backend(), &sql, [funder_id.into()])).await?;
    rows.iter().map(from_row).collect()
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
