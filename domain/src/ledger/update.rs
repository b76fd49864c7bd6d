//! The one conditional statement that writes an account's counters. Every check the ledger makes
//! on an account is part of its `WHERE`, so check and write are one statement: concurrent
//! writers serialise on the row and each re-checks on the latest values, with no read before.
//!
//! - the *must not overdraw* limit, for limited accounts (pass wallets);
//! - the reference's claims: the limit flag and the scope (funder, campaign) the leg names;
//! - for a wallet that is spent from ([`Gate`]): its card is active, and the campaign deadline
//!   of that kind of spending has not passed by the database clock of the operation.
//!
//! Only when the update matches no row does [`diagnose`] read the account to say why.

use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Value};

use super::model::*;
use crate::db::stmt;

/// What spending from a wallet requires besides its balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Gate {
    /// Not spending (a grant, a release, an expiry, a correction): nothing more.
    Open,
    /// Redeeming a ticket: active card, before the partner (validation) deadline.
    Redeem,
    /// Issuing a ticket, paying, charging the card: active card, before the generation deadline.
    Spend,
}

impl Gate {
    /// The strictest gate any leg of `op` asks for. A resolution leg's own kind is the hold's;
    /// posting one is a redemption.
    pub(super) fn of(op: &Operation) -> Gate {
        op.legs
            .iter()
            .map(|leg| match leg {
                Leg::Transfer { kind, debit, .. } | Leg::Hold { kind, debit, .. }
                    if debit.limited && kind.is_spending() =>
                {
                    Gate::Spend
                }
                Leg::Post { .. } => Gate::Redeem,
                _ => Gate::Open,
            })
            .max()
            .unwrap_or(Gate::Open)
    }

    fn deadline_column(self) -> Option<&'static str> {
        match self {
            Gate::Open => None,
            Gate::Redeem => Some("validation_deadline_us"),
            Gate::Spend => Some("generation_deadline_us"),
        }
    }
}

/// One account's change within an operation, with the scope its legs claim (`None` when only
/// hold resolutions touch it: the scope was checked when the hold was made).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Booked {
    pub(super) delta: Delta,
    pub(super) scope: Option<Scope>,
}

impl Booked {
    /// Whether the account gives money out (posted or reserved).
    fn debits(&self) -> bool {
        self.delta.debits_posted > 0 || self.delta.debits_pending > 0
    }
}

/// How many shard rows an unlimited account's changes spread over (migration m0019).
pub(super) const SHARDS: u32 = 16;

/// The shard the next change writes: in turn, so operations running at the same moment write
/// different rows (a random draw would often pair two of 32 clients on one row).
fn next_shard() -> i16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    (NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS) as i16
}

/// Applies `booked` to `account` with one conditional statement, or says why it cannot.
///
/// A limited account (a pass wallet) is updated in place: its limit is checked on its row. On
/// PostgreSQL an unlimited account — shared by many operations: a campaign's clearing, a
/// partner's book — is changed through one of its shard rows ([`apply_to_shard`]), so
/// concurrent operations do not queue on its row until each commit's flush. SQLite runs one
/// writer at a time: nothing to spread, the row is updated in place.
pub(super) async fn apply_delta<C: ConnectionTrait>(
    db: &C,
    account: AccountId,
    booked: &Booked,
    limited: bool,
    gate: Gate,
    now: i64,
) -> Result<(), LedgerError> {
    let backend = db.get_database_backend();
    if !limited && backend == DbBackend::Postgres {
        if apply_to_shard(db, account, booked).await? {
            return Ok(());
        }
        return Err(diagnose(db, account, booked, limited, Gate::Open, now).await?.into());
    }
    let update = in_place_update(account, booked, limited, gate, now);
    if db.execute_raw(stmt(backend, &update.sql, update.values)).await?.rows_affected() == 1 {
        return Ok(());
    }
    let gate = if update.gated { gate } else { Gate::Open };
    Err(diagnose(db, account, booked, limited, gate, now).await?.into())
}

/// An account's conditional update: SQL with parameters from `$1`, and their values.
pub(super) struct InPlace {
    pub(super) sql: String,
    pub(super) values: Vec<Value>,
    /// Whether its gate applies (a wallet spent from).
    pub(super) gated: bool,
    /// The parameter holding the operation's time (a gated update's deadline check).
    pub(super) clock: Option<usize>,
}

/// The conditional update of `account`'s own row. An operation's updates run with its rows
/// (`writes::write_rows`, `RETURNING` appended); [`apply_delta`] runs one alone to say why it
/// did not apply.
pub(super) fn in_place_update(account: AccountId, booked: &Booked, limited: bool, gate: Gate, now: i64) -> InPlace {
    let mut values = delta_values(account, &booked.delta);
    let mut sql = String::from(
        "UPDATE ledger_account SET credits_posted = credits_posted + $2, debits_posted = debits_posted + $3, \
         credits_pending = credits_pending + $4, debits_pending = debits_pending + $5 WHERE id = $1 AND ",
    );
    sql.push_str(if limited {
        "(must_not_overdraw = FALSE OR credits_posted + $2 - debits_posted - $3 - debits_pending - $5 >= 0)"
    } else {
        "must_not_overdraw = FALSE"
    });
    push_scope(&mut sql, &mut values, booked.scope, "");
    let gated = limited && booked.debits();
    let mut clock = None;
    if let Some(column) = gate.deadline_column().filter(|_| gated) {
        values.push(now.into());
        clock = Some(values.len());
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM pass p WHERE p.id = ledger_account.owner_id AND p.status <> 'active') \
             AND NOT EXISTS (SELECT 1 FROM campaign c WHERE c.id = ledger_account.campaign_id AND c.{column} <= ${})",
            values.len()
        ));
    }
    InPlace { sql, values, gated, clock }
}

/// `$1` the account, `$2..$5` the delta's counters.
fn delta_values(account: AccountId, d: &Delta) -> Vec<Value> {
    vec![
        account.into(),
        d.credits_posted.into(),
        d.debits_posted.into(),
        d.credits_pending.into(),
        d.debits_pending.into(),
    ]
}

/// ` AND funder_id = $n AND campaign_id = $m` (or `IS NULL`) for the scope a leg claims.
fn push_scope(sql: &mut String, values: &mut Vec<Value>, scope: Option<Scope>, table: &str) {
    let Some(scope) = scope else { return };
    values.push(scope.funder.into());
    sql.push_str(&format!(" AND {table}funder_id = ${}", values.len()));
    match scope.campaign {
        Some(c) => {
            values.push(c.into());
            sql.push_str(&format!(" AND {table}campaign_id = ${}", values.len()));
        }
        None => sql.push_str(&format!(" AND {table}campaign_id IS NULL")),
    }
}

/// Adds an unlimited account's delta to one of its shard rows; false when the account is not
/// an unlimited one of the claimed scope. A shard row copies its account's scope when it is
/// made (from the account, checked), so a change is one update by primary key with the scope
/// checked on the shard itself — as cheap as the account's own row was. Shards are made with
/// their account (`ensure_accounts`, and migration m0019 for accounts from before); should
/// one be missing, it is inserted here (`ON CONFLICT`: two first uses at once add up).
async fn apply_to_shard<C: ConnectionTrait>(db: &C, account: AccountId, booked: &Booked) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let (sql, values) = shards_update(&std::collections::BTreeMap::from([(account, *booked)]));
    if !db.query_all_raw(stmt(backend, &sql, values)).await?.is_empty() {
        return Ok(true);
    }
    let mut values = delta_values(account, &booked.delta);
    values.push(next_shard().into());
    let mut sql = String::from(
        "INSERT INTO ledger_account_shard (account_id, shard, credits_posted, debits_posted, credits_pending, \
         debits_pending, funder_id, campaign_id) SELECT a.id, $6, $2, $3, $4, $5, a.funder_id, a.campaign_id \
         FROM ledger_account a WHERE a.id = $1 AND a.must_not_overdraw = FALSE",
    );
    push_scope(&mut sql, &mut values, booked.scope, "a.");
    sql.push_str(
        " ON CONFLICT (account_id, shard) DO UPDATE SET \
         credits_posted = ledger_account_shard.credits_posted + EXCLUDED.credits_posted, \
         debits_posted = ledger_account_shard.debits_posted + EXCLUDED.debits_posted, \
         credits_pending = ledger_account_shard.credits_pending + EXCLUDED.credits_pending, \
         debits_pending = ledger_account_shard.debits_pending + EXCLUDED.debits_pending",
    );
    Ok(db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected() == 1)
}

/// On PostgreSQL, the shard updates of all of an operation's unlimited accounts as one
/// `UPDATE … FROM (VALUES …)` (parameters from `$1`), returning the accounts it changed: it
/// rides in the statement that writes the operation's rows (`writes::write_rows`), one round
/// trip instead of one per shared account. Rows are listed, hence locked, in account order,
/// as [`apply_delta`] takes them one by one. An account it did not change (a shard row
/// missing, a scope not claimed) goes through [`apply_delta`] afterwards, which inserts the
/// shard or says why.
pub(super) fn shards_update(shared: &std::collections::BTreeMap<AccountId, Booked>) -> (String, Vec<Value>) {
    let mut rows = Vec::with_capacity(shared.len());
    let mut values: Vec<Value> = Vec::with_capacity(shared.len() * 9);
    for (account, booked) in shared {
        let n = values.len();
        let types = ["uuid", "int2", "int8", "int8", "int8", "int8", "bool", "uuid", "uuid"];
        let cells: Vec<String> = types.iter().enumerate().map(|(k, t)| format!("${}::{t}", n + k + 1)).collect();
        rows.push(format!("({})", cells.join(", ")));
        let d = &booked.delta;
        values.extend([
            (*account).into(),
            next_shard().into(),
            d.credits_posted.into(),
            d.debits_posted.into(),
            d.credits_pending.into(),
            d.debits_pending.into(),
            booked.scope.is_some().into(),
            booked.scope.map(|s| s.funder).into(),
            booked.scope.and_then(|s| s.campaign).into(),
        ]);
    }
    let sql = format!(
        "UPDATE ledger_account_shard t SET credits_posted = t.credits_posted + v.cp, \
         debits_posted = t.debits_posted + v.dp, credits_pending = t.credits_pending + v.cpe, \
         debits_pending = t.debits_pending + v.dpe \
         FROM (VALUES {}) AS v (account_id, shard, cp, dp, cpe, dpe, scoped, funder_id, campaign_id) \
         WHERE t.account_id = v.account_id AND t.shard = v.shard AND (NOT v.scoped OR \
         (t.funder_id = v.funder_id AND t.campaign_id IS NOT DISTINCT FROM v.campaign_id)) \
         RETURNING t.account_id, 0 AS limited",
        rows.join(", ")
    );
    (sql, values)
}

/// The account as the refusal path reads it.
#[derive(FromQueryResult)]
struct Seen {
    must_not_overdraw: bool,
    funder_id: Option<uuid::Uuid>,
    campaign_id: Option<uuid::Uuid>,
    pass_status: Option<String>,
    generation_deadline_us: Option<i64>,
    validation_deadline_us: Option<i64>,
}

/// Why the conditional update matched no row (refusal path only).
async fn diagnose<C: ConnectionTrait>(
    db: &C,
    account: AccountId,
    booked: &Booked,
    limited: bool,
    gate: Gate,
    now: i64,
) -> Result<Rejection, DbErr> {
    let sql = "SELECT a.must_not_overdraw, a.funder_id, a.campaign_id, p.status AS pass_status, \
               c.generation_deadline_us, c.validation_deadline_us FROM ledger_account a \
               LEFT JOIN pass p ON p.id = a.owner_id LEFT JOIN campaign c ON c.id = a.campaign_id WHERE a.id = $1";
    let Some(seen) = Seen::find_by_statement(stmt(db.get_database_backend(), sql, [account.into()])).one(db).await?
    else {
        return Ok(Rejection::AccountNotFound { account });
    };
    // A reference that misstates the limit or the scope names no account we hold.
    let claimed = booked.scope.is_none_or(|s| Some(s.funder) == seen.funder_id && s.campaign == seen.campaign_id);
    if seen.must_not_overdraw != limited || !claimed {
        return Ok(Rejection::AccountNotFound { account });
    }
    let passed = |deadline: Option<i64>| deadline.is_some_and(|d| d <= now);
    Ok(match gate {
        _ if !limited => Rejection::AccountNotFound { account },
        Gate::Spend | Gate::Redeem if seen.pass_status.as_deref().is_some_and(|s| s != "active") => {
            Rejection::CardBlocked { account }
        }
        Gate::Spend if passed(seen.generation_deadline_us) => Rejection::CampaignClosed { account },
        Gate::Redeem if passed(seen.validation_deadline_us) => Rejection::CampaignClosed { account },
        _ => Rejection::InsufficientFunds { account },
    })
}
