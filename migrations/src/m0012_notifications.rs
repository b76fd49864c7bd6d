//! Notifications (issue 12): the outbox rows the ledger writes with every balance change are
//! dispatched to each linked parent — an inbox entry, a push per registered device, an e-mail —
//! exactly as committed, at least once.
//! - `outbox` gains a claim lease (`claimed_until_us`: a dispatcher that dies releases its rows
//!   when the lease runs out), `failed_at_us` and `last_error` (what finally failed, for staff);
//! - `notification`: the inbox, one row per (account, event): re-dispatching writes nothing new;
//! - `delivery`: each channel sent for an event (`push:<token id>`, `email:<account>`), so a
//!   retry after a partial failure sends only what did not go out;
//! - `push_token`: the devices of an account (pruned when FCM says they are gone, or unused
//!   for 60 days); `notification_preference`: per account and kind, push and e-mail on or off.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0012_notifications"
    }
}

const TABLES: &[&str] = &["notification", "delivery", "push_token", "notification_preference"];
const OUTBOX: [&str; 3] = ["claimed_until_us", "failed_at_us", "last_error"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in OUTBOX {
            let def = if column == "last_error" { text_null(column) } else { big_integer_null(column) };
            manager.alter_table(Table::alter().table("outbox").add_column(def).take()).await?;
        }
        let tables = vec![
            table(
                "notification",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    // The outbox row it comes from: the app drops duplicates by it.
                    uuid("event_id"),
                    string("kind"),
                    text("payload"),
                    big_integer("created_at_us"),
                    big_integer_null("read_at_us"),
                ],
            ),
            table("delivery", vec![pk_uuid("id"), uuid("event_id"), string("channel"), big_integer("sent_at_us")]),
            table(
                "push_token",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    string_uniq("token"),
                    string("platform"),
                    big_integer("created_at_us"),
                    big_integer("last_seen_at_us"),
                ],
            ),
            table(
                "notification_preference",
                vec![pk_uuid("id"), uuid("account_id"), string("kind"), boolean("push"), boolean("email")],
            ),
        ];
        let indexes = vec![
            index("ux_notification_event", "notification", &["account_id", "event_id"], true),
            index("ix_notification_account", "notification", &["account_id", "created_at_us"], false),
            index("ux_delivery_channel", "delivery", &["event_id", "channel"], true),
            index("ix_push_token_account", "push_token", &["account_id"], false),
            index("ux_notification_preference", "notification_preference", &["account_id", "kind"], true),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await?;
        for column in OUTBOX {
            manager.alter_table(Table::alter().table("outbox").drop_column(column).take()).await?;
        }
        Ok(())
    }
}
