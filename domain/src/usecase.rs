//! Use cases that span features: each is one function that the CLI and GraphQL both call, so
//! the two entry points cannot drift apart (they once did: GraphQL recomputed eligibility only
//! after a successful import, the CLI always).

use sea_orm::DatabaseConnection;
use serde::Serialize;
use uuid::Uuid;

use crate::campaign::{Campaign, get_campaign, list_campaigns};
use crate::eligibility::{RecomputeSummary, recompute};
use crate::error::Result;
use crate::grant::{GrantSummary, run_grant};
use crate::school::import::{
    ImportFile, ImportOptions, ImportStatus, ImportSummary, Progress, RosterFormat, import_roster,
};

/// Imports roster files for `funder`, then recomputes the eligibility of each of its campaigns.
///
/// Only a *succeeded* import is followed by a recompute. A rejected import (a malformed file)
/// rolled back whole — the roster is exactly as before — so recomputing would redo every
/// decision for nothing; the caller reports the rejection (GraphQL answers status REJECTED, the
/// CLI exits non-zero).
pub async fn import_and_recompute(
    db: &DatabaseConnection,
    funder: Uuid,
    format: RosterFormat,
    files: &[ImportFile],
    options: &ImportOptions,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<ImportSummary> {
    let summary = import_roster(db, funder, format, files, options, progress).await?;
    if summary.status == ImportStatus::Succeeded {
        for campaign in list_campaigns(db, funder).await? {
            recompute(db, campaign.id).await?;
        }
    }
    Ok(summary)
}

/// What [`recompute_and_grant`] did.
#[derive(Clone, Debug, Serialize)]
pub struct GrantRun {
    #[serde(skip)]
    pub campaign: Campaign,
    pub eligibility: RecomputeSummary,
    #[serde(flatten)]
    pub grant: GrantSummary,
}

/// Recomputes the eligibility of `campaign_id` from the current roster, then grants every
/// eligible pupil once: the grant must never run on decisions older than the roster.
/// `progress(done, total)` follows the grant's pages.
pub async fn recompute_and_grant(
    db: &DatabaseConnection,
    campaign_id: Uuid,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<GrantRun> {
    let campaign = get_campaign(db, campaign_id).await?;
    let eligibility = recompute(db, campaign_id).await?;
    let grant = run_grant(db, campaign_id, progress).await?;
    Ok(GrantRun { campaign, eligibility, grant })
}
