//! `pupils` (and, with the importer, `importRoster` and `rosterImports`).

use std::path::PathBuf;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use passerelle_domain::school::query::{PupilFilter, PupilRow, list_pupils};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::campaign::GqlGrade;
use crate::access::{ANY_STAFF, ROSTER_IMPORTERS, StaffOnly, require_staff, require_staff_reauthenticated};
use crate::error::ApiResult;
use crate::pagination::{cursor, page};
use crate::parse_id;
use passerelle_domain::Error;
use passerelle_domain::school::import;
use passerelle_domain::usecase::import_and_recompute;

/// Where uploaded files wait to be imported (`POST /uploads` writes them).
#[derive(Clone, Debug)]
pub struct Uploads {
    pub dir: PathBuf,
}

impl Uploads {
    /// An upload's file, under its uploader's account: another account's `importRoster`
    /// looks in its own folder and cannot reach it, whatever id it sends.
    pub fn path(&self, uploader: Uuid, id: Uuid) -> PathBuf {
        self.dir.join(uploader.to_string()).join(id.to_string())
    }
}

#[derive(InputObject, Default)]
pub struct PupilFilterInput {
    pub funder_id: Option<ID>,
    pub text: Option<String>,
    pub uai: Option<String>,
    pub grade_level: Option<GqlGrade>,
    pub eligible: Option<bool>,
    pub campaign_id: Option<ID>,
}

/// A pupil as staff see it.
#[derive(SimpleObject)]
pub struct Pupil {
    pub id: ID,
    pub ine: Option<String>,
    pub family_name: String,
    pub usage_name: Option<String>,
    pub given_name: String,
    pub birth_date: Option<NaiveDate>,
    pub uai: Option<String>,
    pub class_name: Option<String>,
    pub grade_level: Option<GqlGrade>,
    /// The label of the pupil's MEF code as the roster gives it (`5EME`, `6EME BILANGUE…`):
    /// AAF per pupil, SIECLE through its nomenclature file; null when no roster gave one.
    pub mef_label: Option<String>,
    pub boursier: Option<bool>,
    pub left_at: Option<NaiveDate>,
}

impl From<PupilRow> for Pupil {
    fn from(p: PupilRow) -> Self {
        Pupil {
            id: ID(p.id.to_string()),
            ine: p.ine,
            family_name: p.family_name,
            usage_name: p.usage_name,
            given_name: p.given_name,
            birth_date: p.birth_date,
            uai: p.uai,
            class_name: p.class_name,
            grade_level: p.grade.map(Into::into),
            mef_label: p.mef_label,
            boursier: p.boursier,
            left_at: p.left_at,
        }
    }
}

#[derive(Default)]
pub struct RosterQuery;

#[Object]
impl RosterQuery {
    /// Staff search over the roster.
    #[graphql(guard = "StaffOnly", complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn pupils(
        &self,
        ctx: &Context<'_>,
        filter: Option<PupilFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Pupil, EmptyFields, EmptyFields>> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let (limit, after) = page(first, after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = PupilFilter {
            funder_id: scoped_funder(ctx, f.funder_id.as_ref())?,
            text: f.text,
            uai: f.uai,
            grade: f.grade_level.map(Into::into),
            eligible: f.eligible,
            campaign_id: f.campaign_id.as_ref().map(|i| parse_id(i, "filter.campaignId")).transpose()?,
        };
        let mut rows = list_pupils(db, &filter, after, limit + 1).await?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(rows.into_iter().map(|p| Edge::new(cursor(p.id), Pupil::from(p))));
        Ok(conn)
    }
}

#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "passerelle_domain::school::import::RosterFormat")]
pub enum RosterFormatGql {
    Aaf,
    Siecle,
    Csv,
}

#[derive(InputObject)]
pub struct ImportRosterInput {
    pub funder_id: ID,
    pub format: RosterFormatGql,
    /// Files sent to `POST /uploads`.
    pub upload_ids: Vec<ID>,
    /// The files are the whole roster of their scope (default): absent pupils are marked left.
    #[graphql(default = true)]
    pub full_snapshot: bool,
}

#[derive(SimpleObject)]
pub struct ImportedFile {
    pub name: String,
    pub records: u64,
    pub warnings: u64,
    pub error: Option<String>,
}

#[derive(SimpleObject)]
pub struct ImportIssue {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub record_key: Option<String>,
    pub code: String,
    pub message: String,
}

/// What an import did to guardians (and contacts).
#[derive(SimpleObject)]
pub struct GuardianImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Marked left: missing from a full snapshot of their scope, or deleted by an AAF delta.
    pub left: u64,
    /// Records refused (no name at all, a patch of an unknown person).
    pub rejected: u64,
}

/// What an import did to schools (never marked left: pupils point at them).
#[derive(SimpleObject)]
pub struct SchoolImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What an import did to pupil–guardian links.
#[derive(SimpleObject)]
pub struct LinkImportCounts {
    pub created: u64,
    pub updated: u64,
    /// Links removed: no longer stated by the roster, or to a guardian who left.
    pub ended: u64,
    /// Links only the guardian's record states (kept without parental authority; warnings).
    pub one_sided: u64,
}

fn detail_counts(
    g: import::Counts,
    s: import::Counts,
    l: import::LinkCounts,
) -> (GuardianImportCounts, SchoolImportCounts, LinkImportCounts) {
    (
        GuardianImportCounts {
            created: g.created,
            updated: g.updated,
            unchanged: g.unchanged,
            left: g.left,
            rejected: g.rejected,
        },
        SchoolImportCounts { created: s.created, updated: s.updated, unchanged: s.unchanged },
        LinkImportCounts { created: l.created, updated: l.updated, ended: l.ended, one_sided: l.one_sided },
    )
}

/// Where a roster import stands.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ImportStatus", remote = "passerelle_domain::school::import::ImportStatus")]
pub enum GqlImportStatus {
    /// Started, not finished (or the process died: nothing of it was kept).
    Running,
    /// Committed.
    Succeeded,
    /// A file was malformed: nothing of the import was kept (`error` says why).
    Rejected,
}

/// One roster import: what it counted and, if rejected, why. The top-level counts are pupils.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct RosterImport {
    pub id: ID,
    pub status: GqlImportStatus,
    pub full_snapshot: bool,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub left: u64,
    pub rejected: u64,
    pub warnings: u64,
    pub guardians: GuardianImportCounts,
    pub schools: SchoolImportCounts,
    pub links: LinkImportCounts,
    pub error: Option<String>,
    pub files: Vec<ImportedFile>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[async_graphql::ComplexObject]
impl RosterImport {
    /// The stored warnings (the first 10,000 of an import), in file order.
    async fn issues(&self, ctx: &Context<'_>, #[graphql(default = 50)] first: u64) -> ApiResult<Vec<ImportIssue>> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let id = parse_id(&self.id, "id")?;
        Ok(import::import_issues(db, id, first.min(1000))
            .await?
            .into_iter()
            .map(|i| ImportIssue {
                file: i.file,
                line: i.line,
                column: i.column,
                record_key: i.record_key,
                code: i.code,
                message: i.message,
            })
            .collect())
    }
}

fn files(list: Vec<import::FileOutcome>) -> Vec<ImportedFile> {
    list.into_iter()
        .map(|f| ImportedFile {
            name: f.name,
            records: f.records,
            warnings: f.warnings,
            error: f.error.map(|e| e.to_string()),
        })
        .collect()
}

impl From<import::ImportSummary> for RosterImport {
    fn from(s: import::ImportSummary) -> Self {
        let (guardians, schools, links) = detail_counts(s.guardians, s.schools, s.links);
        RosterImport {
            id: ID(s.import_id.to_string()),
            status: s.status.into(),
            full_snapshot: s.full_snapshot,
            created: s.created,
            updated: s.updated,
            unchanged: s.unchanged,
            left: s.left,
            rejected: s.rejected,
            warnings: s.warnings,
            guardians,
            schools,
            links,
            error: s.error,
            files: files(s.files),
            started_at: None,
        }
    }
}

impl From<import::RosterImportRow> for RosterImport {
    fn from(r: import::RosterImportRow) -> Self {
        let (guardians, schools, links) = detail_counts(r.guardians, r.schools, r.links);
        RosterImport {
            id: ID(r.id.to_string()),
            status: r.status.into(),
            full_snapshot: r.full_snapshot,
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            left: r.left,
            rejected: r.rejected,
            warnings: r.warnings,
            guardians,
            schools,
            links,
            error: r.error,
            files: files(r.files),
            started_at: chrono::DateTime::from_timestamp_micros(r.started_at_us),
        }
    }
}

#[derive(Default)]
pub struct RosterMutation;

#[Object]
impl RosterMutation {
    /// Imports uploaded roster files for a funder, then recomputes eligibility. A malformed
    /// file rejects the whole import (status REJECTED, `error` says file, line and column).
    #[graphql(guard = "StaffOnly")]
    async fn import_roster(&self, ctx: &Context<'_>, input: ImportRosterInput) -> ApiResult<RosterImport> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let funder = parse_id(&input.funder_id, "funderId")?;
        require_staff_reauthenticated(ctx, funder, ROSTER_IMPORTERS).await?;
        // Files are bound to their uploader; the development back office has none.
        let uploader = crate::access::caller(ctx).map_or(Uuid::nil(), |p| p.account.id);
        let uploads = ctx.data::<Uploads>().map_err(|_| Error::internal(std::io::Error::other("no upload store")))?;
        if input.upload_ids.is_empty() || input.upload_ids.len() > 50 {
            return Err(Error::bad_input("uploadIds", "1 to 50 uploads").into());
        }
        let mut list = Vec::with_capacity(input.upload_ids.len());
        for id in &input.upload_ids {
            let id = parse_id(id, "uploadIds")?;
            let path = uploads.path(uploader, id);
            if !path.is_file() {
                return Err(Error::NotFound("upload").into());
            }
            list.push(import::ImportFile { name: format!("upload-{id}"), path });
        }
        let format = input.format.into();
        let author = crate::access::actor(ctx).label;
        let options = import::ImportOptions { full_snapshot: input.full_snapshot, author };
        let summary = import_and_recompute(db, funder, format, &list, &options, &|_| {}).await?;
        Ok(summary.into())
    }
}

#[derive(Default)]
pub struct ImportsQuery;

#[Object]
impl ImportsQuery {
    /// A funder's roster imports, newest first.
    #[graphql(guard = "StaffOnly", complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn roster_imports(
        &self,
        ctx: &Context<'_>,
        funder_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, RosterImport, EmptyFields, EmptyFields>> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let funder = parse_id(&funder_id, "funderId")?;
        require_staff(ctx, funder, ANY_STAFF)?;
        let (limit, _) = page(first, None)?;
        let before = after.as_deref().map(crate::pagination::decode_time_cursor).transpose()?;
        let mut rows = import::list_imports(db, funder, limit + 1, before).await?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let mut conn = Connection::new(before.is_some(), has_next);
        conn.edges.extend(rows.into_iter().map(|r| {
            let c = crate::pagination::time_cursor(r.started_at_us, r.id);
            Edge::new(c, RosterImport::from(r))
        }));
        Ok(conn)
    }
}

/// The funder whose pupils a caller may list: the one asked for (if the caller is staff of
/// it), else the caller's only funder. Development mode without a caller sees everything.
fn scoped_funder(ctx: &Context<'_>, asked: Option<&ID>) -> ApiResult<Option<uuid::Uuid>> {
    let asked = asked.map(|i| parse_id(i, "filter.funderId")).transpose()?;
    let Some(p) = crate::access::caller(ctx) else {
        return match asked {
            Some(f) => require_staff(ctx, f, ANY_STAFF).map(|_| Some(f)),
            None => require_staff(ctx, uuid::Uuid::nil(), ANY_STAFF).map(|_| None),
        };
    };
    let funder = match asked {
        Some(f) => f,
        None => {
            let mut funders: Vec<uuid::Uuid> = p.staff_roles.iter().map(|(f, _)| *f).collect();
            funders.dedup();
            match funders.as_slice() {
                [only] => *only,
                _ => return Err(passerelle_domain::Error::bad_input("filter.funderId", "required").into()),
            }
        }
    };
    require_staff(ctx, funder, ANY_STAFF)?;
    Ok(Some(funder))
}
