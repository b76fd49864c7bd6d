//! The `roster_import` rows: created `running` before the work starts (in its own short
//! transaction, so staff can see an import in progress), finished `succeeded` inside the
//! import's transaction, or `rejected` after its rollback. Plus the reads behind the GraphQL
//! `rosterImports` query.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::issues::{Issue, insert_one};
use super::sql::{exec, query};
use super::types::{Counts, FileOutcome, ImportOptions, ImportStatus, ImportSummary, LinkCounts, RosterFormat};
use crate::db::{begin_write, now_us_sql};
use crate::error::Error;

fn files_json(files: &[FileOutcome]) -> Result<String, DbErr> {
    serde_json::to_string(files).map_err(|e| DbErr::Custom(format!("import files: {e}")))
}

fn count(n: u64) -> Value {
    i64::try_from(n).unwrap_or(i64::MAX).into()
}

/// Creates the `running` row and returns its id.
pub(super) async fn create(
    db: &DatabaseConnection,
    funder_id: Uuid,
    format: RosterFormat,
    names: &[String],
    options: &ImportOptions,
) -> Result<Uuid, DbErr> {
    let id = Uuid::now_v7();
    let files: Vec<FileOutcome> =
        names.iter().map(|n| FileOutcome { name: n.clone(), ..FileOutcome::default() }).collect();
    let sql = format!(
        "INSERT INTO roster_import (id, funder_id, format, files, status, full_snapshot, author, started_at_us) \
         VALUES ($1, $2, $3, $4, 'running', $5, $6, {})",
        now_us_sql(db.get_database_backend())
    );
    let values = vec![
        id.into(),
        funder_id.into(),
        format.as_str().into(),
        files_json(&files)?.into(),
        options.full_snapshot.into(),
        options.author.clone().into(),
    ];
    let txn = begin_write(db).await?;
    exec(&txn, &sql, values).await?;
    txn.commit().await?;
    Ok(id)
}

/// The stored counters of guardians, schools and links (`m0007`): column `{group}_{field}`.
/// Schools never leave nor are refused: those two are not stored for them.
const DETAILS: [(&str, &[&str]); 3] = [
    ("guardians", &["created", "updated", "unchanged", "left", "rejected"]),
    ("schools", &["created", "updated", "unchanged"]),
    ("links", &["created", "updated", "ended", "one_sided"]),
];

/// The columns of [`DETAILS`], in order.
fn detail_columns() -> Vec<String> {
    DETAILS.iter().flat_map(|(group, fields)| fields.iter().map(move |f| format!("{group}_{f}"))).collect()
}

/// The values of [`detail_columns`], in the same order.
fn detail_counts(g: &Counts, s: &Counts, l: &LinkCounts) -> [u64; 12] {
    [
        g.created,
        g.updated,
        g.unchanged,
        g.left,
        g.rejected,
        s.created,
        s.updated,
        s.unchanged,
        l.created,
        l.updated,
        l.ended,
        l.one_sided,
    ]
}

/// Records the outcome of an import on its row (inside the import's transaction on success,
/// in a new one after a rejection).
pub(super) async fn record<C: ConnectionTrait>(db: &C, s: &ImportSummary) -> Result<(), DbErr> {
    let columns = detail_columns();
    let details: Vec<String> = columns.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 10)).collect();
    let sql = format!(
        "UPDATE roster_import SET status = $1, created = $2, updated = $3, unchanged = $4, \"left\" = $5, \
         rejected = $6, warnings = $7, files = $8, error = $9, {}, finished_at_us = {} WHERE id = ${}",
        details.join(", "),
        now_us_sql(db.get_database_backend()),
        columns.len() + 10
    );
    let mut values = vec![
        s.status.as_str().into(),
        count(s.created),
        count(s.updated),
        count(s.unchanged),
        count(s.left),
        count(s.rejected),
        count(s.warnings),
        files_json(&s.files)?.into(),
        s.error.clone().into(),
    ];
    values.extend(detail_counts(&s.guardians, &s.schools, &s.links).map(count));
    values.push(s.import_id.into());
    exec(db, &sql, values).await?;
    Ok(())
}

/// Marks an import rejected (after its transaction was rolled back) with the issue saying why.
pub(super) async fn reject(db: &DatabaseConnection, s: &ImportSummary, issue: Option<Issue>) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    record(&txn, s).await?;
    if let Some(issue) = issue {
        insert_one(&txn, s.import_id, issue).await?;
    }
    txn.commit().await
}

/// One import, as listed to staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterImportRow {
    pub id: Uuid,
    pub funder_id: Uuid,
    pub format: RosterFormat,
    pub status: ImportStatus,
    pub full_snapshot: bool,
    pub files: Vec<FileOutcome>,
    /// Pupil counts.
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub left: u64,
    pub rejected: u64,
    pub warnings: u64,
    /// Guardian counts (`left`: marked left by this import).
    pub guardians: Counts,
    /// School counts (`left` and `rejected` are always 0: schools are kept as they are).
    pub schools: Counts,
    pub links: LinkCounts,
    pub error: Option<String>,
    pub author: String,
    pub started_at_us: i64,
    pub finished_at_us: Option<i64>,
}

fn u(r: &QueryResult, col: &str) -> Result<u64, DbErr> {
    let v: i64 = r.try_get("", col)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

/// The [`DETAILS`] counts of a group; a field not stored for it reads as 0.
fn stored_counts(r: &QueryResult, group: &str) -> Result<Counts, DbErr> {
    let stored = DETAILS.iter().find(|(g, _)| *g == group).map_or(&[][..], |(_, fields)| *fields);
    let n = |field: &str| if stored.contains(&field) { u(r, &format!("{group}_{field}")) } else { Ok(0) };
    Ok(Counts {
        created: n("created")?,
        updated: n("updated")?,
        unchanged: n("unchanged")?,
        left: n("left")?,
        rejected: n("rejected")?,
    })
}

fn import_row(r: &QueryResult) -> Result<RosterImportRow, DbErr> {
    let format: String = r.try_get("", "format")?;
    let status: String = r.try_get("", "status")?;
    let files: String = r.try_get("", "files")?;
    Ok(RosterImportRow {
        id: r.try_get("", "id")?,
        funder_id: r.try_get("", "funder_id")?,
        format: format.parse().map_err(|_| DbErr::Custom(format!("unknown import format {format:?}")))?,
        status: ImportStatus::parse(&status),
        full_snapshot: r.try_get("", "full_snapshot")?,
        // Rows written by this code always parse; an unreadable list shows as empty, not as a failure.
        files: serde_json::from_str(&files).unwrap_or_default(),
        created: u(r, "created")?,
        updated: u(r, "updated")?,
        unchanged: u(r, "unchanged")?,
        left: u(r, "left")?,
        rejected: u(r, "rejected")?,
        warnings: u(r, "warnings")?,
        guardians: stored_counts(r, "guardians")?,
        schools: stored_counts(r, "schools")?,
        links: LinkCounts {
            created: u(r, "links_created")?,
            updated: u(r, "links_updated")?,
            ended: u(r, "links_ended")?,
            one_sided: u(r, "links_one_sided")?,
        },
        error: r.try_get("", "error")?,
        author: r.try_get("", "author")?,
        started_at_us: r.try_get("", "started_at_us")?,
        finished_at_us: r.try_get("", "finished_at_us")?,
    })
}

/// A funder's imports, newest first, `limit` at a time (capped at 100); `before` is the
/// `(started_at_us, id)` of the last row of the previous page (keyset pagination).
pub async fn list_imports(
    db: &DatabaseConnection,
    funder_id: Uuid,
    limit: u64,
    before: Option<(i64, Uuid)>,
) -> Result<Vec<RosterImportRow>, Error> {
    let limit = limit.clamp(1, 100);
    let mut sql = format!(
        "SELECT id, funder_id, format, status, full_snapshot, files, created, updated, unchanged, \
         \"left\", rejected, warnings, {}, error, author, started_at_us, finished_at_us \
         FROM roster_import WHERE funder_id = $1",
        detail_columns().join(", ")
    );
    let mut values: Vec<Value> = vec![funder_id.into()];
    if let Some((at, id)) = before {
        sql.push_str(" AND (started_at_us < $2 OR (started_at_us = $2 AND id < $3))");
        values.extend([at.into(), id.into()]);
    }
    sql.push_str(&format!(" ORDER BY started_at_us DESC, id DESC LIMIT {limit}"));
    let rows = query(db, &sql, values).await?;
    Ok(rows.iter().map(import_row).collect::<Result<_, _>>()?)
}

/// One stored warning of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportIssueRow {
    pub file: String,
    pub line: u64,
    pub column: u64,
    /// The record's id in the file (jointure, ELEVE_ID…), without our source prefix.
    pub record_key: Option<String>,
    pub code: String,
    pub message: String,
}

/// The first `limit` (capped at 1,000) stored issues of an import, in the order they were met.
pub async fn import_issues(db: &DatabaseConnection, import_id: Uuid, limit: u64) -> Result<Vec<ImportIssueRow>, Error> {
    let limit = limit.clamp(1, 1000);
    let sql = format!(
        "SELECT file, line, col, record_key, code, message FROM roster_import_issue \
         WHERE import_id = $1 ORDER BY id LIMIT {limit}"
    );
    let rows = query(db, &sql, vec![import_id.into()]).await?;
    let issue = |r: &QueryResult| -> Result<ImportIssueRow, DbErr> {
        Ok(ImportIssueRow {
            file: r.try_get("", "file")?,
            line: u(r, "line")?,
            column: u(r, "col")?,
            record_key: r.try_get("", "record_key")?,
            code: r.try_get("", "code")?,
            message: r.try_get("", "message")?,
        })
    };
    Ok(rows.iter().map(issue).collect::<Result<_, _>>()?)
}

/// The funder with this code, created if missing; idempotent (see `funder::ensure_funder_by_code`).
pub async fn ensure_funder(db: &DatabaseConnection, code: &str, name: &str, departement: &str) -> Result<Uuid, Error> {
    Ok(crate::funder::ensure_funder_by_code(db, code, name, departement).await?.id)
}
