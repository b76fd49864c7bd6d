//! Ledger fixtures shared by the ledger tests and the benchmark.

use passerelle_domain::Cents;
use passerelle_domain::ledger::{
    AccountKind, AccountRef, AccountSpec, Leg, Operation, TransferKind, Wallet, ensure_account, execute,
};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

/// A campaign budget and a partner: the two books every wallet test needs.
#[derive(Clone, Copy, Debug)]
pub struct Books {
    pub budget: AccountRef,
    pub partner: AccountRef,
}

pub async fn books(db: &DatabaseConnection) -> Books {
    let budget = ensure_account(db, AccountSpec::of(AccountKind::FunderBudget, Uuid::new_v4())).await.expect("budget");
    let partner =
        ensure_account(db, AccountSpec::of(AccountKind::PartnerPayable, Uuid::new_v4())).await.expect("partner");
    Books { budget, partner }
}

/// A fresh pass wallet holding `cents`, granted from the budget through the ledger.
pub async fn funded_wallet(db: &DatabaseConnection, books: Books, cents: i64) -> AccountRef {
    let wallet = ensure_account(db, AccountSpec::pass_wallet(Uuid::new_v4(), Wallet::Sport)).await.expect("wallet");
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
