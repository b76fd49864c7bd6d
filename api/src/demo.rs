//! The demo seed, outside production: funder 92 (Hauts-de-Seine), its Pass+ 2026-27 campaign,
//! a small roster imported through the real importer, eligibility and the grant — so a
//! newcomer's first `cargo run` shows real passes with real balances.

use anyhow::Context as _;
use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::eligibility::recompute;
use passerelle_domain::funder::{ensure_funder_by_code, find_funder_by_code};
use passerelle_domain::grant::run_grant;
use passerelle_domain::school::import::{ImportFile, ImportOptions, RosterFormat, import_roster};
use sea_orm::DatabaseConnection;

use crate::config::Settings;

const ROSTER: &str = include_str!("demo/roster.csv");
pub const DEMO_FUNDER: &str = "92";
pub const DEMO_SCHOOL_YEAR: i32 = 2026;

/// What the seed created (None when the database already had the demo funder).
pub struct DemoReport {
    pub pupils: u64,
    pub passes: u64,
}

/// Seeds an empty database; does nothing when funder 92 already exists.
pub async fn seed(db: &DatabaseConnection, settings: &Settings) -> anyhow::Result<Option<DemoReport>> {
    if find_funder_by_code(db, DEMO_FUNDER).await?.is_some() {
        return Ok(None);
    }
    let funder = ensure_funder_by_code(db, DEMO_FUNDER, "Hauts-de-Seine", "92").await?;
    let policy = Policy::pass_plus("92", DEMO_SCHOOL_YEAR);
    let campaign = upsert_campaign(db, funder.id, DEMO_SCHOOL_YEAR, "Pass+ 2026-2027", &policy, "demo").await?;
    let dir = settings.data_dir.join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("roster.csv");
    std::fs::write(&path, ROSTER).with_context(|| format!("writing {}", path.display()))?;
    let files = [ImportFile { name: "demo-roster.csv".into(), path }];
    let options = ImportOptions { full_snapshot: true, author: "demo".into() };
    let imported = import_roster(db, funder.id, RosterFormat::Csv, &files, &options, &|_| {}).await?;
    recompute(db, campaign.id).await?;
    let grant = run_grant(db, campaign.id, &|_, _| {}).await?;
    Ok(Some(DemoReport { pupils: imported.created, passes: grant.passes }))
}
