//! The parent app's Pass: a child's passes, balances, history and tickets; issuing and
//! cancelling tickets, paying a partner, the card's PIN and reporting it lost.
//!
//! Thin resolvers over `passerelle_domain::spending`: another family's pass or ticket is
//! `NOT_FOUND` there, never here.

use std::sync::Arc;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::Error;
use passerelle_domain::auth::{AccountKind, AuthConfig, Principal};
use passerelle_domain::identity::DataKey;
use passerelle_domain::spending::{self, TicketKeys};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::access::{SignedIn, signed_in};
use crate::error::{ApiError, ApiResult};
use crate::loaders::{LatestLines, LatestTickets, Loaders, PassWallets};
use crate::pagination::{connection, keyset};
use crate::redeem::{PartnerRef, Redemption};
use crate::{GqlWallet, Money, parse_id};

pub(crate) fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

pub(crate) fn parent<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    let p = signed_in(ctx)?;
    if p.account.kind == AccountKind::Parent { Ok(p) } else { Err(Error::Forbidden.into()) }
}

/// The keys signing tickets and the data key sealing their private halves (a server built
/// without them cannot issue tickets).
fn ticket_keys<'a>(ctx: &'a Context<'_>) -> Result<(&'a TicketKeys, &'a DataKey), ApiError> {
    let keys = ctx.data::<Arc<TicketKeys>>().map_err(|_| Error::NotFound("ticket keys"))?;
    let auth = ctx.data::<Arc<AuthConfig>>().map_err(|_| Error::NotFound("ticket keys"))?;
    Ok((keys, &auth.data_key))
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PassStatus", remote = "passerelle_domain::spending::PassStatus")]
pub enum GqlPassStatus {
    Active,
    Blocked,
    Replaced,
    Expired,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "TicketStatus", remote = "passerelle_domain::spending::TicketStatus")]
pub enum GqlTicketStatus {
    Issued,
    Redeemed,
    Cancelled,
    Expired,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "TransactionStatus", remote = "passerelle_domain::spending::TransactionStatus")]
pub enum GqlTransactionStatus {
    Pending,
    Posted,
    Released,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "TransactionKind", remote = "passerelle_domain::ledger::TransferKind")]
pub enum GqlTransactionKind {
    Grant,
    TopUp,
    Ticket,
    Payment,
    CardCharge,
    Refund,
    Expiry,
    Settlement,
    Correction,
}

/// The campaign a pass belongs to.
#[derive(SimpleObject)]
pub struct PassCampaign {
    pub id: ID,
    pub school_year: i32,
    /// Tickets, payments and card charges stop at the end of this instant.
    pub generation_deadline: Option<DateTime<Utc>>,
    /// Clubs can no longer redeem tickets after this instant.
    pub validation_deadline: Option<DateTime<Utc>>,
}

/// A child's Pass card for one campaign.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Pass {
    pub id: ID,
    pub number: String,
    pub status: GqlPassStatus,
    /// Whether a PIN was set (`setCardPin`): needed for card charges at a desk.
    pub has_pin: bool,
    pub campaign: PassCampaign,
    #[graphql(skip)]
    pub uuid: Uuid,
}

impl From<spending::Pass> for Pass {
    fn from(p: spending::Pass) -> Self {
        Pass {
            id: ID(p.id.to_string()),
            number: p.number,
            status: p.status.into(),
            has_pin: p.has_pin,
            campaign: PassCampaign {
                id: ID(p.campaign_id.to_string()),
                school_year: p.school_year,
                generation_deadline: p.generation_deadline_us.map(time),
                validation_deadline: p.validation_deadline_us.map(time),
            },
            uuid: p.id,
        }
    }
}

/// One wallet: `granted - spent - expired - held = available`.
#[derive(SimpleObject)]
pub struct WalletBalance {
    pub wallet: GqlWallet,
    pub granted: Money,
    pub available: Money,
    pub held: Money,
    pub spent: Money,
    pub expired: Money,
}

/// One line of a pass's history; `amount` is negative when money left the wallet.
#[derive(SimpleObject)]
pub struct PassTransaction {
    pub id: ID,
    pub kind: GqlTransactionKind,
    pub wallet: GqlWallet,
    pub amount: Money,
    pub status: GqlTransactionStatus,
    pub partner: Option<PartnerRef>,
    pub created_at: DateTime<Utc>,
}

/// A ticket: what the club scans (`qrPayload`) or types (`code`).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Ticket {
    pub id: ID,
    pub code: String,
    pub wallet: GqlWallet,
    pub amount: Money,
    pub status: GqlTicketStatus,
    /// Null for a bearer ticket.
    pub partner: Option<PartnerRef>,
    pub valid_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub inner: spending::Ticket,
}

impl From<spending::Ticket> for Ticket {
    fn from(t: spending::Ticket) -> Self {
        Ticket {
            id: ID(t.id.to_string()),
            code: t.code.clone(),
            wallet: t.wallet.into(),
            amount: Money(t.amount),
            status: t.status.into(),
            partner: t
                .partner_id
                .map(|id| PartnerRef { id: ID(id.to_string()), name: t.partner_name.clone().unwrap_or_default() }),
            valid_until: time(t.valid_until_us),
            created_at: time(t.created_at_us),
            inner: t,
        }
    }
}

#[ComplexObject]
impl Ticket {
    /// A compact JWS (EdDSA, `typ` "pass-ticket+jwt") with claims `jti code wallet amount
    /// partner exp iss`; keys at `GET /.well-known/jwks.json`. Partner apps verify it offline.
    async fn qr_payload(&self, ctx: &Context<'_>) -> ApiResult<String> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let (keys, data_key) = ticket_keys(ctx)?;
        Ok(self.inner.qr_payload(db, keys, data_key).await?)
    }
}

#[ComplexObject]
impl Pass {
    async fn wallets(&self, ctx: &Context<'_>) -> ApiResult<Vec<WalletBalance>> {
        let rows = ctx.data_unchecked::<Loaders>().load_one(PassWallets(self.uuid)).await?.unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|w| WalletBalance {
                wallet: w.wallet.into(),
                granted: Money(w.granted),
                available: Money(w.available),
                held: Money(w.held),
                spent: Money(w.spent),
                expired: Money(w.expired),
            })
            .collect())
    }

    /// The history, newest first.
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, PassTransaction, EmptyFields, EmptyFields>> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let page = keyset(first, after.as_deref())?;
        let rows = match page.after {
            None => {
                ctx.data_unchecked::<Loaders>().load_one(LatestLines(self.uuid, page.first)).await?.unwrap_or_default()
            }
            Some(_) => spending::transactions(db, self.uuid, &page).await?,
        };
        Ok(connection(
            &page,
            rows,
            |t| (t.created_at_us, t.id),
            |t| PassTransaction {
                id: ID(t.id.to_string()),
                kind: t.kind.into(),
                wallet: t.wallet.into(),
                amount: Money(t.amount),
                status: t.status.into(),
                partner: t
                    .partner_id
                    .map(|id| PartnerRef { id: ID(id.to_string()), name: t.partner_name.unwrap_or_default() }),
                created_at: time(t.created_at_us),
            },
        ))
    }

    /// The tickets, newest first; `status` keeps one state.
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<GqlTicketStatus>,
    ) -> ApiResult<Connection<String, Ticket, EmptyFields, EmptyFields>> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let page = keyset(first, after.as_deref())?;
        let status = status.map(Into::into);
        let rows = match page.after {
            None => {
                let key = LatestTickets(self.uuid, status, page.first);
                ctx.data_unchecked::<Loaders>().load_one(key).await?.unwrap_or_default()
            }
            Some(_) => spending::list_tickets(db, self.uuid, status, &page).await?,
        };
        Ok(connection(&page, rows, |t| (t.created_at_us, t.id), Ticket::from))
    }
}

#[derive(InputObject)]
pub struct IssueTicketInput {
    pub pass_id: ID,
    pub wallet: GqlWallet,
    pub amount: Money,
    /// Omitted: a bearer ticket, for any approved partner of the wallet.
    pub partner_id: Option<ID>,
    pub idempotency_key: String,
}

#[derive(SimpleObject)]
pub struct TicketPayload {
    pub ticket: Ticket,
    pub replayed: bool,
}

#[derive(InputObject)]
pub struct PayPartnerInput {
    pub pass_id: ID,
    pub wallet: GqlWallet,
    pub amount: Money,
    pub partner_id: ID,
    pub activity_id: Option<ID>,
    pub idempotency_key: String,
}

#[derive(SimpleObject)]
pub struct PaymentPayload {
    pub redemption: Redemption,
    pub replayed: bool,
}

#[derive(InputObject)]
pub struct SetCardPinInput {
    pub pass_id: ID,
    /// 4 to 6 digits.
    pub pin: String,
    /// The parent's password, proved again.
    pub password: String,
}

#[derive(Default)]
pub struct WalletMutation;

#[Object]
impl WalletMutation {
    /// Reserves an amount of a wallet for a partner (or the bearer) until the ticket's
    /// validity; the club redeems it with its code or QR payload.
    #[graphql(guard = "SignedIn")]
    async fn issue_ticket(&self, ctx: &Context<'_>, input: IssueTicketInput) -> ApiResult<TicketPayload> {
        let p = parent(ctx)?;
        let request = spending::IssueTicket {
            pass_id: parse_id(&input.pass_id, "passId")?,
            wallet: input.wallet.into(),
            amount: input.amount.0,
            partner_id: input.partner_id.as_ref().map(|i| parse_id(i, "partnerId")).transpose()?,
            idempotency_key: input.idempotency_key,
        };
        let (keys, data_key) = ticket_keys(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let (ticket, replayed) = spending::issue_ticket(db, keys, data_key, p.account.id, &request).await?;
        Ok(TicketPayload { ticket: ticket.into(), replayed })
    }

    /// Cancels a ticket not used yet; its credit goes back to the wallet (to expired credit
    /// after the generation deadline).
    #[graphql(guard = "SignedIn")]
    async fn cancel_ticket(&self, ctx: &Context<'_>, ticket_id: ID) -> ApiResult<Ticket> {
        let p = parent(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(spending::cancel_ticket(db, p.account.id, parse_id(&ticket_id, "ticketId")?).await?.into())
    }

    /// Pays a partner from a wallet, at once.
    #[graphql(guard = "SignedIn")]
    async fn pay_partner(&self, ctx: &Context<'_>, input: PayPartnerInput) -> ApiResult<PaymentPayload> {
        let p = parent(ctx)?;
        let request = spending::PayPartner {
            pass_id: parse_id(&input.pass_id, "passId")?,
            wallet: input.wallet.into(),
            amount: input.amount.0,
            partner_id: parse_id(&input.partner_id, "partnerId")?,
            activity_id: input.activity_id.map(|a| a.0),
            idempotency_key: input.idempotency_key,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let (redemption, replayed) = spending::pay_partner(db, p.account.id, &request).await?;
        Ok(PaymentPayload { redemption: redemption.into(), replayed })
    }

    /// Sets the card's PIN (4–6 digits) for charges at a club's desk; needs the parent's
    /// password again.
    #[graphql(guard = "SignedIn")]
    async fn set_card_pin(&self, ctx: &Context<'_>, input: SetCardPinInput) -> ApiResult<Pass> {
        let p = parent(ctx)?;
        let auth = ctx.data::<Arc<AuthConfig>>().map_err(|_| Error::NotFound("auth"))?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let pass = parse_id(&input.pass_id, "passId")?;
        Ok(spending::set_card_pin(db, auth, p, pass, &input.pin, &input.password).await?.into())
    }

    /// Blocks the card at once (lost or stolen): no spending from it any more.
    #[graphql(guard = "SignedIn")]
    async fn report_lost_card(&self, ctx: &Context<'_>, pass_id: ID) -> ApiResult<Pass> {
        let p = parent(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(spending::report_lost_card(db, p.account.id, parse_id(&pass_id, "passId")?).await?.into())
    }
}
