//! Recomputes the ledger from its transfers and checks every invariant of
//! `shared/reference/ledger.md` §a that the schema does not already enforce.
//!
//! Run after every race test and benchmark: a fast wrong ledger is a failed one.

use std::collections::HashMap;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, FromQueryResult,
    IsolationLevel, TransactionTrait,
};
use uuid::Uuid;

use super::accounts::{ACCOUNT_SELECT, Account, AccountRow};
use super::model::Counters;
use crate::db::stmt;

/// What the audit saw and every violation it found (empty = clean).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub accounts: u64,
    pub transfers: u64,
    pub pending_holds: u64,
    pub violations: Vec<String>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

#[derive(FromQueryResult)]
struct Total {
    id: Uuid,
    total: i64,
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// Sums `amount` per account over `sql`'s rows (columns `id`, `total`).
async fn sums<C: ConnectionTrait>(db: &C, sql: &str) -> Result<HashMap<Uuid, i64>, DbErr> {
    let rows = Total::find_by_statement(stmt(db.get_database_backend(), sql, [])).all(db).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.total)).collect())
}

async fn count<C: ConnectionTrait>(db: &C, sql: &str) -> Result<i64, DbErr> {
    let row = Count::find_by_statement(stmt(db.get_database_backend(), sql, [])).one(db).await?;
    Ok(row.map_or(0, |r| r.n))
}

/// Runs the audit. Read-only and safe on a live database: every statement reads one snapshot
/// (a REPEATABLE READ, read-only transaction on PostgreSQL; one read transaction on SQLite,
/// whose WAL snapshot is taken at its first read), so a commit in between cannot show up as a
/// mismatch between two of its reads.
pub async fn audit(db: &DatabaseConnection) -> Result<AuditReport, DbErr> {
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await?
        }
        _ => db.begin().await?,
    };
    let report = audit_in(&txn).await;
    txn.rollback().await?;
    report
}

async fn audit_in(db: &DatabaseTransaction) -> Result<AuditReport, DbErr> {
    let mut report = AuditReport::default();
    let posted = "phase IN ('posted', 'post_pending')";
    let credits = sums(db, &format!("SELECT credit_account_id AS id, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_transfer WHERE {posted} GROUP BY credit_account_id")).await?;
    let debits = sums(db, &format!("SELECT debit_account_id AS id, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_transfer WHERE {posted} GROUP BY debit_account_id")).await?;
    let credits_pending = sums(db, "SELECT credit_account_id AS id, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_hold WHERE state = 'pending' GROUP BY credit_account_id").await?;
    let debits_pending = sums(db, "SELECT debit_account_id AS id, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_hold WHERE state = 'pending' GROUP BY debit_account_id").await?;

    let rows = AccountRow::find_by_statement(stmt(db.get_database_backend(), ACCOUNT_SELECT, [])).all(db).await?;
    let mut total = Counters::default();
    report.accounts = rows.len() as u64;
    for row in rows {
        let a = Account::try_from(row)?;
        let get = |m: &HashMap<Uuid, i64>| m.get(&a.id).copied().unwrap_or(0);
        let recomputed = Counters {
            credits_posted: get(&credits),
            debits_posted: get(&debits),
            credits_pending: get(&credits_pending),
            debits_pending: get(&debits_pending),
        };
        if recomputed != a.counters {
            report.violations.push(format!("account {}: cached {:?} != recomputed {:?}", a.id, a.counters, recomputed));
        }
        if !a.counters.respects_limit(a.must_not_overdraw) {
            report.violations.push(format!("account {} is overdrawn: {:?}", a.id, a.counters));
        }
        match total.checked_plus(&a.counters) {
            Some(t) => total = t,
            None => report.violations.push(format!("the totals overflow at account {}", a.id)),
        }
    }
    if total.credits_posted != total.debits_posted || total.credits_pending != total.debits_pending {
        report.violations.push(format!("debits and credits differ overall: {total:?}"));
    }

    let checks: [(&str, &str); 14] = [
        ("accounts without a funder", "SELECT COUNT(*) AS n FROM ledger_account WHERE funder_id IS NULL"),
        (
            "transfers across funders or campaigns",
            "SELECT COUNT(*) AS n FROM ledger_transfer t JOIN ledger_account d ON d.id = t.debit_account_id \
             JOIN ledger_account c ON c.id = t.credit_account_id WHERE d.funder_id <> c.funder_id \
             OR (d.campaign_id IS NOT NULL AND c.campaign_id IS NOT NULL AND d.campaign_id <> c.campaign_id)",
        ),
        (
            "transfers naming an account that does not exist",
            "SELECT COUNT(*) AS n FROM ledger_transfer t LEFT JOIN ledger_account d ON d.id = t.debit_account_id \
             LEFT JOIN ledger_account c ON c.id = t.credit_account_id WHERE d.id IS NULL OR c.id IS NULL",
        ),
        (
            "holds naming an account that does not exist",
            "SELECT COUNT(*) AS n FROM ledger_hold h LEFT JOIN ledger_account d ON d.id = h.debit_account_id \
             LEFT JOIN ledger_account c ON c.id = h.credit_account_id WHERE d.id IS NULL OR c.id IS NULL",
        ),
        (
            "pass wallets allowed to overdraw",
            "SELECT COUNT(*) AS n FROM ledger_account WHERE kind = 'pass_wallet' AND must_not_overdraw = FALSE",
        ),
        (
            "holds posted at or after their expiry",
            "SELECT COUNT(*) AS n FROM ledger_hold h JOIN ledger_transfer r ON r.pending_id = h.transfer_id \
             WHERE h.state = 'posted' AND r.phase = 'post_pending' AND r.created_at_us >= h.expires_at_us",
        ),
        (
            "transfers outside a succeeded operation",
            "SELECT COUNT(*) AS n FROM ledger_transfer t LEFT JOIN idempotency_key k ON k.id = t.op_id \
             WHERE k.id IS NULL OR k.outcome <> 'succeeded'",
        ),
        (
            "idempotency keys in an unknown state",
            "SELECT COUNT(*) AS n FROM idempotency_key WHERE outcome NOT IN ('succeeded', 'failed')",
        ),
        (
            "succeeded operations without transfers",
            "SELECT COUNT(*) AS n FROM idempotency_key k WHERE k.outcome = 'succeeded' \
             AND NOT EXISTS (SELECT 1 FROM ledger_transfer t WHERE t.op_id = k.id)",
        ),
        (
            "holds whose limit flags disagree with their accounts",
            "SELECT COUNT(*) AS n FROM ledger_hold h JOIN ledger_account d ON d.id = h.debit_account_id \
             JOIN ledger_account c ON c.id = h.credit_account_id \
             WHERE h.debit_limited <> d.must_not_overdraw OR h.credit_limited <> c.must_not_overdraw",
        ),
        (
            "idempotency keys used twice",
            "SELECT COUNT(*) AS n FROM (SELECT scope, key FROM idempotency_key GROUP BY scope, key HAVING COUNT(*) > 1) d",
        ),
        (
            "holds without their pending transfer",
            "SELECT COUNT(*) AS n FROM ledger_hold h LEFT JOIN ledger_transfer t ON t.id = h.transfer_id \
             WHERE t.id IS NULL OR t.phase <> 'pending' OR t.amount <> h.amount",
        ),
        (
            "holds whose state disagrees with their resolution",
            "SELECT COUNT(*) AS n FROM ledger_hold h LEFT JOIN ledger_transfer r ON r.pending_id = h.transfer_id \
             WHERE (h.state = 'pending' AND r.id IS NOT NULL) \
             OR (h.state = 'posted' AND (r.id IS NULL OR r.phase <> 'post_pending' OR r.amount > h.amount)) \
             OR (h.state = 'voided' AND (r.id IS NULL OR r.phase <> 'void_pending')) \
             OR (h.state = 'expired' AND (r.id IS NULL OR r.phase <> 'expire_pending' OR h.expires_at_us > r.created_at_us))",
        ),
        (
            "operations whose transfers were written twice",
            "SELECT COUNT(*) AS n FROM (SELECT op_id, pending_id FROM ledger_transfer WHERE pending_id IS NOT NULL \
             GROUP BY op_id, pending_id HAVING COUNT(*) > 1) d",
        ),
    ];
    for (what, sql) in checks {
        let n = count(db, sql).await?;
        if n != 0 {
            report.violations.push(format!("{what}: {n}"));
        }
    }
    report.transfers = count(db, "SELECT COUNT(*) AS n FROM ledger_transfer").await? as u64;
    report.pending_holds = count(db, "SELECT COUNT(*) AS n FROM ledger_hold WHERE state = 'pending'").await? as u64;
    Ok(report)
}
