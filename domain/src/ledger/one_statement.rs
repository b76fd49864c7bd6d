//! PostgreSQL: a whole operation as one statement, when everything it needs is known before
//! it runs — its legs move money between named accounts, make holds, or post holds whose
//! terms the caller read ([`Operation::known_holds`]: a ticket's row joins its hold).
//!
//! The usual path (`service`) is `BEGIN`, the key's claim, the writes, `COMMIT`: four round
//! trips, each a wake-up of the server process and of ours. Sent without `BEGIN`, one statement
//! is its own transaction: the key's claim, the holds' and accounts' conditional updates and
//! the rows go as data-modifying `WITH` clauses, in the ledger's one lock order (key, holds,
//! wallets, shared books), and commit together or not at all. The operation's time is the
//! key's: rows carry offsets from it (`writes::Piece::times`).
//!
//! What the statement cannot decide alone it leaves to the usual path: when any conditional
//! update matched nothing (the key already taken, a hold no longer pending or not as the caller
//! read it, a wallet short of money, a blocked card, a deadline passed, a shard row missing),
//! the statement calls `ledger_missed()` (migration m0023), whose error undoes all of it, and
//! the operation runs again the usual way, which replays, refuses and records the refusal
//! exactly as before. A refusal costs one statement more; a success, three round trips less.

use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult};
use uuid::Uuid;

use super::holds::{ResolvedHold, book_resolution, resolution_update};
use super::idempotency::Clock;
use super::model::*;
use super::service::{Deltas, KEY_CLOCK, book_legs, key_claim, key_values, resolutions};
use super::writes::{Piece, Pieces, Rows, pieces, with_updates};
use crate::db::{is_retryable, sqlstate, stmt};

/// The SQLSTATE of `ledger_missed()`.
const MISSED: &str = "PSL01";

/// Runs `op` as one statement: its outcome, or `None` when it must take the usual path (not
/// PostgreSQL, a leg that needs a read first, or a condition that did not hold).
pub(super) async fn execute(
    db: &DatabaseConnection,
    op: &Operation,
    fingerprint: &str,
) -> Result<Option<Outcome>, LedgerError> {
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(None);
    }
    // Only posts of known holds: a void or an expiry may send the credit to expired credit,
    // which takes a read first. Holds are locked in id order, as on the usual path.
    let mut holds = vec![];
    for (i, hold) in resolutions(op) {
        let known = op.known_holds.iter().find(|h| h.hold == hold);
        match (&op.legs[i], known) {
            (Leg::Post { .. }, Some(terms)) => holds.push((i, *terms)),
            _ => return Ok(None),
        }
    }

    // Booked at time 0: every time written is an offset from the clock.
    let op_id = Uuid::now_v7();
    let mut deltas = Deltas::default();
    let mut resolved = vec![vec![]; op.legs.len()];
    for (i, terms) in &holds {
        match book_resolution(&op.legs[*i], terms.hold, &ResolvedHold::from(terms), &mut deltas, 0) {
            Ok(record) => resolved[*i] = vec![record],
            // More than the hold: refused on the usual path, which records it.
            Err(_) => return Ok(None),
        }
    }
    let Ok((mut transfers, new_holds)) = book_legs(op, 0, &mut deltas, resolved) else { return Ok(None) };
    let written = Rows::of(op, op_id, 0, &transfers, &new_holds, &deltas);
    let Pieces { limited, rows, shared } = pieces(backend, &written);

    let mut first = vec![("k".to_owned(), Piece::new(key_claim(backend), key_values(op_id, op, fingerprint)))];
    for (n, (i, t)) in holds.iter().enumerate() {
        // The hold must still be pending, unexpired, and as the caller read it.
        let guard = "AND debit_account_id = $3 AND debit_limited = $4 AND credit_account_id = $5 \
                     AND credit_limited = $6 AND amount = $7";
        let sql = resolution_update(&op.legs[*i], "$1", "$2", KEY_CLOCK, guard);
        let values = vec![
            t.hold.into(),
            op_id.into(),
            t.debit.into(),
            t.debit_limited.into(),
            t.credit.into(),
            t.credit_limited.into(),
            t.amount.0.into(),
        ];
        first.push((format!("h{n}"), Piece::new(sql, values)));
    }
    // One row from the key, each hold, each wallet and each shared book (one shard row each).
    let expected = first.len() + deltas.limited.len() + deltas.unlimited.len();
    let (with, reads, values) = with_updates(first, limited, rows, shared, Some(KEY_CLOCK));
    let sql = format!(
        "{with} SELECT CASE WHEN (SELECT count(*) FROM ({reads}) r) = {expected} THEN {KEY_CLOCK} \
         ELSE ledger_missed() END AS created_at_us"
    );
    let now = match Clock::find_by_statement(stmt(backend, &sql, values)).one(db).await {
        Ok(Some(clock)) => clock.created_at_us,
        Ok(None) => return Ok(None),
        // A deadlock or serialization failure is retried on the usual path too.
        Err(e) if sqlstate(&e).as_deref() == Some(MISSED) || is_retryable(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for t in &mut transfers {
        t.created_at_us += now;
        if let Some(expires) = &mut t.expires_at_us {
            *expires += now;
        }
    }
    Ok(Some(Outcome { op_id, transfers, created_at_us: now, replayed: false }))
}
