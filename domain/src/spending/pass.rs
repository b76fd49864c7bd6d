//! A pass as its family sees it: the card, the balances of its wallets and its history.

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::{Page, before};
use crate::db::stmt;
use crate::error::{Error, Result};
use crate::ledger::{TransferKind, Wallet};
use crate::money::Cents;

crate::stored_enum! {
    /// A card's life (`pass.status`); only an active card spends or redeems.
    pub enum PassStatus {
        Active,
        /// Reported lost, or five wrong PINs in a row.
        Blocked,
        Replaced,
        Expired,
    }
}

/// A pass with what its campaign says of it.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Pass {
    pub id: Uuid,
    pub pupil_id: Uuid,
    pub campaign_id: Uuid,
    pub funder_id: Uuid,
    pub school_year: i32,
    pub number: String,
    pub status: PassStatus,
    pub has_pin: bool,
    pub generation_deadline_us: Option<i64>,
    pub validation_deadline_us: Option<i64>,
    pub created_at_us: i64,
}

/// A [`Pass`]'s columns from the pass table aliased `$pass` and its campaign aliased
/// `$campaign`, each named `$prefix<field>`: the one list for every read of a pass, alone
/// ([`PASS_SELECT`]) or joined to other rows ([`PASS_COLUMNS_AS_PASS`]).
#[rustfmt::skip]
macro_rules! pass_columns {
    ($pass:literal, $campaign:literal, $prefix:literal) => {
        concat!(
            $pass, ".id AS ", $prefix, "id, ",
            $pass, ".pupil_id AS ", $prefix, "pupil_id, ",
            $pass, ".campaign_id AS ", $prefix, "campaign_id, ",
            $campaign, ".funder_id AS ", $prefix, "funder_id, ",
            $campaign, ".school_year AS ", $prefix, "school_year, ",
            $pass, ".number AS ", $prefix, "number, ",
            $pass, ".status AS ", $prefix, "status, ",
            $pass, ".pin_hash IS NOT NULL AS ", $prefix, "has_pin, ",
            $campaign, ".generation_deadline_us AS ", $prefix, "generation_deadline_us, ",
            $campaign, ".validation_deadline_us AS ", $prefix, "validation_deadline_us, ",
            $pass, ".created_at_us AS ", $prefix, "created_at_us"
        )
    };
}

pub(super) const PASS_SELECT: &str =
    concat!("SELECT ", pass_columns!("p", "c", ""), " FROM pass p JOIN campaign c ON c.id = p.campaign_id");

/// A [`Pass`]'s columns for reads that join passes to other rows: from `pass ps` and its
/// `campaign pc`, each named `pass_<field>` (read back with the prefix `pass_`).
pub(crate) const PASS_COLUMNS_AS_PASS: &str = pass_columns!("ps", "pc", "pass_");

/// A pass of a child linked to `account`, or `NOT_FOUND` (another family's pass included).
pub async fn pass_for_parent<C: ConnectionTrait>(db: &C, account: Uuid, pass: Uuid) -> Result<Pass> {
    let sql = format!(
        "{PASS_SELECT} WHERE p.id = $1 AND EXISTS (SELECT 1 FROM family_link l WHERE l.pupil_id = p.pupil_id \
         AND l.account_id = $2 AND l.revoked_at_us IS NULL)"
    );
    let found = Pass::find_by_statement(stmt(db.get_database_backend(), &sql, [pass.into(), account.into()]));
    found.one(db).await?.ok_or(Error::NotFound("pass"))
}

/// A pass by id, whoever asks (callers have checked who may reach it).
pub(crate) async fn pass_by_id<C: ConnectionTrait>(db: &C, pass: Uuid) -> Result<Pass> {
    let sql = format!("{PASS_SELECT} WHERE p.id = $1");
    Pass::find_by_statement(stmt(db.get_database_backend(), &sql, [pass.into()]))
        .one(db)
        .await?
        .ok_or(Error::NotFound("pass"))
}

/// The passes of these pupils, newest campaign first (one statement for all of them).
pub async fn passes_of_pupils<C: ConnectionTrait>(db: &C, pupils: &[Uuid]) -> Result<Vec<Pass>> {
    if pupils.is_empty() {
        return Ok(vec![]);
    }
    let backend = db.get_database_backend();
    let (list, values) = crate::db::in_ids(backend, "p.pupil_id", 1, pupils);
    let sql = format!("{PASS_SELECT} WHERE {list} ORDER BY c.school_year DESC, p.created_at_us DESC");
    Ok(Pass::find_by_statement(stmt(backend, &sql, values)).all(db).await?)
}

/// One wallet of a pass: `granted - spent - expired - held = available`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalletBalance {
    pub pass_id: Uuid,
    pub wallet: Wallet,
    pub granted: Cents,
    pub available: Cents,
    pub held: Cents,
    pub spent: Cents,
    pub expired: Cents,
}

#[derive(FromQueryResult)]
struct CountersRow {
    pass_id: Uuid,
    wallet: Wallet,
    credits_posted: i64,
    debits_posted: i64,
    debits_pending: i64,
    expired: i64,
    refunded: i64,
}

/// The wallets of these passes, from the ledger's counters (one statement for all).
///
/// Refunds come back as credits: they are taken off both what was granted and what was spent,
/// so `granted` stays what the campaign gave.
pub async fn wallet_balances<C: ConnectionTrait>(db: &C, passes: &[Uuid]) -> Result<Vec<WalletBalance>> {
    if passes.is_empty() {
        return Ok(vec![]);
    }
    let backend = db.get_database_backend();
    let (list, values) = crate::db::in_ids(backend, "a.owner_id", 1, passes);
    let sql = format!(
        "SELECT a.owner_id AS pass_id, a.wallet, a.credits_posted, a.debits_posted, a.debits_pending, \
         CAST(COALESCE((SELECT SUM(t.amount) FROM ledger_transfer t WHERE t.debit_account_id = a.id \
           AND t.kind = 'expiry'), 0) AS BIGINT) AS expired, \
         CAST(COALESCE((SELECT SUM(t.amount) FROM ledger_transfer t WHERE t.credit_account_id = a.id \
           AND t.kind = 'refund'), 0) AS BIGINT) AS refunded \
         FROM ledger_account a WHERE a.kind = 'pass_wallet' AND {list} ORDER BY a.wallet DESC"
    );
    let rows = CountersRow::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| WalletBalance {
            pass_id: r.pass_id,
            wallet: r.wallet,
            granted: Cents(r.credits_posted - r.refunded),
            available: Cents(r.credits_posted - r.debits_posted - r.debits_pending),
            held: Cents(r.debits_pending),
            spent: Cents(r.debits_posted - r.expired - r.refunded),
            expired: Cents(r.expired),
        })
        .collect())
}

/// Where a history line stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum TransactionStatus {
    /// Reserved by a ticket (still held, or resolved by a later line).
    Pending,
    Posted,
    /// A reservation given back (cancelled or expired ticket).
    Released,
}

/// One line of a pass's history. `amount` is signed: negative when money left the wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PassTransaction {
    pub id: Uuid,
    pub kind: TransferKind,
    pub wallet: Wallet,
    pub amount: Cents,
    pub status: TransactionStatus,
    pub partner_id: Option<Uuid>,
    pub partner_name: Option<String>,
    pub created_at_us: i64,
}

#[derive(FromQueryResult)]
struct TransactionRow {
    pass_id: Uuid,
    id: Uuid,
    kind: TransferKind,
    phase: crate::ledger::Phase,
    wallet: Wallet,
    outgoing: bool,
    amount: i64,
    partner_id: Option<Uuid>,
    partner_name: Option<String>,
    created_at_us: i64,
}

impl From<TransactionRow> for (Uuid, PassTransaction) {
    fn from(r: TransactionRow) -> Self {
        use crate::ledger::Phase;
        let line = PassTransaction {
            id: r.id,
            kind: r.kind,
            wallet: r.wallet,
            amount: Cents(if r.outgoing { -r.amount } else { r.amount }),
            status: match r.phase {
                Phase::Pending => TransactionStatus::Pending,
                Phase::Posted | Phase::PostPending => TransactionStatus::Posted,
                Phase::VoidPending | Phase::ExpirePending => TransactionStatus::Released,
            },
            partner_id: r.partner_id,
            partner_name: r.partner_name,
            created_at_us: r.created_at_us,
        };
        (r.pass_id, line)
    }
}

/// Both sides of the wallets' transfers (money out, money in), newest first, for the wallets
/// `wallets` keeps (an SQL condition on `a`, the wallet) and the transfers `keyset` keeps (on
/// `t`). A resolution line takes its kind from the hold it resolves, its partner from the
/// redemption recorded.
///
/// On PostgreSQL each side of each wallet is its own index scan, newest first, stopped after
/// `limit` lines (a LATERAL join). Joined as a whole, the generic plan for "transfers credited
/// to these wallets" guesses the average account's count, which the campaign's and partners'
/// books make huge: it read the whole transfer table, 25 ms a home screen at 150,000
/// transfers, growing with the ledger. SQLite has no LATERAL, and walks the index of each
/// wallet anyway.
fn history_sql(backend: DbBackend, wallets: &str, keyset: &str, limit: &str) -> String {
    let side = |column: &str, other: &str, outgoing: bool| {
        let (transfers, where_keyset) = match backend {
            DbBackend::Postgres => (
                format!(
                    "CROSS JOIN LATERAL (SELECT t.* FROM ledger_transfer t WHERE t.{column} = a.id AND {keyset} \
                     ORDER BY t.created_at_us DESC, t.id DESC LIMIT {limit}) t"
                ),
                String::new(),
            ),
            _ => (format!("JOIN ledger_transfer t ON t.{column} = a.id"), format!(" AND {keyset}")),
        };
        format!(
            "SELECT a.owner_id AS pass_id, t.id, COALESCE(h.kind, t.kind) AS kind, t.phase, a.wallet, \
             {outgoing} AS outgoing, t.amount, COALESCE(o.owner_id, r.partner_id) AS partner_id, \
             pr.name AS partner_name, t.created_at_us \
             FROM ledger_account a {transfers} \
             LEFT JOIN ledger_transfer h ON h.id = t.pending_id \
             LEFT JOIN ledger_account o ON o.id = t.{other} AND o.kind = 'partner_payable' \
             LEFT JOIN redemption r ON r.op_id = t.op_id \
             LEFT JOIN partner pr ON pr.id = COALESCE(o.owner_id, r.partner_id) \
             WHERE a.kind = 'pass_wallet' AND {wallets}{where_keyset}"
        )
    };
    format!(
        "{} UNION ALL {}",
        side("debit_account_id", "credit_account_id", true),
        side("credit_account_id", "debit_account_id", false)
    )
}

/// The history of a pass, newest first, by keyset on (time, id).
pub async fn transactions<C: ConnectionTrait>(db: &C, pass: Uuid, page: &Page) -> Result<Vec<PassTransaction>> {
    let (at, id) = before(page);
    let backend = db.get_database_backend();
    // `created_at_us <= $2` first: a bound the index on (account, time) can seek to.
    let keyset = "t.created_at_us <= $2 AND (t.created_at_us < $2 OR t.id < $3)";
    let history = history_sql(backend, "a.owner_id = $1", keyset, "$4");
    let sql = format!("SELECT * FROM ({history}) x ORDER BY created_at_us DESC, id DESC LIMIT $4");
    let values: [Value; 4] = [pass.into(), at.into(), id.into(), (page.first as i64).into()];
    let rows = TransactionRow::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
    Ok(rows.into_iter().map(|r| <(Uuid, PassTransaction)>::from(r).1).collect())
}

/// The newest `first` lines of each of these passes, in one statement (the home screen's
/// "last transactions" of every child at once). Pairs of (pass, line), newest first per pass.
pub async fn latest_transactions<C: ConnectionTrait>(
    db: &C,
    passes: &[Uuid],
    first: u64,
) -> Result<Vec<(Uuid, PassTransaction)>> {
    if passes.is_empty() {
        return Ok(vec![]);
    }
    let backend = db.get_database_backend();
    let (list, ids) = crate::db::in_ids(backend, "a.owner_id", 2, passes);
    let sql = format!(
        "SELECT pass_id, id, kind, phase, wallet, outgoing, amount, partner_id, partner_name, created_at_us FROM \
         (SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.pass_id ORDER BY x.created_at_us DESC, x.id DESC) AS rn \
         FROM ({}) x) y WHERE y.rn <= $1 ORDER BY y.pass_id, y.created_at_us DESC, y.id DESC",
        history_sql(backend, &list, "TRUE", "$1")
    );
    let mut values: Vec<Value> = vec![(first as i64).into()];
    values.extend(ids);
    let rows = TransactionRow::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
