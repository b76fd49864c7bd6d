//! Staff decisions on family links: `linkChildToAccount`, `unlinkChild`.
//!
//! Admins and eligibility officers of the pupil's funder only, recently re-authenticated, with
//! a reason; both the change and its audit row are written together.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::auth::{self, LinkAction, LinkChange, LinkDecision};
use sea_orm::DatabaseConnection;

use crate::access::{ELIGIBILITY_WRITERS, StaffOnly, actor, require_staff_reauthenticated};
use crate::error::ApiResult;
use crate::parse_id;

#[derive(InputObject)]
pub struct LinkChildToAccountInput {
    /// The parent account.
    pub account_id: ID,
    pub pupil_id: ID,
    /// Why (kept in the audit trail), 1 to 500 characters.
    pub reason: String,
}

#[derive(InputObject)]
pub struct UnlinkChildInput {
    pub account_id: ID,
    pub pupil_id: ID,
    /// Why (kept in the audit trail), 1 to 500 characters.
    pub reason: String,
}

/// A staff link or unlink as recorded in the audit trail.
#[derive(SimpleObject)]
pub struct FamilyLinkChange {
    pub account_id: ID,
    pub pupil_id: ID,
    /// True after `linkChildToAccount`, false after `unlinkChild`.
    pub linked: bool,
    pub reason: String,
    /// The staff member's e-mail.
    pub author: String,
    pub at: Option<DateTime<Utc>>,
}

impl From<LinkChange> for FamilyLinkChange {
    fn from(c: LinkChange) -> Self {
        FamilyLinkChange {
            account_id: ID(c.account_id.to_string()),
            pupil_id: ID(c.pupil_id.to_string()),
            linked: c.linked,
            reason: c.reason,
            author: c.author,
            at: DateTime::from_timestamp_micros(c.at_us),
        }
    }
}

/// Parses the ids, checks the caller may decide for the pupil's funder, applies the decision.
async fn decide(
    ctx: &Context<'_>,
    action: LinkAction,
    account_id: &ID,
    pupil_id: &ID,
    reason: &str,
) -> ApiResult<FamilyLinkChange> {
    let account = parse_id(account_id, "accountId")?;
    let pupil = parse_id(pupil_id, "pupilId")?;
    let db = ctx.data_unchecked::<DatabaseConnection>();
    let funder = auth::pupil_funder(db, pupil).await?;
    require_staff_reauthenticated(ctx, funder, ELIGIBILITY_WRITERS).await?;
    let decision = LinkDecision { action, funder, account, pupil, reason };
    Ok(auth::decide_family_link(db, &actor(ctx), &decision).await?.into())
}

#[derive(Default)]
pub struct FamilyLinkMutation;

#[Object]
impl FamilyLinkMutation {
    /// Links a parent account to a pupil (e.g. a guardian missing from the school record).
    #[graphql(guard = "StaffOnly")]
    async fn link_child_to_account(
        &self,
        ctx: &Context<'_>,
        input: LinkChildToAccountInput,
    ) -> ApiResult<FamilyLinkChange> {
        decide(ctx, LinkAction::Link, &input.account_id, &input.pupil_id, &input.reason).await
    }

    /// Removes a parent's link to a pupil; the parent loses the child on their next request.
    #[graphql(guard = "StaffOnly")]
    async fn unlink_child(&self, ctx: &Context<'_>, input: UnlinkChildInput) -> ApiResult<FamilyLinkChange> {
        decide(ctx, LinkAction::Unlink, &input.account_id, &input.pupil_id, &input.reason).await
    }
}
