//! What an approval does, inside the decision's transaction: the decision and its effect
//! commit together, so a family is never told "approved" without the credit, nor credited
//! without a recorded decision.

use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult, TransactionTrait, Value};
use uuid::Uuid;

use super::model::Request;
use super::rules::RequestKind;
use crate::campaign::get_campaign;
use crate::db::{is_unique_violation, now_us_sql, stmt};
use crate::eligibility::set_eligibility_in;
use crate::error::{Error, Result};
use crate::grant::{card_prefix, grant_pupil_in, new_card_number};

/// Applies the approval of `request`; `author` is the deciding staff member (audit).
pub(super) async fn apply(txn: &DatabaseTransaction, request: &Request, author: &str) -> Result<()> {
    let reason = format!("demande {} approuvée", request.id);
    let pupil = || request.pupil_id.ok_or(Error::NotFound("child"));
    let campaign = || async {
        let id = request.campaign_id.ok_or(Error::NotFound("campaign"))?;
        get_campaign(txn, id).await
    };
    match request.kind {
        // Eligible by decision, then the pass and its credit (boursier amount when claimed).
        RequestKind::Enrolment => {
            let campaign = campaign().await?;
            set_eligibility_in(txn, &campaign, pupil()?, true, &reason, author).await?;
            granted(grant_pupil_in(txn, &campaign, pupil()?, request.boursier_claim).await?)
        }
        // The top-up to the boursier total, once (the grant's own key).
        RequestKind::BoursierBonus => granted(grant_pupil_in(txn, &campaign().await?, pupil()?, true).await?),
        RequestKind::LostCard => replace_card(txn, request).await,
        // Wrong school data: the staff override, as `setEligibility` records it.
        RequestKind::DataCorrection => {
            set_eligibility_in(txn, &campaign().await?, pupil()?, true, &reason, author).await.map(|_| ())
        }
        // Settled with the partner (a refund is the partner's operation): the decision is the record.
        RequestKind::RedemptionDispute => Ok(()),
        // The club becomes an approved partner of the funder, for the wallets it applied for.
        RequestKind::PartnerAffiliation => {
            crate::partner::approve_application_in(txn, request.partner_id.ok_or(Error::NotFound("partner"))?).await
        }
    }
}

fn granted(summary: crate::grant::GrantSummary) -> Result<()> {
    if summary.refused > 0 {
        return Err(Error::Conflict("the ledger refused this pupil's credit".into()));
    }
    Ok(())
}

#[derive(FromQueryResult)]
struct CardRow {
    number: String,
    funder_id: Uuid,
}

/// A new card number on the same pass: balances and open tickets are the pass's wallets and
/// holds, so they carry over as they are; the old number is kept in `replaced_card` (charges
/// with it answer `CARD_BLOCKED`) and the PIN must be chosen again for the new card.
async fn replace_card(txn: &DatabaseTransaction, request: &Request) -> Result<()> {
    let pass = request.pass_id.ok_or(Error::NotFound("pass"))?;
    let backend = txn.get_database_backend();
    let sql = "SELECT p.number, c.funder_id FROM pass p JOIN campaign c ON c.id = p.campaign_id WHERE p.id = $1";
    let card = CardRow::find_by_statement(stmt(backend, sql, [pass.into()])).one(txn).await?;
    let card = card.ok_or(Error::NotFound("pass"))?;
    let prefix = card_prefix(txn, card.funder_id).await?;
    let now = now_us_sql(backend);
    let keep = format!(
        "INSERT INTO replaced_card (id, number, pass_id, request_id, created_at_us) VALUES ($1, $2, $3, $4, {now})"
    );
    let values: [Value; 4] = [Uuid::now_v7().into(), card.number.clone().into(), pass.into(), request.id.into()];
    txn.execute_raw(stmt(backend, &keep, values)).await?;
    let swap = "UPDATE pass SET number = $1, status = 'active', pin_hash = NULL, pin_failures = 0 \
                WHERE id = $2 AND status IN ('active', 'blocked')";
    for _ in 0..5 {
        // A drawn number already taken fails on the unique index: only this savepoint rolls back.
        let attempt = txn.begin().await?;
        let number = new_card_number(&prefix)?;
        match attempt.execute_raw(stmt(backend, swap, [number.into(), pass.into()])).await {
            Ok(r) if r.rows_affected() == 1 => {
                attempt.commit().await?;
                return Ok(());
            }
            Ok(_) => return Err(Error::Conflict("this card can no longer be replaced".into())),
            Err(e) if is_unique_violation(&e) => attempt.rollback().await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict("no free card number was drawn: try again".into()))
}
