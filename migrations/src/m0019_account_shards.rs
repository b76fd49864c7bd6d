//! Shard rows for the ledger's shared accounts (budgets, clearing, partner books).
//!
//! Every redemption credits the campaign's clearing account and the partner's payable account.
//! A row lock is held from its update to the commit (after the WAL flush), so with one row per
//! account every redemption of a campaign queued behind the previous one's flush: measured at
//! 800–900 redemptions/s on PostgreSQL whatever the number of clients, the first `UPDATE
//! ledger_account` of each waiting 11 ms on average. An unlimited account's change now goes to
//! one of a few shard rows, so concurrent operations rarely meet and their commits share
//! flushes (group commit). Only accounts that are never checked against a limit are sharded:
//! a pass wallet's limit is checked on its one row, by its conditional update.
//!
//! An account's counters are its row plus the sum of its shards: the view
//! `ledger_account_balance` is what readers of counters select from.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::counter;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0019_account_shards"
    }
}

const VIEW: &str = "CREATE VIEW ledger_account_balance AS SELECT a.id, a.kind, a.owner_id, a.wallet, \
    a.must_not_overdraw, a.funder_id, a.campaign_id, \
    a.credits_posted + COALESCE(s.credits_posted, 0) AS credits_posted, \
    a.debits_posted + COALESCE(s.debits_posted, 0) AS debits_posted, \
    a.credits_pending + COALESCE(s.credits_pending, 0) AS credits_pending, \
    a.debits_pending + COALESCE(s.debits_pending, 0) AS debits_pending \
    FROM ledger_account a LEFT JOIN (SELECT account_id, \
    CAST(SUM(credits_posted) AS BIGINT) AS credits_posted, CAST(SUM(debits_posted) AS BIGINT) AS debits_posted, \
    CAST(SUM(credits_pending) AS BIGINT) AS credits_pending, CAST(SUM(debits_pending) AS BIGINT) AS debits_pending \
    FROM ledger_account_shard GROUP BY account_id) s ON s.account_id = a.id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut shard = Table::create();
        shard
            .table("ledger_account_shard")
            .if_not_exists()
            .col(uuid("account_id"))
            .col(small_integer("shard"))
            .col(counter("credits_posted"))
            .col(counter("debits_posted"))
            .col(counter("credits_pending"))
            .col(counter("debits_pending"))
            // The account's scope, copied (checked) when the shard is made: an update checks
            // the scope a leg claims on the shard alone.
            .col(uuid_null("funder_id"))
            .col(uuid_null("campaign_id"))
            .primary_key(Index::create().col("account_id").col("shard"));
        manager.create_table(shard.take()).await?;
        manager.get_connection().execute_unprepared(VIEW).await?;
        // PostgreSQL writes shards (16 per shared account, as `ledger::update::SHARDS`): those
        // of the accounts already there.
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            let fill = "INSERT INTO ledger_account_shard (account_id, shard, funder_id, campaign_id) \
                        SELECT a.id, s.n, a.funder_id, a.campaign_id FROM ledger_account a \
                        CROSS JOIN generate_series(0, 15) AS s(n) WHERE a.must_not_overdraw = FALSE";
            manager.get_connection().execute_unprepared(fill).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP VIEW IF EXISTS ledger_account_balance").await?;
        manager.drop_table(Table::drop().table("ledger_account_shard").if_exists().take()).await?;
        Ok(())
    }
}
