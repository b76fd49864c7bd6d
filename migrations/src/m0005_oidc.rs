//! OIDC sign-in flows: what the server must remember between `startOidcSignIn` and
//! `completeOidcSignIn` (the app is away at the provider meanwhile).
//!
//! A flow lives 10 minutes and is deleted when completed, so a state works once and the PKCE
//! verifier and nonce it holds do not outlive the sign-in. The state itself is kept only as a
//! SHA-256 hash: it is the lookup key, and a database reader must not be able to complete
//! someone else's sign-in with it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_oidc"
    }
}

const TABLES: &[&str] = &["oidc_flow"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![table(
            "oidc_flow",
            vec![
                pk_uuid("id"),
                string_len("state_hash", 64),
                // The configured provider's name (`educonnect`, `franceconnect`, `ent`…).
                string("provider"),
                string("nonce"),
                string("pkce_verifier"),
                // The redirect URI sent to the provider: the token request must repeat it.
                text("redirect_uri"),
                big_integer("created_at_us"),
                big_integer("expires_at_us"),
            ],
        )];
        let indexes = vec![
            index("ux_oidc_flow_state", "oidc_flow", &["state_hash"], true),
            index("ix_oidc_flow_expiry", "oidc_flow", &["expires_at_us"], false),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
