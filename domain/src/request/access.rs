//! Who reaches a request and its subject. A family reaches only its own requests and only its
//! linked children's pupils, passes and redemptions; staff reach their funder's. Anything
//! else is `NOT_FOUND`, never `FORBIDDEN`: no existence oracle for another family's objects.

use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

use super::model::{Request, Subject};
use super::rules::{Party, RequestKind};
use crate::auth::{Principal, StaffRole};
use crate::campaign::{Campaign, get_campaign};
use crate::db::stmt;
use crate::error::{Error, Result};
use crate::spending::{pass_by_id, pass_for_parent};

/// Staff who handle requests (acknowledge, ask, decide).
pub const HANDLERS: &[StaffRole] = &[StaffRole::Admin, StaffRole::EligibilityOfficer];
/// Staff who may read the queue and the figures (auditors too).
pub const READERS: &[StaffRole] = &[StaffRole::Admin, StaffRole::EligibilityOfficer, StaffRole::Auditor];

/// The caller of a request use case.
#[derive(Clone, Copy, Debug)]
pub enum RequestCaller<'a> {
    /// A parent in the app.
    Family { account: Uuid },
    /// A staff member deciding, or — `on_behalf` — acting for the family at the counter
    /// (answering, cancelling), recorded as such.
    Staff { principal: &'a Principal, on_behalf: bool },
}

impl RequestCaller<'_> {
    pub(super) fn party(&self) -> Party {
        match self {
            RequestCaller::Staff { on_behalf: false, .. } => Party::Staff,
            _ => Party::Family,
        }
    }

    pub(super) fn account(&self) -> Uuid {
        match self {
            RequestCaller::Family { account } => *account,
            RequestCaller::Staff { principal, .. } => principal.account.id,
        }
    }

    pub(super) fn at_counter(&self) -> bool {
        matches!(self, RequestCaller::Staff { .. })
    }

    /// May this caller see `request`? (The family: its own; staff: `roles` for its funder.)
    pub(super) fn reaches(&self, request: &Request, roles: &[StaffRole]) -> bool {
        match self {
            RequestCaller::Family { account } => request.requester_account_id == Some(*account),
            RequestCaller::Staff { principal, .. } => principal.has_role(request.funder_id, roles),
        }
    }

    /// Staff may handle `funder`'s requests; a family reaches `pupil` through a live link.
    async fn reaches_pupil<C: ConnectionTrait>(&self, db: &C, funder: Uuid, pupil: Uuid) -> Result<bool> {
        match self {
            RequestCaller::Family { account } => linked(db, *account, pupil).await,
            RequestCaller::Staff { principal, .. } => Ok(principal.has_role(funder, HANDLERS)),
        }
    }
}

/// Whether `account` is a parent linked to `pupil` now.
pub(super) async fn linked<C: ConnectionTrait>(db: &C, account: Uuid, pupil: Uuid) -> Result<bool> {
    #[derive(FromQueryResult)]
    struct Link {
        #[allow(dead_code)] // selected to make the row exist
        pupil_id: Uuid,
    }
    let sql = "SELECT pupil_id FROM family_link WHERE account_id = $1 AND pupil_id = $2 AND revoked_at_us IS NULL";
    let row =
        Link::find_by_statement(stmt(db.get_database_backend(), sql, [account.into(), pupil.into()])).one(db).await?;
    Ok(row.is_some())
}

/// A subject the caller may file a request about, with what the request records of it.
pub(super) struct Resolved {
    pub funder_id: Uuid,
    pub pupil_id: Uuid,
    pub campaign: Campaign,
    pub pass_id: Option<Uuid>,
    pub redemption_id: Option<Uuid>,
}

impl Resolved {
    /// One open request per kind and subject (`request.open_key`).
    pub fn open_key(&self, kind: RequestKind) -> String {
        let object = self.redemption_id.or(self.pass_id).unwrap_or(self.campaign.id);
        format!("{kind}:{}:{object}", self.pupil_id)
    }
}

#[derive(FromQueryResult)]
struct RedemptionRow {
    pass_id: Uuid,
}

#[derive(FromQueryResult)]
struct PupilRow {
    funder_id: Uuid,
}

/// Checks the subject `kind` needs and that the caller reaches it.
pub(super) async fn resolve<C: ConnectionTrait>(
    db: &C,
    caller: &RequestCaller<'_>,
    kind: RequestKind,
    subject: &Subject,
) -> Result<Resolved> {
    let backend = db.get_database_backend();
    let need = |field: &str, v: Option<Uuid>| v.ok_or_else(|| Error::bad_input(field, format!("required for {kind}")));
    match kind {
        RequestKind::PartnerAffiliation => Err(Error::bad_input("kind", "a partner applies with applyForAffiliation")),
        RequestKind::Enrolment | RequestKind::DataCorrection => {
            let pupil = need("subjectId", subject.pupil_id)?;
            let campaign = get_campaign(db, need("campaignId", subject.campaign_id)?).await?;
            let sql = "SELECT funder_id FROM pupil WHERE id = $1";
            let row = PupilRow::find_by_statement(stmt(backend, sql, [pupil.into()])).one(db).await?;
            let Some(row) = row.filter(|r| r.funder_id == campaign.funder_id) else {
                return Err(Error::NotFound("child"));
            };
            if !caller.reaches_pupil(db, row.funder_id, pupil).await? {
                return Err(Error::NotFound("child"));
            }
            Ok(Resolved { funder_id: row.funder_id, pupil_id: pupil, campaign, pass_id: None, redemption_id: None })
        }
        RequestKind::BoursierBonus | RequestKind::LostCard | RequestKind::RedemptionDispute => {
            let (pass_id, redemption_id) = if kind == RequestKind::RedemptionDispute {
                let redemption = need("subjectId", subject.redemption_id)?;
                let sql = "SELECT pass_id FROM redemption WHERE id = $1";
                let row = RedemptionRow::find_by_statement(stmt(backend, sql, [redemption.into()])).one(db).await?;
                (row.ok_or(Error::NotFound("redemption"))?.pass_id, Some(redemption))
            } else {
                (need("subjectId", subject.pass_id)?, None)
            };
            let pass = match caller {
                RequestCaller::Family { account } => pass_for_parent(db, *account, pass_id).await?,
                RequestCaller::Staff { principal, .. } => {
                    let pass = pass_by_id(db, pass_id).await?;
                    if !principal.has_role(pass.funder_id, HANDLERS) {
                        return Err(Error::NotFound("pass"));
                    }
                    pass
                }
            };
            let campaign = get_campaign(db, pass.campaign_id).await?;
            Ok(Resolved {
                funder_id: pass.funder_id,
                pupil_id: pass.pupil_id,
                campaign,
                pass_id: Some(pass.id),
                redemption_id,
            })
        }
    }
}
