//! Partners (clubs, conservatoires, theatres): a name, the accounts that act for it and their
//! role, its affiliation (funder, categories, status) and its bank details ([`bank`]), all on
//! the one `partner` row.
//!
//! A partner member account belongs to exactly one partner, so "the caller's partner" is never
//! ambiguous; owners also manage the partner's API clients.

mod activities;
mod affiliation;
mod bank;
mod directory;

pub use activities::{Activity, ActivityInput, activities_of, check_insee, upsert_activity};
pub(crate) use affiliation::approve_application_in;
pub use affiliation::{
    Application, CONVENTION_VERSION, PartnerKind, apply_for_affiliation, approve_partner_application,
    set_partner_suspended,
};
pub use bank::{
    BankDetails, BankDetailsInput, partner_bank_details, partner_funder, set_partner_bank_details,
    validate_partner_bank_details,
};
pub use directory::{DirectoryQuery, Found, MAX_RADIUS_KM, Near, check_point, distance_km, fold, search};

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde::Serialize;
use uuid::Uuid;

pub use crate::auth::PartnerRole;
use crate::auth::{AccountKind, account_kind};
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::ledger::Wallet;

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
        "INSERT INTO partner (id, name, search_text, created_at_us) VALUES ($1, $2, $3, {})",
        now_us_sql(db.get_database_backend())
    );
    db.execute_raw(stmt(db.get_database_backend(), &sql, [id.into(), name.into(), fold(name).into()])).await?;
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

crate::stored_enum! {
    /// Where a partner stands with the funder (`partner.status`): only approved partners are paid.
    pub enum PartnerStatus {
        Pending,
        Approved,
        Suspended,
    }
}

/// The stored categories (`"sport,culture"`): the wallets a partner accepts. An unknown name
/// is a read error, never silently dropped.
pub fn categories_from_text(text: &str) -> Result<Vec<Wallet>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| Error::internal(sea_orm::DbErr::Type(format!("unknown category {s:?}")))))
        .collect()
}

fn categories_text(categories: &[Wallet]) -> String {
    let names: Vec<&'static str> = Wallet::ALL.iter().filter(|w| categories.contains(w)).map(|w| w.into()).collect();
    names.join(",")
}

/// A partner as families and its own members see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartnerProfile {
    pub id: Uuid,
    pub name: String,
    pub funder_id: Option<Uuid>,
    pub categories: Vec<Wallet>,
    pub status: PartnerStatus,
    pub commune: Option<String>,
}

#[derive(FromQueryResult)]
struct ProfileRow {
    id: Uuid,
    name: String,
    funder_id: Option<Uuid>,
    categories: String,
    status: PartnerStatus,
    commune: Option<String>,
}

impl TryFrom<ProfileRow> for PartnerProfile {
    type Error = Error;

    fn try_from(r: ProfileRow) -> Result<Self> {
        Ok(PartnerProfile {
            categories: categories_from_text(&r.categories)?,
            id: r.id,
            name: r.name,
            funder_id: r.funder_id,
            status: r.status,
            commune: r.commune,
        })
    }
}

const PROFILE_SELECT: &str = "SELECT id, name, funder_id, categories, status, commune FROM partner";

pub async fn partner_profile<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<PartnerProfile> {
    let sql = format!("{PROFILE_SELECT} WHERE id = $1");
    let row = ProfileRow::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).one(db).await?;
    row.ok_or(Error::NotFound("partner"))?.try_into()
}

/// Affiliates a partner to a funder for these wallets and approves it (the demo, tests; the
/// staff workflow of applications and approval builds on it).
pub async fn approve_partner(
    db: &DatabaseConnection,
    partner: Uuid,
    funder: Uuid,
    categories: &[Wallet],
    commune: Option<&str>,
) -> Result<PartnerProfile> {
    if categories.is_empty() {
        return Err(Error::bad_input("categories", "at least one wallet"));
    }
    // `search_text` is the name then the commune, folded (the directory reads the commune at its end).
    let sql = "UPDATE partner SET funder_id = $2, categories = $3, status = 'approved', commune = $4, \
               search_text = $5 WHERE id = $1";
    let search = fold(&format!("{} {}", partner_profile(db, partner).await?.name, commune.unwrap_or("")));
    let values = [
        partner.into(),
        funder.into(),
        categories_text(categories).into(),
        commune.map(str::to_owned).into(),
        search.into(),
    ];
    if db.execute_raw(stmt(db.get_database_backend(), sql, values)).await?.rows_affected() == 0 {
        return Err(Error::NotFound("partner"));
    }
    partner_profile(db, partner).await
}
