//! PostgreSQL: `ledger_missed()`, which fails the statement that calls it.
//!
//! An operation sent as one statement (`domain::ledger::one_statement`) runs without an
//! explicit transaction, so the statement is its transaction. When one of its conditional
//! updates matched nothing (a key already taken, a hold no longer pending, a wallet short of
//! money), the statement calls this function: the error undoes every write of the statement,
//! and its own SQLSTATE tells the caller to take the usual path, which says why.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0023_ledger_missed"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // VOLATILE (the default), so that it runs only in the branch of the CASE that calls it.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE OR REPLACE FUNCTION ledger_missed() RETURNS bigint LANGUAGE plpgsql VOLATILE AS \
                 $$ BEGIN RAISE EXCEPTION 'a conditional update of the operation matched nothing' \
                 USING ERRCODE = 'PSL01'; END $$",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared("DROP FUNCTION IF EXISTS ledger_missed()").await?;
        Ok(())
    }
}
