//! Identity hardening (issue 9).
//!
//! - `oidc_flow.flow_secret_hash`: the SHA-256 of the flow secret `startOidcSignIn` hands the
//!   app over TLS; `completeOidcSignIn` must present it with `state`. The state travels in the
//!   redirect, which another app claiming the same custom scheme can read; the flow secret does
//!   not. Flows started before this migration have none (NULL never matches), so they are
//!   dropped: a sign-in in progress starts again.
//!
//! Staff TOTP seeds keep their column; sealing them needs the data key, which SQL does not
//! have: the server seals the clear ones at start-up (`auth::seal_clear_totp_secrets`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_identity_hardening"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.exec_stmt(Query::delete().from_table("oidc_flow").to_owned()).await?;
        let column = string_len_null("flow_secret_hash", 64);
        manager.alter_table(Table::alter().table("oidc_flow").add_column(column).take()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("oidc_flow").drop_column("flow_secret_hash").take()).await
    }
}
