//! Making a batch: what is owed up to the cutoff and not settled yet, one line per partner.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, FromQueryResult, Value};
use uuid::Uuid;

use super::funder::funder_settlement;
use super::model::{BatchStatus, Grouped, ItemKind, OpenItem, execution_date, group};
use super::read::{SettlementBatch, get_settlement_batch};
use crate::auth::Actor;
use crate::auth::audit::{AuditEvent, record};
use crate::campaign::end_of_day_us;
use crate::db::{begin_write, insert_rows, is_retryable, is_unique_violation, now_us, stmt};
use crate::error::{Error, Result};
use crate::money::Cents;

/// What staff (or the schedule) ask for.
#[derive(Clone, Debug)]
pub struct CreateBatch {
    pub funder_id: Uuid,
    /// The last day (Europe/Paris) whose redemptions and refunds are settled.
    pub cutoff: NaiveDate,
}

#[derive(FromQueryResult)]
struct OpenRow {
    kind: ItemKind,
    source_id: Uuid,
    partner_id: Uuid,
    amount: i64,
}

#[derive(FromQueryResult, Clone)]
struct Payee {
    id: Uuid,
    account_holder: String,
    iban: String,
    bic: Option<String>,
}

/// The day in Paris at instant `us`.
pub(super) fn paris_day(us: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

/// Makes a draft batch of `input.funder_id` of what is committed up to the end of
/// `input.cutoff` (a day not over yet is settled as far as it went). `CONFLICT` when the
/// funder has no treasury account or nobody is to be paid. `progress(done, total)` follows the
/// writing of the settled items.
pub async fn create_settlement_batch(
    db: &DatabaseConnection,
    input: &CreateBatch,
    actor: &Actor,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<SettlementBatch> {
    let settings = funder_settlement(db, input.funder_id).await?;
    if settings.treasury.is_none() {
        return Err(Error::Conflict("the funder's treasury account is not set".into()));
    }
    let now = now_us(db).await?;
    if input.cutoff > paris_day(now) {
        return Err(Error::bad_input("cutoff", "a day that has begun"));
    }
    let mut attempt = 1;
    loop {
        let txn = begin_write(db).await?;
        match write_batch(&txn, input, actor, progress).await {
            Ok(id) => {
                txn.commit().await?;
                return get_settlement_batch(db, id).await;
            }
            Err(Error::Internal(e)) if attempt < 5 && retryable(&*e) => {
                txn.rollback().await?;
                attempt += 1;
            }
            Err(e) => {
                txn.rollback().await?;
                return Err(e);
            }
        }
    }
}

/// A deadlock, or an item another batch took first: the next attempt reads again.
pub(super) fn retryable(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<sea_orm::DbErr>().is_some_and(|e| is_retryable(e) || is_unique_violation(e))
}

async fn open_items(txn: &DatabaseTransaction, funder: Uuid, cutoff_us: i64) -> Result<Vec<OpenItem>> {
    let backend = txn.get_database_backend();
    let sql = "SELECT 'redemption' AS kind, r.id AS source_id, r.partner_id, r.amount FROM redemption r \
        WHERE r.funder_id = $1 AND r.created_at_us < $2 AND NOT EXISTS (SELECT 1 FROM settlement_item s \
        WHERE s.kind = 'redemption' AND s.source_id = r.id) \
        UNION ALL SELECT 'refund' AS kind, f.id AS source_id, f.partner_id, -f.amount AS amount \
        FROM redemption_refund f WHERE f.funder_id = $3 AND f.created_at_us < $4 AND NOT EXISTS \
        (SELECT 1 FROM settlement_item s WHERE s.kind = 'refund' AND s.source_id = f.id)";
    let values = [funder.into(), cutoff_us.into(), funder.into(), cutoff_us.into()];
    let rows = OpenRow::find_by_statement(stmt(backend, sql, values)).all(txn).await?;
    Ok(rows
        .into_iter()
        .map(|r| OpenItem { kind: r.kind, source_id: r.source_id, partner_id: r.partner_id, amount: Cents(r.amount) })
        .collect())
}

async fn write_batch(
    txn: &DatabaseTransaction,
    input: &CreateBatch,
    actor: &Actor,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Uuid> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        // One batch creation per funder at a time: the next one reads after this one commits.
        let lock = "SELECT id FROM funder WHERE id = $1 FOR UPDATE";
        txn.execute_raw(stmt(backend, lock, [input.funder_id.into()])).await?;
    }
    let now = now_us(txn).await?;
    // Not bounded by `now`: the clock's millisecond may be a redemption's own (SQLite), and an
    // item of a day not over that commits later simply goes to the next batch.
    let cutoff_us = end_of_day_us(input.cutoff);
    let items = open_items(txn, input.funder_id, cutoff_us).await?;
    let sql = "SELECT id, account_holder, iban, bic FROM partner WHERE funder_id = $1 \
               AND bank_validated_at_us IS NOT NULL AND iban IS NOT NULL AND account_holder IS NOT NULL";
    let payees: HashMap<Uuid, Payee> = Payee::find_by_statement(stmt(backend, sql, [input.funder_id.into()]))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let (paid, carried) = group(items, |p| payees.contains_key(&p));
    if paid.is_empty() {
        return Err(Error::Conflict("nothing to pay up to this cutoff".into()));
    }
    let batch = Uuid::now_v7();
    let total: i64 = paid.iter().map(|g| g.net().0).sum();
    let item_count: usize = paid.iter().map(|g| g.items.len()).sum();
    let sql = "INSERT INTO settlement_batch (id, funder_id, cutoff, cutoff_us, status, execution_date, total_cents, \
               partners, items, carried_partners, created_by, created_at_us) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    let values: Vec<Value> = vec![
        batch.into(),
        input.funder_id.into(),
        input.cutoff.format("%Y-%m-%d").to_string().into(),
        cutoff_us.into(),
        BatchStatus::Draft.into(),
        execution_date(paris_day(now)).format("%Y-%m-%d").to_string().into(),
        total.into(),
        (paid.len() as i32).into(),
        (item_count as i32).into(),
        (carried.len() as i32).into(),
        actor.label.clone().into(),
        now.into(),
    ];
    txn.execute_raw(stmt(backend, sql, values)).await?;
    let lines: Vec<(Uuid, &Grouped)> = paid.iter().map(|g| (Uuid::now_v7(), g)).collect();
    let line_rows: Vec<Vec<Value>> = lines
        .iter()
        .map(|(id, g)| {
            let p = &payees[&g.partner_id];
            vec![
                (*id).into(),
                batch.into(),
                g.partner_id.into(),
                input.funder_id.into(),
                g.net().0.into(),
                g.redeemed.0.into(),
                g.refunded.0.into(),
                (g.items.len() as i32).into(),
                p.account_holder.clone().into(),
                p.iban.clone().into(),
                p.bic.clone().into(),
                now.into(),
            ]
        })
        .collect();
    let cols = "id, batch_id, partner_id, funder_id, amount, redeemed_cents, refunded_cents, items, account_holder, \
                iban, bic, created_at_us";
    insert_rows(txn, "settlement_line", cols, &line_rows, 200, &|_, _| {}).await?;
    let item_rows: Vec<Vec<Value>> = lines
        .iter()
        .flat_map(|(line, g)| {
            g.items.iter().map(move |i| {
                vec![
                    Uuid::now_v7().into(),
                    batch.into(),
                    (*line).into(),
                    i.kind.into(),
                    i.source_id.into(),
                    i.amount.0.into(),
                ]
            })
        })
        .collect();
    insert_rows(txn, "settlement_item", "id, batch_id, line_id, kind, source_id, amount", &item_rows, 90, progress)
        .await?;
    let event = AuditEvent {
        action: "settlement_batch_created",
        actor,
        funder_id: Some(input.funder_id),
        partner_id: None,
        subject_account_id: None,
        object_id: Some(batch),
        reason: None,
    };
    record(txn, &event).await?;
    Ok(batch)
}

/// The cutoff the funder's schedule gives today (by the database clock, in Paris).
pub async fn due_cutoff(db: &DatabaseConnection, funder: Uuid) -> Result<NaiveDate> {
    let today = paris_day(now_us(db).await?);
    Ok(funder_settlement(db, funder).await?.schedule.due_cutoff(today))
}

/// The schedule's run: for each funder with a treasury account, the batch of the latest period
/// over today (Europe/Paris, by the database clock), unless one already covers it. Funders with
/// nothing to pay are skipped. For the scheduler, or `cron` with `passerelle settle`.
pub async fn settle_due(db: &DatabaseConnection, actor: &Actor) -> Result<Vec<SettlementBatch>> {
    #[derive(FromQueryResult)]
    struct Due {
        id: Uuid,
    }
    let sql = "SELECT id FROM funder WHERE treasury_iban IS NOT NULL ORDER BY code";
    let funders = Due::find_by_statement(stmt(db.get_database_backend(), sql, [])).all(db).await?;
    let mut made = vec![];
    for f in funders {
        let cutoff = due_cutoff(db, f.id).await?;
        let sql = "SELECT id FROM settlement_batch WHERE funder_id = $1 AND cutoff >= $2";
        let values = [f.id.into(), cutoff.format("%Y-%m-%d").to_string().into()];
        if db.query_one_raw(stmt(db.get_database_backend(), sql, values)).await?.is_some() {
            continue;
        }
        match create_settlement_batch(db, &CreateBatch { funder_id: f.id, cutoff }, actor, &|_, _| {}).await {
            Ok(batch) => made.push(batch),
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(made)
}
