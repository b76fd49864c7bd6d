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
use passerelle_domain::ledger::Wallet;
use passerelle_domain::partner::{PartnerRole, add_partner_member, approve_partner, create_partner};
use passerelle_domain::school::import::{ImportFile, ImportOptions, RosterFormat, import_roster};
use passerelle_domain::spending;
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
    approve_partner(db, club.id, funder.id, &[Wallet::Sport], Some("Bagneux")).await?;
    let theatre = create_partner(db, "Théâtre Victor Hugo").await?;
    approve_partner(db, theatre.id, funder.id, &[Wallet::Culture], Some("Bagneux")).await?;
    seed_spending(db, settings, parent.id, club.id, theatre.id).await?;
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

/// A little history, through the real use cases: Léa holds a ticket for the judo club, Hugo
/// (boursier) paid the theatre and had a ticket redeemed by the club.
async fn seed_spending(
    db: &DatabaseConnection,
    settings: &Settings,
    parent: uuid::Uuid,
    club: uuid::Uuid,
    theatre: uuid::Uuid,
) -> anyhow::Result<()> {
    let keys = spending::TicketKeys::new(settings.public_url.clone());
    let data_key = crate::keys::data_key(settings)?;
    let pupils = passerelle_domain::auth::linked_pupils(db, parent).await?;
    let passes = spending::passes_of_pupils(db, &pupils).await?;
    let pass_of = |pupil: Option<&uuid::Uuid>| passes.iter().find(|p| Some(&p.pupil_id) == pupil).map(|p| p.id);
    let (Some(lea), Some(hugo)) = (pass_of(pupils.first()), pass_of(pupils.get(1))) else {
        anyhow::bail!("the demo children have no pass");
    };
    let cents = passerelle_domain::Cents;
    let ticket = |pass, wallet, amount, partner_id, key: &str| spending::IssueTicket {
        pass_id: pass,
        wallet,
        amount: cents(amount),
        partner_id,
        idempotency_key: key.into(),
    };
    spending::issue_ticket(
        db,
        &keys,
        &data_key,
        parent,
        &ticket(lea, Wallet::Sport, 1500, Some(club), "demo-ticket-lea"),
    )
    .await?;
    let (redeemable, _) = spending::issue_ticket(
        db,
        &keys,
        &data_key,
        parent,
        &ticket(hugo, Wallet::Sport, 3000, None, "demo-ticket-hugo"),
    )
    .await?;
    let redeem = spending::RedeemTicket {
        code: redeemable.code,
        amount: Some(cents(2500)),
        activity_id: None,
        idempotency_key: "demo-redeem-hugo".into(),
    };
    spending::redeem_ticket(db, club, &redeem).await?;
    let payment = spending::PayPartner {
        pass_id: hugo,
        wallet: Wallet::Culture,
        amount: cents(1200),
        partner_id: theatre,
        activity_id: None,
        idempotency_key: "demo-payment-hugo".into(),
    };
    spending::pay_partner(db, parent, &payment).await?;
    Ok(())
}
