//! Money a partner received — a redeemed ticket, a payment from the parent app, a card charge
//! — and its refunds.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde_json::json;
use uuid::Uuid;

use super::books::{SpendCaller, accounts, check_key, check_partner, expired_credit, pass_changed, payable};
use super::pass::{Pass, pass_by_id, pass_for_parent};
use super::{Page, before};
use crate::db::{now_us, stmt};
use crate::error::{Error, Result};
use crate::ledger::{
    Leg, Operation, Outcome, Rejection, RowInsert, TransferKind, Wallet, ensure_account, execute, execute_with,
};
use crate::money::Cents;

crate::stored_enum! {
    /// How the partner was paid (`redemption.source`).
    pub enum RedemptionSource {
        Ticket,
        Payment,
        CardCharge,
    }
}

/// Money a partner received, and what it refunded since.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Redemption {
    pub id: Uuid,
    pub partner_id: Uuid,
    pub partner_name: String,
    pub funder_id: Uuid,
    pub pass_id: Uuid,
    pub wallet: Wallet,
    pub source: RedemptionSource,
    pub ticket_id: Option<Uuid>,
    pub activity_id: Option<String>,
    pub amount: Cents,
    pub refunded_amount: Cents,
    pub op_id: Uuid,
    pub created_at_us: i64,
}

/// A redemption about to be written (its operation id comes from the ledger).
#[derive(Clone, Debug)]
pub(super) struct NewRedemption {
    id: Uuid,
    partner: Uuid,
    funder: Uuid,
    pass: Uuid,
    wallet: Wallet,
    source: RedemptionSource,
    ticket: Option<Uuid>,
    activity: Option<String>,
    amount: Cents,
}

impl Redemption {
    pub(super) fn new_row(
        partner: Uuid,
        funder: Uuid,
        pass: Uuid,
        wallet: Wallet,
        source: RedemptionSource,
        amount: Cents,
    ) -> NewRedemption {
        NewRedemption {
            id: Uuid::now_v7(),
            partner,
            funder,
            pass,
            wallet,
            source,
            ticket: None,
            activity: None,
            amount,
        }
    }
}

impl NewRedemption {
    pub(super) fn with_ticket(mut self, ticket: Uuid) -> Self {
        self.ticket = Some(ticket);
        self
    }

    pub(super) fn with_activity(mut self, activity: Option<String>) -> Self {
        self.activity = activity;
        self
    }

    /// The redemption this row became in `outcome`'s operation (not a replay: a replay's row is
    /// the first run's, read back).
    pub(super) fn written(self, outcome: &Outcome, partner_name: String) -> Redemption {
        Redemption {
            id: self.id,
            partner_id: self.partner,
            partner_name,
            funder_id: self.funder,
            pass_id: self.pass,
            wallet: self.wallet,
            source: self.source,
            ticket_id: self.ticket,
            activity_id: self.activity,
            amount: self.amount,
            refunded_amount: Cents(0),
            op_id: outcome.op_id,
            created_at_us: outcome.created_at_us,
        }
    }
}

/// The redemption row, written with the operation's money (`$1` its id, `$2` its time).
pub(super) fn redemption_row(row: NewRedemption) -> RowInsert {
    let sql = "INSERT INTO redemption (id, partner_id, funder_id, pass_id, wallet, source, ticket_id, activity_id, \
               amount, refunded_amount, op_id, created_at_us) VALUES ($3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $1, $2)";
    let values: Vec<Value> = vec![
        row.id.into(),
        row.partner.into(),
        row.funder.into(),
        row.pass.into(),
        row.wallet.into(),
        row.source.into(),
        row.ticket.into(),
        row.activity.into(),
        row.amount.0.into(),
    ];
    RowInsert { sql: sql.to_owned(), values }
}

const REDEMPTION_SELECT: &str = "SELECT r.id, r.partner_id, pr.name AS partner_name, r.funder_id, r.pass_id, r.wallet, \
    r.source, r.ticket_id, r.activity_id, r.amount, r.refunded_amount, r.op_id, r.created_at_us \
    FROM redemption r JOIN partner pr ON pr.id = r.partner_id";

pub(super) async fn redemption_by_op<C: ConnectionTrait>(db: &C, op: Uuid) -> Result<Redemption> {
    let sql = format!("{REDEMPTION_SELECT} WHERE r.op_id = $1");
    let found = Redemption::find_by_statement(stmt(db.get_database_backend(), &sql, [op.into()])).one(db).await?;
    found.ok_or(Error::NotFound("redemption"))
}

/// A parent's payment to a partner.
#[derive(Clone, Debug)]
pub struct PayPartner {
    pub pass_id: Uuid,
    pub wallet: Wallet,
    pub amount: Cents,
    pub partner_id: Uuid,
    pub activity_id: Option<String>,
    pub idempotency_key: String,
}

/// Pays a partner from a wallet of the parent's child, at once.
pub async fn pay_partner(db: &DatabaseConnection, account: Uuid, input: &PayPartner) -> Result<(Redemption, bool)> {
    check_key(&input.idempotency_key)?;
    let pass = pass_for_parent(db, account, input.pass_id).await?;
    check_partner(db, input.partner_id, pass.funder_id, input.wallet).await?;
    let caller = SpendCaller::Parent { account };
    let row = Redemption::new_row(
        input.partner_id,
        pass.funder_id,
        pass.id,
        input.wallet,
        RedemptionSource::Payment,
        input.amount,
    )
    .with_activity(input.activity_id.clone());
    spend(db, &caller, &pass, row, TransferKind::Payment, &input.idempotency_key).await
}

/// Moves `row.amount` from the wallet to the partner's payable and records the redemption, in
/// one operation.
pub(super) async fn spend(
    db: &DatabaseConnection,
    caller: &SpendCaller,
    pass: &Pass,
    row: NewRedemption,
    kind: TransferKind,
    key: &str,
) -> Result<(Redemption, bool)> {
    let (wallet, payable) = accounts(db, pass, row.wallet, payable(pass.funder_id, row.partner)).await?;
    let request = json!({ kind.to_string(): { "pass": pass.id, "wallet": row.wallet, "amount": row.amount,
        "partner": row.partner, "activity": row.activity } });
    let op = Operation::new(
        caller.key_scope(),
        key,
        vec![Leg::Transfer { kind, debit: wallet, credit: payable, amount: row.amount }],
    )
    .with_request(request)
    .with_events(vec![pass_changed(pass.id, &kind.to_string())])
    .with_rows(vec![redemption_row(row)]);
    let outcome = execute(db, &op).await?;
    Ok((redemption_by_op(db, outcome.op_id).await?, outcome.replayed))
}

/// What a club sends to refund.
#[derive(Clone, Debug)]
pub struct RefundRedemption {
    pub redemption_id: Uuid,
    pub amount: Cents,
    pub reason: Option<String>,
    pub idempotency_key: String,
}

/// Gives back part or all of what is left of a redemption: to the wallet while the campaign
/// still spends, to the campaign's expired credit after its generation deadline (the family
/// could not spend it any more). Returns the redemption as it is now.
pub async fn refund_redemption(
    db: &DatabaseConnection,
    partner: Uuid,
    input: &RefundRedemption,
) -> Result<(Redemption, bool)> {
    check_key(&input.idempotency_key)?;
    let sql = format!("{REDEMPTION_SELECT} WHERE r.id = $1 AND r.partner_id = $2");
    let values = [input.redemption_id.into(), partner.into()];
    let found = Redemption::find_by_statement(stmt(db.get_database_backend(), &sql, values)).one(db).await?;
    let redemption = found.ok_or(Error::NotFound("redemption"))?;
    if input.amount.0 <= 0 || input.amount > redemption.amount {
        return Err(Error::bad_input("amount", "between 0.01 and the amount paid"));
    }
    if input.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(Error::bad_input("reason", "at most 500 characters"));
    }
    let pass = pass_by_id(db, redemption.pass_id).await?;
    let now = now_us(db).await?;
    let closed = pass.generation_deadline_us.is_some_and(|d| d <= now);
    let (wallet, payable) = accounts(db, &pass, redemption.wallet, payable(pass.funder_id, partner)).await?;
    let credit =
        if closed { ensure_account(db, expired_credit(pass.funder_id, pass.campaign_id)).await? } else { wallet };
    let kind = if closed { TransferKind::Expiry } else { TransferKind::Refund };
    let request = json!({ "refund": { "redemption": redemption.id, "amount": input.amount, "reason": input.reason } });
    let op = Operation::new(
        SpendCaller::Partner { partner }.key_scope(),
        &input.idempotency_key,
        vec![Leg::Transfer { kind, debit: payable, credit, amount: input.amount }],
    )
    .with_request(request)
    .with_events(vec![pass_changed(pass.id, "refund")]);
    let (id, amount, funder) = (redemption.id, input.amount, redemption.funder_id);
    let outcome = execute_with(db, &op, &move |txn, outcome| {
        Box::pin(async move {
            let backend = txn.get_database_backend();
            let sql = "UPDATE redemption SET refunded_amount = refunded_amount + $2 \
                       WHERE id = $1 AND refunded_amount + $2 <= amount";
            let done = txn.execute_raw(stmt(backend, sql, [id.into(), amount.0.into()])).await?;
            if done.rows_affected() != 1 {
                return Err(Rejection::RefundExceedsRedemption.into());
            }
            // Each refund dated on its own: settlement deducts it from the batch of its day,
            // even when the redemption was paid in an earlier one.
            let sql = "INSERT INTO redemption_refund (id, redemption_id, partner_id, funder_id, amount, op_id, \
                       created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7)";
            let values: [Value; 7] = [
                Uuid::now_v7().into(),
                id.into(),
                partner.into(),
                funder.into(),
                amount.0.into(),
                outcome.op_id.into(),
                outcome.created_at_us.into(),
            ];
            txn.execute_raw(stmt(backend, sql, values)).await?;
            Ok(())
        })
    })
    .await?;
    let sql = format!("{REDEMPTION_SELECT} WHERE r.id = $1");
    let now = Redemption::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).one(db).await?;
    Ok((now.ok_or(Error::NotFound("redemption"))?, outcome.replayed))
}

/// A partner's redemptions, newest first, optionally between two instants (µs).
pub async fn list_redemptions<C: ConnectionTrait>(
    db: &C,
    partner: Uuid,
    from_us: Option<i64>,
    to_us: Option<i64>,
    page: &Page,
) -> Result<Vec<Redemption>> {
    let (at, id) = before(page);
    let sql = format!(
        "{REDEMPTION_SELECT} WHERE r.partner_id = $1 AND r.created_at_us >= $2 AND r.created_at_us < $3 \
         AND (r.created_at_us < $4 OR (r.created_at_us = $4 AND r.id < $5)) \
         ORDER BY r.created_at_us DESC, r.id DESC LIMIT $6"
    );
    let values: [Value; 6] = [
        partner.into(),
        from_us.unwrap_or(i64::MIN).into(),
        to_us.unwrap_or(i64::MAX).into(),
        at.into(),
        id.into(),
        (page.first as i64).into(),
    ];
    Ok(Redemption::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?)
}
