//! Partner access and staff accountability: the minimal partner (the full entity comes with
//! affiliation), its members, its API clients (OAuth2 client credentials for club software),
//! an audit trail of staff and partner-owner decisions, and the time a device session last
//! proved its credentials again (step-up before sensitive operations).
//!
//! API client secrets are never stored: only their SHA-256, like refresh tokens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_partner_access"
    }
}

const TABLES: &[&str] = &["partner", "partner_member", "api_client", "audit_event"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            table("partner", vec![pk_uuid("id"), string("name"), big_integer("created_at_us")]),
            table(
                "partner_member",
                vec![
                    pk_uuid("id"),
                    // One partner per account: "the caller's partner" is never ambiguous.
                    uuid("account_id"),
                    uuid("partner_id"),
                    // owner | member
                    string("role"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "api_client",
                vec![
                    pk_uuid("id"),
                    uuid("partner_id"),
                    // The `client_id` club software sends (16 hex digits); also inside the secret.
                    string_len("public_id", 16),
                    string("name"),
                    string_len("secret_hash", 64),
                    // Changes with every secret: access tokens carry it, so a rotation or a
                    // revocation also kills the tokens already issued.
                    uuid("credential_id"),
                    // The owner who created it (null when a tool did).
                    uuid_null("created_by"),
                    big_integer("created_at_us"),
                    big_integer_null("rotated_at_us"),
                    big_integer_null("last_used_at_us"),
                    big_integer_null("revoked_at_us"),
                ],
            ),
            table(
                "audit_event",
                vec![
                    pk_uuid("id"),
                    // link_child | unlink_child | create_api_client | rotate_api_client | revoke_api_client
                    string("action"),
                    // Null only in the development back office (no signed-in staff).
                    uuid_null("actor_account_id"),
                    string("actor"),
                    uuid_null("funder_id"),
                    uuid_null("partner_id"),
                    // The account and the object concerned (parent account and pupil, client…).
                    uuid_null("subject_account_id"),
                    uuid_null("object_id"),
                    text_null("reason"),
                    big_integer("created_at_us"),
                ],
            ),
        ];
        let indexes = vec![
            index("ux_partner_member_account", "partner_member", &["account_id"], true),
            index("ix_partner_member_partner", "partner_member", &["partner_id"], false),
            index("ux_api_client_public_id", "api_client", &["public_id"], true),
            index("ix_api_client_partner", "api_client", &["partner_id"], false),
            index("ix_audit_subject", "audit_event", &["subject_account_id", "created_at_us"], false),
            index("ix_audit_object", "audit_event", &["object_id", "created_at_us"], false),
        ];
        create_all(manager, tables, indexes).await?;
        // Set at sign-in and by `reauthenticate`; sensitive operations want it recent.
        manager
            .alter_table(
                Table::alter().table("device_session").add_column(big_integer_null("reauthenticated_at_us")).take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("device_session").drop_column("reauthenticated_at_us").take()).await?;
        drop_all(manager, TABLES).await
    }
}
