//! The yearly grant: a pass and its credit for every eligible pupil, exactly once.
//!
//! Every credit is a ledger operation under a deterministic idempotency key —
//! `grant:<campaign>:<pupil>:base`, and `…:boursier` for the boursier top-up — so a second run,
//! or a re-run after a crash half-way, credits nobody twice, and a pupil who becomes boursier
//! later gets the difference exactly once (80 → 100 €). Passes are created with
//! `ON CONFLICT (campaign, pupil) DO NOTHING` for the same reason. Work goes in pages of 500
//! pupils, each page — its passes, wallets and credits (one ledger batch) — in one transaction,
//! which keeps a 100,000-pupil grant to seconds and leaves a crashed run with whole pages only.

use rand::Rng;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, FromQueryResult, TransactionTrait, Value,
};
use serde::Serialize;
use uuid::Uuid;

use crate::campaign::{Campaign, get_campaign};
use crate::db::{
    begin_write, is_retryable, is_unique_violation, now_us_sql, plan_each_statement, rows_per_statement, stmt,
};
use crate::error::{Error, Result};
use crate::ids::CardNumber;
use crate::ledger::{
    AccountKind, AccountRef, AccountSpec, BatchOutcome, LedgerError, Operation, Scope, ensure_account, ensure_accounts,
    execute, execute_batch_in,
};

mod credits;

use credits::{base_credits, credit_operations};

const PAGE: u64 = 500;
/// Bound bytes of one pass row (three ids and a card number), to size PostgreSQL statements.
const PASS_ROW_BYTES: usize = 90;

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
    let scope = Scope::campaign(campaign.funder_id, campaign_id);
    let budget = ensure_account(db, AccountSpec::of(AccountKind::FunderBudget, campaign_id, scope)).await?;
    let run = Run { campaign, budget, prefix };
    let sql = "SELECT COUNT(*) AS n FROM eligibility WHERE campaign_id = $1 AND eligible = TRUE";
    let total = Count::find_by_statement(stmt(backend, sql, [campaign_id.into()])).one(db).await?.map_or(0, |c| c.n);
    let mut summary = GrantSummary::default();
    let mut after = Uuid::nil();
    loop {
        let page = next_page(db, campaign_id, after).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        grant_page(db, &run, &page, &mut summary).await?;
        if summary.passes == 0 {
            refresh_statistics(db).await?;
        }
        summary.passes += page.len() as u64;
        progress(summary.passes, total.max(0) as u64);
    }
    Ok(summary)
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// PostgreSQL plans lookups of many wallets or keys from the tables' statistics; a first grant
/// fills tables that had none (or stats of a few rows), so the planner assumed any owner or
/// key matches half the table and scanned it all — 7 ms a lookup at 40,000 wallets — until
/// autovacuum's next visit. Statistics taken after the first page say owners and keys are
/// unique, which holds as the tables grow. SQLite picks its indexes without statistics.
async fn refresh_statistics(db: &DatabaseConnection) -> Result<()> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let sql = "ANALYZE pass, ledger_account, idempotency_key, ledger_transfer";
        db.execute_raw(stmt(db.get_database_backend(), sql, [])).await?;
    }
    Ok(())
}

/// The next eligible pupils after `after`, in id order, with their boursier flag (looked up
/// per returned row: a join would make PostgreSQL scan the pupils).
async fn next_page(db: &DatabaseConnection, campaign_id: Uuid, after: Uuid) -> Result<Vec<(Uuid, bool)>> {
    let sql = format!(
        "SELECT e.pupil_id, (SELECT p.boursier FROM pupil p WHERE p.id = e.pupil_id) AS boursier FROM eligibility e \
         WHERE e.campaign_id = $1 AND e.eligible = TRUE AND e.pupil_id > $2 ORDER BY e.pupil_id LIMIT {PAGE}"
    );
    let rows = PageRow::find_by_statement(stmt(db.get_database_backend(), &sql, [campaign_id.into(), after.into()]))
        .all(db)
        .await?;
    // A pupil whose boursier flag is unknown (NULL) gets the base amount only.
    Ok(rows.into_iter().map(|r| (r.pupil_id, r.boursier.unwrap_or(false))).collect())
}

#[derive(FromQueryResult)]
struct PageRow {
    pupil_id: Uuid,
    boursier: Option<bool>,
}

/// What every page of a run needs.
struct Run {
    campaign: Campaign,
    /// The campaign's budget account, debited by every grant.
    budget: AccountRef,
    /// The first digits of the card numbers drawn.
    prefix: String,
}

/// What one attempt at a page came to.
enum Step {
    Done {
        created: u64,
        batch: BatchOutcome,
    },
    /// A drawn card number was taken: draw again.
    Collision,
    /// The ledger refused the page's batch (a policy changed after some pupils were granted).
    Refused,
}

/// One page in one transaction: its passes, their wallets and their credits commit together
/// (one commit instead of one per step), so a crash leaves a page all done or not begun.
async fn grant_page(
    db: &DatabaseConnection,
    run: &Run,
    page: &[(Uuid, bool)],
    summary: &mut GrantSummary,
) -> Result<()> {
    for _ in 0..5 {
        let txn = begin_write(db).await?;
        plan_each_statement(&txn).await?;
        let step = page_in(&txn, run, page).await;
        match step {
            Ok(Step::Done { created, batch }) => {
                txn.commit().await?;
                summary.passes_created += created;
                summary.credits += batch.executed;
                summary.already_done += batch.replayed;
                summary.refused += batch.failed;
                summary.credited_cents += batch.moved_cents;
                return Ok(());
            }
            Ok(Step::Collision) => txn.rollback().await?,
            Err(LedgerError::Db(e)) if is_retryable(&e) => txn.rollback().await?,
            Ok(Step::Refused) => {
                txn.rollback().await?;
                return grant_page_one_by_one(db, run, page, summary).await;
            }
            Err(e) => {
                txn.rollback().await?;
                return Err(e.into());
            }
        }
    }
    Err(Error::internal(DbErr::Custom("grant page: no attempt succeeded".into())))
}

async fn page_in(txn: &DatabaseTransaction, run: &Run, page: &[(Uuid, bool)]) -> Result<Step, LedgerError> {
    let Some((created, ops)) = prepare_page(txn, run, page).await? else { return Ok(Step::Collision) };
    match execute_batch_in(txn, &ops).await {
        Ok(batch) => Ok(Step::Done { created, batch }),
        Err(LedgerError::Rejected(_) | LedgerError::IdempotencyConflict) => Ok(Step::Refused),
        Err(e) => Err(e),
    }
}

/// Creates the page's missing passes and wallets; returns how many passes were created and
/// the credit operations. `None` when a drawn card number was taken (roll back, draw again).
async fn prepare_page(
    txn: &DatabaseTransaction,
    run: &Run,
    page: &[(Uuid, bool)],
) -> Result<Option<(u64, Vec<Operation>)>, LedgerError> {
    let Some(created) = insert_passes(txn, run, page).await? else { return Ok(None) };
    // Passes created just now were never granted: no earlier base grant to read.
    let all_new = created == page.len() as u64;
    Ok(Some((created, page_operations(txn, run, page, all_new).await?)))
}

/// The credit operations of a page whose passes exist, creating the missing wallets.
async fn page_operations(
    txn: &DatabaseTransaction,
    run: &Run,
    page: &[(Uuid, bool)],
    all_new: bool,
) -> Result<Vec<Operation>, LedgerError> {
    let campaign = &run.campaign;
    let passes = pass_ids(txn, campaign.id, page).await?;
    let specs: Vec<AccountSpec> = passes
        .iter()
        .flat_map(|(_, pass)| {
            campaign
                .policy
                .wallets
                .iter()
                .map(move |w| AccountSpec::pass_wallet(campaign.funder_id, campaign.id, *pass, w.wallet))
        })
        .collect();
    let wallets = ensure_accounts(txn, &specs).await?;
    let boursiers: Vec<Uuid> = page.iter().filter(|(_, b)| *b && !all_new).map(|(p, _)| *p).collect();
    let base = base_credits(txn, campaign.id, &boursiers).await?;
    Ok(credit_operations(campaign, run.budget, page, &passes, &wallets, &base))
}

/// One pupil's pass and credit inside the caller's transaction: a staff decision (an
/// enrolment or a boursier bonus approved) takes effect with the decision or not at all. The
/// keys are the grant's own, so a later run — or a second decision — credits nothing twice,
/// and a boursier top-up completes what the base actually credited. A card-number collision
/// rolls back a savepoint, not the decision.
pub async fn grant_pupil_in(
    txn: &DatabaseTransaction,
    campaign: &Campaign,
    pupil: Uuid,
    boursier: bool,
) -> Result<GrantSummary> {
    let scope = Scope::campaign(campaign.funder_id, campaign.id);
    let budget = ensure_account(txn, AccountSpec::of(AccountKind::FunderBudget, campaign.id, scope)).await?;
    let prefix = card_prefix(txn, campaign.funder_id).await?;
    let run = Run { campaign: campaign.clone(), budget, prefix };
    let page = [(pupil, boursier)];
    for _ in 0..5 {
        let attempt = txn.begin().await?;
        match page_in(&attempt, &run, &page).await {
            Ok(Step::Done { created, batch }) => {
                attempt.commit().await?;
                return Ok(GrantSummary {
                    passes: 1,
                    passes_created: created,
                    credits: batch.executed,
                    already_done: batch.replayed,
                    credited_cents: batch.moved_cents,
                    refused: batch.failed,
                });
            }
            Ok(Step::Collision) => attempt.rollback().await?,
            Ok(Step::Refused) => {
                attempt.rollback().await?;
                return Err(Error::Conflict("the ledger refused this pupil's grant".into()));
            }
            Err(e) => {
                attempt.rollback().await?;
                return Err(e.into());
            }
        }
    }
    Err(Error::internal(DbErr::Custom("could not draw a unique card number".into())))
}

/// The slow path after a refused batch: passes and wallets first, then one ledger operation at
/// a time, so the culprits are recorded and counted and the others still go through.
async fn grant_page_one_by_one(
    db: &DatabaseConnection,
    run: &Run,
    page: &[(Uuid, bool)],
    summary: &mut GrantSummary,
) -> Result<()> {
    let mut ops = None;
    for _ in 0..5 {
        let txn = begin_write(db).await?;
        match prepare_page(&txn, run, page).await? {
            Some((created, page_ops)) => {
                txn.commit().await?;
                summary.passes_created += created;
                ops = Some(page_ops);
                break;
            }
            None => txn.rollback().await?,
        }
    }
    let ops = ops.ok_or_else(|| Error::internal(DbErr::Custom("could not draw unique card numbers".into())))?;
    for op in &ops {
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

/// Card numbers start with the funder's code (digits only), then random digits, then Luhn.
pub(crate) async fn card_prefix<C: ConnectionTrait>(db: &C, funder_id: Uuid) -> Result<String> {
    #[derive(FromQueryResult)]
    struct Funder {
        code: String,
    }
    let sql = "SELECT code FROM funder WHERE id = $1";
    let Funder { code } = Funder::find_by_statement(stmt(db.get_database_backend(), sql, [funder_id.into()]))
        .one(db)
        .await?
        .ok_or(Error::NotFound("funder"))?;
    Ok(format!("6{}", code.chars().filter(char::is_ascii_digit).take(3).collect::<String>()))
}

pub(crate) fn new_card_number(prefix: &str) -> Result<String, LedgerError> {
    let mut rng = rand::rng();
    let body: String =
        prefix.chars().chain((prefix.len()..15).map(|_| char::from(b'0' + rng.random_range(0..10u8)))).collect();
    CardNumber::from_body(&body)
        .map(|c| c.as_str().to_owned())
        .map_err(|e| LedgerError::Invalid(format!("card number {body}: {e}")))
}

/// Creates the missing passes of the page; `None` when a drawn card number was already taken
/// (the caller rolls back and draws again: the unique index decides, never a prior lookup).
async fn insert_passes(
    txn: &DatabaseTransaction,
    run: &Run,
    page: &[(Uuid, bool)],
) -> Result<Option<u64>, LedgerError> {
    let backend = txn.get_database_backend();
    let mut created = 0;
    for chunk in page.chunks(rows_per_statement(backend, PASS_ROW_BYTES, PAGE as usize)) {
        let now = now_us_sql(backend);
        let tuples: Vec<String> = (0..chunk.len())
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
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (pupil, _) in chunk {
            values.extend([
                Uuid::now_v7().into(),
                (*pupil).into(),
                run.campaign.id.into(),
                new_card_number(&run.prefix)?.into(),
            ]);
        }
        match txn.execute_raw(stmt(backend, &sql, values)).await {
            Ok(r) => created += r.rows_affected(),
            Err(e) if is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(created))
}

/// The passes of the page's pupils, found by the page's id range (a short statement, whatever
/// the page size) and kept to the page's pupils, sorted by pupil.
async fn pass_ids<C: ConnectionTrait>(
    db: &C,
    campaign_id: Uuid,
    page: &[(Uuid, bool)],
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    let (Some((first, _)), Some((last, _))) = (page.first(), page.last()) else { return Ok(vec![]) };
    let sql = "SELECT pupil_id, id FROM pass WHERE campaign_id = $1 AND pupil_id >= $2 AND pupil_id <= $3";
    let values: [Value; 3] = [campaign_id.into(), (*first).into(), (*last).into()];
    let rows = PassRow::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await?;
    let wanted: std::collections::HashSet<Uuid> = page.iter().map(|(p, _)| *p).collect();
    let mut out: Vec<(Uuid, Uuid)> =
        rows.into_iter().filter(|r| wanted.contains(&r.pupil_id)).map(|r| (r.pupil_id, r.id)).collect();
    out.sort();
    Ok(out)
}

#[derive(FromQueryResult)]
struct PassRow {
    pupil_id: Uuid,
    id: Uuid,
}
