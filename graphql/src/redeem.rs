//! Clubs: checking and redeeming tickets, charging cards, refunds and the list of what they
//! received. (The directory parents pay from is in `directory.rs`.)
//!
//! Partner members and the partner's API clients reach the same operations, scoped to their
//! partner (`partner_scope`).

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::spending::{self, RedemptionSource};
use sea_orm::DatabaseConnection;

use crate::access::partner_scope;
use crate::error::ApiResult;
use crate::pagination::{connection, keyset};
use crate::wallet::{GqlTicketStatus, time};
use crate::{GqlWallet, Money, parse_id};

/// A partner named on a ticket, a payment or a history line.
#[derive(SimpleObject, Clone)]
#[graphql(name = "PartnerRef")]
pub struct PartnerRef {
    pub id: ID,
    pub name: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RedemptionStatus {
    Completed,
    PartiallyRefunded,
    Refunded,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RedemptionSource", remote = "passerelle_domain::spending::RedemptionSource")]
pub enum GqlRedemptionSource {
    Ticket,
    Payment,
    CardCharge,
}

/// Money a partner received.
#[derive(SimpleObject)]
pub struct Redemption {
    pub id: ID,
    pub wallet: GqlWallet,
    pub amount: Money,
    pub refunded_amount: Money,
    pub status: RedemptionStatus,
    pub source: GqlRedemptionSource,
    pub partner: PartnerRef,
    pub activity_id: Option<ID>,
    pub created_at: DateTime<Utc>,
}

impl From<spending::Redemption> for Redemption {
    fn from(r: spending::Redemption) -> Self {
        let status = match r.refunded_amount.0 {
            0 => RedemptionStatus::Completed,
            x if x >= r.amount.0 => RedemptionStatus::Refunded,
            _ => RedemptionStatus::PartiallyRefunded,
        };
        let _: RedemptionSource = r.source;
        Redemption {
            id: ID(r.id.to_string()),
            wallet: r.wallet.into(),
            amount: Money(r.amount),
            refunded_amount: Money(r.refunded_amount),
            status,
            source: r.source.into(),
            partner: PartnerRef { id: ID(r.partner_id.to_string()), name: r.partner_name },
            activity_id: r.activity_id.map(ID),
            created_at: time(r.created_at_us),
        }
    }
}

/// What a club sees of a ticket before redeeming it: the pupil's first name, nothing more.
#[derive(SimpleObject)]
pub struct TicketCheck {
    pub code: String,
    pub wallet: GqlWallet,
    pub amount: Money,
    pub status: GqlTicketStatus,
    pub valid_until: DateTime<Utc>,
    pub pupil_given_name: String,
}

#[derive(SimpleObject)]
pub struct RedemptionPayload {
    pub redemption: Redemption,
    pub replayed: bool,
}

#[derive(InputObject)]
pub struct RedeemTicketInput {
    pub code: String,
    /// At most the ticket's amount (default: all of it); the rest goes back to the family.
    pub amount: Option<Money>,
    pub activity_id: Option<ID>,
    /// Made when the ticket was scanned, so a redemption queued offline is sent once.
    pub idempotency_key: String,
}

#[derive(InputObject)]
pub struct ChargeCardInput {
    pub card_number: String,
    pub pin: String,
    pub wallet: GqlWallet,
    pub amount: Money,
    pub activity_id: Option<ID>,
    pub idempotency_key: String,
}

#[derive(InputObject)]
pub struct RefundRedemptionInput {
    pub redemption_id: ID,
    pub amount: Money,
    pub reason: Option<String>,
    pub idempotency_key: String,
}

#[derive(Default)]
pub struct RedeemQuery;

#[Object]
impl RedeemQuery {
    /// A ticket by its code, for the calling partner (named on it, or a bearer ticket of its
    /// wallet); anything else is `NOT_FOUND`.
    async fn lookup_ticket(&self, ctx: &Context<'_>, code: String) -> ApiResult<TicketCheck> {
        let partner = partner_scope(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let t = spending::lookup_ticket(db, partner, &code).await?;
        Ok(TicketCheck {
            code: t.code,
            wallet: t.wallet.into(),
            amount: Money(t.amount),
            status: t.status.into(),
            valid_until: time(t.valid_until_us),
            pupil_given_name: t.pupil_given_name,
        })
    }

    /// What the partner received, newest first, optionally between `from` and `to`.
    async fn redemptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> ApiResult<Connection<String, Redemption, EmptyFields, EmptyFields>> {
        let partner = partner_scope(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let page = keyset(first, after.as_deref())?;
        let (from, to) = (from.map(|t| t.timestamp_micros()), to.map(|t| t.timestamp_micros()));
        let rows = spending::list_redemptions(db, partner, from, to, &page).await?;
        Ok(connection(&page, rows, |r| (r.created_at_us, r.id), Redemption::from))
    }
}

#[derive(Default)]
pub struct RedeemMutation;

#[Object]
impl RedeemMutation {
    /// Redeems a ticket for the calling partner, up to its amount (the rest goes back).
    async fn redeem_ticket(&self, ctx: &Context<'_>, input: RedeemTicketInput) -> ApiResult<RedemptionPayload> {
        let partner = partner_scope(ctx)?;
        let request = spending::RedeemTicket {
            code: input.code,
            amount: input.amount.map(|m| m.0),
            activity_id: input.activity_id.map(|a| a.0),
            idempotency_key: input.idempotency_key,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let (r, replayed) = spending::redeem_ticket(db, partner, &request).await?;
        Ok(RedemptionPayload { redemption: r.into(), replayed })
    }

    /// Charges a card at the desk with its PIN; five wrong PINs in a row block the card.
    async fn charge_card(&self, ctx: &Context<'_>, input: ChargeCardInput) -> ApiResult<RedemptionPayload> {
        let partner = partner_scope(ctx)?;
        let request = spending::ChargeCard {
            card_number: input.card_number,
            pin: input.pin,
            wallet: input.wallet.into(),
            amount: input.amount.0,
            activity_id: input.activity_id.map(|a| a.0),
            idempotency_key: input.idempotency_key,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let (r, replayed) = spending::charge_card(db, partner, &request).await?;
        Ok(RedemptionPayload { redemption: r.into(), replayed })
    }

    /// Gives back part of a redemption (at most what is left): to the wallet, or to the
    /// campaign's expired credit after its generation deadline.
    async fn refund_redemption(&self, ctx: &Context<'_>, input: RefundRedemptionInput) -> ApiResult<RedemptionPayload> {
        let partner = partner_scope(ctx)?;
        let request = spending::RefundRedemption {
            redemption_id: parse_id(&input.redemption_id, "redemptionId")?,
            amount: input.amount.0,
            reason: input.reason,
            idempotency_key: input.idempotency_key,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let (r, replayed) = spending::refund_redemption(db, partner, &request).await?;
        Ok(RedemptionPayload { redemption: r.into(), replayed })
    }
}
