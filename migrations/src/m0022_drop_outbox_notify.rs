//! PostgreSQL: no more `NOTIFY outbox` at every commit that writes outbox rows (m0017).
//!
//! PostgreSQL serialises the commits of transactions that sent a `NOTIFY` (one lock, held
//! through the commit's WAL flush, so that notifications queue in commit order). Every
//! redemption writes an outbox row, so every redemption committed one at a time:
//! `spending-bench` on 2 cores gave 888–899 redemptions/s at 8 clients with the trigger and
//! 1,017–1,081 without it, runs interleaved. What it bought was a dispatcher pass within 50 ms
//! of a commit instead of at the next poll (200 ms by default): commit-to-push p99 of about
//! 170 ms instead of 500 ms, both within the notifications' 1 s aim. The dispatcher polls.

use sea_orm_migration::prelude::*;

use crate::m0017_outbox_notify;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0022_drop_outbox_notify"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        m0017_outbox_notify::Migration.down(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        m0017_outbox_notify::Migration.up(manager).await
    }
}
