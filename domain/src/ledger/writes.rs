//! The rows an operation adds (transfers, holds, outbox events, business rows) and the
//! conditional updates of its accounts, sent together.
//!
//! Each insert and update is built as SQL and values ([`Piece`]). On PostgreSQL the pieces of
//! one operation go as one statement of data-modifying `WITH` clauses, run in the statement's
//! one snapshot: a redemption's wallet, transfers, outbox event, redemption row and two shared
//! books cost one round trip, and the wallet stays locked only for that statement and the
//! commit. SQLite has no data-modifying `WITH`, but sqlx runs a string of several statements in
//! one call: each statement sent alone is a hop to the connection's own thread and back while
//! the file's one write lock is held, so a payment's six hops became four.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::model::*;
use super::rows::RESOLUTION;
use super::service::Deltas;
use super::update::{Booked, Gate, in_place_update, shards_update};
use crate::db::stmt;

/// One insert or update: SQL with parameters numbered from `$1`, and their values. `times`
/// lists the parameters that are times of the operation (its clock, or its clock plus a
/// hold's timeout): when the clock is only known inside the statement that writes them
/// ([`super::one_statement`]), they are sent as offsets from it and added to it there.
pub(super) struct Piece {
    pub(super) sql: String,
    pub(super) values: Vec<Value>,
    pub(super) times: Vec<usize>,
}

impl Piece {
    pub(super) fn new(sql: String, values: Vec<Value>) -> Self {
        Piece { sql, values, times: vec![] }
    }

    /// The SQL with each time parameter `$n` read as `(clock + $n)` (`None`: as it is).
    fn timed(&self, clock: Option<&str>) -> Cow<'_, str> {
        match clock {
            Some(clock) if !self.times.is_empty() => Cow::Owned(map_params(&self.sql, |n| {
                if self.times.contains(&n) { format!("({clock} + ${n})") } else { format!("${n}") }
            })),
            _ => Cow::Borrowed(&self.sql),
        }
    }
}

/// An operation's writes as pieces: its limited accounts' updates (in id order), its rows,
/// its shared accounts' updates.
pub(super) struct Pieces {
    pub(super) limited: Vec<Piece>,
    pub(super) rows: Vec<Piece>,
    pub(super) shared: Vec<Piece>,
}

/// What an operation writes besides its limited accounts: transfers (legs in order), new
/// holds, outbox events, its business rows, and the deltas of its shared (unlimited) accounts.
pub(super) struct Rows<'a> {
    pub(super) op_id: Uuid,
    pub(super) now: i64,
    pub(super) transfers: &'a [TransferRecord],
    pub(super) holds: &'a [TransferRecord],
    pub(super) events: &'a [OutboxEvent],
    pub(super) business: &'a [RowInsert],
    pub(super) shared: &'a BTreeMap<AccountId, Booked>,
    /// The deltas of its limited accounts (pass wallets), with the gate of their updates.
    pub(super) limited: &'a BTreeMap<AccountId, Booked>,
    pub(super) gate: Gate,
}

impl<'a> Rows<'a> {
    /// What `op` writes once booked: `transfers` (the new `holds` among them) and `deltas`.
    pub(super) fn of(
        op: &'a Operation,
        op_id: Uuid,
        now: i64,
        transfers: &'a [TransferRecord],
        holds: &'a [TransferRecord],
        deltas: &'a Deltas,
    ) -> Self {
        Rows {
            op_id,
            now,
            transfers,
            holds,
            events: &op.events,
            business: &op.rows,
            shared: &deltas.unlimited,
            limited: &deltas.limited,
            gate: Gate::of(op),
        }
    }
}

/// Writes the operation's rows and applies its accounts' deltas, in one round trip. Returns
/// the accounts whose update did not apply, limited ones first, each with whether it is
/// limited, for [`super::update::apply_delta`] to apply or to say why not (overdrawn, card
/// blocked, past a deadline, a scope not matching, a shard row missing).
/// - PostgreSQL: one statement ([`with_updates`]); the shared accounts change through one of
///   their shard rows ([`shards_update`]);
/// - SQLite: one call of several statements ([`joined_statements`]), each account's row
///   updated in place.
pub(super) async fn write_rows<C: ConnectionTrait>(db: &C, w: Rows<'_>) -> Result<Vec<(AccountId, bool)>, DbErr> {
    let backend = db.get_database_backend();
    let Pieces { limited, rows, shared } = pieces(backend, &w);
    if limited.is_empty() && shared.is_empty() {
        run(db, rows).await?;
        return Ok(vec![]);
    }
    let (sql, values) = match backend {
        DbBackend::Postgres => {
            let (with, reads, values) = with_updates(vec![], limited, rows, shared, None);
            (format!("{with} {reads}"), values)
        }
        _ => joined_statements(limited.into_iter().chain(rows).chain(shared).collect()),
    };
    let applied = Applied::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
    let missed = |map: &BTreeMap<AccountId, Booked>, limited: bool| {
        let done = |a: &AccountId| applied.iter().any(|r| r.account_id == *a && (r.limited == 1) == limited);
        map.keys().filter(|a| !done(a)).map(|a| (*a, limited)).collect::<Vec<_>>()
    };
    let mut still = missed(w.limited, true);
    still.extend(missed(w.shared, false));
    Ok(still)
}

/// The pieces of `w`. PostgreSQL changes the shared accounts through one of their shard rows
/// ([`shards_update`]); SQLite updates every account's row in place.
pub(super) fn pieces(backend: DbBackend, w: &Rows<'_>) -> Pieces {
    let transfers: Vec<(Uuid, usize, TransferRecord)> =
        w.transfers.iter().enumerate().map(|(leg, t)| (w.op_id, leg, t.clone())).collect();
    let mut rows = vec![];
    if !transfers.is_empty() {
        rows.push(transfer_piece(&transfers));
    }
    rows.extend(w.holds.iter().map(hold_piece));
    if !w.events.is_empty() {
        rows.push(events_piece(w.now, w.events));
    }
    for row in w.business {
        let mut values: Vec<Value> = vec![w.op_id.into(), w.now.into()];
        values.extend(row.values.iter().cloned());
        rows.push(Piece { sql: row.sql.clone(), values, times: vec![2] });
    }
    let update = |(account, booked): (&AccountId, &Booked), limited: bool| {
        let u = in_place_update(*account, booked, limited, w.gate, w.now);
        let sql = format!("{} RETURNING id AS account_id, {} AS limited", u.sql, i32::from(limited));
        Piece { sql, values: u.values, times: u.clock.into_iter().collect() }
    };
    let limited: Vec<Piece> = w.limited.iter().map(|a| update(a, true)).collect();
    let shared: Vec<Piece> = match backend {
        DbBackend::Postgres if w.shared.is_empty() => vec![],
        DbBackend::Postgres => {
            let (sql, values) = shards_update(w.shared);
            vec![Piece::new(sql, values)]
        }
        _ => w.shared.iter().map(|a| update(a, false)).collect(),
    };
    Pieces { limited, rows, shared }
}

/// An account update that applied, as its `RETURNING` says (`limited` 1 or 0).
#[derive(FromQueryResult)]
struct Applied {
    account_id: AccountId,
    limited: i32,
}

/// PostgreSQL: the updates and the inserts as one statement, all as data-modifying `WITH`
/// clauses. Its `SELECT` reads the updates' `RETURNING` rows in order — `first` (a
/// [`super::one_statement`]'s key and holds), then limited accounts (in id order), then shared
/// ones — and `UNION ALL` runs its parts one after the other: so the wallets are locked before
/// the shards, the one global order of the ledger's locks (a deadlock would be retried
/// anyway). The inserts, which nothing reads, PostgreSQL runs to completion after the
/// `SELECT`. `clock`: the SQL of the operation's time when its pieces carry offsets from it.
/// Returns the `WITH` clauses and the `SELECT` apart, for a caller that wraps the `SELECT`.
pub(super) fn with_updates(
    first: Vec<(String, Piece)>,
    limited: Vec<Piece>,
    rows: Vec<Piece>,
    shared: Vec<Piece>,
    clock: Option<&str>,
) -> (String, String, Vec<Value>) {
    let mut clauses = vec![];
    let mut reads = vec![];
    let mut values: Vec<Value> = vec![];
    let mut add = |name: String, p: Piece, read: Option<&str>| {
        clauses.push(format!("{name} AS ({})", shift_params(&p.timed(clock), values.len())));
        if let Some(columns) = read {
            reads.push(format!("SELECT {columns} FROM {name}"));
        }
        values.extend(p.values);
    };
    for (name, p) in first {
        add(name, p, Some("NULL::uuid AS account_id, NULL::int4 AS limited"));
    }
    for (i, p) in limited.into_iter().chain(shared).enumerate() {
        add(format!("u{i}"), p, Some("account_id, limited"));
    }
    for (i, p) in rows.into_iter().enumerate() {
        add(format!("w{i}"), p, None);
    }
    (format!("WITH {}", clauses.join(", ")), reads.join(" UNION ALL "), values)
}

async fn run<C: ConnectionTrait>(db: &C, pieces: Vec<Piece>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    if pieces.is_empty() {
        return Ok(());
    }
    let (sql, values) = if backend == DbBackend::Postgres { with_statement(pieces) } else { joined_statements(pieces) };
    db.execute_raw(stmt(backend, &sql, values)).await.map(|_| ())
}

/// SQLite: the pieces as one string of statements, run in order by one call.
fn joined_statements(pieces: Vec<Piece>) -> (String, Vec<Value>) {
    let mut sql = String::new();
    let mut values: Vec<Value> = vec![];
    for p in pieces {
        if !sql.is_empty() {
            sql.push_str("; ");
        }
        sql.push_str(&shift_params(&p.sql, values.len()));
        values.extend(p.values);
    }
    (sql, values)
}

/// PostgreSQL: the pieces as one statement, all but the last as data-modifying `WITH` clauses.
fn with_statement(pieces: Vec<Piece>) -> (String, Vec<Value>) {
    let mut sql = String::from("WITH ");
    let mut values: Vec<Value> = vec![];
    let last = pieces.len().saturating_sub(1);
    for (i, p) in pieces.into_iter().enumerate() {
        let shifted = shift_params(&p.sql, values.len());
        if i < last {
            sql.push_str(&format!("{}w{i} AS ({shifted})", if i > 0 { ", " } else { "" }));
        } else if i == 0 {
            // One piece: no WITH.
            sql = shifted.into_owned();
        } else {
            sql.push(' ');
            sql.push_str(&shifted);
        }
        values.extend(p.values);
    }
    (sql, values)
}

/// `sql` with every `$n` renumbered `$(n + by)` (the pieces' SQL holds no `$` otherwise).
fn shift_params(sql: &str, by: usize) -> Cow<'_, str> {
    if by == 0 {
        // The first piece of every statement, and most statements have one.
        return Cow::Borrowed(sql);
    }
    Cow::Owned(map_params(sql, |n| format!("${}", n + by)))
}

/// `sql` with every parameter `$n` replaced by `f(n)`.
fn map_params(sql: &str, f: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        match rest[at + 1..at + 1 + digits].parse::<usize>() {
            Ok(n) => out.push_str(&f(n)),
            Err(_) => out.push('$'),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

/// `($1, $2, …), ($n+1, …)` for a multi-row insert.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn transfer_piece(rows: &[(Uuid, usize, TransferRecord)]) -> Piece {
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
            t.kind.map_or(RESOLUTION, <&'static str>::from).into(),
            t.phase.into(),
            t.debit.into(),
            t.credit.into(),
            t.amount.0.into(),
            t.pending_id.into(),
            t.expires_at_us.into(),
            t.created_at_us.into(),
        ]);
    }
    let times = (0..rows.len()).flat_map(|r| [r * 11 + 10, r * 11 + 11]).collect();
    Piece { sql, values, times }
}

/// A hold row: its accounts' limit flags are copied from the accounts, so a resolution knows
/// which side is limited without reading them again.
fn hold_piece(h: &TransferRecord) -> Piece {
    let sql = "INSERT INTO ledger_hold (transfer_id, debit_account_id, debit_limited, credit_account_id, credit_limited, \
               amount, expires_at_us, state) SELECT $1, $2, d.must_not_overdraw, $3, c.must_not_overdraw, $4, $5, 'pending' \
               FROM ledger_account d, ledger_account c WHERE d.id = $2 AND c.id = $3";
    let values = vec![
        h.id.into(),
        h.debit.into(),
        h.credit.into(),
        h.amount.0.into(),
        h.expires_at_us.unwrap_or(h.created_at_us).into(),
    ];
    Piece { sql: sql.to_owned(), values, times: vec![5] }
}

fn events_piece(now: i64, events: &[OutboxEvent]) -> Piece {
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
    let times = (0..events.len()).flat_map(|r| [r * 7 + 5, r * 7 + 7]).collect();
    Piece { sql, values, times }
}

/// Multi-row insert of `(operation id, leg number, transfer)` rows (a batch's page).
pub(super) async fn insert_transfer_rows<C: ConnectionTrait>(
    db: &C,
    rows: &[(Uuid, usize, TransferRecord)],
) -> Result<(), DbErr> {
    run(db, vec![transfer_piece(rows)]).await
}

/// Writes outbox rows in the caller's transaction (a pass blocked without money moving).
pub async fn write_outbox<C: ConnectionTrait>(db: &C, events: &[OutboxEvent]) -> Result<(), DbErr> {
    let now = crate::db::now_us(db).await?;
    write_events(db, now, events).await
}

pub(super) async fn write_events<C: ConnectionTrait>(db: &C, now: i64, events: &[OutboxEvent]) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    run(db, vec![events_piece(now, events)]).await
}

#[cfg(test)]
mod tests {
    use super::shift_params;

    #[test]
    fn parameters_are_renumbered_past_the_earlier_pieces() {
        assert_eq!(shift_params("VALUES ($1, $2), ($10, $11)", 9), "VALUES ($10, $11), ($19, $20)");
        assert_eq!(shift_params("WHERE d.id = $2 AND c.id = $3", 0), "WHERE d.id = $2 AND c.id = $3");
        assert_eq!(shift_params("SELECT 'pending'", 4), "SELECT 'pending'");
    }

    #[test]
    fn time_parameters_are_read_from_the_clock() {
        let p = super::Piece { sql: "VALUES ($1, $2, $12)".into(), values: vec![], times: vec![2, 12] };
        assert_eq!(
            p.timed(Some("(SELECT t FROM k)")),
            "VALUES ($1, ((SELECT t FROM k) + $2), ((SELECT t FROM k) + $12))"
        );
        assert_eq!(p.timed(None), "VALUES ($1, $2, $12)");
    }
}
