//! Reminders before credit is lost: `reminder` keeps, per pass and threshold (30 or 7 days
//! before the generation deadline), that the family was told, so each reminder goes once
//! however many schedulers run.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0013_reminders"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![table(
            "reminder",
            vec![pk_uuid("id"), uuid("pass_id"), integer("threshold_days"), big_integer("created_at_us")],
        )];
        let indexes = vec![index("ux_reminder_pass", "reminder", &["pass_id", "threshold_days"], true)];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["reminder"]).await
    }
}
