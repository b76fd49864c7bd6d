//! Unique indexes led by their selective column.
//!
//! `ledger_account (kind, owner_id, wallet)` and `idempotency_key (scope, key)` began with a
//! column of a handful of values (`pass_wallet`, `system:grant`). Lookups of many owners or
//! keys at once (the grant's wallets, its replays) then depended on the planner's row
//! estimate for that first column: with statistics taken while the table was small,
//! PostgreSQL scanned every `pass_wallet` row and filtered (8 ms a lookup at 40,000 wallets,
//! most of a grant re-run). Led by the owner and the key, the same uniqueness serves every
//! lookup with a narrow range whatever the statistics say. `ON CONFLICT (kind, owner_id,
//! wallet)` and `ON CONFLICT (scope, key)` still name these indexes: both databases match a
//! conflict target to a unique index by its set of columns.

use sea_orm_migration::prelude::*;

use crate::util::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_lookup_indexes"
    }
}

/// An index's name and columns.
type Named = (&'static str, &'static [&'static str]);

/// (table, old index, new index)
const SWAPS: [(&str, Named, Named); 2] = [
    (
        "ledger_account",
        ("ux_ledger_account_owner", &["kind", "owner_id", "wallet"]),
        ("ux_ledger_account_owner_kind", &["owner_id", "kind", "wallet"]),
    ),
    (
        "idempotency_key",
        ("ux_idempotency_scope_key", &["scope", "key"]),
        ("ux_idempotency_key_scope", &["key", "scope"]),
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, (old, _), (new, cols)) in SWAPS {
            // The new index first: uniqueness is never unguarded in between.
            manager.create_index(index(new, table, cols, true)).await?;
            manager.drop_index(Index::drop().name(old).table(table).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, (old, cols), (new, _)) in SWAPS {
            manager.create_index(index(old, table, cols, true)).await?;
            manager.drop_index(Index::drop().name(new).table(table).to_owned()).await?;
        }
        Ok(())
    }
}
