//! `upsertCampaign`, `runCampaignGrant`, `setEligibility`, `campaigns`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use passerelle_domain::Cents;
use passerelle_domain::campaign::{self, Policy, WalletAmounts};
use passerelle_domain::eligibility::{self, EligibilityRow};
use passerelle_domain::grant::GrantSummary;
use passerelle_domain::ledger::Wallet;
use passerelle_domain::usecase::recompute_and_grant;
use sea_orm::DatabaseConnection;

use crate::access::{ADMINS, ANY_STAFF, ELIGIBILITY_WRITERS, StaffOnly, require_staff, require_staff_reauthenticated};
use crate::error::ApiResult;
use crate::scalars::Money;
use crate::{GqlWallet, parse_id};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "GradeLevel", remote = "passerelle_domain::ids::GradeLevel")]
pub enum GqlGrade {
    Sixieme,
    Cinquieme,
    Quatrieme,
    Troisieme,
    Other,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "passerelle_domain::campaign::TerritoryRule")]
pub enum Territory {
    School,
    Residence,
    SchoolOrResidence,
}

/// What the eligibility rules say about a pupil, before any staff decision.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ComputedEligibility", remote = "passerelle_domain::eligibility::Computed")]
pub enum GqlComputed {
    Eligible,
    Ineligible,
    /// Data is missing: a staff member decides.
    Review,
}

#[derive(InputObject)]
pub struct WalletAmountInput {
    pub wallet: GqlWallet,
    pub base: Money,
    pub boursier: Money,
}

#[derive(InputObject)]
pub struct CampaignInput {
    pub funder_id: ID,
    /// The starting year: 2026 for 2026-27.
    pub school_year: i32,
    pub name: String,
    pub wallets: Vec<WalletAmountInput>,
    pub eligible_grades: Vec<GqlGrade>,
    pub max_age: Option<u8>,
    pub territory: Territory,
    pub departement: String,
    pub opens_on: NaiveDate,
    pub generation_deadline: NaiveDate,
    pub validation_deadline: NaiveDate,
    /// How long a ticket stays valid once issued (default 30 days).
    pub ticket_validity_days: Option<u16>,
}

#[derive(SimpleObject)]
pub struct WalletAmount {
    pub wallet: GqlWallet,
    pub base: Money,
    pub boursier: Money,
}

#[derive(SimpleObject)]
pub struct Campaign {
    pub id: ID,
    pub funder_id: ID,
    pub school_year: i32,
    pub name: String,
    pub policy_version: i32,
    pub wallets: Vec<WalletAmount>,
    pub eligible_grades: Vec<GqlGrade>,
    pub max_age: Option<u8>,
    pub departement: String,
    pub opens_on: NaiveDate,
    pub generation_deadline: NaiveDate,
    pub validation_deadline: NaiveDate,
}

impl From<campaign::Campaign> for Campaign {
    fn from(c: campaign::Campaign) -> Self {
        let p = c.policy;
        Campaign {
            id: ID(c.id.to_string()),
            funder_id: ID(c.funder_id.to_string()),
            school_year: c.school_year,
            name: c.name,
            policy_version: c.policy_version,
            wallets: p
                .wallets
                .iter()
                .map(|w| WalletAmount { wallet: w.wallet.into(), base: Money(w.base), boursier: Money(w.boursier) })
                .collect(),
            eligible_grades: p.eligible_grades.iter().map(|g| (*g).into()).collect(),
            max_age: p.max_age,
            departement: p.departement,
            opens_on: p.opens_on,
            generation_deadline: p.generation_deadline,
            validation_deadline: p.validation_deadline,
        }
    }
}

#[derive(SimpleObject)]
pub struct Eligibility {
    pub pupil_id: ID,
    pub campaign_id: ID,
    pub eligible: bool,
    /// What the rules say.
    pub computed: GqlComputed,
    pub reasons: Vec<String>,
    pub override_reason: Option<String>,
    pub override_author: Option<String>,
}

impl From<EligibilityRow> for Eligibility {
    fn from(e: EligibilityRow) -> Self {
        Eligibility {
            pupil_id: ID(e.pupil_id.to_string()),
            campaign_id: ID(e.campaign_id.to_string()),
            eligible: e.eligible,
            computed: e.computed.into(),
            reasons: e.reasons,
            override_reason: e.override_reason,
            override_author: e.override_author,
        }
    }
}

#[derive(SimpleObject)]
pub struct GrantRun {
    pub passes: u64,
    pub passes_created: u64,
    pub credits: u64,
    pub credited_amount: Money,
    pub already_done: u64,
    pub refused: u64,
}

impl From<GrantSummary> for GrantRun {
    fn from(g: GrantSummary) -> Self {
        GrantRun {
            passes: g.passes,
            passes_created: g.passes_created,
            credits: g.credits,
            credited_amount: Money(Cents(g.credited_cents)),
            already_done: g.already_done,
            refused: g.refused,
        }
    }
}

#[derive(InputObject)]
pub struct SetEligibilityInput {
    pub pupil_id: ID,
    pub campaign_id: ID,
    pub eligible: bool,
    pub reason: String,
}

#[derive(Default)]
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
    /// The campaigns of a funder, newest first.
    #[graphql(guard = "StaffOnly")]
    async fn campaigns(&self, ctx: &Context<'_>, funder_id: ID) -> ApiResult<Vec<Campaign>> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let funder = parse_id(&funder_id, "funderId")?;
        require_staff(ctx, funder, ANY_STAFF)?;
        Ok(campaign::list_campaigns(db, funder).await?.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
    /// Creates or changes the campaign of (funder, school year); a changed policy is a new version.
    #[graphql(guard = "StaffOnly")]
    async fn upsert_campaign(&self, ctx: &Context<'_>, input: CampaignInput) -> ApiResult<Campaign> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let policy = Policy {
            wallets: input
                .wallets
                .iter()
                .map(|w| WalletAmounts { wallet: Wallet::from(w.wallet), base: w.base.0, boursier: w.boursier.0 })
                .collect(),
            eligible_grades: input.eligible_grades.iter().map(|g| (*g).into()).collect(),
            max_age: input.max_age,
            territory: input.territory.into(),
            departement: input.departement.trim().to_owned(),
            opens_on: input.opens_on,
            generation_deadline: input.generation_deadline,
            validation_deadline: input.validation_deadline,
            ticket_validity_days: input
                .ticket_validity_days
                .unwrap_or(passerelle_domain::campaign::DEFAULT_TICKET_VALIDITY_DAYS),
            request_targets: Vec::new(),
        };
        let funder = parse_id(&input.funder_id, "funderId")?;
        require_staff_reauthenticated(ctx, funder, ADMINS).await?;
        let c = campaign::upsert_campaign(db, funder, input.school_year, &input.name, &policy, "back-office").await?;
        Ok(c.into())
    }

    /// Recomputes eligibility, then creates passes and credits every eligible pupil once.
    #[graphql(guard = "StaffOnly")]
    async fn run_campaign_grant(&self, ctx: &Context<'_>, campaign_id: ID) -> ApiResult<GrantRun> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let id = parse_id(&campaign_id, "campaignId")?;
        require_staff_reauthenticated(ctx, campaign::get_campaign(db, id).await?.funder_id, ADMINS).await?;
        Ok(recompute_and_grant(db, id, &|_, _| {}).await?.grant.into())
    }

    /// A staff decision on a pupil's eligibility, with its reason; survives re-imports.
    #[graphql(guard = "StaffOnly")]
    async fn set_eligibility(&self, ctx: &Context<'_>, input: SetEligibilityInput) -> ApiResult<Eligibility> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let pupil = parse_id(&input.pupil_id, "pupilId")?;
        let campaign = parse_id(&input.campaign_id, "campaignId")?;
        let funder = campaign::get_campaign(db, campaign).await?.funder_id;
        require_staff_reauthenticated(ctx, funder, ELIGIBILITY_WRITERS).await?;
        let author = crate::access::actor(ctx).label;
        let row = eligibility::set_eligibility(db, pupil, campaign, input.eligible, &input.reason, &author).await?;
        Ok(row.into())
    }
}
