//! A request and its history as stored.

use sea_orm::FromQueryResult;
use serde::Serialize;
use uuid::Uuid;

use super::rules::{Action, Party, RequestKind, RequestStatus};

crate::stored_enum! {
    /// Where a request was opened: in the app by the family, or at the counter by staff for them.
    pub enum Channel {
        App,
        Counter,
    }
}

/// A request with its milestones (database-clock microseconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct Request {
    pub id: Uuid,
    pub funder_id: Uuid,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub channel: Channel,
    pub requester_account_id: Option<Uuid>,
    pub opened_by_account_id: Option<Uuid>,
    pub pupil_id: Option<Uuid>,
    pub campaign_id: Option<Uuid>,
    pub pass_id: Option<Uuid>,
    pub redemption_id: Option<Uuid>,
    pub partner_id: Option<Uuid>,
    pub boursier_claim: bool,
    pub assignee_account_id: Option<Uuid>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    pub acknowledged_at_us: Option<i64>,
    pub responded_at_us: Option<i64>,
    pub decided_at_us: Option<i64>,
}

pub(super) const REQUEST_COLUMNS: &str = "id, funder_id, kind, status, channel, requester_account_id, \
    opened_by_account_id, pupil_id, campaign_id, pass_id, redemption_id, partner_id, boursier_claim, assignee_account_id, \
    created_at_us, updated_at_us, acknowledged_at_us, responded_at_us, decided_at_us";

/// One step of a request's life. `internal_note` is for staff only: the family's views drop it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct RequestEvent {
    pub id: Uuid,
    pub request_id: Uuid,
    pub action: Action,
    pub party: Party,
    pub actor_account_id: Option<Uuid>,
    pub at_counter: bool,
    pub from_status: Option<RequestStatus>,
    pub to_status: RequestStatus,
    pub public_message: Option<String>,
    pub internal_note: Option<String>,
    pub created_at_us: i64,
}

/// What a request is about; which ids are needed depends on its kind (checked on submission).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// Enrolment and data correction: the child.
    pub pupil_id: Option<Uuid>,
    /// Enrolment and data correction: the campaign.
    pub campaign_id: Option<Uuid>,
    /// Boursier bonus and lost card: the pass.
    pub pass_id: Option<Uuid>,
    /// Redemption dispute: the redemption.
    pub redemption_id: Option<Uuid>,
}
