//! The Pass ledger: TigerBeetle-style accounts with four counters, immutable transfers,
//! pending holds, idempotency keys and the notification outbox (written in the same
//! transaction as the money movement that causes it).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{counter, create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_ledger"
    }
}

const TABLES: &[&str] = &["ledger_account", "idempotency_key", "ledger_transfer", "ledger_hold", "outbox"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            table(
                "ledger_account",
                vec![
                    pk_uuid("id"),
                    string("kind"),
                    // The pass, campaign, partner or funder the account belongs to.
                    uuid("owner_id"),
                    // "sport" / "culture" for pass wallets, "" otherwise (NULL would defeat the unique index).
                    string("wallet").default("").take(),
                    // TigerBeetle's `debits_must_not_exceed_credits`: set on every pass wallet.
                    boolean("must_not_overdraw"),
                    counter("credits_posted"),
                    counter("debits_posted"),
                    counter("credits_pending"),
                    counter("debits_pending"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "idempotency_key",
                vec![
                    // Doubles as the operation id that every transfer of the operation carries.
                    pk_uuid("id"),
                    string("scope"),
                    string_len("key", 255),
                    string_len("fingerprint", 64),
                    // succeeded (inserted by the operation's own transaction, so visible only if it
                    // committed) or failed (a refusal, recorded afterwards).
                    string("outcome"),
                    text_null("result"),
                    string_null("error_code"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "ledger_transfer",
                vec![
                    pk_uuid("id"),
                    uuid("op_id"),
                    // Position in the operation, so a replay returns the transfers in order.
                    integer("leg"),
                    string("kind"),
                    // posted | pending | post_pending | void_pending | expire_pending
                    string("phase"),
                    uuid("debit_account_id"),
                    uuid("credit_account_id"),
                    big_integer("amount").check(Expr::col("amount").gt(0)).take(),
                    uuid_null("pending_id"),
                    big_integer_null("expires_at_us"),
                    text_null("metadata"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "ledger_hold",
                vec![
                    // The id of the pending transfer that created the hold.
                    pk_uuid("transfer_id"),
                    uuid("debit_account_id"),
                    boolean("debit_limited"),
                    uuid("credit_account_id"),
                    boolean("credit_limited"),
                    big_integer("amount").check(Expr::col("amount").gt(0)).take(),
                    big_integer("expires_at_us"),
                    // pending | posted | voided | expired: changes once, by a conditional update.
                    string("state"),
                    uuid_null("resolved_by"),
                    big_integer_null("resolved_at_us"),
                ],
            ),
            table(
                "outbox",
                vec![
                    pk_uuid("id"),
                    string("topic"),
                    uuid_null("account_id"),
                    text("payload"),
                    big_integer("created_at_us"),
                    integer("attempts").default(0).take(),
                    big_integer("next_attempt_at_us"),
                    big_integer_null("dispatched_at_us"),
                ],
            ),
        ];
        let indexes = vec![
            index("ux_ledger_account_owner", "ledger_account", &["kind", "owner_id", "wallet"], true),
            index("ux_idempotency_scope_key", "idempotency_key", &["scope", "key"], true),
            index("ix_ledger_transfer_op", "ledger_transfer", &["op_id", "leg"], false),
            index("ix_ledger_transfer_debit", "ledger_transfer", &["debit_account_id", "created_at_us"], false),
            index("ix_ledger_transfer_credit", "ledger_transfer", &["credit_account_id", "created_at_us"], false),
            // A hold is resolved (post, void or expire) at most once: a backstop to the
            // conditional update on ledger_hold.state.
            index("ux_ledger_transfer_pending", "ledger_transfer", &["pending_id"], true),
            index("ix_ledger_hold_due", "ledger_hold", &["state", "expires_at_us"], false),
            index("ix_outbox_due", "outbox", &["dispatched_at_us", "next_attempt_at_us"], false),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
