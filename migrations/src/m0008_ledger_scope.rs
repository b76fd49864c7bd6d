//! The ledger's boundaries (TigerBeetle keeps a `ledger` field on every account for the same
//! reason): money never crosses a funder or a campaign, so
//! - `ledger_account.funder_id` / `campaign_id`: the funder every account belongs to, and the
//!   campaign of those that live for one (pass wallets, budgets, expired credit; a partner's
//!   books span its funder's campaigns). The ledger refuses a leg between two scopes;
//! - `campaign.generation_deadline_us` / `validation_deadline_us`: the policy's two deadlines as
//!   instants (end of the day in Europe/Paris), written with each policy version, so the
//!   ledger's conditional updates can compare them with the database clock: no spending from a
//!   wallet after the first, no redemption of a ticket after the second.
//!
//! Existing rows read NULL: an account without a funder is flagged by the audit; a campaign
//! without deadlines gets them with its next policy version.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_ledger_scope"
    }
}

const COLUMNS: [(&str, &str); 4] = [
    ("ledger_account", "funder_id"),
    ("ledger_account", "campaign_id"),
    ("campaign", "generation_deadline_us"),
    ("campaign", "validation_deadline_us"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per `ALTER TABLE`.
        for (table, column) in COLUMNS {
            let def = if column.ends_with("_us") { big_integer_null(column) } else { uuid_null(column) };
            manager.alter_table(Table::alter().table(table).add_column(def).take()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in COLUMNS.iter().rev() {
            manager.alter_table(Table::alter().table(*table).drop_column(*column).take()).await?;
        }
        Ok(())
    }
}
