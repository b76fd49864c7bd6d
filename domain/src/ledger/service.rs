//! Runs an [`Operation`] against the database: one transaction, conditional updates,
//! idempotency row and outbox rows together.
//!
//! Order of work inside the transaction — it matters for correctness, for deadlocks and for
//! how long hot rows stay locked:
//! 1. claim the idempotency key (`INSERT … ON CONFLICT DO NOTHING RETURNING`). The row says
//!    `succeeded` at once: it only becomes visible if the transaction commits, and a refusal
//!    rolls it back with everything else. A concurrent request with the same key waits on the
//!    unique index, then finds the key taken and replays. The returned time is the database
//!    clock for the whole operation;
//! 2. resolve holds with conditional updates on `ledger_hold.state` (in hold-id order);
//! 3. apply the summed delta of each *limited* account (pass wallets) with one conditional
//!    update each, in id order, refusing any that would be overdrawn;
//! 4. insert the transfer, hold and outbox rows;
//! 5. apply the deltas of *unlimited* accounts (budgets, partner books) last, in id order:
//!    these rows are shared by many operations, so they are locked only for the final update
//!    and the commit.
//!
//! Every transaction takes locks in one global order (holds, limited accounts, unlimited
//! accounts; each by id), so two operations never wait on each other in a cycle. Deadlock or
//! serialization failures reported by the database anyway are retried (the operation is
//! atomic, so a retry is safe). A refusal rolls everything back, then records the refusal on
//! the key in a second short transaction, so the same key keeps getting the same refusal.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Value};
use uuid::Uuid;

use super::model::*;
use crate::db::{begin_write, is_retryable, now_us_sql, stmt};
use crate::money::Cents;

const ATTEMPTS: usize = 5;

/// Executes `op`, or replays the stored result of an earlier call with the same key.
pub async fn execute(db: &DatabaseConnection, op: &Operation) -> Result<Outcome, LedgerError> {
    op.validate()?;
    let fingerprint = op.fingerprint();
    let mut attempt = 1;
    loop {
        match try_execute(db, op, &fingerprint).await {
            Err(LedgerError::Db(e)) if attempt < ATTEMPTS && is_retryable(&e) => {
                tracing::debug!(error = %e, attempt, "ledger operation retried");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn try_execute(db: &DatabaseConnection, op: &Operation, fingerprint: &str) -> Result<Outcome, LedgerError> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let op_id = Uuid::now_v7();
    let claim = format!(
        "INSERT INTO idempotency_key (id, scope, key, fingerprint, outcome, created_at_us) \
         VALUES ($1, $2, $3, $4, 'succeeded', {}) ON CONFLICT (scope, key) DO NOTHING RETURNING created_at_us",
        now_us_sql(backend)
    );
    let values = [op_id.into(), op.scope.clone().into(), op.key.clone().into(), fingerprint.to_owned().into()];
    let Some(row) = txn.query_one_raw(stmt(backend, &claim, values)).await? else {
        let prior = load_key(&txn, &op.scope, &op.key).await;
        txn.commit().await?;
        return prior?.replay(db, fingerprint).await;
    };
    let now: i64 = row.try_get("", "created_at_us")?;
    match apply(&txn, op_id, now, op).await {
        Ok(outcome) => {
            txn.commit().await?;
            Ok(outcome)
        }
        Err(LedgerError::Rejected(rejection)) => {
            txn.rollback().await?;
            record_rejection(db, op, fingerprint, rejection).await
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}

/// Stores a refusal on the key (unless another request took the key meanwhile) and returns it.
async fn record_rejection(
    db: &DatabaseConnection,
    op: &Operation,
    fingerprint: &str,
    rejection: Rejection,
) -> Result<Outcome, LedgerError> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let sql = format!(
        "INSERT INTO idempotency_key (id, scope, key, fingerprint, outcome, result, error_code, created_at_us) \
         VALUES ($1, $2, $3, $4, 'failed', $5, $6, {}) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
        now_us_sql(backend)
    );
    let result = serde_json::to_string(&rejection).map_err(|e| DbErr::Custom(e.to_string()))?;
    let values: [Value; 6] = [
        Uuid::now_v7().into(),
        op.scope.clone().into(),
        op.key.clone().into(),
        fingerprint.to_owned().into(),
        result.into(),
        rejection.code().into(),
    ];
    if txn.query_one_raw(stmt(backend, &sql, values)).await?.is_some() {
        txn.commit().await?;
        return Err(rejection.into());
    }
    let prior = load_key(&txn, &op.scope, &op.key).await;
    txn.commit().await?;
    prior?.replay(db, fingerprint).await
}

/// A committed idempotency row.
struct StoredKey {
    id: Uuid,
    fingerprint: String,
    outcome: String,
    result: Option<String>,
    created_at_us: i64,
}

impl StoredKey {
    /// The original answer: the same transfers for a success, the same refusal for a failure.
    async fn replay<C: ConnectionTrait>(self, db: &C, fingerprint: &str) -> Result<Outcome, LedgerError> {
        if self.fingerprint != fingerprint {
            return Err(LedgerError::IdempotencyConflict);
        }
        match self.outcome.as_str() {
            "succeeded" => {
                let sql = format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfer WHERE op_id = $1 ORDER BY leg");
                let rows = db.query_all_raw(stmt(db.get_database_backend(), &sql, [self.id.into()])).await?;
                let transfers = rows.iter().map(transfer_from_row).collect::<Result<Vec<_>, DbErr>>()?;
                Ok(Outcome { op_id: self.id, transfers, created_at_us: self.created_at_us, replayed: true })
            }
            _ => {
                let body = self.result.unwrap_or_default();
                let rejection = serde_json::from_str(&body)
                    .map_err(|e| LedgerError::Db(DbErr::Custom(format!("stored refusal: {e}"))))?;
                Err(LedgerError::Rejected(rejection))
            }
        }
    }
}

async fn load_key<C: ConnectionTrait>(db: &C, scope: &str, key: &str) -> Result<StoredKey, LedgerError> {
    let sql =
        "SELECT id, fingerprint, outcome, result, created_at_us FROM idempotency_key WHERE scope = $1 AND key = $2";
    let row = db
        .query_one_raw(stmt(db.get_database_backend(), sql, [scope.into(), key.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("idempotency key".into()))?;
    Ok(StoredKey {
        id: row.try_get("", "id")?,
        fingerprint: row.try_get("", "fingerprint")?,
        outcome: row.try_get("", "outcome")?,
        result: row.try_get("", "result")?,
        created_at_us: row.try_get("", "created_at_us")?,
    })
}

pub(crate) const TRANSFER_COLUMNS: &str =
    "id, kind, phase, debit_account_id, credit_account_id, amount, pending_id, expires_at_us, created_at_us";

pub(crate) fn transfer_from_row(row: &QueryResult) -> Result<TransferRecord, DbErr> {
    let phase: String = row.try_get("", "phase")?;
    let kind: String = row.try_get("", "kind")?;
    Ok(TransferRecord {
        id: row.try_get("", "id")?,
        kind: TransferKind::parse(&kind),
        phase: Phase::parse(&phase).ok_or_else(|| DbErr::Custom(format!("unknown phase {phase}")))?,
        debit: row.try_get("", "debit_account_id")?,
        credit: row.try_get("", "credit_account_id")?,
        amount: Cents(row.try_get("", "amount")?),
        pending_id: row.try_get("", "pending_id")?,
        expires_at_us: row.try_get("", "expires_at_us")?,
        created_at_us: row.try_get("", "created_at_us")?,
    })
}

/// Per-account deltas, split by lock class.
#[derive(Default)]
struct Deltas {
    limited: BTreeMap<AccountId, Delta>,
    unlimited: BTreeMap<AccountId, Delta>,
}

impl Deltas {
    fn of(&mut self, account: AccountRef) -> &mut Delta {
        let map = if account.limited { &mut self.limited } else { &mut self.unlimited };
        map.entry(account.id).or_default()
    }
}

/// The legs' effect, computed and written inside the open transaction.
async fn apply<C: ConnectionTrait>(db: &C, op_id: Uuid, now: i64, op: &Operation) -> Result<Outcome, LedgerError> {
    let backend = db.get_database_backend();
    let mut deltas = Deltas::default();
    let mut transfers = Vec::with_capacity(op.legs.len());
    let mut new_holds = Vec::new();

    let mut resolutions: Vec<(usize, TransferId)> =
        op.legs.iter().enumerate().filter_map(|(i, l)| resolution_hold(l).map(|h| (i, h))).collect();
    resolutions.sort_by_key(|(_, h)| *h);
    let mut resolved: Vec<Option<TransferRecord>> = vec![None; op.legs.len()];
    for (i, _) in resolutions {
        resolved[i] = Some(resolve_hold(db, op_id, now, &op.legs[i], &mut deltas).await?);
    }

    for (i, leg) in op.legs.iter().enumerate() {
        let record = match leg {
            Leg::Transfer { kind, debit, credit, amount } => {
                deltas.of(*debit).debits_posted += amount.0;
                deltas.of(*credit).credits_posted += amount.0;
                record(Some(*kind), Phase::Posted, debit.id, credit.id, *amount, None, None, now)
            }
            Leg::Hold { kind, debit, credit, amount, timeout_ms } => {
                deltas.of(*debit).debits_pending += amount.0;
                deltas.of(*credit).credits_pending += amount.0;
                let expires = now.saturating_add(timeout_ms.saturating_mul(1000));
                let r = record(Some(*kind), Phase::Pending, debit.id, credit.id, *amount, None, Some(expires), now);
                new_holds.push(r.clone());
                r
            }
            _ => resolved[i].take().ok_or_else(|| LedgerError::Invalid("unresolved hold leg".into()))?,
        };
        transfers.push(record);
    }

    for (account, delta) in &deltas.limited {
        apply_delta(db, *account, delta, true).await?;
    }
    insert_transfers(db, backend, op_id, &transfers).await?;
    insert_holds(db, backend, &new_holds).await?;
    write_events(db, now, &op.events).await?;
    for (account, delta) in &deltas.unlimited {
        apply_delta(db, *account, delta, false).await?;
    }
    Ok(Outcome { op_id, transfers, created_at_us: now, replayed: false })
}

fn resolution_hold(leg: &Leg) -> Option<TransferId> {
    match leg {
        Leg::Post { hold, .. } | Leg::Void { hold } | Leg::Expire { hold } => Some(*hold),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    kind: Option<TransferKind>,
    phase: Phase,
    debit: AccountId,
    credit: AccountId,
    amount: Cents,
    pending_id: Option<TransferId>,
    expires_at_us: Option<i64>,
    now: i64,
) -> TransferRecord {
    TransferRecord {
        id: Uuid::now_v7(),
        kind,
        phase,
        debit,
        credit,
        amount,
        pending_id,
        expires_at_us,
        created_at_us: now,
    }
}

/// Moves a hold out of `pending` with one conditional update, then books its effect.
async fn resolve_hold<C: ConnectionTrait>(
    db: &C,
    op_id: Uuid,
    now: i64,
    leg: &Leg,
    deltas: &mut Deltas,
) -> Result<TransferRecord, LedgerError> {
    let hold = resolution_hold(leg).ok_or_else(|| LedgerError::Invalid("not a hold leg".into()))?;
    let (state, phase, time_rule) = match leg {
        Leg::Post { .. } => ("posted", Phase::PostPending, "AND expires_at_us > $3"),
        Leg::Void { .. } => ("voided", Phase::VoidPending, ""),
        _ => ("expired", Phase::ExpirePending, "AND expires_at_us <= $3"),
    };
    let sql = format!(
        "UPDATE ledger_hold SET state = '{state}', resolved_by = $2, resolved_at_us = $3 \
         WHERE transfer_id = $1 AND state = 'pending' {time_rule} \
         RETURNING debit_account_id, debit_limited, credit_account_id, credit_limited, amount"
    );
    let backend = db.get_database_backend();
    let Some(row) = db.query_one_raw(stmt(backend, &sql, [hold.into(), op_id.into(), now.into()])).await? else {
        return Err(diagnose_hold(db, hold, now, phase).await?.into());
    };
    let debit = AccountRef { id: row.try_get("", "debit_account_id")?, limited: row.try_get("", "debit_limited")? };
    let credit = AccountRef { id: row.try_get("", "credit_account_id")?, limited: row.try_get("", "credit_limited")? };
    let held: i64 = row.try_get("", "amount")?;
    let moved = match leg {
        Leg::Post { amount: Some(a), .. } if a.0 > held => return Err(Rejection::AmountExceedsHold.into()),
        Leg::Post { amount, .. } => amount.map_or(held, |a| a.0),
        _ => held,
    };
    deltas.of(debit).debits_pending -= held;
    deltas.of(credit).credits_pending -= held;
    if phase == Phase::PostPending {
        deltas.of(debit).debits_posted += moved;
        deltas.of(credit).credits_posted += moved;
    }
    Ok(record(None, phase, debit.id, credit.id, Cents(moved), Some(hold), None, now))
}

/// Explains why a hold could not change state (only on the refusal path).
async fn diagnose_hold<C: ConnectionTrait>(
    db: &C,
    hold: TransferId,
    now: i64,
    phase: Phase,
) -> Result<Rejection, DbErr> {
    let sql = "SELECT state, expires_at_us FROM ledger_hold WHERE transfer_id = $1";
    let Some(row) = db.query_one_raw(stmt(db.get_database_backend(), sql, [hold.into()])).await? else {
        return Ok(Rejection::HoldNotFound { hold });
    };
    let state: String = row.try_get("", "state")?;
    let expires: i64 = row.try_get("", "expires_at_us")?;
    Ok(match (state.as_str(), phase) {
        ("pending", Phase::PostPending) if expires <= now => Rejection::HoldExpired,
        ("pending", Phase::ExpirePending) if expires > now => Rejection::HoldNotExpired,
        _ => Rejection::HoldNotPending,
    })
}

/// One conditional update per account: the whole check-and-write is a single statement, so
/// concurrent writers serialise on the row and each re-checks the limit on the latest value.
pub(super) async fn apply_delta<C: ConnectionTrait>(
    db: &C,
    account: AccountId,
    d: &Delta,
    limited: bool,
) -> Result<(), LedgerError> {
    let rule = if limited {
        "(must_not_overdraw = FALSE OR credits_posted + $2 - debits_posted - $3 - debits_pending - $5 >= 0)"
    } else {
        "must_not_overdraw = FALSE"
    };
    let sql = format!(
        "UPDATE ledger_account SET credits_posted = credits_posted + $2, debits_posted = debits_posted + $3, \
         credits_pending = credits_pending + $4, debits_pending = debits_pending + $5 WHERE id = $1 AND {rule}"
    );
    let values = [
        account.into(),
        d.credits_posted.into(),
        d.debits_posted.into(),
        d.credits_pending.into(),
        d.debits_pending.into(),
    ];
    let backend = db.get_database_backend();
    if db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected() == 1 {
        return Ok(());
    }
    let exists = db
        .query_one_raw(stmt(backend, "SELECT id FROM ledger_account WHERE id = $1", [account.into()]))
        .await?
        .is_some();
    // An unlimited reference to a limited account matches no row: refused like an unknown account.
    Err(if exists && limited {
        Rejection::InsufficientFunds { account }
    } else {
        Rejection::AccountNotFound { account }
    }
    .into())
}

/// `($1, $2, …), ($n+1, …)` for a multi-row insert.
pub(super) fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert_transfers<C: ConnectionTrait>(
    db: &C,
    _backend: DbBackend,
    op_id: Uuid,
    transfers: &[TransferRecord],
) -> Result<(), DbErr> {
    let rows: Vec<(Uuid, usize, TransferRecord)> =
        transfers.iter().enumerate().map(|(leg, t)| (op_id, leg, t.clone())).collect();
    insert_transfer_rows(db, &rows).await
}

/// Multi-row insert of `(operation id, leg number, transfer)` rows.
pub(super) async fn insert_transfer_rows<C: ConnectionTrait>(
    db: &C,
    rows: &[(Uuid, usize, TransferRecord)],
) -> Result<(), DbErr> {
    let sql = format!(
        "INSERT INTO ledger_transfer (id, op_id, leg, kind, phase, debit_account_id, credit_account_id, amount, \
         pending_id, expires_at_us, created_at_us) VALUES {}",
        placeholders(rows.len(), 11)
    );
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 11);
    for (op_id, leg, t) in rows {
        values.extend([
            t.id.into(),
            (*op_id).into(),
            (*leg as i32).into(),
            t.kind.map_or("resolution", TransferKind::as_str).into(),
            t.phase.as_str().into(),
            t.debit.into(),
            t.credit.into(),
            t.amount.0.into(),
            t.pending_id.into(),
            t.expires_at_us.into(),
            t.created_at_us.into(),
        ]);
    }
    db.execute_raw(stmt(db.get_database_backend(), &sql, values)).await.map(|_| ())
}

/// Holds remember whether each side is limited, so resolving one keeps the lock order.
async fn insert_holds<C: ConnectionTrait>(db: &C, backend: DbBackend, holds: &[TransferRecord]) -> Result<(), DbErr> {
    if holds.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO ledger_hold (transfer_id, debit_account_id, debit_limited, credit_account_id, credit_limited, \
               amount, expires_at_us, state) SELECT $1, $2, d.must_not_overdraw, $3, c.must_not_overdraw, $4, $5, 'pending' \
               FROM ledger_account d, ledger_account c WHERE d.id = $2 AND c.id = $3";
    for h in holds {
        let values: [Value; 5] = [
            h.id.into(),
            h.debit.into(),
            h.credit.into(),
            h.amount.0.into(),
            h.expires_at_us.unwrap_or(h.created_at_us).into(),
        ];
        db.execute_raw(stmt(backend, sql, values)).await?;
    }
    Ok(())
}

async fn write_events<C: ConnectionTrait>(db: &C, now: i64, events: &[OutboxEvent]) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO outbox (id, topic, account_id, payload, created_at_us, attempts, next_attempt_at_us) VALUES {}",
        placeholders(events.len(), 7)
    );
    let mut values: Vec<Value> = Vec::with_capacity(events.len() * 7);
    for e in events {
        values.extend([
            Uuid::now_v7().into(),
            e.topic.clone().into(),
            e.account_id.into(),
            e.payload.to_string().into(),
            now.into(),
            0i32.into(),
            now.into(),
        ]);
    }
    db.execute_raw(stmt(db.get_database_backend(), &sql, values)).await.map(|_| ())
}

/// Expires up to `limit` holds whose timeout has passed, each as its own idempotent operation
/// (key `expire:<hold>`), so a scheduler crash or two schedulers racing expire nothing twice.
/// Returns how many holds this call expired.
pub async fn expire_due_holds(db: &DatabaseConnection, limit: u64) -> Result<u64, LedgerError> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT transfer_id FROM ledger_hold WHERE state = 'pending' AND expires_at_us <= {} \
         ORDER BY expires_at_us LIMIT {limit}",
        now_us_sql(backend)
    );
    let rows = db.query_all_raw(stmt(backend, &sql, [])).await?;
    let mut expired = 0;
    for row in rows {
        let hold: Uuid = row.try_get("", "transfer_id")?;
        let op = Operation::new("system:scheduler", format!("expire:{hold}"), vec![Leg::Expire { hold }]);
        match execute(db, &op).await {
            Ok(o) if !o.replayed => expired += 1,
            Ok(_) | Err(LedgerError::Rejected(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}
