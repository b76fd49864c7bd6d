//! The import's temporary tables: records are *staged* there in batches, then *merged* into
//! the real tables with a few set-based statements.
//!
//! Why: the obvious batch upsert (look the batch's keys up, insert the new ones, update the
//! changed ones) costs an index probe per record per table and rewrites links twice (once per
//! side); on PostgreSQL that made half a million probes for 100,000 pupils. Staging costs one
//! cheap insert per record (temporary tables are not WAL-logged on PostgreSQL), and merging is
//! a handful of joins the database runs in bulk: insert what is new, update what changed —
//! compared by fingerprint, so a re-import writes nothing to the real tables.
//!
//! The staged keys also tell which records this import has seen: snapshot leavers are the
//! pupils of the scope *not* in `imp_pupil` (an anti-join), without writing every row seen.
//! Memory stays flat: the staged data lives in the database (temporary tables spill to disk).
//!
//! The tables live in the import's transaction: on PostgreSQL `ON COMMIT DROP`; on SQLite they
//! belong to the connection, so they are dropped before the commit, and a rollback undoes their
//! creation with the rest.

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// Temporary tables, with `{uuid}` and `{date}` standing for the backend's column types (as
/// the migrations write them, so comparisons with the real columns behave the same).
const TABLES: [(&str, &str); 6] = [
    (
        "imp_pupil",
        "source_key varchar PRIMARY KEY, new_id {uuid}, token {uuid}, links_replace boolean, \
         ine varchar, siecle_id varchar, family_name varchar, usage_name varchar, given_name varchar, \
         birth_date {date}, school_key varchar, uai varchar, class_name varchar, mef varchar, mef_label varchar, grade varchar, \
         boursier boolean, echelon smallint, left_at {date}, fingerprint varchar, \
         refused boolean, gen bigint, first_gen bigint",
    ),
    (
        "imp_guardian",
        "source_key varchar PRIMARY KEY, new_id {uuid}, token {uuid}, links_replace boolean, \
         title varchar, family_name varchar, usage_name varchar, given_name varchar, email varchar, \
         mobile varchar, home_phone varchar, work_phone varchar, postal_code varchar, city varchar, \
         left_at {date}, fingerprint varchar, refused boolean, gen bigint, first_gen bigint",
    ),
    (
        "imp_link_p",
        "pupil_key varchar, guardian_key varchar, new_id {uuid}, token {uuid}, legal_level smallint, \
         relation_code varchar, financial boolean, contact boolean, receives_aid boolean, houses_pupil boolean, \
         PRIMARY KEY (pupil_key, guardian_key)",
    ),
    (
        "imp_link_g",
        "guardian_key varchar, pupil_key varchar, new_id {uuid}, token {uuid}, PRIMARY KEY (guardian_key, pupil_key)",
    ),
    (
        "imp_pair",
        "pupil_key varchar, guardian_key varchar, new_id {uuid}, g_said boolean, \
         e_id {uuid}, e_level smallint, e_relation varchar, e_financial boolean, e_contact boolean, \
         e_aid boolean, e_houses boolean, e_stated varchar, \
         n_level smallint, n_relation varchar, n_financial boolean, n_contact boolean, n_aid boolean, \
         n_houses boolean, n_stated varchar",
    ),
    // Guardians a full snapshot marks as left (`snapshot`): their links end (`links`).
    ("imp_gone", "source_key varchar PRIMARY KEY"),
];

/// Creates the temporary tables for the import running in `db` (a transaction).
pub(super) async fn create<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let pg = db.get_database_backend() == DbBackend::Postgres;
    let (uuid, date, suffix) = if pg { ("uuid", "date", " ON COMMIT DROP") } else { ("uuid_text", "date_text", "") };
    for (name, cols) in TABLES {
        if !pg {
            // A connection that served an earlier import of this process: start clean.
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS temp.{name}")).await?;
        }
        let cols = cols.replace("{uuid}", uuid).replace("{date}", date);
        db.execute_unprepared(&format!("CREATE TEMP TABLE {name} ({cols}){suffix}")).await?;
    }
    Ok(())
}

/// Drops them before the commit (SQLite; PostgreSQL drops them at the commit by itself).
pub(super) async fn drop_all<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        for (name, _) in TABLES {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS temp.{name}")).await?;
        }
    }
    Ok(())
}

/// PostgreSQL never analyses temporary tables by itself; without statistics it estimates their
/// size from their pages, which serves the per-file merges well enough (measured: analysing
/// before each of them cost more than it saved), but the end-of-import link merge joins five
/// tables and gets better plans with real figures. A sample, ~100 ms for 200,000 links.
/// No-op on SQLite, whose planner trusts the indexes.
pub(super) async fn analyze<C: ConnectionTrait>(db: &C, tables: &[&str]) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(&format!("ANALYZE {}", tables.join(", "))).await?;
    }
    Ok(())
}

/// `col = excluded.col, …` for an upsert's `DO UPDATE SET`.
pub(super) fn set_excluded(cols: &[&str]) -> String {
    cols.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ")
}
