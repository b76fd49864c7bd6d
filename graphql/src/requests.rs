//! Requests (demandes): the family's side in the app — file, follow, answer, cancel — and the
//! types both sides read. Staff operations are in `requests_staff.rs`.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::auth::{AccountKind, Authenticated, StaffRole};
use passerelle_domain::request::{self, Act, Action, NewRequest, RequestCaller, Subject};
use passerelle_domain::{Error, request::HANDLERS, request::READERS};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pagination::{connection, keyset};
use crate::parse_id;
use crate::wallet::{parent, time};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RequestKind", remote = "passerelle_domain::request::RequestKind")]
pub enum GqlRequestKind {
    Enrolment,
    BoursierBonus,
    LostCard,
    DataCorrection,
    RedemptionDispute,
    PartnerAffiliation,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RequestStatus", remote = "passerelle_domain::request::RequestStatus")]
pub enum GqlRequestStatus {
    Submitted,
    InReview,
    NeedsInfo,
    Approved,
    Rejected,
    Cancelled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RequestAction", remote = "passerelle_domain::request::Action")]
pub enum GqlRequestAction {
    Submit,
    Acknowledge,
    AskInfo,
    Answer,
    Approve,
    Reject,
    Cancel,
    Comment,
    Assign,
}

/// Who acted: the family (or staff at the counter for them), or the funder's staff.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RequestParty", remote = "passerelle_domain::request::Party")]
pub enum GqlRequestParty {
    Family,
    Staff,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RequestChannel", remote = "passerelle_domain::request::Channel")]
pub enum GqlRequestChannel {
    App,
    Counter,
}

/// A request as its family or the funder's staff see it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Request {
    pub id: ID,
    pub kind: GqlRequestKind,
    pub status: GqlRequestStatus,
    /// `COUNTER`: opened by staff at the counter for the family.
    pub channel: GqlRequestChannel,
    pub child_id: Option<ID>,
    pub campaign_id: Option<ID>,
    pub pass_id: Option<ID>,
    pub redemption_id: Option<ID>,
    /// A partner's affiliation: the partner applying.
    pub partner_id: Option<ID>,
    pub boursier_claim: bool,
    pub assignee_id: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When staff first took it into account (prise en compte).
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When staff first answered the family (a question, a message or the decision).
    pub responded_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
}

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

impl From<request::Request> for Request {
    fn from(r: request::Request) -> Self {
        Request {
            id: id(r.id),
            kind: r.kind.into(),
            status: r.status.into(),
            channel: r.channel.into(),
            child_id: r.pupil_id.map(id),
            campaign_id: r.campaign_id.map(id),
            pass_id: r.pass_id.map(id),
            redemption_id: r.redemption_id.map(id),
            partner_id: r.partner_id.map(id),
            boursier_claim: r.boursier_claim,
            assignee_id: r.assignee_account_id.map(id),
            created_at: time(r.created_at_us),
            updated_at: time(r.updated_at_us),
            acknowledged_at: r.acknowledged_at_us.map(time),
            responded_at: r.responded_at_us.map(time),
            decided_at: r.decided_at_us.map(time),
        }
    }
}

/// One step of a request's life. The family never sees internal notes.
#[derive(SimpleObject)]
pub struct RequestEvent {
    pub id: ID,
    pub action: GqlRequestAction,
    pub party: GqlRequestParty,
    /// Done by staff at the counter for the family.
    pub at_counter: bool,
    pub from_status: Option<GqlRequestStatus>,
    pub to_status: GqlRequestStatus,
    pub public_message: Option<String>,
    pub internal_note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A proof document; its bytes at `GET /attachments/{id}` (same bearer token).
#[derive(SimpleObject)]
pub struct Attachment {
    pub id: ID,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl Request {
    async fn events(&self, ctx: &Context<'_>) -> ApiResult<Vec<RequestEvent>> {
        let caller = request_caller(ctx, READERS, false)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let events = request::request_events(db, &caller, parse_id(&self.id, "id")?).await?;
        Ok(events
            .into_iter()
            .map(|e| RequestEvent {
                id: id(e.id),
                action: e.action.into(),
                party: e.party.into(),
                at_counter: e.at_counter,
                from_status: e.from_status.map(Into::into),
                to_status: e.to_status.into(),
                public_message: e.public_message,
                internal_note: e.internal_note,
                created_at: time(e.created_at_us),
            })
            .collect())
    }

    async fn attachments(&self, ctx: &Context<'_>) -> ApiResult<Vec<Attachment>> {
        let caller = request_caller(ctx, READERS, false)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let found = request::request_attachments(db, &caller, parse_id(&self.id, "id")?).await?;
        Ok(found
            .into_iter()
            .map(|a| Attachment {
                id: id(a.id),
                content_type: a.content_type,
                size: a.size,
                sha256: a.sha256,
                created_at: time(a.created_at_us),
            })
            .collect())
    }
}

/// The caller of a request operation: a requester (a parent, a club's member), or staff holding one of `roles` for some funder
/// (the domain then checks the request's funder). `on_behalf`: staff act for the family at the
/// counter. Anyone else: `UNAUTHENTICATED` / `FORBIDDEN`.
pub(crate) fn request_caller<'a>(
    ctx: &'a Context<'_>,
    roles: &[StaffRole],
    on_behalf: bool,
) -> ApiResult<RequestCaller<'a>> {
    match ctx.data_opt::<Caller>().and_then(|c| c.0.as_ref()) {
        None => Err(Error::Unauthenticated.into()),
        // Requesters: parents, and clubs' people (their affiliation request).
        Some(Authenticated::Account(p))
            if matches!(p.account.kind, AccountKind::Parent | AccountKind::PartnerMember) =>
        {
            Ok(RequestCaller::Family { account: p.account.id })
        }
        Some(Authenticated::Account(p))
            if p.account.kind == AccountKind::Staff && p.staff_roles.iter().any(|(_, r)| roles.contains(r)) =>
        {
            Ok(RequestCaller::Staff { principal: p, on_behalf })
        }
        Some(_) => Err(Error::Forbidden.into()),
    }
}

/// The ids in a list argument.
pub(crate) fn parse_ids(ids: &[ID], field: &str) -> Result<Vec<Uuid>, ApiError> {
    ids.iter().map(|i| parse_id(i, field)).collect()
}

/// The subject of `kind` from the contract's `subjectId` (a child, a pass or a redemption).
pub(crate) fn subject(kind: GqlRequestKind, subject_id: &ID, campaign_id: Option<&ID>) -> ApiResult<Subject> {
    let subject_id = Some(parse_id(subject_id, "subjectId")?);
    let campaign_id = campaign_id.map(|c| parse_id(c, "campaignId")).transpose()?;
    Ok(match kind {
        GqlRequestKind::Enrolment | GqlRequestKind::DataCorrection => {
            Subject { pupil_id: subject_id, campaign_id, ..Default::default() }
        }
        GqlRequestKind::BoursierBonus | GqlRequestKind::LostCard => {
            Subject { pass_id: subject_id, ..Default::default() }
        }
        GqlRequestKind::RedemptionDispute => Subject { redemption_id: subject_id, ..Default::default() },
        // Refused by the domain: a partner applies with `applyForAffiliation`.
        GqlRequestKind::PartnerAffiliation => Subject::default(),
    })
}

#[derive(InputObject)]
pub struct SubmitRequestInput {
    pub kind: GqlRequestKind,
    /// The child (enrolment, data correction), the pass (boursier bonus, lost card) or the
    /// redemption (dispute).
    pub subject_id: ID,
    /// Enrolment and data correction: which campaign.
    pub campaign_id: Option<ID>,
    pub message: Option<String>,
    /// Documents sent to `POST /attachments` first (a boursier bonus needs one).
    #[graphql(default)]
    pub attachment_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct EnrolInput {
    pub child_id: ID,
    pub campaign_id: ID,
    #[graphql(default)]
    pub boursier_claim: bool,
    pub message: Option<String>,
    #[graphql(default)]
    pub attachment_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct AnswerRequestInput {
    pub request_id: ID,
    pub message: Option<String>,
    #[graphql(default)]
    pub attachment_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct CommentRequestInput {
    pub request_id: ID,
    pub message: String,
    /// Staff only: a note the family never sees.
    #[graphql(default)]
    pub internal: bool,
}

#[derive(Default)]
pub struct RequestQuery;

#[Object]
impl RequestQuery {
    /// The signed-in parent's requests, newest first.
    async fn requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Request, EmptyFields, EmptyFields>> {
        let p = parent(ctx)?;
        let page = keyset(first, after.as_deref())?;
        let rows = request::list_for_requester(ctx.data_unchecked::<DatabaseConnection>(), p.account.id, &page).await?;
        Ok(connection(&page, rows, |r| (r.created_at_us, r.id), Request::from))
    }

    /// One request: its family's, or its funder's staff's.
    async fn request(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Request> {
        let caller = request_caller(ctx, READERS, false)?;
        let id = parse_id(&id, "id")?;
        Ok(request::get_request(ctx.data_unchecked::<DatabaseConnection>(), &caller, id).await?.into())
    }
}

#[derive(Default)]
pub struct RequestMutation;

#[Object]
impl RequestMutation {
    /// A family files a request about its child, the child's pass or one of its redemptions.
    async fn submit_request(&self, ctx: &Context<'_>, input: SubmitRequestInput) -> ApiResult<Request> {
        let p = parent(ctx)?;
        let new = NewRequest {
            kind: Some(input.kind.into()),
            subject: subject(input.kind, &input.subject_id, input.campaign_id.as_ref())?,
            boursier_claim: false,
            message: input.message,
            attachment_ids: parse_ids(&input.attachment_ids, "attachmentIds")?,
        };
        Ok(request::submit(ctx.data_unchecked::<DatabaseConnection>(), p.account.id, &new).await?.into())
    }

    /// Signs a child up for a campaign; staff decide (the approval creates the pass and its credit).
    async fn enrol(&self, ctx: &Context<'_>, input: EnrolInput) -> ApiResult<Request> {
        let p = parent(ctx)?;
        let new = NewRequest {
            kind: Some(request::RequestKind::Enrolment),
            subject: subject(GqlRequestKind::Enrolment, &input.child_id, Some(&input.campaign_id))?,
            boursier_claim: input.boursier_claim,
            message: input.message,
            attachment_ids: parse_ids(&input.attachment_ids, "attachmentIds")?,
        };
        Ok(request::submit(ctx.data_unchecked::<DatabaseConnection>(), p.account.id, &new).await?.into())
    }

    /// The family answers a question (staff: at the counter, for the family): back to the queue.
    async fn answer_request(&self, ctx: &Context<'_>, input: AnswerRequestInput) -> ApiResult<Request> {
        let caller = request_caller(ctx, HANDLERS, true)?;
        let act = Act {
            public_message: input.message,
            attachment_ids: parse_ids(&input.attachment_ids, "attachmentIds")?,
            ..Act::new(Action::Answer)
        };
        act_on(ctx, &caller, &input.request_id, &act).await
    }

    /// The family withdraws its request (staff: at the counter, for the family).
    async fn cancel_request(&self, ctx: &Context<'_>, request_id: ID) -> ApiResult<Request> {
        let caller = request_caller(ctx, HANDLERS, true)?;
        act_on(ctx, &caller, &request_id, &Act::new(Action::Cancel)).await
    }

    /// A message on the request; staff may write an internal note instead.
    async fn comment_request(&self, ctx: &Context<'_>, input: CommentRequestInput) -> ApiResult<Request> {
        let caller = request_caller(ctx, HANDLERS, false)?;
        let (public_message, internal_note) =
            if input.internal { (None, Some(input.message)) } else { (Some(input.message), None) };
        let act = Act { public_message, internal_note, ..Act::new(Action::Comment) };
        act_on(ctx, &caller, &input.request_id, &act).await
    }
}

/// Parse the request id, make the one domain call, map.
pub(crate) async fn act_on(
    ctx: &Context<'_>,
    caller: &RequestCaller<'_>,
    request_id: &ID,
    act: &Act,
) -> ApiResult<Request> {
    let id = parse_id(request_id, "requestId")?;
    Ok(request::act(ctx.data_unchecked::<DatabaseConnection>(), caller, id, act).await?.into())
}
