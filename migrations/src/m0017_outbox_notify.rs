//! PostgreSQL: every transaction that writes outbox rows sends `NOTIFY outbox` (a
//! statement-level trigger, so every writer is covered and the notification leaves at commit,
//! never for a rolled-back row). Dispatchers listening start a pass at once instead of at their
//! next poll, which stays as the fallback. Nothing on SQLite, which has no such channel.
//!
//! Dropped by m0022: the commits it serialised cost the money path more than the wake-up was
//! worth.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0017_outbox_notify"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION outbox_written() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_notify('outbox', ''); RETURN NULL; END $$",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER outbox_written AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_written()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS outbox_written ON outbox").await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS outbox_written()").await?;
        Ok(())
    }
}
