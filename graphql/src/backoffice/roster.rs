//! `pupils` (and, with the importer, `importRoster` and `rosterImports`).

use std::path::PathBuf;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use passerelle_domain::school::query::{PupilFilter, PupilRow, list_pupils};
use sea_orm::DatabaseConnection;

use super::campaign::GqlGrade;
use crate::access::{ANY_STAFF, StaffOnly, require_staff};
use crate::error::ApiResult;
use crate::pagination::{cursor, page};
use crate::parse_id;

/// Where uploaded files wait to be imported (`POST /uploads` writes them).
#[derive(Clone, Debug)]
pub struct Uploads {
    pub dir: PathBuf,
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

#[derive(Default)]
pub struct RosterMutation;

#[Object]
impl RosterMutation {
    /// Placeholder removed when the importer lands.
    #[graphql(visible = false)]
    async fn _roster_noop(&self) -> bool {
        false
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
