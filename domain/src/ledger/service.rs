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
//! Steps 3 to 5 reach the database in one round trip, in that order: one statement of
//! data-modifying `WITH` clauses on PostgreSQL, one call of several statements on SQLite
//! (`writes.rs`). On PostgreSQL the first hold's update of step 2 also rides in step 1's
//! statement ([`claim`]). And on PostgreSQL an operation that needs no read before its writes
//! (no void, no expiry, no `after`; the holds it posts known to the caller) is first tried as
//! one statement with no `BEGIN` nor `COMMIT` (`one_statement`): a redemption is then one
//! round trip, and only what that statement could not decide comes here.
//!
//! Every transaction takes locks in one global order (holds, limited accounts, unlimited
//! accounts; each by id), so two operations never wait on each other in a cycle. Deadlock or
//! serialization failures reported by the database anyway are retried (the operation is
//! atomic, so a retry is safe). A refusal rolls everything back, then records the refusal on
//! the key in a second short transaction, so the same key keeps getting the same refusal.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::holds::{ClaimedHold, ResolvedHold, resolution_hold, resolution_update, resolve_hold};
use super::idempotency::{Clock, load_key, record_rejection};
use super::model::*;
use super::one_statement;
use super::update::{Booked, apply_delta};
use super::writes::{Rows, write_rows};
use crate::db::{begin_write, is_retryable, now_us_sql, stmt};
use crate::money::Cents;

const ATTEMPTS: usize = 5;

/// Executes `op`, or replays the stored result of an earlier call with the same key.
pub async fn execute(db: &DatabaseConnection, op: &Operation) -> Result<Outcome, LedgerError> {
    execute_inner(db, op, None).await
}

/// What [`AfterLegs`] returns: a future borrowing the transaction and the outcome.
pub type Written<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), LedgerError>> + Send + 'a>>;

/// Business rows written inside the operation's own transaction once its legs are applied (a
/// ticket naming its hold, a redemption naming its operation): they commit with the money or
/// not at all. Not called on a replay: the first run wrote them. A `Rejected` error from it
/// rolls the operation back and is recorded on the key like a ledger refusal.
pub type AfterLegs<'f> = &'f (dyn for<'a> Fn(&'a DatabaseTransaction, &'a Outcome) -> Written<'a> + Sync);

/// [`execute`], with `after` writing the operation's business rows in its transaction.
pub async fn execute_with(
    db: &DatabaseConnection,
    op: &Operation,
    after: AfterLegs<'_>,
) -> Result<Outcome, LedgerError> {
    execute_inner(db, op, Some(after)).await
}

async fn execute_inner(
    db: &DatabaseConnection,
    op: &Operation,
    after: Option<AfterLegs<'_>>,
) -> Result<Outcome, LedgerError> {
    op.validate()?;
    let fingerprint = op.fingerprint()?;
    if after.is_none()
        && let Some(outcome) = one_statement::execute(db, op, &fingerprint).await?
    {
        return Ok(outcome);
    }
    let mut attempt = 1;
    loop {
        match try_execute(db, op, &fingerprint, after).await {
            Err(LedgerError::Db(e)) if attempt < ATTEMPTS && is_retryable(&e) => {
                tracing::debug!(error = %e, attempt, "ledger operation retried");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn try_execute(
    db: &DatabaseConnection,
    op: &Operation,
    fingerprint: &str,
    after: Option<AfterLegs<'_>>,
) -> Result<Outcome, LedgerError> {
    let txn = begin_write(db).await?;
    let op_id = Uuid::now_v7();
    let Some((now, first)) = claim(&txn, op_id, op, fingerprint).await? else {
        let prior = load_key(&txn, &op.scope, &op.key).await;
        txn.commit().await?;
        return prior?.replay(db, fingerprint).await;
    };
    match apply(&txn, op_id, now, op, after, first).await {
        Ok(outcome) => {
            txn.commit().await?;
            Ok(outcome)
        }
        // An expiry's refusal depends on the clock of the moment (`HoldNotExpired` after the
        // database clock stepped back): stored, it would be replayed forever. It is not stored;
        // the hold's own state guarantees it is resolved at most once.
        Err(LedgerError::Rejected(rejection)) if op.is_expiry() => {
            txn.rollback().await?;
            Err(rejection.into())
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

/// The legs that resolve a hold, with their holds, in hold-id order: the order holds are
/// locked in, on every path.
pub(super) fn resolutions(op: &Operation) -> Vec<(usize, TransferId)> {
    let mut found: Vec<(usize, TransferId)> =
        op.legs.iter().enumerate().filter_map(|(i, l)| resolution_hold(l).map(|h| (i, h))).collect();
    found.sort_by_key(|(_, h)| *h);
    found
}

/// What claiming the key found on PostgreSQL: the first hold's resolving update, already run.
type FirstHold = Option<(usize, Option<ResolvedHold>)>;

/// Claims the operation's key: its time (the database clock), or `None` when another request
/// holds the key. On PostgreSQL the update of the first hold the operation resolves rides in
/// the same statement, a round trip less (a redemption, a cancelled ticket): its clauses read
/// the key's new row, so it applies only once the key is claimed, at the claim's time.
async fn claim(
    txn: &DatabaseTransaction,
    op_id: Uuid,
    op: &Operation,
    fingerprint: &str,
) -> Result<Option<(i64, FirstHold)>, DbErr> {
    let backend = txn.get_database_backend();
    let insert = key_claim(backend);
    let mut values = key_values(op_id, op, fingerprint);
    let first = resolutions(op).first().copied().filter(|_| backend == DbBackend::Postgres);
    let Some((leg, hold)) = first else {
        let clock = Clock::find_by_statement(stmt(backend, &insert, values)).one(txn).await?;
        return Ok(clock.map(|c| (c.created_at_us, None)));
    };
    values.push(hold.into());
    let update = resolution_update(&op.legs[leg], "$5", "$1", KEY_CLOCK, "AND EXISTS (SELECT 1 FROM k)");
    let sql = format!(
        "WITH k AS ({insert}), h AS ({update}) SELECT k.created_at_us, h.debit_account_id, h.debit_limited, \
         h.credit_account_id, h.credit_limited, h.amount FROM k LEFT JOIN h ON TRUE"
    );
    let Some(row) = txn.query_one_raw(stmt(backend, &sql, values)).await? else { return Ok(None) };
    let clock = Clock::from_query_result(&row, "")?;
    let resolved = ClaimedHold::from_query_result(&row, "")?.resolved();
    Ok(Some((clock.created_at_us, Some((leg, resolved)))))
}

/// The operation's time inside a statement whose clause `k` is [`key_claim`].
pub(super) const KEY_CLOCK: &str = "(SELECT created_at_us FROM k)";

/// The insert that claims an operation's key (`$1` the operation, `$2` the scope, `$3` the
/// key, `$4` the fingerprint), returning the database clock, or nothing if the key is taken.
pub(super) fn key_claim(backend: DbBackend) -> String {
    format!(
        "INSERT INTO idempotency_key (id, scope, key, fingerprint, outcome, created_at_us) \
         VALUES ($1, $2, $3, $4, 'succeeded', {}) ON CONFLICT (scope, key) DO NOTHING RETURNING created_at_us",
        now_us_sql(backend)
    )
}

pub(super) fn key_values(op_id: Uuid, op: &Operation, fingerprint: &str) -> Vec<Value> {
    vec![op_id.into(), op.scope.clone().into(), op.key.clone().into(), fingerprint.to_owned().into()]
}

/// Per-account deltas, split by lock class.
#[derive(Default)]
pub(super) struct Deltas {
    pub(super) limited: BTreeMap<AccountId, Booked>,
    pub(super) unlimited: BTreeMap<AccountId, Booked>,
}

impl Deltas {
    /// The delta of an account a leg names; the update checks the scope the reference claims.
    pub(super) fn of(&mut self, account: AccountRef) -> &mut Delta {
        let booked = self.held(account.id, account.limited);
        booked.scope = Some(account.scope);
        &mut booked.delta
    }

    /// The delta of an account a hold names (its scope was checked when the hold was made).
    pub(super) fn held(&mut self, id: AccountId, limited: bool) -> &mut Booked {
        let map = if limited { &mut self.limited } else { &mut self.unlimited };
        map.entry(id).or_default()
    }
}

/// The legs' effect, computed and written inside the open transaction: once the holds are
/// resolved, the accounts' updates and the rows go in one round trip ([`write_rows`]). On
/// PostgreSQL the shared books change through one of their shards (a shard is one of sixteen:
/// locked to the commit, it blocks little).
async fn apply(
    db: &DatabaseTransaction,
    op_id: Uuid,
    now: i64,
    op: &Operation,
    after: Option<AfterLegs<'_>>,
    mut first: FirstHold,
) -> Result<Outcome, LedgerError> {
    let mut deltas = Deltas::default();
    let mut resolved: Vec<Vec<TransferRecord>> = vec![vec![]; op.legs.len()];
    for (i, _) in resolutions(op) {
        let ran = first.take_if(|(leg, _)| *leg == i).map(|(_, row)| row);
        resolved[i] = resolve_hold(db, op_id, now, &op.legs[i], &mut deltas, ran).await?;
    }

    let (transfers, new_holds) = book_legs(op, now, &mut deltas, resolved)?;
    let rows = Rows::of(op, op_id, now, &transfers, &new_holds, &deltas);
    let gate = rows.gate;
    let (missed, shared): (Vec<_>, Vec<_>) = write_rows(db, rows).await?.into_iter().partition(|(_, l)| *l);
    // A wallet whose update did not apply is refused (run alone, it says why) before the
    // business rows are written.
    for (account, _) in missed {
        apply_delta(db, account, &deltas.limited[&account], true, gate, now).await?;
    }
    let outcome = Outcome { op_id, transfers, created_at_us: now, replayed: false };
    if let Some(write) = after {
        write(db, &outcome).await?;
    }
    for (account, _) in shared {
        apply_delta(db, account, &deltas.unlimited[&account], false, gate, now).await?;
    }
    Ok(outcome)
}

/// Books the transfers and new holds of `op`'s legs at `now` on `deltas`, in leg order; a
/// resolution leg's records come from `resolved` (what booking its hold returned). Returns
/// the transfers, and the holds among them.
pub(super) fn book_legs(
    op: &Operation,
    now: i64,
    deltas: &mut Deltas,
    mut resolved: Vec<Vec<TransferRecord>>,
) -> Result<(Vec<TransferRecord>, Vec<TransferRecord>), LedgerError> {
    let mut transfers = Vec::with_capacity(op.legs.len());
    let mut new_holds = Vec::new();
    for (i, leg) in op.legs.iter().enumerate() {
        match leg {
            Leg::Transfer { kind, debit, credit, amount } => {
                add_checked(&mut deltas.of(*debit).debits_posted, amount.0)?;
                add_checked(&mut deltas.of(*credit).credits_posted, amount.0)?;
                transfers.push(record(Some(*kind), Phase::Posted, debit.id, credit.id, *amount, None, None, now));
            }
            Leg::Hold { kind, debit, credit, amount, timeout_ms } => {
                add_checked(&mut deltas.of(*debit).debits_pending, amount.0)?;
                add_checked(&mut deltas.of(*credit).credits_pending, amount.0)?;
                let expires = now.saturating_add(timeout_ms.saturating_mul(1000));
                let r = record(Some(*kind), Phase::Pending, debit.id, credit.id, *amount, None, Some(expires), now);
                new_holds.push(r.clone());
                transfers.push(r);
            }
            _ => transfers.append(&mut resolved[i]),
        }
    }
    Ok((transfers, new_holds))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn record(
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
