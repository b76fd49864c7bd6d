//! School data (from the ENT feed), campaigns, eligibility decisions and passes.
//!
//! People and schools are keyed by their *source* key within a funder (AAF jointure ids are
//! unique only within one académie, so the importer prefixes them). Links between pupils and
//! guardians are stored by those source keys too: the two sides arrive in different files, in
//! any order, and both directions must be reconciled. Nothing here is ever hard-deleted:
//! a pupil who leaves gets `left_at`, because money history must survive.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_school"
    }
}

const TABLES: &[&str] = &[
    "funder",
    "school",
    "pupil",
    "guardian",
    "guardianship",
    "roster_import",
    "roster_import_issue",
    "campaign",
    "campaign_policy_version",
    "eligibility",
    "pass",
];

fn ts(name: &'static str) -> ColumnDef {
    big_integer(name)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            table(
                "funder",
                vec![
                    pk_uuid("id"),
                    // "92": the département number, also the UAI prefix "092".
                    string_uniq("code"),
                    string("name"),
                    string("departement"),
                    ts("created_at_us"),
                ],
            ),
            table(
                "school",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    string("source_key"),
                    string_null("uai"),
                    boolean("uai_valid"),
                    string("name"),
                    string_null("kind"),
                    string_null("postal_code"),
                    string_null("city"),
                    string_null("academie"),
                    string("fingerprint"),
                    ts("created_at_us"),
                    ts("updated_at_us"),
                ],
            ),
            table(
                "pupil",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    string("source_key"),
                    string_null("ine"),
                    string_null("siecle_id"),
                    string("family_name"),
                    string_null("usage_name"),
                    string("given_name"),
                    date_null("birth_date"),
                    string_null("school_key"),
                    string_null("uai"),
                    string_null("class_name"),
                    string_null("mef"),
                    string_null("grade"),
                    boolean_null("boursier"),
                    small_integer_null("echelon"),
                    date_null("left_at"),
                    // SHA-256 of the imported fields: a re-import with the same data is "unchanged".
                    string("fingerprint"),
                    uuid_null("last_import_id"),
                    ts("created_at_us"),
                    ts("updated_at_us"),
                ],
            ),
            table(
                "guardian",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    string("source_key"),
                    string_null("title"),
                    string("family_name"),
                    string_null("usage_name"),
                    string("given_name"),
                    string_null("email"),
                    string_null("mobile"),
                    string_null("home_phone"),
                    string_null("work_phone"),
                    string_null("postal_code"),
                    string_null("city"),
                    date_null("left_at"),
                    string("fingerprint"),
                    uuid_null("last_import_id"),
                    ts("created_at_us"),
                    ts("updated_at_us"),
                ],
            ),
            table(
                "guardianship",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    string("pupil_key"),
                    string("guardian_key"),
                    // 1 or 2: legal guardian (RL1/RL2); 0: contact without parental authority.
                    small_integer("legal_level"),
                    string("relation_code"),
                    boolean("financial"),
                    boolean("contact"),
                    boolean_null("receives_aid"),
                    boolean_null("houses_pupil"),
                    // Which side(s) stated the link: "pupil", "guardian" or "both".
                    string("stated_by"),
                    ts("updated_at_us"),
                ],
            ),
            table(
                "roster_import",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    string("format"),
                    text("files"),
                    // running | succeeded | rejected
                    string("status"),
                    boolean("full_snapshot"),
                    big_integer("created").default(0).take(),
                    big_integer("updated").default(0).take(),
                    big_integer("unchanged").default(0).take(),
                    big_integer("left").default(0).take(),
                    big_integer("rejected").default(0).take(),
                    big_integer("warnings").default(0).take(),
                    text_null("error"),
                    string("author"),
                    ts("started_at_us"),
                    big_integer_null("finished_at_us"),
                ],
            ),
            table(
                "roster_import_issue",
                vec![
                    pk_uuid("id"),
                    uuid("import_id"),
                    string("file"),
                    big_integer("line"),
                    big_integer("col"),
                    string_null("record_key"),
                    string("code"),
                    text("message"),
                ],
            ),
            table(
                "campaign",
                vec![
                    pk_uuid("id"),
                    uuid("funder_id"),
                    // The starting year: 2026 for 2026-27.
                    integer("school_year"),
                    string("name"),
                    integer("policy_version"),
                    text("policy"),
                    ts("created_at_us"),
                    ts("updated_at_us"),
                ],
            ),
            table(
                "campaign_policy_version",
                vec![
                    pk_uuid("id"),
                    uuid("campaign_id"),
                    integer("version"),
                    text("policy"),
                    string("author"),
                    ts("created_at_us"),
                ],
            ),
            table(
                "eligibility",
                vec![
                    pk_uuid("id"),
                    uuid("pupil_id"),
                    uuid("campaign_id"),
                    // What the rules say from the school data: eligible | ineligible | review.
                    string("computed"),
                    text("reasons"),
                    // A staff decision wins over the computed one and survives re-imports.
                    boolean_null("override_eligible"),
                    text_null("override_reason"),
                    string_null("override_author"),
                    big_integer_null("override_at_us"),
                    boolean("eligible"),
                    ts("computed_at_us"),
                ],
            ),
            table(
                "pass",
                vec![
                    pk_uuid("id"),
                    uuid("pupil_id"),
                    uuid("campaign_id"),
                    string_uniq("number"),
                    // active | blocked | replaced | expired
                    string("status"),
                    string_null("pin_hash"),
                    uuid_null("replaces_id"),
                    ts("created_at_us"),
                ],
            ),
        ];
        let indexes = vec![
            index("ux_school_key", "school", &["funder_id", "source_key"], true),
            index("ix_school_uai", "school", &["uai"], false),
            index("ux_pupil_key", "pupil", &["funder_id", "source_key"], true),
            index("ix_pupil_uai", "pupil", &["uai", "grade"], false),
            index("ix_pupil_names", "pupil", &["family_name", "given_name"], false),
            index("ux_guardian_key", "guardian", &["funder_id", "source_key"], true),
            index("ux_guardianship", "guardianship", &["funder_id", "pupil_key", "guardian_key"], true),
            index("ix_guardianship_guardian", "guardianship", &["funder_id", "guardian_key"], false),
            index("ix_roster_import_funder", "roster_import", &["funder_id", "started_at_us"], false),
            index("ix_roster_import_issue", "roster_import_issue", &["import_id"], false),
            index("ux_campaign_year", "campaign", &["funder_id", "school_year"], true),
            index("ux_policy_version", "campaign_policy_version", &["campaign_id", "version"], true),
            index("ux_eligibility", "eligibility", &["campaign_id", "pupil_id"], true),
            index("ix_eligibility_pupil", "eligibility", &["pupil_id"], false),
            // One pass per pupil and campaign: a replaced card changes the pass's number and
            // keeps its wallets, so the grant can rely on this index for idempotency.
            index("ux_pass_pupil", "pass", &["campaign_id", "pupil_id"], true),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
