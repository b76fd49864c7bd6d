//! Reimbursing partners by SEPA transfer (issue 13, settlement):
//! - `partner` gains its legal identity and bank details (legal name, SIRET, IBAN, BIC, account
//!   holder), who set them and who validated them: a changed IBAN is unvalidated until a staff
//!   member other than its author validates it, and an unvalidated partner is never paid;
//! - `funder` gains its settlement schedule and its treasury account (the debtor of the file);
//! - `redemption_refund`: each refund as its own dated row (the redemption keeps its counter),
//!   so a refund made after its redemption was paid is deducted from the next batch;
//! - `settlement_batch`, `settlement_line` (one per partner paid), `settlement_item` (each
//!   redemption or refund a line settles). `ux_settlement_item_source` is the rule that a
//!   redemption or refund is settled once and only once, whatever the application does.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0016_settlement"
    }
}

const TABLES: &[&str] = &["redemption_refund", "settlement_batch", "settlement_line", "settlement_item"];
const PARTNER: [&str; 9] = [
    "legal_name",
    "siret",
    "iban",
    "bic",
    "account_holder",
    "bank_set_by",
    "bank_set_at_us",
    "bank_validated_by",
    "bank_validated_at_us",
];
const FUNDER: [&str; 4] = ["settlement_schedule", "treasury_name", "treasury_iban", "treasury_bic"];

fn partner_column(name: &'static str) -> ColumnDef {
    if name.ends_with("_us") { big_integer_null(name) } else { string_null(name) }
}

fn funder_column(name: &'static str) -> ColumnDef {
    if name == "settlement_schedule" { string(name).default("semi_monthly").take() } else { string_null(name) }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per `ALTER TABLE`.
        for name in PARTNER {
            manager.alter_table(Table::alter().table("partner").add_column(partner_column(name)).take()).await?;
        }
        for name in FUNDER {
            manager.alter_table(Table::alter().table("funder").add_column(funder_column(name)).take()).await?;
        }
        let tables = vec![
            table(
                "redemption_refund",
                vec![
                    pk_uuid("id"),
                    uuid("redemption_id"),
                    uuid("partner_id"),
                    uuid("funder_id"),
                    big_integer("amount").check(Expr::col("amount").gt(0)).take(),
                    uuid("op_id"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "settlement_batch",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    // The last day settled (Europe/Paris), and the instant it ends.
                    string("cutoff"),
                    big_integer("cutoff_us"),
                    // draft | approved
                    string("status"),
                    string("execution_date"),
                    big_integer("total_cents"),
                    integer("partners"),
                    integer("items"),
                    integer("carried_partners"),
                    string("created_by"),
                    big_integer("created_at_us"),
                    string_null("approved_by"),
                    big_integer_null("approved_at_us"),
                ],
            ),
            table(
                "settlement_line",
                vec![
                    pk_uuid("id"),
                    uuid("batch_id"),
                    uuid("partner_id"),
                    uuid("funder_id"),
                    big_integer("amount").check(Expr::col("amount").gt(0)).take(),
                    big_integer("redeemed_cents"),
                    big_integer("refunded_cents"),
                    integer("items"),
                    // The validated bank details the transfer goes to, as they were.
                    string("account_holder"),
                    string("iban"),
                    string_null("bic"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "settlement_item",
                vec![
                    pk_uuid("id"),
                    uuid("batch_id"),
                    uuid("line_id"),
                    // redemption | refund
                    string("kind"),
                    uuid("source_id"),
                    // Signed: a refund is negative.
                    big_integer("amount"),
                ],
            ),
        ];
        let indexes = vec![
            index("ix_redemption_refund_funder", "redemption_refund", &["funder_id", "created_at_us"], false),
            index("ix_redemption_funder", "redemption", &["funder_id", "created_at_us"], false),
            index("ix_settlement_batch_funder", "settlement_batch", &["funder_id", "created_at_us"], false),
            index("ux_settlement_line_partner", "settlement_line", &["batch_id", "partner_id"], true),
            index("ix_settlement_line_partner", "settlement_line", &["partner_id", "created_at_us"], false),
            index("ux_settlement_item_source", "settlement_item", &["kind", "source_id"], true),
            index("ix_settlement_item_line", "settlement_item", &["line_id"], false),
        ];
        create_all(manager, tables, indexes).await?;
        // Refunds made before this migration: one dated row each (the redemption's time, the
        // only one known), so they are deducted like the later ones.
        let backfill = "INSERT INTO redemption_refund (id, redemption_id, partner_id, funder_id, amount, op_id, \
                        created_at_us) SELECT id, id, partner_id, funder_id, refunded_amount, op_id, created_at_us \
                        FROM redemption WHERE refunded_amount > 0";
        manager.get_connection().execute_unprepared(backfill).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("ix_redemption_funder").table("redemption").to_owned()).await?;
        drop_all(manager, TABLES).await?;
        for name in FUNDER {
            manager.alter_table(Table::alter().table("funder").drop_column(name).take()).await?;
        }
        for name in PARTNER {
            manager.alter_table(Table::alter().table("partner").drop_column(name).take()).await?;
        }
        Ok(())
    }
}
