//! Approving a batch: the books say the partners are paid, and the partners are told.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};
use serde_json::json;
use uuid::Uuid;

use super::create::retryable;
use super::model::BatchStatus;
use super::read::{SettlementBatch, SettlementLine, batch_lines, get_settlement_batch};
use crate::auth::Actor;
use crate::auth::audit::{AuditEvent, record};
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::ledger::{
    AccountKind, AccountSpec, LedgerError, Leg, Operation, OutboxEvent, Scope, TransferKind, ensure_accounts,
    execute_batch_in, write_outbox,
};

/// The topic of the partner's "your money is on its way" notification (dispatched later).
pub const PARTNER_SETTLED: &str = "partner_settled";
/// Outbox rows written per statement: about 250 bound bytes each, within
/// [`crate::db::PG_STATEMENT_BYTES`].
const EVENTS_PER_STATEMENT: usize = 40;

/// Approves a draft batch: for each line, one ledger operation moving its net from the
/// partner's payable to its settled account, the batch marked approved, and one
/// `partner_settled` outbox row per partner — all in one transaction. Approving an approved
/// batch (twice, or two staff at once) returns it and moves nothing: the status changes by a
/// conditional update, and each line's operation has its own idempotency key besides.
pub async fn approve_settlement_batch(db: &DatabaseConnection, id: Uuid, actor: &Actor) -> Result<SettlementBatch> {
    let batch = get_settlement_batch(db, id).await?;
    if batch.status == BatchStatus::Approved {
        return Ok(batch);
    }
    let lines = batch_lines(db, id).await?;
    let scope = Scope::funder(batch.funder_id);
    let specs: Vec<AccountSpec> = lines
        .iter()
        .flat_map(|l| {
            [AccountKind::PartnerPayable, AccountKind::PartnerSettled]
                .map(|kind| AccountSpec::of(kind, l.partner_id, scope))
        })
        .collect();
    let refs = ensure_accounts(db, &specs).await?;
    let ops: Vec<Operation> = lines
        .iter()
        .zip(refs.chunks(2))
        .map(|(l, pair)| {
            let leg =
                Leg::Transfer { kind: TransferKind::Settlement, debit: pair[0], credit: pair[1], amount: l.amount };
            Operation::new("system:settlement", format!("settlement-line:{}", l.id), vec![leg])
                .with_metadata(json!({ "batch": id, "partner": l.partner_id }))
        })
        .collect();
    let events: Vec<OutboxEvent> = lines.iter().map(|l| settled_event(id, l)).collect();
    let mut attempt = 1;
    loop {
        let txn = begin_write(db).await?;
        match approve_in(&txn, &batch, actor, &ops, &events).await {
            Ok(_) => {
                txn.commit().await?;
                break;
            }
            Err(Error::Internal(e)) if attempt < 5 && retryable(&*e) => {
                txn.rollback().await?;
                attempt += 1;
            }
            Err(e) => {
                txn.rollback().await?;
                return Err(e);
            }
        }
    }
    get_settlement_batch(db, id).await
}

fn settled_event(batch: Uuid, line: &SettlementLine) -> OutboxEvent {
    OutboxEvent {
        topic: PARTNER_SETTLED.into(),
        account_id: None,
        payload: json!({ "reason": "settlement_paid", "batch_id": batch, "partner_id": line.partner_id }),
    }
}

/// `false` when another approval got there first (nothing written).
async fn approve_in(
    txn: &DatabaseTransaction,
    batch: &SettlementBatch,
    actor: &Actor,
    ops: &[Operation],
    events: &[OutboxEvent],
) -> Result<bool> {
    let backend = txn.get_database_backend();
    let sql = format!(
        "UPDATE settlement_batch SET status = 'approved', approved_by = $2, approved_at_us = {} \
         WHERE id = $1 AND status = 'draft'",
        now_us_sql(backend)
    );
    let done = txn.execute_raw(stmt(backend, &sql, [batch.id.into(), actor.label.clone().into()])).await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let outcome = execute_batch_in(txn, ops).await?;
    if outcome.failed > 0 {
        // Unreachable for unlimited partner books; refuse rather than approve a partial batch.
        return Err(LedgerError::Invalid(format!("{} settlement transfers were refused", outcome.failed)).into());
    }
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        write_outbox(txn, chunk).await?;
    }
    let event = AuditEvent {
        action: "settlement_batch_approved",
        actor,
        funder_id: Some(batch.funder_id),
        partner_id: None,
        subject_account_id: None,
        object_id: Some(batch.id),
        reason: None,
    };
    record(txn, &event).await?;
    Ok(true)
}
