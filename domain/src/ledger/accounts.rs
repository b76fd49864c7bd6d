//! Creating and reading ledger accounts.

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult};
use uuid::Uuid;

use super::model::{AccountId, AccountKind, AccountRef, Counters, Scope, Wallet};
use crate::db::{now_us_sql, rows_per_statement, stmt};

/// Identifies an account by what it stands for; creating it twice yields the same account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    pub kind: AccountKind,
    pub owner_id: Uuid,
    pub wallet: Option<Wallet>,
    pub scope: Scope,
}

impl AccountSpec {
    /// The wallet of a pass (the owner), in its campaign.
    pub fn pass_wallet(funder: Uuid, campaign: Uuid, pass_id: Uuid, wallet: Wallet) -> Self {
        let scope = Scope::campaign(funder, campaign);
        AccountSpec { kind: AccountKind::PassWallet, owner_id: pass_id, wallet: Some(wallet), scope }
    }

    pub fn of(kind: AccountKind, owner_id: Uuid, scope: Scope) -> Self {
        AccountSpec { kind, owner_id, wallet: None, scope }
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
    /// `None` only for accounts created before scopes existed (the audit flags them).
    pub scope: Option<Scope>,
    pub counters: Counters,
}

impl Account {
    /// How legs refer to this account (`None` for an account without a scope: no leg may use it).
    pub fn reference(&self) -> Option<AccountRef> {
        self.scope.map(|scope| AccountRef { id: self.id, limited: self.must_not_overdraw, scope })
    }
}

/// An account as [`ACCOUNT_SELECT`] reads it.
#[derive(FromQueryResult)]
pub(crate) struct AccountRow {
    id: AccountId,
    kind: AccountKind,
    owner_id: Uuid,
    /// `''` for accounts that are not a pass wallet: part of the unique key, where NULLs would
    /// never collide.
    wallet: String,
    must_not_overdraw: bool,
    funder_id: Option<Uuid>,
    campaign_id: Option<Uuid>,
    credits_posted: i64,
    debits_posted: i64,
    credits_pending: i64,
    debits_pending: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = DbErr;

    fn try_from(r: AccountRow) -> Result<Account, DbErr> {
        Ok(Account {
            id: r.id,
            kind: r.kind,
            owner_id: r.owner_id,
            wallet: stored_wallet(&r.wallet)?,
            must_not_overdraw: r.must_not_overdraw,
            scope: r.funder_id.map(|funder| Scope { funder, campaign: r.campaign_id }),
            counters: Counters {
                credits_posted: r.credits_posted,
                debits_posted: r.debits_posted,
                credits_pending: r.credits_pending,
                debits_pending: r.debits_pending,
            },
        })
    }
}

/// The stored wallet column: `''` (not a wallet) or a [`Wallet`]; anything else is an error.
fn stored_wallet(s: &str) -> Result<Option<Wallet>, DbErr> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| DbErr::Type(format!("unknown wallet {s:?}")))
}

fn stored_wallet_text(w: Option<Wallet>) -> &'static str {
    w.map_or("", <&'static str>::from)
}

/// Accounts with their counters: the row plus its shards (`ledger_account_balance`, migration
/// m0019), so a shared account's counters are whole whichever shard its operations wrote.
pub(crate) const ACCOUNT_SELECT: &str = "SELECT id, kind, owner_id, wallet, must_not_overdraw, funder_id, campaign_id, \
     credits_posted, debits_posted, credits_pending, debits_pending FROM ledger_account_balance";

/// Returns the account for `spec`, creating it if needed (safe under concurrency: the unique
/// index on (kind, owner, wallet) decides, and the loser reads the winner's row).
///
/// Reads first: on the spending path the account nearly always exists, and a read takes no
/// write lock (an `INSERT … ON CONFLICT` does, on SQLite for the whole database).
pub async fn ensure_account<C: ConnectionTrait>(db: &C, spec: AccountSpec) -> Result<AccountRef, DbErr> {
    let sql = format!("SELECT {REF_COLUMNS} FROM ledger_account WHERE kind = $1 AND owner_id = $2 AND wallet = $3");
    let values = [spec.kind.into(), spec.owner_id.into(), stored_wallet_text(spec.wallet).into()];
    let mut found = HashMap::with_capacity(1);
    collect_refs(&mut found, RefRow::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?);
    match found.remove(&key_of(&spec)) {
        Some(f) if f.scope == Some(spec.scope) => Ok(AccountRef { id: f.id, limited: f.limited, scope: spec.scope }),
        Some(f) => Err(DbErr::Custom(format!("ledger account {} exists in another scope", f.id))),
        None => ensure_accounts(db, &[spec]).await?.pop().ok_or_else(|| DbErr::RecordNotFound("ledger account".into())),
    }
}

/// Reads one account and its counters.
pub async fn get_account<C: ConnectionTrait>(db: &C, id: AccountId) -> Result<Option<Account>, DbErr> {
    let sql = format!("{ACCOUNT_SELECT} WHERE id = $1");
    let row = AccountRow::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).one(db).await?;
    row.map(Account::try_from).transpose()
}

/// [`ensure_account`] for many accounts at once (bulk jobs): per chunk (300 accounts, fewer
/// on PostgreSQL: [`rows_per_statement`]) one multi-row insert with ids drawn here, and, when
/// some accounts already existed (none on a first run), one lookup of the chunk's accounts.
/// Returns the references in the order of `specs`.
pub async fn ensure_accounts<C: ConnectionTrait>(db: &C, specs: &[AccountSpec]) -> Result<Vec<AccountRef>, DbErr> {
    let backend = db.get_database_backend();
    let mut out = Vec::with_capacity(specs.len());
    for chunk in specs.chunks(rows_per_statement(backend, 120, 300)) {
        let now = now_us_sql(backend);
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let marks: Vec<String> = (1..=7).map(|c| format!("${}", i * 7 + c)).collect();
                format!("({}, 0, 0, 0, 0, {now})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO ledger_account (id, kind, owner_id, wallet, must_not_overdraw, funder_id, campaign_id, \
             credits_posted, debits_posted, credits_pending, debits_pending, created_at_us) VALUES {} \
             ON CONFLICT (kind, owner_id, wallet) DO NOTHING",
            rows.join(", ")
        );
        let ids: Vec<AccountId> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 7);
        for (spec, id) in chunk.iter().zip(&ids) {
            values.extend([
                (*id).into(),
                spec.kind.into(),
                spec.owner_id.into(),
                stored_wallet_text(spec.wallet).into(),
                spec.must_not_overdraw().into(),
                spec.scope.funder.into(),
                spec.scope.campaign.into(),
            ]);
        }
        let inserted = db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected();
        // Every account new (a grant's first run): the ids drawn above are theirs. Reading the
        // rows back (`RETURNING`) was a third of the grant's time in `ensure_accounts` on
        // SQLite, whose driver hands each row over from its own thread. Otherwise (a re-run,
        // another writer, the same account twice) the chunk's accounts are read.
        let refs = if inserted as usize == chunk.len() {
            let new = chunk.iter().zip(&ids);
            new.map(|(s, id)| AccountRef { id: *id, limited: s.must_not_overdraw(), scope: s.scope }).collect()
        } else {
            stored_refs(db, chunk).await?
        };
        // The shards of the shared accounts created just now (their ids are ones drawn above);
        // accounts that existed already have theirs.
        let drawn: HashSet<&AccountId> = ids.iter().collect();
        let shared: Vec<Uuid> = refs.iter().filter(|r| !r.limited && drawn.contains(&r.id)).map(|r| r.id).collect();
        make_shards(db, &shared).await?;
        out.extend(refs);
    }
    Ok(out)
}

/// The stored accounts of `specs`, in their order; an account stored in another scope than
/// its spec says is a bug in the caller, not a new account.
async fn stored_refs<C: ConnectionTrait>(db: &C, specs: &[AccountSpec]) -> Result<Vec<AccountRef>, DbErr> {
    let backend = db.get_database_backend();
    let mut owners: Vec<Uuid> = specs.iter().map(|s| s.owner_id).collect();
    owners.sort_unstable();
    owners.dedup();
    let (list, values) = crate::db::in_ids(backend, "owner_id", 1, &owners);
    let sql = format!("SELECT {REF_COLUMNS} FROM ledger_account WHERE {list}");
    let mut found = HashMap::with_capacity(specs.len());
    collect_refs(&mut found, RefRow::find_by_statement(stmt(backend, &sql, values)).all(db).await?);
    specs
        .iter()
        .map(|spec| {
            let found = found.get(&key_of(spec)).ok_or_else(|| DbErr::RecordNotFound("ledger account".into()))?;
            if found.scope != Some(spec.scope) {
                return Err(DbErr::Custom(format!("ledger account {} exists in another scope", found.id)));
            }
            Ok(AccountRef { id: found.id, limited: found.limited, scope: spec.scope })
        })
        .collect()
}

/// PostgreSQL: the shard rows of new unlimited accounts (migration m0019), made with the
/// account so that every change to it is one update by primary key, never a first insert on
/// the hot path. SQLite updates such accounts in place.
async fn make_shards<C: ConnectionTrait>(db: &C, accounts: &[Uuid]) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres || accounts.is_empty() {
        return Ok(());
    }
    let (list, values) = crate::db::in_ids(backend, "a.id", 1, accounts);
    let sql = format!(
        "INSERT INTO ledger_account_shard (account_id, shard, funder_id, campaign_id) \
         SELECT a.id, s.n, a.funder_id, a.campaign_id FROM ledger_account a \
         CROSS JOIN generate_series(0, {}) AS s(n) WHERE {list} ON CONFLICT DO NOTHING",
        super::update::SHARDS - 1
    );
    db.execute_raw(stmt(backend, &sql, values)).await.map(|_| ())
}

type AccountKey = (AccountKind, Uuid, String);

fn key_of(spec: &AccountSpec) -> AccountKey {
    (spec.kind, spec.owner_id, stored_wallet_text(spec.wallet).to_owned())
}

const REF_COLUMNS: &str = "id, kind, owner_id, wallet, must_not_overdraw, funder_id, campaign_id";

/// What `ensure_accounts` reads back: the unique key, the reference and the stored scope.
#[derive(FromQueryResult)]
struct RefRow {
    id: AccountId,
    kind: AccountKind,
    owner_id: Uuid,
    wallet: String,
    must_not_overdraw: bool,
    funder_id: Option<Uuid>,
    campaign_id: Option<Uuid>,
}

struct Found {
    id: AccountId,
    limited: bool,
    scope: Option<Scope>,
}

fn collect_refs(found: &mut HashMap<AccountKey, Found>, rows: Vec<RefRow>) {
    for r in rows {
        let scope = r.funder_id.map(|funder| Scope { funder, campaign: r.campaign_id });
        found.insert((r.kind, r.owner_id, r.wallet), Found { id: r.id, limited: r.must_not_overdraw, scope });
    }
}
