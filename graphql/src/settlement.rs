//! Reimbursing partners: their bank details, settlement batches and their exports (staff), and
//! what a partner is paid (`reimbursements`).
//!
//! Staff act on their funder only (`FORBIDDEN` elsewhere, like the other back-office
//! operations); decisions that send money somewhere (bank details, the treasury account,
//! approval) want a recent re-authentication.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use passerelle_domain::Cents;
use passerelle_domain::auth::StaffRole;
use passerelle_domain::ids::Iban;
use passerelle_domain::partner::{self, BankDetails, BankDetailsInput};
use passerelle_domain::settlement::{self, CreateBatch, TreasuryInput};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::access::{ANY_STAFF, StaffOnly, actor, caller, partner_scope, require_staff, require_staff_reauthenticated};
use crate::error::ApiResult;
use crate::pagination::{connection, keyset};
use crate::redeem::PartnerRef;
use crate::wallet::time;
use crate::{Money, parse_id};

/// Who pays partners and keeps their bank details.
const SETTLERS: &[StaffRole] = &[StaffRole::Admin, StaffRole::FinanceOfficer];

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "SettlementStatus", remote = "passerelle_domain::settlement::BatchStatus")]
pub enum GqlBatchStatus {
    /// Made, not approved: the money has not left.
    Draft,
    /// Approved: the transfers are on their way.
    Approved,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "SettlementSchedule", remote = "passerelle_domain::settlement::Schedule")]
pub enum GqlSchedule {
    SemiMonthly,
    Monthly,
}

/// One partner's transfer in a batch.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SettlementLine {
    pub id: ID,
    pub batch_id: ID,
    pub partner: PartnerRef,
    /// What is transferred: redeemed minus refunded.
    pub amount: Money,
    pub redeemed_amount: Money,
    pub refunded_amount: Money,
    /// Redemptions and refunds settled by this line.
    pub item_count: i32,
    pub status: GqlBatchStatus,
    /// The day the bank is asked to execute the transfer.
    pub execution_date: NaiveDate,
    pub account_holder: String,
    /// The IBAN paid, masked (`FR76…0189`).
    pub iban_masked: String,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    key: (Uuid, Uuid),
}

impl From<settlement::SettlementLine> for SettlementLine {
    fn from(l: settlement::SettlementLine) -> Self {
        SettlementLine {
            id: ID(l.id.to_string()),
            batch_id: ID(l.batch_id.to_string()),
            partner: PartnerRef { id: ID(l.partner_id.to_string()), name: l.partner_name },
            amount: Money(l.amount),
            redeemed_amount: Money(Cents(l.redeemed_cents)),
            refunded_amount: Money(Cents(l.refunded_cents)),
            item_count: l.items,
            status: l.status.into(),
            execution_date: l.execution_date,
            account_holder: l.account_holder,
            iban_masked: Iban::parse(&l.iban).map(|i| i.masked()).unwrap_or_default(),
            created_at: time(l.created_at_us),
            key: (l.batch_id, l.partner_id),
        }
    }
}

#[ComplexObject]
impl SettlementLine {
    /// The line's redemptions and refunds as CSV (`;`-separated).
    async fn statement_csv(&self, ctx: &Context<'_>) -> ApiResult<String> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let rows = settlement::statement_rows(db, self.key.0, Some(self.key.1)).await?;
        Ok(settlement::statement_csv(&rows)?)
    }
}

/// A settlement batch of a funder.
pub struct SettlementBatch(settlement::SettlementBatch);

#[Object]
impl SettlementBatch {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn funder_id(&self) -> ID {
        ID(self.0.funder_id.to_string())
    }

    /// The last day whose redemptions and refunds it settles.
    async fn cutoff(&self) -> NaiveDate {
        self.0.cutoff
    }

    async fn status(&self) -> GqlBatchStatus {
        self.0.status.into()
    }

    async fn execution_date(&self) -> NaiveDate {
        self.0.execution_date
    }

    async fn total_amount(&self) -> Money {
        Money(self.0.total)
    }

    async fn partner_count(&self) -> i32 {
        self.0.partners
    }

    async fn item_count(&self) -> i32 {
        self.0.items
    }

    /// Partners owed money but not paid in this batch (net not positive, or bank details not
    /// validated): their items wait for the next one.
    async fn carried_partner_count(&self) -> i32 {
        self.0.carried_partners
    }

    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        time(self.0.created_at_us)
    }

    async fn approved_by(&self) -> Option<&str> {
        self.0.approved_by.as_deref()
    }

    async fn approved_at(&self) -> Option<DateTime<Utc>> {
        self.0.approved_at_us.map(time)
    }

    async fn lines(&self, ctx: &Context<'_>) -> ApiResult<Vec<SettlementLine>> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(settlement::batch_lines(db, self.0.id).await?.into_iter().map(Into::into).collect())
    }

    /// The SEPA credit transfer file (`pain.001.001.03`) for the funder's bank. A bulk export of
    /// bank details: a recent re-authentication is required (security.md A6).
    async fn sepa_xml(&self, ctx: &Context<'_>) -> ApiResult<String> {
        require_staff_reauthenticated(ctx, self.0.funder_id, ANY_STAFF).await?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(settlement::batch_sepa_xml(db, self.0.id).await?)
    }

    /// The statement as CSV: every partner's, or one partner's (re-authenticated, like the file).
    async fn statement_csv(&self, ctx: &Context<'_>, partner_id: Option<ID>) -> ApiResult<String> {
        require_staff_reauthenticated(ctx, self.0.funder_id, ANY_STAFF).await?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let partner = partner_id.map(|p| parse_id(&p, "partnerId")).transpose()?;
        Ok(settlement::batch_statement_csv(db, self.0.id, partner).await?)
    }
}

/// A partner's legal identity and bank details, for staff.
#[derive(SimpleObject)]
pub struct PartnerBankDetails {
    pub partner_id: ID,
    pub legal_name: String,
    pub siret: String,
    pub iban: String,
    pub bic: Option<String>,
    pub account_holder: String,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
    /// Only validated details are paid; a new IBAN needs a validation again.
    pub validated: bool,
    pub validated_by: Option<String>,
    pub validated_at: Option<DateTime<Utc>>,
}

impl From<BankDetails> for PartnerBankDetails {
    fn from(d: BankDetails) -> Self {
        PartnerBankDetails {
            partner_id: ID(d.partner_id.to_string()),
            validated: d.is_validated(),
            legal_name: d.legal_name,
            siret: d.siret.as_str().to_owned(),
            iban: d.iban.as_str().to_owned(),
            bic: d.bic.map(|b| b.as_str().to_owned()),
            account_holder: d.account_holder,
            set_by: d.set_by,
            set_at: time(d.set_at_us),
            validated_by: d.validated_by,
            validated_at: d.validated_at_us.map(time),
        }
    }
}

#[derive(InputObject)]
pub struct PartnerBankDetailsInput {
    pub partner_id: ID,
    pub legal_name: String,
    pub siret: String,
    pub iban: String,
    pub bic: Option<String>,
    pub account_holder: String,
}

#[derive(InputObject)]
pub struct ValidatePartnerBankDetailsInput {
    pub partner_id: ID,
    /// The IBAN the validator checked: refused (`CONFLICT`) if it changed meanwhile.
    pub iban: String,
}

#[derive(InputObject)]
pub struct CreateSettlementBatchInput {
    pub funder_id: ID,
    /// The last day (Europe/Paris) to settle; at most today.
    pub cutoff: NaiveDate,
}

#[derive(InputObject)]
pub struct FunderSettlementAccountInput {
    pub funder_id: ID,
    /// The debtor's name on the transfers (70 characters at most).
    pub name: String,
    pub iban: String,
    pub bic: String,
    pub schedule: Option<GqlSchedule>,
}

#[derive(SimpleObject)]
pub struct FunderSettlementAccount {
    pub funder_id: ID,
    pub name: String,
    pub iban_masked: String,
    pub bic: String,
    pub schedule: GqlSchedule,
}

/// `FORBIDDEN` for staff who settle for no funder, before an object is looked up: whether an id
/// exists is not theirs to learn. (The funder's own check follows the lookup.)
fn any_settler(ctx: &Context<'_>) -> ApiResult<()> {
    match caller(ctx) {
        Some(p) if !p.staff_roles.iter().any(|(_, role)| SETTLERS.contains(role)) => {
            Err(passerelle_domain::Error::Forbidden.into())
        }
        _ => Ok(()),
    }
}

/// The funder of a partner, checked against the caller's roles (and a recent re-authentication).
async fn partner_settler(ctx: &Context<'_>, partner: Uuid) -> ApiResult<()> {
    any_settler(ctx)?;
    let db = ctx.data_unchecked::<DatabaseConnection>();
    let funder = partner::partner_funder(db, partner).await?;
    require_staff_reauthenticated(ctx, funder, SETTLERS).await
}

#[derive(Default)]
pub struct SettlementQuery;

#[Object]
impl SettlementQuery {
    /// A settlement batch, with its lines and exports (staff of its funder).
    #[graphql(guard = "StaffOnly")]
    async fn settlement_batch(&self, ctx: &Context<'_>, id: ID) -> ApiResult<SettlementBatch> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let batch = settlement::get_settlement_batch(db, parse_id(&id, "id")?).await?;
        require_staff(ctx, batch.funder_id, ANY_STAFF)?;
        Ok(SettlementBatch(batch))
    }

    /// What the calling partner is paid, newest first: each transfer, its status and date.
    async fn reimbursements(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, SettlementLine, EmptyFields, EmptyFields>> {
        let partner = partner_scope(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let page = keyset(first, after.as_deref())?;
        let rows = settlement::partner_lines(db, partner, &page).await?;
        Ok(connection(&page, rows, |l| (l.created_at_us, l.id), SettlementLine::from))
    }
}

#[derive(Default)]
pub struct SettlementMutation;

#[Object]
impl SettlementMutation {
    /// Sets a partner's legal identity and bank details. A new IBAN, BIC or holder must be
    /// validated again (by another staff member) before the partner is paid.
    #[graphql(guard = "StaffOnly")]
    async fn set_partner_bank_details(
        &self,
        ctx: &Context<'_>,
        input: PartnerBankDetailsInput,
    ) -> ApiResult<PartnerBankDetails> {
        let id = parse_id(&input.partner_id, "partnerId")?;
        partner_settler(ctx, id).await?;
        let details = BankDetailsInput {
            legal_name: input.legal_name,
            siret: input.siret,
            iban: input.iban,
            bic: input.bic,
            account_holder: input.account_holder,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(partner::set_partner_bank_details(db, id, &details, &actor(ctx)).await?.into())
    }

    /// Validates a partner's bank details (not by the staff member who entered them).
    #[graphql(guard = "StaffOnly")]
    async fn validate_partner_bank_details(
        &self,
        ctx: &Context<'_>,
        input: ValidatePartnerBankDetailsInput,
    ) -> ApiResult<PartnerBankDetails> {
        let id = parse_id(&input.partner_id, "partnerId")?;
        partner_settler(ctx, id).await?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(partner::validate_partner_bank_details(db, id, &input.iban, &actor(ctx)).await?.into())
    }

    /// Sets the funder's treasury account (the debtor of its SEPA files) and schedule.
    #[graphql(guard = "StaffOnly")]
    async fn set_funder_settlement_account(
        &self,
        ctx: &Context<'_>,
        input: FunderSettlementAccountInput,
    ) -> ApiResult<FunderSettlementAccount> {
        let funder = parse_id(&input.funder_id, "funderId")?;
        require_staff_reauthenticated(ctx, funder, crate::access::ADMINS).await?;
        let request = TreasuryInput {
            name: input.name,
            iban: input.iban,
            bic: input.bic,
            schedule: input.schedule.map(Into::into),
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let s = settlement::set_funder_settlement(db, funder, &request).await?;
        let t = s.treasury.ok_or_else(|| passerelle_domain::Error::NotFound("treasury account"))?;
        Ok(FunderSettlementAccount {
            funder_id: ID(s.funder_id.to_string()),
            name: t.name,
            iban_masked: t.iban.masked(),
            bic: t.bic.as_str().to_owned(),
            schedule: s.schedule.into(),
        })
    }

    /// Makes a draft batch of everything owed up to `cutoff` and not settled yet.
    #[graphql(guard = "StaffOnly")]
    async fn create_settlement_batch(
        &self,
        ctx: &Context<'_>,
        input: CreateSettlementBatchInput,
    ) -> ApiResult<SettlementBatch> {
        let funder = parse_id(&input.funder_id, "funderId")?;
        require_staff(ctx, funder, SETTLERS)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let request = CreateBatch { funder_id: funder, cutoff: input.cutoff };
        Ok(SettlementBatch(settlement::create_settlement_batch(db, &request, &actor(ctx), &|_, _| {}).await?))
    }

    /// Approves a batch: the partners' money leaves, and they are told. Approving again
    /// changes nothing.
    #[graphql(guard = "StaffOnly")]
    async fn approve_settlement_batch(&self, ctx: &Context<'_>, batch_id: ID) -> ApiResult<SettlementBatch> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let id = parse_id(&batch_id, "batchId")?;
        any_settler(ctx)?;
        let batch = settlement::get_settlement_batch(db, id).await?;
        require_staff_reauthenticated(ctx, batch.funder_id, SETTLERS).await?;
        Ok(SettlementBatch(settlement::approve_settlement_batch(db, id, &actor(ctx)).await?))
    }
}
