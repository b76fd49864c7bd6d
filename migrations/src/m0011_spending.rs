//! Spending the Pass (issue 11):
//! - `partner` gains its funder, the wallets it accepts (`categories`, "sport,culture") and an
//!   affiliation `status` (pending | approved | suspended): only approved partners of the
//!   pass's funder are paid, and only from the wallets of their categories;
//! - `pass.pin_failures`: wrong card PINs in a row; the fifth blocks the card;
//! - `ticket`: what a family issued for a club. Its money is a ledger hold (`hold_id`); its
//!   status is *read from the hold* (pending, posted, voided, expired), never stored twice, so
//!   a redemption racing a cancellation or the expiry sweep is decided by the hold's one
//!   conditional update;
//! - `redemption`: money a partner received (a redeemed ticket, a payment, a card charge),
//!   with what was refunded since; `op_id` is the ledger operation that moved it;
//! - `ticket_signing_key`: the Ed25519 keys that sign tickets' `qrPayload` (private half sealed
//!   with the data key), published at `/.well-known/jwks.json` while a ticket they signed may
//!   still be shown.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{counter, create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0011_spending"
    }
}

const TABLES: &[&str] = &["ticket_signing_key", "ticket", "redemption"];

fn partner_columns() -> Vec<ColumnDef> {
    vec![
        uuid_null("funder_id"),
        string("categories").default("").take(),
        string("status").default("pending").take(),
        string_null("commune"),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per `ALTER TABLE`.
        for column in partner_columns() {
            manager.alter_table(Table::alter().table("partner").add_column(column).take()).await?;
        }
        manager.alter_table(Table::alter().table("pass").add_column(counter("pin_failures")).take()).await?;
        let tables = vec![
            table(
                "ticket_signing_key",
                vec![
                    // RFC 7638 thumbprint of the public key.
                    string("kid").primary_key().take(),
                    string("public_key"),
                    text("sealed_private_key"),
                    big_integer("created_at_us"),
                    big_integer_null("retired_at_us"),
                ],
            ),
            table(
                "ticket",
                vec![
                    pk_uuid("id"),
                    // What the club types or scans: 10 Crockford base-32 characters.
                    string_uniq("code"),
                    uuid("pass_id"),
                    uuid("funder_id"),
                    string("wallet"),
                    big_integer("amount").check(Expr::col("amount").gt(0)).take(),
                    // Null: a bearer ticket, redeemable by any approved partner of the wallet.
                    uuid_null("partner_id"),
                    uuid("hold_id"),
                    string("kid"),
                    uuid("issued_by"),
                    big_integer("valid_until_us"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "redemption",
                vec![
                    pk_uuid("id"),
                    uuid("partner_id"),
                    uuid("funder_id"),
                    uuid("pass_id"),
                    string("wallet"),
                    // ticket | payment | card_charge
                    string("source"),
                    uuid_null("ticket_id"),
                    string_null("activity_id"),
                    big_integer("amount").check(Expr::col("amount").gt(0)).take(),
                    counter("refunded_amount"),
                    uuid("op_id"),
                    big_integer("created_at_us"),
                ],
            ),
        ];
        let indexes = vec![
            index("ix_ticket_pass", "ticket", &["pass_id", "created_at_us"], false),
            index("ux_ticket_hold", "ticket", &["hold_id"], true),
            index("ix_ticket_kid", "ticket", &["kid", "valid_until_us"], false),
            index("ix_redemption_partner", "redemption", &["partner_id", "created_at_us"], false),
            index("ix_redemption_op", "redemption", &["op_id"], false),
            index("ix_redemption_pass", "redemption", &["pass_id"], false),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await?;
        manager.alter_table(Table::alter().table("pass").drop_column("pin_failures").take()).await?;
        for name in ["funder_id", "categories", "status", "commune"] {
            manager.alter_table(Table::alter().table("partner").drop_column(name).take()).await?;
        }
        Ok(())
    }
}
