//! Accounts, device sessions with rotating refresh tokens, staff roles, single-use e-mail
//! tokens, family links and their one-time-code challenges, throttling counters.
//!
//! Secrets are never stored: refresh tokens, e-mail tokens and link codes are kept as SHA-256
//! hashes, passwords as Argon2id PHC strings.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_identity"
    }
}

const TABLES: &[&str] = &[
    "account",
    "account_identity",
    "device_session",
    "refresh_token",
    "email_token",
    "staff_role",
    "family_link",
    "link_challenge",
    "throttle",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            table(
                "account",
                vec![
                    pk_uuid("id"),
                    // parent | partner_member | staff
                    string("kind"),
                    // Lower-cased; unique.
                    string("email"),
                    big_integer_null("email_verified_at_us"),
                    text_null("password_hash"),
                    string("display_name"),
                    // active | disabled
                    string("status"),
                    string_null("totp_secret"),
                    big_integer_null("totp_last_step"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "account_identity",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    string("issuer"),
                    string("subject"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "device_session",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    string("device_id"),
                    string("platform"),
                    string("device_name"),
                    big_integer("created_at_us"),
                    big_integer("last_used_at_us"),
                    // Absolute expiry: 90 days for parents and partners, 12 hours for staff.
                    big_integer("expires_at_us"),
                    big_integer_null("revoked_at_us"),
                    string_null("revoked_reason"),
                ],
            ),
            table(
                "refresh_token",
                vec![
                    pk_uuid("id"),
                    uuid("session_id"),
                    string_len("token_hash", 64),
                    big_integer("created_at_us"),
                    // Set when rotated; presenting it again revokes the whole session (reuse).
                    big_integer_null("used_at_us"),
                ],
            ),
            table(
                "email_token",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    // verify | reset
                    string("purpose"),
                    string_len("token_hash", 64),
                    big_integer("expires_at_us"),
                    big_integer_null("used_at_us"),
                ],
            ),
            table(
                "staff_role",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    uuid("funder_id"),
                    string("role"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "family_link",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    uuid("pupil_id"),
                    // code | ent | staff
                    string("via"),
                    string("author"),
                    big_integer("created_at_us"),
                    big_integer_null("revoked_at_us"),
                    text_null("revoked_reason"),
                ],
            ),
            table(
                "link_challenge",
                vec![
                    pk_uuid("id"),
                    uuid("account_id"),
                    uuid("pupil_id"),
                    string_len("code_hash", 64),
                    // email | sms, and where it went (masked, for the app to show).
                    string("channel"),
                    string("destination"),
                    integer("attempts").default(0).take(),
                    big_integer("created_at_us"),
                    big_integer("expires_at_us"),
                    big_integer_null("consumed_at_us"),
                ],
            ),
            table(
                "throttle",
                vec![
                    // "login:acct:<email>", "login:ip:<ip>", "link:acct:<id>", …
                    string("key").primary_key().take(),
                    integer("failures"),
                    big_integer("window_start_us"),
                    big_integer("blocked_until_us"),
                ],
            ),
        ];
        let indexes = vec![
            index("ux_account_email", "account", &["email"], true),
            index("ux_account_identity", "account_identity", &["issuer", "subject"], true),
            index("ix_session_account", "device_session", &["account_id"], false),
            index("ux_refresh_hash", "refresh_token", &["token_hash"], true),
            index("ix_refresh_session", "refresh_token", &["session_id"], false),
            index("ux_email_token_hash", "email_token", &["token_hash"], true),
            index("ux_staff_role", "staff_role", &["account_id", "funder_id", "role"], true),
            index("ix_family_link", "family_link", &["account_id", "pupil_id"], false),
            index("ix_link_challenge", "link_challenge", &["account_id"], false),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
