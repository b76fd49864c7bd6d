//! Requests (demandes): what families ask of the funder — enrolment, the boursier bonus, a lost
//! card, a data correction, a redemption dispute — and every step of their handling.
//! - `request`: its current status and the milestones the delay figures are computed from
//!   (acknowledged, first staff response, decided), each stamped once by the database clock in
//!   the same conditional update that moves the status. `open_key` is set while the request
//!   is open and cleared when it closes: its unique index allows one open request per kind
//!   and subject (NULLs never collide, on SQLite as on PostgreSQL).
//! - `request_event`: the history, one row per action (who, when, at the counter or not,
//!   from and to which status, public message, internal note).
//! - `attachment`: proof documents, stored through `object_store` under their id, bound to
//!   one request once it is submitted; only the uploader and the funder's staff read them.
//! - `replaced_card`: card numbers taken out of use by a replacement, so a club charging an
//!   old card is told it is blocked rather than that it does not exist.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0014_requests"
    }
}

const TABLES: &[&str] = &["request", "request_event", "attachment", "replaced_card"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            table(
                "request",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    string("kind"),
                    string("status"),
                    // app | counter: where it was opened.
                    string("channel"),
                    // The family's account; none when staff open it at the counter for a
                    // family that has no account.
                    uuid_null("requester_account_id"),
                    uuid_null("opened_by_account_id"),
                    uuid_null("pupil_id"),
                    uuid_null("campaign_id"),
                    uuid_null("pass_id"),
                    uuid_null("redemption_id"),
                    // A partner's affiliation request: the partner applying.
                    uuid_null("partner_id"),
                    boolean("boursier_claim").default(false).take(),
                    uuid_null("assignee_account_id"),
                    string_null("open_key"),
                    big_integer("created_at_us"),
                    big_integer("updated_at_us"),
                    big_integer_null("acknowledged_at_us"),
                    big_integer_null("responded_at_us"),
                    big_integer_null("decided_at_us"),
                ],
            ),
            table(
                "request_event",
                vec![
                    pk_uuid("id"),
                    uuid("request_id"),
                    string("action"),
                    // family | staff
                    string("party"),
                    uuid_null("actor_account_id"),
                    boolean("at_counter").default(false).take(),
                    string_null("from_status"),
                    string("to_status"),
                    text_null("public_message"),
                    text_null("internal_note"),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "attachment",
                vec![
                    pk_uuid("id"),
                    uuid("owner_account_id"),
                    uuid_null("request_id"),
                    string("content_type"),
                    big_integer("size"),
                    string_len("sha256", 64),
                    big_integer("created_at_us"),
                ],
            ),
            table(
                "replaced_card",
                vec![
                    pk_uuid("id"),
                    string_uniq("number"),
                    uuid("pass_id"),
                    uuid_null("request_id"),
                    big_integer("created_at_us"),
                ],
            ),
        ];
        let indexes = vec![
            index("ux_request_open_key", "request", &["open_key"], true),
            index("ix_request_queue", "request", &["funder_id", "status", "created_at_us"], false),
            index("ix_request_requester", "request", &["requester_account_id", "created_at_us"], false),
            index("ix_request_event_request", "request_event", &["request_id", "created_at_us"], false),
            index("ix_attachment_request", "attachment", &["request_id"], false),
            index("ix_attachment_owner", "attachment", &["owner_account_id", "created_at_us"], false),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
