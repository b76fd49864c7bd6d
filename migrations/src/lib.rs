//! Schema migrations for Passerelle.
//!
//! One migration per feature, written with the SeaQuery DSL so the very same code creates the
//! schema on SQLite (the embedded default) and on PostgreSQL (production). Money columns are
//! `BIGINT` cents: SQLite would turn a DECIMAL into a float. Ledger timestamps are `BIGINT`
//! microseconds since the Unix epoch, taken from the database clock, so that SQL can compare
//! them the same way on both backends (SQLite has no timestamp type).

// `MigrationTrait` is an async_trait whose signatures elide `SchemaManager`'s lifetime.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m0001_ledger;
mod m0002_school;
mod m0003_identity;
mod m0004_partner_access;
mod m0005_oidc;
mod m0006_lookup_indexes;
mod m0007_roster_details;
mod m0008_ledger_scope;
mod m0009_identity_hardening;
mod m0010_throttle;
mod m0011_spending;
mod m0012_notifications;
mod m0013_reminders;
mod m0014_requests;
mod m0016_settlement;
mod m0017_outbox_notify;
mod m0018_directory;
mod m0019_account_shards;
mod m0020_outbox_feed_index;
mod m0021_refresh_chain;
mod m0022_drop_outbox_notify;
mod m0023_ledger_missed;
mod m0024_partial_indexes;
mod util;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_ledger::Migration),
            Box::new(m0002_school::Migration),
            Box::new(m0003_identity::Migration),
            Box::new(m0004_partner_access::Migration),
            Box::new(m0005_oidc::Migration),
            Box::new(m0006_lookup_indexes::Migration),
            Box::new(m0007_roster_details::Migration),
            Box::new(m0008_ledger_scope::Migration),
            Box::new(m0009_identity_hardening::Migration),
            Box::new(m0010_throttle::Migration),
            Box::new(m0011_spending::Migration),
            Box::new(m0012_notifications::Migration),
            Box::new(m0013_reminders::Migration),
            Box::new(m0014_requests::Migration),
            Box::new(m0016_settlement::Migration),
            Box::new(m0017_outbox_notify::Migration),
            Box::new(m0018_directory::Migration),
            Box::new(m0019_account_shards::Migration),
            Box::new(m0020_outbox_feed_index::Migration),
            Box::new(m0021_refresh_chain::Migration),
            Box::new(m0022_drop_outbox_notify::Migration),
            Box::new(m0023_ledger_missed::Migration),
            Box::new(m0024_partial_indexes::Migration),
        ]
    }
}
