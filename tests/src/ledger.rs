//! Ledger fixtures shared by the ledger tests and the benchmark.

use passerelle_domain::Cents;
use passerelle_domain::db::stmt;
use passerelle_domain::ledger::{
    AccountKind, AccountRef, AccountSpec, Leg, Operation, Scope, TransferKind, Wallet, ensure_account, execute,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

/// A campaign budget and a partner: the two books every wallet test needs, in a campaign of
/// their own (a new funder and campaign each time: scopes never mix between tests).
#[derive(Clone, Copy, Debug)]
pub struct Books {
    pub budget: AccountRef,
    pub partner: AccountRef,
    /// The funder and campaign of the budget and of the wallets made for these books.
    pub scope: Scope,
}

pub async fn books(db: &DatabaseConnection) -> Books {
    books_in(db, Scope::campaign(Uuid::new_v4(), Uuid::new_v4())).await
}

/// [`books`] of a given campaign (the partner's books span its funder's campaigns).
pub async fn books_in(db: &DatabaseConnection, scope: Scope) -> Books {
    let owner = scope.campaign.expect("books of a campaign");
    let budget = ensure_account(db, AccountSpec::of(AccountKind::FunderBudget, owner, scope)).await.expect("budget");
    let partner_scope = Scope::funder(scope.funder);
    let partner = ensure_account(db, AccountSpec::of(AccountKind::PartnerPayable, Uuid::new_v4(), partner_scope))
        .await
        .expect("partner");
    Books { budget, partner, scope }
}

/// A new, empty pass wallet in the books' campaign.
pub async fn wallet(db: &DatabaseConnection, books: Books, which: Wallet) -> AccountRef {
    let campaign = books.scope.campaign.expect("books of a campaign");
    let spec = AccountSpec::pass_wallet(books.scope.funder, campaign, Uuid::new_v4(), which);
    ensure_account(db, spec).await.expect("wallet")
}

/// A fresh pass wallet holding `cents`, granted from the budget through the ledger.
pub async fn funded_wallet(db: &DatabaseConnection, books: Books, cents: i64) -> AccountRef {
    let wallet = wallet(db, books, Wallet::Sport).await;
    let grant = Operation::new(
        "system:test",
        format!("grant:{}", wallet.id),
        vec![Leg::Transfer { kind: TransferKind::Grant, debit: books.budget, credit: wallet, amount: Cents(cents) }],
    );
    execute(db, &grant).await.expect("grant");
    wallet
}

/// A payment of `cents` from `wallet` to the partner under `key`.
pub fn payment(books: Books, wallet: AccountRef, cents: i64, key: impl Into<String>) -> Operation {
    Operation::new(
        "parent:test",
        key,
        vec![Leg::Transfer { kind: TransferKind::Payment, debit: wallet, credit: books.partner, amount: Cents(cents) }],
    )
}

/// A campaign row with its two deadlines (µs since the epoch, as `upsert_campaign` writes them),
/// and books in its scope: what the ledger's deadline checks read.
pub async fn campaign_books(
    db: &DatabaseConnection,
    generation_deadline_us: i64,
    validation_deadline_us: i64,
) -> Books {
    let scope = Scope::campaign(Uuid::new_v4(), Uuid::new_v4());
    let campaign = scope.campaign.expect("campaign");
    let sql = "INSERT INTO campaign (id, funder_id, school_year, name, policy_version, policy, created_at_us, \
               updated_at_us, generation_deadline_us, validation_deadline_us) VALUES ($1, $2, 2026, 'test', 1, '{}', 0, 0, $3, $4)";
    let values = [campaign.into(), scope.funder.into(), generation_deadline_us.into(), validation_deadline_us.into()];
    db.execute_raw(stmt(db.get_database_backend(), sql, values)).await.expect("campaign");
    books_in(db, scope).await
}

/// A pass of the books' campaign (status `active`) and its sport wallet holding `cents` (granted
/// from the budget; none for 0).
pub async fn pass_wallet(db: &DatabaseConnection, books: Books, cents: i64) -> (Uuid, AccountRef) {
    let (pass, campaign) = (Uuid::new_v4(), books.scope.campaign.expect("campaign"));
    let number = format!("{:016}", pass.as_u128() % 10u128.pow(16));
    let sql = "INSERT INTO pass (id, pupil_id, campaign_id, number, status, created_at_us) VALUES ($1, $2, $3, $4, 'active', 0)";
    let values = [pass.into(), Uuid::new_v4().into(), campaign.into(), number.into()];
    db.execute_raw(stmt(db.get_database_backend(), sql, values)).await.expect("pass");
    let spec = AccountSpec::pass_wallet(books.scope.funder, campaign, pass, Wallet::Sport);
    let wallet = ensure_account(db, spec).await.expect("wallet");
    if cents > 0 {
        let leg =
            Leg::Transfer { kind: TransferKind::Grant, debit: books.budget, credit: wallet, amount: Cents(cents) };
        execute(db, &Operation::new("system:test", format!("grant:{}", wallet.id), vec![leg])).await.expect("grant");
    }
    (pass, wallet)
}
