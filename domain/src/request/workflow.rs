//! The request use cases: file one (app or counter) and act on it. Each is one transaction:
//! the status moves by a conditional update, the event is written, the family's notification
//! goes to the outbox, and an approval's effect is applied — all committed together or not at all.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Value};
use uuid::Uuid;

use super::access::{HANDLERS, RequestCaller, Resolved, linked, resolve};
use super::effects;
use super::model::{Channel, Request, Subject};
use super::query::load;
use super::rules::{Action, Milestones, Party, Refusal, RequestKind, RequestStatus, milestones, next};
use crate::auth::{Principal, require_recent_auth};
use crate::db::{begin_write, is_unique_violation, now_us, params, stmt};
use crate::error::{Error, Result};
use crate::notify::{NotificationKind, request_event};

/// Longest message a family or staff member writes on a request.
pub const MAX_MESSAGE: usize = 4000;
/// Most documents bound by one step.
pub const MAX_ATTACHMENTS: usize = 10;

/// A new request.
#[derive(Clone, Debug, Default)]
pub struct NewRequest {
    pub kind: Option<RequestKind>,
    pub subject: Subject,
    /// Enrolment: the family says the child is boursier (the approval then grants that amount).
    pub boursier_claim: bool,
    pub message: Option<String>,
    pub attachment_ids: Vec<Uuid>,
}

/// One step on an existing request.
#[derive(Clone, Debug)]
pub struct Act {
    pub action: Action,
    /// Shown to the family (a question, a reason, an answer).
    pub public_message: Option<String>,
    /// Staff only; never shown to the family.
    pub internal_note: Option<String>,
    pub attachment_ids: Vec<Uuid>,
    /// `Assign`: who takes the request (none: the caller).
    pub assignee: Option<Uuid>,
}

impl Act {
    pub fn new(action: Action) -> Act {
        Act { action, public_message: None, internal_note: None, attachment_ids: vec![], assignee: None }
    }
}

/// A family files a request from the app.
pub async fn submit(db: &DatabaseConnection, account: Uuid, input: &NewRequest) -> Result<Request> {
    create(db, &RequestCaller::Family { account }, Channel::App, Some(account), input).await
}

/// Staff open a request at the counter for a family; `requester` (a parent linked to the
/// child) then follows it in the app, and is notified like any requester.
pub async fn open_at_counter(
    db: &DatabaseConnection,
    staff: &Principal,
    requester: Option<Uuid>,
    input: &NewRequest,
) -> Result<Request> {
    let caller = RequestCaller::Staff { principal: staff, on_behalf: true };
    create(db, &caller, Channel::Counter, requester, input).await
}

fn message(field: &str, m: &Option<String>) -> Result<Option<String>> {
    let m = m.as_deref().map(str::trim).filter(|m| !m.is_empty());
    match m {
        Some(m) if m.chars().count() > MAX_MESSAGE => Err(Error::bad_input(field, "at most 4000 characters")),
        m => Ok(m.map(str::to_owned)),
    }
}

fn check_attachments(ids: &[Uuid]) -> Result<()> {
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    if ids.len() > MAX_ATTACHMENTS || distinct.len() != ids.len() {
        return Err(Error::bad_input("attachmentIds", "at most 10 distinct documents"));
    }
    Ok(())
}

async fn create(
    db: &DatabaseConnection,
    caller: &RequestCaller<'_>,
    channel: Channel,
    requester: Option<Uuid>,
    input: &NewRequest,
) -> Result<Request> {
    let kind = input.kind.ok_or_else(|| Error::bad_input("kind", "required"))?;
    let text = message("message", &input.message)?;
    check_attachments(&input.attachment_ids)?;
    if kind == RequestKind::RedemptionDispute && text.is_none() {
        return Err(Error::bad_input("message", "say what is wrong with the redemption"));
    }
    if kind == RequestKind::BoursierBonus && input.attachment_ids.is_empty() {
        return Err(Error::bad_input("attachmentIds", "a proof document is required"));
    }
    let txn = begin_write(db).await?;
    let subject = resolve(&txn, caller, kind, &input.subject).await?;
    if let Some(account) = requester
        && matches!(caller, RequestCaller::Staff { .. })
        && !linked(&txn, account, subject.pupil_id).await?
    {
        return Err(Error::NotFound("requester"));
    }
    let now = now_us(&txn).await?;
    before_filing(&txn, kind, &subject, now).await?;
    let id = Uuid::now_v7();
    let sql = "INSERT INTO request (id, funder_id, kind, status, channel, requester_account_id, opened_by_account_id, \
               pupil_id, campaign_id, pass_id, redemption_id, boursier_claim, assignee_account_id, open_key, \
               created_at_us, updated_at_us) VALUES ($1, $2, $3, 'submitted', $4, $5, $6, $7, $8, $9, $10, $11, NULL, \
               $12, $13, $13)";
    let values: [Value; 13] = [
        id.into(),
        subject.funder_id.into(),
        kind.into(),
        channel.into(),
        requester.into(),
        caller.account().into(),
        subject.pupil_id.into(),
        subject.campaign.id.into(),
        subject.pass_id.into(),
        subject.redemption_id.into(),
        (kind == RequestKind::Enrolment && input.boursier_claim).into(),
        subject.open_key(kind).into(),
        now.into(),
    ];
    match txn.execute_raw(stmt(txn.get_database_backend(), sql, values)).await {
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::Conflict(format!("a {kind} request is already open for this subject")));
        }
        other => other?,
    };
    bind_attachments(&txn, id, caller.account(), &input.attachment_ids).await?;
    let event = Event { action: Action::Submit, from: None, to: RequestStatus::Submitted, public: text, note: None };
    record(&txn, id, caller, &event, now).await?;
    if let Some(account) = requester {
        request_event(&txn, NotificationKind::RequestReceived, id, account, RequestStatus::Submitted).await?;
    }
    let request = load(&txn, id).await?;
    txn.commit().await?;
    Ok(request)
}

/// A club's affiliation request, filed by `account` (its owner) inside the application's
/// transaction: the partner row, its details and the request commit together.
pub(crate) async fn file_affiliation_in(
    txn: &DatabaseTransaction,
    account: Uuid,
    partner: Uuid,
    funder: Uuid,
    message: Option<String>,
) -> Result<Request> {
    let now = now_us(txn).await?;
    let id = Uuid::now_v7();
    let sql = "INSERT INTO request (id, funder_id, kind, status, channel, requester_account_id, opened_by_account_id, \
               partner_id, boursier_claim, open_key, created_at_us, updated_at_us) \
               VALUES ($1, $2, $3, 'submitted', 'app', $4, $4, $5, FALSE, $6, $7, $7)";
    let kind = RequestKind::PartnerAffiliation;
    let values: [Value; 7] = [
        id.into(),
        funder.into(),
        kind.into(),
        account.into(),
        partner.into(),
        format!("{kind}:{partner}").into(),
        now.into(),
    ];
    txn.execute_raw(stmt(txn.get_database_backend(), sql, values)).await?;
    let caller = RequestCaller::Family { account };
    let event = Event { action: Action::Submit, from: None, to: RequestStatus::Submitted, public: message, note: None };
    record(txn, id, &caller, &event, now).await?;
    request_event(txn, NotificationKind::RequestReceived, id, account, RequestStatus::Submitted).await?;
    load(txn, id).await
}

/// What a kind requires before it is filed: an enrolment needs an open campaign and no pass
/// yet; a lost card is blocked at once (no spending while the replacement is decided).
async fn before_filing(txn: &DatabaseTransaction, kind: RequestKind, subject: &Resolved, now: i64) -> Result<()> {
    let backend = txn.get_database_backend();
    match kind {
        RequestKind::Enrolment => {
            if now >= subject.campaign.policy.generation_deadline_us() {
                return Err(Error::CampaignClosed);
            }
            let sql = "SELECT id FROM pass WHERE campaign_id = $1 AND pupil_id = $2";
            let values = [subject.campaign.id.into(), subject.pupil_id.into()];
            if txn.query_one_raw(stmt(backend, sql, values)).await?.is_some() {
                return Err(Error::Conflict("this child already holds a pass for this campaign".into()));
            }
        }
        RequestKind::LostCard => {
            if let Some(pass) = subject.pass_id {
                crate::spending::block_card_in(txn, pass).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Binds the caller's own documents, not yet bound elsewhere, to the request.
async fn bind_attachments(txn: &DatabaseTransaction, request: Uuid, owner: Uuid, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE attachment SET request_id = $1 WHERE owner_account_id = $2 AND request_id IS NULL AND id IN ({})",
        params(3, ids.len())
    );
    let mut values: Vec<Value> = vec![request.into(), owner.into()];
    values.extend(ids.iter().map(|i| Value::from(*i)));
    let bound = txn.execute_raw(stmt(txn.get_database_backend(), &sql, values)).await?.rows_affected();
    if bound != ids.len() as u64 {
        return Err(Error::NotFound("attachment"));
    }
    Ok(())
}

struct Event {
    action: Action,
    from: Option<RequestStatus>,
    to: RequestStatus,
    public: Option<String>,
    note: Option<String>,
}

async fn record(
    txn: &DatabaseTransaction,
    request: Uuid,
    caller: &RequestCaller<'_>,
    e: &Event,
    now: i64,
) -> Result<()> {
    let sql = "INSERT INTO request_event (id, request_id, action, party, actor_account_id, at_counter, from_status, \
               to_status, public_message, internal_note, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    let values: [Value; 11] = [
        Uuid::now_v7().into(),
        request.into(),
        e.action.into(),
        caller.party().into(),
        caller.account().into(),
        (caller.at_counter() && caller.party() == Party::Family).into(),
        e.from.map(<&'static str>::from).into(),
        e.to.into(),
        e.public.clone().into(),
        e.note.clone().into(),
        now.into(),
    ];
    txn.execute_raw(stmt(txn.get_database_backend(), sql, values)).await?;
    Ok(())
}

/// One step on a request: see [`Act`]. Approving needs a recent re-authentication (it moves
/// money or eligibility), like the other staff decisions.
pub async fn act(
    db: &DatabaseConnection,
    caller: &RequestCaller<'_>,
    request_id: Uuid,
    input: &Act,
) -> Result<Request> {
    let public = message("publicMessage", &input.public_message)?;
    let note = message("internalNote", &input.internal_note)?;
    check_attachments(&input.attachment_ids)?;
    let party = caller.party();
    if note.is_some() && party != Party::Staff {
        return Err(Error::bad_input("internalNote", "staff only"));
    }
    let needs_public = matches!(input.action, Action::AskInfo | Action::Reject)
        || (input.action == Action::Answer && input.attachment_ids.is_empty());
    if needs_public && public.is_none() {
        return Err(Error::bad_input("publicMessage", "tell the family why, or what is needed"));
    }
    if input.action == Action::Comment && public.is_none() && note.is_none() {
        return Err(Error::bad_input("publicMessage", "a message or an internal note is required"));
    }
    if let (Action::Approve, RequestCaller::Staff { principal, .. }) = (input.action, caller) {
        require_recent_auth(db, principal.session_id).await?;
    }
    let txn = begin_write(db).await?;
    let request = load(&txn, request_id).await?;
    if !caller.reaches(&request, HANDLERS) {
        return Err(Error::NotFound("request"));
    }
    let to = next(request.status, party, input.action).map_err(|r| match r {
        Refusal::Forbidden => Error::Forbidden,
        Refusal::WrongState { .. } => Error::Conflict(r.to_string()),
    })?;
    let assignee = match input.action {
        Action::Assign => Some(staff_assignee(&txn, &request, input.assignee.unwrap_or(caller.account())).await?),
        Action::Acknowledge => request.assignee_account_id.or(Some(caller.account())),
        _ => request.assignee_account_id,
    };
    let now = now_us(&txn).await?;
    let m = milestones(party, input.action, public.is_some());
    advance(&txn, &request, to, assignee, m, now).await?;
    bind_attachments(&txn, request.id, caller.account(), &input.attachment_ids).await?;
    let event = Event { action: input.action, from: Some(request.status), to, public: public.clone(), note };
    record(&txn, request.id, caller, &event, now).await?;
    if input.action == Action::Approve {
        let author = match caller {
            RequestCaller::Staff { principal, .. } => principal.account.email.clone(),
            RequestCaller::Family { .. } => return Err(Error::Forbidden),
        };
        effects::apply(&txn, &request, &author).await?;
    }
    // The family hears of what staff did (a move or a message), not of its own steps.
    let told = party == Party::Staff && (to != request.status || public.is_some());
    if let (Some(account), true) = (request.requester_account_id, told) {
        request_event(&txn, NotificationKind::RequestStatusChanged, request.id, account, to).await?;
    }
    let request = load(&txn, request.id).await?;
    txn.commit().await?;
    Ok(request)
}

/// The status moves only from the one it was read in: of two staff members deciding at once,
/// the second finds it changed and gets `CONFLICT`. Milestones are stamped once.
async fn advance(
    txn: &DatabaseTransaction,
    request: &Request,
    to: RequestStatus,
    assignee: Option<Uuid>,
    m: Milestones,
    now: i64,
) -> Result<()> {
    let stamp = |on: bool, column: &str| {
        if on { format!("{column} = COALESCE({column}, $1)") } else { format!("{column} = {column}") }
    };
    let sql = format!(
        "UPDATE request SET status = $2, updated_at_us = $1, assignee_account_id = $3, {}, {}, {}, \
         open_key = CASE WHEN $4 THEN NULL ELSE open_key END WHERE id = $5 AND status = $6",
        stamp(m.acknowledges, "acknowledged_at_us"),
        stamp(m.responds, "responded_at_us"),
        stamp(m.decides, "decided_at_us"),
    );
    let values: [Value; 6] =
        [now.into(), to.into(), assignee.into(), to.is_closed().into(), request.id.into(), request.status.into()];
    if txn.execute_raw(stmt(txn.get_database_backend(), &sql, values)).await?.rows_affected() != 1 {
        return Err(Error::Conflict("the request changed meanwhile: reload it".into()));
    }
    Ok(())
}

/// An assignee must handle the request's funder's requests.
async fn staff_assignee(txn: &DatabaseTransaction, request: &Request, account: Uuid) -> Result<Uuid> {
    let roles: Vec<&'static str> = HANDLERS.iter().map(|r| <&'static str>::from(*r)).collect();
    let sql = format!(
        "SELECT account_id FROM staff_role WHERE account_id = $1 AND funder_id = $2 AND role IN ({})",
        params(3, roles.len())
    );
    let mut values: Vec<Value> = vec![account.into(), request.funder_id.into()];
    values.extend(roles.into_iter().map(Value::from));
    match txn.query_one_raw(stmt(txn.get_database_backend(), &sql, values)).await? {
        Some(_) => Ok(account),
        None => Err(Error::bad_input("assigneeId", "not a staff member handling this funder's requests")),
    }
}
