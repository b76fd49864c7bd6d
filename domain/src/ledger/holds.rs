//! Holds (pending transfers): resolving one — post, void or expire — with a single conditional
//! update, so a hold is resolved at most once whatever races it; and the expiry sweep.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};
use uuid::Uuid;

use super::accounts::{AccountSpec, ensure_account};
use super::model::*;
use super::service::{Deltas, execute, record};
use crate::db::{now_us_sql, stmt};
use crate::money::Cents;

pub(super) fn resolution_hold(leg: &Leg) -> Option<TransferId> {
    match leg {
        Leg::Post { hold, .. } | Leg::Void { hold } | Leg::Expire { hold } => Some(*hold),
        _ => None,
    }
}

/// A hold as its resolving update returns it.
#[derive(FromQueryResult)]
pub(super) struct ResolvedHold {
    debit_account_id: AccountId,
    debit_limited: bool,
    credit_account_id: AccountId,
    credit_limited: bool,
    amount: Cents,
}

/// The same, read beside the key's claim (`service::claim`): all `None` when the update did
/// not apply.
#[derive(FromQueryResult)]
pub(super) struct ClaimedHold {
    debit_account_id: Option<AccountId>,
    debit_limited: Option<bool>,
    credit_account_id: Option<AccountId>,
    credit_limited: Option<bool>,
    amount: Option<Cents>,
}

impl From<&HoldTerms> for ResolvedHold {
    fn from(h: &HoldTerms) -> Self {
        ResolvedHold {
            debit_account_id: h.debit,
            debit_limited: h.debit_limited,
            credit_account_id: h.credit,
            credit_limited: h.credit_limited,
            amount: h.amount,
        }
    }
}

impl ClaimedHold {
    pub(super) fn resolved(self) -> Option<ResolvedHold> {
        Some(ResolvedHold {
            debit_account_id: self.debit_account_id?,
            debit_limited: self.debit_limited?,
            credit_account_id: self.credit_account_id?,
            credit_limited: self.credit_limited?,
            amount: self.amount?,
        })
    }
}

/// The state a resolution leg moves its hold to, and the phase of its transfer.
fn resolution_of(leg: &Leg) -> (&'static str, Phase) {
    match leg {
        Leg::Post { .. } => ("posted", Phase::PostPending),
        Leg::Void { .. } => ("voided", Phase::VoidPending),
        _ => ("expired", Phase::ExpirePending),
    }
}

/// The conditional update that moves the hold of `leg` out of `pending`. `hold` and `op` are
/// the SQL of the hold's and the resolving operation's ids, `now` of the operation's time;
/// `guard` is added to its condition.
pub(super) fn resolution_update(leg: &Leg, hold: &str, op: &str, now: &str, guard: &str) -> String {
    let (state, phase) = resolution_of(leg);
    let time_rule = match phase {
        Phase::PostPending => format!("AND expires_at_us > {now}"),
        Phase::ExpirePending => format!("AND expires_at_us <= {now}"),
        _ => String::new(),
    };
    format!(
        "UPDATE ledger_hold SET state = '{state}', resolved_by = {op}, resolved_at_us = {now} \
         WHERE transfer_id = {hold} AND state = 'pending' {time_rule} {guard} \
         RETURNING debit_account_id, debit_limited, credit_account_id, credit_limited, amount"
    )
}

/// Books the effect of resolving `hold` (as its update returned it) on `deltas`: the held
/// amount leaves both sides' pending counters and, for a post, what is moved lands on their
/// posted ones (the rest is released). Returns the resolving transfer.
pub(super) fn book_resolution(
    leg: &Leg,
    hold: TransferId,
    row: &ResolvedHold,
    deltas: &mut Deltas,
    now: i64,
) -> Result<TransferRecord, LedgerError> {
    let (_, phase) = resolution_of(leg);
    let (debit, credit) = (row.debit_account_id, row.credit_account_id);
    let held = row.amount.0;
    let moved = match leg {
        Leg::Post { amount: Some(a), .. } if a.0 > held => return Err(Rejection::AmountExceedsHold.into()),
        Leg::Post { amount, .. } => amount.map_or(held, |a| a.0),
        _ => held,
    };
    add_checked(&mut deltas.held(debit, row.debit_limited).delta.debits_pending, -held)?;
    add_checked(&mut deltas.held(credit, row.credit_limited).delta.credits_pending, -held)?;
    if phase == Phase::PostPending {
        add_checked(&mut deltas.held(debit, row.debit_limited).delta.debits_posted, moved)?;
        add_checked(&mut deltas.held(credit, row.credit_limited).delta.credits_posted, moved)?;
    }
    Ok(record(None, phase, debit, credit, Cents(moved), Some(hold), None, now))
}

/// Moves a hold out of `pending` with one conditional update, then books its effect. `ran`:
/// the update's answer when it already ran with the key's claim (PostgreSQL), `None` to run it
/// here.
pub(super) async fn resolve_hold<C: ConnectionTrait>(
    db: &C,
    op_id: Uuid,
    now: i64,
    leg: &Leg,
    deltas: &mut Deltas,
    ran: Option<Option<ResolvedHold>>,
) -> Result<Vec<TransferRecord>, LedgerError> {
    let hold = resolution_hold(leg).ok_or_else(|| LedgerError::Invalid("not a hold leg".into()))?;
    let (_, phase) = resolution_of(leg);
    let row = match ran {
        Some(row) => row,
        None => {
            let sql = resolution_update(leg, "$1", "$2", "$3", "");
            let values = [hold.into(), op_id.into(), now.into()];
            ResolvedHold::find_by_statement(stmt(db.get_database_backend(), &sql, values)).one(db).await?
        }
    };
    let Some(row) = row else {
        return Err(diagnose_hold(db, hold, now, phase).await?.into());
    };
    let mut records = vec![book_resolution(leg, hold, &row, deltas, now)?];
    let (debit, held) = (row.debit_account_id, row.amount.0);
    if phase != Phase::PostPending
        && row.debit_limited
        && let Some(lost) = expired_credit_if_closed(db, debit, now).await?
    {
        // Released after the generation deadline, the credit is lost (Pass+ rules): it goes
        // from the wallet to the campaign's expired credit, not back to the family.
        add_checked(&mut deltas.held(debit, true).delta.debits_posted, held)?;
        add_checked(&mut deltas.of(lost).credits_posted, held)?;
        records.push(record(Some(TransferKind::Expiry), Phase::Posted, debit, lost.id, Cents(held), None, None, now));
    }
    Ok(records)
}

/// The campaign's expired-credit account when `wallet`'s generation deadline has passed at
/// `now`; `None` while it is open (or for a wallet without a campaign or deadline).
async fn expired_credit_if_closed<C: ConnectionTrait>(
    db: &C,
    wallet: AccountId,
    now: i64,
) -> Result<Option<AccountRef>, LedgerError> {
    #[derive(FromQueryResult)]
    struct Closed {
        funder_id: Uuid,
        campaign_id: Uuid,
    }
    let sql = "SELECT a.funder_id, a.campaign_id FROM ledger_account a JOIN campaign c ON c.id = a.campaign_id \
               WHERE a.id = $1 AND c.generation_deadline_us <= $2";
    let closed = Closed::find_by_statement(stmt(db.get_database_backend(), sql, [wallet.into(), now.into()]));
    let Some(Closed { funder_id, campaign_id }) = closed.one(db).await? else {
        return Ok(None);
    };
    let spec = AccountSpec::of(AccountKind::ExpiredCredit, campaign_id, Scope::campaign(funder_id, campaign_id));
    Ok(Some(ensure_account(db, spec).await?))
}

/// Explains why a hold could not change state (only on the refusal path).
async fn diagnose_hold<C: ConnectionTrait>(
    db: &C,
    hold: TransferId,
    now: i64,
    phase: Phase,
) -> Result<Rejection, DbErr> {
    let sql = "SELECT state, expires_at_us FROM ledger_hold WHERE transfer_id = $1";
    #[derive(FromQueryResult)]
    struct HoldState {
        state: String,
        expires_at_us: i64,
    }
    let found = HoldState::find_by_statement(stmt(db.get_database_backend(), sql, [hold.into()])).one(db).await?;
    let Some(HoldState { state, expires_at_us: expires }) = found else {
        return Ok(Rejection::HoldNotFound { hold });
    };
    Ok(match (state.as_str(), phase) {
        ("pending", Phase::PostPending) if expires <= now => Rejection::HoldExpired,
        ("pending", Phase::ExpirePending) if expires > now => Rejection::HoldNotExpired,
        _ => Rejection::HoldNotPending,
    })
}

/// Expires up to `limit` holds whose timeout has passed, each as its own idempotent operation
/// (key `expire:<hold>`), so a scheduler crash or two schedulers racing expire nothing twice.
/// Returns how many holds this call expired.
///
/// One hold that cannot be expired (a database error, a key taken by another request) is
/// logged and skipped: the sweep pages on by (expiry, id), so it never blocks the holds behind
/// it, and a refusal of an expiry is not stored on its key (see `execute`), so the hold is
/// tried again by the next sweep.
pub async fn expire_due_holds(db: &DatabaseConnection, limit: u64) -> Result<u64, LedgerError> {
    #[derive(FromQueryResult)]
    struct Due {
        transfer_id: TransferId,
        expires_at_us: i64,
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT transfer_id, expires_at_us FROM ledger_hold WHERE state = 'pending' AND expires_at_us <= {} \
         AND (expires_at_us > $1 OR (expires_at_us = $1 AND transfer_id > $2)) \
         ORDER BY expires_at_us, transfer_id LIMIT {}",
        now_us_sql(backend),
        limit.max(1)
    );
    let (mut after_us, mut after_id) = (i64::MIN, Uuid::nil());
    let mut expired = 0;
    while expired < limit {
        let due = Due::find_by_statement(stmt(backend, &sql, [after_us.into(), after_id.into()])).all(db).await?;
        let Some(last) = due.last() else { break };
        (after_us, after_id) = (last.expires_at_us, last.transfer_id);
        for Due { transfer_id: hold, .. } in due {
            let op = Operation::new("system:scheduler", format!("expire:{hold}"), vec![Leg::Expire { hold }]);
            match execute(db, &op).await {
                Ok(o) if !o.replayed => expired += 1,
                Ok(_) | Err(LedgerError::Rejected(_)) => {}
                Err(e) => tracing::warn!(%hold, error = %e, "hold not expired; skipped until the next sweep"),
            }
            if expired == limit {
                break;
            }
        }
    }
    Ok(expired)
}
