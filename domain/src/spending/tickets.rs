//! Tickets: issued by a parent (a hold on the wallet), checked and redeemed by a club,
//! cancelled by the parent, expired by the scheduler. The hold decides every race.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde_json::json;
use uuid::Uuid;

use super::books::{SpendCaller, accounts, check_key, check_partner, outstanding, pass_changed};
use super::keys::{TicketClaims, TicketKeys};
use super::pass::{pass_by_id, pass_for_parent};
use super::{Page, before};
use crate::campaign::get_campaign;
use crate::db::{now_us, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::DataKey;
use crate::ledger::{LedgerError, Leg, Operation, Rejection, TransferKind, Wallet, execute_with};
use crate::money::Cents;

crate::stored_enum! {
    /// A ticket's state, read from its hold.
    pub enum TicketStatus {
        Issued,
        Redeemed,
        Cancelled,
        Expired,
    }
}

/// A ticket as its family sees it.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Ticket {
    pub id: Uuid,
    pub code: String,
    pub pass_id: Uuid,
    pub funder_id: Uuid,
    pub wallet: Wallet,
    pub amount: Cents,
    pub partner_id: Option<Uuid>,
    pub partner_name: Option<String>,
    pub hold_id: Uuid,
    pub kid: String,
    pub status: TicketStatus,
    pub valid_until_us: i64,
    pub created_at_us: i64,
    pub pupil_given_name: String,
    pub campaign_id: Uuid,
}

impl Ticket {
    /// The signed payload a club's app checks offline.
    pub async fn qr_payload<C: ConnectionTrait>(
        &self,
        db: &C,
        keys: &TicketKeys,
        data_key: &DataKey,
    ) -> Result<String> {
        let claims = TicketClaims {
            jti: self.id.to_string(),
            code: self.code.clone(),
            wallet: self.wallet.to_string(),
            amount: format!("{:.2}", self.amount.to_decimal()),
            partner: self.partner_id.map(|p| p.to_string()),
            exp: self.valid_until_us / 1_000_000,
            iss: keys.issuer().to_owned(),
        };
        keys.sign(db, data_key, &self.kid, &claims).await
    }
}

/// The columns of [`Ticket`]; the status is the hold's state, `expired` once past its time
/// even before the sweep resolves it.
pub(super) fn ticket_select(backend: sea_orm::DbBackend) -> String {
    format!(
        "SELECT t.id, t.code, t.pass_id, t.funder_id, t.wallet, t.amount, t.partner_id, pr.name AS partner_name, \
         t.hold_id, t.kid, t.valid_until_us, t.created_at_us, pu.given_name AS pupil_given_name, p.campaign_id, \
         h.credit_account_id AS hold_credit_account_id, h.debit_account_id AS hold_debit_account_id, \
         h.debit_limited AS hold_debit_limited, h.credit_limited AS hold_credit_limited, h.amount AS hold_amount, \
         CASE WHEN h.state = 'posted' THEN 'redeemed' WHEN h.state = 'voided' THEN 'cancelled' \
         WHEN h.state = 'expired' OR h.expires_at_us <= {now} THEN 'expired' ELSE 'issued' END AS status \
         FROM ticket t JOIN ledger_hold h ON h.transfer_id = t.hold_id JOIN pass p ON p.id = t.pass_id \
         JOIN pupil pu ON pu.id = p.pupil_id LEFT JOIN partner pr ON pr.id = t.partner_id",
        now = now_us_sql(backend)
    )
}

async fn ticket_where<C: ConnectionTrait>(db: &C, clause: &str, values: Vec<Value>) -> Result<Option<Ticket>> {
    let backend = db.get_database_backend();
    let sql = format!("{} WHERE {clause}", ticket_select(backend));
    Ok(Ticket::find_by_statement(stmt(backend, &sql, values)).one(db).await?)
}

/// What a parent asks for.
#[derive(Clone, Debug)]
pub struct IssueTicket {
    pub pass_id: Uuid,
    pub wallet: Wallet,
    pub amount: Cents,
    /// `None`: a bearer ticket, for any approved partner of the wallet.
    pub partner_id: Option<Uuid>,
    pub idempotency_key: String,
}

/// Issues a ticket: holds `amount` on the wallet until the ticket's validity (the policy's
/// days, never past the validation deadline). Returns the ticket and whether it is a replay.
pub async fn issue_ticket(
    db: &DatabaseConnection,
    keys: &TicketKeys,
    data_key: &DataKey,
    account: Uuid,
    input: &IssueTicket,
) -> Result<(Ticket, bool)> {
    check_key(&input.idempotency_key)?;
    let pass = pass_for_parent(db, account, input.pass_id).await?;
    if let Some(partner) = input.partner_id {
        check_partner(db, partner, pass.funder_id, input.wallet).await?;
    }
    let policy = get_campaign(db, pass.campaign_id).await?.policy;
    let now = now_us(db).await?;
    let validity_us = i64::from(policy.ticket_validity_days) * 86_400_000_000;
    let until = pass.validation_deadline_us.map_or(now + validity_us, |d| d.min(now + validity_us));
    let timeout_ms = ((until - now) / 1000).max(0);
    let (wallet, clearing) = accounts(db, &pass, input.wallet, outstanding(&pass)).await?;
    let kid = keys.current(db, data_key).await?;
    let request = json!({ "issue_ticket": { "pass": pass.id, "wallet": input.wallet, "amount": input.amount,
        "partner": input.partner_id } });
    let op = Operation::new(
        SpendCaller::Parent { account }.key_scope(),
        &input.idempotency_key,
        vec![Leg::Hold {
            kind: TransferKind::Ticket,
            debit: wallet,
            credit: clearing,
            amount: input.amount,
            timeout_ms,
        }],
    )
    .with_request(request)
    .with_events(vec![pass_changed(pass.id, "ticket_issued")]);
    let (funder, pass_id, wallet_name, amount, partner) =
        (pass.funder_id, pass.id, input.wallet, input.amount, input.partner_id);
    let outcome = execute_with(db, &op, &move |txn, outcome| {
        let kid = kid.clone();
        Box::pin(async move {
            let hold = outcome.transfers.first().ok_or_else(|| LedgerError::Invalid("no hold".into()))?;
            let sql = "INSERT INTO ticket (id, code, pass_id, funder_id, wallet, amount, partner_id, hold_id, kid, \
                       issued_by, valid_until_us, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
            let values: Vec<Value> = vec![
                Uuid::now_v7().into(),
                new_ticket_code().into(),
                pass_id.into(),
                funder.into(),
                wallet_name.into(),
                amount.0.into(),
                partner.into(),
                hold.id.into(),
                kid.into(),
                account.into(),
                hold.expires_at_us.unwrap_or(outcome.created_at_us).into(),
                outcome.created_at_us.into(),
            ];
            txn.execute_raw(stmt(txn.get_database_backend(), sql, values)).await?;
            Ok(())
        })
    })
    .await?;
    let hold = outcome.transfers.first().map(|t| t.id).ok_or(Error::NotFound("ticket"))?;
    let ticket = ticket_where(db, "t.hold_id = $1", vec![hold.into()]).await?.ok_or(Error::NotFound("ticket"))?;
    Ok((ticket, outcome.replayed))
}

/// 10 characters of Crockford's base 32 (no I, L, O, U): 50 random bits, read aloud or typed
/// at a desk without confusion.
fn new_ticket_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bits: u64 = rand::random();
    (0..10).map(|i| char::from(ALPHABET[((bits >> (i * 5)) & 31) as usize])).collect()
}

/// A typed code: case, spaces and dashes ignored, the letters Crockford reads as digits mapped.
pub(super) fn normalize_code(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    (code.len() == 10 && code.chars().all(|c| c.is_ascii_alphanumeric() && c != 'U')).then_some(code)
}

/// Cancels a ticket of the parent's child: the hold is voided (after the generation deadline
/// the credit goes to the campaign's expired credit). A ticket already redeemed, cancelled or
/// expired is `TICKET_NOT_REDEEMABLE`... except a repeated cancel, which answers the same.
pub async fn cancel_ticket(db: &DatabaseConnection, account: Uuid, ticket: Uuid) -> Result<Ticket> {
    let found = ticket_where(
        db,
        "t.id = $1 AND EXISTS (SELECT 1 FROM family_link l WHERE l.pupil_id = p.pupil_id AND l.account_id = $2 \
         AND l.revoked_at_us IS NULL)",
        vec![ticket.into(), account.into()],
    )
    .await?
    .ok_or(Error::NotFound("ticket"))?;
    let pass = pass_by_id(db, found.pass_id).await?;
    let op = Operation::new(
        SpendCaller::Parent { account }.key_scope(),
        format!("cancel-ticket:{ticket}"),
        vec![Leg::Void { hold: found.hold_id }],
    )
    .with_events(vec![pass_changed(pass.id, "ticket_cancelled")]);
    execute_with(db, &op, &|_, _| Box::pin(async { Ok(()) })).await.map_err(ticket_refusal)?;
    ticket_where(db, "t.id = $1", vec![ticket.into()]).await?.ok_or(Error::NotFound("ticket"))
}

/// A hold that is no longer pending, or past its time: the ticket cannot be used any more.
pub(super) fn ticket_refusal(e: LedgerError) -> Error {
    match e {
        LedgerError::Rejected(Rejection::HoldNotPending | Rejection::HoldExpired) => Error::TicketNotRedeemable,
        other => other.into(),
    }
}

/// The tickets of a pass, newest first; `status` keeps one state.
pub async fn list_tickets<C: ConnectionTrait>(
    db: &C,
    pass: Uuid,
    status: Option<TicketStatus>,
    page: &Page,
) -> Result<Vec<Ticket>> {
    let (at, id) = before(page);
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT * FROM ({}) x WHERE x.pass_id = $1 AND (x.created_at_us < $2 OR (x.created_at_us = $2 AND x.id < $3)) \
         AND ($4 = '' OR x.status = $4) ORDER BY x.created_at_us DESC, x.id DESC LIMIT $5",
        ticket_select(backend)
    );
    let status = status.map(|s| s.to_string()).unwrap_or_default();
    let values: [Value; 5] = [pass.into(), at.into(), id.into(), status.into(), (page.first as i64).into()];
    Ok(Ticket::find_by_statement(stmt(backend, &sql, values)).all(db).await?)
}

/// The newest `first` tickets of each of these passes (of one status, if given), in one
/// statement: the home screen's open tickets of every child at once.
pub async fn latest_tickets<C: ConnectionTrait>(
    db: &C,
    passes: &[Uuid],
    status: Option<TicketStatus>,
    first: u64,
) -> Result<Vec<Ticket>> {
    if passes.is_empty() {
        return Ok(vec![]);
    }
    let backend = db.get_database_backend();
    let (list, ids) = crate::db::in_ids(backend, "x.pass_id", 3, passes);
    // PostgreSQL plans this statement once for lists of any length (one array parameter) and
    // guesses ten passes; with the few thousand holds of `spending-bench` it then hashed the
    // whole hold and pass tables on every call (1.3 ms, half the home query's database
    // time). Asked pass by pass (a LATERAL join on the list), each level is an index lookup
    // whatever the statistics: 0.1 ms. SQLite has no LATERAL, and walks the indexes anyway.
    //
    // Open tickets (the home screen's) are pending holds, and a wallet holds money exactly
    // while it has one (the ledger's `debits_pending`, checked by the audit). A pass with
    // nothing held has no open ticket, which two lookups of its wallets tell without reading
    // its tickets, one by one, to compute their status.
    let tickets = ticket_select(backend);
    let held = |pass: &str| {
        format!(
            "($2 <> 'issued' OR EXISTS (SELECT 1 FROM ledger_account a WHERE a.owner_id = {pass} \
             AND a.kind = 'pass_wallet' AND a.debits_pending > 0))"
        )
    };
    let sql = if backend == sea_orm::DbBackend::Postgres {
        format!(
            "SELECT y.* FROM unnest(CAST($3 AS uuid[])) AS q(pass_id) CROSS JOIN LATERAL \
             (SELECT * FROM ({tickets}) x WHERE x.pass_id = q.pass_id AND ($2 = '' OR x.status = $2) AND {} \
             ORDER BY x.created_at_us DESC, x.id DESC LIMIT $1) y ORDER BY y.pass_id, y.created_at_us DESC, y.id DESC",
            held("q.pass_id")
        )
    } else {
        format!(
            "SELECT * FROM (SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.pass_id ORDER BY x.created_at_us DESC, x.id DESC) \
             AS rn FROM ({tickets}) x WHERE {list} AND ($2 = '' OR x.status = $2) AND {}) y WHERE y.rn <= $1 \
             ORDER BY y.pass_id, y.created_at_us DESC, y.id DESC",
            held("x.pass_id")
        )
    };
    let mut values: Vec<Value> = vec![(first as i64).into(), status.map(|s| s.to_string()).unwrap_or_default().into()];
    values.extend(ids);
    Ok(Ticket::find_by_statement(stmt(backend, &sql, values)).all(db).await?)
}
