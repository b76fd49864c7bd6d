//! A partner's legal identity and bank details: where its reimbursements go.
//!
//! The classic fraud on payouts is a changed IBAN. So a change of the payment details (IBAN,
//! BIC, account holder) clears their validation, and only a staff member *other* than the one
//! who entered them can validate them again, confirming the IBAN they checked (a change made
//! meanwhile is not validated unseen). Settlement pays validated details only and carries the
//! others over. The columns stay usable by the partner's own affiliation request later: it
//! writes them unvalidated, staff validate.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Actor;
use crate::auth::audit::{AuditEvent, record};
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::ids::{Bic, Iban, Siret};

/// What staff (or, later, the partner's affiliation request) send.
#[derive(Clone, Debug)]
pub struct BankDetailsInput {
    pub legal_name: String,
    pub siret: String,
    pub iban: String,
    pub bic: Option<String>,
    pub account_holder: String,
}

/// A partner's bank details as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BankDetails {
    pub partner_id: Uuid,
    /// The partner's funder: whose staff manage these details.
    pub funder_id: Option<Uuid>,
    pub legal_name: String,
    pub siret: Siret,
    pub iban: Iban,
    pub bic: Option<Bic>,
    pub account_holder: String,
    pub set_by: String,
    pub set_at_us: i64,
    pub validated_by: Option<String>,
    pub validated_at_us: Option<i64>,
}

impl BankDetails {
    /// Whether a transfer may go to this IBAN.
    pub fn is_validated(&self) -> bool {
        self.validated_at_us.is_some()
    }
}

/// Parsed and checked input: every field named in its own `BAD_USER_INPUT`.
pub(super) struct Checked {
    legal_name: String,
    siret: Siret,
    iban: Iban,
    bic: Option<Bic>,
    account_holder: String,
}

fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(Error::bad_input(field, format!("1 to {max} characters")));
    }
    Ok(value.to_owned())
}

pub(super) fn check(input: &BankDetailsInput) -> Result<Checked> {
    Ok(Checked {
        legal_name: text("legalName", &input.legal_name, 140)?,
        siret: Siret::parse(&input.siret).map_err(|e| Error::bad_input("siret", e.to_string()))?,
        iban: Iban::parse(&input.iban).map_err(|e| Error::bad_input("iban", e.to_string()))?,
        bic: match input.bic.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => Some(Bic::parse(b).map_err(|e| Error::bad_input("bic", e.to_string()))?),
            None => None,
        },
        // SEPA keeps 70 characters of a creditor's name.
        account_holder: text("accountHolder", &input.account_holder, 70)?,
    })
}

#[derive(FromQueryResult)]
struct BankRow {
    id: Uuid,
    funder_id: Option<Uuid>,
    legal_name: Option<String>,
    siret: Option<String>,
    iban: Option<String>,
    bic: Option<String>,
    account_holder: Option<String>,
    bank_set_by: Option<String>,
    bank_set_at_us: Option<i64>,
    bank_validated_by: Option<String>,
    bank_validated_at_us: Option<i64>,
}

const BANK_SELECT: &str = "SELECT id, funder_id, legal_name, siret, iban, bic, account_holder, bank_set_by, \
    bank_set_at_us, bank_validated_by, bank_validated_at_us FROM partner WHERE id = $1";

fn corrupt(what: &str) -> Error {
    Error::internal(sea_orm::DbErr::Type(format!("partner bank details: bad {what}")))
}

impl BankRow {
    /// `None` while no details were ever set; a stored value that no longer parses is an error.
    fn details(self) -> Result<Option<BankDetails>> {
        let (Some(iban), Some(set_at_us)) = (self.iban, self.bank_set_at_us) else { return Ok(None) };
        Ok(Some(BankDetails {
            partner_id: self.id,
            funder_id: self.funder_id,
            legal_name: self.legal_name.unwrap_or_default(),
            siret: Siret::parse(self.siret.as_deref().unwrap_or_default()).map_err(|_| corrupt("SIRET"))?,
            iban: Iban::parse(&iban).map_err(|_| corrupt("IBAN"))?,
            bic: self.bic.map(|b| Bic::parse(&b).map_err(|_| corrupt("BIC"))).transpose()?,
            account_holder: self.account_holder.unwrap_or_default(),
            set_by: self.bank_set_by.unwrap_or_default(),
            set_at_us,
            validated_by: self.bank_validated_by,
            validated_at_us: self.bank_validated_at_us,
        }))
    }
}

async fn bank_row<C: ConnectionTrait>(db: &C, partner: Uuid) -> Result<BankRow> {
    let found =
        BankRow::find_by_statement(stmt(db.get_database_backend(), BANK_SELECT, [partner.into()])).one(db).await?;
    found.ok_or(Error::NotFound("partner"))
}

/// The partner's bank details (`None`: never set). `NOT_FOUND` for an unknown partner.
pub async fn partner_bank_details<C: ConnectionTrait>(db: &C, partner: Uuid) -> Result<Option<BankDetails>> {
    bank_row(db, partner).await?.details()
}

/// The funder whose staff manage `partner`'s details (`NOT_FOUND` while it has none).
pub async fn partner_funder<C: ConnectionTrait>(db: &C, partner: Uuid) -> Result<Uuid> {
    bank_row(db, partner).await?.funder_id.ok_or(Error::NotFound("partner"))
}

/// Sets the bank details. A new IBAN, BIC or account holder clears the validation; a
/// correction of the legal name or SIRET alone keeps it.
pub async fn set_partner_bank_details(
    db: &DatabaseConnection,
    partner: Uuid,
    input: &BankDetailsInput,
    actor: &Actor,
) -> Result<BankDetails> {
    let txn = begin_write(db).await?;
    let details = set_bank_in(&txn, partner, input, actor).await?;
    txn.commit().await?;
    Ok(details)
}

/// [`set_partner_bank_details`] inside the caller's transaction (an affiliation application
/// writes the partner, its details and its request together).
pub(super) async fn set_bank_in<C: ConnectionTrait>(
    txn: &C,
    partner: Uuid,
    input: &BankDetailsInput,
    actor: &Actor,
) -> Result<BankDetails> {
    let c = check(input)?;
    let backend = txn.get_database_backend();
    let before = bank_row(txn, partner).await?;
    let same_payee = before.iban.as_deref() == Some(c.iban.as_str())
        && before.bic.as_deref() == c.bic.as_ref().map(Bic::as_str)
        && before.account_holder.as_deref() == Some(c.account_holder.as_str());
    let now = now_us_sql(backend);
    let payee = if same_payee {
        String::new()
    } else {
        format!(", bank_set_by = $7, bank_set_at_us = {now}, bank_validated_by = NULL, bank_validated_at_us = NULL")
    };
    let sql = format!(
        "UPDATE partner SET legal_name = $2, siret = $3, iban = $4, bic = $5, account_holder = $6{payee} WHERE id = $1"
    );
    let mut values: Vec<Value> = vec![
        partner.into(),
        c.legal_name.into(),
        c.siret.as_str().into(),
        c.iban.as_str().into(),
        c.bic.as_ref().map(|b| b.as_str().to_owned()).into(),
        c.account_holder.into(),
    ];
    if !same_payee {
        values.push(actor.label.clone().into());
    }
    txn.execute_raw(stmt(backend, &sql, values)).await?;
    let details = bank_row(txn, partner).await?.details()?.ok_or_else(|| corrupt("row"))?;
    audit(txn, "partner_bank_details_set", actor, &details).await?;
    Ok(details)
}

/// Who changed or validated whose bank details, for other staff (`audit_event`).
async fn audit<C: ConnectionTrait>(db: &C, action: &'static str, actor: &Actor, d: &BankDetails) -> Result<()> {
    let event = AuditEvent {
        action,
        actor,
        funder_id: d.funder_id,
        partner_id: Some(d.partner_id),
        subject_account_id: None,
        object_id: None,
        reason: None,
    };
    record(db, &event).await.map(|_| ())
}

/// Validates the partner's current payment details, which must still carry `iban` (what the
/// validator checked). The author of the details cannot validate them (`CONFLICT`).
pub async fn validate_partner_bank_details(
    db: &DatabaseConnection,
    partner: Uuid,
    iban: &str,
    actor: &Actor,
) -> Result<BankDetails> {
    let iban = Iban::parse(iban).map_err(|e| Error::bad_input("iban", e.to_string()))?;
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let details = bank_row(&txn, partner).await?.details()?.ok_or(Error::NotFound("bank details"))?;
    if details.iban != iban {
        return Err(Error::Conflict("the bank details changed since they were checked: check them again".into()));
    }
    if details.set_by == actor.label {
        return Err(Error::Conflict("bank details are validated by another staff member than their author".into()));
    }
    let sql = format!(
        "UPDATE partner SET bank_validated_by = $2, bank_validated_at_us = {} WHERE id = $1 AND iban = $3",
        now_us_sql(backend)
    );
    let values = [partner.into(), actor.label.clone().into(), iban.as_str().into()];
    txn.execute_raw(stmt(backend, &sql, values)).await?;
    let details = bank_row(&txn, partner).await?.details()?.ok_or_else(|| corrupt("row"))?;
    audit(&txn, "partner_bank_details_validated", actor, &details).await?;
    txn.commit().await?;
    Ok(details)
}
