//! Throttling redesigned (docs/security-auth.md):
//! - `throttle` keeps, per key, the GCRA state (`tat_us`, the theoretical arrival time, and
//!   `allow_at_us`, when the next attempt conforms) instead of failure counters that never
//!   decayed. The old rows are dropped with the old table: they only held blocks.
//! - `child_link_guard`: per pupil, the link challenges and code attempts made across every
//!   account; past the caps, links to that pupil wait for a staff review.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{counter, create_all, drop_all, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_throttle"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["throttle"]).await?;
        let tables = vec![
            table(
                "throttle",
                vec![
                    // "login:pair:<email>|<ip>", "login:ip:<ip>", "mail:to:<email>", …
                    string("key").primary_key().take(),
                    big_integer("tat_us"),
                    big_integer("allow_at_us"),
                ],
            ),
            table("child_link_guard", vec![pk_uuid("pupil_id"), counter("challenges"), counter("attempts")]),
        ];
        create_all(manager, tables, vec![]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["throttle", "child_link_guard"]).await?;
        let old = table(
            "throttle",
            vec![
                string("key").primary_key().take(),
                integer("failures"),
                big_integer("window_start_us"),
                big_integer("blocked_until_us"),
            ],
        );
        create_all(manager, vec![old], vec![]).await
    }
}
