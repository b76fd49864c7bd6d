//! The club's side of a ticket: looked up by its code, then redeemed.
//!
//! A redemption is the hot path of the Pass (a desk at registration week), so everything it
//! needs to know before moving money — the ticket, whether the caller may take it, whether the
//! caller is throttled, the caller's book — comes back from one statement; the money then
//! moves in one ledger operation.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, QueryResult};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::books::{PartnerTerms, SpendCaller, check_key, pass_changed, payable, terms_allow};
use super::payments::{Redemption, RedemptionSource, redemption_by_op, redemption_row};
use super::tickets::{Ticket, TicketStatus, normalize_code, ticket_refusal, ticket_select};
use crate::auth::{Throttle, throttle_check, throttle_fail};
use crate::db::{now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::ledger::{AccountRef, HoldTerms, Leg, Operation, Scope, TransferKind, Wallet, ensure_account, execute};
use crate::money::Cents;
use crate::partner::PartnerStatus;

/// What a club sees of a ticket before redeeming it: nothing of the family beyond the pupil's
/// first name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TicketCheck {
    pub code: String,
    pub wallet: Wallet,
    pub amount: Cents,
    pub status: TicketStatus,
    pub valid_until_us: i64,
    pub pupil_given_name: String,
}

/// Failed lookups per partner: 30 at once, then one every 2 seconds.
const LOOKUP_MISSES: Throttle = Throttle { free: 30, max_block_secs: 60 };

/// The calling partner as the ticket's row sees it (read with the ticket).
#[derive(FromQueryResult)]
struct Caller {
    caller_funder_id: Option<Uuid>,
    caller_categories: Option<String>,
    caller_status: Option<PartnerStatus>,
    caller_name: Option<String>,
    /// The caller's book with the ticket's funder, when it exists already.
    payable_id: Option<Uuid>,
    /// Whether the caller's failed lookups block it now (`None`: no failure on record).
    blocked: Option<bool>,
}

impl Caller {
    fn terms(&self) -> Option<PartnerTerms> {
        Some(PartnerTerms {
            funder_id: self.caller_funder_id,
            categories: self.caller_categories.clone()?,
            status: self.caller_status?,
        })
    }
}

/// The ticket's hold as its row joins it: with it the ledger posts the hold in the statement
/// that moves the money, checking the hold still says so.
#[derive(FromQueryResult)]
struct Held {
    hold_id: Uuid,
    hold_debit_account_id: Uuid,
    hold_debit_limited: bool,
    hold_credit_account_id: Uuid,
    hold_credit_limited: bool,
    hold_amount: Cents,
}

impl From<Held> for HoldTerms {
    fn from(h: Held) -> Self {
        HoldTerms {
            hold: h.hold_id,
            debit: h.hold_debit_account_id,
            debit_limited: h.hold_debit_limited,
            credit: h.hold_credit_account_id,
            credit_limited: h.hold_credit_limited,
            amount: h.hold_amount,
        }
    }
}

/// A ticket the caller may take, with what the redemption needs of the caller.
struct Found {
    ticket: Ticket,
    hold: HoldTerms,
    partner_name: String,
    payable: Option<Uuid>,
}

/// A ticket this partner may redeem (named for it, or a bearer ticket of its funder and
/// wallet), by code; anything else is `NOT_FOUND`. Misses are throttled per partner.
async fn ticket_for_partner<C: ConnectionTrait>(db: &C, partner: Uuid, code: &str) -> Result<Found> {
    let key = format!("ticket-lookup:{partner}");
    let row = match normalize_code(code) {
        Some(code) => read(db, &code, &key, partner).await?,
        None => None,
    };
    let Some((ticket, hold, caller)) = row else {
        // A miss: the throttle is read on this path only (the hit's statement read it).
        return miss(db, &key, true).await;
    };
    if caller.blocked == Some(true) {
        return Err(Error::RateLimited);
    }
    let terms = caller.terms();
    let allowed = match ticket.partner_id {
        // Named for this partner: it must still be approved (a suspended club gets told why).
        Some(named) if named == partner => {
            terms_allow(terms.as_ref(), ticket.funder_id, ticket.wallet)?;
            true
        }
        // A bearer ticket: only for approved partners of its funder and wallet; to anyone
        // else it does not exist.
        None => terms_allow(terms.as_ref(), ticket.funder_id, ticket.wallet).is_ok(),
        Some(_) => false,
    };
    if !allowed {
        return miss(db, &key, false).await;
    }
    Ok(Found { ticket, hold, partner_name: caller.caller_name.unwrap_or_default(), payable: caller.payable_id })
}

/// One statement: the ticket of `code` and its hold, the caller's terms and book, its
/// throttle state.
async fn read<C: ConnectionTrait>(
    db: &C,
    code: &str,
    key: &str,
    partner: Uuid,
) -> Result<Option<(Ticket, HoldTerms, Caller)>> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT x.*, cp.funder_id AS caller_funder_id, cp.categories AS caller_categories, \
         cp.status AS caller_status, cp.name AS caller_name, pay.id AS payable_id, \
         (SELECT th.allow_at_us > {now} FROM throttle th WHERE th.key = $2) AS blocked \
         FROM ({tickets}) x LEFT JOIN partner cp ON cp.id = $3 \
         LEFT JOIN ledger_account pay ON pay.kind = 'partner_payable' AND pay.owner_id = $3 AND pay.wallet = '' \
         AND pay.funder_id = x.funder_id AND pay.campaign_id IS NULL WHERE x.code = $1",
        now = now_us_sql(backend),
        tickets = ticket_select(backend),
    );
    let row: Option<QueryResult> =
        db.query_one_raw(stmt(backend, &sql, [code.into(), key.into(), partner.into()])).await?;
    let Some(row) = row else { return Ok(None) };
    let hold = Held::from_query_result(&row, "")?.into();
    Ok(Some((Ticket::from_query_result(&row, "")?, hold, Caller::from_query_result(&row, "")?)))
}

/// A lookup that found nothing the caller may take: refused while the caller is blocked,
/// counted otherwise.
async fn miss<C: ConnectionTrait, T>(db: &C, key: &str, check: bool) -> Result<T> {
    if check && throttle_check(db, key).await? {
        return Err(Error::RateLimited);
    }
    throttle_fail(db, key, LOOKUP_MISSES).await?;
    Err(Error::NotFound("ticket"))
}

pub async fn lookup_ticket<C: ConnectionTrait>(db: &C, partner: Uuid, code: &str) -> Result<TicketCheck> {
    let t = ticket_for_partner(db, partner, code).await?.ticket;
    Ok(TicketCheck {
        code: t.code,
        wallet: t.wallet,
        amount: t.amount,
        status: t.status,
        valid_until_us: t.valid_until_us,
        pupil_given_name: t.pupil_given_name,
    })
}

/// What a club sends to redeem.
#[derive(Clone, Debug)]
pub struct RedeemTicket {
    pub code: String,
    /// At most the ticket's amount (default: all of it); the rest goes back to the wallet.
    pub amount: Option<Cents>,
    pub activity_id: Option<String>,
    pub idempotency_key: String,
}

/// Redeems a ticket for the calling partner: posts its hold (up to the amount held) to the
/// campaign's outstanding tickets and passes it on to the partner's payable, recording the
/// redemption, all in one operation.
pub async fn redeem_ticket(db: &DatabaseConnection, partner: Uuid, input: &RedeemTicket) -> Result<(Redemption, bool)> {
    check_key(&input.idempotency_key)?;
    let Found { ticket, hold, partner_name, payable: book } = ticket_for_partner(db, partner, &input.code).await?;
    let amount = input.amount.unwrap_or(ticket.amount);
    if amount.0 <= 0 || amount > ticket.amount {
        return Err(Error::bad_input("amount", "between 0.01 and the ticket's amount"));
    }
    // Everything the operation needs is on the ticket's row: no second read of the pass.
    let scope = Scope::campaign(ticket.funder_id, ticket.campaign_id);
    // Where the hold put the money: the redemption passes it on from there.
    let clearing = AccountRef { id: hold.credit, limited: false, scope };
    let payable = match book {
        Some(id) => AccountRef { id, limited: false, scope: Scope::funder(ticket.funder_id) },
        // The partner's first payment by this funder opens its book.
        None => ensure_account(db, payable(ticket.funder_id, partner)).await?,
    };
    let request = json!({ "redeem_ticket": { "ticket": ticket.id, "amount": amount, "activity": input.activity_id } });
    let op = Operation::new(
        SpendCaller::Partner { partner }.key_scope(),
        &input.idempotency_key,
        vec![
            Leg::Post { hold: ticket.hold_id, amount: Some(amount) },
            Leg::Transfer { kind: TransferKind::Ticket, debit: clearing, credit: payable, amount },
        ],
    )
    .with_request(request)
    .with_events(vec![pass_changed(ticket.pass_id, "ticket_redeemed")])
    .with_known_holds(vec![hold]);
    let row =
        Redemption::new_row(partner, ticket.funder_id, ticket.pass_id, ticket.wallet, RedemptionSource::Ticket, amount)
            .with_ticket(ticket.id)
            .with_activity(input.activity_id.clone());
    let op = op.with_rows(vec![redemption_row(row.clone())]);
    let outcome = execute(db, &op).await.map_err(ticket_refusal)?;
    if outcome.replayed {
        return Ok((redemption_by_op(db, outcome.op_id).await?, true));
    }
    Ok((row.written(&outcome, partner_name), false))
}
