//! The yearly grant: a pass and its credit for every eligible pupil, exactly once.
//!
//! Every credit is a ledger operation under a deterministic idempotency key —
//! `grant:<campaign>:<pupil>:base`, and `…:boursier` for the boursier top-up — so a second run,
//! or a re-run after a crash half-way, credits nobody twice, and a pupil who becomes boursier
//! later gets the difference exactly once (80 → 100 €). Passes are created with
//! `ON CONFLICT (campaign, pupil) DO NOTHING` for the same reason. Work goes in pages of 500
//! pupils, each page's credits in one ledger batch (one commit), which keeps a 75,000-pupil
//! grant to seconds.

use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::campaign::{Campaign, get_campaign};
use crate::db::{begin_write, is_unique_violation, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::ids::CardNumber;
use crate::ledger::{
    AccountKind, AccountRef, AccountSpec, LedgerError, Leg, Operation, TransferKind, Wallet, ensure_account,
    ensure_accounts, execute, execute_batch,
};
use crate::money::Cents;

const PAGE: u64 = 500;

/// What a grant run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GrantSummary {
    /// Eligible pupils processed (each has a pass afterwards).
    pub passes: u64,
    pub passes_created: u64,
    /// Credit operations executed by this run (base grants and boursier top-ups).
    pub credits: u64,
    /// Operations already done by an earlier run.
    pub already_done: u64,
    pub credited_cents: i64,
    /// Operations refused (e.g. the policy's amounts changed after a pupil was granted):
    /// reported, never silently re-credited.
    pub refused: u64,
}

/// Runs the grant of `campaign_id`; `progress(done, total)` is called after each page.
pub async fn run_grant(
    db: &DatabaseConnection,
    campaign_id: Uuid,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<GrantSummary> {
    let campaign = get_campaign(db, campaign_id).await?;
    let backend = db.get_database_backend();
    let prefix = card_prefix(db, campaign.funder_id).await?;
    let budget = ensure_account(db, AccountSpec::of(AccountKind::FunderBudget, campaign_id)).await?;
    let total: i64 = db
        .query_one_raw(stmt(
            backend,
            "SELECT COUNT(*) AS n FROM eligibility WHERE campaign_id = $1 AND eligible = TRUE",
            [campaign_id.into()],
        ))
        .await?
        .map_or(Ok(0), |r| r.try_get("", "n"))?;
    let mut summary = GrantSummary::default();
    let mut after = Uuid::nil();
    loop {
        let sql = format!(
            "SELECT e.pupil_id, p.boursier FROM eligibility e JOIN pupil p ON p.id = e.pupil_id \
             WHERE e.campaign_id = $1 AND e.eligible = TRUE AND e.pupil_id > $2 ORDER BY e.pupil_id LIMIT {PAGE}"
        );
        let rows = db.query_all_raw(stmt(backend, &sql, [campaign_id.into(), after.into()])).await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("", "pupil_id")?;
        let mut page = Vec::with_capacity(rows.len());
        for r in &rows {
            page.push((
                r.try_get::<Uuid>("", "pupil_id")?,
                r.try_get::<Option<bool>>("", "boursier")?.unwrap_or(false),
            ));
        }
        summary.passes_created += ensure_passes(db, campaign_id, &prefix, &page).await?;
        let passes = pass_ids(db, campaign_id, &page).await?;
        let specs: Vec<AccountSpec> = passes
            .iter()
            .flat_map(|(_, pass)| {
                campaign.policy.wallets.iter().map(move |w| AccountSpec::pass_wallet(*pass, w.wallet))
            })
            .collect();
        let wallets = ensure_accounts(db, &specs).await?;
        let ops = credit_operations(&campaign, budget, &page, &passes, &wallets);
        credit(db, &ops, &mut summary).await?;
        summary.passes += page.len() as u64;
        progress(summary.passes, total.max(0) as u64);
    }
    Ok(summary)
}

/// Card numbers start with the funder's code (digits only), then random digits, then Luhn.
async fn card_prefix(db: &DatabaseConnection, funder_id: Uuid) -> Result<String> {
    let row = db
        .query_one_raw(stmt(db.get_database_backend(), "SELECT code FROM funder WHERE id = $1", [funder_id.into()]))
        .await?
        .ok_or(Error::NotFound("funder"))?;
    let code: String = row.try_get("", "code")?;
    Ok(format!("6{}", code.chars().filter(char::is_ascii_digit).take(3).collect::<String>()))
}

fn new_card_number(prefix: &str) -> Result<String> {
    let mut rng = rand::rng();
    let body: String =
        prefix.chars().chain((prefix.len()..15).map(|_| char::from(b'0' + rng.random_range(0..10u8)))).collect();
    CardNumber::from_body(&body).map(|c| c.as_str().to_owned()).map_err(Error::internal)
}

async fn ensure_passes(db: &DatabaseConnection, campaign_id: Uuid, prefix: &str, page: &[(Uuid, bool)]) -> Result<u64> {
    let backend = db.get_database_backend();
    // A random card number may (very rarely) collide with an existing one: try again.
    for _ in 0..5 {
        let now = now_us_sql(backend);
        let tuples: Vec<String> = (0..page.len())
            .map(|i| {
                let b = i * 4;
                format!("(${}, ${}, ${}, ${}, 'active', {now})", b + 1, b + 2, b + 3, b + 4)
            })
            .collect();
        let sql = format!(
            "INSERT INTO pass (id, pupil_id, campaign_id, number, status, created_at_us) VALUES {} \
             ON CONFLICT (campaign_id, pupil_id) DO NOTHING",
            tuples.join(", ")
        );
        let mut values: Vec<Value> = Vec::with_capacity(page.len() * 4);
        for (pupil, _) in page {
            values.extend([
                Uuid::now_v7().into(),
                (*pupil).into(),
                campaign_id.into(),
                new_card_number(prefix)?.into(),
            ]);
        }
        let txn = begin_write(db).await?;
        match txn.execute_raw(stmt(backend, &sql, values)).await {
            Ok(r) => {
                txn.commit().await?;
                return Ok(r.rows_affected());
            }
            Err(e) if is_unique_violation(&e) => txn.rollback().await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::internal(DbErr::Custom("could not draw unique card numbers".into())))
}

async fn pass_ids<C: ConnectionTrait>(db: &C, campaign_id: Uuid, page: &[(Uuid, bool)]) -> Result<Vec<(Uuid, Uuid)>> {
    let marks: Vec<String> = (0..page.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!("SELECT pupil_id, id FROM pass WHERE campaign_id = $1 AND pupil_id IN ({})", marks.join(", "));
    let mut values: Vec<Value> = vec![campaign_id.into()];
    values.extend(page.iter().map(|(p, _)| (*p).into()));
    let rows = db.query_all_raw(stmt(db.get_database_backend(), &sql, values)).await?;
    let mut out: Vec<(Uuid, Uuid)> =
        rows.iter().map(|r| Ok((r.try_get("", "pupil_id")?, r.try_get("", "id")?))).collect::<Result<_, DbErr>>()?;
    out.sort();
    Ok(out)
}

/// The base grant of every pupil of the page, and the boursier top-up where it applies.
fn credit_operations(
    campaign: &Campaign,
    budget: AccountRef,
    page: &[(Uuid, bool)],
    passes: &[(Uuid, Uuid)],
    wallets: &[AccountRef],
) -> Vec<Operation> {
    let per_pass = campaign.policy.wallets.len();
    let mut ops = Vec::with_capacity(page.len() * 2);
    for (i, (pupil, _)) in passes.iter().enumerate() {
        let boursier = page.iter().any(|(p, b)| p == pupil && *b);
        let legs = |amount: &dyn Fn(Wallet) -> Cents| -> Vec<Leg> {
            campaign
                .policy
                .wallets
                .iter()
                .enumerate()
                .filter_map(|(j, w)| {
                    let a = amount(w.wallet);
                    (a.0 > 0).then(|| Leg::Transfer {
                        kind: TransferKind::Grant,
                        debit: budget,
                        credit: wallets[i * per_pass + j],
                        amount: a,
                    })
                })
                .collect()
        };
        let key = |tier: &str| format!("grant:{}:{pupil}:{tier}", campaign.id);
        let base = legs(&|w| campaign.policy.amount(w, false));
        if !base.is_empty() {
            ops.push(Operation::new("system:grant", key("base"), base));
        }
        if boursier {
            let top_up = legs(&|w| Cents(campaign.policy.amount(w, true).0 - campaign.policy.amount(w, false).0));
            if !top_up.is_empty() {
                ops.push(Operation::new("system:grant", key("boursier"), top_up));
            }
        }
    }
    ops
}

/// One batch for the page; if the batch is refused, one operation at a time so the culprits
/// are recorded and counted and the others still go through.
async fn credit(db: &DatabaseConnection, ops: &[Operation], summary: &mut GrantSummary) -> Result<()> {
    match execute_batch(db, ops).await {
        Ok(b) => {
            summary.credits += b.executed;
            summary.already_done += b.replayed;
            summary.credited_cents += b.moved_cents;
            return Ok(());
        }
        Err(LedgerError::Rejected(_) | LedgerError::IdempotencyConflict) => {}
        Err(e) => return Err(e.into()),
    }
    for op in ops {
        match execute(db, op).await {
            Ok(o) if o.replayed => summary.already_done += 1,
            Ok(o) => {
                summary.credits += 1;
                summary.credited_cents += o.transfers.iter().map(|t| t.amount.0).sum::<i64>();
            }
            Err(LedgerError::Rejected(_) | LedgerError::IdempotencyConflict) => {
                tracing::warn!(key = %op.key, "grant operation refused");
                summary.refused += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
