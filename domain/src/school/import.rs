//! Importing school rosters (AAF, SIECLE BEE, département CSV) into the database.
//!
//! [`import_roster`] reads the files of one import with the streaming parsers of
//! [`parse`](super::parse) and upserts schools, pupils, guardians and their links for one funder.
//!
//! **All or nothing: one transaction per import.** A malformed file (bad XML, truncated, a
//! missing CSV column) rejects the whole import, and nothing of it is kept — not even the files
//! before it. The alternatives were a transaction per file, which leaves half an import behind
//! (pupils committed, their guardians' file rejected), or a validating parse of every file
//! before a second, writing parse, which doubles the parse time of sets that run to hundreds of
//! MB. One transaction also gives the end-of-import steps (UAIs of AAF pupils, snapshot leavers,
//! one-sided links) a consistent view of everything the import wrote. The cost: on SQLite the
//! write lock is held for the whole import (other writers wait, up to the busy timeout), so
//! large imports belong to quiet hours there; on PostgreSQL only the touched rows (and the
//! funder row, which serialises imports of one funder) are locked. The `roster_import` row is
//! written `running` first in its own transaction, so a running import is visible, and marked
//! `rejected` after a rollback.
//!
//! **Streaming, then set-based.** Each file is parsed on a blocking thread (`reader`) feeding
//! a bounded channel. Records wait in memory a batch at a time (`stage`: where SIECLE's later
//! sections patch the records of the same file), are then *staged* into temporary tables
//! (`staging`; 2,000 rows per statement on PostgreSQL, 500 on SQLite — `sql`), and *merged*
//! into the real tables at the end of each file (`merge`): one join counts created / updated /
//! unchanged / left, one statement inserts the new keys, one updates the rows whose
//! fingerprint (`rows`) changed. Links are merged once, at the end, from both sides (`links`).
//! No per-record lookups, no row written twice, nothing written for unchanged data; and
//! nothing grows in memory with the files: the staged keys (the set of records seen, which
//! finds snapshot leavers) live in the database.
//!
//! **Semantics.**
//! - Re-importing the same data changes nothing: every pupil is `unchanged` and no
//!   `updated_at_us` moves.
//! - A full snapshot marks `left_at` (never deletes) on the pupils and guardians of its scope
//!   it did not see, and ends the links of its pupils it no longer states (`snapshot`); a
//!   person seen again gets `left_at` cleared (counted updated). A leaving date in the past
//!   (SIECLE `DATE_SORTIE`, AAF `ENTEleveDateSortieStructRattach`) and an AAF `deleteRequest`
//!   also mark a pupil left; `deleteRequest` of a guardian marks the guardian.
//! - A guardian who left has no current link: their links end (are deleted, as AAF link
//!   removals always were), so no family-link code reaches a former guardian.
//! - MEF labels are kept per code and copied onto the pupils (`mefs`).
//! - `modifyRequest` rebuilds the stored pupil (guardian, structure) from its row, applies the
//!   patch with the parser's own mapping, and saves it if its fingerprint changed.
//! - Links are reconciled from both AAF sides (`links`); see there for `stated_by`.
//! - The counts of pupils, guardians, schools and links are stored on the `roster_import` row.
//! - Bad values are warnings (`roster_import_issue`, first 10,000 stored, all counted); a pupil
//!   without a family or given name is refused (`rejected`) and the import goes on.

mod guardians;
mod history;
mod issues;
mod links;
mod mefs;
mod merge;
mod pupils;
mod reader;
mod rows;
mod run;
mod schools;
mod snapshot;
mod sql;
mod stage;
mod staging;
mod types;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use uuid::Uuid;

pub use history::{ImportIssueRow, RosterImportRow, ensure_funder, import_issues, list_imports};
pub use types::{
    Counts, FileOutcome, ImportFile, ImportOptions, ImportStatus, ImportSummary, LinkCounts, Progress, RosterFormat,
};

use crate::db::{begin_write, plan_each_statement};
use crate::error::Error;
use crate::school::parse::ParseError;
use issues::Issue;
use reader::Chunk;
use stage::Ctx;

/// Imports `files` (all of `format`) for a funder. See the module documentation for what is
/// written. `progress` is called as each file is read.
///
/// Returns `Ok` with status `succeeded`, or with status `rejected` when a file is malformed
/// (the summary names the file, line and column, and nothing was kept; `into_result` turns it
/// into a `BAD_USER_INPUT`). `Err` is for what happens before the import starts (no files, an
/// unreadable file, an unknown funder) and for database failures (then rolled back too).
pub async fn import_roster(
    db: &DatabaseConnection,
    funder_id: Uuid,
    format: RosterFormat,
    files: &[ImportFile],
    options: &ImportOptions,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<ImportSummary, Error> {
    if files.is_empty() {
        return Err(Error::bad_input("files", "no file to import"));
    }
    for f in files {
        reader::check_readable(f)?;
    }
    let backend = db.get_database_backend();
    let exists =
        db.query_one_raw(crate::db::stmt(backend, "SELECT id FROM funder WHERE id = $1", [funder_id.into()])).await?;
    if exists.is_none() {
        return Err(Error::NotFound("funder"));
    }
    let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    let import_id = history::create(db, funder_id, format, &names, options).await?;
    let mut summary = ImportSummary::new(import_id, format, options.full_snapshot);
    summary.files = names.iter().map(|n| FileOutcome { name: n.clone(), ..FileOutcome::default() }).collect();

    match run(db, funder_id, files, &mut summary, progress).await {
        Ok(None) => Ok(summary),
        Ok(Some(e)) => {
            reset_counts(&mut summary);
            summary.status = ImportStatus::Rejected;
            summary.error = Some(e.to_string());
            let issue = Issue {
                file: e.file.clone(),
                line: e.line,
                column: e.column,
                record_key: None,
                code: "MALFORMED_FILE".to_owned(),
                message: e.message.clone(),
            };
            history::reject(db, &summary, Some(issue)).await?;
            Ok(summary)
        }
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), %import_id, "roster import failed");
            reset_counts(&mut summary);
            summary.status = ImportStatus::Rejected;
            summary.error = Some("internal error: the import was rolled back".to_owned());
            if let Err(e2) = history::reject(db, &summary, None).await {
                tracing::error!(error = %e2, %import_id, "could not mark the roster import rejected");
            }
            Err(e)
        }
    }
}

/// Nothing of a rejected import is kept: its counts say so.
fn reset_counts(s: &mut ImportSummary) {
    (s.created, s.updated, s.unchanged, s.left, s.rejected, s.warnings) = (0, 0, 0, 0, 0, 0);
    (s.guardians, s.schools, s.links) = Default::default();
}

/// The import's transaction. `Ok(Some(e))`: a file was malformed and everything was rolled back.
async fn run(
    db: &DatabaseConnection,
    funder_id: Uuid,
    files: &[ImportFile],
    summary: &mut ImportSummary,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Option<ParseError>, Error> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    if backend == DbBackend::Postgres {
        // Two imports of one funder would race on the same keys: the second waits here.
        let lock = "SELECT id FROM funder WHERE id = $1 FOR UPDATE";
        txn.query_one_raw(crate::db::stmt(backend, lock, [funder_id.into()])).await?;
        // The same statements (staging, merging) run many times while the tables grow.
        plan_each_statement(&txn).await?;
    }
    let now_us = crate::db::now_us(&txn).await?;
    let ctx = Ctx {
        funder_id,
        import_id: summary.import_id,
        format: summary.format,
        full_snapshot: summary.full_snapshot,
        now_us,
        today: paris_date(now_us),
    };
    let mut importer = run::Importer::new(&txn, ctx);
    importer.prepare().await?;
    for (i, file) in files.iter().enumerate() {
        importer.start_file(&file.name);
        let mut rd = reader::start(summary.format, file)?;
        let mut records = 0u64;
        loop {
            match rd.next().await {
                Some(Chunk::Items(items)) => {
                    for item in items {
                        records += u64::from(matches!(item, crate::school::parse::ParseItem::Record(_)));
                        importer.handle(item).await?;
                    }
                    progress(&Progress {
                        file: file.name.clone(),
                        records,
                        bytes_read: rd.bytes_read(),
                        bytes_total: rd.bytes_total,
                    });
                }
                Some(Chunk::End(stats)) => {
                    if let Some(f) = summary.files.get_mut(i) {
                        (f.records, f.warnings) = (stats.records, stats.warnings);
                    }
                    break;
                }
                Some(Chunk::Failed(e, stats)) => {
                    if let Some(f) = summary.files.get_mut(i) {
                        (f.records, f.warnings, f.error) = (stats.records, stats.warnings, Some(e.clone()));
                    }
                    drop(importer);
                    txn.rollback().await?;
                    return Ok(Some(e));
                }
                None => {
                    let e = std::io::Error::other(format!("{}: the parser stopped unexpectedly", file.name));
                    return Err(Error::internal(e));
                }
            }
        }
        importer.end_file().await?;
    }
    importer.finish(summary).await?;
    summary.status = ImportStatus::Succeeded;
    history::record(&txn, summary).await?;
    txn.commit().await?;
    Ok(None)
}

/// The date in Europe/Paris (school-year boundaries and leaving dates are French dates).
fn paris_date(now_us: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_micros(now_us)
        .unwrap_or_else(chrono::Utc::now)
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}
