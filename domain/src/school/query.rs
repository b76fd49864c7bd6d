//! Reading the roster for staff: pupils with their eligibility, keyset-paginated by id.

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::db::stmt;
use crate::error::{Error, Result};
use crate::ids::GradeLevel;
use crate::spending::{PASS_COLUMNS_AS_PASS, Pass};

/// Staff search filters (all optional, combined with AND).
#[derive(Clone, Debug, Default)]
pub struct PupilFilter {
    pub funder_id: Option<Uuid>,
    /// Part of the family, usage or given name, or the INE (case-insensitive).
    pub text: Option<String>,
    pub uai: Option<String>,
    pub grade: Option<GradeLevel>,
    /// With `campaign_id`: only pupils whose decision is (not) eligible.
    pub eligible: Option<bool>,
    pub campaign_id: Option<Uuid>,
}

/// A pupil as staff see it (the columns of [`PUPIL_COLUMNS`]; an unknown stored grade is a read
/// error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct PupilRow {
    pub id: Uuid,
    pub funder_id: Uuid,
    pub ine: Option<String>,
    pub family_name: String,
    pub usage_name: Option<String>,
    pub given_name: String,
    pub birth_date: Option<NaiveDate>,
    pub uai: Option<String>,
    pub class_name: Option<String>,
    pub grade: Option<GradeLevel>,
    /// The label of the pupil's MEF (`5EME`), when a roster gave one for its code.
    pub mef_label: Option<String>,
    pub boursier: Option<bool>,
    pub left_at: Option<NaiveDate>,
}

/// The pupils with these ids (a parent's linked children), in the order given.
/// One statement whatever their number (the parent app's home query).
pub async fn list_pupils_by_ids<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<Vec<PupilRow>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let backend = db.get_database_backend();
    let (list, values) = crate::db::in_ids(backend, "p.id", 1, ids);
    let sql = format!("SELECT {PUPIL_COLUMNS} FROM pupil p WHERE {list}");
    let mut rows = PupilRow::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
    rows.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    Ok(rows)
}

/// A parent's linked child, its collège (when the roster knows it) and its passes, newest
/// campaign first.
#[derive(Clone, Debug)]
pub struct LinkedChild {
    pub pupil: PupilRow,
    pub school: Option<SchoolInfo>,
    pub passes: Vec<Pass>,
}

/// What a child's row adds to its pupil: the parent it is linked to and its collège.
#[derive(FromQueryResult)]
struct LinkColumns {
    link_account_id: Uuid,
    school_uai: Option<String>,
    school_name: Option<String>,
    school_commune: Option<String>,
}

/// The children of these parents' live links, oldest link first, each with its collège and its
/// passes, as pairs of (account, child): the home screen's first two levels in one statement
/// (one row per pass, or one without a pass). The home screens of every parent asking at that
/// moment share it (a DataLoader). Reading the passes here rather than by pupil afterwards
/// spares every home screen one batch: a statement, a pooled connection and the batch's wait.
pub async fn linked_children_of<C: ConnectionTrait>(db: &C, accounts: &[Uuid]) -> Result<Vec<(Uuid, LinkedChild)>> {
    if accounts.is_empty() {
        return Ok(vec![]);
    }
    let backend = db.get_database_backend();
    let (list, values) = crate::db::in_ids(backend, "l.account_id", 1, accounts);
    // On PostgreSQL the passes are read child by child through the index (a LATERAL join that
    // `OFFSET 0` keeps from being flattened): as a flat join, the generic plan hashed the whole
    // pass table at every call. SQLite walks an index per child anyway.
    let passes = format!("SELECT {PASS_COLUMNS_AS_PASS} FROM pass ps JOIN campaign pc ON pc.id = ps.campaign_id");
    let passes = match backend {
        DbBackend::Postgres => format!("LEFT JOIN LATERAL ({passes} WHERE ps.pupil_id = p.id OFFSET 0) ps ON TRUE"),
        _ => format!("LEFT JOIN ({passes}) ps ON ps.pass_pupil_id = p.id"),
    };
    let sql = format!(
        "SELECT {PUPIL_COLUMNS}, l.account_id AS link_account_id, s.uai AS school_uai, s.name AS school_name, \
         s.city AS school_commune, ps.* FROM family_link l JOIN pupil p ON p.id = l.pupil_id \
         LEFT JOIN school s ON s.funder_id = p.funder_id AND s.uai = p.uai {passes} \
         WHERE {list} AND l.revoked_at_us IS NULL \
         ORDER BY l.created_at_us, l.pupil_id, l.account_id, ps.pass_school_year DESC, ps.pass_created_at_us DESC"
    );
    let rows = db.query_all_raw(stmt(backend, &sql, values)).await?;
    let mut children: Vec<(Uuid, LinkedChild)> = Vec::with_capacity(rows.len());
    for row in rows {
        let s = LinkColumns::from_query_result(&row, "")?;
        let pupil = PupilRow::from_query_result(&row, "")?;
        // A pass is there when its id is: its other columns are then read as strictly as ever.
        let pass = match row.try_get::<Option<Uuid>>("", "pass_id")? {
            Some(_) => Some(Pass::from_query_result(&row, "pass_")?),
            None => None,
        };
        // The rows of one link are adjacent (ordered by link, then pass).
        match children.last_mut() {
            Some((account, child)) if *account == s.link_account_id && child.pupil.id == pupil.id => {
                child.passes.extend(pass);
            }
            _ => {
                let school = match (s.school_uai, s.school_name) {
                    (Some(uai), Some(name)) => Some(SchoolInfo { uai, name, commune: s.school_commune }),
                    _ => None,
                };
                let passes = pass.into_iter().collect();
                children.push((s.link_account_id, LinkedChild { pupil, school, passes }));
            }
        }
    }
    Ok(children)
}

const PUPIL_COLUMNS: &str = "p.id, p.funder_id, p.ine, p.family_name, p.usage_name, p.given_name, p.birth_date, p.uai, \
                             p.class_name, p.grade, p.mef_label, p.boursier, p.left_at";

/// Up to `limit` pupils after `after` (by id), matching `filter`.
pub async fn list_pupils<C: ConnectionTrait>(
    db: &C,
    filter: &PupilFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<PupilRow>> {
    if filter.eligible.is_some() && filter.campaign_id.is_none() {
        return Err(Error::bad_input("filter.eligible", "needs filter.campaignId"));
    }
    let mut q = Binds::default();
    let mut conds = vec![format!("p.id > {}", q.bind(after.unwrap_or_else(Uuid::nil).into()))];
    let mut join = String::new();
    if let Some(c) = filter.campaign_id {
        join = format!("JOIN eligibility e ON e.pupil_id = p.id AND e.campaign_id = {}", q.bind(c.into()));
        if let Some(eligible) = filter.eligible {
            conds.push(format!("e.eligible = {}", q.bind(eligible.into())));
        }
    }
    if let Some(f) = filter.funder_id {
        conds.push(format!("p.funder_id = {}", q.bind(f.into())));
    }
    if let Some(t) = filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let p = q.bind(format!("%{}%", t.to_lowercase().replace(['%', '_'], "")).into());
        conds.push(format!(
            "(LOWER(p.family_name) LIKE {p} OR LOWER(p.given_name) LIKE {p} \
             OR LOWER(COALESCE(p.usage_name, '')) LIKE {p} OR LOWER(COALESCE(p.ine, '')) LIKE {p})"
        ));
    }
    if let Some(u) = &filter.uai {
        conds.push(format!("p.uai = {}", q.bind(u.trim().to_ascii_uppercase().into())));
    }
    if let Some(g) = filter.grade {
        conds.push(format!("p.grade = {}", q.bind(g.into())));
    }
    let values = q.values;
    let sql = format!(
        "SELECT {PUPIL_COLUMNS} FROM pupil p {join} WHERE {} ORDER BY p.id LIMIT {}",
        conds.join(" AND "),
        limit.min(1000)
    );
    Ok(PupilRow::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?)
}

/// Numbered placeholders for a query built piece by piece.
#[derive(Default)]
struct Binds {
    values: Vec<Value>,
}

impl Binds {
    fn bind(&mut self, v: Value) -> String {
        self.values.push(v);
        format!("${}", self.values.len())
    }
}

/// A collège as the parent app shows it.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct SchoolInfo {
    pub uai: String,
    pub name: String,
    pub commune: Option<String>,
}

/// The schools of these UAIs in a funder's roster (one statement).
pub async fn schools_by_uai<C: ConnectionTrait>(db: &C, funder: Uuid, uais: &[String]) -> Result<Vec<SchoolInfo>> {
    if uais.is_empty() {
        return Ok(vec![]);
    }
    let list = crate::db::params(2, uais.len());
    let sql = format!("SELECT uai, name, city AS commune FROM school WHERE funder_id = $1 AND uai IN ({list})");
    let mut values: Vec<sea_orm::Value> = vec![funder.into()];
    values.extend(uais.iter().map(|u| u.clone().into()));
    Ok(SchoolInfo::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?)
}
