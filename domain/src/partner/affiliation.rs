//! A club joins: it applies (who it is, where, what it offers, its bank details, the
//! convention accepted by a named member), staff approve or reject through the request
//! workflow, and staff may suspend it later — which stops its redemptions, card charges and
//! new tickets at once (spending accepts approved partners only).

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, Value};
use uuid::Uuid;

use super::activities::check_insee;
use super::bank::{BankDetailsInput, check, set_bank_in};
use super::directory::{check_point, fold};
use super::{PartnerProfile, PartnerStatus, categories_text, partner_profile};
use crate::auth::{AccountKind, Actor, Principal};
use crate::db::{begin_write, now_us, stmt};
use crate::error::{Error, Result};
use crate::ledger::Wallet;
use crate::request::{Act, Action, Request, RequestCaller};

/// The convention a club accepts today; an application naming another version is refused,
/// so nobody is bound by a text they did not see.
pub const CONVENTION_VERSION: &str = "2026-09";

crate::stored_enum! {
    /// What kind of body a partner is (Yvelines FAQ §I.5).
    pub enum PartnerKind {
        Association,
        Company,
        PublicBody,
    }
}

/// A club's application.
#[derive(Clone, Debug)]
pub struct Application {
    pub funder_id: Uuid,
    /// The name families see.
    pub name: String,
    pub kind: PartnerKind,
    pub categories: Vec<Wallet>,
    pub address: String,
    pub postcode: String,
    pub commune: String,
    pub commune_insee: String,
    pub lat: f64,
    pub lon: f64,
    pub contact_email: String,
    pub contact_phone: Option<String>,
    /// Legal name, SIRET, IBAN, BIC, account holder.
    pub bank: BankDetailsInput,
    pub convention_version: String,
    pub accept_convention: bool,
    pub message: Option<String>,
}

fn field(name: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(Error::bad_input(name, format!("1 to {max} characters")));
    }
    Ok(v.to_owned())
}

fn validate(a: &Application) -> Result<()> {
    field("name", &a.name, 200)?;
    if a.categories.is_empty() {
        return Err(Error::bad_input("categories", "at least one wallet"));
    }
    field("address", &a.address, 300)?;
    if !(a.postcode.trim().len() == 5 && a.postcode.trim().chars().all(|c| c.is_ascii_digit())) {
        return Err(Error::bad_input("postcode", "five digits"));
    }
    field("commune", &a.commune, 100)?;
    check_insee(&a.commune_insee)?;
    check_point("lat", "lon", a.lat, a.lon)?;
    let email = field("contactEmail", &a.contact_email, 254)?;
    if !email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')) {
        return Err(Error::bad_input("contactEmail", "an e-mail address"));
    }
    if a.contact_phone.as_deref().is_some_and(|p| p.trim().chars().count() > 20) {
        return Err(Error::bad_input("contactPhone", "at most 20 characters"));
    }
    if !a.accept_convention {
        return Err(Error::bad_input("acceptConvention", "the convention must be accepted"));
    }
    if a.convention_version.trim() != CONVENTION_VERSION {
        return Err(Error::bad_input("conventionVersion", format!("the current convention is {CONVENTION_VERSION}")));
    }
    check(&a.bank).map(|_| ())
}

/// A partner member account without a partner applies: the partner (pending), its details,
/// the applicant as its owner, the convention's acceptance (version, time, member) and the
/// affiliation request, in one transaction.
pub async fn apply_for_affiliation(db: &DatabaseConnection, applicant: &Principal, a: &Application) -> Result<Request> {
    if applicant.account.kind != AccountKind::PartnerMember {
        return Err(Error::Forbidden);
    }
    if applicant.partner.is_some() {
        return Err(Error::Conflict("this account already acts for a partner".into()));
    }
    validate(a)?;
    let txn = begin_write(db).await?;
    let backend = txn.get_database_backend();
    if txn.query_one_raw(stmt(backend, "SELECT id FROM funder WHERE id = $1", [a.funder_id.into()])).await?.is_none() {
        return Err(Error::NotFound("funder"));
    }
    let now = now_us(&txn).await?;
    let partner = Uuid::now_v7();
    let name = a.name.trim();
    let commune = a.commune.trim();
    let sql = "INSERT INTO partner (id, name, funder_id, categories, status, commune, kind, address, postcode, \
               commune_insee, lat, lon, contact_email, contact_phone, search_text, convention_version, \
               convention_accepted_at_us, convention_accepted_by, created_at_us) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $17)";
    let values: [Value; 18] = [
        partner.into(),
        name.into(),
        a.funder_id.into(),
        categories_text(&a.categories).into(),
        PartnerStatus::Pending.into(),
        commune.into(),
        a.kind.into(),
        a.address.trim().into(),
        a.postcode.trim().into(),
        check_insee(&a.commune_insee)?.into(),
        a.lat.into(),
        a.lon.into(),
        a.contact_email.trim().into(),
        a.contact_phone.as_deref().map(str::trim).map(str::to_owned).into(),
        fold(&format!("{name} {commune}")).into(),
        CONVENTION_VERSION.into(),
        now.into(),
        applicant.account.id.into(),
    ];
    txn.execute_raw(stmt(backend, sql, values)).await?;
    let actor = Actor::account(applicant.account.id, &applicant.account.email);
    set_bank_in(&txn, partner, &a.bank, &actor).await?;
    let sql =
        "INSERT INTO partner_member (id, account_id, partner_id, role, created_at_us) VALUES ($1, $2, $3, $4, $5)";
    let values: [Value; 5] = [
        Uuid::now_v7().into(),
        applicant.account.id.into(),
        partner.into(),
        super::PartnerRole::Owner.into(),
        now.into(),
    ];
    if let Err(e) = txn.execute_raw(stmt(backend, sql, values)).await {
        return Err(if crate::db::is_unique_violation(&e) {
            Error::Conflict("this account already acts for a partner".into())
        } else {
            e.into()
        });
    }
    let message = a.message.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned);
    let request =
        crate::request::file_affiliation_in(&txn, applicant.account.id, partner, a.funder_id, message).await?;
    txn.commit().await?;
    Ok(request)
}

/// The approval's effect (inside the decision's transaction): a pending partner becomes approved.
pub(crate) async fn approve_application_in(txn: &DatabaseTransaction, partner: Uuid) -> Result<()> {
    let sql = "UPDATE partner SET status = $2 WHERE id = $1 AND status = $3";
    let values: [Value; 3] = [partner.into(), PartnerStatus::Approved.into(), PartnerStatus::Pending.into()];
    if txn.execute_raw(stmt(txn.get_database_backend(), sql, values)).await?.rows_affected() != 1 {
        return Err(Error::Conflict("only a pending partner is approved".into()));
    }
    Ok(())
}

#[derive(FromQueryResult)]
struct OpenRequest {
    id: Uuid,
}

/// `approvePartner`: approves the partner's open affiliation request (the request workflow's
/// approval, with its event and the club's notification).
pub async fn approve_partner_application(
    db: &DatabaseConnection,
    staff: &Principal,
    partner: Uuid,
) -> Result<PartnerProfile> {
    let sql = "SELECT id FROM request WHERE partner_id = $1 AND kind = 'partner_affiliation' AND open_key IS NOT NULL";
    let open = OpenRequest::find_by_statement(stmt(db.get_database_backend(), sql, [partner.into()])).one(db).await?;
    let open = open.ok_or(Error::NotFound("application"))?;
    let caller = RequestCaller::Staff { principal: staff, on_behalf: false };
    crate::request::act(db, &caller, open.id, &Act::new(Action::Approve)).await?;
    partner_profile(db, partner).await
}

/// Suspends (or reinstates) an approved partner: from the next request on, it redeems,
/// charges and is paid nothing, and no ticket names it. Staff who handle its funder's
/// requests (they approved it); audited.
pub async fn set_partner_suspended(
    db: &DatabaseConnection,
    staff: &Principal,
    partner: Uuid,
    suspended: bool,
    reason: &str,
) -> Result<PartnerProfile> {
    let reason = field("reason", reason, 1000)?;
    let found = partner_profile(db, partner).await?;
    let funder = found.funder_id.ok_or(Error::NotFound("partner"))?;
    if !staff.has_role(funder, crate::request::HANDLERS) {
        return Err(Error::NotFound("partner"));
    }
    let (from, to) = if suspended {
        (PartnerStatus::Approved, PartnerStatus::Suspended)
    } else {
        (PartnerStatus::Suspended, PartnerStatus::Approved)
    };
    let txn = begin_write(db).await?;
    let sql = "UPDATE partner SET status = $2 WHERE id = $1 AND status = $3";
    let values: [Value; 3] = [partner.into(), to.into(), from.into()];
    if txn.execute_raw(stmt(txn.get_database_backend(), sql, values)).await?.rows_affected() != 1 {
        return Err(Error::Conflict(format!("the partner is {}, not {from}", found.status)));
    }
    let event = crate::auth::audit::AuditEvent {
        action: if suspended { "partner_suspended" } else { "partner_reinstated" },
        actor: &Actor::account(staff.account.id, &staff.account.email),
        funder_id: Some(funder),
        partner_id: Some(partner),
        subject_account_id: None,
        object_id: None,
        reason: Some(&reason),
    };
    crate::auth::audit::record(&txn, &event).await?;
    txn.commit().await?;
    partner_profile(db, partner).await
}
