//! Clubs joining: the application (partner app), approval and suspension (back office).

use async_graphql::{Context, Enum, ID, InputObject, Object};
use passerelle_domain::partner::{self, Application, BankDetailsInput};
use sea_orm::DatabaseConnection;

use crate::access::signed_in;
use crate::error::ApiResult;
use crate::requests::Request;
use crate::{GqlWallet, parse_id};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PartnerKind", remote = "passerelle_domain::partner::PartnerKind")]
pub enum GqlPartnerKind {
    Association,
    Company,
    PublicBody,
}

#[derive(InputObject)]
pub struct PartnerApplicationInput {
    /// The funder (département) the club asks to join.
    pub funder_id: ID,
    /// The name families see.
    pub name: String,
    pub kind: GqlPartnerKind,
    pub categories: Vec<GqlWallet>,
    pub address: String,
    pub postcode: String,
    pub commune: String,
    pub commune_insee: String,
    pub lat: f64,
    pub lon: f64,
    pub contact_email: String,
    pub contact_phone: Option<String>,
    pub legal_name: String,
    /// 14 digits, Luhn-checked (La Poste's exception included).
    pub siret: String,
    /// Mod-97 checked.
    pub iban: String,
    pub bic: Option<String>,
    pub account_holder: String,
    /// The version of the convention the member read (`conventionVersion` must be the current one).
    pub convention_version: String,
    pub accept_convention: bool,
    pub message: Option<String>,
}

#[derive(InputObject)]
pub struct PartnerStatusInput {
    pub partner_id: ID,
    pub reason: String,
}

#[derive(Default)]
pub struct AffiliationMutation;

#[Object]
impl AffiliationMutation {
    /// A club's member (an account of kind partner member, not yet in a partner) applies: the
    /// partner is created pending, with its details, and an affiliation request goes to staff.
    async fn apply_for_affiliation(&self, ctx: &Context<'_>, input: PartnerApplicationInput) -> ApiResult<Request> {
        let applicant = signed_in(ctx)?;
        let application = Application {
            funder_id: parse_id(&input.funder_id, "funderId")?,
            name: input.name,
            kind: input.kind.into(),
            categories: input.categories.into_iter().map(Into::into).collect(),
            address: input.address,
            postcode: input.postcode,
            commune: input.commune,
            commune_insee: input.commune_insee,
            lat: input.lat,
            lon: input.lon,
            contact_email: input.contact_email,
            contact_phone: input.contact_phone,
            bank: BankDetailsInput {
                legal_name: input.legal_name,
                siret: input.siret,
                iban: input.iban,
                bic: input.bic,
                account_holder: input.account_holder,
            },
            convention_version: input.convention_version,
            accept_convention: input.accept_convention,
            message: input.message,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(partner::apply_for_affiliation(db, applicant, &application).await?.into())
    }

    /// Approves the partner's pending application (its request, approved like any other).
    async fn approve_partner(&self, ctx: &Context<'_>, partner_id: ID) -> ApiResult<crate::partner::Partner> {
        let staff = crate::requests_staff::staff_principal(ctx)?;
        let id = parse_id(&partner_id, "partnerId")?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(partner::approve_partner_application(db, staff, id).await?.into())
    }

    /// Stops an approved partner at once: no redemption, charge or new ticket (admins).
    async fn suspend_partner(
        &self,
        ctx: &Context<'_>,
        input: PartnerStatusInput,
    ) -> ApiResult<crate::partner::Partner> {
        set_suspended(ctx, input, true).await
    }

    /// Lets a suspended partner work again (admins).
    async fn reinstate_partner(
        &self,
        ctx: &Context<'_>,
        input: PartnerStatusInput,
    ) -> ApiResult<crate::partner::Partner> {
        set_suspended(ctx, input, false).await
    }
}

async fn set_suspended(
    ctx: &Context<'_>,
    input: PartnerStatusInput,
    suspended: bool,
) -> ApiResult<crate::partner::Partner> {
    let staff = crate::requests_staff::staff_principal(ctx)?;
    let id = parse_id(&input.partner_id, "partnerId")?;
    let db = ctx.data_unchecked::<DatabaseConnection>();
    Ok(partner::set_partner_suspended(db, staff, id, suspended, &input.reason).await?.into())
}
