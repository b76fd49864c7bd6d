//! A refresh token names the token whose rotation made it (`replaces`). The refresh grace asks
//! whether a used token is the one its session rotated last; by `used_at_us` alone two
//! rotations in the same millisecond (SQLite's clock) looked simultaneous, and a token two
//! rotations old passed for the last one.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::uuid_null;

use crate::util::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0021_refresh_chain"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("refresh_token").add_column(uuid_null("replaces")).take()).await?;
        manager.create_index(index("ix_refresh_token_replaces", "refresh_token", &["replaces"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("ix_refresh_token_replaces").table("refresh_token").to_owned()).await?;
        manager.alter_table(Table::alter().table("refresh_token").drop_column("replaces").take()).await
    }
}
