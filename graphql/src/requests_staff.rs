//! Requests, the staff side: the queue, taking a request, deciding, the counter, the delays.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use passerelle_domain::request::{self, Act, Action, HANDLERS, NewRequest, QueueFilter, READERS};
use sea_orm::DatabaseConnection;

use crate::access::require_staff;
use crate::error::ApiResult;
use crate::pagination::{connection, keyset};
use crate::parse_id;
use crate::requests::{GqlRequestKind, GqlRequestStatus, Request, act_on, parse_ids, request_caller, subject};

/// The contract's decisions.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RequestDecision {
    Approve,
    Reject,
    AskInfo,
}

#[derive(InputObject)]
pub struct DecideRequestInput {
    pub request_id: ID,
    pub decision: RequestDecision,
    /// Shown to the family: required to reject or to ask for information.
    pub public_message: Option<String>,
    /// Never shown to the family.
    pub internal_note: Option<String>,
}

#[derive(InputObject)]
pub struct AssignRequestInput {
    pub request_id: ID,
    /// A staff member handling this funder's requests; none: the caller.
    pub assignee_id: Option<ID>,
}

#[derive(InputObject)]
pub struct RequestQueueFilter {
    pub funder_id: ID,
    pub status: Option<GqlRequestStatus>,
    pub kind: Option<GqlRequestKind>,
    #[graphql(default)]
    pub assigned_to_me: bool,
    #[graphql(default)]
    pub unassigned: bool,
}

#[derive(InputObject)]
pub struct OpenRequestAtCounterInput {
    pub kind: GqlRequestKind,
    /// As in `submitRequest`: the child, the pass or the redemption.
    pub subject_id: ID,
    pub campaign_id: Option<ID>,
    /// A parent linked to the child, who then follows the request in the app (optional: a
    /// family without an account is served at the counter only).
    pub requester_account_id: Option<ID>,
    #[graphql(default)]
    pub boursier_claim: bool,
    pub message: Option<String>,
    #[graphql(default)]
    pub attachment_ids: Vec<ID>,
}

/// One delay, in hours, over the requests that reached it.
#[derive(SimpleObject)]
pub struct RequestDelay {
    pub count: u64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

impl From<request::Delay> for RequestDelay {
    fn from(d: request::Delay) -> Self {
        RequestDelay { count: d.count, median_hours: d.median_hours, p90_hours: d.p90_hours }
    }
}

/// How long one kind of request waits.
#[derive(SimpleObject)]
pub struct RequestKindDelays {
    pub kind: GqlRequestKind,
    pub submitted: u64,
    pub open: u64,
    pub decided: u64,
    pub acknowledgement: RequestDelay,
    pub first_response: RequestDelay,
    pub decision: RequestDelay,
    pub target_days: u16,
    pub open_past_target: u64,
    pub decided_past_target: u64,
}

#[derive(Default)]
pub struct RequestStaffQuery;

#[Object]
impl RequestStaffQuery {
    /// The funder's requests, oldest first.
    async fn request_queue(
        &self,
        ctx: &Context<'_>,
        filter: RequestQueueFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Request, EmptyFields, EmptyFields>> {
        let funder_id = parse_id(&filter.funder_id, "funderId")?;
        require_staff(ctx, funder_id, READERS)?;
        let staff = crate::access::signed_in(ctx)?;
        let page = keyset(first, after.as_deref())?;
        let filter = QueueFilter {
            funder_id,
            status: filter.status.map(Into::into),
            kind: filter.kind.map(Into::into),
            assigned_to_me: filter.assigned_to_me,
            unassigned: filter.unassigned,
        };
        let rows = request::queue(ctx.data_unchecked::<DatabaseConnection>(), staff, &filter, &page).await?;
        Ok(connection(&page, rows, |r| (r.created_at_us, r.id), Request::from))
    }

    /// Per kind: median and 90th percentile delays to acknowledgement, first response and
    /// decision, and the requests past the policy's target (`passerelle requests stats`).
    async fn request_stats(&self, ctx: &Context<'_>, funder_id: ID) -> ApiResult<Vec<RequestKindDelays>> {
        let funder_id = parse_id(&funder_id, "funderId")?;
        require_staff(ctx, funder_id, READERS)?;
        let stats = request::delay_stats(ctx.data_unchecked::<DatabaseConnection>(), funder_id).await?;
        Ok(stats
            .into_iter()
            .map(|k| RequestKindDelays {
                kind: k.kind.into(),
                submitted: k.submitted,
                open: k.open,
                decided: k.decided,
                acknowledgement: k.acknowledgement.into(),
                first_response: k.first_response.into(),
                decision: k.decision.into(),
                target_days: k.target_days,
                open_past_target: k.open_past_target,
                decided_past_target: k.decided_past_target,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct RequestStaffMutation;

#[Object]
impl RequestStaffMutation {
    /// Takes a request into account (prise en compte): in review, assigned to the caller if
    /// nobody has it; the family is told.
    async fn acknowledge_request(&self, ctx: &Context<'_>, request_id: ID) -> ApiResult<Request> {
        let caller = staff(ctx)?;
        act_on(ctx, &caller, &request_id, &Act::new(Action::Acknowledge)).await
    }

    /// Hands a request to a staff member of its funder.
    async fn assign_request(&self, ctx: &Context<'_>, input: AssignRequestInput) -> ApiResult<Request> {
        let caller = staff(ctx)?;
        let assignee = input.assignee_id.as_ref().map(|a| parse_id(a, "assigneeId")).transpose()?;
        act_on(ctx, &caller, &input.request_id, &Act { assignee, ..Act::new(Action::Assign) }).await
    }

    /// Approves (its effect applied in the same transaction), rejects, or asks the family for
    /// information. Approving needs a recent re-authentication.
    async fn decide_request(&self, ctx: &Context<'_>, input: DecideRequestInput) -> ApiResult<Request> {
        let caller = staff(ctx)?;
        let action = match input.decision {
            RequestDecision::Approve => Action::Approve,
            RequestDecision::Reject => Action::Reject,
            RequestDecision::AskInfo => Action::AskInfo,
        };
        let act = Act { public_message: input.public_message, internal_note: input.internal_note, ..Act::new(action) };
        act_on(ctx, &caller, &input.request_id, &act).await
    }

    /// Staff open a request for a family at the counter (guichet), recorded as such.
    async fn open_request_at_counter(&self, ctx: &Context<'_>, input: OpenRequestAtCounterInput) -> ApiResult<Request> {
        let principal = crate::access::signed_in(ctx)?;
        let request::RequestCaller::Staff { .. } = request_caller(ctx, HANDLERS, true)? else {
            return Err(passerelle_domain::Error::Forbidden.into());
        };
        let requester = input.requester_account_id.as_ref().map(|a| parse_id(a, "requesterAccountId")).transpose()?;
        let new = NewRequest {
            kind: Some(input.kind.into()),
            subject: subject(input.kind, &input.subject_id, input.campaign_id.as_ref())?,
            boursier_claim: input.boursier_claim,
            message: input.message,
            attachment_ids: parse_ids(&input.attachment_ids, "attachmentIds")?,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(request::open_at_counter(db, principal, requester, &new).await?.into())
    }
}

/// A staff member handling requests (and partners' applications) for some funder; the domain
/// checks the object's own funder.
pub(crate) fn staff_principal<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a passerelle_domain::auth::Principal> {
    match request_caller(ctx, HANDLERS, false)? {
        request::RequestCaller::Staff { principal, .. } => Ok(principal),
        request::RequestCaller::Family { .. } => Err(passerelle_domain::Error::Forbidden.into()),
    }
}

/// Staff handling requests for some funder (the domain checks the request's own funder).
fn staff<'a>(ctx: &'a Context<'_>) -> ApiResult<request::RequestCaller<'a>> {
    match request_caller(ctx, HANDLERS, false)? {
        caller @ request::RequestCaller::Staff { .. } => Ok(caller),
        request::RequestCaller::Family { .. } => Err(passerelle_domain::Error::Forbidden.into()),
    }
}
