//! Roster details the importer used to read and drop:
//! - `pupil.mef_label`: the label of the pupil's MEF (`5EME`, `3EME`), so staff see the level as
//!   the school names it, bilangue and SEGPA variants included (the grade only keeps 6e–3e);
//! - `mef`: MEF code → label per funder. SIECLE gives labels per *code* in its nomenclature
//!   file, not per pupil, and that file may come after the pupils or in another import: the
//!   importer keeps what it learnt here and copies it onto the pupils of that code;
//! - the counts of guardians, schools and links on `roster_import`, next to the pupil counts,
//!   so an import's effect on families can be checked afterwards, not only on the CLI.
//!
//! SQLite adds one column per `ALTER TABLE`, hence one statement per column.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{counter, create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_roster_details"
    }
}

/// The new counters of `roster_import`, all starting at zero (older imports read as zero).
const IMPORT_COUNTS: [&str; 12] = [
    "guardians_created",
    "guardians_updated",
    "guardians_unchanged",
    "guardians_left",
    "guardians_rejected",
    "schools_created",
    "schools_updated",
    "schools_unchanged",
    "links_created",
    "links_updated",
    "links_ended",
    "links_one_sided",
];

fn add_column(table: &'static str, column: ColumnDef) -> TableAlterStatement {
    Table::alter().table(table).add_column(column).take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(add_column("pupil", string_null("mef_label"))).await?;
        for name in IMPORT_COUNTS {
            manager.alter_table(add_column("roster_import", counter(name))).await?;
        }
        let mef = table(
            "mef",
            vec![
                pk_uuid("id"),
                uuid("funder_id"),
                // The 11-character MEF code (`10010012110`).
                string("code"),
                // SIECLE `LIBELLE_LONG`, AAF `ENTEleveLibelleMEF`: the last one read wins.
                string("label"),
                big_integer("updated_at_us"),
            ],
        );
        create_all(manager, vec![mef], vec![index("ux_mef_code", "mef", &["funder_id", "code"], true)]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["mef"]).await?;
        for name in IMPORT_COUNTS.iter().rev() {
            manager.alter_table(Table::alter().table("roster_import").drop_column(*name).take()).await?;
        }
        manager.alter_table(Table::alter().table("pupil").drop_column("mef_label").take()).await
    }
}
