//! Indexes that hold only the rows their readers look for.
//!
//! - `ix_ledger_hold_pending_due` replaces `ix_ledger_hold_due` (state, expiry). The scheduler
//!   only ever asks for pending holds that are due, and every redemption, cancellation and
//!   expiry moved its hold out of `pending`: a non-HOT update that added an entry for the
//!   resolved hold, an entry no reader wanted. A partial index gets an entry when a hold is
//!   placed and none when it is resolved.
//! - `ix_ledger_transfer_expiry` and `ix_ledger_transfer_refund`: a wallet's balances sum its
//!   expiries and refunds (`spending::wallet_balances`, every home screen). Through the
//!   account's index that read every transfer of the wallet to keep the few of one kind
//!   (0.46 ms for ten passes, a third of the home query's database time at 13 tickets a
//!   pass, growing with each pass's history). These stay empty until the deadline, and no
//!   redemption writes to them.

use sea_orm_migration::prelude::*;

use crate::util::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0024_partial_indexes"
    }
}

/// `index` over `cols` of `table`, for the rows where `column = value`.
fn partial(
    name: &str,
    table: &'static str,
    cols: &[&'static str],
    column: &'static str,
    value: &str,
) -> IndexCreateStatement {
    let mut i = index(name, table, cols, false);
    i.and_where(Expr::col(column).eq(value));
    i
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let due = ["expires_at_us", "transfer_id"];
        manager.create_index(partial("ix_ledger_hold_pending_due", "ledger_hold", &due, "state", "pending")).await?;
        manager.drop_index(Index::drop().name("ix_ledger_hold_due").table("ledger_hold").to_owned()).await?;
        let expiry = partial("ix_ledger_transfer_expiry", "ledger_transfer", &["debit_account_id"], "kind", "expiry");
        manager.create_index(expiry).await?;
        let refund = partial("ix_ledger_transfer_refund", "ledger_transfer", &["credit_account_id"], "kind", "refund");
        manager.create_index(refund).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("ix_ledger_transfer_refund", "ledger_transfer"),
            ("ix_ledger_transfer_expiry", "ledger_transfer"),
            ("ix_ledger_hold_pending_due", "ledger_hold"),
        ] {
            manager.drop_index(Index::drop().name(name).table(table).to_owned()).await?;
        }
        manager.create_index(index("ix_ledger_hold_due", "ledger_hold", &["state", "expires_at_us"], false)).await
    }
}
