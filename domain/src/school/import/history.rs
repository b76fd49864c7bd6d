//! The `roster_import` rows: created `running` before the work starts (in its own short
//! transaction, so staff can see an import in progress), finished `succeeded` inside the
//! import's transaction, or `rejected` after its rollback. Plus the reads behind the GraphQL
//! `rosterImports` query.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::issues::{Issue, insert_one};
use super::sql::{count, exec, query};
use super::types::{Counts, FileOutcome, ImportOptions, ImportStatus, ImportSummary, LinkCounts, RosterFormat};
use crate::db::{begin_write, now_us_sql};
use crate::error::Error;

fn files_json(files: &[FileOutcome]) -> Result<String, DbErr> {
    serde_json::to_string(files).map_err(|e| DbErr::Custom(format!("import files: {e}")))
}

fn bind_count(n: u64) -> Value {
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
        format.into(),
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
        s.status.into(),
        bind_count(s.created),
        bind_count(s.updated),
        bind_count(s.unchanged),
        bind_count(s.left),
        bind_count(s.rejected),
        bind_count(s.warnings),
        files_json(&s.files)?.into(),
        s.error.clone().into(),
    ];
    values.extend(detail_counts(&s.guardians, &s.schools, &s.links).map(bind_count));
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

/// `roster_import` as [`list_imports`] selects it: counts are `BIGINT`s, `files` a JSON list.
#[derive(FromQueryResult)]
struct ImportRow {
    id: Uuid,
    funder_id: Uuid,
    format: RosterFormat,
    status: ImportStatus,
    full_snapshot: bool,
    files: String,
    created: i64,
    updated: i64,
    unchanged: i64,
    left: i64,
    rejected: i64,
    warnings: i64,
    guardians_created: i64,
    guardians_updated: i64,
    guardians_unchanged: i64,
    guardians_left: i64,
    guardians_rejected: i64,
    schools_created: i64,
    schools_updated: i64,
    schools_unchanged: i64,
    links_created: i64,
    links_updated: i64,
    links_ended: i64,
    links_one_sided: i64,
    error: Option<String>,
    author: String,
    started_at_us: i64,
    finished_at_us: Option<i64>,
}

impl TryFrom<ImportRow> for RosterImportRow {
    type Error = DbErr;

    fn try_from(r: ImportRow) -> Result<RosterImportRow, DbErr> {
        let files =
            serde_json::from_str(&r.files).map_err(|e| DbErr::Type(format!("roster import {} files: {e}", r.id)))?;
        Ok(RosterImportRow {
            id: r.id,
            funder_id: r.funder_id,
            format: r.format,
            status: r.status,
            full_snapshot: r.full_snapshot,
            files,
            created: count(r.created)?,
            updated: count(r.updated)?,
            unchanged: count(r.unchanged)?,
            left: count(r.left)?,
            rejected: count(r.rejected)?,
            warnings: count(r.warnings)?,
            guardians: Counts {
                created: count(r.guardians_created)?,
                updated: count(r.guardians_updated)?,
                unchanged: count(r.guardians_unchanged)?,
                left: count(r.guardians_left)?,
                rejected: count(r.guardians_rejected)?,
            },
            // Schools never leave nor are refused: those two are not stored for them.
            schools: Counts {
                created: count(r.schools_created)?,
                updated: count(r.schools_updated)?,
                unchanged: count(r.schools_unchanged)?,
                left: 0,
                rejected: 0,
            },
            links: LinkCounts {
                created: count(r.links_created)?,
                updated: count(r.links_updated)?,
                ended: count(r.links_ended)?,
                one_sided: count(r.links_one_sided)?,
            },
            error: r.error,
            author: r.author,
            started_at_us: r.started_at_us,
            finished_at_us: r.finished_at_us,
        })
    }
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
    let rows: Vec<ImportRow> = query(db, &sql, values).await?;
    Ok(rows.into_iter().map(RosterImportRow::try_from).collect::<Result<_, _>>()?)
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
    #[derive(FromQueryResult)]
    struct IssueRow {
        file: String,
        line: i64,
        col: i64,
        record_key: Option<String>,
        code: String,
        message: String,
    }
    let rows: Vec<IssueRow> = query(db, &sql, vec![import_id.into()]).await?;
    let issue = |r: IssueRow| -> Result<ImportIssueRow, DbErr> {
        Ok(ImportIssueRow {
            file: r.file,
            line: count(r.line)?,
            column: count(r.col)?,
            record_key: r.record_key,
            code: r.code,
            message: r.message,
        })
    };
    Ok(rows.into_iter().map(issue).collect::<Result<_, _>>()?)
}

/// The funder with this code, created if missing; idempotent (see `funder::ensure_funder_by_code`).
pub async fn ensure_funder(db: &DatabaseConnection, code: &str, name: &str, departement: &str) -> Result<Uuid, Error> {
    Ok(crate::funder::ensure_funder_by_code(db, code, name, departement).await?.id)
}
