//! The partners' directory (issue 13): where a partner is and what it offers, so families find
//! it near home.
//! - `partner` gains its kind, address, commune INSEE code, geo point, contact, the convention
//!   it accepted (version, when, by whom) and `search_text`: its name and commune lower-cased
//!   with accents removed, written by the application, so "theatre" finds "Théâtre" with the
//!   same `LIKE` on SQLite and PostgreSQL (neither folds accents by itself).
//! - `activity`: what a partner publishes (title, wallet, price, ages, season, place).
//! - Indexes on latitude: a distance search reads only the band of the bounding box.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{create_all, drop_all, index, table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0018_directory"
    }
}

const PARTNER: [&str; 11] = [
    "kind",
    "address",
    "postcode",
    "commune_insee",
    "lat",
    "lon",
    "contact_email",
    "contact_phone",
    "convention_version",
    "convention_accepted_at_us",
    "convention_accepted_by",
];

fn partner_column(name: &'static str) -> ColumnDef {
    match name {
        "lat" | "lon" => double_null(name),
        "convention_accepted_at_us" => big_integer_null(name),
        "convention_accepted_by" => uuid_null(name),
        _ => string_null(name),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per `ALTER TABLE`.
        for name in PARTNER {
            manager.alter_table(Table::alter().table("partner").add_column(partner_column(name)).take()).await?;
        }
        let search = string("search_text").default("").take();
        manager.alter_table(Table::alter().table("partner").add_column(search).take()).await?;
        // Partners from before: their name lower-cased (accents of existing names stay until
        // the partner is next written; ASCII names match at once).
        let fill = "UPDATE partner SET search_text = LOWER(name || ' ' || COALESCE(commune, ''))";
        manager.get_connection().execute_unprepared(fill).await?;
        let tables = vec![table(
            "activity",
            vec![
                pk_uuid("id"),
                uuid("partner_id"),
                string("title"),
                string("search_text"),
                string("category"),
                big_integer_null("price_cents"),
                integer_null("age_min"),
                integer_null("age_max"),
                string_null("season"),
                string_null("commune"),
                string_null("commune_insee"),
                text_null("location"),
                double_null("lat"),
                double_null("lon"),
                big_integer("created_at_us"),
                big_integer("updated_at_us"),
            ],
        )];
        let indexes = vec![
            index("ix_activity_partner", "activity", &["partner_id", "title"], false),
            index("ix_activity_lat", "activity", &["lat"], false),
            index("ix_partner_lat", "partner", &["status", "lat"], false),
        ];
        create_all(manager, tables, indexes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite refuses to drop a column an index still names.
        manager.drop_index(Index::drop().name("ix_partner_lat").table("partner").to_owned()).await?;
        drop_all(manager, &["activity"]).await?;
        for name in PARTNER.iter().chain(["search_text"].iter()) {
            manager.alter_table(Table::alter().table("partner").drop_column(*name).take()).await?;
        }
        Ok(())
    }
}
