//! Creating and reading ledger accounts.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr, QueryResult};
use uuid::Uuid;

use super::model::{AccountId, AccountKind, AccountRef, Counters, Wallet};
use crate::db::{now_us_sql, rows_per_statement, stmt};

/// Identifies an account by what it stands for; creating it twice yields the same account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    pub kind: AccountKind,
    pub owner_id: Uuid,
    pub wallet: Option<Wallet>,
}

impl AccountSpec {
    pub fn pass_wallet(pass_id: Uuid, wallet: Wallet) -> Self {
        AccountSpec { kind: AccountKind::PassWallet, owner_id: pass_id, wallet: Some(wallet) }
    }

    pub fn of(kind: AccountKind, owner_id: Uuid) -> Self {
        AccountSpec { kind, owner_id, wallet: None }
    }

    /// Pass wallets must never be overdrawn; budgets and partner accounts are books of the
    /// funder and may go negative (a budget's debits are the credit it has granted).
    pub fn must_not_overdraw(&self) -> bool {
        self.kind == AccountKind::PassWallet
    }
}

/// An account with its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub kind: AccountKind,
    pub owner_id: Uuid,
    pub wallet: Option<Wallet>,
    pub must_not_overdraw: bool,
    pub counters: Counters,
}

impl Account {
    /// How legs refer to this account.
    pub fn reference(&self) -> AccountRef {
        AccountRef { id: self.id, limited: self.must_not_overdraw }
    }

    pub(crate) fn from_row(row: &QueryResult) -> Result<Account, DbErr> {
        let kind: String = row.try_get("", "kind")?;
        let wallet: String = row.try_get("", "wallet")?;
        Ok(Account {
            id: row.try_get("", "id")?,
            kind: AccountKind::parse(&kind).ok_or_else(|| DbErr::Custom(format!("unknown account kind {kind}")))?,
            owner_id: row.try_get("", "owner_id")?,
            wallet: Wallet::parse(&wallet),
            must_not_overdraw: row.try_get("", "must_not_overdraw")?,
            counters: Counters {
                credits_posted: row.try_get("", "credits_posted")?,
                debits_posted: row.try_get("", "debits_posted")?,
                credits_pending: row.try_get("", "credits_pending")?,
                debits_pending: row.try_get("", "debits_pending")?,
            },
        })
    }
}

pub(crate) const ACCOUNT_COLUMNS: &str =
    "id, kind, owner_id, wallet, must_not_overdraw, credits_posted, debits_posted, credits_pending, debits_pending";

/// Returns the account for `spec`, creating it if needed (safe under concurrency: the unique
/// index on (kind, owner, wallet) decides, and the loser reads the winner's row).
pub async fn ensure_account<C: ConnectionTrait>(db: &C, spec: AccountSpec) -> Result<AccountRef, DbErr> {
    ensure_accounts(db, &[spec]).await?.pop().ok_or_else(|| DbErr::RecordNotFound("ledger account".into()))
}

/// Reads one account and its counters.
pub async fn get_account<C: ConnectionTrait>(db: &C, id: AccountId) -> Result<Option<Account>, DbErr> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_account WHERE id = $1");
    match db.query_one_raw(stmt(db.get_database_backend(), &sql, [id.into()])).await? {
        Some(row) => Account::from_row(&row).map(Some),
        None => Ok(None),
    }
}

/// [`ensure_account`] for many accounts at once (bulk jobs): per chunk (300 accounts, fewer
/// on PostgreSQL: [`rows_per_statement`]) one multi-row insert returning what it created, and
/// one lookup of the accounts that already existed (none on a first run). Returns the
/// references in the order of `specs`.
pub async fn ensure_accounts<C: ConnectionTrait>(db: &C, specs: &[AccountSpec]) -> Result<Vec<AccountRef>, DbErr> {
    let backend = db.get_database_backend();
    let mut out = Vec::with_capacity(specs.len());
    for chunk in specs.chunks(rows_per_statement(backend, 80, 300)) {
        let now = now_us_sql(backend);
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 5;
                format!("(${}, ${}, ${}, ${}, ${}, 0, 0, 0, 0, {now})", b + 1, b + 2, b + 3, b + 4, b + 5)
            })
            .collect();
        let sql = format!(
            "INSERT INTO ledger_account (id, kind, owner_id, wallet, must_not_overdraw, credits_posted, debits_posted, \
             credits_pending, debits_pending, created_at_us) VALUES {} ON CONFLICT (kind, owner_id, wallet) DO NOTHING \
             RETURNING id, kind, owner_id, wallet, must_not_overdraw",
            rows.join(", ")
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 5);
        for spec in chunk {
            values.extend([
                Uuid::now_v7().into(),
                spec.kind.as_str().into(),
                spec.owner_id.into(),
                spec.wallet.map_or("", Wallet::as_str).into(),
                spec.must_not_overdraw().into(),
            ]);
        }
        let mut found = HashMap::with_capacity(chunk.len());
        collect_refs(&mut found, db.query_all_raw(stmt(backend, &sql, values)).await?)?;
        let missing: Vec<sea_orm::Value> =
            chunk.iter().filter(|s| !found.contains_key(&key_of(s))).map(|s| s.owner_id.into()).collect();
        if !missing.is_empty() {
            let marks: Vec<String> = (1..=missing.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, kind, owner_id, wallet, must_not_overdraw FROM ledger_account WHERE owner_id IN ({})",
                marks.join(", ")
            );
            collect_refs(&mut found, db.query_all_raw(stmt(backend, &sql, missing)).await?)?;
        }
        for spec in chunk {
            out.push(*found.get(&key_of(spec)).ok_or_else(|| DbErr::RecordNotFound("ledger account".into()))?);
        }
    }
    Ok(out)
}

type AccountKey = (String, Uuid, String);

fn key_of(spec: &AccountSpec) -> AccountKey {
    (spec.kind.as_str().to_owned(), spec.owner_id, spec.wallet.map_or("", Wallet::as_str).to_owned())
}

fn collect_refs(found: &mut HashMap<AccountKey, AccountRef>, rows: Vec<QueryResult>) -> Result<(), DbErr> {
    for row in rows {
        let key = (row.try_get("", "kind")?, row.try_get("", "owner_id")?, row.try_get("", "wallet")?);
        found.insert(key, AccountRef { id: row.try_get("", "id")?, limited: row.try_get("", "must_not_overdraw")? });
    }
    Ok(())
}
