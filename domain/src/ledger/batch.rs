//! Many operations in one transaction, for bulk jobs (the yearly grant, settlements).
//!
//! Per-operation transactions cost a commit (an fsync) each: 75,000 pupils would take minutes.
//! Here a batch claims all its keys with one multi-row insert, sums the deltas of the newly
//! claimed operations per account, applies them with one conditional update per account (in the
//! same global lock order as [`super::execute`]) and writes all transfers, then commits once.
//! Keys already used are skipped: reported as replays when their first run succeeded, as failed
//! when it was refused, and as a conflict when the request differs. Only posted transfers are
//! allowed: holds belong to interactive flows. A refusal (an overdraft, an unknown account)
//! rolls back the whole batch: bulk jobs then fall back to [`super::execute`] per operation so
//! the one culprit is recorded and the rest go through. The outbox events of the operations
//! run now are written with them (a multi-row insert, each distinct event once); a replayed
//! operation writes none.
//!
//! Deltas are summed per account, but never netted across operations: a wallet's debits are
//! checked against its balance before the batch, and its credits applied after, so an
//! operation that would be refused alone is refused in a batch too, whatever a later operation
//! of the batch brings in. On PostgreSQL every wallet the batch writes is locked first, in one
//! pass in id order — the global lock order of [`super::execute`] — so batches and single
//! operations never wait on each other in a cycle.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, Value};
use uuid::Uuid;

use super::model::*;
use super::update::{Booked, Gate, apply_delta};
use super::writes::{insert_transfer_rows, write_events};
use crate::db::{begin_write, is_retryable, now_us_sql, rows_per_statement, stmt};

/// Bound bytes of one idempotency claim (id, scope, a ~90-character key, a 64-character
/// fingerprint) and of one transfer row, to size PostgreSQL statements.
const CLAIM_ROW_BYTES: usize = 200;
const TRANSFER_ROW_BYTES: usize = 140;
/// Bound bytes of one outbox row (two ids, a topic, a short JSON payload, three numbers).
const EVENT_ROW_BYTES: usize = 200;

/// What a batch did: how many operations ran now, how many were already done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub executed: u64,
    /// Keys whose earlier run succeeded: nothing to do.
    pub replayed: u64,
    /// Keys whose earlier run was refused (recorded by [`super::execute`]): still refused.
    pub failed: u64,
    /// Sum of the amounts moved by the operations executed now.
    pub moved_cents: i64,
}

/// Runs `ops` (posted transfers only) in one transaction; see the module docs.
pub async fn execute_batch(db: &DatabaseConnection, ops: &[Operation]) -> Result<BatchOutcome, LedgerError> {
    validate(ops)?;
    if ops.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let mut attempt = 1;
    loop {
        let txn = begin_write(db).await?;
        let result = batch_in(&txn, ops).await;
        let result = match result {
            Ok(outcome) => txn.commit().await.map(|()| outcome).map_err(LedgerError::from),
            Err(e) => {
                txn.rollback().await?;
                Err(e)
            }
        };
        match result {
            Err(LedgerError::Db(e)) if attempt < 5 && is_retryable(&e) => attempt += 1,
            other => return other,
        }
    }
}

/// [`execute_batch`] inside the caller's write transaction (begun with
/// [`crate::db::begin_write`]), so that a bulk job can commit its own rows and the credits
/// together. On an error the caller rolls back; it also owns retries.
pub async fn execute_batch_in(txn: &DatabaseTransaction, ops: &[Operation]) -> Result<BatchOutcome, LedgerError> {
    validate(ops)?;
    batch_in(txn, ops).await
}

fn validate(ops: &[Operation]) -> Result<(), LedgerError> {
    for op in ops {
        op.validate()?;
        if op.legs.iter().any(|l| !matches!(l, Leg::Transfer { .. })) {
            return Err(LedgerError::Invalid("a batch takes posted transfers only".into()));
        }
    }
    Ok(())
}

async fn batch_in(txn: &DatabaseTransaction, ops: &[Operation]) -> Result<BatchOutcome, LedgerError> {
    let backend = txn.get_database_backend();
    let ids: Vec<Uuid> = ops.iter().map(|_| Uuid::now_v7()).collect();
    let fingerprints: Vec<String> = ops.iter().map(Operation::fingerprint).collect::<Result<_, _>>()?;
    let mut claimed: HashMap<Uuid, i64> = HashMap::with_capacity(ops.len());
    let per_statement = rows_per_statement(backend, CLAIM_ROW_BYTES, 500);
    for (chunk_no, chunk) in ops.chunks(per_statement).enumerate() {
        let first = chunk_no * per_statement;
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 4;
                format!("(${}, ${}, ${}, ${}, 'succeeded', {})", b + 1, b + 2, b + 3, b + 4, now_us_sql(backend))
            })
            .collect();
        let sql = format!(
            "INSERT INTO idempotency_key (id, scope, key, fingerprint, outcome, created_at_us) VALUES {} \
             ON CONFLICT (scope, key) DO NOTHING RETURNING id, created_at_us",
            rows.join(", ")
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (i, op) in chunk.iter().enumerate() {
            let n = first + i;
            values.extend([
                ids[n].into(),
                op.scope.clone().into(),
                op.key.clone().into(),
                fingerprints[n].clone().into(),
            ]);
        }
        #[derive(FromQueryResult)]
        struct Claimed {
            id: Uuid,
            created_at_us: i64,
        }
        for r in Claimed::find_by_statement(stmt(backend, &sql, values)).all(txn).await? {
            claimed.insert(r.id, r.created_at_us);
        }
    }

    let mut outcome = BatchOutcome::default();
    let mut limited: BTreeMap<AccountId, Booked> = BTreeMap::new();
    let mut unlimited: BTreeMap<AccountId, Booked> = BTreeMap::new();
    let (mut gate, mut now_any) = (Gate::Open, 0);
    let mut transfers: Vec<(Uuid, usize, TransferRecord)> = Vec::new();
    let mut replays: Vec<usize> = Vec::new();
    // The outbox rows of the operations run now, each event once however many of them carry it
    // (a grant's base and top-up of one pass tell the family once).
    let (mut events, mut seen): (Vec<OutboxEvent>, HashSet<String>) = (Vec::new(), HashSet::new());
    for (i, op) in ops.iter().enumerate() {
        let Some(now) = claimed.get(&ids[i]).copied() else {
            replays.push(i);
            continue;
        };
        outcome.executed += 1;
        for e in &op.events {
            if seen.insert(format!("{} {:?} {}", e.topic, e.account_id, e.payload)) {
                events.push(e.clone());
            }
        }
        gate = gate.max(Gate::of(op));
        now_any = now;
        for (leg_no, leg) in op.legs.iter().enumerate() {
            if let Leg::Transfer { kind, debit, credit, amount } = leg {
                for (account, is_debit) in [(debit, true), (credit, false)] {
                    let map = if account.limited { &mut limited } else { &mut unlimited };
                    let b = map.entry(account.id).or_default();
                    b.scope = Some(account.scope);
                    let d = &mut b.delta;
                    add_checked(if is_debit { &mut d.debits_posted } else { &mut d.credits_posted }, amount.0)?;
                }
                add_checked(&mut outcome.moved_cents, amount.0)?;
                let record = TransferRecord {
                    id: Uuid::now_v7(),
                    kind: Some(*kind),
                    phase: Phase::Posted,
                    debit: debit.id,
                    credit: credit.id,
                    amount: *amount,
                    pending_id: None,
                    expires_at_us: None,
                    created_at_us: now,
                };
                transfers.push((ids[i], leg_no, record));
            }
        }
    }
    // Replays must carry the same request as the original; their first outcome counts.
    if !replays.is_empty() {
        let failed = check_replays(txn, ops, &fingerprints, &replays).await?;
        outcome.failed = failed;
        outcome.replayed = replays.len() as u64 - failed;
    }
    lock_in_id_order(txn, limited.keys()).await?;
    // Wallets that are only credited (a grant) cannot break their limit: one statement per
    // few hundred of them instead of one round trip each. The others get their debits checked
    // first, alone, then their credits.
    let (credits, others): (Vec<_>, Vec<_>) = limited.iter().partition(|(_, b)| is_pure_credit(&b.delta));
    for chunk in credits.chunks(rows_per_statement(backend, 32, 500)) {
        credit_many(txn, chunk).await?;
    }
    for (account, booked) in others {
        let (debits, credits) = split(booked);
        apply_delta(txn, *account, &debits, true, gate, now_any).await?;
        if credits.delta != Delta::default() {
            apply_delta(txn, *account, &credits, true, Gate::Open, now_any).await?;
        }
    }
    for chunk in transfers.chunks(rows_per_statement(backend, TRANSFER_ROW_BYTES, 500)) {
        insert_transfer_rows(txn, chunk).await?;
    }
    for (account, booked) in &unlimited {
        apply_delta(txn, *account, booked, false, gate, now_any).await?;
    }
    for chunk in events.chunks(rows_per_statement(backend, EVENT_ROW_BYTES, 500)) {
        write_events(txn, now_any, chunk).await?;
    }
    Ok(outcome)
}

/// A booking's debit side and credit side.
fn split(b: &Booked) -> (Booked, Booked) {
    let d = &b.delta;
    let debits = Delta { debits_posted: d.debits_posted, debits_pending: d.debits_pending, ..Delta::default() };
    let credits = Delta { credits_posted: d.credits_posted, credits_pending: d.credits_pending, ..Delta::default() };
    (Booked { delta: debits, scope: b.scope }, Booked { delta: credits, scope: b.scope })
}

/// PostgreSQL: locks `accounts` (sorted: a `BTreeMap`'s keys) in id order, in statements of a
/// few hundred. The bulk credit's `UPDATE … FROM` would otherwise lock in join order. SQLite's
/// IMMEDIATE transaction already holds the one database lock.
async fn lock_in_id_order<'a>(
    txn: &DatabaseTransaction,
    accounts: impl Iterator<Item = &'a AccountId>,
) -> Result<(), LedgerError> {
    let backend = txn.get_database_backend();
    if backend != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let ids: Vec<Value> = accounts.map(|id| (*id).into()).collect();
    for chunk in ids.chunks(rows_per_statement(backend, 20, 500)) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id FROM ledger_account WHERE id IN ({}) ORDER BY id FOR UPDATE", marks.join(", "));
        txn.execute_raw(stmt(backend, &sql, chunk.to_vec())).await?;
    }
    Ok(())
}

fn is_pure_credit(d: &Delta) -> bool {
    d.credits_posted > 0 && d.debits_posted == 0 && d.credits_pending == 0 && d.debits_pending == 0
}

/// Adds posted credits to many accounts in one statement (same SQL on SQLite and PostgreSQL;
/// `UPDATE … FROM` joins once, where a correlated subquery would scan the list per account).
///
/// The scope is not re-checked here: pure credits name wallets that `ensure_accounts` just
/// returned for the same scope (and the audit checks every transfer's scope).
async fn credit_many<C: ConnectionTrait>(db: &C, items: &[(&AccountId, &Booked)]) -> Result<(), LedgerError> {
    let rows: Vec<String> = (0..items.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
    let sql = format!(
        "WITH v(id, amount) AS (VALUES {}) UPDATE ledger_account SET credits_posted = credits_posted + v.amount \
         FROM v WHERE ledger_account.id = v.id",
        rows.join(", ")
    );
    let values: Vec<Value> = items.iter().flat_map(|(id, b)| [(**id).into(), b.delta.credits_posted.into()]).collect();
    let updated = db.execute_raw(stmt(db.get_database_backend(), &sql, values)).await?.rows_affected();
    if updated as usize == items.len() {
        return Ok(());
    }
    // Some account does not exist: name it (the whole batch is rolled back by the caller).
    for (id, _) in items {
        let sql = "SELECT id FROM ledger_account WHERE id = $1";
        if db.query_one_raw(stmt(db.get_database_backend(), sql, [(**id).into()])).await?.is_none() {
            return Err(Rejection::AccountNotFound { account: **id }.into());
        }
    }
    Err(LedgerError::Db(sea_orm::DbErr::Custom(format!("bulk credit updated {updated} of {} accounts", items.len()))))
}

/// Checks the replayed keys against what is stored: a different request is a conflict; returns
/// how many of them were refused the first time.
async fn check_replays<C: ConnectionTrait>(
    db: &C,
    ops: &[Operation],
    fingerprints: &[String],
    replays: &[usize],
) -> Result<u64, LedgerError> {
    let mut failed = 0;
    // Grouped by scope: one `scope = … AND key IN (…)` per scope, served by the unique index.
    let mut by_scope: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in replays {
        by_scope.entry(ops[i].scope.as_str()).or_default().push(i);
    }
    let backend = db.get_database_backend();
    for (scope, indexes) in by_scope {
        for chunk in indexes.chunks(rows_per_statement(backend, CLAIM_ROW_BYTES / 2, 400)) {
            let mut values: Vec<Value> = vec![scope.into()];
            values.extend(chunk.iter().map(|&i| Value::from(ops[i].key.clone())));
            let marks: Vec<String> = (2..=values.len()).map(|j| format!("${j}")).collect();
            let sql = format!(
                "SELECT key, fingerprint, outcome FROM idempotency_key WHERE scope = $1 AND key IN ({})",
                marks.join(", ")
            );
            #[derive(FromQueryResult)]
            struct Stored {
                key: String,
                fingerprint: String,
                outcome: KeyOutcome,
            }
            let rows = Stored::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
            let stored: HashMap<String, Stored> = rows.into_iter().map(|r| (r.key.clone(), r)).collect();
            for &i in chunk {
                match stored.get(&ops[i].key) {
                    Some(s) if s.fingerprint == fingerprints[i] => failed += u64::from(s.outcome == KeyOutcome::Failed),
                    _ => return Err(LedgerError::IdempotencyConflict),
                }
            }
        }
    }
    Ok(failed)
}
