//! The demo seed, outside production: funder 92 (Hauts-de-Seine), its Pass+ 2026-27 campaign,
//! a small roster imported through the real importer, eligibility and the grant, and a partner
//! (the judo club) owned by the demo partner account — so a newcomer's first `cargo run` shows
//! real passes with real balances.

use anyhow::Context as _;
use passerelle_domain::auth::{AccountKind, StaffRole, create_account, create_staff_account};
use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::eligibility::recompute;
use passerelle_domain::funder::{ensure_funder_by_code, find_funder_by_code};
use passerelle_domain::grant::run_grant;
use passerelle_domain::partner::{PartnerRole, add_partner_member, create_partner};
use passerelle_domain::school::import::{ImportFile, ImportOptions, RosterFormat, import_roster};
use sea_orm::DatabaseConnection;

use crate::config::Settings;

const ROSTER: &str = include_str!("demo/roster.csv");
pub const DEMO_FUNDER: &str = "92";
pub const DEMO_SCHOOL_YEAR: i32 = 2026;

pub const DEMO_PASSWORD: &str = "demo-password-2026";

/// What the seed created (None when the database already had the demo funder).
pub struct DemoReport {
    pub pupils: u64,
    pub passes: u64,
    /// Base32, for an authenticator app: staff sign-in needs a TOTP code.
    pub staff_totp_secret: String,
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
    let (parent, _) =
        create_account(db, AccountKind::Parent, "parent@example.org", DEMO_PASSWORD, "Claire Martin", true, &[])
            .await?;
    let (partner_account, _) = create_account(
        db,
        AccountKind::PartnerMember,
        "partner@example.org",
        DEMO_PASSWORD,
        "Club de judo de Bagneux",
        true,
        &[],
    )
    .await?;
    let club = create_partner(db, "Club de judo de Bagneux").await?;
    add_partner_member(db, club.id, partner_account.id, PartnerRole::Owner).await?;
    let roles = [(funder.id, StaffRole::Admin)];
    let (_, totp) = create_staff_account(
        db,
        &crate::keys::data_key(settings)?,
        "staff@example.org",
        DEMO_PASSWORD,
        "Agent du Département",
        &roles,
    )
    .await?;
    // Claire Martin is the legal guardian (RL1) of Léa and Hugo on the demo roster.
    for key in ["csv:900001", "csv:900002"] {
        link_demo_child(db, parent.id, funder.id, key).await?;
    }
    let staff_totp_secret = totp.to_base32();
    Ok(Some(DemoReport { pupils: imported.created, passes: grant.passes, staff_totp_secret }))
}

async fn link_demo_child(
    db: &DatabaseConnection,
    account: uuid::Uuid,
    funder: uuid::Uuid,
    key: &str,
) -> anyhow::Result<()> {
    use passerelle_domain::db::{now_us_sql, stmt};
    use sea_orm::ConnectionTrait;
    let backend = db.get_database_backend();
    let sql = format!(
        "INSERT INTO family_link (id, account_id, pupil_id, via, author, created_at_us) \
         SELECT $1, $2, id, 'staff', 'demo', {} FROM pupil WHERE funder_id = $3 AND source_key = $4",
        now_us_sql(backend)
    );
    let n = db
        .execute_raw(stmt(backend, &sql, [uuid::Uuid::now_v7().into(), account.into(), funder.into(), key.into()]))
        .await?;
    anyhow::ensure!(n.rows_affected() == 1, "demo pupil {key} not found");
    Ok(())
}

/// The demo staff member's TOTP secret, printed at every start outside production so the demo
/// stays usable after a restart.
/// It is stored sealed (or, before the first start with sealing, in clear: it is sealed first).
pub async fn staff_totp_secret(db: &DatabaseConnection, settings: &Settings) -> anyhow::Result<Option<String>> {
    let key = crate::keys::data_key(settings)?;
    passerelle_domain::auth::seal_clear_totp_secrets(db, &key).await?;
    Ok(passerelle_domain::auth::totp_secret_of(db, &key, "staff@example.org").await?.map(|s| s.to_base32()))
}
