//! The scheduler's work, run by every node (`passerelle serve` and `passerelle worker`):
//! - tickets past their validity: their holds are expired (the credit goes back, or to the
//!   expired credit after the generation deadline);
//! - campaigns past their generation deadline: what is left in each wallet moves to the
//!   campaign's expired credit, one transfer per wallet;
//! - 30 and 7 days before that deadline: a reminder to the families who still hold credit.
//!
//! Every step is a ledger operation under a key derived from what it does, so two nodes
//! sweeping at once, or a node crashing half-way, never move anything twice.

use sea_orm::{DatabaseConnection, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::books::{expired_credit, pass_changed};
use crate::db::{now_us, stmt};
use crate::error::Result;
use crate::ledger::{
    AccountRef, LedgerError, Leg, Operation, Scope, TransferKind, ensure_account, execute, expire_due_holds,
};
use crate::money::Cents;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub holds_expired: u64,
    pub wallets_closed: u64,
    /// Wallets left for the next sweep (an error, a key taken by a racing node).
    pub skipped: u64,
    /// "Credit about to be lost" reminders written (30 and 7 days before the deadline).
    pub reminders: u64,
}

#[derive(FromQueryResult)]
struct OpenWallet {
    id: Uuid,
    owner_id: Uuid,
    funder_id: Uuid,
    campaign_id: Uuid,
    debits_posted: i64,
    available: i64,
}

/// One pass of the scheduler over at most `limit` holds and `limit` wallets per page.
pub async fn sweep(db: &DatabaseConnection, limit: u64) -> Result<SweepReport> {
    let mut report = SweepReport {
        holds_expired: expire_due_holds(db, limit).await?,
        reminders: super::remind(db, limit).await?,
        ..Default::default()
    };
    let now = now_us(db).await?;
    let mut after = Uuid::nil();
    loop {
        let sql = "SELECT a.id, a.owner_id, a.funder_id, a.campaign_id, a.debits_posted, \
                   a.credits_posted - a.debits_posted - a.debits_pending AS available \
                   FROM ledger_account a JOIN campaign c ON c.id = a.campaign_id \
                   WHERE a.kind = 'pass_wallet' AND c.generation_deadline_us <= $1 \
                   AND a.credits_posted - a.debits_posted - a.debits_pending > 0 AND a.id > $2 ORDER BY a.id LIMIT $3";
        let values: [Value; 3] = [now.into(), after.into(), (limit as i64).into()];
        let page = OpenWallet::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let full = page.len() as u64 == limit;
        for w in page {
            match close_wallet(db, &w).await {
                Ok(true) => report.wallets_closed += 1,
                // Another node closed it a moment ago (same key): nothing moved here.
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(wallet = %w.id, error = %e, "wallet left open for the next sweep");
                    report.skipped += 1;
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(report)
}

/// Moves what is left in one wallet to the campaign's expired credit. The key names the
/// wallet and its posted debits: nodes that read the same wallet share the key, and a later
/// close of the same wallet (credit given back after the deadline) gets a new one. True when
/// this call moved the money (not a replay of another node's close).
async fn close_wallet(db: &DatabaseConnection, w: &OpenWallet) -> Result<bool, LedgerError> {
    let scope = Scope::campaign(w.funder_id, w.campaign_id);
    let wallet = AccountRef { id: w.id, limited: true, scope };
    let lost = ensure_account(db, expired_credit(w.funder_id, w.campaign_id)).await?;
    let op = Operation::new(
        "system:scheduler",
        format!("close-wallet:{}:{}", w.id, w.debits_posted),
        vec![Leg::Transfer { kind: TransferKind::Expiry, debit: wallet, credit: lost, amount: Cents(w.available) }],
    )
    .with_events(vec![pass_changed(w.owner_id, "credit_expired")]);
    execute(db, &op).await.map(|outcome| !outcome.replayed)
}
