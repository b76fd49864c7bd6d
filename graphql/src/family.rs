//! Parents: `requestChildLink`, `confirmChildLink`, `children`.
//!
//! A child is reachable only through a live, verified link; anything else is `NOT_FOUND`.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use passerelle_domain::Error;
use passerelle_domain::auth::{self, AccountKind, Principal};
use passerelle_domain::school::query::{PupilRow, list_pupils_by_ids};
use passerelle_domain::spending;
use uuid::Uuid;

use crate::loaders::{Loaders, ParentChildren, PupilPasses};
use crate::wallet::Pass;
use sea_orm::DatabaseConnection;

use crate::access::{SignedIn, client_ip, signed_in};
use crate::backoffice::GqlGrade;
use crate::error::{ApiError, ApiResult};
use crate::parse_id;

#[derive(InputObject)]
pub struct RequestChildLinkInput {
    pub uai: String,
    pub pupil_family_name: String,
    pub pupil_given_name: String,
    pub pupil_birth_date: NaiveDate,
}

#[derive(SimpleObject)]
pub struct ChildLinkChallenge {
    pub challenge_id: ID,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(SimpleObject)]
pub struct School {
    pub uai: Option<String>,
    pub name: Option<String>,
    pub commune: Option<String>,
}

/// A linked child, as the parent app shows it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Child {
    pub id: ID,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<NaiveDate>,
    pub school: School,
    pub class_name: Option<String>,
    pub grade_level: Option<GqlGrade>,
    pub boursier: Option<bool>,
    #[graphql(skip)]
    pub pupil: Uuid,
    /// The child's passes when the read that found the child brought them (`children`).
    #[graphql(skip)]
    pub passes: Option<Vec<spending::Pass>>,
}

impl Child {
    /// The child's passes, newest campaign first: those read with the child, or a batched load.
    async fn known_passes(&self, ctx: &Context<'_>) -> ApiResult<Vec<spending::Pass>> {
        match &self.passes {
            Some(passes) => Ok(passes.clone()),
            None => Ok(ctx.data_unchecked::<Loaders>().load_one(PupilPasses(self.pupil)).await?.unwrap_or_default()),
        }
    }
}

#[ComplexObject]
impl Child {
    /// The child's passes, newest campaign first.
    async fn passes(&self, ctx: &Context<'_>) -> ApiResult<Vec<Pass>> {
        Ok(self.known_passes(ctx).await?.into_iter().map(Into::into).collect())
    }

    /// The pass of one campaign (default: the newest).
    async fn pass(&self, ctx: &Context<'_>, campaign_id: Option<ID>) -> ApiResult<Option<Pass>> {
        let campaign = campaign_id.as_ref().map(|c| parse_id(c, "campaignId")).transpose()?;
        let passes = self.known_passes(ctx).await?;
        Ok(passes.into_iter().find(|p| campaign.is_none_or(|c| c == p.campaign_id)).map(Into::into))
    }
}

impl From<PupilRow> for Child {
    fn from(p: PupilRow) -> Self {
        Child {
            pupil: p.id,
            id: ID(p.id.to_string()),
            given_name: p.given_name,
            family_name: p.usage_name.unwrap_or(p.family_name),
            birth_date: p.birth_date,
            school: School { uai: p.uai, name: None, commune: None },
            class_name: p.class_name,
            grade_level: p.grade.map(Into::into),
            boursier: p.boursier,
            passes: None,
        }
    }
}

fn parent<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    let p = signed_in(ctx)?;
    if p.account.kind == AccountKind::Parent { Ok(p) } else { Err(Error::Forbidden.into()) }
}

#[derive(Default)]
pub struct FamilyQuery;

#[Object]
impl FamilyQuery {
    /// The signed-in parent's linked children.
    #[graphql(guard = "SignedIn")]
    async fn children(&self, ctx: &Context<'_>) -> ApiResult<Vec<Child>> {
        let p = parent(ctx)?;
        let loaders = ctx.data_unchecked::<Loaders>();
        let children = loaders.load_one(ParentChildren(p.account.id)).await?.unwrap_or_default();
        Ok(children
            .into_iter()
            .map(|c| {
                let mut child = Child::from(c.pupil);
                child.passes = Some(c.passes);
                if let Some(s) = c.school {
                    child.school.name = Some(s.name);
                    child.school.commune = s.commune;
                }
                child
            })
            .collect())
    }
}

#[derive(Default)]
pub struct FamilyMutation;

#[Object]
impl FamilyMutation {
    /// Names a child; if the school record matches, a code goes to a legal guardian's e-mail
    /// on that record (queued with the challenge, sent after the answer). The answer is the
    /// same either way. Needs a verified e-mail address (`EMAIL_NOT_VERIFIED`); throttled per
    /// account and per address.
    #[graphql(guard = "SignedIn")]
    async fn request_child_link(
        &self,
        ctx: &Context<'_>,
        input: RequestChildLinkInput,
    ) -> ApiResult<ChildLinkChallenge> {
        let p = parent(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let challenge = auth::request_child_link(
            db,
            p.account.id,
            &client_ip(ctx),
            &input.uai,
            &input.pupil_family_name,
            &input.pupil_given_name,
            input.pupil_birth_date,
        )
        .await?;
        Ok(ChildLinkChallenge {
            challenge_id: ID(challenge.id.to_string()),
            expires_at: chrono::DateTime::from_timestamp_micros(challenge.expires_at_us).unwrap_or_default(),
        })
    }

    /// Confirms a link with the code received; returns the child.
    #[graphql(guard = "SignedIn")]
    async fn confirm_child_link(&self, ctx: &Context<'_>, challenge_id: ID, code: String) -> ApiResult<Child> {
        let p = parent(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let pupil = auth::confirm_child_link(db, p.account.id, parse_id(&challenge_id, "challengeId")?, &code).await?;
        let child = list_pupils_by_ids(db, &[pupil]).await?.into_iter().next().ok_or(Error::NotFound("child"))?;
        Ok(child.into())
    }
}
